#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rolling_upgrade
short_description: Start, cancel and watch Azure's own rolling upgrades of a virtual machine scale set
version_added: 0.1.0
description:
  - Drives the rolling upgrades Azure runs itself, batch by batch under the scale set's rolling upgrade policy -
    an OS image upgrade (O(action=start_os_upgrade)), an extension upgrade (O(action=start_extension_upgrade)) -
    cancels the one in progress (O(action=cancel)), or reads the latest one (O(action=status)).
  - With O(wait=true) the module waits until the upgrade has ended (C(Completed), C(Faulted) or C(Cancelled)),
    reading its status every O(wait_sleep) seconds, and returns what it saw in RV(progress_history).
  - B(The rolling upgrade policy itself) (batch size, health thresholds, pause between batches, rollback on a
    policy breach, ...) and the upgrade mode are set with M(fleetops.vmss.scale_set)
    (O(fleetops.vmss.scale_set#module:upgrade_policy)). A model change of a scale set in C(Rolling) mode starts a
    rolling upgrade by itself; use O(action=status) to watch it.
  - B(An OS upgrade) moves the instances to the newest version of a floating image - a marketplace image with
    version C(latest), or a Compute Gallery image definition ID without a version - and needs such an image in the
    model (Azure refuses it otherwise). Instances already on that version are not touched.
  - B(One upgrade at a time.) A start while a rolling upgrade rolls forward starts nothing (Azure would refuse a
    second one); the module joins that one - Azure's automatic OS upgrade too - reports it, and waits for it with
    O(wait=true). A cancel when none rolls forward sends nothing.
  - B(Azure's automatic OS upgrade.) On a scale set with C(automaticOSUpgradePolicy.enableAutomaticOSUpgrade) whose
    model follows C(latest) of a Compute Gallery image definition, promoting a version (a new version that becomes
    C(latest), or C(excludeFromLatest) set back to false) makes Azure start an OS upgrade itself (C(startedBy
    Platform)); by default it restores the previous OS disk of instances that fail their batch.
    Before O(action=start_os_upgrade) the module therefore resolves what C(latest) means in the scale set's region
    and reads C(osUpgradeHistory). When the newest OS upgrade already went for that version and ended, no other is
    started - C(Completed) is reported as success with nothing to do, C(Faulted) fails the task with Azure's error
    code and message (a verdict on the image - starting again would put the version Azure rolled back onto the
    instances again), C(Cancelled) fails the task too. See RV(decision).
  - B(Deferred automatic OS upgrades.) With O(fleetops.vmss.scale_set#module:upgrade_policy.automatic_os_upgrade_policy.os_rolling_upgrade_deferral=true)
    Azure's automatic OS upgrade waits for approval; O(action=approve) approves instances (Azure's
    C(approveRollingUpgrade)) - the named ones or all still pending, at most O(max_instances) - and with
    O(wait=true) waits until Azure has upgraded them, then gates them - health (upgraded, not C(Unhealthy) or
    C(Unknown)) and O(metric_gates) - before it reports success. A gate that fails fails the task; the instances
    not approved stay on the old image (RV(pending_instance_ids)).
  - RV(moved_instance_count) counts only the instances Azure moved in the upgrade the module started or joined
    while it watched; Azure's own RV(progress) counts instances that needed no move as successful.
  - For rollouts that need no C(Rolling) mode, with a canary, batches by update domain, fault domain or zone, a
    rollback and image demotion, see M(fleetops.vmss.rollout).
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
  action:
    description:
      - V(start_os_upgrade) starts an OS image rolling upgrade (Azure's C(osRollingUpgrade)), unless one rolls
        forward (joined) or the newest OS upgrade already went for the version C(latest) resolves to (reported).
      - V(start_extension_upgrade) starts a rolling upgrade of the instances' extensions to their latest versions
        (Azure's C(extensionRollingUpgrade)).
      - V(cancel) cancels the rolling upgrade in progress (Azure's C(rollingUpgrades/cancel)); the batch in flight
        finishes first.
      - V(status) only reads the latest rolling upgrade; with O(wait=true), waits for it to end when it rolls forward.
      - V(approve) approves instances of the deferred automatic OS upgrade rolling forward (Azure's
        C(approveRollingUpgrade)); nothing is sent when no OS upgrade rolls forward or no chosen instance is
        still pending (RV(decision=nothing_to_approve)).
    type: str
    required: true
    choices: [start_os_upgrade, start_extension_upgrade, cancel, status, approve]
  instance_ids:
    description:
      - With O(action=approve), the instances to approve (those already on the upgrade's image are left out);
        by default every instance still pending. An id the scale set does not have fails before any write.
    type: list
    elements: str
  max_instances:
    description: With O(action=approve), approve at most this many of the chosen instances (instance id order).
    type: int
  metric_gates:
    description:
      - With O(action=approve) and O(wait=true), gates on Azure Monitor metrics judged on the approved instances
        once Azure has upgraded them, as M(fleetops.vmss.rollout)'s O(fleetops.vmss.rollout#module:metric_gates) -
        the baseline of a relative gate is the instances still pending. The reads repeat every O(wait_sleep)
        seconds while there is too little data, within O(wait_timeout) (then C(MetricTimeout)); a failing gate
        fails the task with C(MetricGateFailed), its values in RV(metrics). See docs/metric_gates.md.
      - Needs azure-mgmt-monitor and C(Microsoft.Insights/metrics/read) on each gate's resource.
    type: list
    elements: dict
    suboptions:
      metric:
        description: The metric name, for example V(Percentage CPU), V(requests/failed), V(DipAvailability).
        type: str
        required: true
      namespace:
        description: The metric namespace (C(metricnamespace)); by default the resource type's own.
        type: str
      resource:
        description:
          - The full id of the resource whose metric is read (an Application Insights component, a load balancer);
            by default the scale set.
        type: str
      aggregation:
        description: The aggregation read per instance and grain.
        type: str
        choices: [average, count, maximum, minimum, total]
        default: average
      filter:
        description: A dimension C($filter) added to the per-instance split, for example V(request/success eq 'False').
        type: str
      window:
        description: Seconds of metrics read, ending at the read.
        type: float
        default: 300
      interval:
        description: The grain in seconds (whole minutes, as Azure Monitor's grains).
        type: int
        default: 60
      max:
        description: The batch value must not be above this.
        type: float
      min:
        description: The batch value must not be below this.
        type: float
      max_ratio_to_baseline:
        description:
          - The batch value must not be more than this many times the baseline, the same value over the
            instances not upgraded yet. Not judged when every instance is upgraded (noted).
        type: float
      min_samples:
        description:
          - Points with data (per instance and grain) the batch, and the baseline of a relative gate, need
            before the gate is judged.
        type: int
        default: 3
      instance_dimension:
        description:
          - The dimension naming instances; its values are matched with each instance's VM name, computer name
            or instance id. Default V(VMName) on a scale set, V(cloud/roleInstance) on any other resource.
        type: str

  wait:
    description:
      - Whether to wait until the rolling upgrade has ended (or, with O(action=cancel), has stopped).
      - The module then B(fails) when the upgrade it started or waited for ended C(Faulted) (the message carries
        Azure's error code, such as C(MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade)) or was cancelled
        by someone else; with O(action=cancel) the outcome of the upgrade never fails the task.
      - With O(wait=false) the module returns after one read, whatever the upgrade's state.
    type: bool
    default: true
  wait_sleep:
    description:
      - Seconds between two reads of the rolling upgrade's status while waiting.
    type: float
    default: 10.0
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.lease
  - fleetops.vmss.azure.wait
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the latest rolling upgrade and reports whether the action would start or cancel one; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(cancel) and V(status) are idempotent, and a start while an upgrade rolls forward starts nothing.
      - An OS upgrade start after an OS upgrade to the same gallery image version starts nothing.
      - V(approve) sends nothing when the chosen instances already run the upgrade's image.
      - Otherwise a start when none rolls forward asks Azure for an upgrade (reported as changed), even when every
        instance is already up to date; Azure then completes it at once without touching an instance.
notes:
  - The wait reads C(rollingUpgrades/latest) every O(wait_sleep) seconds (Compute's C(GetVMScaleSet) throttling
    budget is 12 reads a minute per scale set; the default of 10 seconds stays well inside it).
  - O(wait_timeout) bounds the wait only; an upgrade still rolling forward then goes on in Azure (the task fails
    with C(Timeout); cancel it with O(action=cancel) if needed).
seealso:
  - module: fleetops.vmss.scale_set
    description: Sets the upgrade mode and the rolling upgrade policy.
  - module: fleetops.vmss.scale_set_info
    description: O(fleetops.vmss.scale_set_info#module:include=rolling_upgrade) reads the latest rolling upgrade too.
  - name: Automatic OS image upgrades with Virtual Machine Scale Sets
    description: When Azure starts an OS upgrade itself, and how it rolls failed instances back.
    link: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-automatic-upgrade
  - name: Configure rolling upgrades on Virtual Machine Scale Sets
    description: How Azure batches a rolling upgrade and which health limits stop it.
    link: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-configure-rolling-upgrades
  - name: Virtual Machine Scale Set Rolling Upgrades (REST API)
    description: The calls this module makes.
    link: https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-set-rolling-upgrades
"""

EXAMPLES = r"""
- name: Roll the newest gallery image version out with Azure's rolling upgrade, watching its progress
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: start_os_upgrade
    wait_timeout: 3600
  register: upgrade

- name: Show how the upgrade went, sample by sample
  ansible.builtin.debug:
    msg: "{{ item.time }} {{ item.code }}: {{ item.successful_instance_count }} done, {{ item.pending_instance_count }} to go"
  loop: "{{ upgrade.progress_history }}"

- name: Upgrade the extensions (start, do not wait)
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: start_extension_upgrade
    wait: false

- name: After promoting a version, roll it out - or report the automatic OS upgrade Azure already ran for it
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: start_os_upgrade
  register: os_upgrade
  failed_when: os_upgrade.failed and os_upgrade.decision != 'already_faulted'

- name: Read the latest rolling upgrade once
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: status
    wait: false
  register: latest

- name: Wait for the rolling upgrade a model change started (fails when it ends Faulted)
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: status
  when: latest.running_status is not none and latest.running_status.code == 'RollingForward'

- name: Approve the next two instances of the deferred automatic OS upgrade, gated on their failed-request rate
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: approve
    max_instances: 2
    metric_gates:
      - metric: Percentage CPU
        max: 90
    wait_timeout: 1800
  register: approval

- name: Stop the rolling upgrade in progress
  fleetops.vmss.rolling_upgrade:
    resource_group: payments-prod
    name: payments-api
    action: cancel
"""

RETURN = r"""
running_status:
  description:
    - The latest rolling upgrade's state after the action (after the wait), None when the scale set has never had one.
    - In check mode, the state before the action.
  returned: always
  type: dict
  contains:
    code:
      description: V(RollingForward), V(Completed), V(Faulted) or V(Cancelled).
      type: str
      sample: Completed
    start_time:
      description: When the upgrade started (ISO 8601, UTC).
      type: str
      sample: "2026-11-22T04:30:00.123456Z"
    last_action:
      description: V(Start) or V(Cancel).
      type: str
      sample: Start
    last_action_time:
      description: When the last action was taken.
      type: str
progress:
  description: How many instances are in each upgrade state (Azure's counts), None when there has been no upgrade.
  returned: always
  type: dict
  contains:
    successful_instance_count:
      description: Instances upgraded successfully (and, as Azure counts them, those that needed no upgrade).
      type: int
    failed_instance_count:
      description: Instances whose upgrade failed.
      type: int
    in_progress_instance_count:
      description: Instances being upgraded.
      type: int
    pending_instance_count:
      description: Instances not yet started.
      type: int
  sample: {successful_instance_count: 8, failed_instance_count: 0, in_progress_instance_count: 2, pending_instance_count: 0}
error:
  description:
    - The upgrade's error as Azure reports it (C(code), C(message), C(details) when any), None when it has none.
    - When the module fails on an ARM request instead, the request's error (C(code), C(message), C(status), C(request_id)).
  returned: always
  type: dict
  sample:
    code: MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade
    message: "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value defined in the RollingUpgradePolicy. ..."
policy:
  description: The rolling upgrade policy the upgrade ran with (snake_case), None when there has been no upgrade.
  returned: always
  type: dict
  sample: {max_batch_instance_percent: 20, max_unhealthy_instance_percent: 20, max_unhealthy_upgraded_instance_percent: 20,
           pause_time_between_batches: PT0S}
progress_history:
  description:
    - What the wait saw of the upgrade it watched - one entry each time the status or a count changed, oldest first
      (empty without a wait, or in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: When the status was read (the controller's clock, ISO 8601 UTC).
      type: str
    code:
      description: The running status code then.
      type: str
    successful_instance_count:
      description: Instances upgraded then.
      type: int
    failed_instance_count:
      description: Instances failed then.
      type: int
    in_progress_instance_count:
      description: Instances being upgraded then.
      type: int
    pending_instance_count:
      description: Instances waiting then.
      type: int
  sample:
    - {time: "2026-11-22T04:30:01.200Z", code: RollingForward, successful_instance_count: 0, failed_instance_count: 0,
       in_progress_instance_count: 2, pending_instance_count: 8}
    - {time: "2026-11-22T04:41:12.004Z", code: Completed, successful_instance_count: 10, failed_instance_count: 0,
       in_progress_instance_count: 0, pending_instance_count: 0}
decision:
  description:
    - What the action did. For a start - V(start) (a new upgrade asked for), V(join) (one already rolled forward),
      V(already_completed), V(already_faulted), V(already_cancelled) (the newest OS upgrade already went for the
      version C(latest) resolves to; nothing started, its outcome is reported). Else the action, V(cancel) or
      V(status); with O(action=approve), V(approve) or V(nothing_to_approve).
  returned: always
  type: str
  sample: already_faulted
target_version:
  description:
    - With O(action=start_os_upgrade) on a scale set that follows C(latest) of a gallery image definition, the
      version C(latest) resolves to in its region; None otherwise.
  returned: always
  type: str
  sample: 1.7.0
started_by:
  description:
    - Who started the upgrade reported - V(Platform) (Azure's automatic OS upgrade) or V(User) - when known, else None.
  returned: always
  type: str
  sample: Platform
moved_instance_count:
  description:
    - Instances Azure moved in the upgrade the module started or joined, while the module looked (the growth of
      Azure's successful count); 0 when nothing was started or joined.
  returned: always
  type: int
  sample: 2
approved_instance_ids:
  description: With O(action=approve), the instances approved (in check mode, that would be); else empty.
  returned: always
  type: list
  elements: str
  sample: ["0", "1"]
pending_instance_ids:
  description:
    - With O(action=approve), the instances the deferred upgrade still waits for after the action (not on its
      image, not protected); None for the other actions.
  returned: always
  type: list
  elements: str
  sample: ["2", "3"]
metrics:
  description:
    - With O(action=approve) and O(metric_gates), each gate's last verdict - C(metric), C(resource),
      C(aggregation), C(window), C(value), C(samples), C(baseline), C(baseline_samples), C(ratio), C(threshold),
      C(state) (V(passed), V(failed), V(waiting)) and C(reason); None without gates.
  returned: always
  type: list
  elements: dict
transient:
  description:
    - C(true) when the module failed on a fault that outlasted the SDK's retries (HTTP 429, 409, any 5xx, a refused,
      dropped or timed-out connection) - an interruption, not Azure's answer on what was asked; the same task run again
      resumes. The roles read it so that such a fault never demotes an image version.
  returned: on such a failure only
  type: bool
  sample: true
arm_requests:
  description: The number of requests sent to Azure Resource Manager, status reads included.
  returned: always
  type: int
  sample: 14
lease:
  description:
    - This run's lease on the scale set (see O(force_lease)) - C(tag) (V(fleetops.lease)), C(operation), C(owner) (the
      tag's value as written, or as found when another run holds it), C(expires) (ISO 8601 UTC), C(free) (false when
      another run holds it - check mode; a real run fails then), C(taken_over) (leases of other runs taken over, each
      C(scale_set), C(owner) and C(reason) - V(expired), V(orphaned), V(unreadable), V(forced)), C(released), or C(kept)
      (O(keep_lease) - left to the run's next call).
  returned: when the action would start or cancel an upgrade
  type: dict
"""

import time

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils import _lease as leases
from ansible_collections.fleetops.vmss.plugins.module_utils import _metrics as metrics
from ansible_collections.fleetops.vmss.plugins.module_utils import _rolling_upgrade as rolling
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, arm_failure
from ansible_collections.fleetops.vmss.plugins.module_utils._pending import start_after_write
from ansible_collections.fleetops.vmss.plugins.module_utils._run import RunRecord, now
from ansible_collections.fleetops.vmss.plugins.module_utils._scale_set_client import ScaleSetClient, rolling_upgrade_ended
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

APPROVE_ONLY = ("instance_ids", "max_instances", "metric_gates")


class Run:
    """One run's options, client and what it has seen so far; every failure carries all of it (main's catch)."""

    def __init__(self, module, deadline):
        self.module, self.params = module, module.params
        params = module.params
        self.compute = module.client("compute")
        self.azure = ScaleSetClient(self.compute, params["resource_group"], params["name"], deadline,
                                    params["wait_sleep"])
        self.record = RunRecord(module.requests)
        self.resource = self.azure.what
        self.changed = False
        self.status = None
        self.first = None           # the first look at the upgrade started or joined (moved_instance_count)
        self.history = []
        self.decision = None
        self.target = None
        self.started_by = None
        self.approved = []          # action=approve: the instances approved (or, in check mode, that would be)
        self.pending = None         # ... the instances the deferred upgrade still waits for, after the action
        self.gates = None           # ... the metric gates' last verdicts

    def result(self, **extra):
        return dict(rolling.status_fields(self.status), changed=self.changed, progress_history=self.history,
                    decision=self.decision, target_version=(self.target or {}).get("name"),
                    started_by=self.started_by, moved_instance_count=rolling.moved_count(self.first, self.status),
                    approved_instance_ids=self.approved, pending_instance_ids=self.pending, metrics=self.gates,
                    arm_requests=self.record.requests()[0], **extra)

    def fail(self, action, code, message, error=None):
        raise arm_failure(action, self.resource, dict(error or {}, code=code, message=message))

    def latest(self):
        return self.azure.latest_rolling_upgrade()


def resolve_target(run, scale_set):
    """{"name", "published_date"} of the version ``latest`` resolves to for a scale set that follows a gallery
    image definition, in its region; None for any other image (Azure's history is then not compared)."""
    image = rolling.floating_gallery_image(scale_set)
    if image is None:
        return None
    with arm_errors("read the image versions for", run.resource):
        versions = gallery.read_versions(run.compute.gallery_image_versions, image["resource_group"], image["gallery"],
                                         image["image"])
    latest = gallery.latest_for_region(versions, scale_set.get("location") or "")
    if latest is None:
        return None
    profile = (latest.get("properties") or {}).get("publishingProfile") or {}
    return {"name": latest["name"], "published_date": profile.get("publishedDate")}


def report_covering(run, covering):
    """Nothing started: the OS upgrade Azure already ran for the target is the outcome (fails unless Completed)."""
    run.status, run.started_by = covering, covering.get("started_by")
    problem = rolling.failure("start_os_upgrade", covering)
    if problem:
        code, message = problem
        run.fail(rolling.ACTIONS["start_os_upgrade"][1], code, "%s (the OS upgrade %s started at %s for version %s "
                 "already ended %s; no other upgrade was started)" % (
                     message, "Azure" if run.started_by == "Platform" else "a user",
                     (covering.get("running_status") or {}).get("start_time"), run.target["name"],
                     rolling.code_of(covering)), error=covering.get("error"))
    run.module.exit_json(**run.result())


def send(run, action, after_write=False):
    """POST the action; the module waits through GetLatest (progress), not through the operation. ``after_write``:
    right after the lease's tags PATCH (Lease.unconfirmed), a 409 is asked again (start_after_write)."""
    method_name, verb = rolling.ACTIONS[action]
    method = getattr(run.compute.virtual_machine_scale_set_rolling_upgrades, method_name)
    with arm_errors(verb, run.resource):
        start_after_write(lambda: method(run.params["resource_group"], run.params["name"], polling=False),
                          run.params["wait_sleep"], run.azure.deadline, after_write=after_write)


def watch(run, before, started):
    """Read the latest upgrade every wait_sleep seconds until it has ended; keeps run.status and run.history."""
    def observe():
        status = run.latest()
        if not (started and rolling.same_upgrade(status, before)):  # not a stale read of the previous upgrade
            run.status = status
            run.first = run.first or status
            rolling.record(run.history, rolling.sample(status, now()))
        return status

    _ended, _status, timed_out = run.azure.watch(rolling_upgrade_ended(before, started), observe=observe,
                                                 what="the end of the rolling upgrade")
    if timed_out:
        unseen = run.status is None or (started and rolling.same_upgrade(run.status, before))
        state = "the new upgrade not yet reported" if unseen else "still %s" % rolling.code_of(run.status)
        run.fail("wait for the rolling upgrade of", "Timeout", "%s after %s seconds; it goes on in Azure "
                 "(action=cancel stops it)" % (state, run.params["wait_timeout"]))


def approve(run, found, before):
    """action=approve: approve instances of the deferred automatic OS upgrade rolling forward - the named ones,
    or every one still pending, at most max_instances - then (wait) see them upgraded and healthy and their
    metric gates pass. Exits the module."""
    module, params = run.module, run.params
    verb = rolling.ACTIONS["approve"][1]
    listed = run.azure.instances()
    unknown = rolling.unknown_ids(listed, params["instance_ids"])
    if unknown:
        run.fail(verb, "InvalidParameter", "instance_ids names instances the scale set does not have: %s."
                 % ", ".join(unknown))
    history = []
    if rolling.is_running(before):
        with arm_errors("read the OS upgrade history of", run.resource):
            history = rolling.read_os_history(run.compute, params["resource_group"], params["name"])
    target = rolling.running_os_target(history, before)
    run.first = before
    if target is None:        # no OS upgrade rolls forward: nothing awaits an approval
        run.decision, run.pending = "nothing_to_approve", []
        module.exit_json(**run.result())
    run.target, run.started_by = {"name": target}, history[0].get("started_by")
    run.pending = rolling.not_on(listed, target)
    run.approved = rolling.choose_approval(run.pending, params["instance_ids"], params["max_instances"])
    if not run.approved:
        run.decision = "nothing_to_approve"
        module.exit_json(**run.result())
    lease = leases.take(module, run.compute, "rolling_upgrade", [(params["resource_group"], params["name"])],
                        docs=[found])
    run.changed, run.decision = True, "approve"
    if module.check_mode:
        module.exit_json(**run.result())
    with arm_errors(verb, run.resource):   # right after the lease's tags PATCH: a 409 is asked again
        poller = start_after_write(lambda: run.compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade(
            params["resource_group"], params["name"], {"instanceIds": run.approved},
            **({} if params["wait"] else {"polling": False})), params["wait_sleep"], run.azure.deadline,
            after_write=lease.unconfirmed())
        if params["wait"]:    # Azure answers once the approved instances are upgraded (or failed)
            run.azure.outcome(poller, "the approved instances' upgrade of %s" % run.resource)
    run.status = run.latest()
    listed = run.azure.instances()
    run.pending = rolling.not_on(listed, target)
    if not params["wait"]:
        module.exit_json(**run.result())
    problem = rolling.approval_failure(run.status, listed, run.approved, target)
    if problem:
        run.fail(verb, *problem, error=run.status.get("error") if rolling.code_of(run.status) == rolling.FAULTED
                 else None)
    if params["metric_gates"]:
        judge_metrics(run, listed)
    module.exit_json(**run.result())


def judge_metrics(run, listed):
    """The approved instances against the metric gates (baseline: the instances still pending), read every
    wait_sleep until judged or the wait_timeout; fails the module when they fail or cannot be judged in time."""
    reader = metrics.MetricsReader(lambda: run.module.client("monitor"), time.time)
    gates = [metrics.with_defaults(gate, run.azure.id) for gate in run.params["metric_gates"]]
    since = time.time()   # the approved instances upgraded and healthy: the grains from here on are the new image's
    verdict, _seen, _late = run.azure.watch(metrics.combine, observe=lambda: reader.judge_all(
        gates, run.approved, run.pending, listed, since), what="metric gates")
    verdict = verdict or {"state": "waiting", "gates": [], "reason": "no metric read before wait_timeout"}
    run.gates = verdict["gates"]
    if verdict["state"] == "failed":
        run.fail(rolling.ACTIONS["approve"][1], "MetricGateFailed", verdict["reason"])
    if verdict["state"] == "waiting":
        run.fail(rolling.ACTIONS["approve"][1], "MetricTimeout", "not judged within wait_timeout=%s seconds: %s"
                 % (run.params["wait_timeout"], verdict["reason"]))


def main():
    module = AzureModule(
        names=dict(name="scale_set"),
        argument_spec=dict(
            resource_group=dict(type="str", required=True),
            name=dict(type="str", required=True),
            action=dict(type="str", required=True, choices=list(rolling.ACTIONS)),
            instance_ids=dict(type="list", elements="str"),
            max_instances=dict(type="int"),
            **metrics.argument_spec(),
        ),
        wait=True,
        lease=True,
        supports_check_mode=True,
    )
    params = module.params
    action = params["action"]
    errors = ["%s is only for action=approve." % key for key in APPROVE_ONLY if params[key] and action != "approve"]
    if params["max_instances"] is not None and params["max_instances"] < 1:
        errors.append("max_instances must be at least 1.")
    errors += metrics.gate_errors(params["metric_gates"])
    if errors:
        module.fail_json(msg="Invalid options: %s" % " ".join(errors))
    deadline = Deadline(params["wait_timeout"])
    run = Run(module, deadline)
    try:
        # current state: the scale set must exist; the latest rolling upgrade (None: there has never been one)
        found = run.azure.read()
        if found is None:
            run.fail(rolling.ACTIONS[action][1], "ResourceNotFound", "the scale set does not exist.")
        before = run.status = run.latest()
        if action == "approve":
            approve(run, found, before)

        # an OS upgrade Azure already ran for the version "latest" resolves to (the automatic OS upgrade a
        # promotion starts) is reported, never started again
        covering, history = None, []
        if action == "start_os_upgrade":
            run.target = None if rolling.is_running(before) else resolve_target(run, found)
            if run.target or rolling.is_running(before):
                with arm_errors("read the OS upgrade history of", run.resource):
                    history = rolling.read_os_history(run.compute, params["resource_group"], params["name"])
            covering = rolling.covering_upgrade(history, run.target)
        run.decision = rolling.start_decision(action, before, covering) if action.startswith("start_") else action
        if covering is not None:
            report_covering(run, covering)
        if run.decision in ("join", "status"):
            run.first = before
            run.started_by = next((entry.get("started_by") for entry in history[:1]
                                   if rolling.same_upgrade(entry, before)), None)
        elif run.decision == "start":
            run.started_by = "User"

        # act (or, in check mode, only say it would)
        writes = rolling.sends_request(action, before)
        lease = None
        if writes:   # one operation per scale set: the lease, or a failure naming its holder
            lease = leases.take(module, run.compute, "rolling_upgrade", [(params["resource_group"], params["name"])],
                                docs=[found], probe=action == "cancel")
        if writes and not module.check_mode:
            send(run, action, after_write=lease.unconfirmed())
        run.changed = writes

        # wait for the upgrade we started, cancelled or found rolling forward; else one read after a write
        if module.check_mode:
            module.exit_json(**run.result())
        started = run.changed and action.startswith("start_")
        if params["wait"] and (run.changed or rolling.is_running(before)):
            watch(run, before, started)
            problem = rolling.failure(action, run.status)
            if problem:
                run.fail(rolling.ACTIONS[action][1], *problem, error=run.status.get("error"))
        elif run.changed:
            run.status = run.latest()
            run.first = run.first or (None if action == "cancel" else run.status)
        module.exit_json(**run.result())
    except AzureFailure as exc:  # an Azure error, a timeout or a failed upgrade: with the run so far
        module.fail_from(exc, **run.result())


if __name__ == "__main__":
    main()
