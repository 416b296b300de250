"""Automatic OS image upgrades (upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade).

For a scale set whose image is a Compute Gallery definition without version (or .../versions/latest), in
a gallery the emulator holds: once "latest" for the set's region (gallery.resolve_gallery_image: the
highest version replicated there and not excluded from latest) is a version some unprotected instance
does not run, the platform starts an OS rolling upgrade (rolling.py, startedBy Platform in
osUpgradeHistory) onto it. A version excluded from latest, or not replicated to the region, is never
rolled out ("an image upgrade is only kicked off for a particular Azure region when the new image is
published and replicated to the region of that scale set"; "Image versions excluded from the gallery
image's latest version are not rolled out", learn.microsoft.com ".../virtual-machine-scale-sets-automatic-upgrade").
Each target version is tried once: after a Faulted or Cancelled platform upgrade the next try comes with
the next version. Platform images are not modelled (there is no newer platform image).

An engine (ctx.engines) looks every `auto_os_upgrade_check` (clock.DURATIONS, scaled, at least MIN_INTERVAL real seconds) and costs
one kv read when not due.
"""
from emulator.app import on_start
from emulator.arm import ArmError
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute import rolling
from emulator.providers.compute import scalesets as sets

NEXT_KEY = "compute:autoupgrade:next"
MIN_INTERVAL = 0.2    # real seconds


@on_start
def register(ctx):
    ctx.engines.append(engine)


def engine(ctx, now):
    due = ctx.store.kv_get(NEXT_KEY)
    if due is not None and now < due:
        return
    ctx.store.kv_set(NEXT_KEY, now + max(ctx.duration("auto_os_upgrade_check"), MIN_INTERVAL))
    for doc in ctx.store.list(m.VMSS_TYPE):
        policy = (m.props(doc).get("upgradePolicy") or {}).get("automaticOSUpgradePolicy") or {}
        if policy.get("enableAutomaticOSUpgrade") and m.props(doc).get("provisioningState") != "Deleting":
            consider(ctx, doc, now)


def latest_version(ctx, doc):
    """What "latest" resolves to for the set's floating gallery image, or None."""
    ref = m.image_reference(m.profile(doc))
    gallery = m.gallery_image(ref)
    if gallery is None or (gallery[1] or "latest").lower() != "latest":
        return None
    api = inst.gallery_api(ctx, ref)
    if api is None:
        return None
    try:
        return api.resolve_gallery_image(ctx, ref["id"], doc["location"])[1]
    except ArmError:
        return None


def consider(ctx, doc, now):
    """Start a Platform OS upgrade of one scale set if a new latest version is there; returns it or None."""
    target = latest_version(ctx, doc)
    if target is None:
        return None
    state = rolling.load(ctx, doc["id"])
    up = state.get("latest")
    if (up and up["code"] == rolling.ROLLING_FORWARD) or state.get("platformTarget") == target:
        return None
    state["platformTarget"] = target
    behind = [v for v in sets.members(inst.list_instances(ctx, doc["id"], now))
              if not sets.protected_from_actions(v) and v.get("exactVersion") != target]
    started = rolling.start(ctx, doc, "os", "Platform", state=state) if behind else None
    rolling.save(ctx, doc["id"], state)
    return started
