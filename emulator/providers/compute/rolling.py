"""Azure's own rolling upgrades of a scale set: the engine, and the routes that start, cancel and show them.

Three kinds, one engine (state in kv `compute:rolling:<set>`, driven by the persistent timer
`compute.rolling`, so a restart resumes where it was):

    model      a PUT / PATCH of a set in Rolling mode leaves instances off the latest model (MODEL_CHANGE_HOOKS);
               that write's LRO stays open until the upgrade ends and fails with its error
    os         POST osRollingUpgrade (startedBy User) or the automatic OS upgrade (autoupgrade.py, Platform):
               instances whose image version is not what "latest" resolves to
    extension  POST extensionRollingUpgrade: instances whose extension profile differs from the model's
               (extension versions are not modelled, so this is the emulator's stand-in for "not on the
               latest extension versions")

Instances already on the target count as successful at once and get no operation (an OS upgrade of a
set already on the latest image completes at once with successfulInstanceCount = capacity, as the
recorded Azure SDK tests show: azure-sdk-for-net VirtualMachineScaleSetRollingUpgradeTests).
Instances protected from scale-set actions are skipped (neither pending nor counted).

One batch after another (learn.microsoft.com ".../virtual-machine-scale-sets-configure-rolling-upgrades",
".../virtual-machine-scale-sets-automatic-upgrade", ".../virtual-machine-scale-sets-maxsurge"):

1. Before each batch, the whole set: more than maxUnhealthyInstancePercent unhealthy (Application Health
   Unhealthy or Unknown, or provisioning Failed; Initializing is not unhealthy) faults the upgrade:
   MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade before the first batch,
   MaxUnhealthyInstancePercentExceededInRollingUpgrade later.
2. Batch: at most maxBatchInstancePercent of the instances the set had when the upgrade began, at least
   one. A batch never spans fault domains ("Exceptions to Rolling Upgrade Policy": even at 100 % the batch
   is limited to one fault domain; platformFaultDomainCount 1 puts every instance in FD 0), and in a
   zonal set never spans zones ("Virtual machines in different Availability Zones are not updated
   concurrently"); enableCrossZoneUpgrade lets a batch span zones, grouped by update domain instead
   (the spec: "Take into consideration the Update Domain"). Groups go in (zone, domain) order, instances
   in creation order; prioritizeUnhealthyInstances puts unhealthy ones (and their group) first.
3. The batch is upgraded (manualupgrade's operation: reimage onto the model, `instance_upgrade`), or with
   maxSurge as many new instances are created on the latest model first.
4. Then the upgrade waits up to 5 minutes (`rolling_health_wait`, scaled) for each instance to be Healthy
   (without an Application Health extension, running and provisioned counts as healthy: "By default ...
   the platform considers VM power state and extension provisioning state"). Initializing is "not yet",
   whatever the deadline: it lasts until `numberOfProbes` identical probes (health.py), at most the
   extension's gracePeriod, and is looked at again at each probe. Still not Healthy at the deadline (and
   no longer Initializing), or provisioning Failed: the instance failed. With maxSurge the old instances
   are deleted now, as many as new ones came up healthy.
5. More than maxUnhealthyUpgradedInstancePercent of the instances upgraded so far failed:
   MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade ("... N% of instances are in an unhealthy
   state after being upgraded - more than the threshold of T%. The most impactful error is: ... First
   failed instance ID is: X."; the wording is Azure's, Azure/azure-powershell#11896, microsoft/AzureTRE#1591).
   Fewer: the upgrade goes on with error RollingUpgradeInProgressWithFailedUpgradedVMs.
6. pauseTimeBetweenBatches (ISO 8601, scaled) after the batch completed, then the next batch.

Faulted: with rollbackFailedInstancesOnPolicyBreach the failed instances go back to the model (and image
version) they had (with maxSurge: the failed new instances are deleted). An automatic (Platform) OS
upgrade restores the previous OS of each failed instance at the end of its batch unless
automaticOSUpgradePolicy.disableAutomaticRollback ("by default the previous OS disk ... is restored");
osUpgradeHistory.rollbackInfo counts them. A user-started OS upgrade has no automatic rollback.
Cancel: lastAction Cancel; the batch in flight finishes its operations (no health wait), then Cancelled;
the cancel LRO ends then (Stop-AzVmssRollingUpgrade waits minutes in the docs' example). Cancel with no
rolling upgrade ever: 409 (terraform-provider-azurerm: "the API will throw a 409/No rolling upgrade to
cancel"); on a finished one it is accepted and the status reads Cancelled (the recorded .NET test).
GetLatest with none: 404 (terraform: "No rolling upgrades are running" on NotFound). Starting one while
another rolls forward: 409 OperationNotAllowed. osRollingUpgrade on a set whose image is not "latest":
409 OperationNotAllowed with Azure's message (quoted in hashicorp/terraform-provider-azurerm#12590).
A model change while an upgrade rolls forward queues a new model upgrade, started when the running one
ends (the running one already moves the instances it has not reached to the newest model); a write that
leaves every instance on the latest model (tags only) is not queued: it answers at once.

Deferral (automaticOSUpgradePolicy.osRollingUpgradeDeferral; the spec: "Deferred OS upgrades will send advanced
notifications on a per-VM basis ... via the IMDS tag 'Platform.PendingOSUpgrade'. The upgrade then defers until
the upgrade is approved via an ApproveRollingUpgrade call"): an automatic (Platform) OS upgrade of such a set
starts as usual (osUpgradeHistory, rollingUpgrades/latest RollingForward) but batches only approved instances.
How ARM shows "pending approval" is not documented (IMDS is not modelled); the emulator's assumption: the
upgrade stays RollingForward with the unapproved instances in pendingInstanceCount, for as long as it takes
(no approval deadline is documented). POST approveRollingUpgrade (instanceIds, or none: every unprotected
instance; unknown id 400 InvalidParameter as manualupgrade) or POST virtualMachines/{id}/approveRollingUpgrade
approves; with no deferred upgrade rolling forward: 409 OperationNotAllowed (assumed). The approval's LRO
answers once its instances are upgraded or failed (or when the upgrade ends: with its outcome). A cancel
while nothing approved is in flight ends the upgrade Cancelled at once; unapproved instances keep their image.

Defaults: maxBatchInstancePercent, maxUnhealthyInstancePercent, maxUnhealthyUpgradedInstancePercent 20,
pauseTimeBetweenBatches PT0S (the spec's descriptions). An automatic OS upgrade uses the set's policy only
with useRollingUpgradePolicy, else the defaults. osUpgradeHistory keeps the last five OS upgrades ("the
last five OS upgrade attempts"), newest first; model and extension upgrades are not OS upgrades.

Events (events.record, on the scale set): rolling.started, rolling.approved, rolling.batch_started, rolling.batch_healthy
(every instance of the batch Healthy; dated when the last one turned Healthy), rolling.batch_unhealthy
(some failed), rolling.finished (code, error).

API for engines: start(ctx, doc, kind, started_by, ops, state) / load / save / latest(ctx, vmss_id).
"""
import json
import uuid
from collections import defaultdict

