# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the rollout module: the reads, the writes and the health watch, in the order the module's
story tells them. Every decision (targets, batches, gates, the rollback point) comes from _rollout.

What a run costs Azure:

* before anything is written: one GET of the scale set and one paged list of its instances with their
  instance view (``virtualMachineScaleSets/{name}/virtualMachines``, or the resource group's VMs filtered
  on the scale set when it is Flexible);
* the model change, when there is one: one PATCH conditioned on the ETag read (``If-Match``), carrying the
  rollback point as a tag (see _rollout, "the rollback point"), not waited for through its poller: the scale
  set is read (GET, the cheap budget) every ``wait_sleep`` until its provisioningState leaves Updating, and
  the first batch starts then; Azure refuses a manualupgrade before (409), and one refused so is asked again;
* per batch: exactly one write, ``manualupgrade`` with every instance id of the batch (VM names on a
  Flexible scale set), then one paged list with instance view every ``wait_sleep`` seconds until the batch
  is upgraded (each instance on the target, provisioned, not busy) and then settled: never one GET per
  instance. From the second batch on, the lists thin out until the moments earlier batches were seen
  healthy (bracketed between the look that did not see it and the one that did: mid-way, then the bracket's
  end, _rollout.look_targets), and one list then sees the batch upgraded and healthy at once: a
  1000-instance list is ten reads of HighCostGetVMScaleSet, whose sustained budget is 30 a minute. While the
  upgrade runs, a look stops at the first batch instance not yet upgraded. The operation's own polls (Azure
  asks for 35-61 s before the first) run in the SDK poller's thread and never hold the rollout up; its outcome is
  read as soon as it ends, and at the latest before the rollout completes: a failed operation halts the
  rollout (UpgradeFailed) as before;
* at the end: one PATCH removing the tag. A rollback adds one GET, one PATCH (the previous model), one
  ``manualupgrade`` of every instance the rollout moved, and the health watch.

Which instances are done, and which the rollback moves back, is read from each instance's own image and
size (_rollout.runs_model), the same whatever Azure reports as "latest" after a model change and its revert.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _features as features
from . import _instances as instances
from . import _metrics as metrics
from . import _rollout as planner
from . import _scale_set_model as model
from ._compare import find_named
from ._errors import AzureFailure, arm_errors, arm_failure
from ._lease import TAG as LEASE_TAG
from ._pending import Operations, start_after_write, watch_started
from ._run import RunRecord, empty_summary, now
from ._scale_set_client import ScaleSetClient, batch_on, failures_only, no_instance_busy, not_yet_on
from ._waiter import Deadline

STATUSES = ("planned", "succeeded", "nothing_to_do", "in_progress", "halted", "interrupted", "rolled_back",
            "rollback_failed")
FAILED_STATUSES = ("halted", "interrupted", "rolled_back", "rollback_failed")
# Failures that say nothing about the image: no demotion, and no rollback when the time is spent. Transient
# faults (AzureFailure.transient) say nothing either: they interrupt the run (status interrupted) instead.
# Too little metric data (MetricTimeout) says nothing about the image either: the signal is missing.
NOT_THE_IMAGE = ("PrecheckFailed", "Timeout", "MetricTimeout")


def empty_result(scale_set: str, started_at: str) -> Dict[str, Any]:
    """Every key of the rollout contract (docs: RETURN of the rollout module), None where not applicable."""
    return {
        "changed": False, "status": None, "scale_set": scale_set, "orchestration_mode": None,
        "model_changed": False, "image_before": None, "image_after": None,
        "plan": {"batches": [], "skipped": [], "estimated_seconds": 0.0},
        "batches": [], "batches_total": 0, "halt": None, "rollback": None, "demoted": None, "skipped_instances": [],
        "summary": empty_summary(started_at),
        "report": None,
    }


PART_KEYS = ("image", "sku", "extensions")


def model_part(options: Dict[str, Any], shape: Dict[str, Any]) -> Dict[str, Any]:
    """The model options a rollout changes and restores, for the parts ``shape`` (the desired options, or a
    target) names: the image; sku name and tier (never capacity); per extension named, the fields ``shape`` sets
    (_rollout.EXTENSION_FIELDS; never protected settings), or ``absent`` when ``options`` has no such extension.
    ``options``: the desired options themselves (the target), or the scale set's read back (the rollback point)."""
    out = {}
    for key in PART_KEYS:
        if key not in shape:
            continue
        value = options.get(key)
        if key == "sku" and value is not None:
            value = {name: value.get(name) for name in ("name", "tier") if value.get(name) is not None}
        if key == "extensions":
            value = [_extension_part(find_named(value or [], want["name"]), want) for want in shape[key] or []]
        if value:
            out[key] = value
    return out


class Unreadable(Exception):
    """The instance list failed while an upgrade ran: no verdict on the upgrade (``failure``: the Azure error)."""

    def __init__(self, failure: AzureFailure):
        super().__init__(str(failure))
        self.failure = failure


class Looks:
    """An observe that notes when each of its lists started (time.monotonic, in ``started``, shared by a batch's
    watches), to learn when the next batch's looks are due."""

    def __init__(self, observe: Callable[[], Any], started: List[float]):
        self.observe, self.started = observe, started

    def __call__(self) -> Any:
        self.started.append(time.monotonic())
        return self.observe()


def _observe(read: Callable[[], Any]) -> Callable[[], Any]:
    def observe():
        try:
            return read()
        except AzureFailure as failure:
            raise Unreadable(failure) from failure
    return observe


def _extension_part(found: Optional[Dict[str, Any]], want: Dict[str, Any]) -> Dict[str, Any]:
    if found is None or found.get("absent"):
        return {"name": want["name"], "absent": True}
    return dict({key: copy.deepcopy(found.get(key)) for key in planner.EXTENSION_FIELDS if want.get(key) is not None},
                name=want["name"])


