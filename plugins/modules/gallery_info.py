#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery_info
short_description: Read Azure Compute Galleries
version_added: 0.1.0
description:
  - Returns one gallery, the galleries of a resource group, or every gallery of the subscription.
  - Returns O(ignore:galleries=[]) when nothing matches, including when the resource group does not exist.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group to look in. If not set, the whole subscription is listed.
    type: str
  name:
    description: The name of one gallery. Requires O(resource_group).
    type: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.gallery
  - module: fleetops.vmss.gallery_image_info
"""

EXAMPLES = r"""
- name: Read the golden-image gallery
  fleetops.vmss.gallery_info:
    resource_group: images-prod
    name: golden
  register: found

- name: Every gallery of the subscription
  fleetops.vmss.gallery_info:
"""

RETURN = r"""
galleries:
  description:
    - The galleries found, each in the shape M(fleetops.vmss.gallery) returns (snake_case, C(properties) flattened).
  returned: always
  type: list
  elements: dict
  sample:
    - id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/golden
      name: golden
      resource_group: images-prod
      location: westeurope
      description: Hardened images for the payments fleet
      provisioning_state: Succeeded
"""

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found


def read_galleries(operations, resource_group, name):
    if name:
        found = ignore_not_found(lambda: operations.get(resource_group, name))
        return [found] if found is not None else []
    if resource_group:
        return ignore_not_found(lambda: list(operations.list_by_resource_group(resource_group)), default=[])
    return list(operations.list())


def main():
    module = AzureModule(names=dict(name="gallery"), argument_spec=dict(resource_group=dict(type="str"), name=dict(type="str")),
                         required_by=dict(name="resource_group"), supports_check_mode=True)
    try:
        resource_group, name = module.params["resource_group"], module.params["name"]
        compute = module.client("compute")
        what = ("gallery %s/%s" % (resource_group, name) if name else
                "galleries in resource group %s" % resource_group if resource_group else "galleries in the subscription")
        with arm_errors("get" if name else "list", what):
            found = read_galleries(compute.galleries, resource_group, name)
        module.exit_json(changed=False, galleries=[resource_result(item) for item in found])
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
