#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: blue_green
short_description: Blue/green deployment of an Azure scale set behind a load balancer (stage, swap, roll back, finalise)
version_added: 0.1.0
description:
  - Ships a new image by building a B(green) scale set next to the B(blue) one that serves traffic, then moving
    the load balancer's backend pools from blue to green. Blue stays for a rollback window; a rollback puts it
    back; finalising deletes it.
  - O(state=staged) creates green as a copy of blue's model (network, extensions, policies, identity, zones,
    tags) with O(image) and O(capacity), B(out of the backend pools), and waits until its instances are
    provisioned and Healthy (Application Health extension) with the gates of the in-place rollout
    (O(max_unhealthy_instance_percent), O(max_unhealthy_upgraded_instance_percent), O(health_timeout)). When
    green fails, it is deleted (or kept, O(keep_green)); blue is never touched.
  - O(state=live) stages green if needed, then puts the pools into green's model and upgrades green's
    instances onto it, B(verifies on the load balancer) (the pools' C(backendIPConfigurations)) that every
    green instance is in the pools and Healthy, soaks O(soak) seconds with both sets in the pools, moves
    autoscale to green, then takes blue out - scaled in to O(blue_capacity) if set, pools removed from its model
    and its instances upgraded, verified on the load balancer - and deallocates it if O(deallocate_blue).
    A failure before blue is out rolls back (O(on_failure)). With O(metric_gates), green is judged on Azure
    Monitor metrics too, against blue while both serve - once Healthy in the pools (at the soak's end with
    O(soak), and through it) - and a failing gate (C(MetricGateFailed)) or too little data within
    O(health_timeout) (C(MetricTimeout)) is a failed swap like a health breach.
  - O(state=rolled_back) puts blue back (instances started, pools in its model, capacity restored, instances
    upgraded, verified on the load balancer and Healthy), autoscale back to blue, and deletes green (or, with
    O(keep_green), takes it out of the pools).
  - O(state=finalized) deletes blue (and its disabled autoscale settings) once green is live, and removes the tag
    C(fleetops.blue_green.blue) from green, which from then on is just the set that serves.
  - B(One cycle at a time.) A set waiting in its rollback window (scaled in for it, or the set the serving one was
    copied from) is never swapped in as a staged green; a new rollout that names it as green is refused, before
    any write, until that cycle is finalized (which deletes it) or rolled back. The module does not finalize on
    the way, since that deletes the only way back.
  - B(Capacity never drops.) A green staged smaller than blue (O(capacity)) is scaled out to blue's capacity
    before it joins the pools.
  - B(Resumable.) Every step first reads what Azure has (the models, the pools' members, autoscale settings,
    tags C(fleetops.blue_green.*) on the sets) and is skipped when already done, so a run interrupted anywhere
    continues where it stopped when run again.
  - B(Autoscale follows the live set.) Azure does not let an autoscale setting change its target, so for each
    setting aimed at blue the module creates a copy aimed at green (metrics of blue re-aimed at green too),
    enabled as blue's was, and disables blue's; a rollback re-enables blue's and deletes green's copy.
  - The swap is of load balancer backend pools; the sets must use the Application Health extension (the gates
    read it). A load balancer probe and inbound NAT pools of that load balancer are not copied to green.
  - Secrets Azure never returns (O(admin_password), O(custom_data), O(protected_settings)) must be given again
    when green is created; when blue's model signs in with a password, green is refused without
    O(admin_password). They are only used to create green; given while green exists, the module refuses (leave
    them out, or roll back and stage green again with them). They are never returned or written to reports.
  - Check mode returns the plan (RV(plan)) from the state read, and writes nothing.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of both scale sets.
    type: str
    required: true
  name:
    description: The blue scale set - the one serving traffic before the swap.
    type: str
    required: true
  green_name:
    description:
      - The green scale set. Default - O(name) with C(-blue) replaced by C(-green) (and the other way round),
        else O(name) followed by C(-green).
      - An existing scale set of this name that is not the green copy of O(name) fails the module.
    type: str
  state:
    description: Where the swap should be when the module returns.
    type: str
    choices: [staged, live, rolled_back, finalized]
    default: live
  image:
    description:
      - The image green runs, as O(fleetops.vmss.scale_set#module:image) takes it (a gallery image version ID,
        an image definition ID, a managed image ID, or a marketplace dict).
      - Required when green must be created. If green exists with another image, the module fails.
    type: raw
  capacity:
    description:
      - Green's instance count when it is created (staged). Default - blue's capacity.
      - A smaller green is scaled out to blue's capacity before it joins the pools (O(state=live)).
    type: int
  backend_pool_ids:
    description:
      - The load balancer backend pools traffic moves between. Default - the pools in blue's model (and in
        green's, once it has them).
    type: list
    elements: str
  soak:
    description: Seconds both sets stay in the pools before blue is taken out, green's health watched.
    type: int
    default: 0
  blue_capacity:
    description:
      - The capacity blue keeps for the rollback window (scaled in after the swap). Not set, blue keeps its
        capacity. Its capacity before is kept in tag C(fleetops.blue_green.capacity) and restored by a rollback.
    type: int
  deallocate_blue:
    description: Deallocate blue's instances after the swap (started again by a rollback).
    type: bool
    default: false
  keep_green:
    description:
      - Keep green (out of the pools) when its stage fails or on a rollback, for inspection; by default it is
        deleted.
    type: bool
    default: false
  move_autoscale:
    description: Move blue's autoscale settings to green on the swap (and back on a rollback).
    type: bool
    default: true
  on_failure:
    description: After a failure during the swap - V(rollback) puts blue back and removes green; V(halt) stops.
    type: str
    choices: [rollback, halt]
    default: rollback
  health_timeout:
    description: Seconds to wait for a set's instances to be Healthy at each health gate.
    type: int
    default: 600
  max_unhealthy_instance_percent:
    description: The most unhealthy instances of the set (percent) a health gate accepts.
    type: int
    default: 20
  max_unhealthy_upgraded_instance_percent:
    description: The most unhealthy instances among the new or upgraded ones (percent) a health gate accepts.
    type: int
    default: 20
  admin_password:
    description:
      - The administrator password green's model needs (Azure never returns blue's); required when blue's model
        signs in with a password (Windows, or C(disablePasswordAuthentication) not true). Only when green is created.
    type: str
  custom_data:
    description:
      - Custom data (cloud-init) as text for green's model (Azure never returns blue's); the module base64-encodes it.
    type: str
  protected_settings:
    description: Protected settings of green's extensions, by extension name (Azure never returns blue's).
    type: dict
  report_path:
    description: A directory to write the JSON, Markdown and SVG reports of the run to.
    type: path
  wait_timeout:
    description: Seconds the whole run may take; the module fails once they have passed.
    type: int
    default: 3600
  wait_sleep:
    description: Seconds between two polls.
    type: float
    default: 5
