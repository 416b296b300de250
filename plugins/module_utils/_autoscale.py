# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Autoscale settings (``Microsoft.Insights/autoscaleSettings``, API 2022-10-01) as pure functions:
options -> canonical desired options (with Azure's rules checked), REST -> options, the comparison, the
request bodies. No I/O, no Ansible.

Two shapes: *options*, the modules' snake_case (``profiles[].rules[].metric_trigger.time_window``), which is
also what the modules return for a setting (``from_rest``); and *REST*, Azure's camelCase document
(``properties.profiles[].rules[].metricTrigger.timeWindow``).

What counts as equal (Azure's own equivalences):

* durations: the same number of seconds (``PT5M`` = ``PT05M`` = ``PT300S`` = ``300``), sent in the shortest
  ISO 8601 spelling;
* capacities and scale-action values: the same whole number (Azure stores ``"3"``);
* enumerations (operator, statistic, direction, days, scale mode, ...): case-insensitively, sent in Azure's
  spelling; metric names and namespaces, resource IDs and time zones: case-insensitively;
* dimension values, custom e-mails and webhooks: as sets (Azure gives their order no meaning);
* rules: as a list, in order (Azure keeps them as sent);
* profiles: matched by name, case-insensitively; a profile the options do not list is removed;
* fixed dates: the same instant (a date-time without offset is read as UTC, as the SDK does).
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ._compare import DifferenceTracker, Item, compare, duration_seconds, find_named
from ._errors import ignore_not_found
from ._ids import parse_id, resource_type, same_id
from ._names import to_snake
from ._rest import camel, iso_datetime, tags_rule, tags_to_send

OPERATORS = ("Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual")
STATISTICS = ("Average", "Min", "Max", "Sum", "Count")
TIME_AGGREGATIONS = ("Average", "Minimum", "Maximum", "Total", "Count", "Last")
DIRECTIONS = ("None", "Increase", "Decrease")
ACTION_TYPES = ("ChangeCount", "PercentChangeCount", "ExactCount", "ServiceAllowedNextValue")
SCALE_MODES = ("Disabled", "ForecastOnly", "Enabled")
DIMENSION_OPERATORS = ("Equals", "NotEquals")
FREQUENCIES = ("Week",)  # the API lists more; Azure's autoscale accepts only Week
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
OPERATIONS = ("Scale",)

# Azure's bounds, in seconds (the API's descriptions; a one-minute time window is accepted for every
# resource type but classic cloud services, Azure/azure-powershell#11556).
LIMITS = {
    "time_grain": (60, 12 * 3600, "between 1 minute and 12 hours"),
    "time_window": (60, 12 * 3600, "between 1 minute and 12 hours"),
    "cooldown": (60, 7 * 24 * 3600, "between 1 minute and 1 week"),
    "scale_look_ahead_time": (60, 3600, "between 1 minute and 60 minutes"),
}
MAX_PROFILES = 20
MAX_RULES = 10
MAX_CAPACITY = 1000  # a scale set's own limit
SETTING_TYPE = "Microsoft.Insights/autoscaleSettings"
SCALE_SET_TYPE = "microsoft.compute/virtualmachinescalesets"
MASK = "********"
_UTC_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# ---------------------------------------------------------------------------------------------
# spellings

def canonical(value: Any, choices) -> Optional[str]:
    """Azure's spelling of an enumeration value given in any case; None when it is not one of ``choices``."""
    text = str(value).strip().lower()
    return next((choice for choice in choices if choice.lower() == text), None)


def seconds_of(value: Any) -> Optional[int]:
    """An ISO 8601 duration or a whole number of seconds -> whole seconds; None when neither."""
    seconds = duration_seconds(value)
    if seconds is None or seconds < 0 or seconds != int(seconds):
        return None
    return int(seconds)


def iso_duration(seconds: int) -> str:
    """Whole seconds -> the shortest ISO 8601 duration: 300 -> PT5M, 5400 -> PT1H30M, 604800 -> P7D."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join("%d%s" % (number, unit) for number, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if number)
    if not days and not clock:
        clock = "0S"
    return "P" + ("%dD" % days if days else "") + ("T" + clock if clock else "")


def whole_number(value: Any) -> Any:
    """A capacity or scale-action value as Azure stores it ("3") -> 3; anything else unchanged."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return value


def is_scale_set(resource_id: Optional[str]) -> bool:
    return resource_type(resource_id) == SCALE_SET_TYPE


def target_name(resource_id: Optional[str]) -> Optional[str]:
    """The last name of a resource ID (a scale set's name), None when it is not one."""
    names = parse_id(resource_id).get("names") or []
    return names[-1] if names else None


def mask_uri(uri: Any) -> Any:
    """A webhook address without what may hold a token (path, query): ``https://hooks.example.com/********``."""
    if not isinstance(uri, str) or not uri:
        return uri
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return MASK
    return "%s://%s/%s" % (parts.scheme, parts.netloc.rsplit("@", 1)[-1], MASK)


def mask(setting: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """An option-shaped setting (or part of one) with every webhook's service_uri masked."""
    if not isinstance(setting, dict) or setting.get("notifications") is None:
        return setting
    return dict(setting, notifications=mask_notifications(setting["notifications"]))


def mask_notifications(notifications: Optional[List[Dict[str, Any]]]) -> Optional[List[Dict[str, Any]]]:
    if notifications is None:
        return None
    return [dict(item, webhooks=[dict(hook, service_uri=mask_uri(hook.get("service_uri")))
                                 for hook in item.get("webhooks") or []]) for item in notifications]


# ---------------------------------------------------------------------------------------------
# options -> canonical desired options, and Azure's rules

class _Problems:
    """Errors (refused before any write) and warnings (Azure allows them), each naming its option."""

    def __init__(self) -> None:
        self.errors: List[str] = []
        self.warnings: List[str] = []

    def enum(self, value: Any, choices, where: str) -> Any:
        found = canonical(value, choices)
        if found is None:
            self.errors.append("%s: unknown value %r (one of %s, in any case)." % (where, value, ", ".join(choices)))
            return value
        return found

    def duration(self, value: Any, limit: str, where: str) -> Tuple[Any, Optional[int]]:
        """(the ISO 8601 spelling to send, seconds) or (value, None) with an error."""
        seconds = seconds_of(value)
        if seconds is None:
            self.errors.append("%s: %r is not an ISO 8601 duration (such as PT5M) or a whole number of seconds."
                               % (where, value))
            return value, None
        low, high, words = LIMITS[limit]
        if not low <= seconds <= high:
            self.errors.append("%s: %s must be %s." % (where, value, words))
        return iso_duration(seconds), seconds


def desired_options(params: Dict[str, Any], target: Optional[str]) -> Tuple[Dict[str, Any], List[str]]:
    """(desired, errors): what the user set, in canonical spellings (Azure's enum casing, ISO 8601 durations,
    whole-number capacities), a rule's metric_resource_uri defaulting to ``target``; and every reason Azure
    would refuse it. Options not set are left out (never sent, never compared)."""
    problems = _Problems()
    desired: Dict[str, Any] = {}
    for key in ("enabled", "location", "target_resource_uri", "tags"):
        if params.get(key) is not None:
            desired[key] = params[key]
    if params.get("profiles") is not None:
        desired["profiles"] = _profiles(params["profiles"], target, problems)
    if params.get("notifications") is not None:
        desired["notifications"] = [_notification(item, "notifications[%d]" % index, problems)
                                    for index, item in enumerate(params["notifications"])]
    policy = params.get("predictive_autoscale_policy")
    if policy is not None and any(value is not None for value in policy.values()):
        desired["predictive_autoscale_policy"] = _policy(policy, problems)
    return desired, problems.errors


def _profiles(profiles: List[Dict[str, Any]], target: Optional[str], problems: _Problems) -> List[Dict[str, Any]]:
    if not profiles:
        problems.errors.append("profiles: at least one profile is needed.")
    if len(profiles) > MAX_PROFILES:
        problems.errors.append("profiles: %d profiles; Azure takes at most %d." % (len(profiles), MAX_PROFILES))
    names = [str(profile["name"]).lower() for profile in profiles]
    if len(set(names)) != len(names):
        problems.errors.append("profiles: profile names must be unique (case-insensitively).")
    defaults = [p["name"] for p in profiles if not p.get("recurrence") and not p.get("fixed_date")]
    if len(defaults) > 1:
        problems.errors.append("profiles: %s have neither recurrence nor fixed_date; a setting has at most one "
                               "such default profile." % ", ".join(defaults))
    return [_profile(profile, target, problems) for profile in profiles]


def _profile(profile: Dict[str, Any], target: Optional[str], problems: _Problems) -> Dict[str, Any]:
    where = "profiles[%s]" % profile["name"]
    capacity = {key: profile["capacity"][key] for key in ("minimum", "maximum", "default")}
    low, high, default = capacity["minimum"], capacity["maximum"], capacity["default"]
    if min(low, high, default) < 0:
        problems.errors.append("%s.capacity: minimum, maximum and default must be 0 or more." % where)
    if high < low:
        problems.errors.append("%s.capacity: maximum %d is below minimum %d." % (where, high, low))
    elif not low <= default <= high:
        problems.errors.append("%s.capacity: default %d is outside [minimum %d, maximum %d]." % (where, default, low, high))
    if high > MAX_CAPACITY:
        problems.errors.append("%s.capacity: maximum %d is above %d, a scale set's limit." % (where, high, MAX_CAPACITY))
    rules = profile.get("rules") or []
    if len(rules) > MAX_RULES:
        problems.errors.append("%s.rules: %d rules; Azure takes at most %d per profile." % (where, len(rules), MAX_RULES))
    out = {"name": profile["name"], "capacity": capacity,
           "rules": [_rule(rule, "%s.rules[%d]" % (where, index), target, (low, high), problems)
                     for index, rule in enumerate(rules)],
           "recurrence": None, "fixed_date": None}
    if profile.get("recurrence") and profile.get("fixed_date"):
        problems.errors.append("%s: recurrence and fixed_date are exclusive; set one of them." % where)
    if profile.get("recurrence"):
        out["recurrence"] = _recurrence(profile["recurrence"], where + ".recurrence", problems)
    if profile.get("fixed_date"):
        out["fixed_date"] = _fixed_date(profile["fixed_date"], where + ".fixed_date", problems)
    return out


def _rule(rule: Dict[str, Any], where: str, target: Optional[str], bounds: Tuple[int, int],
          problems: _Problems) -> Dict[str, Any]:
    trigger, action = rule["metric_trigger"], rule["scale_action"]
    here = where + ".metric_trigger."
    grain, grain_seconds = problems.duration(trigger["time_grain"], "time_grain", here + "time_grain")
    window, window_seconds = problems.duration(trigger["time_window"], "time_window", here + "time_window")
    if grain_seconds is not None and window_seconds is not None and window_seconds < grain_seconds:
        problems.errors.append("%s: time_window %s is shorter than time_grain %s; the window must hold at least one "
                               "grain." % (where, trigger["time_window"], trigger["time_grain"]))
    metric = {
        "metric_name": trigger["metric_name"],
        "metric_resource_uri": trigger.get("metric_resource_uri") or target,
        "time_grain": grain,
        "statistic": problems.enum(trigger["statistic"], STATISTICS, here + "statistic"),
        "time_window": window,
        "time_aggregation": problems.enum(trigger["time_aggregation"], TIME_AGGREGATIONS, here + "time_aggregation"),
        "operator": problems.enum(trigger["operator"], OPERATORS, here + "operator"),
        "threshold": float(trigger["threshold"]),
    }
    if trigger.get("metric_namespace") is not None:
        metric["metric_namespace"] = trigger["metric_namespace"]
    if trigger.get("divide_per_instance") is not None:
        metric["divide_per_instance"] = trigger["divide_per_instance"]
    if trigger.get("dimensions") is not None:
        metric["dimensions"] = [
            {"dimension_name": item["dimension_name"],
             "operator": problems.enum(item["operator"], DIMENSION_OPERATORS, "%sdimensions[%d].operator" % (here, index)),
             "values": list(item["values"])}
            for index, item in enumerate(trigger["dimensions"])]
    here = where + ".scale_action."
    cooldown, _seconds = problems.duration(action["cooldown"], "cooldown", here + "cooldown")
    scale = {"direction": problems.enum(action["direction"], DIRECTIONS, here + "direction"),
             "type": problems.enum(action["type"], ACTION_TYPES, here + "type"),
             "value": action["value"], "cooldown": cooldown}
    _check_action_value(scale, bounds, here + "value", problems)
    return {"metric_trigger": metric, "scale_action": scale}


def _check_action_value(action: Dict[str, Any], bounds: Tuple[int, int], where: str, problems: _Problems) -> None:
    """Azure's rules on a scale action's value (the observed ones: ChangeCount within maximum - minimum)."""
    low, high = bounds
    value, kind = action["value"], action["type"]
    if kind == "ServiceAllowedNextValue":
        return
    if value < (0 if kind == "ExactCount" else 1):
        problems.errors.append("%s: %d is too small (at least %d)." % (where, value, 0 if kind == "ExactCount" else 1))
    elif kind == "ExactCount" and not low <= value <= high:
        problems.errors.append("%s: an ExactCount of %d is outside [minimum %d, maximum %d]." % (where, value, low, high))
    elif kind == "ChangeCount" and low <= high and value > high - low:
        problems.errors.append("%s: a ChangeCount of %d is more than maximum - minimum (%d)." % (where, value, high - low))


def _recurrence(recurrence: Dict[str, Any], where: str, problems: _Problems) -> Dict[str, Any]:
    schedule = recurrence["schedule"]
    frequency = canonical(recurrence["frequency"], FREQUENCIES)
    if frequency is None:
        problems.errors.append("%s.frequency: Azure's autoscale accepts only Week (each week repeats the same "
                               "profiles), not %r." % (where, recurrence["frequency"]))
    days = [problems.enum(day, DAYS, "%s.schedule.days" % where) for day in schedule["days"]]
    if not days:
        problems.errors.append("%s.schedule.days: at least one day is needed." % where)
    for key, top in (("hours", 23), ("minutes", 59)):
        values = schedule[key]
        if not values or any(not 0 <= value <= top for value in values):
            problems.errors.append("%s.schedule.%s: one or more values from 0 to %d are needed." % (where, key, top))
    return {"frequency": frequency or recurrence["frequency"],
            "schedule": {"time_zone": schedule["time_zone"], "days": days, "hours": list(schedule["hours"]),
                         "minutes": list(schedule["minutes"])}}


def _fixed_date(fixed: Dict[str, Any], where: str, problems: _Problems) -> Dict[str, Any]:
    start, end = _instant(fixed["start"]), _instant(fixed["end"])
    if start is None or end is None:
        problems.errors.append("%s: start and end must be ISO 8601 date-times (such as 2026-12-24T08:00:00Z)." % where)
    elif end <= start:
        problems.errors.append("%s: end %s is not after start %s." % (where, fixed["end"], fixed["start"]))
    return {"time_zone": fixed["time_zone"], "start": fixed["start"], "end": fixed["end"]}


def _instant(value: Any) -> Optional[str]:
    """A date-time as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (one without offset read as UTC); None when not one."""
    out = iso_datetime(value)
    return out if isinstance(out, str) and _UTC_INSTANT.match(out) else None


def _notification(item: Dict[str, Any], where: str, problems: _Problems) -> Dict[str, Any]:
    email = item.get("email") or {}
    return {"operation": problems.enum(item["operation"], OPERATIONS, where + ".operation"),
            "email": {"send_to_subscription_administrator": bool(email.get("send_to_subscription_administrator")),
                      "send_to_subscription_co_administrators":
                          bool(email.get("send_to_subscription_co_administrators")),
                      "custom_emails": list(email.get("custom_emails") or [])},
            "webhooks": [{"service_uri": hook["service_uri"], "properties": dict(hook.get("properties") or {})}
                         for hook in item.get("webhooks") or []]}


def _policy(policy: Dict[str, Any], problems: _Problems) -> Dict[str, Any]:
    out = {}
    if policy.get("scale_mode") is not None:
        out["scale_mode"] = problems.enum(policy["scale_mode"], SCALE_MODES, "predictive_autoscale_policy.scale_mode")
    if policy.get("scale_look_ahead_time") is not None:
        out["scale_look_ahead_time"] = problems.duration(
            policy["scale_look_ahead_time"], "scale_look_ahead_time", "predictive_autoscale_policy.scale_look_ahead_time")[0]
    return out


def _profile_warnings(profile: Dict[str, Any], where: str, problems: _Problems) -> None:
    directions = [rule["scale_action"]["direction"] for rule in profile["rules"]]
    if "Increase" in directions and "Decrease" not in directions:
        problems.warnings.append("%s has a scale-out rule and no scale-in rule: the scale set would only grow, up to "
                                 "maximum %d. Pair every scale-out rule with a scale-in rule." % (where, profile["capacity"]["maximum"]))
    for index, rule in enumerate(profile["rules"]):
        cooldown, window = seconds_of(rule["scale_action"]["cooldown"]), seconds_of(rule["metric_trigger"]["time_window"])
        if cooldown is not None and window is not None and cooldown < window:
            problems.warnings.append(
                "%s.rules[%d]: the cooldown %s is shorter than the time window %s, so the next evaluation still counts "
                "the load from before this rule's scale action and may scale again." % (
                    where, index, rule["scale_action"]["cooldown"], rule["metric_trigger"]["time_window"]))


def warnings(desired: Dict[str, Any]) -> List[str]:
    """What Azure allows but is likely a mistake, in the profiles the user set."""
    problems = _Problems()
    for profile in desired.get("profiles") or []:
        _profile_warnings(profile, "profiles[%s]" % profile["name"], problems)
    return problems.warnings


def validate(desired: Dict[str, Any], current: Optional[Dict[str, Any]], target: Optional[str]) -> List[str]:
    """Errors that depend on the existing setting (``current``, option-shaped, None when absent)."""
    errors = []
    if current is None:
        if desired.get("profiles") is None:
            errors.append("profiles is required to create the setting (it does not exist yet).")
        if not target:
            errors.append("the target is required to create the setting: scale_set or target_resource_uri.")
        return errors
    if desired.get("target_resource_uri") and not same_id(desired["target_resource_uri"], current.get("target_resource_uri")):
        errors.append("the setting targets %s; Azure cannot change the target of a setting (create another setting "
                      "for %s)." % (current.get("target_resource_uri"), desired["target_resource_uri"]))
    if desired.get("location") and _region(desired["location"]) != _region(current.get("location")):
        errors.append("the setting is in %s; its location cannot be changed to %s." % (current.get("location"),
                                                                                       desired["location"]))
    return errors


def _region(name: Any) -> str:
    return "".join(str(name or "").split()).lower()


# ---------------------------------------------------------------------------------------------
# REST -> options (what the modules return)

def from_rest(doc: Dict[str, Any]) -> Dict[str, Any]:
    """An autoscale setting (REST document) in the option shape, plus id, name, resource_group, type, location."""
    props = doc.get("properties") or {}
    policy = props.get("predictiveAutoscalePolicy") or {}
    return {
        "id": doc.get("id"),
        "name": doc.get("name"),
        "resource_group": parse_id(doc.get("id")).get("resource_group"),
        "type": doc.get("type"),
        "location": doc.get("location"),
        "tags": doc.get("tags") or {},
        "enabled": bool(props.get("enabled")),
        "target_resource_uri": props.get("targetResourceUri"),
        "target_resource_location": props.get("targetResourceLocation"),
        "profiles": [_profile_options(profile) for profile in props.get("profiles") or []],
        "notifications": [_notification_options(item) for item in props.get("notifications") or []],
        "predictive_autoscale_policy": {"scale_mode": policy.get("scaleMode") or "Disabled",
                                        "scale_look_ahead_time": policy.get("scaleLookAheadTime")},
    }


def _snake_keys(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return None if obj is None else {to_snake(key): value for key, value in obj.items()}


def _profile_options(profile: Dict[str, Any]) -> Dict[str, Any]:
    capacity = profile.get("capacity") or {}
    recurrence = profile.get("recurrence")
    return {
        "name": profile.get("name"),
        "capacity": {key: whole_number(capacity.get(key)) for key in ("minimum", "maximum", "default")},
        "rules": [_rule_options(rule) for rule in profile.get("rules") or []],
        "recurrence": None if recurrence is None else {"frequency": recurrence.get("frequency"),
                                                       "schedule": _snake_keys(recurrence.get("schedule"))},
        "fixed_date": _snake_keys(profile.get("fixedDate")),
    }


def _rule_options(rule: Dict[str, Any]) -> Dict[str, Any]:
    trigger = _snake_keys(rule.get("metricTrigger")) or {}
    if trigger.get("dimensions") is not None:
        trigger["dimensions"] = [_snake_keys(item) for item in trigger["dimensions"]]
    action = _snake_keys(rule.get("scaleAction")) or {}
    if "value" in action:
        action["value"] = whole_number(action["value"])
    return {"metric_trigger": trigger, "scale_action": action}


def _notification_options(item: Dict[str, Any]) -> Dict[str, Any]:
    email = _snake_keys(item.get("email")) or {}
    return {"operation": item.get("operation"),
            "email": {"send_to_subscription_administrator": bool(email.get("send_to_subscription_administrator")),
                      "send_to_subscription_co_administrators": bool(email.get("send_to_subscription_co_administrators")),
                      "custom_emails": list(email.get("custom_emails") or [])},
            "webhooks": [{"service_uri": hook.get("serviceUri"), "properties": dict(hook.get("properties") or {})}
                         for hook in item.get("webhooks") or []]}


# ---------------------------------------------------------------------------------------------
# the comparison

def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


OPTIONAL_TRIGGER_KEYS = ("metric_namespace", "divide_per_instance", "dimensions")


def rule_key(rule: Dict[str, Any], optional=OPTIONAL_TRIGGER_KEYS) -> Tuple:
    """What makes two rules the same to Azure; of the optional trigger keys, only ``optional`` count."""
    trigger, action = rule.get("metric_trigger") or {}, rule.get("scale_action") or {}
    key = [_lower(trigger.get("metric_name")), _lower(str(trigger.get("metric_resource_uri") or "").rstrip("/")),
           seconds_of(trigger.get("time_grain")), _lower(trigger.get("statistic")), seconds_of(trigger.get("time_window")),
           _lower(trigger.get("time_aggregation")), _lower(trigger.get("operator")), float(trigger.get("threshold") or 0),
           _lower(action.get("direction")), _lower(action.get("type") or "ChangeCount"),
           whole_number(action.get("value") if action.get("value") is not None else 1), seconds_of(action.get("cooldown"))]
    for name in optional:
        value = trigger.get(name)
        if name == "metric_namespace":
            value = _lower(value)
        elif name == "divide_per_instance":
            value = bool(value)
        elif name == "dimensions":
            value = frozenset((_lower(d.get("dimension_name")), _lower(d.get("operator")), frozenset(d.get("values") or []))
                              for d in value or [])
        key.append(value)
    return tuple(key)


def same_rules(desired: List[Dict[str, Any]], current: List[Dict[str, Any]]) -> bool:
    """Rule by rule, in order; an optional trigger key the desired rule leaves out is not compared."""
    if len(desired) != len(current):
        return False
    for want, have in zip(desired, current):
        optional = [name for name in OPTIONAL_TRIGGER_KEYS if want.get("metric_trigger", {}).get(name) is not None]
        if rule_key(want, optional) != rule_key(have, optional):
            return False
    return True


def _day(value: Any) -> Any:
    text = str(value).strip()
    if text.isdigit() and 0 <= int(text) <= 6:  # .NET DayOfWeek numbers, which Azure also accepts
        return DAYS[int(text)]
    return canonical(text, DAYS) or text


def recurrence_key(recurrence: Optional[Dict[str, Any]]) -> Any:
    if not recurrence:
        return None
    schedule = recurrence.get("schedule") or {}
    return (_lower(recurrence.get("frequency")), _lower(schedule.get("time_zone")),
            frozenset(_day(day) for day in schedule.get("days") or []),
            tuple(sorted(int(hour) for hour in schedule.get("hours") or [])),
            tuple(sorted(int(minute) for minute in schedule.get("minutes") or [])))


def fixed_date_key(fixed: Optional[Dict[str, Any]]) -> Any:
    if not fixed:
        return None
    return (_lower(fixed.get("time_zone")), iso_datetime(fixed.get("start")), iso_datetime(fixed.get("end")))


def notifications_key(notifications: Optional[List[Dict[str, Any]]]) -> Any:
    items = []
    for item in notifications or []:
        email = item.get("email") or {}
        items.append((_lower(item.get("operation")), bool(email.get("send_to_subscription_administrator")),
                      bool(email.get("send_to_subscription_co_administrators")),
                      frozenset(_lower(address) for address in email.get("custom_emails") or []),
                      frozenset((hook.get("service_uri"), tuple(sorted((hook.get("properties") or {}).items())))
                                for hook in item.get("webhooks") or [])))
    return sorted(items, key=repr)


def differences(desired: Dict[str, Any], current: Optional[Dict[str, Any]], purge_tags: bool = False) -> DifferenceTracker:
    """What differs between the desired options and the current setting (option-shaped; None when absent).

    Webhook addresses are compared as they are but recorded masked, so the diff never shows them."""
    current = current or {}
    tracker = DifferenceTracker()
    simple = {key: desired.get(key)
              for key in ("location", "target_resource_uri", "enabled", "predictive_autoscale_policy", "tags")}
    compare(simple, current, {"location": "location", "target_resource_uri": "id", "tags": tags_rule(purge_tags),
                              "predictive_autoscale_policy.scale_mode": "enum",
                              "predictive_autoscale_policy.scale_look_ahead_time": "duration"}, tracker)
    if desired.get("profiles") is not None:
        _profile_differences(desired["profiles"], current.get("profiles") or [], tracker)
    if desired.get("notifications") is not None and \
            notifications_key(desired["notifications"]) != notifications_key(current.get("notifications")):
        tracker.add(("notifications",), mask_notifications(current.get("notifications")),
                    mask_notifications(desired["notifications"]))
    return tracker


def _profile_differences(wanted: List[Dict[str, Any]], have: List[Dict[str, Any]], tracker: DifferenceTracker) -> None:
    for profile in wanted:
        path = ("profiles", Item(profile["name"]))
        found = find_named(have, profile["name"])
        if found is None:
            tracker.add(path, None, profile)
            continue
        for key in ("minimum", "maximum", "default"):
            if profile["capacity"][key] != whole_number((found.get("capacity") or {}).get(key)):
                tracker.add(path + ("capacity", key), (found.get("capacity") or {}).get(key), profile["capacity"][key])
        if not same_rules(profile["rules"], found.get("rules") or []):
            tracker.add(path + ("rules",), found.get("rules") or [], profile["rules"])
        if recurrence_key(profile["recurrence"]) != recurrence_key(found.get("recurrence")):
            tracker.add(path + ("recurrence",), found.get("recurrence"), profile["recurrence"])
        if fixed_date_key(profile["fixed_date"]) != fixed_date_key(found.get("fixed_date")):
            tracker.add(path + ("fixed_date",), found.get("fixed_date"), profile["fixed_date"])
    for profile in have:
        if find_named(wanted, profile.get("name")) is None:
            tracker.add(("profiles", Item(profile.get("name"))), profile, None)


# ---------------------------------------------------------------------------------------------
# options -> REST bodies

def profile_rest(profile: Dict[str, Any]) -> Dict[str, Any]:
    """A canonical desired profile as Azure's JSON (capacities and values as strings, as Azure stores them)."""
    out = {"name": profile["name"], "capacity": {key: str(value) for key, value in profile["capacity"].items()},
           "rules": [_rule_rest(rule) for rule in profile["rules"]]}
    if profile.get("recurrence"):
        out["recurrence"] = camel(profile["recurrence"])
    if profile.get("fixed_date"):
        out["fixedDate"] = camel(profile["fixed_date"])
    return out


def _rule_rest(rule: Dict[str, Any]) -> Dict[str, Any]:
    trigger = camel({key: value for key, value in rule["metric_trigger"].items() if key != "dimensions"})
    if rule["metric_trigger"].get("dimensions") is not None:
        trigger["dimensions"] = [{"DimensionName": item["dimension_name"], "Operator": item["operator"],
                                  "Values": list(item["values"])} for item in rule["metric_trigger"]["dimensions"]]
    return {"metricTrigger": trigger, "scaleAction": dict(camel(rule["scale_action"]), value=str(rule["scale_action"]["value"]))}


def notification_rest(item: Dict[str, Any]) -> Dict[str, Any]:
    return {"operation": item["operation"], "email": camel(item["email"]),
            "webhooks": [{"serviceUri": hook["service_uri"], "properties": dict(hook["properties"])}
                         for hook in item["webhooks"]]}


def policy_rest(policy: Dict[str, Any], current: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The predictive policy to send: the desired fields over the current ones (scaleMode is required)."""
    out = {key: value for key, value in (current or {}).items() if value is not None}
    out.update(camel(policy))
    out.setdefault("scaleMode", "Disabled")
    return out


def create_body(desired: Dict[str, Any], name: str, location: str, target: str) -> Dict[str, Any]:
    """The PUT that creates the setting; ``enabled`` is true unless the user set it."""
    props: Dict[str, Any] = {"profiles": [profile_rest(profile) for profile in desired["profiles"]],
                             "enabled": desired.get("enabled", True), "targetResourceUri": target, "name": name}
    if desired.get("notifications") is not None:
        props["notifications"] = [notification_rest(item) for item in desired["notifications"]]
    if desired.get("predictive_autoscale_policy"):
        props["predictiveAutoscalePolicy"] = policy_rest(desired["predictive_autoscale_policy"])
    body: Dict[str, Any] = {"location": location, "properties": props}
    if desired.get("tags") is not None:
        body["tags"] = dict(desired["tags"])
    return body


def update_body(desired: Dict[str, Any], current: Dict[str, Any], purge_tags: bool) -> Dict[str, Any]:
    """The PUT that updates the setting: the document as read, with what the user set put in.

    Azure's PATCH takes the whole ``properties`` (profiles are required) too, so it would be no smaller; a PUT of
    the read document keeps every field the user did not set, including the ones this module does not model."""
    props = _without_nulls(current.get("properties") or {})
    if desired.get("profiles") is not None:
        props["profiles"] = [profile_rest(profile) for profile in desired["profiles"]]
    if desired.get("notifications") is not None:
        props["notifications"] = [notification_rest(item) for item in desired["notifications"]]
    if desired.get("enabled") is not None:
        props["enabled"] = desired["enabled"]
    if desired.get("predictive_autoscale_policy"):
        props["predictiveAutoscalePolicy"] = policy_rest(desired["predictive_autoscale_policy"],
                                                         props.get("predictiveAutoscalePolicy"))
    tags = tags_to_send(desired.get("tags"), current.get("tags"), purge_tags)
    return {"location": current.get("location"), "tags": tags if tags is not None else current.get("tags") or {},
            "properties": props}


def _without_nulls(obj: Any) -> Any:
    """A REST structure as read, without its null fields (Azure fills them in; the API types them as non-null)."""
    if isinstance(obj, dict):
        return {key: _without_nulls(value) for key, value in obj.items() if value is not None}
    if isinstance(obj, list):
        return [_without_nulls(item) for item in obj]
    return obj


def preview(body: Dict[str, Any], subscription_id: str, resource_group: str, name: str) -> Dict[str, Any]:
    """What Azure would return for a created setting (check mode)."""
    resource_id = ("/subscriptions/%s/resourceGroups/%s/providers/microsoft.insights/autoscalesettings/%s"
                   % (subscription_id, resource_group, name))
    return dict(body, id=resource_id, name=name, type=SETTING_TYPE)


# ---------------------------------------------------------------------------------------------
# the SDK calls (azure-mgmt-monitor's AutoscaleSettingsOperations), JSON in and out: the SDK's models
# would rewrite a fixed date without offset as UTC ("...Z") when the read setting is written back.

def _json(pipeline_response, _deserialized, _headers):
    return pipeline_response.http_response.json()


def read_setting(operations, resource_group: str, name: str) -> Optional[Dict[str, Any]]:
    """The setting as Azure's JSON; None when it (or its resource group) does not exist."""
    return ignore_not_found(lambda: operations.get(resource_group, name, cls=_json))


def write_setting(operations, resource_group: str, name: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """PUT the setting (the body as JSON, as built) and return what Azure stored."""
    return operations.create_or_update(resource_group, name, json.dumps(body).encode("utf-8"),
                                       content_type="application/json", cls=_json)


def list_settings(operations, resource_group: Optional[str]) -> List[Dict[str, Any]]:
    """Every setting of a resource group (or of the subscription) as JSON; [] when the group does not exist.

    The list operation hands back models only; ``serialize`` turns them back into Azure's JSON."""
    if resource_group:
        found = ignore_not_found(lambda: list(operations.list_by_resource_group(resource_group)), default=[])
    else:
        found = list(operations.list_by_subscription())
    return [item.serialize(keep_readonly=True) for item in found]


def targeting(docs: List[Optional[Dict[str, Any]]], target: Optional[str]) -> List[Dict[str, Any]]:
    """Settings as Azure's JSON (None for one not found) -> as the modules return them (webhooks masked), only
    those that scale ``target`` (a resource ID, compared as Azure does) when it is given."""
    settings = [mask(from_rest(doc)) for doc in docs if doc is not None]
    return [setting for setting in settings if not target or same_id(setting["target_resource_uri"], target)]
