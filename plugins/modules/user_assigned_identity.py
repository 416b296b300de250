#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: user_assigned_identity
short_description: Create, update and delete user-assigned managed identities
version_added: 0.1.0
description:
  - Creates a user-assigned managed identity (such as the one Azure VM Image Builder runs as), changes its tags,
    or deletes it. Returns its C(principal_id) (for role assignments) and C(client_id).
  - Azure creates and deletes identities synchronously, so this module has no C(wait) options.
  - Deleting an identity leaves its role assignments behind (Azure does not remove them); remove them first with
    M(fleetops.vmss.role_assignment).
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the identity.
    type: str
    required: true
  name:
    description: The identity's name.
    type: str
    required: true
  state:
    description: V(present) creates or updates the identity; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  location:
    description: The region. If not set when creating, the resource group's region. Cannot be changed.
    type: str
  tags:
    description: Resource tags. Only the tags you list are compared and set; others stay unless O(purge_tags=true).
    type: dict
  purge_tags:
    description: Remove the tags that O(tags) does not list.
    type: bool
    default: false
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the identity and returns what would change; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ.
  idempotent:
    support: full
    details: A second run with the same options reads the identity, finds no difference and sends no write.
seealso:
  - module: fleetops.vmss.role_assignment
  - module: fleetops.vmss.image_template
"""

EXAMPLES = r"""
- name: The identity Image Builder runs as
  fleetops.vmss.user_assigned_identity:
    resource_group: images-prod
    name: image-builder
  register: builder

- name: Let it publish into the gallery's resource group
  fleetops.vmss.role_assignment:
    scope: /subscriptions/{{ sub }}/resourceGroups/images-prod
    role_definition_name: Contributor
    principal_id: "{{ builder.user_assigned_identity.principal_id }}"
    principal_type: ServicePrincipal
"""

RETURN = r"""
user_assigned_identity:
  description: The identity (C(id), C(name), C(location), C(principal_id), C(client_id), C(tenant_id), C(tags)); None once deleted.
  returned: always
  type: dict
  sample:
    id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/images-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/image-builder
    name: image-builder
    resource_group: images-prod
    location: westeurope
    principal_id: 7f3c1e62-0000-0000-0000-000000000000
    client_id: 2b9d0c41-0000-0000-0000-000000000000
    tenant_id: 72f988bf-0000-0000-0000-000000000000
changes:
  description: The options that differ (and were, or in check mode would be, changed).
  returned: always
  type: list
  elements: str
arm_requests:
  description: The number of requests sent to Azure Resource Manager.
  returned: always
  type: int
"""

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._compare import compare, prune
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._gallery import immutable_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import as_dict, deleted_diff, diff, preview, read
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions, region_key
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import resource_group_location, tags_rule, tags_to_send

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)
IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


def describe(params):
    return "user-assigned identity %s/%s" % (params["resource_group"], params["name"])


def options_of(identity):
    return {"location": region_key(identity.get("location")), "tags": identity.get("tags") or {}} if identity else {}


def main():
    module = AzureModule(names=dict(name="user_assigned_identity"), argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        params = module.params
        identities = module.client("msi").user_assigned_identities
        rg, name, what = params["resource_group"], params["name"], describe(params)

        # current state
        current = read(what, lambda: identities.get(rg, name))

        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                with arm_errors("delete", what):
                    identities.delete(rg, name)
            module.exit_json(changed=current is not None, user_assigned_identity=None,
                             changes=["state"] if current else [], arm_requests=module.arm_requests,
                             **deleted_diff(module, current is not None))

        # desired state and the difference
        desired = prune({"location": params["location"] and region_key(params["location"]), "tags": params["tags"]})
        tracker = compare(desired, options_of(current),
                          {"location": "location", "tags": tags_rule(params["purge_tags"]) if current else "map"})
        errors = immutable_errors(tracker, ("location",), what, "an identity cannot move; create another") if current else []
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)

        # act (or, in check mode, describe); identities are written synchronously
        after = current
        if current is None:
            location = desired.get("location")
            if location:
                check_regions(module, module.client("msi"), [location], "location")
            else:
                with arm_errors("get", "resource group %s" % rg):
                    location = resource_group_location(module.client("msi"), module.subscription_id, rg)
            body = {"location": location, "tags": dict(desired.get("tags") or {})}
            if module.check_mode:
                after = preview(body, "/subscriptions/%s/resourceGroups/%s/providers/%s/%s"
                                % (module.subscription_id, rg, IDENTITY_TYPE, name), name, IDENTITY_TYPE)
            else:
                with arm_errors("create", what):
                    after = as_dict(identities.create_or_update(rg, name, body))
        elif tracker and not module.check_mode:
            with arm_errors("update", what):
                tags = tags_to_send(desired.get("tags"), current.get("tags"), params["purge_tags"])
                after = as_dict(identities.update(rg, name, {"tags": tags}))

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(),
                         user_assigned_identity=resource_result(after), arm_requests=module.arm_requests,
                         **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
