"""Automatic instance repairs (automaticRepairsPolicy: enabled, gracePeriod, repairAction).

An engine (ctx.engines; one kv read when not due): every `health_probe_interval` (scaled, at least
MIN_INTERVAL real seconds) each scale set with repairs enabled and the AutomaticRepairs orchestration
service Running (setOrchestrationServiceState suspends / resumes it; the scale set's instance view shows
it) is looked at. As learn.microsoft.com ".../virtual-machine-scale-sets-automatic-instance-repairs" says:

* An instance is repaired when its Application Health state is Unhealthy or Unknown, it is running and
  provisioned (provisioning failures are not repaired), not protected (either protection policy), not
  busy, and the grace period has passed since its last state change (the end of its last boot here):
  gracePeriod, default PT10M (the 2024-07-01 spec: "minimum ... 10 minutes (PT10M), which is also the
  default value"), scaled. A replacement instance gets the grace period too.
* Batches: at most 5 % of the instances are under repair at once, one at a time below 20 instances.
* repairAction Replace (default): the instance is deleted and a new one created on the latest model
  (new id, new IP); Reimage and Restart: that operation on the instance.
* Each repair is an event `repair` on the scale set (instance_id, action, health, new_instance_id).

Not modelled: the platform suspending repairs by itself when replacements keep failing, terminate
notifications delaying a Replace's delete.
"""
from emulator import events
from emulator.app import on_start
from emulator.providers.compute import health as h
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute import placement
from emulator.providers.compute import rolling

NEXT_KEY = "compute:repairs:next"
MIN_INTERVAL = 0.2               # real seconds between two looks, at least (as events.watch_health)
SMALL_SET, BATCH_PERCENT = 20, 5  # "no more than 5% ... fewer than 20 instances: one unhealthy instance at a time"
ACTIONS = {"Replace": "delete", "Reimage": "reimage", "Restart": "restart"}


@on_start
def register(ctx):
    ctx.engines.append(engine)


def service_state(ctx, doc):
    """AutomaticRepairs orchestration service: Running, Suspended or NotRunning."""
    if not (m.props(doc).get("automaticRepairsPolicy") or {}).get("enabled"):
        return "NotRunning"
    return (inst.load_state(ctx, doc["id"]).get("orchestration") or {}).get("AutomaticRepairs", "Running")


def engine(ctx, now):
    due = ctx.store.kv_get(NEXT_KEY)
    if due is not None and now < due:
        return
    ctx.store.kv_set(NEXT_KEY, now + max(ctx.duration("health_probe_interval"), MIN_INTERVAL))
    for doc in ctx.store.list(m.VMSS_TYPE):
        if m.props(doc).get("provisioningState") != "Deleting" and service_state(ctx, doc) == "Running":
            repair(ctx, doc, now)


def _grace(ctx, doc):
    policy = m.props(doc).get("automaticRepairsPolicy") or {}
    grace = m.parse_duration(policy.get("gracePeriod"))
    return ctx.clock.scaled(grace) if grace else ctx.duration("repair_grace")


def repair(ctx, doc, now):
    """Start the repairs a scale set is due at `now`; returns the instance ids repaired."""
    vmss_id = doc["id"]
    key = inst._key("repairs", vmss_id)
    active = {iid: end for iid, end in (ctx.store.kv_get(key) or {}).get("active", {}).items() if end > now}
    fleet = rolling.Fleet(ctx, doc, now)
    total = len(fleet.members)
    room = (1 if total < SMALL_SET else max(1, total * BATCH_PERCENT // 100)) - len(active)
    grace = _grace(ctx, doc)
    due = []
    for view in fleet.members:
        if len(due) >= room:
            break
        if view["instanceId"] in active or inst.busy(view, now) or view.get("power") != "running" \
                or view.get("provisioningState") != "Succeeded" or view.get("since") is None \
                or now < view["since"] + grace or placement.is_protected_from_scale_in(view):
            continue
        state = fleet.health(view)
        if state in (h.UNHEALTHY, h.UNKNOWN):
            due.append((view, state))
    action = (m.props(doc).get("automaticRepairsPolicy") or {}).get("repairAction") or "Replace"
    for view, state in due:
        iid = view["instanceId"]
        ends = inst.start_operation(ctx, vmss_id, [iid], ACTIONS.get(action, "delete"), now=now)
        extra = {}
        if action not in ("Reimage", "Restart"):
            try:
                created = inst.create_instances(ctx, doc, 1, now=now)
            except inst.SubnetFull:
                created = {}
            ends = created or ends
            extra = {"new_instance_id": next(iter(created), None)}
        active.update(ends)
        events.record(ctx, "repair", vmss_id, time=now, instance_id=iid, action=action, health=state, **extra)
    if due or active:
        ctx.store.kv_set(key, {"active": active})
    return [view["instanceId"] for view, _ in due]
