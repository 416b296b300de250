# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the blue_green module: the reads, the writes and the waits behind each step of _blue_green.

Before every step the run reads what Azure has - both scale sets (blue with ``$expand=userData``, which a
copy needs), their instances with instance views (one paged list each), the backend pools' members
(LoadBalancerBackendAddressPools - Get, through azure-mgmt-network) - and the step runs only when that
state says it is needed; a step that acts on a set first waits for any operation still running on it (an
interrupted run's). Every request goes through each set's ScaleSetClient (_scale_set_client), so every
write is conditioned: the create on ``If-None-Match: *``, the PATCHes on the ETag read (``If-Match``).
Failures of the operations and of the health gates are StepFailed; other ARM errors are AzureFailure
(``Failed to <action> <resource>``), which the module fails with.

A step is judged done from what the reads show (a PATCH: the set's provisioningState no longer Updating; an
upgrade: each of its instances on the set's latest model, provisioned; green's creation: green_healthy's gate),
not from its operation's polls, which Azure first answers with a Retry-After of 35-61 s. The creation's and the
upgrades' outcomes are read as soon as they end (at the next look of any wait) and all of them before the run's
verdict (_pending.Operations), so a failed one still fails the run with its code.
"""

from __future__ import annotations

import base64
import copy
import time

from . import _blue_green as bg
from . import _instances as instances
from . import _metrics as metrics
from ._errors import arm_errors, arm_failure, error_details, is_handled, is_transient
from ._ids import resource_group_of, resource_type
from ._pending import Operations, start_after_write, watch_started
from ._rollout import Gate, batch_gate, is_unhealthy
from ._run import RunRecord, now
from ._scale_set_client import provisioning_state, set_gone, set_provisioned, set_settled
from ._waiter import WaitTimeout

# Steps that move a set's model into (True) or out of the pools, and that upgrade its instances accordingly.
POOL_MODEL_STEPS = {"green_join_model": ("green", True), "blue_leave_model": ("blue", False),
                    "blue_join_model": ("blue", True), "green_leave_model": ("green", False)}
POOL_UPGRADE_STEPS = {"green_upgrade": ("green", True), "blue_upgrade": ("blue", False),
                      "blue_rejoin": ("blue", True), "green_leave": ("green", False)}


class StepFailed(Exception):
    """A gate or an operation failed: the run stops there (and cleans up or rolls back)."""

    def __init__(self, code, reason, gate=None):
        super().__init__(reason)
        self.code, self.reason, self.gate = code, reason, gate or {}


class Swap:
    """One run: reads Azure into observations, runs the steps, records the phases.

    ``blue``, ``green``: the ScaleSetClient of each set (one deadline); ``monitor``: a callable returning the
    monitor SDK client (autoscale settings), called on first use; ``counter``: the requests counter."""

    def __init__(self, params, blue, green, monitor=None, counter=None):
        self.params = params
        self.sets = {"blue": blue, "green": green}
        self.rg = blue.resource_group
        self.blue_name, self.green_name = blue.name, green.name
        self._monitor = monitor
        self.monitor = None
        self.record = RunRecord(counter)
        self.docs = {}            # "blue" / "green" -> scale set REST dict (None when absent)
        self.vms = {}             # "blue" / "green" -> instance REST dicts (with instance views)
        self.counts = {}          # "blue" / "green" -> {instance id: pools it is in}
        self.autoscale = {"blue": [], "green": [], "missing": []}
        self.pools = []
        self.phases = []
        self.upgraded = 0
        self.traffic_on_green_at = None
        self.checks = 0           # health checks made (a gate that held at its first check changed nothing)
        self.created_green = False
        self.wrote = False
        self.blue_before = None   # blue as first read (the result's image_before, orchestration_mode)
        self.metrics = metrics.MetricsReader(monitor, time.time) if params.get("metric_gates") else None
        self.green_serving_since = None   # when green was seen Healthy in the pools: metric grains count from there
        # green's creation and the instance upgrades, judged done from the lists and not waited for through their
        # pollers (Azure's first Retry-After is 35-61 s): each outcome is read at the first look after it ended,
        # and every one before the run's verdict (run)
        self.operations = Operations()
        # the sets with a PATCH of ours not confirmed by its poller (the pools', the lease's) and no action since: Azure's
        # operation may still hold them, and a 409 then is asked again (_pending.start_after_write)
        self.patched = set()

    # --- names -------------------------------------------------------------------------------

    def set_name(self, which):
        return self.blue_name if which == "blue" else self.green_name

    def set_id(self, which):
        return self.sets[which].id

    def describe(self, which):
        return self.sets[which].what

    # --- reading -----------------------------------------------------------------------------

    def read_set(self, which, members=True):
        """Read one set, its instances (with instance views) and, with ``members``, the pools' members."""
        client = self.sets[which]
        doc = client.read(expand="userData" if which == "blue" else None)
        if doc is not None and provisioning_state(doc) == "deleting":
            doc = None if which == "green" and self._wait_deleted(which) else doc
        self.docs[which] = doc
        self.vms[which] = client.list_vms(action="get") if doc else []
        if members:
            self.read_members()
        return doc

    def _wait_deleted(self, which):
        """A set being deleted (an earlier run was interrupted): wait until it is gone."""
        client = self.sets[which]
        client.wait_for(set_gone, client.read, "get", "deletion of %s" % client.what)
        return True

    def read_members(self):
        """The pools' members as the load balancer lists them (read-only ``backendIPConfigurations``)."""
        members = {}
        for pool in self.pools:
            if resource_type(pool) != bg.POOL_TYPE:
                members[pool] = []              # not a pool id: validate() says so before anything is written
                continue
            members[pool] = self.sets["blue"].pool_members(pool)
        for which in ("blue", "green"):
            self.counts[which] = bg.pool_counts(self.vms.get(which) or [], members)

    def read_autoscale(self):
        if self.monitor is None:
            self.monitor = self._monitor()
        with arm_errors("list", "autoscale settings"):
            settings = [setting.serialize(keep_readonly=True)
                        for setting in self.monitor.autoscale_settings.list_by_subscription()]
        self.autoscale = bg.autoscale_view(settings, self.set_id("blue"), self.set_id("green"), self.blue_name,
                                           self.green_name)

    def observe(self, first=False, autoscale=False):
        """Read both sets and the pools (and, at first or when ``autoscale``, the autoscale settings, which
        only this run's steps change)."""
        self.read_set("blue", members=False)
        self.read_set("green", members=False)
        if first:
            self.pools = bg.swapped_pools(self.params["backend_pool_ids"], self.docs["blue"], self.docs["green"])
            self.blue_before = copy.deepcopy(self.docs["blue"])
        self.read_members()
        if (first or autoscale) and (self.params["move_autoscale"] or self.params["state"] == "finalized"):
            self.read_autoscale()
        return bg.observe(self.state_of("blue"), self.state_of("green"), self.autoscale)

    def state_of(self, which):
        return bg.set_state(self.docs.get(which), self.vms.get(which) or [], self.counts.get(which) or {}, self.pools)

    # --- recording ---------------------------------------------------------------------------

    def enter(self, step):
        """The phase record a step belongs to (a new one when the kind changes)."""
        if not self.phases or self.phases[-1]["kind"] != step.kind or self.phases[-1]["ended_at"]:
            self.close_phase()
            self.phases.append(self.record.batch(len(self.phases), step.kind, outcome="healthy", steps=[]))
        record = {"name": step.name, "description": step.description, "started_at": now(), "ended_at": None,
                  "outcome": None}
        self.phases[-1]["steps"].append(record)
        return record

    def close_phase(self, outcome=None):
        if not self.phases or self.phases[-1]["ended_at"]:
            return
        phase = self.phases[-1]
        if all(s.get("checks") == 1 for s in phase["steps"]) and phase["kind"] != "soak":
            self.phases.pop()     # only gates that held at once (a re-run): nothing happened here
            return
        self.record.close(phase, **({"outcome": outcome} if outcome else {}))
        subjects = sorted({step_subject(s["name"]) for s in phase["steps"]}, key=("green", "blue").index)
        phase["instance_ids"] = [self.qualified(which, instances.instance_id_of(vm)) for which in subjects
                                 for vm in sorted(self.vms.get(which) or [], key=lambda v: _id_key(
                                     instances.instance_id_of(v)))]

    def qualified(self, which, instance_id):
        """``<scale set>/<instance id>``: a phase may act on both sets, whose instance ids overlap."""
        return "%s/%s" % (self.set_name(which), instance_id)

    # --- the run -------------------------------------------------------------------------------

    def options(self, obs):
        """What the steps need to know of the module's options (green's capacity defaults to blue's)."""
        params = self.params
        return {"capacity": params["capacity"] if params["capacity"] is not None else obs["blue"]["capacity"],
                "soak": params["soak"], "blue_capacity": params["blue_capacity"],
                "deallocate_blue": params["deallocate_blue"], "keep_green": params["keep_green"],
                "move_autoscale": params["move_autoscale"]}

    def execute(self, opts):
        """Run the state's steps; after a failure, clean up or roll back. Returns (status, halt, rollback)."""
        state = self.params["state"]
        try:
            self.run(bg.SEQUENCES[state], opts)
            self.close_phase()
        except StepFailed as failure:
            self.operations.drop()   # the failure has judged: operations still polled say nothing more
            failed_kind = self.phases[-1]["kind"] if self.phases else None
            self.close_phase()
            halt = RunRecord.halt(len(self.phases) - 1, failure.code, failure.reason, phase=failed_kind)
            status, rollback = recover(self, state, failed_kind, opts)
            return status, halt, rollback
        if not self.wrote:
            return "nothing_to_do", None, None
        return ("rolled_back" if state == "rolled_back" else "succeeded"), None, None

    def result(self, status, plan, halt=None, rollback=None):
        """The module's result, in the rollout report's shape (phases as batches) plus blue/green's own keys."""
        obs = self.observe(autoscale=True) if status != "planned" else bg.observe(
            self.state_of("blue"), self.state_of("green"), self.autoscale)
        phases = [dict(phase) for phase in self.phases]
        before = self.blue_before or self.docs.get("green") or {}
        return dict(
            changed=self.wrote or (status == "planned" and bool(plan["batches"])), status=status,
            scale_set="%s/%s" % (self.rg, self.blue_name),
            orchestration_mode=(before.get("properties") or {}).get("orchestrationMode"),
            model_changed=self.created_green or self.traffic_on_green_at is not None, image_before=bg.image_of(self.blue_before),
            image_after=bg.image_of(self.docs.get("green")), backend_pool_ids=self.pools,
            traffic_on_green_at=self.traffic_on_green_at,
            green=_set_result(self.green_name, obs["green"]), blue=_set_result(self.blue_name, obs["blue"]),
            plan=plan, batches=phases, halt=halt, rollback=rollback, demoted=None, skipped_instances=[],
            autoscale=[{"name": s["name"], "resource_group": resource_group_of(s["id"]),
                        "target": (s.get("properties") or {}).get("targetResourceUri"),
                        "enabled": bool((s.get("properties") or {}).get("enabled"))}
                       for s in self.autoscale["blue"] + self.autoscale["green"]],
            summary=self.record.finish(dict(
                self.record.summary(), instances_total=obs["green"]["instances"], instances_upgraded=self.upgraded,
                batches_planned=len(plan["batches"]),
                batches_completed=sum(1 for p in phases if p["outcome"] == "healthy"))),
            report=None)

    # --- the steps ----------------------------------------------------------------------------

    def run(self, sequence, opts):
        obs = None
        for step in sequence:
            if obs is None or "autoscale" in step.name:    # a step that did nothing leaves the state as read
                obs = self.observe(autoscale="autoscale" in step.name)
            if not step.needed(obs, opts):
                continue
            obs = None
            record = self.enter(step)
            checks = self.checks
            try:
                if step.write:
                    self.wrote = True
                    self.act(step.name, opts)
                    record["outcome"] = "done"
                else:
                    gate = getattr(self, "gate_" + step.name)(opts)
                    record.update(outcome="passed", checks=self.checks - checks)
                    if gate:
                        self.note_gate(gate)
            except StepFailed as failure:
                record["outcome"] = failure.gate.get("outcome") or "failed"
                self.note_gate(failure.gate)
                raise
            finally:
                record["ended_at"] = now()
        try:   # the outcome of every operation still polled, before the sequence's verdict
            self.operations.check(wait=True)
        except StepFailed as failure:
            self.note_gate(failure.gate)
            raise

    def note_gate(self, gate):
        phase = self.phases[-1]
        for key in ("health", "unhealthy_upgraded_percent", "unhealthy_set_percent"):
            if key in gate:
                phase[key] = gate[key]
        if gate.get("outcome") and gate["outcome"] != "healthy":
            phase["outcome"] = gate["outcome"]

    # writes

    def _patch(self, which, make_body, action):
        """PATCH (If-Match: the ETag read) the body ``make_body(scale set)`` builds once the set has settled; done
        when a read of the set says its provisioningState left Updating (ScaleSetClient.wait_applied), not when the
        PATCH's poller says so (up to a first Retry-After later; Failed raises ProvisioningFailed)."""
        self.wait_settled(which)
        client = self.sets[which]
        start_after_write(lambda: client.update(make_body(self.docs[which]), wait=False, action=action),
                          self.params["wait_sleep"], client.deadline, after_write=which in self.patched)
        self.docs[which] = client.wait_applied(action)
        self.patched.add(which)

    def _instances(self, which, action, select, failure_code=None):
        """Run ``action`` on the instances ``select()`` names once the set has settled, and wait (an upgrade: until
        the instance list shows it done, wait_upgraded); an operation that fails is a StepFailed with
        ``failure_code``."""
        self.wait_settled(which)
        ids = select()
        if not ids:
            return
        client = self.sets[which]
        resource = "instances of %s" % client.what
        step = self.current_step()
        # judged applied from a GET, our PATCH may still hold the set a moment: a 409 then is asked again
        started = start_after_write(lambda: client.start(action, ids), self.params["wait_sleep"], client.deadline,
                                    after_write=which in self.patched)
        self.patched.discard(which)
        for started_ids, poller in started:
            failed = (failure_code, "%s of instances %s of %s" % (action, ", ".join(started_ids), client.what)) \
                if failure_code else None
            end = self.ending(step, client, "%s of %s" % (action, resource), action, resource, failed)
            if action == "upgrade":
                self.operations.add([poller], end)
            else:
                end(poller)
        if action == "upgrade":
            self.wait_upgraded(which, ids, [poller for _ids, poller in started])
            self.upgraded += len(ids)

    def wait_upgraded(self, which, ids, pollers):
        """An upgrade's instances judged done from the set's instance list (each on the set's current model as
        Azure's latestModelApplied says, provisioned, not busy), or its operations ended; their outcomes are read
        as they end (Operations). A Flexible VM reports no latestModelApplied, and the pools are not among what
        tells its model apart (_instances.latest_model_applied): its operation's end decides."""
        client = self.sets[which]
        wanted = {str(i) for i in ids}

        def upgraded(view):
            props = [vm.get("properties") or {} for vm in view[1] if str(instances.instance_id_of(vm)) in wanted]
            return len(props) == len(wanted) and all(
                p.get("latestModelApplied") is True and str(p.get("provisioningState") or "").lower() == "succeeded"
                for p in props)

        _view, timed_out = watch_started(client, self.operations, pollers, upgraded, self.observer(which),
                                         "instances %s of %s upgraded" % (", ".join(ids), client.what))
        if timed_out:
            raise arm_failure("upgrade", "instances of %s" % client.what, {
                "code": "Timeout", "message": "the upgrade of instances %s did not end within wait_timeout"
                % ", ".join(ids), "status": None, "request_id": None})

    def _outside(self, which):
        """A selector: the instances of ``which`` not in every pool."""
        return lambda: sorted((iid for iid, count in self.counts[which].items() if count < len(self.pools)),
                              key=_id_key)

    def _inside(self, which):
        """A selector: the instances of ``which`` in any pool."""
        return lambda: sorted((iid for iid, count in self.counts[which].items() if count > 0), key=_id_key)

    def _powered(self, which, states, negate=False):
        """A selector: the instances of ``which`` whose power state is (not, with ``negate``) one of ``states``."""
        return lambda: [instances.instance_id_of(vm) for vm in self.vms[which]
                        if (instances.power_state(vm) in states) != negate]

    def act(self, name, opts):
        """The writes of step ``name``: a pool put into / taken out of a set's model, a set's instances
        upgraded into / out of the pools, or the step's own ``do_`` method."""
        if name in POOL_MODEL_STEPS:
            which, join = POOL_MODEL_STEPS[name]
            self._patch(which, lambda doc: bg.pool_patch(doc, self.pools, join=join), "update")
        elif name in POOL_UPGRADE_STEPS:
            which, join = POOL_UPGRADE_STEPS[name]
            select = self._outside(which) if join else self._inside(which)
            self._instances(which, "upgrade", select, "UpgradeFailed")
        else:
            getattr(self, "do_" + name)(opts)

    def do_create_green(self, opts):
        blue = self.docs["blue"]
        secrets = {"admin_password": self.params["admin_password"],
                   "protected_settings": self.params["protected_settings"],
                   "custom_data": base64.b64encode(self.params["custom_data"].encode("utf-8")).decode("ascii")
                   if self.params["custom_data"] else None}
        body = bg.green_body(blue, self.params["image"], opts["capacity"], self.pools, secrets)
        green = self.sets["green"]
        poller = green.create(body)
        self.created_green = True
        what = "creation of %s" % green.what
        # done when green_healthy sees the set and its instances provisioned; the poller gives the verdict
        self.operations.add([poller], self.ending(self.current_step(), green, what, "create", green.what,
                                                  ("ProvisioningFailed", what)))

    def current_step(self):
        """The record of the step running (an empty one outside the steps: a direct call)."""
        return self.phases[-1]["steps"][-1] if self.phases else {}

    def ending(self, step, client, what, action, resource, failed):
        """``end(poller)`` for Operations: operation_end, a failure marking ``step`` (the record of the step
        that started it, which may have ended) failed."""
        def end(poller):
            try:
                self.operation_end(client, poller, what, action, resource, failed)
            except StepFailed:
                step["outcome"] = "failed"
                raise
        return end

    @staticmethod
    def operation_end(client, poller, what, action, resource, failed=None):
        """Wait for an operation within the run's deadline. Its failure fails the step (StepFailed with
        ``failed``: (code, what failed)); without ``failed``, or when the time runs out, it is an AzureFailure
        (``Failed to <action> <resource>``) for the module."""
        try:
            client.outcome(poller, what)
        except Exception as exc:  # pylint: disable=broad-except
            if not is_handled(exc):
                raise
            details = error_details(exc)
            if failed is None or isinstance(exc, WaitTimeout):
                raise arm_failure(action, resource, details, transient=is_transient(exc)) from exc
            raise StepFailed(failed[0], "%s failed: %s: %s" % (failed[1], details["code"], details["message"]),
                             {"outcome": "failed"})

    def do_green_scale_out(self, opts):
        capacity = bg.serving_capacity(bg.observe(self.state_of("blue"), self.state_of("green"), self.autoscale))
        self._patch("green", lambda doc: {"sku": {"capacity": capacity}}, "scale out")
        self.wait_provisioned("green", capacity)

    def do_green_clear_tag(self, opts):
        self._patch("green", lambda doc: {"tags": {key: value for key, value in (doc.get("tags") or {}).items()
                                                   if key != bg.TAG_BLUE}}, "update the tags of")

    def do_blue_scale_in(self, opts):
        self._patch("blue", lambda doc: bg.scale_in_patch(doc, opts["blue_capacity"]), "scale in")
        self.wait_provisioned("blue", opts["blue_capacity"])

    def do_blue_deallocate(self, opts):
        self._instances("blue", "deallocate", self._powered("blue", ("deallocated", "deallocating"), negate=True))

    def do_blue_start(self, opts):
        self._instances("blue", "start", self._powered("blue", ("deallocated", "deallocating", "stopped")),
                        "StartFailed")

    def do_blue_scale_out(self, opts):
        self._patch("blue", bg.scale_out_patch, "scale out")
        self.wait_provisioned("blue", int((self.docs["blue"].get("sku") or {}).get("capacity") or 0))

    def do_delete_green(self, opts):
        self._delete("green")

    def do_delete_blue(self, opts):
        self._delete("blue")

    def _delete(self, which):
        client = self.sets[which]
        start_after_write(client.delete, self.params["wait_sleep"], client.deadline, after_write=which in self.patched)

    def _put_setting(self, setting_id, name, body, action):
        from azure.mgmt.monitor.models import AutoscaleSettingResource  # pylint: disable=import-outside-toplevel

        group = resource_group_of(setting_id)
        with arm_errors(action, "autoscale setting %s/%s" % (group, name)):
            self.monitor.autoscale_settings.create_or_update(group, name,
                                                             AutoscaleSettingResource.deserialize(body))

    def _delete_setting(self, setting):
        group = resource_group_of(setting["id"])
        with arm_errors("delete", "autoscale setting %s/%s" % (group, setting["name"])):
            self.monitor.autoscale_settings.delete(group, setting["name"])

    def do_autoscale_to_green(self, opts):
        for setting in self.autoscale["missing"]:
            name = bg.counterpart_name(setting["name"], self.blue_name, self.green_name)
            self._put_setting(setting["id"], name, bg.counterpart_body(setting, self.set_id("blue"),
                                                                       self.set_id("green"), name), "create")
        copies = {s["name"].lower(): s for s in self.autoscale["green"]}
        for setting in self.autoscale["blue"]:
            if (setting.get("properties") or {}).get("enabled"):
                # green's copy on before blue's goes off: the set that serves always scales
                copied = copies.get(bg.counterpart_name(setting["name"], self.blue_name, self.green_name).lower())
                if copied is not None and not (copied.get("properties") or {}).get("enabled"):
                    self._put_setting(copied["id"], copied["name"], bg.toggled(copied, True), "enable")
                self._put_setting(setting["id"], setting["name"], bg.toggled(setting, False), "disable")

    def do_autoscale_to_blue(self, opts):
        blue_by_name = {s["name"].lower(): s for s in self.autoscale["blue"]}
        for setting in self.autoscale["green"]:
            enabled = bool((setting.get("properties") or {}).get("enabled"))
            source = blue_by_name.get(str((setting.get("tags") or {}).get(bg.TAG_SOURCE) or "").lower()) or next(
                (s for s in self.autoscale["blue"] if bg.counterpart_name(s["name"], self.blue_name, self.green_name)
                 .lower() == setting["name"].lower()), None)     # a copy that lost its tag: matched by name
            if source is not None and enabled and not (source.get("properties") or {}).get("enabled"):
                self._put_setting(source["id"], source["name"], bg.toggled(source, True), "enable")
            if not opts.get("keep_green"):
                self._delete_setting(setting)
            elif enabled:
                self._put_setting(setting["id"], setting["name"], bg.toggled(setting, False), "disable")

    def do_delete_blue_autoscale(self, opts):
        for setting in self.autoscale["blue"]:
            self._delete_setting(setting)

    # gates and waits

    def wait_settled(self, which):
        """Wait until neither the set nor an instance has an operation running (an interrupted run's, say)."""
        self.sets[which].wait_for(set_settled, self.observer(which), "wait for",
                                  "%s without an operation in progress" % self.describe(which))
        self.read_members()

    def wait_provisioned(self, which, capacity):
        self.sets[which].wait_for(set_provisioned(capacity), self.observer(which), "wait for the instances of",
                                  "%s instances provisioned in %s" % (capacity, self.describe(which)))

    def observer(self, which, members=False):
        """What a wait on ``which`` looks at each time: (the set, its instances), read again; first, the outcome of
        every operation that has ended (a failed one fails the step there)."""
        def observe():
            self.operations.check()
            return self.read_set(which, members=members), self.vms[which]
        return observe

    def health(self, which, membership=None, timeout=None, fail_fast_only=False, during=None):
        """Wait for a set's instances to be provisioned and Healthy (the rollout's gate) and, with
        ``membership`` ("in" / "out"), for the load balancer to list them in every pool / in none.

        Returns the gate record; raises StepFailed on a breach or the timeout. ``fail_fast_only``: return
        None at the timeout instead (a soak: watching, not waiting); ``during(record)``, called at each check that
        found no breach, may raise StepFailed too (the soak's metric gates)."""
        opts = self.params
        last = {}

        observer = self.observer(which, members=membership is not None)

        def observe():
            self.checks += 1
            return observer()

        def check(view):
            doc, vms = view
            summaries = [instances.summary(vm, doc) for vm in vms]
            ids = [s["instance_id"] for s in summaries]
            gate = batch_gate(ids, ids, summaries, Gate.of(opts)) if membership != "out" else {"state": "passed"}
            record = {"health": {self.qualified(which, s["instance_id"]): s["health_state"] for s in summaries},
                      "unhealthy_upgraded_percent": _percent(summaries), "unhealthy_set_percent": _percent(summaries)}
            # a set still being created is not ready whatever its instances say (an update, the lease's tags PATCH
            # say, changes nothing its instances run)
            busy_set = provisioning_state(doc) == "creating"
            last.update(record, pending=gate.get("pending"), unhealthy=gate.get("unhealthy"),
                        set_busy=["the scale set %s" % doc["properties"]["provisioningState"]] if busy_set else [])
            failed = [s for s in summaries if s["error"]]
            if failed and membership != "out":
                raise StepFailed("ProvisioningFailed", "instances %s of %s failed to provision: %s" % (
                    ", ".join(s["instance_id"] for s in failed), self.describe(which),
                    failed[0]["error"].get("code")), dict(record, outcome="failed"))
            if gate["state"] == "failed":
                raise StepFailed(gate["code"], "%s: %s" % (self.describe(which), gate["reason"]),
                                 dict(record, outcome="unhealthy"))
            if during is not None:
                during(dict(record, outcome="healthy"))
            if fail_fast_only:
                return None
            counts = self.counts.get(which) or {}
            in_place = (membership is None
                        or (membership == "in" and all(c == len(self.pools) for c in counts.values()))
                        or (membership == "out" and not any(counts.values())))
            capacity = int(((doc or {}).get("sku") or {}).get("capacity") or 0)
            ready = (gate["state"] == "passed" and in_place and len(vms) == capacity
                     and not busy_set and not any(instances.busy(vm) for vm in vms))
            return dict(record, outcome="healthy") if ready else None

        client = self.sets[which]
        timeout = min(timeout if timeout is not None else opts["health_timeout"], client.deadline.remaining())
        verdict, _view, timed_out = client.watch(check, timeout, observe, what="health of %s" % client.what)
        if not timed_out:
            return verdict
        if fail_fast_only:
            return dict(_gate_record(last), outcome="healthy")
        waiting = (last.get("pending") or []) + (last.get("unhealthy") or []) + (last.get("set_busy") or [])
        what = "listed in the backend pools" if membership == "in" else (
            "out of the backend pools" if membership == "out" else "Healthy")
        raise StepFailed("HealthTimeout", "%s: instances not %s within %d seconds%s" % (
            self.describe(which), what, timeout, (": " + ", ".join(waiting)) if waiting else ""),
            dict(_gate_record(last), outcome="timeout"))

    def gate_green_healthy(self, opts):
        return self.health("green")

    def gate_green_in_pool(self, opts):
        gate = self.health("green", membership="in")
        if self.wrote:
            self.traffic_on_green_at = self.traffic_on_green_at or now()
        self.green_serving_since = time.time()
        if not opts.get("soak"):   # with a soak, its end judges the metrics (over more grains)
            self.judge_metrics(gate)
        return gate

    def gate_soak(self, opts):
        """Green's health watched through the soak, its metric gates too (a failing one ends the soak), then
        judged once more at its end, where they must pass."""
        gate = self.health("green", timeout=self.params["soak"], fail_fast_only=True,
                           during=lambda record: self.judge_metrics(record, fail_only=True))
        self.judge_metrics(gate)
        return gate

    # metric gates

    def judge_metrics(self, gate, fail_only=False):
        """Green's metric gates (see _metrics) against blue while it still serves, on the grains complete since
        green was seen Healthy in the pools; read every wait_sleep until judged or health_timeout. A failing gate,
        or none judged in time, is a StepFailed like a health breach (MetricGateFailed, MetricTimeout).
        ``fail_only``: one read, a failure only (during the soak)."""
        if self.metrics is None:
            return
        ids, listed = {"green": [], "blue": []}, []
        for which in ("green", "blue"):
            for vm in self.vms.get(which) or []:
                summary = instances.summary(vm, self.docs.get(which) or {})
                listed.append(dict(summary, instance_id=self.qualified(which, summary["instance_id"])))
                ids[which].append(listed[-1]["instance_id"])
        sets = [self.set_id(w) for w in ("green", "blue") if self.docs.get(w)]
        gates = [dict(metrics.with_defaults(g, self.set_id("green")), resources=None if g.get("resource") else sets)
                 for g in self.params["metric_gates"]]
        since = self.green_serving_since or time.time()

        def observe():
            return self.metrics.judge_all(gates, ids["green"], ids["blue"], listed, since)

        if fail_only:
            verdict = metrics.combine(observe())
        else:
            client = self.sets["green"]
            timeout = min(self.params["health_timeout"], client.deadline.remaining())
            verdict = client.watch(metrics.combine, timeout, observe=observe, what="metric gates")[0] \
                or {"state": "waiting", "gates": [], "reason": "no metric read before health_timeout"}
        phase = self.phases[-1]
        phase["metrics"] = verdict["gates"]
        if verdict["state"] == "failed":
            raise StepFailed("MetricGateFailed", "%s: %s" % (self.describe("green"), verdict["reason"]),
                             dict(gate or {}, outcome="unhealthy"))
        if verdict["state"] == "waiting" and not fail_only:
            raise StepFailed("MetricTimeout", "%s: not judged within health_timeout=%s seconds: %s" % (
                self.describe("green"), metrics.number(self.params["health_timeout"]), verdict["reason"]),
                dict(gate or {}, outcome="timeout"))
        if verdict["reason"] and not fail_only:
            phase["note"] = verdict["reason"]

    def gate_blue_out_of_pool(self, opts):
        return self.health("blue", membership="out")

    def gate_blue_in_pool(self, opts):
        return self.health("blue", membership="in")


def step_subject(name):
    for sequence in bg.SEQUENCES.values():
        for step in sequence:
            if step.name == name:
                return step.subject
    return "green"


def _id_key(value):
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _gate_record(last):
    """A health watch's last record without what it was still waiting for (said in the reason instead)."""
    return {key: value for key, value in last.items() if key not in ("pending", "unhealthy", "set_busy")}


def _percent(summaries):
    if not summaries:
        return 0.0
    unhealthy = sum(1 for s in summaries if is_unhealthy(s))
    return round(100.0 * unhealthy / len(summaries), 1)


def recover(swap, state, failed_kind, opts):
    """After a failure: remove a failed green (stage), or roll back (swap, soak) unless asked to halt."""
    params = swap.params
    if failed_kind == "stage" and not opts["keep_green"]:
        sequence = bg.CLEANUP
    elif failed_kind in ("swap", "soak") and params["on_failure"] == "rollback":
        sequence = bg.ROLLBACK
    else:
        return ("rollback_failed" if state == "rolled_back" else "halted"), None
    rollback = RunRecord.rollback("healthy")
    try:
        swap.run(sequence, opts)
        swap.close_phase()
        status = "rolled_back"
    except StepFailed as failure:
        swap.close_phase()
        rollback.update(outcome=failure.gate.get("outcome") or "failed", reason=failure.reason)
        status = "rollback_failed"
    rollback["ended_at"] = now()
    swap.read_set("blue", members=False)
    summaries = [instances.summary(vm, swap.docs["blue"]) for vm in swap.vms["blue"]]
    rollback["instance_ids"] = [s["instance_id"] for s in summaries]
    rollback["health"] = {s["instance_id"]: s["health_state"] for s in summaries}
    if status == "rolled_back" and any(s["health_state"] != "Healthy" for s in summaries):
        rollback["outcome"] = "unhealthy"
    return status, rollback


def _set_result(name, state):
    keys = ("exists", "capacity", "instances", "members", "in_model", "deallocated", "original_capacity")
    return dict({key: state.get(key) for key in keys}, name=name)
