#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scale_set_instance
short_description: Act on instances of an Azure virtual machine scale set (upgrade, reimage, restart, protect, ...)
version_added: 0.1.0
description:
  - Upgrades (to the scale set's latest model), reimages, restarts, deallocates, starts, powers off or deletes
    instances of a scale set, or sets their protection policy.
  - The instances are O(instance_ids), narrowed by O(not_on_latest_model) and O(health_state).
  - B(One request for the whole batch) wherever Azure takes C(instanceIds). B(Uniform) scale sets - every action
    is one scale-set call with C(instanceIds) (C(manualupgrade), C(reimage), C(restart), C(deallocate), C(start),
    C(poweroff), C(delete)); O(action=protect) is one PUT of C(protectionPolicy) per instance (Azure has no batch
    call for it). B(Flexible) scale sets - O(action=upgrade) and O(action=delete) are the scale-set calls with the
    VM names as C(instanceIds), as Azure documents for Flexible; O(action=reimage), V(restart), V(deallocate),
    V(start) and V(power_off) are the single-VM calls on C(Microsoft.Compute/virtualMachines), sent together and
    awaited together; O(action=protect) is not available (Flexible VMs carry no protection policy in the API
    this collection uses).
  - B(Protected instances are left alone.) On a Uniform scale set, instances protected from scale-set actions
    (C(protect_from_scale_set_actions)) are skipped and reported, since Azure refuses scale-set actions on them.
    Instances with an operation in progress are skipped too (Azure would refuse the whole batch).
  - Instances already in the action's end state are reported V(unchanged) and not sent (upgrade of an instance on
    the latest model, start of a running one, deallocate of a deallocated one, power off of a stopped one).
  - B(On the latest model, Flexible.) Azure reports C(latestModelApplied) for Uniform instances only. A Flexible VM
    is on the latest model when its image reference, VM size and extension definitions are the scale set's - each
    model extension is on the VM (its C(resources)) with the same publisher, type, handler version (major.minor;
    major only with C(autoUpgradeMinorVersion)) and public settings (protected settings are never compared, Azure
    does not return them). So O(action=upgrade) moves Flexible VMs after an extension-only model change too. A VM
    that reports no C(resources) at all is judged on image and size only; extensions found on the VM only are not
    judged.
  - B(Flexible upgrade to a new image) is an Azure preview needing the subscription feature
    C(Microsoft.Compute/ImageReferenceUpgradeForVmoVMs) (C(az feature register --namespace Microsoft.Compute --name
    ImageReferenceUpgradeForVmoVMs)); without it Azure refuses the upgrade. M(fleetops.vmss.rollout) checks the
    feature before any write.
  - The module reports every instance's outcome; it fails when an instance failed (its provisioning error is in
    RV(instances[].error)), after waiting for the others.
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
  instance_ids:
    description:
      - The instances to act on - instance IDs (Uniform, such as C("3")) or VM names (Flexible), as
        M(fleetops.vmss.scale_set_instance_info) returns them in C(instance_id).
      - V(["*"]) means every instance. Not set, every instance that passes O(not_on_latest_model) and O(health_state).
      - An ID that is not an instance of the scale set fails the module before any write.
    type: list
    elements: str
  not_on_latest_model:
    description:
      - V(true) keeps the instances that do not run the scale set's latest model; V(false) those that do.
    type: bool
  health_state:
    description: Keeps the instances in this Application Health state.
    type: str
    choices: [Healthy, Unhealthy, Unknown, Initializing]
  action:
    description:
      - V(upgrade) moves instances to the scale set's latest model (Azure's manual upgrade).
      - V(reimage) reinstalls the OS disk from the instance's image. V(restart), V(deallocate), V(start),
        V(power_off) change the power state. V(delete) removes the instances (capacity goes down).
      - V(protect) sets O(protect_from_scale_in) and O(protect_from_scale_set_actions) (Uniform).
    type: str
    required: true
    choices: [upgrade, reimage, restart, deallocate, start, power_off, delete, protect]
  protect_from_scale_in:
    description:
      - With O(action=protect) - whether autoscale scale-in may remove the instances. Not set, left as it is.
    type: bool
  protect_from_scale_set_actions:
    description:
      - With O(action=protect) - whether scale-set actions (upgrades, reimages, scale-in) skip the instances.
        Not set, left as it is.
    type: bool
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.wait
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the instances and returns each one's outcome as V(planned), V(skipped) or V(unchanged); writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(upgrade), V(start), V(deallocate), V(power_off), V(delete) and V(protect) act only on instances not
        already in the asked state, so a second run reports no change.
      - V(restart) and V(reimage) act every time they run.