from emulator import events
from emulator.app import timer
from emulator.arm import ArmError, Response, ok, page
from emulator.providers.compute import handlers
from emulator.providers.compute import health as h
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute import scalesets as sets
from emulator.server import route

ROLLING_TYPE = "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades"
ROLLING_FORWARD, COMPLETED, CANCELLED, FAULTED = "RollingForward", "Completed", "Cancelled", "Faulted"
DEFAULT_POLICY = dict(m.ROLLING_DEFAULTS, rollbackFailedInstancesOnPolicyBreach=False, maxSurge=False)
HISTORY_LENGTH = 5          # "history for the last five OS upgrade attempts" (automatic-upgrade doc)
MIN_POLL = 0.02             # real seconds: health checks of a batch at most this often (the timer thread's tick)
UNHEALTHY_DETAIL = "Instance found to be unhealthy or unreachable."
NOT_LATEST = ("The OS Rolling Upgrade API cannot be used on a Virtual Machine Scale Set unless the Virtual Machine "
              "Scale Set has some unprotected instances which have imageReference.version set to latest.")


# --- state ----------------------------------------------------------------------------------------

def load(ctx, vmss_id):
    """{"latest": upgrade or None, "history": [finished OS upgrades, newest first], "queued": {"ops"}?}"""
    return ctx.store.kv_get(inst._key("rolling", vmss_id)) or {}


def save(ctx, vmss_id, state):
    ctx.store.kv_set(inst._key("rolling", vmss_id), state)


def latest(ctx, vmss_id):
    return load(ctx, vmss_id).get("latest")


def effective_policy(doc, platform=False):
    """The rolling upgrade policy an upgrade runs with (GetLatest's `policy`), defaults filled in."""
    upgrade = m.props(doc).get("upgradePolicy") or {}
    given = upgrade.get("rollingUpgradePolicy") or {}
    if platform and not (upgrade.get("automaticOSUpgradePolicy") or {}).get("useRollingUpgradePolicy"):
        given = {}
    return dict(DEFAULT_POLICY, **{k: v for k, v in given.items() if v is not None})


