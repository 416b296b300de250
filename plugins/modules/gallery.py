#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery
short_description: Create, update and delete Azure Compute Galleries
version_added: 0.1.0
description:
  - Creates an Azure Compute Gallery (formerly Shared Image Gallery), changes its description and tags, or deletes it.
  - Only the options you set are sent and compared; an option left out stays as it is in Azure.
  - A gallery cannot move to another region; a different O(location) fails before anything is written.
  - Azure refuses to delete a gallery that still holds image definitions; delete them first
    (M(fleetops.vmss.gallery_image) with O(fleetops.vmss.gallery_image#module:state=absent)).
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the gallery.
    type: str
    required: true
  name:
    description: The gallery's name (letters, digits, dots and underscores).
    type: str
    required: true
  state:
    description: V(present) creates or updates the gallery; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - The Azure region. If not set when creating, the resource group's region.
      - Checked, before anything is written, against the subscription's regions.
      - Cannot be changed on an existing gallery.
    type: str
  description:
    description: The gallery's description.
    type: str
  tags:
    description:
      - Resource tags. Only the tags you list are compared and set; others stay unless O(purge_tags=true).
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
    details: Reads the gallery and returns what would change; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ.
  idempotent:
    support: full
    details: A second run with the same options reads the gallery, finds no difference and sends no write.
seealso:
  - module: fleetops.vmss.gallery_info
  - module: fleetops.vmss.gallery_image
  - name: Galleries - Create Or Update (REST API)
    description: The resource this module manages.
    link: https://learn.microsoft.com/rest/api/compute/galleries/create-or-update
"""

EXAMPLES = r"""
- name: The gallery the bake pipeline publishes into
  fleetops.vmss.gallery:
    resource_group: images-prod
    name: golden
    location: westeurope
    description: Hardened images for the payments fleet
    tags: {team: platform}

- name: Delete it (its image definitions must be gone)
  fleetops.vmss.gallery:
    resource_group: images-prod
    name: golden
    state: absent
"""

RETURN = r"""
gallery:
  description:
    - The gallery in snake_case with C(properties) flattened, as M(fleetops.vmss.gallery_info) returns it.
    - In check mode, as it is or as it would be created; None once deleted.
  returned: always
  type: dict
  sample:
    id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/golden
    name: golden
    resource_group: images-prod
    location: westeurope
    description: Hardened images for the payments fleet
    identifier: {unique_name: 00000000-0000-0000-0000-000000000000-GOLDEN}
    provisioning_state: Succeeded
    tags: {team: platform}
changes:
  description: The options that differ (and were, or in check mode would be, changed); empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["description", "tags.team"]
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and operation polls included.
  returned: always
  type: int
  sample: 3
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._compare import compare, prune
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import (
    deleted_diff, diff, long_running, preview, read)
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions, region_key
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import resource_group_location
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    description=dict(type="str"),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)
GALLERY_TYPE = "Microsoft.Compute/galleries"


def describe(params):
    return "gallery %s/%s" % (params["resource_group"], params["name"])


def gallery_id(subscription_id, params):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/%s" % (
        subscription_id, params["resource_group"], params["name"])


def main():
    module = AzureModule(names=dict(name="gallery"), argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        deadline = Deadline(params["wait_timeout"])
        compute = module.client("compute")
        operations = compute.galleries
        rg, name, what = params["resource_group"], params["name"], describe(params)

        # current state
        current = read(what, lambda: operations.get(rg, name))

        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                long_running("delete", what, lambda: operations.begin_delete(rg, name), deadline, params["wait"])
            module.exit_json(changed=current is not None, gallery=None, changes=["state"] if current else [],
                             arm_requests=module.arm_requests, **deleted_diff(module, current is not None))

        # desired state, and the difference
        desired = prune({"location": params["location"] and region_key(params["location"]),
                         "description": params["description"], "tags": params["tags"]})
        tracker = compare(desired, gallery.gallery_options(current),
                          gallery.gallery_rules(params["purge_tags"]) if current else {"tags": "map"})
        if current is not None:
            errors = gallery.immutable_errors(tracker, ("location",), what,
                                              "a gallery cannot move; create a new gallery in that region")
            if errors:
                module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                                 arm_requests=module.arm_requests)

        # act (or, in check mode, describe)
        after = current
        if current is None:
            location = desired.get("location")
            if not location:
                with arm_errors("get", "resource group %s" % rg):
                    location = resource_group_location(compute, module.subscription_id, rg)
            else:
                check_regions(module, compute, [location], "location")
            body = gallery.gallery_create_body(desired, location)
            if module.check_mode:
                after = preview(body, gallery_id(module.subscription_id, params), name, GALLERY_TYPE)
            else:
                after = long_running("create", what, lambda: operations.begin_create_or_update(rg, name, body),
                                     deadline, params["wait"])
        elif tracker and not module.check_mode:
            body = gallery.gallery_update_body(tracker, desired, current, params["purge_tags"])
            after = long_running("update", what, lambda: operations.begin_update(rg, name, body),
                                 deadline, params["wait"])
        if after is None:  # wait: false, as Azure has it now
            after = read(what, lambda: operations.get(rg, name))

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(),
                         gallery=resource_result(after) if after else None, arm_requests=module.arm_requests,
                         **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
