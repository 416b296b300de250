#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: location_info
short_description: List the Azure regions a subscription can use, and check region names
version_added: 0.1.0
description:
  - Returns the subscription's locations (ARM C(Subscriptions - List Locations)). Where the cloud does not answer
    that request, or the caller may not read it, returns the physical regions of Azure public cloud, Azure Government
    and Azure China built into the collection, and says so in RV(source).
  - With O(names), reports which of them are not regions (RV(unknown)), with a suggestion for likely typos, so that a
    playbook can stop before it writes anything. The state modules of this collection make the same check themselves
    before they write.
author:
  - FleetOps maintainers (@fleetops)
options:
  names:
    description: Region names to check (V(westeurope), V(West Europe)).
    type: list
    elements: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.gallery_image_version
"""

EXAMPLES = r"""
- name: Check the regions of a bake before anything is created
  fleetops.vmss.location_info:
    names: "{{ [canary_region] + other_regions }}"
  register: regions

- name: Stop on a typo
  ansible.builtin.assert:
    that: regions.unknown | length == 0
    fail_msg: "{{ regions.msg }}"
"""

RETURN = r"""
locations:
  description: The regions (C(name), C(display_name)).
  returned: always
  type: list
  elements: dict
  sample: [{name: westeurope, display_name: West Europe}]
source:
  description: V(subscription) (the subscription's locations) or V(built_in) (the collection's list).
  returned: always
  type: str
unknown:
  description: The names of O(names) that are not regions.
  returned: always
  type: list
  elements: str
suggestions:
  description: For each unknown name with a close region name, that name.
  returned: always
  type: dict
  sample: {westeurpoe: westeurope}
msg:
  description: The check in one sentence.
  returned: always
  type: str
"""

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import KNOWN_REGIONS, unknown_message, unknown_regions
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import subscription_locations


def main():
    module = AzureModule(argument_spec=dict(names=dict(type="list", elements="str")), supports_check_mode=True)
    try:
        with arm_errors("list", "the locations of subscription %s" % module.subscription_id):
            locations = subscription_locations(module.client("compute"), module.subscription_id)
        source = "subscription" if locations else "built_in"
        if not locations:
            locations = [{"name": name, "display_name": None} for name in sorted(KNOWN_REGIONS)]
        unknown = unknown_regions(module.params["names"] or [], [item["name"] for item in locations])
        if unknown:
            msg = unknown_message("names", unknown, "the subscription's locations" if source == "subscription"
                                  else "the Azure regions built into the collection")
        else:
            msg = "%s region name(s) checked; all known." % len(module.params["names"] or [])
        module.exit_json(changed=False, locations=locations, source=source, unknown=[name for name, _hint in unknown],
                         suggestions={name: hint for name, hint in unknown if hint}, msg=msg)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
