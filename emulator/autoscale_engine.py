"""Azure Monitor autoscale, evaluated over scaled time against metrics fed through the control API.

Wiring: `install(ctx)` appends `evaluate` to `ctx.engines` (idempotent). The autoscale provider also
calls it on its first request, but only the wiring in `main.build` makes evaluation resume after a
restart before any autoscale request arrives.

How a setting is evaluated (learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings,
.../autoscale-best-practices, .../autoscale-flapping):

* Every `autoscale_evaluation` (60 s realistic, scaled) each *enabled* setting whose target exists is
  evaluated. The next evaluation time is kept in kv `autoscale:next`, so the engine costs one kv read
  when nothing is due.
* Profile: the first fixedDate profile whose [start, end] holds now; else the recurrence profile that
  started most recently (frequency Week; a recurrence profile runs until the next one starts); else the
  default profile (neither fixedDate nor recurrence). Times are read in the profile's Windows time zone.
* A rule's metric: samples of (metricResourceUri, metricName) in (now - timeWindow, now], bucketed into
  timeGrain grains; per grain, each instance's samples are averaged, then instances are combined by
  `statistic` (Average, Min, Max, Sum, Count); the grains are combined by `timeAggregation` (Average,
  Minimum, Maximum, Total, Count, Last); `dividePerInstance` divides by the current instance count.
  A window not yet covered by data counts as "metrics unavailable" (a held value must have begun by
  the window start, a point sample by the end of the first grain), so a new value acts only once it
  has filled the window: CPU held at 85% from t0 scales out at t0 + timeWindow, not at once.
* Scale-out wins: if any Increase rule is met (and out of cooldown) the capacity becomes the largest of
  those rules' results. Scale-in needs every Decrease rule met, no Increase rule met, and takes the
  largest (most conservative) result. Cooldown: a rule acts only `cooldown` after the setting's last
  scale action.
* Flapping (scale-in only): the observed value of each per-instance scale-out metric (a metric of the
  target itself, or dividePerInstance) is projected to value x current / new; if that would trip a
  scale-out rule, a smaller decrease is tried, and if none is safe the scale-in is deferred (logged once).
* Capacity outside [minimum, maximum] is brought back at once; with no metric at all the capacity is
  raised to `default` (never lowered: the spec says default applies only when the count is lower).
* The capacity changes through compute's own PATCH path (`scalesets.create_or_update`), so scale-in
  policy and instance protection apply, and a set still busy answers 409 (logged as failed, retried at
  the next evaluation).
* predictiveAutoscalePolicy: Disabled and ForecastOnly never act predictively (ForecastOnly only
  stores the policy). Enabled is modelled simply: each scale-out rule whose metric is Percentage CPU is
  also checked against a forecast, the linear trend of the window's grain values extrapolated
  scaleLookAheadTime (default PT1M) ahead; a forecast that trips the rule scales out (reason
  "predictive").

Metric samples (control API, `POST /_emulator/metrics`, one object or a list):
    {"resource_id", "metric": "Percentage CPU", "value": 85}            hold this value from now on
    {"resource_id", "metric", "value", "timestamp": epoch | ISO 8601}   one sample at that time
    optional: "instance_id" (per-instance samples), "dimensions": {name: value}, "hold": bool
`GET /_emulator/metrics[?resource_id=&metric=]`, `DELETE /_emulator/metrics[?resource_id=]`,
`GET /_emulator/autoscale-log[?since=N&setting=id]`, `DELETE /_emulator/autoscale-log`.
"""
import datetime
import logging
import math
import re
from collections import namedtuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emulator.arm import ArmError, Response, ok, split_id
from emulator.server import CaseInsensitiveDict, route

log = logging.getLogger("emulator.autoscale")

SETTING_TYPE = "Microsoft.Insights/autoscaleSettings"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
NEXT_KEY = "autoscale:next"
LOG_KEY = "autoscale:log"
LOG_LIMIT = 2000
METRIC_PREFIX = "metrics:"
MAX_WINDOW = 12 * 3600          # the longest timeWindow Azure accepts (PT12H), realistic seconds
POINT_LIMIT = 20000             # samples kept per series

# --- ISO 8601 durations ---------------------------------------------------------------------------

_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.I)


def parse_duration(text):
    """'PT5M' -> 300.0; None for anything that is not an ISO 8601 duration."""
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text.strip())
    if not m or text.strip().upper() in ("P", "PT"):
        return None
    weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