notes:
  - Uses azure-mgmt-compute (the scale sets), azure-mgmt-network (reads the backend pools' members) and
    azure-mgmt-monitor (autoscale settings, when O(move_autoscale=true) or O(state=finalized)).
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.lease
  - fleetops.vmss.metric_gates
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads both sets, the pools and autoscale settings, and returns the plan (RV(plan)); writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Every step is skipped when Azure already shows it done; a second run reports RV(status=nothing_to_do).
seealso:
  - module: fleetops.vmss.scale_set
  - module: fleetops.vmss.scale_set_instance
  - name: Backend pools of scale sets
    description: Scale-set instances join a pool through the NIC configuration of the model they run.
    link: https://learn.microsoft.com/azure/load-balancer/backend-pool-management
"""

EXAMPLES = r"""
- name: Stage green with the new image, at half blue's capacity, and wait until it is Healthy
  fleetops.vmss.blue_green:
    resource_group: payments-prod
    name: payments-api-blue
    image: /subscriptions/0000/resourceGroups/images/providers/Microsoft.Compute/galleries/gal/images/api/versions/1.7.1
    capacity: 3
    state: staged

- name: Swap - green grown to blue's capacity, into the pool, verified on the load balancer; blue out and kept at 1
  fleetops.vmss.blue_green:
    resource_group: payments-prod
    name: payments-api-blue
    state: live
    soak: 300
    blue_capacity: 1
    report_path: reports/
  register: swap

- name: Roll back - blue serves again, green deleted
  fleetops.vmss.blue_green:
    resource_group: payments-prod
    name: payments-api-blue
    state: rolled_back

- name: Finalise - delete blue once the rollback window is over
  fleetops.vmss.blue_green:
    resource_group: payments-prod
    name: payments-api-blue
    state: finalized
"""

RETURN = r"""
status:
  description:
    - V(planned) (check mode), V(succeeded), V(nothing_to_do), V(rolled_back) (a rollback done, asked for or after
      a failure), V(halted) (a failure, not rolled back), V(rollback_failed).
  returned: always
  type: str
  sample: succeeded
scale_set:
  description: The blue scale set, C(resource_group/name).
  returned: always
  type: str
  sample: payments-prod/payments-api-blue
green:
  description: The green scale set after the run - C(name), C(exists), C(capacity), C(instances), C(members) (in
    every pool), C(in_model) (the pools are in its model).
  returned: always
  type: dict
  sample: {name: payments-api-green, exists: true, capacity: 3, instances: 3, members: 3, in_model: true}
blue:
  description: The blue scale set after the run, same keys as RV(green), plus C(deallocated) and C(original_capacity).
  returned: always
  type: dict
  sample: {name: payments-api-blue, exists: true, capacity: 1, instances: 1, members: 0, in_model: false}
backend_pool_ids:
  description: The backend pools swapped.
  returned: always
  type: list
  elements: str
orchestration_mode:
  description: Blue's orchestration mode.
  returned: always
  type: str
  sample: Uniform
model_changed:
  description: Whether this run created green or moved the traffic onto it.
  returned: always
  type: bool
image_before:
  description: Blue's image reference.
  returned: always
  type: dict
image_after:
  description: Green's image reference (None before green exists).
  returned: always
  type: dict
traffic_on_green_at:
  description: When the load balancer was seen listing every green instance, Healthy (ISO 8601 UTC), if in this run.
  returned: always
  type: str
plan:
  description:
    - The phases the run would go through from the state read - C(batches) (C(index), C(kind) stage, swap, soak,
      rollback or finalize, C(steps) with C(name) and C(description)), C(skipped), C(estimated_seconds) (from
      typical Azure durations, the Application Health extension's settle time and the soak).
  returned: always
  type: dict
batches:
  description:
    - The phases run, in the rollout report's shape - C(index), C(kind), C(instance_ids), C(started_at), C(ended_at),
      C(outcome) (healthy, unhealthy, timeout, failed), C(health), C(unhealthy_upgraded_percent),
      C(unhealthy_set_percent), C(arm_requests), and C(steps) (C(name), C(started_at), C(ended_at), C(outcome));
      with O(metric_gates), C(metrics) on the phase that judged them (each gate's last verdict, as the rollout's
      RV(fleetops.vmss.rollout#module:batches[].metrics)) and a C(note) when a gate was only noted.
  returned: always
  type: list
  elements: dict
halt:
  description: None, or why the run stopped - C(at), C(batch_index), C(reason), C(code) (HealthTimeout,
    MaxUnhealthyUpgradedInstancePercentExceeded, MaxUnhealthyInstancePercentExceeded, ProvisioningFailed,
    UpgradeFailed, MetricGateFailed, MetricTimeout), C(phase) (the phase's kind).
  returned: always
  type: dict
rollback:
  description: None, or the rollback after a failure - C(started_at), C(ended_at), C(instance_ids) (blue's),
    C(outcome), C(health).
  returned: always
  type: dict
autoscale:
  description:
    - The autoscale settings aimed at blue or green after the run - C(name), C(resource_group), C(target), C(enabled).
  returned: always
  type: list
  elements: dict
demoted:
  description: Always None (kept for the rollout report's shape).
  returned: always
  type: dict
skipped_instances:
  description:
    - Always empty (kept for the rollout report's shape). Not C(skipped), which Ansible would read as "the task was
      skipped" (and then not evaluate C(failed_when) or C(changed_when)).
  returned: always
  type: list
  elements: dict
summary:
  description: C(instances_total) (green's), C(instances_upgraded), C(instances_skipped), C(batches_planned),
    C(batches_completed), C(started_at), C(ended_at), C(duration_seconds), C(arm_requests).
  returned: always
  type: dict
report:
  description: None, or the paths (C(json), C(markdown), C(svg)) of the reports written to O(report_path).
  returned: always
  type: dict
transient:
  description:
    - C(true) when the module failed on a fault that outlasted the SDK's retries (HTTP 429, 409, any 5xx, a refused,
      dropped or timed-out connection) - an interruption, not Azure's answer on what was asked; the same task run again
      resumes. The roles read it so that such a fault never demotes an image version.
  returned: on such a failure only
  type: bool
  sample: true
arm_requests:
  description: The number of requests sent to Azure Resource Manager, polls included.
  returned: always
  type: int
lease:
  description:
    - This run's lease on the scale set (see O(force_lease)) - C(tag) (V(fleetops.lease)), C(operation), C(owner) (the
      tag's value as written, or as found when another run holds it), C(expires) (ISO 8601 UTC), C(free) (false when
      another run holds it - check mode; a real run fails then), C(taken_over) (leases of other runs taken over, each
      C(scale_set), C(owner) and C(reason) - V(expired), V(orphaned), V(unreadable), V(forced)), C(released), or C(kept)
      (O(keep_lease) - left to the run's next call).
  returned: when the options are valid
  type: dict
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _blue_green as bg
from ansible_collections.fleetops.vmss.plugins.module_utils import _lease as leases
from ansible_collections.fleetops.vmss.plugins.module_utils import _metrics as metrics
from ansible_collections.fleetops.vmss.plugins.module_utils import _report
from ansible_collections.fleetops.vmss.plugins.module_utils._blue_green_run import Swap
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure
from ansible_collections.fleetops.vmss.plugins.module_utils._scale_set_client import ScaleSetClient
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    green_name=dict(type="str"),
    state=dict(type="str", choices=list(bg.STATES), default="live"),
    image=dict(type="raw"),
    capacity=dict(type="int"),
    backend_pool_ids=dict(type="list", elements="str"),
    soak=dict(type="int", default=0),
    blue_capacity=dict(type="int"),
    deallocate_blue=dict(type="bool", default=False),
    keep_green=dict(type="bool", default=False),
    move_autoscale=dict(type="bool", default=True),
    on_failure=dict(type="str", choices=["rollback", "halt"], default="rollback"),
    health_timeout=dict(type="int", default=600),
    **metrics.argument_spec(),
    max_unhealthy_instance_percent=dict(type="int", default=20),
    max_unhealthy_upgraded_instance_percent=dict(type="int", default=20),
    admin_password=dict(type="str", no_log=True),
    custom_data=dict(type="str", no_log=True),
    protected_settings=dict(type="dict", no_log=True),
    report_path=dict(type="path"),
    wait_timeout=dict(type="int", default=3600),
    wait_sleep=dict(type="float", default=5.0),
)


def main():
    module = AzureModule(names=dict(name="scale_set"), argument_spec=ARGUMENT_SPEC, supports_check_mode=True, lease=True)
    try:
        params = module.params
        swap = connect(module)

        # current state: both sets, the pools' members, autoscale settings
        observed = swap.observe(first=True)

        # desired state, and every reason it cannot be reached (nothing written yet)
        opts = swap.options(observed)
        errors = bg.validate(params, observed, swap.docs["blue"], swap.docs["green"], swap.pools, opts,
                             swap.blue_name, swap.green_name) + metrics.gate_errors(params["metric_gates"])
        if errors:
            module.fail_json(msg="Invalid blue/green of %s: %s" % (swap.describe("blue"), " ".join(errors)),
                             errors=errors, arm_requests=module.arm_requests)

        # the difference: the phases and steps still to run (all that check mode returns)
        plan = bg.describe_plan(params["state"], observed, opts, swap.docs["blue"] or swap.docs["green"])
        # one operation per scale set: the lease on blue and green, or a failure naming its holder (before any write)
        lease = leases.take(module, module.client("compute"), "blue_green", [(swap.rg, swap.blue_name),
                                                                             (swap.rg, swap.green_name)],
                            probe=not plan["batches"], keep_statuses=("succeeded", "nothing_to_do"), unwaited=True)
        lease.lease_creates(swap.sets["green"])   # green created now carries the lease in its PUT
        if lease.unconfirmed():   # the tags PATCHes still running: each step waits for its set, and a 409 asks again
            swap.patched.update(("blue", "green"))
        if module.check_mode:
            finish(module, swap.result("planned", plan))

        # act: each step checks Azure again first, so a re-run resumes
        status, halt, rollback = swap.execute(opts)
        finish(module, swap.result(status, plan, halt, rollback))
    except AzureFailure as exc:
        module.fail_from(exc)


def connect(module):
    """The swap over the clients of both scale sets (one deadline for the run)."""
    params = module.params
    compute, deadline = module.client("compute"), Deadline(params["wait_timeout"])
    sets = [ScaleSetClient(compute, params["resource_group"], name, deadline, params["wait_sleep"],
                           network=lambda: module.client("network"))
            for name in (params["name"], params["green_name"] or bg.default_green_name(params["name"]))]
    return Swap(params, *sets, monitor=lambda: module.client("monitor"), counter=module.requests)


def finish(module, result):
    """exit_json, or fail_json after a failure (rolled back or not), with the reports written if asked."""
    if module.params["report_path"] and result["status"] != "planned":
        try:
            result["report"] = _report.write_reports(result, module.params["report_path"], kind="blue_green")
        except OSError as exc:
            module.warn("Could not write the reports to %s: %s" % (module.params["report_path"], exc))
    result["arm_requests"] = module.arm_requests
    halt = result["halt"]
    if halt is not None:
        names = {"blue": result["blue"]["name"], "green": result["green"]["name"]}
        outcome = {"rolled_back": "; rolled back: blue %s serves, green %s %s" % (
            names["blue"], names["green"], "kept out of the pools" if module.params["keep_green"] else "removed"),
            "rollback_failed": "; the rollback failed too: %s" % ((result["rollback"] or {}).get("reason") or "")}
        module.fail_json(msg="Blue/green of %s halted in phase %s: %s%s" % (
            result["scale_set"], halt["phase"], halt["reason"], outcome.get(result["status"], "")), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