seealso:
  - module: fleetops.vmss.scale_set_instance_info
  - module: fleetops.vmss.scale_set
  - name: Orchestration modes API comparison
    description: Which calls Azure offers for Flexible instances.
    link: https://learn.microsoft.com/azure/virtual-machine-scale-sets/orchestration-modes-api-comparison
"""

EXAMPLES = r"""
- name: Move every instance still on an older model to the latest one, in one call
  fleetops.vmss.scale_set_instance:
    resource_group: payments-prod
    name: payments-api
    not_on_latest_model: true
    action: upgrade
  register: upgraded

- name: Show the instances that did not make it
  ansible.builtin.debug:
    msg: "{{ upgraded.instances | selectattr('outcome', 'equalto', 'failed') | list }}"

- name: Reimage the unhealthy instances
  fleetops.vmss.scale_set_instance:
    resource_group: payments-prod
    name: payments-api
    health_state: Unhealthy
    action: reimage

- name: Keep two instances out of rollouts and scale-in while they are investigated
  fleetops.vmss.scale_set_instance:
    resource_group: payments-prod
    name: payments-api
    instance_ids: ["3", "7"]
    action: protect
    protect_from_scale_set_actions: true

- name: Restart every instance (check mode says which ones would be)
  fleetops.vmss.scale_set_instance:
    resource_group: payments-prod
    name: payments-api
    instance_ids: ["*"]
    action: restart
  check_mode: true
"""

RETURN = r"""
instances:
  description: Every instance selected, with what happened to it.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance ID (Uniform) or VM name (Flexible).
      type: str
      sample: "3"
    name:
      description: The VM's name.
      type: str
    outcome:
      description:
        - V(succeeded) or V(failed) once Azure is done; V(started) with O(wait=false); V(planned) in check mode;
        - V(skipped) (see RV(instances[].reason)) or V(unchanged) (already in the asked state), in any mode.
      type: str
      sample: succeeded
    reason:
      description: Why an instance was skipped or unchanged.
      type: str
      sample: protected from scale-set actions (protect_from_scale_set_actions)
    provisioning_state:
      description: The instance's provisioning state after the action.
      type: str
      returned: when O(wait=true) and not in check mode
      sample: Succeeded
    power_state:
      description: The instance's power state after the action.
      type: str
      returned: when O(wait=true) and not in check mode
      sample: running
    health_state:
      description: The Application Health state after the action, None without a health signal.
      type: str
      returned: when O(wait=true) and not in check mode
    latest_model_applied:
      description: Whether the instance runs the latest model after the action.
      type: bool
      returned: when O(wait=true) and not in check mode
    error:
      description: The C(code) and C(message) of the failure, None otherwise.
      type: dict
      returned: when O(wait=true) and not in check mode
      sample: {code: VMExtensionProvisioningError, message: VM has reported a failure when processing extension 'HealthExtension'.}
summary:
  description: How many instances had each outcome.
  returned: always
  type: dict
  sample: {succeeded: 8, failed: 1, skipped: 1}
arm_requests:
  description: The number of requests sent to Azure Resource Manager, polls included.
  returned: always
  type: int
  sample: 5
