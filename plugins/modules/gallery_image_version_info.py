#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery_image_version_info
short_description: Read gallery image versions, their replication, and what C(latest) means in a region
version_added: 0.1.0
description:
  - Returns one version or every version of an image definition, ordered by version number, each with its
    replication status per region (state and progress).
  - With O(latest_for_region), also resolves what C(latest) means in that region, as Azure does when a VM or
    scale set asks for version C(latest) there - the highest version number that is not excluded from latest
    (globally or for that region) and whose replication to that region has C(Completed).
  - Returns O(ignore:gallery_image_versions=[]) when nothing matches, including when the definition does not exist.
  - Costs one request per version (Azure returns replication status only for one version at a time).
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the gallery.
    type: str
    required: true
  gallery_name:
    description: The gallery.
    type: str
    required: true
  gallery_image_name:
    description: The image definition.
    type: str
    required: true
  name:
    description: One version. If not set, every version of the definition.
    type: str
  latest_for_region:
    description:
      - A region (V(westeurope)) to resolve C(latest) in; the answer is RV(latest_for_region).
      - Only the versions read take part, so leave O(name) unset to resolve across every version.
    type: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.gallery_image_version
"""

EXAMPLES = r"""
- name: What latest means in westeurope now
  fleetops.vmss.gallery_image_version_info:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    latest_for_region: westeurope
  register: versions

- name: Fail unless the demoted 1.7.0 is no longer latest
  ansible.builtin.assert:
    that: versions.latest_for_region.name != '1.7.0'

- name: Watch a replication until every region has Completed
  fleetops.vmss.gallery_image_version_info:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    name: 1.7.1
  register: watched
  until: watched.gallery_image_versions[0].replication_status.aggregated_state != 'InProgress'
  retries: 60
  delay: 60
"""

RETURN = r"""
gallery_image_versions:
  description:
    - The versions found, ordered by version number, each in the shape M(fleetops.vmss.gallery_image_version)
      returns, with C(replication_status) (C(aggregated_state), and per region C(region), C(state), C(progress), C(details)).
    - Region names are region keys (V(eastus2)); Azure answers with display names (V(East US 2)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: 1.7.0
      publishing_profile:
        exclude_from_latest: true
        target_regions: [{name: westeurope, regional_replica_count: 2, storage_account_type: Standard_LRS}]
      replication_status:
        aggregated_state: Completed
        summary: [{region: westeurope, state: Completed, progress: 100, details: ""}]
      provisioning_state: Succeeded
latest_for_region:
  description:
    - The version C(latest) resolves to in O(latest_for_region) (C(region), C(name), C(id)); None when no version
      qualifies (a VM asking for C(latest) there would fail).
  returned: when O(latest_for_region) is set
  type: dict
  sample:
    region: westeurope
    name: 1.6.2
    id: /subscriptions/0000/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/golden/images/payments-api/versions/1.6.2
transient:
  description:
    - C(true) when the module failed on a fault that outlasted the SDK's retries (HTTP 429, 409, any 5xx, a refused,
      dropped or timed-out connection) - an interruption, not Azure's answer on what was asked; the same task run again
      resumes. The roles read it so that such a fault never demotes an image version.
  returned: on such a failure only
  type: bool
  sample: true
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import region_key


def main():
    module = AzureModule(argument_spec=dict(resource_group=dict(type="str", required=True),
                                            gallery_name=dict(type="str", required=True),
                                            gallery_image_name=dict(type="str", required=True),
                                            name=dict(type="str"), latest_for_region=dict(type="str")),
                         supports_check_mode=True)
    try:
        params = module.params
        rg, gallery_name, image, name = (params[key] for key in ("resource_group", "gallery_name", "gallery_image_name",
                                                                 "name"))
        operations = module.client("compute").gallery_image_versions
        what = ("gallery image version %s/%s/%s/%s" % (rg, gallery_name, image, name) if name else
                "versions of gallery image %s/%s/%s" % (rg, gallery_name, image))
        with arm_errors("get" if name else "list", what):
            versions = gallery.read_versions(operations, rg, gallery_name, image, name)

        result = dict(changed=False, gallery_image_versions=[resource_result(gallery.with_region_keys(version))
                                                             for version in versions])
        if params["latest_for_region"]:
            latest = gallery.latest_for_region(versions, params["latest_for_region"])
            result["latest_for_region"] = {"region": region_key(params["latest_for_region"]), "name": latest["name"],
                                           "id": latest["id"]} if latest else None
        module.exit_json(**result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