# --- time zones (Windows names, as Azure uses them) ----------------------------------------------

# The names autoscale_API.json lists, mapped to IANA zones as CLDR's windowsZones.xml does (territory 001).
WINDOWS_ZONES = {
    "Dateline Standard Time": "Etc/GMT+12", "UTC-11": "Etc/GMT+11", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage", "Pacific Standard Time (Mexico)": "America/Tijuana",
    "Pacific Standard Time": "America/Los_Angeles", "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan", "Mountain Standard Time": "America/Denver",
    "Central America Standard Time": "America/Guatemala", "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City", "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota", "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indiana/Indianapolis", "Venezuela Standard Time": "America/Caracas",
    "Paraguay Standard Time": "America/Asuncion", "Atlantic Standard Time": "America/Halifax",
    "Central Brazilian Standard Time": "America/Cuiaba", "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago", "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo", "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "SA Eastern Standard Time": "America/Cayenne", "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo", "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2", "Mid-Atlantic Standard Time": "Etc/GMT+2", "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde", "Morocco Standard Time": "Africa/Casablanca",
    "UTC": "Etc/UTC", "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris", "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos", "Namibia Standard Time": "Africa/Windhoek",
    "Jordan Standard Time": "Asia/Amman", "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut", "Egypt Standard Time": "Africa/Cairo",
    "Syria Standard Time": "Asia/Damascus", "E. Europe Standard Time": "Europe/Chisinau",
    "South Africa Standard Time": "Africa/Johannesburg", "FLE Standard Time": "Europe/Kiev",
    "Turkey Standard Time": "Europe/Istanbul", "Israel Standard Time": "Asia/Jerusalem",
    "Kaliningrad Standard Time": "Europe/Kaliningrad", "Libya Standard Time": "Africa/Tripoli",
    "Arabic Standard Time": "Asia/Baghdad", "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk", "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi", "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai", "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara", "Mauritius Standard Time": "Indian/Mauritius",
    "Georgian Standard Time": "Asia/Tbilisi", "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul", "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg", "Pakistan Standard Time": "Asia/Karachi",
    "India Standard Time": "Asia/Kolkata", "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu", "Central Asia Standard Time": "Asia/Almaty",
    "Bangladesh Standard Time": "Asia/Dhaka", "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Myanmar Standard Time": "Asia/Yangon", "SE Asia Standard Time": "Asia/Bangkok",
    "North Asia Standard Time": "Asia/Krasnoyarsk", "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk", "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth", "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar", "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul", "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide", "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane", "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby", "Tasmania Standard Time": "Australia/Hobart",
    "Magadan Standard Time": "Asia/Magadan", "Vladivostok Standard Time": "Asia/Vladivostok",
    "Russia Time Zone 10": "Asia/Srednekolymsk", "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka", "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12", "Fiji Standard Time": "Pacific/Fiji", "Kamchatka Standard Time": "Asia/Kamchatka",
    "Tonga Standard Time": "Pacific/Tongatapu", "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}
_ZONES_LOWER = {k.lower(): v for k, v in WINDOWS_ZONES.items()}


def time_zone(name):
    """A Windows time zone name -> ZoneInfo (None when unknown). No name means UTC."""
    if not name:
        return datetime.timezone.utc
    iana = _ZONES_LOWER.get(str(name).strip().lower())
    if iana is None:
        return None
    try:
        return ZoneInfo(iana)
    except ZoneInfoNotFoundError:
        return None


# --- profiles ------------------------------------------------------------------------------------

# Day names Azure accepts; digits are .NET DayOfWeek values (0 = Sunday), as the spec example's "1".
_DAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}


def weekday(day):
    """'Monday' / '1' -> Python weekday (Monday 0); None when not a day."""
    text = str(day).strip().lower()
    if text in _DAYS:
        return _DAYS[text]
    if text.isdigit() and 0 <= int(text) <= 6:
        return (int(text) - 1) % 7
    return None


def parse_time(text, tz):
    """An ISO 8601 date-time; a time without offset is read in `tz`."""
    value = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=tz)


def fixed_date_active(profile, now_dt):
    fixed = profile.get("fixedDate")
    tz = time_zone(fixed.get("timeZone")) or datetime.timezone.utc
    return parse_time(fixed["start"], tz) <= now_dt <= parse_time(fixed["end"], tz)