"""

from collections import Counter

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import (
    AzureFailure, arm_errors, failure_message, ignore_not_found, is_handled, operation_error)
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, poller_result

VERBS = {"upgrade": "upgrade", "reimage": "reimage", "restart": "restart", "deallocate": "deallocate",
         "start": "start", "power_off": "power off", "delete": "delete", "protect": "set the protection of"}


def describe(params):
    return "scale set %s/%s" % (params["resource_group"], params["name"])


def begin(module, compute, scale_set, action, targets):
    """Send the action for ``targets`` (REST VM dicts); returns [(pollers' instance ids, poller)]."""
    params = module.params
    resource_group, name = params["resource_group"], params["name"]
    ids = [instances.instance_id_of(vm) for vm in targets]
    if action == "protect":
        from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

        started = []
        for vm, instance_id in zip(targets, ids):
            want = instances.wanted_protection(vm, params["protect_from_scale_in"],
                                               params["protect_from_scale_set_actions"])
            body = {"location": vm.get("location") or scale_set.get("location"),
                    "properties": {"protectionPolicy": {"protectFromScaleIn": want["protect_from_scale_in"],
                                                        "protectFromScaleSetActions":
                                                            want["protect_from_scale_set_actions"]}}}
            started.append(([instance_id], compute.virtual_machine_scale_set_vms.begin_update(
                resource_group, name, instance_id, body, etag=vm.get("etag"),
                match_condition=MatchConditions.IfNotModified)))
        return started
    return instances.begin_action(compute, resource_group, name, scale_set, action, ids)


def await_all(module, started, deadline):
    """Wait for every poller within the deadline; returns the first operation error (dict) or None."""
    first_error = None
    targets = []
    for ids, poller in started:
        try:
            poller_result(poller, deadline, "%s of %s" % (module.params["action"], describe(module.params)))
        except Exception as exc:  # pylint: disable=broad-except
            if not is_handled(exc):
                raise
            error = operation_error(exc)
            if len(ids) == 1 and not error["targets"]:
                error["targets"] = list(ids)
            targets.extend(error["targets"])
            first_error = first_error or error
    if first_error is not None:
        first_error["targets"] = targets
    return first_error


def main():
    module = AzureModule(
        names=dict(name="scale_set"),
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            name=dict(type="str", required=True),
            instance_ids=dict(type="list", elements="str"),
            not_on_latest_model=dict(type="bool"),
            health_state=dict(type="str", choices=["Healthy", "Unhealthy", "Unknown", "Initializing"]),
            action=dict(type="str", required=True, choices=list(instances.ACTIONS)),
            protect_from_scale_in=dict(type="bool"),
            protect_from_scale_set_actions=dict(type="bool"),
        ),
        wait=True,
        supports_check_mode=True,
        required_one_of=[("instance_ids", "not_on_latest_model", "health_state")],
        required_if=[("action", "protect", ("protect_from_scale_in", "protect_from_scale_set_actions"), True)],
    )
    try:
        params = module.params
        action = params["action"]
        deadline = Deadline(params["wait_timeout"])
        compute = module.client("compute")

        # current state: the scale set, then every instance with its instance view (one paged list)
        with arm_errors("get", describe(params)):
            found = ignore_not_found(lambda: compute.virtual_machine_scale_sets.get(params["resource_group"], params["name"]))
        if found is None:
            module.fail_json(msg="Failed to %s instances of %s: ResourceNotFound: the scale set does not exist."
                             % (VERBS[action], describe(params)), arm_requests=module.arm_requests)
        scale_set = found.as_dict()
        if action == "protect" and instances.is_flexible(scale_set):
            module.fail_json(msg="Failed to %s instances of %s: instance protection is not available for Flexible "
                             "scale sets through the API this collection uses." % (VERBS[action], describe(params)),
                             arm_requests=module.arm_requests)
        with arm_errors("list the instances of", describe(params)):
            current = instances.list_instances(compute, params["resource_group"], params["name"], scale_set)

        # desired: the instances selected, and what the action would do to each
        chosen, unknown = instances.select(current, scale_set, params["instance_ids"], params["not_on_latest_model"],
                                           params["health_state"])
        if unknown:
            module.fail_json(msg="Failed to %s instances of %s: not instances of the scale set: %s."
                             % (VERBS[action], describe(params), ", ".join(unknown)), arm_requests=module.arm_requests)
        planned = instances.plan(action, chosen, scale_set, params["protect_from_scale_in"],
                                 params["protect_from_scale_set_actions"])
        targets = [vm for vm, entry in zip(chosen, planned) if entry["outcome"] == "planned"]

        # act (or, in check mode, describe)
        outcome = planned
        batch_error = None
        if targets and not module.check_mode:
            with arm_errors(VERBS[action] + " instances of", describe(params)):
                started = begin(module, compute, scale_set, action, targets)
            if params["wait"]:
                batch_error = await_all(module, started, deadline)
                if batch_error is not None and batch_error["code"] == "Timeout":
                    module.fail_json(msg=failure_message(VERBS[action] + " instances of", describe(params), batch_error),
                                     error=batch_error, instances=planned, changed=True, arm_requests=module.arm_requests)
                with arm_errors("list the instances of", describe(params)):
                    after = instances.list_instances(compute, params["resource_group"], params["name"], scale_set)
                outcome = instances.settle(planned, action, after, scale_set, batch_error)
            else:
                outcome = [dict(entry, outcome="started") if entry["outcome"] == "planned" else entry for entry in planned]

        # result
        counts = dict(Counter(entry["outcome"] for entry in outcome))
        result = dict(changed=bool(targets), instances=outcome, summary=counts, arm_requests=module.arm_requests)
        failed = [entry for entry in outcome if entry["outcome"] == "failed"]
        if failed or batch_error is not None:
            first = (failed[0].get("error") if failed else None) or batch_error
            module.fail_json(msg="Failed to %s %s of %s instances of %s: %s: %s" % (
                VERBS[action], len(failed) or len(targets), len(targets), describe(params), first.get("code"),
                first.get("message")), **result)
        module.exit_json(**result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
