#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: resource_group
short_description: Create, tag and delete Azure resource groups
version_added: 0.1.0
description:
  - Creates a resource group, changes its tags, or deletes it - refusing, unless O(force_delete_nonempty=true),
    when it still holds resources.
  - A minimal module so that playbooks of this collection (the C(site.yml) demo) can start from an empty subscription;
    it sends ARM requests through the same pipeline as the others, without another SDK.
  - A resource group cannot move to another region; a different O(location) fails before anything is written.
author:
  - FleetOps maintainers (@fleetops)
options:
  name:
    description: The resource group's name.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates it; V(absent) deletes it.
      - V(absent) first lists the resources in the group; when there are any it fails, naming how many and which,
        before anything is written - unless O(force_delete_nonempty=true).
    type: str
    choices: [present, absent]
    default: present
  force_delete_nonempty:
    description:
      - With O(state=absent), delete the group B(and every resource in it) (its scale sets, networks, load
        balancers, galleries, ...). Without it a group that holds resources is not deleted.
      - The name M(azure.azcollection.azure_rm_resourcegroup) uses.
    type: bool
    default: false
  location:
    description: The region of its metadata. Required to create.
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
  - fleetops.vmss.azure.wait
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the resource group and returns what would change; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ.
  idempotent:
    support: full
    details: A second run with the same options reads the resource group, finds no difference and sends no write.
"""

EXAMPLES = r"""
- name: The resource group of the image pipeline
  fleetops.vmss.resource_group:
    name: images-prod
    location: westeurope
    tags: {team: platform}

- name: Delete a scratch resource group, whatever it still holds
  fleetops.vmss.resource_group:
    name: scratch-payments
    state: absent
    force_delete_nonempty: true
"""

RETURN = r"""
resource_group:
  description: The resource group (C(id), C(name), C(location), C(tags), C(provisioning_state)); None once deleted.
  returned: always
  type: dict
resources:
  description:
    - With O(state=absent), the resources the group held (C(id), C(name), C(type)), deleted with it - or, when it
      was refused, the reason it was not deleted.
  returned: when O(state=absent) and the group existed
  type: list
  elements: dict
  sample: [{id: /subscriptions/0000/resourceGroups/scratch/providers/Microsoft.Network/virtualNetworks/vnet,
            name: vnet, type: Microsoft.Network/virtualNetworks}]
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

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, snake
from ansible_collections.fleetops.vmss.plugins.module_utils._compare import compare, prune
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._gallery import immutable_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import deleted_diff, diff
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions, region_key
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import RESOURCE_GROUP_API_VERSION, tags_rule, tags_to_send
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, wait_until

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
    force_delete_nonempty=dict(type="bool", default=False),
)


class ResourceGroups:
    """GET, PUT and DELETE of one resource group through an SDK client's ARM pipeline."""

    def __init__(self, module, name):
        self.client = module.client("compute")
        self.path = "/subscriptions/%s/resourcegroups/%s" % (module.subscription_id, name)

    def send(self, method, body=None, url=None):
        from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

        request = HttpRequest(method, url or "%s?api-version=%s" % (self.path, RESOURCE_GROUP_API_VERSION), json=body)
        response = self.client.send_request(request)
        if response.status_code >= 400 and not (method == "GET" and response.status_code == 404):
            from azure.core.exceptions import HttpResponseError  # pylint: disable=import-outside-toplevel
            from azure.mgmt.core.exceptions import ARMErrorFormat  # pylint: disable=import-outside-toplevel

            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return response

    def get(self):
        response = self.send("GET")
        return response.json() if response.status_code == 200 else None

    def resources(self):
        """The resources in the group (Resources_ListByResourceGroup, every page)."""
        found, url = [], "%s/resources?api-version=%s" % (self.path, RESOURCE_GROUP_API_VERSION)
        while url:
            body = self.send("GET", url=url).json()
            found += [{"id": r["id"], "name": r["name"], "type": r["type"]} for r in body.get("value") or []]
            url = body.get("nextLink")
        return found


def nonempty_message(what, resources):
    """'resource group x holds 23 resources: 20 Microsoft.Compute/virtualMachines (vm-0, vm-1, ...), ...'"""
    by_type = {}
    for resource in resources:
        by_type.setdefault(resource["type"], []).append(resource["name"])
    kinds = ", ".join("%d %s (%s%s)" % (len(names), kind, ", ".join(names[:3]), ", ..." if len(names) > 3 else "")
                      for kind, names in sorted(by_type.items(), key=lambda item: (-len(item[1]), item[0])))
    return ("%s holds %d resource(s): %s. Nothing was deleted; set force_delete_nonempty: true to delete the group "
            "with everything in it." % (what, len(resources), kinds))


def main():
    module = AzureModule(names=dict(name="resource_group"), argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        deadline = Deadline(params["wait_timeout"])
        what = "resource group %s" % params["name"]
        groups = ResourceGroups(module, params["name"])

        # current state
        with arm_errors("get", what):
            current = groups.get()

        if params["state"] == "absent":
            resources = []
            if current is not None:
                with arm_errors("list the resources of", what):
                    resources = groups.resources()
                if resources and not params["force_delete_nonempty"]:
                    module.fail_json(msg=nonempty_message(what, resources), resources=resources,
                                     arm_requests=module.arm_requests)
            if current is not None and not module.check_mode:
                with arm_errors("delete", what):
                    response = groups.send("DELETE")
                    location = response.headers.get("Location")
                    if response.status_code == 202 and location and params["wait"]:
                        wait_until(lambda: groups.send("GET", url=location).status_code != 202,
                                   timeout=deadline.remaining(), sleep=params["wait_sleep"], what="deletion of %s" % what)
            result_diff = deleted_diff(module, current is not None)
            if result_diff:
                result_diff["diff"]["before"]["resources"] = [resource["id"] for resource in resources]
            module.exit_json(changed=current is not None, resource_group=None, changes=["state"] if current else [],
                             resources=resources, arm_requests=module.arm_requests, **result_diff)

        # desired state and the difference
        desired = prune({"location": params["location"] and region_key(params["location"]), "tags": params["tags"]})
        have = {"location": region_key(current["location"]), "tags": current.get("tags") or {}} if current else {}
        tracker = compare(desired, have, {"location": "location",
                                          "tags": tags_rule(params["purge_tags"]) if current else "map"})
        errors = immutable_errors(tracker, ("location",), what, "a resource group cannot move") if current else []
        if current is None and not desired.get("location"):
            errors.append("To create %s, set location." % what)
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)

        # act (or, in check mode, describe)
        after = current
        if current is None:
            check_regions(module, groups.client, [desired["location"]], "location")
            body = {"location": desired["location"], "tags": dict(desired.get("tags") or {})}
            after = dict(body, name=params["name"], id=groups.path)
            if not module.check_mode:
                with arm_errors("create", what):
                    after = groups.send("PUT", body).json()
        elif tracker and not module.check_mode:
            with arm_errors("update", what):
                after = groups.send("PUT", {"location": current["location"], "tags": tags_to_send(
                    desired.get("tags"), current.get("tags"), params["purge_tags"])}).json()

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(),
                         resource_group=snake(after), arm_requests=module.arm_requests, **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