class Fleet:
    """One look at a scale set's instances at `now` (models and health rules read once)."""

    def __init__(self, ctx, doc, now):
        self.ctx, self.doc, self.now = ctx, doc, now
        self.models = inst.models(ctx, doc["id"])
        self.state = inst.load_state(ctx, doc["id"])
        self.current = self.state.get("model")
        self.rules = ctx.store.kv_get("health_rules", [])
        self.members = sets.members(inst.list_instances(ctx, doc["id"], now))

    def model(self, view):
        return self.models.get(view.get("model")) or {}

    def health(self, view):
        return inst.health_of(self.ctx, view, self.now, self.doc, self.model(view), self.rules)

    def unhealthy(self, view):
        return view.get("provisioningState") == "Failed" or self.health(view) in (h.UNHEALTHY, h.UNKNOWN)

    def healthy_since(self, view):
        """When the instance's current health state began (the probes settled), else now."""
        since = h.state_since(self.ctx, view, self.now, self.doc, self.model(view), self.rules)[1]
        return self.now if since is None else since

    def next_probe(self, view):
        """The earliest the state of an Initializing instance can change: its next probe."""
        ext = m.health_extension(self.model(view).get("profile"))
        if ext is None or view.get("since") is None:
            return self.now
        return h.next_probe(ext, view["since"], self.now, self.ctx.clock.scaled)

    def get(self, instance_id):
        return inst.get_instance(self.ctx, self.doc["id"], instance_id, self.now)


def _extensions(model):
    return json.dumps(m.extensions_of((model or {}).get("profile")), sort_keys=True)


def _needs(up, fleet, view):
    """Whether an instance is not yet on what this upgrade brings (its running operation's target counts)."""
    op = view.get("op") or {}
    model = op.get("model", view.get("model"))
    if up["kind"] == "model":
        return not inst.on_latest(fleet.ctx, fleet.state, model, op.get("generation", view.get("generation")))
    if up["kind"] == "os":
        exact = op.get("exactVersion", view.get("exactVersion"))
        return bool(up.get("targetVersion")) and exact != up["targetVersion"]
    return _extensions(fleet.models.get(model)) != _extensions(fleet.models.get(fleet.current))


def _attempted(up):
    """Instances this upgrade has dealt with (or is dealing with); surged ones count, replaced or not."""
    batch = up.get("batch") or {}
    return set(up["done"]) | set(up["failed"]) | set(up["surged"]) | set(batch.get("ids", ())) | \
        set(batch.get("watch", ()))


def _candidates(up, fleet, approved_only=True):
    """Instances still to upgrade; in a deferred upgrade only the approved ones, unless `approved_only` is False."""
    seen = _attempted(up)
    approved = set(up["approved"]) if up.get("deferred") and approved_only else None
    return [v for v in fleet.members if not sets.protected_from_actions(v) and v["instanceId"] not in seen
            and (approved is None or v["instanceId"] in approved) and _needs(up, fleet, v)]


# --- starting ---------------------------------------------------------------------------------------

def _user_op(ctx, doc, kind):
    """An ARM operation answered when the upgrade (or the cancel) is over."""
    op = inst.begin(ctx, doc, kind)
    inst.track(ctx, op, ctx.clock.now())
    inst.hold(ctx, op["id"])
    return op


def _refuse_if_rolling(state, doc):
    up = state.get("latest")
    if up and up["code"] == ROLLING_FORWARD:
        raise ArmError(409, "OperationNotAllowed",
                       f"A rolling upgrade is already in progress on Virtual Machine Scale Set '{doc['name']}'. "
                       "Wait for it to finish or cancel it before starting another one.")


def start(ctx, doc, kind, started_by="User", ops=(), state=None, only_if_needed=False):
    """Begin a rolling upgrade of `kind` (model | os | extension); `ops`: held ARM operations answered when
    it ends. Returns the upgrade, or None when `only_if_needed` and no instance needs it. Saves the state
    unless the caller passed it in (then the caller saves)."""
    vmss_id = doc["id"]
    own = state is None
    state = load(ctx, vmss_id) if own else state
    _refuse_if_rolling(state, doc)
    now = ctx.clock.now()
    inst.settle(ctx, vmss_id, now)
    fleet = Fleet(ctx, doc, now)
    up = {"id": str(uuid.uuid4()), "kind": kind, "startedBy": started_by,
          "policy": effective_policy(doc, started_by == "Platform"), "code": ROLLING_FORWARD,
          "start": now, "lastAction": "Start", "lastActionTime": now, "end": None,
          "ops": list(ops), "cancelOps": [], "cancel": False, "done": [], "failed": {}, "prev": {},
          "rolledBack": [], "surged": [], "batches": 0, "batch": None, "phase": "next", "gen": 0, "error": None,
          "total": len(fleet.members), "location": doc["location"]}
    if kind == "os" and started_by == "Platform" and deferred(doc):
        up.update(deferred=True, approved=[], approvals=[])
    if kind == "os":
        model = fleet.models.get(fleet.current) or {}
        up["targetVersion"] = inst.resolve_version(ctx, doc, model)
        up["image"] = dict(m.image_reference(model.get("profile")), **(
            {"exactVersion": up["targetVersion"]} if up["targetVersion"] else {}))
    eligible = [v for v in fleet.members if not sets.protected_from_actions(v)]
    needing = [v for v in eligible if _needs(up, fleet, v)]
    if only_if_needed and not needing:
        return None
    up["baseline"] = len(eligible) - len(needing)
    state["latest"] = up
    events.record(ctx, "rolling.started", vmss_id, time=now, upgrade=up["id"], upgrade_kind=kind,
                  startedBy=started_by, instances=len(needing))
    _advance(ctx, vmss_id, state, now)
    if own:
        save(ctx, vmss_id, state)
    return up


