"""Application Health extension states, computed from time: no probe thread, a pure function of
(instance, its model's health extension settings, the control API's health rules, now).

As learn.microsoft.com ".../virtual-machine-scale-sets-health-extension" describes it:

* No Application Health extension in the instance's model, or the VM not running / mid-operation:
  no vmHealth at all (Azure has no signal then).
* The extension probes every `intervalInSeconds` (default 5) from the (re)start; here the k-th probe is
  at k x interval, k >= 1. What a probe answers is decided by the control API's health rules (the last
  matching rule of kv `health_rules`; no match: Healthy). "Flapping" answers Healthy / Unhealthy
  alternately every `period` realistic seconds (default 60), starting Healthy. A rule state Unknown or
  Initializing is a probe with no verdict (no or an invalid `ApplicationHealthState`, a non-2xx answer,
  a timeout, an unreachable endpoint): the extension reports nothing usable.
* Rich health states (typeHandlerVersion 2.x): after a (re)start the instance is Initializing until
  `numberOfProbes` (default 1) consecutive probes answered the same verdict (Healthy or Unhealthy); then
  it is that state. `gracePeriod` (seconds or ISO 8601; default intervalInSeconds x numberOfProbes, as
  github.com/Azure/applicationhealth-extension-linux settings.go) is the MOST it stays Initializing: if
  the probes have not settled by then, it turns Unknown (http / https) or Unhealthy (tcp, which has no
  Unknown), and still settles later once `numberOfProbes` identical verdicts come. Later changes also
  take `numberOfProbes` consecutive identical verdicts ("the number of consecutive probes required for
  the health status to change").
* Binary health states (typeHandlerVersion 1.x) have neither Initializing nor Unknown: a probe without
  a Healthy answer is an Unhealthy verdict, and until the probes settle the instance reads Unhealthy
  ("Instances will automatically fall into Unhealthy state if a Healthy signal isn't received").

Rules are read as they are now for the whole life of the instance (a rule change applies from the
instance's start; no per-instance probe history is kept). Rule periods, intervals and grace are
realistic seconds, scaled by the clock like every other duration.
"""
import math

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
DEFAULT_INTERVAL, DEFAULT_PROBES = 5, 1


def _settings(extension):
    return (extension.get("properties") or {}).get("settings") or {}


def interval_seconds(extension):
    """Realistic seconds between two probes (intervalInSeconds, default 5)."""
    return m.parse_duration(_settings(extension).get("intervalInSeconds")) or DEFAULT_INTERVAL


def probe_count(extension):
    """numberOfProbes: consecutive identical verdicts needed to settle or change state (default 1)."""
    return max(1, int(m.parse_duration(_settings(extension).get("numberOfProbes")) or DEFAULT_PROBES))


def grace_seconds(extension):
    """Realistic upper bound of the Initializing state (gracePeriod, default interval x numberOfProbes)."""
    grace = _settings(extension).get("gracePeriod")
    grace = m.parse_duration(grace) if grace not in (None, 0) else None
    return grace if grace is not None else interval_seconds(extension) * probe_count(extension)


def is_rich(extension):
    version = str((extension.get("properties") or {}).get("typeHandlerVersion") or "2.0")
    return not version.startswith("1")


def _has_unknown(extension):
    """Rich states over http / https; tcp has no Unknown (a failed connection is Unhealthy)."""
    return is_rich(extension) and str(_settings(extension).get("protocol") or "http").lower() != "tcp"


def rule_matches(match, vmss_name, vmss_id, instance_id, versions, model=None):
    """`versions`: the strings an image_version matcher may equal (version, exact version, image id);
    `model`: the model the instance runs (instances.get_model), for an `extension` matcher."""
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
    if match.get("extension") is not None and not extension_matches(match["extension"], model):
        return False
    return True


def extension_matches(wanted, model):
    """An `extension` matcher: {"name", "settings": {key: value...}, "protected_settings": {...}} - the instance's
    model has the extension `name` (case-insensitive), each public setting named has that value, and its protected
    settings are exactly those given (compared by the digest the model keeps: the emulator, like Azure, keeps no
    protected settings it could show). What a probe answers when a custom script installed a given version."""
    name = str(wanted.get("name") or "").lower()
    ext = next((e for e in m.extensions_of((model or {}).get("profile")) if (e.get("name") or "").lower() == name), None)
    if ext is None:
        return False
    settings = (ext.get("properties") or {}).get("settings") or {}
    if any(settings.get(key) != value for key, value in (wanted.get("settings") or {}).items()):
        return False
    if wanted.get("protected_settings") is not None:
        kept = ((model or {}).get("secrets") or {}).get(f"extensions/{name}/protectedSettings")
        return kept == m.secret_digest(wanted["protected_settings"])
    return True


