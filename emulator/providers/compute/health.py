"""Application Health extension states, computed from time: no probe thread, a pure function of
(instance, its model's health extension settings, the control API's health rules, now).

* No Application Health extension in the instance's model, or the VM not running / mid-operation:
  no vmHealth at all (Azure has no signal then).
* Within the grace period after the VM (re)started: Initializing. gracePeriod comes from the extension
  settings (seconds or ISO 8601); absent, the extension uses intervalInSeconds x numberOfProbes
  (defaults 5 x 1, github.com/Azure/applicationhealth-extension-linux settings.go).
* Then the last matching rule of kv `health_rules` decides; no match: Healthy. "Flapping" alternates
  Healthy / Unhealthy every `period` realistic seconds (default 60), starting Healthy.
  Binary health states (typeHandlerVersion 1.x) have no Unknown: it reads as Unhealthy there.

Rule periods and grace are realistic seconds, scaled by the clock like every other duration.
"""
from emulator.providers.compute import model as m

HEALTHY, UNHEALTHY, UNKNOWN, INITIALIZING = "Healthy", "Unhealthy", "Unknown", "Initializing"
STATES = (HEALTHY, UNHEALTHY, UNKNOWN, INITIALIZING)
_STATUS = {
    HEALTHY: ("HealthState/healthy", "Info", "The VM is healthy"),
    UNHEALTHY: ("HealthState/unhealthy", "Warning", "The VM is unhealthy"),
    UNKNOWN: ("HealthState/unknown", "Warning", "The VM health is unknown"),
    INITIALIZING: ("HealthState/initializing", "Info", "The VM health is initializing"),
}
DEFAULT_FLAP_PERIOD = 60


def grace_seconds(extension):
    """Realistic grace period of an Application Health extension."""
    settings = (extension.get("properties") or {}).get("settings") or {}
    grace = m.parse_duration(settings.get("gracePeriod")) if settings.get("gracePeriod") not in (None, 0) else None
    if grace is None:
        interval = m.parse_duration(settings.get("intervalInSeconds")) or 5
        probes = m.parse_duration(settings.get("numberOfProbes")) or 1
        grace = interval * probes
    return grace


def is_rich(extension):
    version = str((extension.get("properties") or {}).get("typeHandlerVersion") or "2.0")
    return not version.startswith("1")


def rule_matches(match, vmss_name, vmss_id, instance_id, versions):
    """`versions`: the strings an image_version matcher may equal (version, exact version, image id)."""
    match = match or {}
    scale_set = match.get("scale_set")
    if scale_set and scale_set.lower() not in (vmss_name.lower(), vmss_id.lower()):
        return False
    ids = match.get("instance_ids")
    if ids is not None and str(instance_id) not in {str(i) for i in ids}:
        return False
    wanted = match.get("image_version")
    if wanted is not None and str(wanted).lower() not in {str(v).lower() for v in versions if v}:
        return False
    return True


def evaluate(*, extension, running_since, now, rules, vmss_name, vmss_id, instance_id, versions, scaled):
    """The health state, or None when there is no signal. `scaled(seconds)` applies the time scale."""
    if extension is None or running_since is None:
        return None
    age = now - running_since
    if age < scaled(grace_seconds(extension)):
        return INITIALIZING
    state, period = HEALTHY, None
    for rule in rules or []:
        if rule_matches(rule.get("match"), vmss_name, vmss_id, instance_id, versions):
            state, period = rule.get("state", HEALTHY), rule.get("period")
    if state == "Flapping":
        span = max(scaled(float(period or DEFAULT_FLAP_PERIOD)), 1e-6)
        state = HEALTHY if int(age // span) % 2 == 0 else UNHEALTHY
    if state not in STATES:
        state = HEALTHY
    if state == UNKNOWN and not is_rich(extension):
        state = UNHEALTHY
    return state


def vm_health(state, time_iso):
    """The instance view's `vmHealth` block for a state."""
    code, level, display = _STATUS[state]
    return {"status": {"code": code, "level": level, "displayStatus": display, "time": time_iso}}


def instance_health(ctx, inst, now=None):
    """Health of an instance record (as instances.list_instances returns them), or None."""
    from emulator.providers.compute import instances
    return instances.health_of(ctx, inst, ctx.clock.now() if now is None else now)
