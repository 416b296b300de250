#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scale_set_info
short_description: Read Azure virtual machine scale sets
version_added: 0.1.0
description:
  - Returns one virtual machine scale set, every scale set of a resource group, or every scale set
    of the subscription, with their model (SKU, upgrade policy, virtual machine profile, ...).
  - Returns O(ignore:scale_sets=[]) when nothing matches, including when the resource group does not exist.
  - Secrets (C(admin_password), extensions' C(protected_settings), C(custom_data)) are never returned.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description:
      - The resource group to look in. If not set, the whole subscription is listed.
    type: str
  name:
    description:
      - The name of one scale set. Requires O(resource_group).
    type: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - name: Virtual Machine Scale Sets - Get (REST API)
    description: The REST shape that RV(scale_sets) returns in snake_case.
    link: https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/get
"""

EXAMPLES = r"""
- name: Read one scale set
  fleetops.vmss.scale_set_info:
    resource_group: payments-prod
    name: payments-api
  register: result

- name: Show the image reference the scale-set model points at
  ansible.builtin.debug:
    msg: "{{ result.scale_sets[0].virtual_machine_profile.storage_profile.image_reference }}"

- name: Every scale set of a resource group
  fleetops.vmss.scale_set_info:
    resource_group: payments-prod

- name: Every scale set of the subscription, signed in with the Azure CLI
  fleetops.vmss.scale_set_info:
    auth_source: cli

- name: Set the credentials once for every module of the collection
  module_defaults:
    group/fleetops.vmss.vmss:
      subscription_id: "{{ azure_subscription_id }}"
      cloud_environment: AzureUSGovernment
  block:
    - name: Read the rollout target
      fleetops.vmss.scale_set_info:
        resource_group: payments-prod
        name: payments-api
"""

RETURN = r"""
scale_sets:
  description:
    - The scale sets found, in the order Azure lists them; empty when none matched.
    - Each is the REST resource in snake_case, with its C(properties) flattened into it.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The resource ID.
      type: str
      returned: always
      sample: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/payments-prod/providers/Microsoft.Compute/virtualMachineScaleSets/payments-api
    name:
      description: The scale set's name.
      type: str
      returned: always
      sample: payments-api
    resource_group:
      description: The resource group, from the ID.
      type: str
      returned: always
      sample: payments-prod
    location:
      description: The Azure region.
      type: str
      returned: always
      sample: westeurope
    sku:
      description: The VM size, tier and instance count.
      type: dict
      returned: always
      sample: {name: Standard_D2s_v5, tier: Standard, capacity: 10}
    zones:
      description: The availability zones the instances are spread over.
      type: list
      elements: str
      returned: when the scale set is zonal
      sample: ["1", "2", "3"]
    tags:
      description: Resource tags, keys exactly as set.
      type: dict
      returned: when set
      sample: {team: payments}
    etag:
      description: The entity tag, for conditional updates.
      type: str
      returned: when Azure returns it
    identity:
      description: The managed identities assigned to the scale set.
      type: dict
      returned: when set
    orchestration_mode:
      description: V(Uniform) or V(Flexible).
      type: str
      returned: always
      sample: Uniform
    upgrade_policy:
      description: How instances move to a new model (C(mode), C(rolling_upgrade_policy), C(automatic_os_upgrade_policy)).
      type: dict
      returned: when set
      sample: {mode: Rolling, rolling_upgrade_policy: {max_batch_instance_percent: 20, pause_time_between_batches: PT0S}}
    virtual_machine_profile:
      description: The instance model (OS, storage with C(image_reference), network, extensions, health probe).
      type: dict
      returned: when set
    provisioning_state:
      description: The provisioning state of the scale set.
      type: str
      returned: always
      sample: Succeeded
    unique_id:
      description: The ID Azure assigned to the scale set.
      type: str
      returned: always
"""

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import arm_errors, ignore_not_found


def read_scale_sets(operations, resource_group, name):
    """The scale sets asked for, [] when absent (a missing resource group included)."""
    if name:
        found = ignore_not_found(lambda: operations.get(resource_group, name))
        return [found] if found is not None else []
    if resource_group:
        return ignore_not_found(lambda: list(operations.list(resource_group)), default=[])
    return list(operations.list_all())


def describe(resource_group, name):
    if name:
        return "scale set %s/%s" % (resource_group, name)
    if resource_group:
        return "scale sets in resource group %s" % resource_group
    return "scale sets in the subscription"


def main():
    module = AzureModule(
        argument_spec=dict(resource_group=dict(type="str"), name=dict(type="str")),
        required_by=dict(name="resource_group"),
        supports_check_mode=True,
    )
    resource_group, name = module.params["resource_group"], module.params["name"]

    compute = module.client("compute")
    with arm_errors(module, "get" if name else "list", describe(resource_group, name)):
        found = read_scale_sets(compute.virtual_machine_scale_sets, resource_group, name)

    module.exit_json(changed=False, scale_sets=[resource_result(scale_set) for scale_set in found])


if __name__ == "__main__":
    main()