def on_model_change(ctx, vmss_id, op_id):
    """MODEL_CHANGE_HOOKS: a write to a set in Rolling mode. Instances off the latest model roll, and the
    write's LRO answers when they have (queued behind an upgrade already rolling forward)."""
    doc = inst.scale_set_doc(ctx, vmss_id)
    state = load(ctx, vmss_id)
    up = state.get("latest")
    if up and up["code"] == ROLLING_FORWARD and not _off_latest_model(ctx, doc):
        inst.release(ctx, op_id)                # a write that leaves every instance on the latest model (tags):
    elif up and up["code"] == ROLLING_FORWARD:  # nothing to queue (a deferred upgrade may wait for days)
        state.setdefault("queued", {"ops": []})["ops"].append(op_id)
        inst.hold(ctx, op_id)
    else:
        inst.hold(ctx, op_id)
        if start(ctx, doc, "model", "User", [op_id], state, only_if_needed=True) is None:
            inst.release(ctx, op_id)            # nothing to roll: the write answers as it would have
    save(ctx, vmss_id, state)


def _off_latest_model(ctx, doc):
    fleet = Fleet(ctx, doc, ctx.clock.now())
    return any(not sets.protected_from_actions(v) and
               not inst.on_latest(ctx, fleet.state, v.get("model"), v.get("generation")) for v in fleet.members)


inst.MODEL_CHANGE_HOOKS.append(on_model_change)


# --- the engine -------------------------------------------------------------------------------------

def _poll(ctx):
    return max(ctx.duration("health_probe_interval"), MIN_POLL)


def _schedule(ctx, vmss_id, up, at):
    up["gen"] += 1
    ctx.schedule(max(at - ctx.clock.now(), 0.0), "compute.rolling",
                 {"vmss": vmss_id, "upgrade": up["id"], "gen": up["gen"]})


@timer("compute.rolling")
def _tick(ctx, payload):
    vmss_id = payload["vmss"]
    state = load(ctx, vmss_id)
    up = state.get("latest")
    if not up or up["id"] != payload["upgrade"] or up["gen"] != payload["gen"] or up["code"] != ROLLING_FORWARD:
        return
    _advance(ctx, vmss_id, state, ctx.clock.now())
    save(ctx, vmss_id, state)


def _advance(ctx, vmss_id, state, now):
    """Move the upgrade as far as it can go at `now`; schedules the next tick when it has to wait."""
    up = state["latest"]
    doc = inst.scale_set_doc(ctx, vmss_id)
    if doc is None or m.props(doc).get("provisioningState") == "Deleting":
        _finish(ctx, vmss_id, state, CANCELLED, "Canceled", inst.PREEMPTED, now)
        return
    inst.settle(ctx, vmss_id, now)
    if up["phase"] == "upgrading":
        if now < up["batch"]["ends"]:
            _schedule(ctx, vmss_id, up, up["batch"]["ends"])
            return
        up["phase"] = "health"
        up["batch"]["deadline"] = up["batch"]["ends"] + ctx.duration("rolling_health_wait")
    if up["phase"] == "health" and not _batch_done(ctx, vmss_id, state, Fleet(ctx, doc, now)):
        return
    if up["phase"] == "pause":
        if now < up["resume"]:
            _schedule(ctx, vmss_id, up, up["resume"])
            return
        up["phase"] = "next"
    if up["phase"] == "next":
        _next_batch(ctx, vmss_id, state, Fleet(ctx, doc, now))