def present_only(part: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A model part without the extensions it says are absent (what a scale set's model can be compared with)."""
    out = dict(part or {})
    if "extensions" in out:
        out["extensions"] = [ext for ext in out["extensions"] if not ext.get("absent")]
    return {key: value for key, value in out.items() if value}


def write_only_parts(desired: Dict[str, Any], before: Optional[Dict[str, Any]], extensions_sent: bool) -> List[str]:
    """What a model change sends that Azure never returns and that existed before it (so a rollback must put the
    previous value back): ``extensions/<name>/protected_settings`` of extensions the scale set already has (sent
    when the extension list is: ``extensions_sent``), ``custom_data``. Only names, never values."""
    had = [ext["name"] for ext in (before or {}).get("extensions") or [] if not ext.get("absent")]
    out = ["extensions/%s/protected_settings" % ext["name"] for ext in desired.get("extensions") or []
           if extensions_sent and ext.get("protected_settings") is not None
           and find_named([{"name": name} for name in had], ext["name"])]
    if (desired.get("os_profile") or {}).get("custom_data") is not None:
        out.append("custom_data")
    return out


def previous_values_missing(parts: List[str], params: Dict[str, Any]) -> List[str]:
    """The write-only parts a rollback would have to restore for which the user supplied no previous value."""
    given = {str(name).lower() for name in (params.get("previous_protected_settings") or {})}
    missing = []
    for part in parts:
        if part == "custom_data":
            if params.get("previous_custom_data") is None:
                missing.append("previous_custom_data")
        elif part.split("/")[1].lower() not in given:
            missing.append("previous_protected_settings.%s" % part.split("/")[1])
    return missing


class Rollout:
    """The state of one run and its steps. ``result`` holds the contract keys at every moment, so a
    failure anywhere still returns what happened up to it."""

    def __init__(self, compute, params: Dict[str, Any], counter, check_mode: bool = False,
                 monitor: Optional[Callable[[], Any]] = None):
        self.params = params
        self.check_mode = check_mode
        self.record = RunRecord(counter)
        self.deadline = Deadline(params["wait_timeout"])
        self.azure = ScaleSetClient(compute, params["resource_group"], params["name"], self.deadline, params["wait_sleep"])
        self.result = empty_result("%s/%s" % (params["resource_group"], params["name"]), self.record.started_at)
        self.desired: Dict[str, Any] = {}
        self.tracker = None
        self.marker: Optional[Dict[str, Any]] = None
        self.before: Optional[Dict[str, Any]] = None     # the rollback point (option shape), None if unknown
        self.target: Dict[str, Any] = {}
        self.moves: Dict[str, Any] = {}                  # what tells moved instances apart (image, size, extensions)
        self.secrets: List[str] = []                     # write-only parts the rollout changes (names only)
        self.listed: List[Dict[str, Any]] = []
        self.batches: List[List[Dict[str, Any]]] = []    # write batches still to run, planned
        self.unconfirmed: List[str] = []                 # upgraded by an interrupted run, health not yet seen
        self.operations = Operations()                   # upgrade operations started, outcome not read yet
        self.patched = False                             # a model PATCH since the last manual upgrade (apply_model)
        # seconds from a manual upgrade's POST to its instances seen upgraded, and seen healthy, bracketed by
        # earlier batches' looks (_rollout.learn_bracket): when the next batches' looks are due (look_targets)
        self.expected: Dict[str, Tuple[Optional[float], float]] = {}
        self.posted: Optional[float] = None               # when the last manual upgrade was sent
        self.looked: List[float] = []                     # when each list since it started (time.monotonic)
        self.settle = 0.0                                # seconds the health extension takes to settle (plan)
        self.canary = 0
        self.fault: Optional[AzureFailure] = None          # the transient fault that interrupted the run
        self.stopped_at: Optional[int] = None            # the batch an Azure error stopped (stop_batch)
        self.verdict = False                             # the fault came after a halt (demotion, rollback)
        self.first_number = 1                            # the rollout-wide number of this run's first batch
        # batch_gate: after each step of max_batches batches (with more to run), publish it and wait for the word:
        # True to run the next step (_batch_gate)
        self.between: Optional[Callable[[], bool]] = None
        self.metrics = metrics.MetricsReader(monitor, time.time) if params.get("metric_gates") else None

    # ------------------------------------------------------------------------------------------
    # current state, desired state, difference

    def read(self, again: bool = True) -> Optional[Dict[str, Any]]:
        """The scale set and the rollback point it carries (PlanError for a tag that is not one); ``again`` false:
        as a pre-flight just read it."""
        resource = self.azure.read() if again else self.azure.resource
        if resource is not None:
            self.result["orchestration_mode"] = "Flexible" if instances.is_flexible(resource) else "Uniform"
            self.marker = planner.decode_marker(resource.get("tags"))
        return resource

    def compare(self, desired: Dict[str, Any]) -> List[str]:
        """The model difference and every reason the rollout cannot run (sentences; none written yet)."""
        resource = self.azure.resource
        self.desired = desired
        errors = model.validate(desired, resource)
        self.tracker = model.differences(desired, resource)
        current = model.current_options(resource)
        shape = dict((self.marker or {}).get("target") or {}, **desired)
        if self.marker is not None:
            self.before = dict(model_part(current, shape), **self.marker["before"])
            self.target = model_part(desired, desired) if self.tracker else dict(self.marker.get("target") or {})
        elif self.tracker:
            self.before = model_part(current, shape)
            self.target = model_part(desired, desired)
        # What tells a moved instance apart: what the rollout changes, or, when the model already is what the
        # user asks (a re-run after a rollback, whose revert left untouched instances "not latest" on Azure),
        # the image and size asked for. Empty only for a rollout onto a model changed elsewhere.
        self.moves = planner.changed_part(self.before, self.target) if self.before is not None \
            else planner.changed_part(None, model_part(desired, desired))
        self.result["image_before"] = (self.before or {}).get("image") or current.get("image")
        self.result["image_after"] = desired.get("image") or current.get("image")
        mode = str(((resource.get("properties") or {}).get("upgradePolicy") or {}).get("mode") or "Manual")
        if self.tracker and mode.lower() != "manual":
            errors.append("the scale set's upgrade_policy.mode is %s: a model change would reach instances %s, not "
                          "in this rollout's batches. Set upgrade_policy.mode Manual with fleetops.vmss.scale_set "
                          "first (fleetops.vmss.rolling_upgrade drives Azure's own rolling upgrades)."
                          % (mode, "all at once" if mode.lower() == "automatic" else "through Azure's rolling upgrade"))
        errors.extend(self.rollback_point_errors())
        if model.health_extension(resource) is None:
            errors.append("the scale set's model has no Application Health extension: the rollout gates every batch "
                          "on it. Add it with fleetops.vmss.scale_set (application_health) first.")
        # Flexible: manual upgrade to a new image is a preview behind a subscription feature (_features).
        if instances.is_flexible(resource) and features.image_changes(self.tracker, self.before, self.target):
            with arm_errors("read the registration of feature %s for" % features.IMAGE_UPGRADE_FEATURE, self.azure.what):
                problem = features.check_image_upgrade(self.azure.compute, self.azure.compute._config.subscription_id,
                                                       self.result["scale_set"])
            errors.extend([problem] if problem else [])
        return errors

    def rollback_point_errors(self) -> List[str]:
        """Why the rollback point cannot be kept, or a rollback could not restore the previous model: the
        write-only parts (protected settings, custom data) without a previous value while on_failure=rollback,
        a rollback point too large for the scale set's tags. Before any write."""
        errors = []
        sent = write_only_parts(self.desired, self.before, self.tracker.touches("extensions")) if self.tracker else []
        self.secrets = sorted(set(sent) | set((self.marker or {}).get("secrets") or []))
        missing = previous_values_missing(self.secrets, self.params)
        if missing and self.params["on_failure"] == "rollback":
            errors.append("a rollback could not restore %s: Azure never returns protected settings or custom data, "
                          "so the previous values cannot be read back once the rollout has replaced them. Give %s "
                          "(the previous version's values; never logged), or set on_failure=halt to accept a rollout "
                          "that halts without rolling back." % (", ".join(s.replace("previous_", "the previous ", 1)
                                                                          for s in missing), " and ".join(missing)))
        if self.tracker:
            marker = planner.new_marker(self.before, self.target, self.result["summary"]["started_at"],
                                        planned=999, secrets=self.secrets)   # the most digits a plan needs here
            tags = dict(self.azure.resource.get("tags") or {}, **{LEASE_TAG: ""})
            problem = planner.marker_tag_problem(tags, marker)
            errors.extend([problem] if problem else [])
        return errors

    def diff(self) -> Dict[str, Any]:
        return self.tracker.diff() if self.tracker else {"before": {}, "after": {}}

    # ------------------------------------------------------------------------------------------
    # plan

    def plan(self) -> Optional[str]:
        """List the instances (after any operation in flight ends) and plan the batches; returns why the
        rollout must not start (the precheck), or None."""
        self.listed = self.listed or self.azure.instances()   # a pre-flight's list, when it read one
        if not self.check_mode and any(planner.is_busy(i) for i in self.listed):
            self.listed = self.settle_in_flight()
        self.result["summary"]["instances_total"] = len(self.listed)
        resuming = self.marker is not None and not self.tracker
        # Done: the instances already running the target (their own image and size). Only when that cannot
        # say (no target known) does Azure's latestModelApplied decide, and before a model change every
        # instance is about to be "not latest".
        pool = [dict(i, latest_model_applied=False) for i in self.listed] if self.tracker else self.listed
        done = planner.upgraded(pool, self.moves)
        self.unconfirmed = [i["instance_id"] for i in pool if resuming and i["instance_id"] in done
                            and i.get("health_state") != planner.HEALTHY]
        self.make_plan(pool, done)
        self.first_number = planner.first_batch_number(None if self.tracker else self.marker, len(self.batches),
                                                       bool(self.unconfirmed))
        if self.marker is not None and self.marker.get("state") == "rolling_back":
            return None
        return planner.precheck(self.listed, self.params["max_unhealthy_instance_percent"],
                                ignore=done if resuming else ())

    def make_plan(self, pool: List[Dict[str, Any]], done: List[str]) -> None:
        params = self.params
        targets, skipped = planner.select_targets(pool, self.moves)
        self.canary = params["canary"] if not done else 0   # the canary ran already when anything is upgraded
        self.batches = planner.plan_batches(targets, params["batch_by"], params["batch_size"], canary=self.canary,
                                            prioritize_unhealthy=params["prioritize_unhealthy_instances"],
                                            set_size=len(pool))
        resume = [i for i in pool if i["instance_id"] in self.unconfirmed]
        described = planner.describe_plan(([resume] if resume else []) + self.batches, canary=self.canary,
                                          resume=bool(resume))
        health = model.health_extension(self.azure.resource) or {}
        settle = self.settle = planner.settle_seconds((health.get("properties") or {}).get("settings"))
        estimate = planner.estimate_seconds(self.batches, planner.UPGRADE_SECONDS, settle,
                                            params["pause_between_batches"], params["canary_soak"], self.canary)
        self.result["plan"] = {"batches": described, "skipped": skipped, "estimated_seconds": float(estimate)}
        self.result["skipped_instances"] = skipped   # not "skipped": Ansible reads that as "the task was skipped"
        self.result["summary"].update(instances_skipped=len(skipped), batches_planned=len(described))

    def settle_in_flight(self) -> List[Dict[str, Any]]:
        """Wait for operations already running on instances (an interrupted run's last upgrade, a repair):
        a manual upgrade naming a busy instance would be refused (409) for the whole batch."""
        _gate, listed, timed_out = self.azure.watch(no_instance_busy)
        if timed_out:
            raise arm_failure("wait for the instances of", self.azure.what, {
                "code": "Timeout", "message": "operations on instances did not end within wait_timeout=%s seconds"
                % self.params["wait_timeout"], "status": None, "request_id": None})
        return listed

    # ------------------------------------------------------------------------------------------
    # act

    def change_model(self) -> None:
        """The model change and the rollback point, in one conditional PATCH."""
        if not self.tracker:
            return
        resource = self.azure.resource
        started_at = (self.marker or {}).get("started_at") or self.result["summary"]["started_at"]
        self.marker = planner.new_marker(self.before, self.target, started_at, planned=len(self.batches),
                                         secrets=self.secrets)
        body = with_custom_data(model.update_body(self.tracker, self.desired, resource),
                                (self.desired.get("os_profile") or {}).get("custom_data"))
        body["tags"] = dict(planner.without_marker(resource.get("tags")), **planner.encode_marker(self.marker))
        self.apply_model(body)
        self.result.update(changed=True, model_changed=True)
        self.tracker = None

    def apply_model(self, body: Dict[str, Any]) -> None:
        """The PATCH, not waited for through its poller: the scale set is read until it is Succeeded
        (ScaleSetClient.wait_applied), and the first manual upgrade after it retries a 409 (upgrade)."""
        self.azure.update(body, wait=False)
        self.azure.wait_applied()
        self.patched = True

    def run_batches(self) -> None:
        """The resume check (instances an interrupted run upgraded), then the batches, up to max_batches."""
        index = 0
        if self.unconfirmed:
            if not self.run_batch(index, "resume", self.unconfirmed, write=False):
                return
            index += 1
        limit = self.params["max_batches"]
        for number, batch in enumerate(self.batches):
            if limit is not None and number and number % limit == 0:   # a step's batches ran
                if not self.finish_operations(index + number - 1):
                    return
                if self.between is None or not self.between():   # no batch_gate, or not its go: return here
                    self.result["status"] = "in_progress"
                    return
            if number:
                self.pause(self.params["pause_between_batches"])
            kind = "canary" if self.canary and number == 0 else "batch"
            if not self.run_batch(index + number, kind, [i["instance_id"] for i in batch]):
                return
        if self.finish_operations(index + len(self.batches) - 1):
            self.complete()

    def estimate_from(self, number: int) -> float:
        """The plan's estimate from batch ``number`` on: what a call starting there would estimate."""
        start = max(number - self.first_number - (1 if self.unconfirmed else 0), 0)
        return planner.estimate_seconds(self.batches[start:], planner.UPGRADE_SECONDS, self.settle,
                                        self.params["pause_between_batches"], self.params["canary_soak"],
                                        self.canary if start == 0 else 0)

    def finish_operations(self, index: int) -> bool:
        """The outcome of every upgrade operation still polled, waited for (within the deadline) before the
        run reports success: a failed one halts the rollout at the last batch run. False when it halted."""
        try:
            self.check_operations(wait=True)
        except AzureFailure as failure:
            if failure.transient:   # no verdict: the run is interrupted, a re-run resumes
                raise
            timed_out = failure.details.get("code") == "Timeout"
            self.halt(index, *(("Timeout", "the rollout's wait_timeout passed while an upgrade was running")
                               if timed_out else ("UpgradeFailed", str(failure))))
            return False
        return True

    def run_batch(self, index: int, kind: str, ids: List[str], write: bool = True) -> bool:
        """Upgrade one batch (one write), watch its health, apply the gates. False when the rollout stops."""
        params = self.params
        record = self.record.batch(index, kind, ids, note=None)
        self.result["batches"].append(record)
        gate: Dict[str, Any] = {}
        upgraded = None
        try:
            if write:
                self.result["changed"] = True
                upgraded = self.upgrade(ids, self.moves)
                self.result["summary"]["instances_upgraded"] += len(ids)
        except Unreadable as unreadable:   # health unreadable: say nothing of the image, stop where it is
            self.stop_batch(record, index, unreadable.failure)
        except AzureFailure as failure:
            if failure.transient:   # throttled, refused for now, no answer: stop here, judge nothing
                self.stop_batch(record, index, failure)
            timed_out = failure.details.get("code") == "Timeout"
            record["outcome"] = "timeout" if timed_out else "failed"
            number = self.first_number + index
            halt = ("Timeout", "the rollout's wait_timeout passed while batch %d was upgrading" % number) \
                if timed_out else ("UpgradeFailed", str(failure))
        else:
            try:   # health_timeout counts from the list that saw the batch upgraded, whose first look it is
                gate, listed, timed_out = self.watch_health(self.gate(ids), upgraded)
                if timed_out and not self.deadline.expired:   # health_timeout: judged by the thresholds now
                    gate = self.gate(ids, at_timeout=True)(listed)
                if gate["state"] == "passed" and kind == "canary" and params["canary_soak"]:
                    record["soak_seconds"] = params["canary_soak"]   # the end of the batch, for the report
                    gate, listed, timed_out = self.soak(ids)
            except AzureFailure as failure:   # health unreadable: say nothing of the image, stop where it is
                self.stop_batch(record, index, failure)
            record["health"] = planner.health_of(ids, listed)
            halt = self.judge(record, gate, timed_out)
            if halt is None and self.metrics is not None:
                halt = self.judge_metrics(record, index, ids, listed)
        self.record.close(record, unhealthy_upgraded_percent=gate.get("upgraded_percent", 0.0),
                          unhealthy_set_percent=gate.get("set_percent", 0.0))
        if halt is None:
            self.result["summary"]["batches_completed"] += 1
            return True
        self.halt(index, *halt)
        return False

    def upgrade(self, ids: List[str], part: Dict[str, Any]) -> List[Dict[str, Any]]:
        """One manualupgrade of ``ids`` (one write); returns the instance list that saw every one of them on
        ``part``, provisioned and not busy (batch_on). The operation is not waited for: its outcome is read once
        it ends (check_operations, at every look), so a failed upgrade raises its ARM error as before, and one
        that ended without the instances there yet ends the wait too (the health watch then judges them).

        The looks: every wait_sleep on the run's first batch; on later ones (and the rollback) thinned out
        until the moments earlier batches' instances were seen healthy (or, before any was, upgraded): one
        list can see both, and the health watch then passes on it (expect, learn). The list failing raises
        Unreadable; the run's deadline passing, code Timeout."""
        started = self.start_upgrade(ids)
        self.posted, self.looked = time.monotonic(), []
        pollers = [poller for _ids, poller in started]
        self.operations.add(pollers, self.upgrade_outcome)
        waiting = not_yet_on(ids, part)

        def until(instance):   # while the operation runs, an instance of the batch not there yet says "not done"
            return waiting(instance) and not all(poller.done() for poller in pollers)

        targets = self.expect("healthy") or self.expect("upgraded")
        # just started: a list now cannot see it done, a wasted read
        time.sleep(max(0.0, min(planner.next_look(targets[0] - self.posted if targets else None,
                                                  self.params["wait_sleep"]), self.deadline.remaining())))
        looks = Looks(_observe(lambda: self.azure.instances(until=until)), self.looked)
        # a look stopped early (None) is not done: the next one reads the whole list
        listed, timed_out = watch_started(self.azure, self.operations, pollers, batch_on(ids, part), looks,
                                          "instances %s upgraded" % ", ".join(ids), expected_at=targets)
        if timed_out:
            raise arm_failure("upgrade instances of", self.azure.what, {
                "code": "Timeout", "message": "the upgrade of instances %s did not end within wait_timeout=%s seconds"
                % (", ".join(ids), self.params["wait_timeout"]), "status": None, "request_id": None})
        self.learn("upgraded")
        return listed

    def start_upgrade(self, ids: List[str]) -> List[Tuple[List[str], Any]]:
        """The manualupgrade. The first after a model PATCH may meet Azure's 409 (the scale set's update, or
        the lease's, still running): asked again every wait_sleep for CONFLICT_SECONDS, never a verdict
        (_pending.start_after_write)."""
        started = start_after_write(lambda: self.azure.start("upgrade", ids), self.params["wait_sleep"], self.deadline,
                                    after_write=self.patched)
        self.patched = False
        return started

    def expect(self, event: str, later: float = 0.0) -> List[float]:
        """When (time.monotonic) to look for this batch's ``event`` ("upgraded", "healthy"), from earlier batches'
        (_rollout.look_targets), ``later`` seconds on; empty when not known."""
        if self.posted is None:
            return []
        return [self.posted + offset + later for offset in planner.look_targets(self.expected.get(event))]

    def check_operations(self, wait: bool = False) -> None:
        """Read the outcome of every upgrade operation that has ended (of all, waiting within the deadline,
        when ``wait``): a failed one raises its ARM error. The rest poll on in their own threads."""
        self.operations.check(wait)

    def upgrade_outcome(self, poller) -> None:
        with arm_errors("upgrade instances of", self.azure.what):
            self.azure.outcome(poller, "upgrade of instances of %s" % self.azure.what)

    def watch_health(self, gate: Callable[[List[Dict[str, Any]]], Dict[str, Any]],
                     upgraded: Optional[List[Dict[str, Any]]], wrap: Callable[[Callable], Callable] = lambda f: f):
        """The health watch (health_timeout) after an upgrade: its first look is the list that saw the instances
        upgraded (None: no upgrade, the instances listed); the next are thinned out until the moment earlier
        batches passed (expect, learn). Returns the watch's (gate, listed, timed_out)."""
        looks = self.listing(upgraded)
        # before any batch was judged: the health extension settles after its probes (settle_seconds) from the
        # moment the batch was upgraded, which this batch's own looks bracket
        expected_at = self.expect("healthy") or self.expect("upgraded", later=self.settle) \
            if upgraded is not None else None
        gate, listed, timed_out = self.azure.watch(gate, self.params["health_timeout"], observe=wrap(looks),
                                                   expected_at=expected_at)
        if upgraded is not None and gate["state"] in ("passed", "failed"):   # judged: the health signal settled
            self.learn("healthy")   # (a rollback after a batch found Unhealthy aims at that moment too)
        return gate, listed, timed_out

    def learn(self, event: str) -> None:
        """``event`` seen by the batch's last list: bracketed between its start and the start of the list before
        it (_rollout.learn_bracket), in seconds after the manualupgrade."""
        if self.looked and self.posted is not None:
            seen = self.looked[-1] - self.posted
            missed = self.looked[-2] - self.posted if len(self.looked) > 1 else None
            self.expected[event] = planner.learn_bracket(self.expected.get(event), missed, seen)

    def listing(self, first: Optional[List[Dict[str, Any]]]) -> Callable[[], List[Dict[str, Any]]]:
        """The watch's observe: ``first`` (a list just read) at the first look, then the instances listed
        (each noted in the batch's looks)."""
        pending = [first] if first is not None else []
        looks = Looks(self.azure.instances, self.looked)
        return lambda: pending.pop() if pending else looks()

    def stop_batch(self, record: Dict[str, Any], index: int, failure: AzureFailure) -> None:
        """An Azure error that is no verdict on the batch (a transient fault, health unreadable): the batch
        ends there (outcome interrupted or failed) and the error goes up to the module (stopped_by)."""
        self.record.close(record, outcome="interrupted" if failure.transient else "failed")
        self.result["halt"] = RunRecord.halt(index, failure.details.get("code"), str(failure))
        self.stopped_at = index
        raise failure

    def gate(self, ids: List[str], at_timeout: bool = False) -> Callable[[List[Dict[str, Any]]], Dict[str, Any]]:
        gate = planner.Gate.of(self.params)
        return lambda listed: planner.batch_gate(ids, planner.upgraded(listed, self.moves), listed, gate,
                                                 at_timeout=at_timeout)

    def soak(self, ids: List[str]):
        """After a healthy canary: keep watching it for canary_soak seconds; any gate failure stops the rollout."""
        result, listed, timed_out = self.azure.watch(failures_only(self.gate(ids)), self.params["canary_soak"])
        if timed_out and not self.deadline.expired:
            return dict(result, state="passed"), listed, False
        return result, listed, timed_out

    def judge(self, record: Dict[str, Any], gate: Dict[str, Any], timed_out: bool):
        """The batch's outcome; (code, reason) when the rollout must stop, else None.

        healthy; tolerated (health_timeout passed with instances not Healthy, within both thresholds: ``note``
        says which); unhealthy (a threshold crossed by the batch's own instances or the upgraded ones);
        set_unhealthy (the batch is Healthy, the rest of the set crossed max_unhealthy_instance_percent);
        timeout (health_timeout passed beyond the thresholds, or the rollout's wait_timeout)."""
        waiting = ", ".join("%s %s" % (i, record["health"].get(i) or "no health signal")
                            for i in gate["pending"] + gate["unhealthy"])
        if gate["state"] == "passed":
            record["outcome"] = "tolerated" if waiting else "healthy"
            if waiting:
                record["note"] = "; ".join(filter(None, ["not Healthy within health_timeout=%s seconds: %s" % (
                    _number(self.params["health_timeout"]), waiting), gate["reason"]]))
            return None
        if timed_out or gate["state"] == "waiting":
            record["outcome"] = "timeout"
            if self.deadline.expired:
                return "Timeout", "the rollout's wait_timeout passed while waiting for health (%s)" % waiting
            return "HealthTimeout", "not Healthy within health_timeout=%s seconds: %s" % (
                _number(self.params["health_timeout"]), waiting)
        own = gate["unhealthy"] or gate["code"] != "MaxUnhealthyInstancePercentExceeded"
        record["outcome"] = "unhealthy" if own else "set_unhealthy"
        return gate["code"], gate["reason"]

    def judge_metrics(self, record: Dict[str, Any], index: int, ids: List[str], listed: List[Dict[str, Any]]):
        """After the health gate passed: the metric gates (see _metrics), read every wait_sleep until judged or
        health_timeout; (code, reason) when they stop the rollout. A fault reading them interrupts (stop_batch)."""
        gates = [metrics.with_defaults(g, self.azure.id) for g in self.params["metric_gates"]]
        upgraded = set(planner.upgraded(listed, self.moves)) | set(ids)
        baseline = [str(i["instance_id"]) for i in listed if str(i["instance_id"]) not in upgraded]
        since = time.time()   # health settled: the grains from here on hold the new image's traffic alone

        def observe():
            return self.metrics.judge_all(gates, ids, baseline, listed, since)

        try:
            verdict = self.azure.watch(metrics.combine, self.params["health_timeout"], observe=observe,
                                       what="metric gates")[0]
        except AzureFailure as failure:
            self.stop_batch(record, index, failure)
        verdict = verdict or {"state": "waiting", "gates": [], "reason": "no metric read before health_timeout"}
        record["metrics"] = verdict["gates"]
        if verdict["state"] == "passed":
            if verdict["reason"]:
                record["note"] = "; ".join(filter(None, [record.get("note"), verdict["reason"]]))
            return None
        if verdict["state"] == "failed":
            record["outcome"] = "unhealthy"
            return "MetricGateFailed", verdict["reason"]
        record["outcome"] = "timeout"
        if self.deadline.expired:
            return "Timeout", "the rollout's wait_timeout passed while waiting for metrics (%s)" % verdict["reason"]
        return "MetricTimeout", "not judged within health_timeout=%s seconds: %s" % (
            _number(self.params["health_timeout"]), verdict["reason"])

    def pause(self, seconds: float) -> None:
        if seconds:
            time.sleep(max(0.0, min(seconds, self.deadline.remaining())))

    def complete(self) -> None:
        """Every target is upgraded and healthy: the rollback point is removed."""
        if self.marker is not None:
            self.clear_marker()
            self.result["changed"] = True
        if self.result["changed"]:
            self.result["status"] = "succeeded"
        else:
            self.result["status"] = "nothing_to_do"

    def clear_marker(self) -> None:
        """Remove the rollback point (a PATCH of the tags only: tags are not part of the model instances run).
        Conditioned on the ETag last seen; read again once when something else changed the scale set meanwhile
        (an autoscale capacity change)."""
        for attempt in (1, 2):
            try:
                self.azure.update({"tags": planner.without_marker(self.azure.resource.get("tags"))}, wait=False)
                break
            except AzureFailure as failure:
                if attempt == 2 or failure.details.get("status") != 412:
                    raise
                self.azure.read()
        self.marker = None

    # ------------------------------------------------------------------------------------------
    # failure: halt, demote, roll back

    def halt(self, batch_index: Optional[int], code: str, reason: str) -> None:
        params = self.params
        self.result["halt"] = RunRecord.halt(batch_index, code, reason)
        self.result["status"] = "halted"
        if code in NOT_THE_IMAGE:
            return
        if params["demote_image_version_on_failure"]:
            version_id = self.desired.get("image", {}).get("id")
            if self.azure.demote(version_id):
                self.result["changed"] = True
            self.result["demoted"] = {"image_version_id": version_id, "exclude_from_latest": True}
        if params["on_failure"] == "rollback":
            if self.before is None:
                self.result["halt"]["reason"] += ("; not rolled back: no rollback point (this module did not change "
                                                  "the model, and the scale set carries no %s tag)" % planner.MARKER_TAG)
            else:
                self.roll_back()

    def roll_back(self, resumed: bool = False) -> None:
        """Restore the previous model (If-Match), move every instance the rollout moved back onto it in one
        write, and watch their health. The rollback point stays (state rolling_back) until they are healthy,
        so a re-run after an interruption finishes the rollback instead of rolling forward. ``resumed``: the
        interrupted run may have moved instances back already; every instance on the previous model that is
        not Healthy is watched too (_rollout.rollback_watch)."""
        params = self.params
        record = RunRecord.rollback()
        self.result["rollback"] = record
        self.result["status"] = "rollback_failed"
        resource = self.azure.read()
        if model.differences(self.target, resource) and model.differences(present_only(self.before), resource):
            record.update(outcome="failed", ended_at=now())
            self.result["halt"]["reason"] += ("; not rolled back: the scale set's model was changed by someone else "
                                              "during the rollout")
            return
        self.marker = planner.new_marker(self.before, self.target, (self.marker or {}).get("started_at")
                                         or self.result["summary"]["started_at"], state="rolling_back",
                                         planned=(self.marker or {}).get("planned"), secrets=self.secrets)
        body = self.restore_body(resource)
        restore = bool(body)
        tags = dict(planner.without_marker(resource.get("tags")), **planner.encode_marker(self.marker))
        if restore or tags != (resource.get("tags") or {}):
            self.apply_model(dict(body, tags=tags))
            self.result.update(changed=True, model_changed=self.result["model_changed"] or bool(restore))
        listed = self.azure.instances()
        if any(planner.is_busy(i) for i in listed):
            listed = self.settle_in_flight()
        restored = planner.changed_part(self.target, self.before)
        ids = planner.rollback_targets(listed, restored)
        record["instance_ids"] = ids
        watched = planner.rollback_watch(listed, restored, ids) if resumed else ids
        # The forward batches' operations still polled are left: the halt has judged already.
        self.operations.drop()
        upgraded = None
        try:
            if ids:
                self.result["changed"] = True
                upgraded = self.upgrade(ids, restored)
            gate, listed, _timed_out = self.watch_health(
                lambda found: planner.batch_gate(watched, [], found, planner.NO_GATE), upgraded, _observe)
            self.check_operations(wait=True)   # the rollback's own operation: its outcome before the verdict
        except Unreadable as unreadable:   # the list failed: no verdict on the rollback, the error goes up
            raise unreadable.failure
        except AzureFailure as failure:
            if failure.transient:   # the rollback point says rolling_back: a re-run finishes the rollback
                raise
            record.update(outcome="failed", ended_at=now())
            self.result["halt"]["reason"] += "; rollback failed: %s" % failure
            return
        record["health"] = planner.health_of(watched, listed)
        if gate["state"] == "passed":
            record["outcome"] = "healthy"
        else:
            record["outcome"] = "unhealthy" if gate["unhealthy"] else "timeout"
        record["ended_at"] = now()
        if record["outcome"] == "healthy":
            self.clear_marker()
            self.result["status"] = "rolled_back"
        else:
            self.result["halt"]["reason"] += (
                "; rollback failed: not Healthy within health_timeout=%s seconds after the rollback: %s (the rollback "
                "point, tag %s, is kept)" % (_number(params["health_timeout"]), ", ".join(
                    "%s %s" % (i, record["health"].get(i) or "no health signal")
                    for i in gate["pending"] + gate["unhealthy"]), planner.MARKER_TAG))

    def restore_body(self, resource: Dict[str, Any]) -> Dict[str, Any]:
        """The PATCH that puts the rollback point's model back: its image and size, its extension definitions
        (extensions the rollout added removed), and the write-only parts from the previous values the user gave."""
        given = self.params.get("previous_protected_settings") or {}
        previous = {str(name).lower(): value for name, value in given.items()}
        added = [ext["name"] for ext in (self.before or {}).get("extensions") or [] if ext.get("absent")]
        before = present_only(self.before)
        if before.get("extensions"):
            before["extensions"] = [dict(ext, protected_settings=previous.get(ext["name"].lower()))
                                    for ext in before["extensions"]]
        tracker = model.differences(before, resource)
        body = model.update_body(tracker, before, resource) if tracker else {}
        restores = any(("extensions/%s/protected_settings" % ext["name"]) in self.secrets for ext in
                       before.get("extensions") or [])
        if added or restores:   # the whole list: extensions the rollout added go, protected settings come back
            extensions = [ext for ext in model.merged_extensions(resource, before)
                          if not find_named([{"name": name} for name in added], ext.get("name"))]
            body.setdefault("properties", {}).setdefault("virtualMachineProfile", {})["extensionProfile"] = {
                "extensions": extensions}
        if "custom_data" in self.secrets:
            body = with_custom_data(body, self.params.get("previous_custom_data"))
        return body

    def finish_interrupted_rollback(self) -> None:
        """The scale set carries a rollback point in state rolling_back: a run was interrupted while rolling
        back. Finish that rollback whatever this run asks; the next run starts afresh."""
        self.target = dict(self.marker.get("target") or {})
        self.result["halt"] = RunRecord.halt(None, "RollbackResumed", "a rollback of %s was interrupted"
                                             % _describe_image(self.target.get("image")))
        self.roll_back(resumed=True)
        if self.result["status"] == "rolled_back":
            self.result["halt"]["reason"] += "; this run finished it"

    def roll_back_on_request(self) -> None:
        """Option rollback: roll back the rollout the rollback point records, now, whatever health says (the
        decision was taken elsewhere: an alert, an operator). No rollback point: nothing to do."""
        if self.marker is None:
            self.result["status"] = "nothing_to_do"
        elif self.check_mode:
            self.result.update(status="planned", changed=True)
        elif self.marker.get("state") == "rolling_back":
            self.finish_interrupted_rollback()
        else:
            self.target = dict(self.marker.get("target") or {})
            self.result["halt"] = RunRecord.halt(None, "RollbackRequested", "rollback of %s requested (option rollback)"
                                                 % _describe_image(self.target.get("image")))
            self.roll_back()

    # ------------------------------------------------------------------------------------------
    # result

    def requests(self, since: Optional[Tuple[int, int]] = None):
        return self.record.requests(since)

    def finish(self) -> Dict[str, Any]:
        self.record.finish(self.result["summary"])
        return self.result

    def stopped_by(self, failure: AzureFailure) -> str:
        """An Azure error the run could not get past; returns the module's failure message.

        A transient fault (throttling, 5xx, 409 "another operation is in progress", a lost connection, after
        the SDK's retries) interrupts the run: status interrupted, nothing judged, rolled back or demoted, the
        rollback point kept, so the same task run again resumes (or finishes the rollback). Any other error
        halts it where it is (the status a rollback reached stays)."""
        result = self.result
        rollback = result["rollback"]
        if rollback is not None and rollback["outcome"] is None:
            rollback.update(outcome="interrupted" if failure.transient else "failed", ended_at=now())
        self.verdict = result["halt"] is not None and self.stopped_at is None
        if result["halt"] is None:
            result["halt"] = RunRecord.halt(None, failure.details.get("code"), str(failure))
        if failure.transient:
            result["status"] = "interrupted"
            self.fault = failure
            return self.message()
        if result["status"] in (None, "in_progress", "succeeded"):
            result["status"] = "halted"
        return str(failure)

    def message(self) -> Optional[str]:
        """The failure message, None when the run did not fail."""
        halt = self.result["halt"]
        if self.result["status"] == "interrupted":
            return self.interrupted_message()
        if self.result["status"] not in FAILED_STATUSES or halt is None:
            return None
        if self.result["status"] == "rolled_back" and self.params.get("rollback"):
            return None   # the rollback asked for is done
        rolled_back = len(self.result["rollback"]["instance_ids"]) \
            if self.result["status"] == "rolled_back" and self.result["rollback"] else None
        return self.halt_text(rolled_back)

    def halt_text(self, rolled_back: Optional[int] = None) -> str:
        halt = self.result["halt"]
        if halt["code"] in ("RollbackResumed", "RollbackRequested"):
            back = "" if rolled_back is None else "; rolled back %s instances" % rolled_back
            return "Rollout of scale set %s: %s%s" % (self.result["scale_set"], halt["reason"], back)
        return planner.halt_message(self.result["scale_set"], halt["batch_index"], self.batches_total(), halt["reason"],
                                    rolled_back, first=self.first_number)

    def batches_total(self) -> int:
        """The rollout's batches: those earlier runs of it ran, and this run's plan."""
        return self.first_number - 1 + self.result["summary"]["batches_planned"]

    def interrupted_message(self) -> str:
        """What stopped the run, what it did not do, and how to go on."""
        result = self.result
        kept = " The rollback point (tag %s) is kept." % planner.MARKER_TAG if self.marker is not None else ""
        if self.verdict:   # the fault cut short what the halt started: the demotion, the rollback
            return ("%s; then a transient fault interrupted the %s: %s.%s Run the same task again to finish it."
                    % (self.halt_text(), "rollback" if result["rollback"] is not None else "demotion", self.fault,
                       kept))
        index = result["halt"]["batch_index"]
        where = " at batch %d of %d" % (self.first_number + index, self.batches_total()) if index is not None else ""
        return ("Rollout of scale set %s interrupted%s by a transient fault, not a verdict on the image: %s. Nothing "
                "was rolled back or demoted.%s Run the same task again to resume."
                % (result["scale_set"], where, self.fault, kept))


def with_custom_data(body: Dict[str, Any], custom_data: Optional[str]) -> Dict[str, Any]:
    """``body`` (a scale-set PATCH) carrying the model's custom data, when there is one to send: Azure never
    returns it, so it is never compared (_scale_set_model), only sent with the model change it belongs to."""
    if custom_data is None:
        return body
    vm = body.setdefault("properties", {}).setdefault("virtualMachineProfile", {})
    vm.setdefault("osProfile", {})["customData"] = model.encode_custom_data(custom_data)
    return body


def _number(value: float) -> str:
    return ("%d" % value) if float(value).is_integer() else ("%s" % value)


def _describe_image(image: Optional[Dict[str, Any]]) -> str:
    if not image:
        return "the model change"
    if image.get("id"):
        return "image %s" % image["id"]
    return "image %s" % ":".join(str(image.get(key)) for key in ("publisher", "offer", "sku", "version"))