def last_recurrence_start(profile, now_dt):
    """The latest start of a weekly recurrence profile at or before now (None if it never starts)."""
    schedule = profile["recurrence"]["schedule"]
    tz = time_zone(schedule.get("timeZone")) or datetime.timezone.utc
    local = now_dt.astimezone(tz)
    days = {weekday(d) for d in schedule.get("days") or []} - {None}
    best = None
    for back in range(8):
        date = (local - datetime.timedelta(days=back)).date()
        if date.weekday() not in days:
            continue
        for hour in schedule.get("hours") or []:
            for minute in schedule.get("minutes") or []:
                start = datetime.datetime(date.year, date.month, date.day, int(hour), int(minute), tzinfo=tz)
                if start <= local and (best is None or start > best):
                    best = start
    return best


def active_profile(profiles, now):
    """fixedDate (first active) > recurrence (latest started) > default; None when nothing applies."""
    now_dt = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    for profile in profiles:
        if profile.get("fixedDate") and fixed_date_active(profile, now_dt):
            return profile
    started = [(last_recurrence_start(p, now_dt), i) for i, p in enumerate(profiles) if p.get("recurrence")]
    started = [(t, i) for t, i in started if t is not None]
    if started:
        return profiles[max(started)[1]]
    return next((p for p in profiles if not p.get("fixedDate") and not p.get("recurrence")), None)


Capacity = namedtuple("Capacity", "minimum maximum default")


def capacity(profile):
    c = profile["capacity"]
    return Capacity(int(c["minimum"]), int(c["maximum"]), int(c["default"]))


# --- metrics: series and a rule's value (pure) ---------------------------------------------------

def _dimensions_match(sample_dims, conditions):
    """Rule dimension filters: Equals any of Values ('*' matches all), NotEquals none of them."""
    dims = {str(k).lower(): str(v) for k, v in (sample_dims or {}).items()}
    for cond in conditions or []:
        value = dims.get(str(cond.get("DimensionName", "")).lower())
        values = [str(v) for v in cond.get("Values") or []]
        hit = value is not None and ("*" in values or value in values)
        if (cond.get("Operator") or "Equals") == "Equals" and not hit:
            return False
        if cond.get("Operator") == "NotEquals" and hit:
            return False
    return True