def _next_batch(ctx, vmss_id, state, fleet):
    up, now, policy = state["latest"], fleet.now, state["latest"]["policy"]
    if up["cancel"]:
        _finish(ctx, vmss_id, state, CANCELLED, "Canceled", inst.PREEMPTED, now)
        return
    candidates = _candidates(up, fleet)
    if not candidates and up.get("deferred") and _candidates(up, fleet, approved_only=False):
        up["phase"] = "approval"                     # the rest waits for approveRollingUpgrade (no timer)
        _answer_approvals(ctx, up, fleet)
        return
    if not candidates:
        _finish(ctx, vmss_id, state, COMPLETED, "Succeeded", None, now)
        return
    unhealthy = {v["instanceId"] for v in fleet.members if fleet.unhealthy(v)}
    if len(unhealthy) * 100 > policy["maxUnhealthyInstancePercent"] * len(fleet.members):
        _fault(ctx, vmss_id, state, _too_unhealthy(up, len(unhealthy), len(fleet.members)), now)
        return
    size = max(1, up["total"] * policy["maxBatchInstancePercent"] // 100)
    batch = choose_batch(candidates, size, policy, bool(fleet.doc.get("zones")), unhealthy, now)
    if not batch:                                   # every candidate is busy with something else: wait
        _schedule(ctx, vmss_id, up, now + _poll(ctx))
        return
    ids = [v["instanceId"] for v in batch]
    for v in batch:
        up["prev"][v["instanceId"]] = [v.get("model"), v.get("exactVersion"), v.get("generation")]
    try:
        if policy["maxSurge"]:
            ends = inst.create_instances(ctx, fleet.doc, len(ids), now=now)
            watch = list(ends)
            up["surged"] += ids
        else:
            ends = inst.start_operation(ctx, vmss_id, ids, "upgrade", model_hash=fleet.current, now=now)
            watch = ids
    except inst.SubnetFull as full:
        _fault(ctx, vmss_id, state, {"code": "SubnetIsFull", "message": str(full)}, now)
        return
    up["batches"] += 1
    up["batch"] = {"n": up["batches"], "ids": ids, "watch": watch, "started": now, "ends": max(ends.values())}
    up["phase"] = "upgrading"
    events.record(ctx, "rolling.batch_started", vmss_id, time=now, upgrade=up["id"], upgrade_kind=up["kind"],
                  batch=up["batches"], instance_ids=ids, **({"new_instance_ids": watch} if policy["maxSurge"] else {}))
    _schedule(ctx, vmss_id, up, up["batch"]["ends"])


def choose_batch(candidates, size, policy, zonal, unhealthy=(), now=0.0):
    """The next batch (see the module docstring, step 2): one zone / fault-domain group (update-domain group
    across zones with enableCrossZoneUpgrade), at most `size`, instances busy with something else left out."""
    prioritize = bool(policy.get("prioritizeUnhealthyInstances"))
    cross = zonal and bool(policy.get("enableCrossZoneUpgrade"))

    def rank(v):
        return (0 if prioritize and v["instanceId"] in unhealthy else 1, v.get("seq", 0))

    def group(v):
        return ("", v.get("ud", 0)) if cross else (v.get("zone") or "", v.get("fd", 0))
    ready = sorted((v for v in candidates if not inst.busy(v, now)), key=rank)
    if not ready:
        return []
    first = min(ready, key=lambda v: (rank(v)[0], group(v), rank(v)[1]))
    return [v for v in ready if group(v) == group(first)][:size]


def _batch_done(ctx, vmss_id, state, fleet):
    """Health wait of the batch in flight; True once it is over and the upgrade goes on."""
    up, now = state["latest"], fleet.now
    batch, policy = up["batch"], up["policy"]
    good, failed, waiting = [], {}, []
    for iid in batch["watch"]:
        view = fleet.get(iid)
        if view is None:
            continue                                 # deleted meanwhile (a scale-in): nothing to judge
        if view.get("provisioningState") == "Failed":
            failed[iid] = (view.get("error") or {}).get("message") or "Provisioning failed."
            continue
        state_now = None if inst.busy(view, now) else fleet.health(view)
        if up["cancel"] or state_now == h.HEALTHY or (state_now is None and view.get("power") == "running"
                                                        and not inst.busy(view, now)):
            good.append(view)
        elif now >= batch["deadline"] and state_now != h.INITIALIZING:
            failed[iid] = UNHEALTHY_DETAIL
        else:                                        # Initializing is "not yet": it ends by its gracePeriod
            waiting.append((view, state_now))
    if waiting:
        at = now + _poll(ctx)
        for view, state_now in waiting:
            if state_now == h.INITIALIZING:
                at = min(at, fleet.next_probe(view))
        batch["checked"] = now
        if not any(s == h.INITIALIZING for _, s in waiting):
            at = min(at, batch["deadline"])
        _schedule(ctx, vmss_id, up, max(at, now + 1e-3))
        return False

    healthy_at = max((fleet.healthy_since(v) for v in good), default=now)
    if not batch.get("checked", batch["ends"]) < healthy_at <= now:
        healthy_at = now
    ok_ids = [v["instanceId"] for v in good]
    events.record(ctx, "rolling.batch_unhealthy" if failed else "rolling.batch_healthy", vmss_id,
                  time=now if failed else healthy_at, upgrade=up["id"], batch=batch["n"], instance_ids=ok_ids,
                  **({"failed_instance_ids": sorted(failed)} if failed else {}))
    up["done"] += ok_ids
    up["failed"].update(failed)
    settled_at = now
    if policy["maxSurge"]:                           # old instances leave once their replacements are up
        old = [i for i in batch["ids"] if fleet.get(i) is not None][:len(ok_ids)]
        if old:
            settled_at = max(inst.start_operation(ctx, vmss_id, old, "delete", now=now).values())
    automatic = (up["kind"] == "os" and up["startedBy"] == "Platform" and not (
        (m.props(fleet.doc).get("upgradePolicy") or {}).get("automaticOSUpgradePolicy") or {}).get(
        "disableAutomaticRollback"))
    if failed and automatic:
        _rollback(ctx, vmss_id, up, sorted(failed), now)
    up["batch"] = None
    attempted = len(up["done"]) + len(up["failed"])
    if not up["cancel"] and up["failed"] and \
            len(up["failed"]) * 100 > policy["maxUnhealthyUpgradedInstancePercent"] * attempted:
        _fault(ctx, vmss_id, state, _upgraded_unhealthy(up, attempted), now)
        return False
    if failed:
        up["error"] = {"code": "RollingUpgradeInProgressWithFailedUpgradedVMs",
                       "message": f"{len(up['failed'])} of {attempted} upgraded instances failed, within the "
                                  f"MaxUnhealthyUpgradedInstancePercent threshold of "
                                  f"{policy['maxUnhealthyUpgradedInstancePercent']}%: the rolling upgrade continues. "
                                  f"First failed instance ID is: {next(iter(up['failed']))}."}
    pause = 0.0 if up["cancel"] else ctx.clock.scaled(m.parse_duration(policy.get("pauseTimeBetweenBatches")) or 0)
    up.update(phase="pause", settled=settled_at, resume=settled_at + pause)
    _answer_approvals(ctx, up, fleet)
    return True


def _rollback(ctx, vmss_id, up, ids, now):
    """Failed instances back to what they ran before this upgrade (maxSurge: failed new ones deleted)."""
    ids = [i for i in ids if i not in up["rolledBack"] and inst.get_instance(ctx, vmss_id, i, now) is not None]
    if not ids:
        return
    if up["policy"]["maxSurge"]:
        inst.start_operation(ctx, vmss_id, ids, "delete", now=now)
    else:
        groups = defaultdict(list)
        for iid in ids:
            groups[tuple(up["prev"].get(iid) or (None, None, None))].append(iid)
        for (model_hash, exact, generation), group in groups.items():     # back to the generation it ran
            inst.start_operation(ctx, vmss_id, group, "upgrade", model_hash=model_hash, exact_version=exact,
                                 generation=generation, now=now)
    up["rolledBack"] += ids


def _fault(ctx, vmss_id, state, error, now):
    up = state["latest"]
    if up["policy"].get("rollbackFailedInstancesOnPolicyBreach"):
        _rollback(ctx, vmss_id, up, sorted(up["failed"]), now)
    up["error"] = error
    _finish(ctx, vmss_id, state, FAULTED, "Failed", error, now)


def _too_unhealthy(up, unhealthy, total):
    percent = round(unhealthy * 100 / total) if total else 0
    threshold = up["policy"]["maxUnhealthyInstancePercent"]
    if up["batches"] == 0:
        return {"code": "MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade",
                "message": f"Rolling Upgrade failed before it started: {percent}% of instances are in an unhealthy "
                           f"state - more than the MaxUnhealthyInstancePercent threshold of {threshold}% defined in "
                           "the RollingUpgradePolicy. To apply upgrades, consider increasing the "
                           "MaxUnhealthyInstancePercent value."}
    return {"code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade",
            "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyInstancePercent value defined in the "
                       f"RollingUpgradePolicy. {percent}% of instances are in an unhealthy state - more than the "
                       f"threshold of {threshold}%. To apply upgrades, consider increasing the "
                       "MaxUnhealthyInstancePercent value."}


def _upgraded_unhealthy(up, attempted):
    first_id, first_error = next(iter(up["failed"].items()))
    percent = round(len(up["failed"]) * 100 / attempted)
    return {"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
            "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value defined "
                       f"in the RollingUpgradePolicy. {percent}% of instances are in an unhealthy state after being "
                       f"upgraded - more than the threshold of {up['policy']['maxUnhealthyUpgradedInstancePercent']}%. "
                       f"The most impactful error is: {first_error}. First failed instance ID is: {first_id}."}


def _finish(ctx, vmss_id, state, code, op_status, op_error, now):
    up = state["latest"]
    doc = inst.scale_set_doc(ctx, vmss_id)
    up["final"] = progress(ctx, up, Fleet(ctx, doc, now) if doc else None)
    if code == COMPLETED:
        up["final"]["pendingInstanceCount"] = 0
    up.update(code=code, end=now, phase="done", batch=None)
    for op_id in up["ops"]:
        inst.release(ctx, op_id, op_status, op_error)
    for op_id in up["cancelOps"]:
        inst.release(ctx, op_id, "Succeeded")
    for approval in up.get("approvals", ()):        # an approval's LRO ends with the upgrade at the latest
        inst.release(ctx, approval["op"], op_status, op_error)
    up["approvals"] = []
    if up["kind"] == "os":
        state["history"] = ([dict(up)] + state.get("history", []))[:HISTORY_LENGTH]
    events.record(ctx, "rolling.finished", vmss_id, time=now, upgrade=up["id"], upgrade_kind=up["kind"], code=code,
                  error=(up.get("error") or {}).get("code") if code != COMPLETED else None)
    queued = state.pop("queued", None)
    if not queued:
        return
    if up["cancel"] or doc is None:                 # a cancel stops what was queued behind it too
        for op_id in queued["ops"]:
            inst.release(ctx, op_id, "Canceled", inst.PREEMPTED)
        return
    if start(ctx, doc, "model", "User", queued["ops"], state, only_if_needed=True) is None:
        for op_id in queued["ops"]:
            inst.release(ctx, op_id)


def cancel(ctx, doc):
    """POST rollingUpgrades/cancel: 202 with the cancel's own LRO (answered when the upgrade has stopped)."""
    state = load(ctx, doc["id"])
    up = state.get("latest")
    if up is None:
        raise ArmError(409, "OperationNotAllowed",
                       f"There is no rolling upgrade to cancel on Virtual Machine Scale Set '{doc['name']}'.")
    now = ctx.clock.now()
    op = _user_op(ctx, doc, "cancelRollingUpgrade")
    up.update(lastAction="Cancel", lastActionTime=now)
    if up["code"] != ROLLING_FORWARD:
        up["code"] = CANCELLED
        inst.release(ctx, op["id"], "Succeeded")
    else:
        up["cancel"] = True
        up["cancelOps"].append(op["id"])
        if up["phase"] == "pause":                   # nothing in flight: stop once old surge VMs are gone
            up["resume"] = max(now, up.get("settled") or now)
            _schedule(ctx, doc["id"], up, up["resume"])
        elif up["phase"] == "health":
            _schedule(ctx, doc["id"], up, now)
        elif up["phase"] == "approval":              # nothing approved in flight: Cancelled at once
            up["phase"] = "next"
            _schedule(ctx, doc["id"], up, now)
    save(ctx, doc["id"], state)
    return op


# --- deferral: automaticOSUpgradePolicy.osRollingUpgradeDeferral, approveRollingUpgrade ----------------------

def deferred(doc):
    policy = (m.props(doc).get("upgradePolicy") or {}).get("automaticOSUpgradePolicy") or {}
    return bool(policy.get("osRollingUpgradeDeferral"))


def _answer_approvals(ctx, up, fleet):
    """Answer each approval whose instances are all dealt with (upgraded, failed, or needing nothing)."""
    batch = up.get("batch") or {}
    open_ids = {v["instanceId"] for v in _candidates(up, fleet)} | set(batch.get("ids", ())) | \
        set(batch.get("watch", ()))
    waiting = []
    for approval in up.get("approvals", ()):
        if open_ids & set(approval["ids"]):
            waiting.append(approval)
        else:
            inst.release(ctx, approval["op"], "Succeeded")
    up["approvals"] = waiting


def approve(ctx, doc, instance_ids):
    """POST approveRollingUpgrade: the named instances (all, without ids) of the deferred upgrade may go; its
    LRO answers once they are upgraded (or failed), or when the upgrade ends."""
    state = load(ctx, doc["id"])
    up = state.get("latest")
    if not up or up["code"] != ROLLING_FORWARD or not up.get("deferred"):
        raise ArmError(409, "OperationNotAllowed", "There is no deferred OS rolling upgrade awaiting approval on "
                                                   f"Virtual Machine Scale Set '{doc['name']}'.")
    now = ctx.clock.now()
    ids = [v["instanceId"] for v in sets.targets(ctx, doc, instance_ids, True, now)]
    up["approved"] = list(dict.fromkeys(up["approved"] + ids))
    op = _user_op(ctx, doc, "approveRollingUpgrade")
    up["approvals"].append({"op": op["id"], "ids": ids})
    events.record(ctx, "rolling.approved", doc["id"], time=now, upgrade=up["id"], instance_ids=ids)
    if up["phase"] == "approval":
        up["phase"] = "next"
        _advance(ctx, doc["id"], state, now)
    if up["code"] == ROLLING_FORWARD:
        _answer_approvals(ctx, up, Fleet(ctx, doc, now))
    save(ctx, doc["id"], state)
    return op


# --- rendering ----------------------------------------------------------------------------------------

def progress(ctx, up, fleet):
    if up.get("final") is not None and up["code"] != ROLLING_FORWARD:
        return dict(up["final"])
    batch = up.get("batch") or {}
    return {"successfulInstanceCount": up.get("baseline", 0) + len(up["done"]),
            "failedInstanceCount": len(up["failed"]),
            "inProgressInstanceCount": len(batch.get("watch", ())),
            "pendingInstanceCount": len(_candidates(up, fleet, approved_only=False)) if fleet else 0}


def _rollback_info(ctx, vmss_id, up):
    good = bad = 0
    now = ctx.clock.now()
    for iid in up["rolledBack"]:
        view = inst.get_instance(ctx, vmss_id, iid, now)
        if view is not None and inst.busy(view, now):
            continue
        if view is not None and view.get("provisioningState") == "Failed":
            bad += 1
        else:
            good += 1
    return {"successfullyRolledbackInstanceCount": good, "failedRolledbackInstanceCount": bad}


def _fleet_if_running(ctx, doc, ups):
    """A Fleet when one of `ups` still rolls forward (its pending count is live), else None."""
    return Fleet(ctx, doc, ctx.clock.now()) if any(u["code"] == ROLLING_FORWARD for u in ups) else None


def render_latest(ctx, doc, up):
    iso = ctx.clock.iso
    props = {"policy": dict(up["policy"]),
             "runningStatus": {"code": up["code"], "startTime": iso(up["start"]), "lastAction": up["lastAction"],
                               "lastActionTime": iso(up["lastActionTime"])},
             "progress": progress(ctx, up, _fleet_if_running(ctx, doc, [up]))}
    if up.get("error"):
        props["error"] = up["error"]
    return {"properties": props, "type": ROLLING_TYPE, "location": doc["location"]}


def render_history(ctx, doc, up, fleet=None):
    iso = ctx.clock.iso
    status = {"code": up["code"], "startTime": iso(up["start"])}
    if up.get("end"):
        status["endTime"] = iso(up["end"])
    props = {"runningStatus": status,
             "progress": progress(ctx, up, fleet),
             "startedBy": up["startedBy"], "targetImageReference": dict(up.get("image") or {}),
             "rollbackInfo": _rollback_info(ctx, doc["id"], up)}
    if up.get("error"):
        props["error"] = up["error"]
    return {"properties": props, "type": ROLLING_TYPE, "location": doc["location"]}


# --- routes -------------------------------------------------------------------------------------------

VMSS = handlers.VMSS


def _check_os_upgradable(ctx, doc):
    """The image must float ('latest' / a gallery definition without version) on some unprotected instance."""
    ref = m.image_reference(m.profile(doc))
    unprotected = [v for v in sets.members(inst.list_instances(ctx, doc["id"])) if not sets.protected_from_actions(v)]
    if m.image_version(ref) != "latest" or not unprotected:
        raise ArmError(409, "OperationNotAllowed", NOT_LATEST)


def _start_route(kind, op_kind, check=None):
    def handler(ctx, req):
        doc = handlers.scale_set_of(ctx, req)
        sets.refuse_if_busy(ctx, doc)
        if check:
            check(ctx, doc)
        _refuse_if_rolling(load(ctx, doc["id"]), doc)
        op = _user_op(ctx, doc, op_kind)
        start(ctx, doc, kind, "User", [op["id"]])
        return Response(202, None, ctx.ops.lro_headers(op))
    return handler


route("POST", VMSS + "/osRollingUpgrade", operation_id="VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade")(
    _start_route("os", "osRollingUpgrade", _check_os_upgradable))
route("POST", VMSS + "/extensionRollingUpgrade",
      operation_id="VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade")(
    _start_route("extension", "extensionRollingUpgrade"))


@route("POST", VMSS + "/rollingUpgrades/cancel", operation_id="VirtualMachineScaleSetRollingUpgrades_Cancel",
       action="Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades/cancel/action")
def cancel_route(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    return Response(202, None, ctx.ops.lro_headers(cancel(ctx, doc)))


@route("POST", VMSS + "/approveRollingUpgrade", operation_id="VirtualMachineScaleSets_ApproveRollingUpgrade")
def approve_route(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    return Response(202, None, ctx.ops.lro_headers(approve(ctx, doc, sets.instance_ids_of(req.body))))


@route("POST", VMSS + "/virtualMachines/{instanceId}/approveRollingUpgrade",
       operation_id="VirtualMachineScaleSetVMs_ApproveRollingUpgrade")
def approve_instance_route(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    return Response(202, None, ctx.ops.lro_headers(approve(ctx, doc, [req.params["instanceId"]])))


@route("GET", VMSS + "/rollingUpgrades/latest", operation_id="VirtualMachineScaleSetRollingUpgrades_GetLatest")
def get_latest(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    up = latest(ctx, doc["id"])
    if up is None:
        raise ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    return ok(render_latest(ctx, doc, up))


@route("GET", VMSS + "/osUpgradeHistory", operation_id="VirtualMachineScaleSets_GetOSUpgradeHistory")
def os_upgrade_history(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    state = load(ctx, doc["id"])
    up = state.get("latest")
    items = [up] if up and up["kind"] == "os" and up["code"] == ROLLING_FORWARD else []
    items = (items + state.get("history", []))[:HISTORY_LENGTH]
    fleet = _fleet_if_running(ctx, doc, items)
    return ok(page(req, [render_history(ctx, doc, u, fleet) for u in items], ctx.base_url, ctx.page_size))
