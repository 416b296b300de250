#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: role_assignment
short_description: Grant and revoke Azure RBAC roles
version_added: 0.1.0
description:
  - Makes sure a principal (user, group, service principal, managed identity) has, or no longer has, a role at a scope.
  - B(Idempotent by meaning, not by name.) An assignment is the triple (scope, role, principal); the module looks for
    one at exactly O(scope) and creates one only when there is none. A new assignment's name is a UUID derived from
    the triple, unless O(name) is set.
  - Role assignments cannot be changed; only created and deleted. Azure creates and deletes them synchronously, so
    this module has no C(wait) options.
author:
  - FleetOps maintainers (@fleetops)
options:
  scope:
    description:
      - Where the role applies, as a resource ID path such as C(/subscriptions/SUB/resourceGroups/images-prod)
        (a resource group) or a resource's ID. Keep it as narrow as the principal needs.
    type: str
    required: true
  principal_id:
    description: The object ID of the principal (a managed identity's C(principal_id)).
    type: str
    required: true
  principal_type:
    description:
      - The kind of principal. Set it for a principal created moments ago (a new managed identity) - without it Azure
        looks the principal up in Microsoft Entra ID, which may not have it yet (C(PrincipalNotFound)).
    type: str
    choices: [User, Group, ServicePrincipal, ForeignGroup, Device]
  role_definition_name:
    description: The role's name, such as V(Contributor) or V(Reader). One of this or O(role_definition_id).
    type: str
  role_definition_id:
    description: The role definition's resource ID, or its GUID. One of this or O(role_definition_name).
    type: str
  description:
    description: A description of the assignment (set when it is created).
    type: str
  name:
    description: The name (a GUID) to give a new assignment. If not set, one derived from scope, role and principal.
    type: str
  state:
    description: V(present) grants the role; V(absent) revokes it (the assignment at exactly O(scope)).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Looks for the assignment and says whether it would be created or deleted; writes nothing.
  diff_mode:
    support: full
    details: The assignment before and after (absent is an empty dict).
  idempotent:
    support: full
    details: An assignment of the same role to the same principal at the same scope is found and left alone.
seealso:
  - module: fleetops.vmss.user_assigned_identity
"""

EXAMPLES = r"""
- name: Let the image builder identity publish into the gallery's resource group (never the subscription)
  fleetops.vmss.role_assignment:
    scope: /subscriptions/{{ sub }}/resourceGroups/images-prod
    role_definition_name: Contributor
    principal_id: "{{ builder.user_assigned_identity.principal_id }}"
    principal_type: ServicePrincipal

- name: Revoke it
  fleetops.vmss.role_assignment:
    scope: /subscriptions/{{ sub }}/resourceGroups/images-prod
    role_definition_name: Contributor
    principal_id: "{{ builder.user_assigned_identity.principal_id }}"
    state: absent
"""

RETURN = r"""
role_assignment:
  description: The assignment (C(id), C(name), C(scope), C(role_definition_id), C(principal_id), C(principal_type)); None when absent.
  returned: always
  type: dict
  sample:
    id: /subscriptions/0000/resourceGroups/images-prod/providers/Microsoft.Authorization/roleAssignments/3f2b9c7e-0000-0000-0000-000000000000
    name: 3f2b9c7e-0000-0000-0000-000000000000
    scope: /subscriptions/0000/resourceGroups/images-prod
    role_definition_id: /subscriptions/0000/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c
    principal_id: 7f3c1e62-0000-0000-0000-000000000000
    principal_type: ServicePrincipal
arm_requests:
  description: The number of requests sent to Azure Resource Manager.
  returned: always
  type: int
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _rbac as rbac
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import as_dict

ARGUMENT_SPEC = dict(
    scope=dict(type="str", required=True),
    principal_id=dict(type="str", required=True),
    principal_type=dict(type="str", choices=["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"]),
    role_definition_name=dict(type="str"),
    role_definition_id=dict(type="str"),
    description=dict(type="str"),
    name=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


def resolve_role(module, authorization, params):
    """The role definition's full ID, from its name (looked up at the scope) or its ID or GUID."""
    if params["role_definition_id"]:
        given = params["role_definition_id"]
        if rbac.is_guid(given):
            return rbac.role_definition_id(module.subscription_id, given)
        if rbac.role_guid(given) is None:
            module.fail_json(msg="role_definition_id %r is neither a role definition ID nor a GUID." % given)
        return given
    role = params["role_definition_name"]
    with arm_errors("look up", "role %r at scope %s" % (role, params["scope"])):
        found = [as_dict(item) for item in
                 authorization.role_definitions.list(params["scope"], filter="roleName eq '%s'" % role.replace("'", "''"))]
    if len(found) != 1:
        module.fail_json(msg="No role named %r is defined at scope %s%s." % (
            role, params["scope"], "" if not found else " (%s match)" % len(found)))
    return found[0]["id"]


def main():
    module = AzureModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                         mutually_exclusive=[("role_definition_name", "role_definition_id")],
                         required_one_of=[("role_definition_name", "role_definition_id")])
    try:
        params = module.params
        if params["name"] and not rbac.is_guid(params["name"]):
            module.fail_json(msg="name %r is not a GUID (Azure names role assignments by GUID)." % params["name"])
        params["scope"] = "/" + params["scope"].strip("/")
        authorization = module.client("authorization")
        scope, principal = params["scope"], params["principal_id"]

        # current state: an assignment of that role to that principal at exactly that scope
        role_id = resolve_role(module, authorization, params)
        what = "role assignment of %s to %s at %s" % (params["role_definition_name"] or rbac.role_guid(role_id), principal,
                                                      scope)
        with arm_errors("list", "role assignments at %s" % scope):
            listed = [as_dict(item) for item in
                      authorization.role_assignments.list_for_scope(scope, filter="principalId eq '%s'" % principal)]
        current = rbac.find_assignment(listed, scope, role_id, principal)

        # act (or, in check mode, describe)
        after = current
        if params["state"] == "absent" and current is not None:
            after = None
            if not module.check_mode:
                with arm_errors("delete", what):
                    authorization.role_assignments.delete(current.get("scope") or scope, current["name"])
        elif params["state"] == "present" and current is None:
            name = params["name"] or rbac.assignment_name(scope, role_id, principal)
            props = {"roleDefinitionId": role_id, "principalId": principal}
            if params["principal_type"]:
                props["principalType"] = params["principal_type"]
            if params["description"]:
                props["description"] = params["description"]
            if module.check_mode:
                after = {"id": "%s/providers/Microsoft.Authorization/roleAssignments/%s" % (scope.rstrip("/"), name),
                         "name": name, "scope": scope, "role_definition_id": role_id, "principal_id": principal,
                         "principal_type": params["principal_type"]}
            else:
                with arm_errors("create", what):
                    after = as_dict(authorization.role_assignments.create(scope, name, {"properties": props}))

        # result
        changed = (current is None) != (after is None)
        result = dict(changed=changed, role_assignment=resource_result(after) if after else None,
                      arm_requests=module.arm_requests)
        if module.diff_mode:
            result["diff"] = {"before": resource_result(current) if current else {},
                              "after": resource_result(after) if after else {}}
        module.exit_json(**result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