def grain_samples(series, start, end, grain, conditions=None):
    """{grain index: {instance: [(value, weight)]}} of the samples in (start, end]. A point sample
    weighs 1; a held value weighs the fraction of each grain it covers, so a grain where CPU went
    from 85% to 20% half-way averages 52.5%. Grains count from the window start."""
    count = max(int(math.ceil((end - start) / grain - 1e-9)), 1)
    out = {}

    def add(index, instance, value, weight=1.0):
        out.setdefault(index, {}).setdefault(instance, []).append((float(value), weight))

    for t, value, instance, dims in series.get("points", []):
        if start < t <= end and _dimensions_match(dims, conditions):
            add(min(int((t - start) // grain), count - 1), instance, value)
    holds = {}
    for hold in sorted(series.get("holds", []), key=lambda h: h[0]):
        holds.setdefault(hold[2], []).append(hold)
    for instance, items in holds.items():
        for i, (t, value, _, dims) in enumerate(items):
            until = min(items[i + 1][0] if i + 1 < len(items) else math.inf, end)
            since = max(t, start)
            if until <= since or not _dimensions_match(dims, conditions):
                continue
            for index in range(int((since - start) // grain), min(int((until - start - 1e-9) // grain), count - 1) + 1):
                lo, hi = start + index * grain, min(start + (index + 1) * grain, end)
                covered_part = (min(until, hi) - max(since, lo)) / grain
                if covered_part > 0:
                    add(index, instance, value, covered_part)
    return out


def covered(series, start, grain):
    """Whether data reaches back to the window start: a held value must have begun by then; a point
    sample stands for its grain, so one in the first grain will do."""
    if any(h[0] <= start for h in series.get("holds", [])):
        return True
    return any(p[0] <= start + grain for p in series.get("points", []))


def combine(values, how):
    """Instances of one grain (statistic) or grains of a window (timeAggregation)."""
    if not values:
        return None
    how = (how or "Average").lower()
    if how == "average":
        return sum(values) / len(values)
    if how in ("min", "minimum"):
        return min(values)
    if how in ("max", "maximum"):
        return max(values)
    if how in ("sum", "total"):
        return sum(values)
    if how == "count":
        return float(len(values))
    if how == "last":
        return values[-1]
    raise ValueError(f"unknown aggregation {how}")


def grain_values(series, trigger, now, scaled):
    """The per-grain values of a rule's window (oldest first), or None when the window is not covered."""
    grain = scaled(parse_duration(trigger["timeGrain"]))
    window = scaled(parse_duration(trigger["timeWindow"]))
    start = now - window
    if not covered(series, start, grain):
        return None
    grains = grain_samples(series, start, now, grain, trigger.get("dimensions"))
    values = []
    for index in sorted(grains):
        per_instance = [sum(v * w for v, w in samples) / sum(w for _, w in samples)
                        for samples in grains[index].values()]
        values.append(combine(per_instance, trigger.get("statistic")))
    return values or None


def metric_value(series, trigger, now, scaled, instance_count):
    """What the rule compares with its threshold, or None when metrics are unavailable."""
    values = grain_values(series, trigger, now, scaled)
    if values is None:
        return None
    value = combine(values, trigger.get("timeAggregation"))
    if trigger.get("dividePerInstance"):
        value = value / max(instance_count, 1)
    return value


def forecast(values, steps_ahead):
    """Least-squares line through the grain values, `steps_ahead` grains past the last one."""
    n = len(values)
    if n < 2:
        return values[-1] if values else None
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    var = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / var
    return mean_y + slope * (n - 1 + steps_ahead - mean_x)


_OPERATORS = {
    "equals": lambda v, t: v == t, "notequals": lambda v, t: v != t,
    "greaterthan": lambda v, t: v > t, "greaterthanorequal": lambda v, t: v >= t,
    "lessthan": lambda v, t: v < t, "lessthanorequal": lambda v, t: v <= t,
}


def met(trigger, value):
    return value is not None and _OPERATORS[trigger["operator"].lower()](value, float(trigger["threshold"]))


# --- decisions (pure) ----------------------------------------------------------------------------

Decision = namedtuple("Decision", "capacity rule value reason deferred")


def action_target(current, action):
    """The capacity a rule's scaleAction asks for (before min/max)."""
    kind = (action.get("type") or "ChangeCount").lower()
    value = int(action.get("value") or 1)
    sign = -1 if (action.get("direction") or "").lower() == "decrease" else 1
    if kind == "exactcount":
        return value
    if kind == "percentchangecount":
        return current + sign * max(1, math.ceil(current * value / 100.0))
    if kind == "serviceallowednextvalue":
        return current + sign
    return current + sign * value


def _direction(rule):
    return (rule["scaleAction"].get("direction") or "None").lower()


def _cooled(rule, now, last_action, scaled):
    if last_action is None:
        return True
    return now - last_action >= scaled(parse_duration(rule["scaleAction"]["cooldown"]) or 0)


def avoid_flapping(rules, readings, per_instance, current, proposed):
    """The lowest capacity in [proposed, current) whose projected metrics trip no scale-out rule."""
    outs = [(r, v) for r, v, p in zip(rules, readings, per_instance)
            if _direction(r) == "increase" and v is not None and p]
    for candidate in range(proposed, current):
        if candidate <= 0:
            continue
        if not any(met(r["metricTrigger"], v * current / candidate) for r, v in outs):
            return candidate
    return None


def decide(profile, readings, current, now, last_action, scaled, per_instance=None, forecasts=None):
    """What a profile does now. `readings[i]` is rule i's metric value (None: unavailable);
    `forecasts[i]` a predicted value (predictive autoscale Enabled). Returns a Decision or None."""
    cap = capacity(profile)
    if current < cap.minimum:
        return Decision(cap.minimum, None, None, "capacity below the profile minimum", False)
    if current > cap.maximum:
        return Decision(cap.maximum, None, None, "capacity above the profile maximum", False)
    rules = profile.get("rules") or []
    per_instance = per_instance or [True] * len(rules)
    out = _scale_out(rules, readings, current, now, last_action, scaled, cap, "")
    if out is None and forecasts:
        out = _scale_out(rules, forecasts, current, now, last_action, scaled, cap, "predictive ")
    if out is not None:
        return out
    if any(_direction(r) == "increase" and met(r["metricTrigger"], v) for r, v in zip(rules, readings)):
        return None      # a scale-out condition holds (in cooldown): never scale in against it
    inn = _scale_in(rules, readings, per_instance, current, now, last_action, scaled, cap)
    if inn is not None:
        return inn
    if all(v is None for v in readings) and current < cap.default:
        return Decision(cap.default, None, None, "metrics unavailable: default capacity", False)
    return None


def _scale_out(rules, values, current, now, last_action, scaled, cap, prefix):
    best = None
    for i, rule in enumerate(rules):
        if _direction(rule) != "increase" or not met(rule["metricTrigger"], values[i]):
            continue
        if not _cooled(rule, now, last_action, scaled):
            continue
        target = min(action_target(current, rule["scaleAction"]), cap.maximum)
        if target > current and (best is None or target > best.capacity):
            best = Decision(target, i, values[i], f"{prefix}scale out: {_describe(rule, values[i])}", False)
    return best


def _scale_in(rules, readings, per_instance, current, now, last_action, scaled, cap):
    ins = [i for i, r in enumerate(rules) if _direction(r) == "decrease"]
    if not ins or not all(met(rules[i]["metricTrigger"], readings[i]) for i in ins):
        return None
    if not all(_cooled(rules[i], now, last_action, scaled) for i in ins):
        return None
    targets = [(max(action_target(current, rules[i]["scaleAction"]), cap.minimum), i) for i in ins]
    proposed, chosen = max(targets)
    if proposed >= current:
        return None
    safe = avoid_flapping(rules, readings, per_instance, current, proposed)
    reason = f"scale in: {_describe(rules[chosen], readings[chosen])}"
    if safe is None:
        return Decision(current, chosen, readings[chosen], reason + " (deferred: flapping)", True)
    if safe != proposed:
        reason += f" (limited to {safe} to avoid flapping)"
    return Decision(safe, chosen, readings[chosen], reason, False)


def _describe(rule, value):
    t = rule["metricTrigger"]
    shown = "n/a" if value is None else f"{value:.2f}"
    return f"{t['metricName']} {t['timeAggregation']} over {t['timeWindow']} = {shown} {t['operator']} {t['threshold']}"


# --- metric series in kv -------------------------------------------------------------------------

def series_key(resource_id, metric):
    return f"{METRIC_PREFIX}{resource_id.lower()}|{metric.lower()}"


def load_series(ctx, resource_id, metric):
    return ctx.store.kv_get(series_key(resource_id, metric)) or {"resource_id": resource_id, "metric": metric,
                                                                  "points": [], "holds": []}


def add_sample(ctx, sample, now):
    """Store one validated sample (see the module docstring)."""
    series = load_series(ctx, sample["resource_id"], sample["metric"])
    hold = sample.get("hold", sample.get("timestamp") is None)
    t = now if sample.get("timestamp") in (None, "now") else _epoch(sample["timestamp"])
    entry = [t, float(sample["value"]), sample.get("instance_id"), sample.get("dimensions")]
    series["holds" if hold else "points"].append(entry)
    _prune(series, now - ctx.clock.scaled(MAX_WINDOW) - 1.0)
    ctx.store.kv_set(series_key(sample["resource_id"], sample["metric"]), series)
    return entry


def _prune(series, cutoff):
    """Forget samples no window can reach; keep the last hold of each instance that began before."""
    series["points"] = [p for p in series["points"] if p[0] >= cutoff][-POINT_LIMIT:]
    holds = sorted(series["holds"], key=lambda h: h[0])
    keep = []
    for instance in {h[2] for h in holds}:
        mine = [h for h in holds if h[2] == instance]
        older = [h for h in mine if h[0] < cutoff]
        keep += older[-1:] + [h for h in mine if h[0] >= cutoff]
    series["holds"] = sorted(keep, key=lambda h: h[0])


def _epoch(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_time(value, datetime.timezone.utc).timestamp()


def validate_sample(sample):
    if not isinstance(sample, dict):
        raise ArmError(400, "InvalidMetric", "A metric sample must be a JSON object.")
    for key in ("resource_id", "metric"):
        if not isinstance(sample.get(key), str) or not sample[key]:
            raise ArmError(400, "InvalidMetric", f"A metric sample needs {key} (a string).")
    if isinstance(sample.get("value"), bool) or not isinstance(sample.get("value"), (int, float)):
        raise ArmError(400, "InvalidMetric", "A metric sample needs a numeric value.")
    if sample.get("timestamp") not in (None, "now"):
        try:
            _epoch(sample["timestamp"])
        except (TypeError, ValueError):
            raise ArmError(400, "InvalidMetric", "timestamp must be epoch seconds or an ISO 8601 date-time.")
    if sample.get("dimensions") is not None and not isinstance(sample["dimensions"], dict):
        raise ArmError(400, "InvalidMetric", "dimensions must be an object of name: value.")
    return sample


# --- the engine ----------------------------------------------------------------------------------

def install(ctx):
    """Register the engine with this emulator (idempotent)."""
    if evaluate not in ctx.engines:
        ctx.engines.append(evaluate)


def evaluate(ctx, now):
    """Engine: evaluate every enabled setting once per `autoscale_evaluation`; cheap when not due."""
    due = ctx.store.kv_get(NEXT_KEY)
    if due is not None and now < due:
        return
    ctx.store.kv_set(NEXT_KEY, now + ctx.duration("autoscale_evaluation"))
    for setting in ctx.store.list(SETTING_TYPE):
        try:
            evaluate_setting(ctx, setting, now)
        except Exception:   # one broken setting must not stop the others, nor the request that ran us
            log.exception("autoscale evaluation of %s failed", setting.get("id"))


def evaluate_setting(ctx, setting, now):
    props = setting.get("properties") or {}
    if not props.get("enabled"):
        return
    target = ctx.store.get(props.get("targetResourceUri") or "")
    if target is None or (target.get("type") or "").lower() != VMSS_TYPE.lower():
        return
    profile = active_profile(props.get("profiles") or [], now)
    if profile is None:
        return
    current = int((target.get("sku") or {}).get("capacity") or 0)
    rules = profile.get("rules") or []
    series = [load_series(ctx, r["metricTrigger"]["metricResourceUri"], r["metricTrigger"]["metricName"])
              for r in rules]
    scaled = ctx.clock.scaled
    readings = [metric_value(s, r["metricTrigger"], now, scaled, current) for s, r in zip(series, rules)]
    per_instance = [_per_instance(r["metricTrigger"], target["id"]) for r in rules]
    forecasts = _forecasts(props, rules, series, now, scaled)
    state = _state(ctx, setting["id"])
    decision = decide(profile, readings, current, now, state.get("last_action"), scaled, per_instance, forecasts)
    if decision is None:
        return
    if decision.deferred:
        _note_deferral(ctx, setting, profile, decision, current, now, state)
        return
    _act(ctx, setting, target, profile, rules, decision, current, now, state)


def _per_instance(trigger, target_id):
    """Flapping projection applies to metrics that spread over the target's instances."""
    return bool(trigger.get("dividePerInstance")) or trigger["metricResourceUri"].lower() == target_id.lower()


def _forecasts(props, rules, series, now, scaled):
    policy = props.get("predictiveAutoscalePolicy") or {}
    if policy.get("scaleMode") != "Enabled":
        return None     # Disabled and ForecastOnly never act on a forecast
    ahead = scaled(parse_duration(policy.get("scaleLookAheadTime") or "PT1M") or 60)
    out = []
    for rule, s in zip(rules, series):
        trigger = rule["metricTrigger"]
        values = grain_values(s, trigger, now, scaled) if trigger["metricName"].lower() == "percentage cpu" else None
        grain = scaled(parse_duration(trigger["timeGrain"]))
        out.append(forecast(values, ahead / grain) if values else None)
    return out


def _act(ctx, setting, target, profile, rules, decision, current, now, state):
    from emulator import events
    rule = rules[decision.rule] if decision.rule is not None else None
    entry = _log_entry(ctx, setting, profile, decision, rule, current, now)
    try:
        set_capacity(ctx, target, decision.capacity)
    except ArmError as err:
        entry.update(action="failed", new_capacity=current, reason=f"{decision.reason}; {err.code}: {err.message}")
        _append_log(ctx, entry)
        return
    state.update(last_action=now, deferred=None)
    _save_state(ctx, setting["id"], state)
    _append_log(ctx, entry)
    events.record(ctx, "autoscale.scale", target["id"], time=now, setting=setting["id"], profile=profile["name"],
                  old_capacity=current, new_capacity=decision.capacity, reason=decision.reason)


def _note_deferral(ctx, setting, profile, decision, current, now, state):
    """Log a deferred scale-in once, not at every evaluation while it stays deferred."""
    marker = [profile["name"], current, decision.rule]
    if state.get("deferred") == marker:
        return
    state["deferred"] = marker
    _save_state(ctx, setting["id"], state)
    rule = (profile.get("rules") or [])[decision.rule]
    entry = _log_entry(ctx, setting, profile, decision, rule, current, now)
    entry["action"] = "deferred"
    _append_log(ctx, entry)


def _log_entry(ctx, setting, profile, decision, rule, current, now):
    action = "scale-out" if decision.capacity > current else "scale-in" if decision.capacity < current else "none"
    return {"time": ctx.clock.iso(now), "ts": now, "setting": setting["id"], "profile": profile["name"],
            "rule": decision.rule, "metric": rule["metricTrigger"]["metricName"] if rule else None,
            "metric_value": decision.value, "old_capacity": current, "new_capacity": decision.capacity,
            "action": action, "reason": decision.reason}


def set_capacity(ctx, vmss_doc, new_capacity):
    """Change a scale set's capacity the way a PATCH of sku.capacity does (scale-in policy, protection,
    409 while busy all apply)."""
    from emulator.providers.compute import scalesets
    parts = split_id(vmss_doc["id"])
    req = InternalRequest({"subscriptionId": parts["subscription"], "resourceGroupName": parts["resource_group"],
                           "vmScaleSetName": parts["name"]}, {"sku": {"capacity": int(new_capacity)}})
    return scalesets.create_or_update(ctx, req, patch=True)


class InternalRequest:
    """The few request attributes compute's write path reads, for a change made by Azure itself."""

    def __init__(self, params, body):
        self.method = "PATCH"
        self.params = params
        self.body = body
        self.headers = CaseInsensitiveDict([])
        self.query = {}
        self.path = ""


def _state_key(setting_id):
    return f"autoscale:state:{setting_id.lower()}"


def _state(ctx, setting_id):
    return ctx.store.kv_get(_state_key(setting_id)) or {}


def _save_state(ctx, setting_id, state):
    ctx.store.kv_set(_state_key(setting_id), state)


def forget_setting(ctx, setting_id):
    ctx.store.kv_delete(_state_key(setting_id))


def _append_log(ctx, entry):
    entries = ctx.store.kv_get(LOG_KEY, [])
    entry["seq"] = (entries[-1]["seq"] + 1) if entries else 1
    entries = (entries + [entry])[-LOG_LIMIT:]
    ctx.store.kv_set(LOG_KEY, entries)
    log.info("autoscale %s %s: %s -> %s (%s)", entry["action"], entry["setting"], entry["old_capacity"],
             entry["new_capacity"], entry["reason"])


# --- control API ---------------------------------------------------------------------------------

@route("POST", "/_emulator/metrics", control=True)
def post_metrics(ctx, req):
    install(ctx)
    body = req.body
    samples = [validate_sample(s) for s in (body if isinstance(body, list) else [body])]
    now = ctx.clock.now()
    stored = [dict(s, stored=add_sample(ctx, s, now)) for s in samples]
    return ok({"value": stored})


@route("GET", "/_emulator/metrics", control=True)
def get_metrics(ctx, req):
    rid = (req.query.get("resource_id") or "").lower()
    metric = (req.query.get("metric") or "").lower()
    out = []
    for key in sorted(ctx.store.kv_keys(METRIC_PREFIX)):
        series = ctx.store.kv_get(key)
        if rid and series["resource_id"].lower() != rid or metric and series["metric"].lower() != metric:
            continue
        out.append(series)
    return ok({"value": out})


@route("DELETE", "/_emulator/metrics", control=True)
def delete_metrics(ctx, req):
    rid = (req.query.get("resource_id") or "").lower()
    for key in ctx.store.kv_keys(METRIC_PREFIX):
        if not rid or key[len(METRIC_PREFIX):].split("|")[0] == rid:
            ctx.store.kv_delete(key)
    return Response(204)


@route("GET", "/_emulator/autoscale-log", control=True)
def get_log(ctx, req):
    since = int(req.query.get("since", "0") or 0)
    setting = (req.query.get("setting") or "").lower()
    entries = [e for e in ctx.store.kv_get(LOG_KEY, []) if e["seq"] > since
               and (not setting or e["setting"].lower() == setting)]
    return ok({"value": entries})


@route("DELETE", "/_emulator/autoscale-log", control=True)
def clear_log(ctx, req):
    ctx.store.kv_delete(LOG_KEY)
    return Response(204)
