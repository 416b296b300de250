#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scale_set_instance_info
short_description: Read the instances of an Azure virtual machine scale set, with health and model status
version_added: 0.1.0
description:
  - Returns every instance of a scale set with its placement (zone, update and fault domain), whether it runs
    the scale set's latest model, the image it actually runs, its provisioning, power and Application Health
    states, and its protection policy.
  - B(Uniform) scale sets are read with one paged list of the scale set's VMs, with C($expand=instanceView).
  - B(Flexible) scale sets are read with one paged list of the resource group's virtual machines filtered on
    the scale set (C($filter='virtualMachineScaleSet/id' eq '...'), C($expand=instanceView)).
  - So a 1000-instance scale set takes about ten requests (Azure's pages hold about 100), not a thousand;
    RV(arm_requests) says how many were made.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the scale set.
    type: str
    required: true
  name:
    description: The scale set's name.
    type: str
    required: true
  instance_view:
    description:
      - Read the instance views too (power state, health state, update and fault domains, errors).
      - With V(false), one lighter list; those fields are then None.
    type: bool
    default: true
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
notes:
  - Azure reports C(latestModelApplied) for Uniform instances only. For a Flexible VM, RV(instances[].latest_model_applied)
    is true when its image reference, VM size and extension definitions (publisher, type, handler version and public
    settings of each model extension, against the VM's C(resources)) are those of the scale set's model; a VM that
    reports no C(resources) is judged on image and size only.
  - Protection policies exist for Uniform instances; RV(instances[].protection) is None for Flexible VMs.
seealso:
  - module: fleetops.vmss.scale_set_instance
  - module: fleetops.vmss.scale_set_info
"""

EXAMPLES = r"""
- name: Read every instance of a scale set
  fleetops.vmss.scale_set_instance_info:
    resource_group: payments-prod
    name: payments-api
  register: fleet

- name: Instances still on the previous model, and unhealthy ones
  ansible.builtin.debug:
    msg:
      stale: "{{ fleet.instances | rejectattr('latest_model_applied') | map(attribute='instance_id') | list }}"
      unhealthy: "{{ fleet.instances | selectattr('health_state', 'equalto', 'Unhealthy') | map(attribute='instance_id') | list }}"
"""

RETURN = r"""
scale_set:
  description: The scale set's ID, orchestration mode and capacity.
  returned: when the scale set exists
  type: dict
  sample: {id: /subscriptions/.../virtualMachineScaleSets/payments-api, orchestration_mode: Uniform, capacity: 10}
instances:
  description: The instances, in the order Azure lists them; empty when the scale set does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance ID (Uniform, such as C(3)) or the VM name (Flexible); what M(fleetops.vmss.scale_set_instance) takes.
      type: str
      sample: "3"
    name:
      description: The VM's name.
      type: str
      sample: payments-api_3
    id:
      description: The VM's resource ID.
      type: str
    vm_id:
      description: The VM's unique ID.
      type: str
    computer_name:
      description: The guest's computer name.
      type: str
      sample: api000003
    zone:
      description: The availability zone, None for a regional scale set.
      type: str
      sample: "2"
    update_domain:
      description: The platform update domain.
      type: int
      sample: 1
    fault_domain:
      description: The platform fault domain.
      type: int
      sample: 0
    latest_model_applied:
      description: Whether the instance runs the scale set's current model.
      type: bool
      sample: true
    image:
      description: The image reference the instance runs, with C(exact_version) when Azure resolved C(latest).
      type: dict
      sample: {id: /subscriptions/.../galleries/golden/images/payments, exact_version: 1.7.1}
    vm_size:
      description: The VM size.
      type: str
      sample: Standard_D2s_v5
    priority:
      description: C(Regular) or C(Spot), when Azure reports it.
      type: str
    provisioning_state:
      description: C(Succeeded), C(Creating), C(Updating), C(Failed), C(Deleting).
      type: str
      sample: Succeeded
    power_state:
      description: C(running), C(starting), C(stopping), C(stopped), C(deallocating), C(deallocated); None without the instance view.
      type: str
      sample: running
    health_state:
      description: The Application Health state (C(Healthy), C(Unhealthy), C(Unknown), C(Initializing)); None without a health signal.
      type: str
      sample: Healthy
    protection:
      description: The protection policy (C(protect_from_scale_in), C(protect_from_scale_set_actions)), None when unprotected.
      type: dict
      sample: {protect_from_scale_in: true, protect_from_scale_set_actions: false}
    error:
      description: The C(code) and C(message) of a failed provisioning, None otherwise.
      type: dict
      sample: {code: VMExtensionProvisioningError, message: VM has reported a failure when processing extension 'HealthExtension'.}
    extensions:
      description:
        - The extensions the instance reports it runs (its C(resources)) - C(name), C(publisher), C(type),
          C(type_handler_version), C(auto_upgrade_minor_version), C(force_update_tag), C(settings) (public; protected
          settings are never returned by Azure) and C(provisioning_state); None when Azure reports no C(resources).
      type: list
      elements: dict
      sample: [{name: app, publisher: Microsoft.Azure.Extensions, type: CustomScript, type_handler_version: "2.1",
                settings: {fileUris: ["https://pkgs.example.com/app-1.4.0.tgz"]}, provisioning_state: Succeeded}]
arm_requests:
  description: The number of requests sent to Azure Resource Manager (every page counts).
  returned: always
  type: int
  sample: 11
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found


def main():
    module = AzureModule(
        names=dict(name="scale_set"),
        argument_spec=dict(resource_group=dict(type="str", required=True), name=dict(type="str", required=True),
                           instance_view=dict(type="bool", default=True)),
        supports_check_mode=True,
    )
    try:
        resource_group, name = module.params["resource_group"], module.params["name"]
        what = "scale set %s/%s" % (resource_group, name)
        compute = module.client("compute")

        with arm_errors("get", what):
            found = ignore_not_found(lambda: compute.virtual_machine_scale_sets.get(resource_group, name))
        if found is None:
            module.exit_json(changed=False, instances=[], arm_requests=module.arm_requests)
        scale_set = found.as_dict()

        with arm_errors("list the instances of", what):
            found = [instances.summary(vm, scale_set) for vm in instances.iter_instances(
                compute, resource_group, name, scale_set, instance_view=module.params["instance_view"])]

        module.exit_json(
            changed=False,
            scale_set={"id": scale_set.get("id"), "orchestration_mode": (scale_set.get("properties") or {}).get(
                "orchestrationMode"), "capacity": (scale_set.get("sku") or {}).get("capacity")},
            instances=found,
            arm_requests=module.arm_requests)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
