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
  include:
    description:
      - More to read for each scale set found, one or two requests each.
      - V(instance_view) adds RV(scale_sets[].instance_view) (instance status counts, from the scale set's instance view).
        On a B(Flexible) scale set Azure refuses the scale-set instance view, so the counts are made from one paged
        list of its VMs with their own instance views (C($expand=instanceView)).
      - V(rolling_upgrade) adds RV(scale_sets[].rolling_upgrade), the latest rolling upgrade, None when there has been none.
      - V(os_upgrade_history) adds RV(scale_sets[].os_upgrade_history), the automatic OS upgrades (every page).
    type: list
    elements: str
    choices: [instance_view, rolling_upgrade, os_upgrade_history]
    default: []
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

- name: One scale set with its instance counts by status and its latest rolling upgrade
  fleetops.vmss.scale_set_info:
    resource_group: payments-prod
    name: payments-api
    include: [instance_view, rolling_upgrade]
  register: status

- name: Stop when the last rolling upgrade failed
  ansible.builtin.assert:
    that: status.scale_sets[0].rolling_upgrade is none or status.scale_sets[0].rolling_upgrade.running_status.code != 'Faulted'

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
    instance_view:
      description:
        - The scale set's instance view, summarised.
        - On a Flexible scale set, made from its VMs' instance views; C(statuses) and C(orchestration_services)
          are None there (only the scale-set instance view, which Azure refuses on Flexible, has them).
      type: dict
      returned: when O(include) has V(instance_view)
      contains:
        statuses_summary:
          description: How many instances have each provisioning status code.
          type: list
          elements: dict
          sample: [{code: ProvisioningState/succeeded, count: 9}, {code: ProvisioningState/failed/VMExtensionProvisioningError, count: 1}]
        extensions:
          description: Per extension, how many instances have each status code.
          type: list
          elements: dict
          sample: [{name: HealthExtension, statuses_summary: [{code: ProvisioningState/succeeded, count: 10}]}]
        statuses:
          description: The scale set's own statuses; None on a Flexible scale set.
          type: list
          elements: dict
        orchestration_services:
          description: Orchestration services (automatic repairs) and their state; None on a Flexible scale set.
          type: list
          elements: dict
    rolling_upgrade:
      description:
        - The latest rolling upgrade (C(policy), C(running_status) with C(code) and times, C(progress) counts,
          C(error)); None when the scale set has had none.
      type: dict
      returned: when O(include) has V(rolling_upgrade)
      sample:
        running_status: {code: Completed, start_time: "2026-01-05T10:00:00Z", last_action: Start}
        progress: {successful_instance_count: 10, failed_instance_count: 0, in_progress_instance_count: 0, pending_instance_count: 0}
    os_upgrade_history:
      description: The automatic OS image upgrades of the scale set, newest first as Azure lists them.
      type: list
      elements: dict
      returned: when O(include) has V(os_upgrade_history)
transient:
  description:
    - C(true) when the module failed on a fault that outlasted the SDK's retries (HTTP 429, 409, any 5xx, a refused,
      dropped or timed-out connection) - an interruption, not Azure's answer on what was asked; the same task run again
      resumes. The roles read it so that such a fault never demotes an image version.
  returned: on such a failure only
  type: bool
  sample: true
arm_requests:
  description: The number of requests sent to Azure Resource Manager (every page counts).
  returned: always
  type: int
  sample: 1
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result, snake
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found
from ansible_collections.fleetops.vmss.plugins.module_utils._rolling_upgrade import read_latest


def read_scale_sets(operations, resource_group, name):
    """The scale sets asked for, [] when absent (a missing resource group included)."""
    if name:
        found = ignore_not_found(lambda: operations.get(resource_group, name))
        return [found] if found is not None else []
    if resource_group:
        return ignore_not_found(lambda: list(operations.list(resource_group)), default=[])
    return list(operations.list_all())


def details(compute, scale_set, include, resource):
    """The extra reads of ``include`` for one scale set (a snake_case result dict, updated in place);
    ``resource`` is the scale set as REST."""
    resource_group, name = scale_set["resource_group"], scale_set["name"]
    if "instance_view" in include and instances.is_flexible(resource):
        # Azure refuses the scale-set instance view on Flexible sets: summarise the VMs' own views instead.
        scale_set["instance_view"] = instances.flexible_instance_view(
            instances.iter_instances(compute, resource_group, name, resource, instance_view=True))
    elif "instance_view" in include:
        view = snake(compute.virtual_machine_scale_sets.get_instance_view(resource_group, name))
        summary = (view.get("virtual_machine") or {}).get("statuses_summary") or []
        scale_set["instance_view"] = {"statuses_summary": summary, "extensions": view.get("extensions") or [],
                                      "statuses": view.get("statuses") or [],
                                      "orchestration_services": view.get("orchestration_services") or []}
    if "rolling_upgrade" in include:
        scale_set["rolling_upgrade"] = read_latest(compute, resource_group, name)
    if "os_upgrade_history" in include:
        scale_set["os_upgrade_history"] = [snake(item) for item in
                                           compute.virtual_machine_scale_sets.get_os_upgrade_history(resource_group, name)]
    return scale_set


def describe(resource_group, name):
    if name:
        return "scale set %s/%s" % (resource_group, name)
    if resource_group:
        return "scale sets in resource group %s" % resource_group
    return "scale sets in the subscription"


def main():
    module = AzureModule(
        names=dict(name="scale_set"),
        argument_spec=dict(resource_group=dict(type="str"), name=dict(type="str"),
                           include=dict(type="list", elements="str", default=[],
                                        choices=["instance_view", "rolling_upgrade", "os_upgrade_history"])),
        required_by=dict(name="resource_group"),
        supports_check_mode=True,
    )
    try:
        resource_group, name = module.params["resource_group"], module.params["name"]

        compute = module.client("compute")
        with arm_errors("get" if name else "list", describe(resource_group, name)):
            found = read_scale_sets(compute.virtual_machine_scale_sets, resource_group, name)

        results = [resource_result(scale_set) for scale_set in found]
        for scale_set, resource in zip(results, found) if module.params["include"] else []:
            with arm_errors("read the status of", describe(scale_set["resource_group"], scale_set["name"])):
                details(compute, scale_set, module.params["include"], resource.as_dict())

        module.exit_json(changed=False, scale_sets=results, arm_requests=module.arm_requests)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