def probe_rule(rules, vmss_name, vmss_id, instance_id, versions, model=None):
    """(answer, flap period) the probes of an instance get: the last matching rule, else Healthy."""
    state, period = HEALTHY, None
    for rule in rules or []:
        if rule_matches(rule.get("match"), vmss_name, vmss_id, instance_id, versions, model):
            state, period = rule.get("state", HEALTHY), rule.get("period")
    return state, period


def assess(*, extension, running_since, now, answer, period=None, scaled):
    """(state, since) of an instance whose probes answer `answer` (a rule state), or (None, None).

    `since` is when the state began (emulator seconds); `scaled(seconds)` applies the time scale."""
    if extension is None or running_since is None:
        return None, None
    rich, unknown = is_rich(extension), _has_unknown(extension)
    step = max(scaled(interval_seconds(extension)), 1e-9)
    needed, grace = probe_count(extension), scaled(grace_seconds(extension))
    span = max(scaled(float(period or DEFAULT_FLAP_PERIOD)), 1e-9) if answer == "Flapping" else None

    def verdict(k):
        said = answer
        if span is not None:
            said = HEALTHY if int(k * step // span) % 2 == 0 else UNHEALTHY
        if said in (HEALTHY, UNHEALTHY):
            return said
        return None if rich else UNHEALTHY           # binary: no Healthy answer is an Unhealthy verdict

    last = int((now - running_since) // step)
    # The newest run of `needed` identical verdicts decides; a window of two flap spans (or `needed`
    # probes for a steady answer) holds one if there is any.
    window = needed + (2 * (math.ceil(span / step) + 1) if span is not None else 0)
    run, current = 0, None
    for k in range(last, max(0, last - window), -1):
        v = verdict(k)
        run = run + 1 if v == current else 1
        current = v
        if current is not None and run >= needed:
            start = k if span is not None else 1     # a steady answer has been the same since the start
            while start > 1 and verdict(start - 1) == current and last - start < 2 * window:
                start -= 1
            return current, running_since + (start + needed - 1) * step
    if running_since + grace > now:
        return (INITIALIZING if rich else UNHEALTHY), running_since
    return (UNKNOWN if unknown else UNHEALTHY), running_since + grace


def evaluate(*, extension, running_since, now, rules, vmss_name, vmss_id, instance_id, versions, scaled, model=None):
    """The health state, or None when there is no signal."""
    answer, period = probe_rule(rules, vmss_name, vmss_id, instance_id, versions, model)
    return assess(extension=extension, running_since=running_since, now=now, answer=answer, period=period,
                  scaled=scaled)[0]


def next_probe(extension, running_since, now, scaled):
    """When the next probe after `now` comes (emulator seconds): the earliest the state can change."""
    step = max(scaled(interval_seconds(extension)), 1e-9)
    return running_since + (int((now - running_since) // step) + 1) * step


def vm_health(state, time_iso):
    """The instance view's `vmHealth` block for a state."""
    code, level, display = _STATUS[state]
    return {"status": {"code": code, "level": level, "displayStatus": display, "time": time_iso}}


def state_since(ctx, view, now, vmss_doc=None, model=None, rules=None):
    """(state, since) of an instance view, as instances.health_of judges it; (None, None) without a signal."""
    from emulator.providers.compute import instances
    if view is None or instances.busy(view, now) or view.get("power") != "running":
        return None, None
    vmss_doc = vmss_doc or instances.scale_set_doc(ctx, view["vmss"])
    model = model if model is not None else instances.get_model(ctx, view["vmss"], view.get("model"))
    answer, period = probe_rule(ctx.store.kv_get("health_rules", []) if rules is None else rules, vmss_doc["name"],
                                vmss_doc["id"], view["instanceId"],
                                instances.versions_of(model, view.get("exactVersion")), model)
    return assess(extension=m.health_extension((model or {}).get("profile")), running_since=view.get("since"),
                  now=now, answer=answer, period=period, scaled=ctx.clock.scaled)


def instance_health(ctx, inst, now=None):
    """Health of an instance record (as instances.list_instances returns them), or None."""
    from emulator.providers.compute import instances
    return instances.health_of(ctx, inst, ctx.clock.now() if now is None else now)
