"""Microsoft.Insights/autoscalesettings (api-version 2022-10-01): create/update, patch, get, list, delete.

Synchronous, as in Azure: a PUT answers 201 (created) or 200 with the stored setting, a DELETE 200
(204 when there was nothing). The body is first checked against autoscale_API.json by the pipeline
(types, enums, required properties, at most 20 profiles); then the rules below, which Azure's autoscale
service applies, answer 400 with the service's codes.

Messages marked (observed) are Azure's own wording, taken from answers quoted in public issues
(microsoft/onefuzz#2249, Azure/bicep-types-az#1859, Azure/azure-sdk-for-python#41643, Azure/Moodle#311);
the others follow the same pattern for the checks whose wording we have not seen.

Evaluation (profiles, rules, cooldown, flapping, predictive) lives in emulator/autoscale_engine.py.
"""
from emulator import autoscale_engine as engine
from emulator import events  # noqa: F401  (registers the events control routes)
from emulator.arm import ArmError, Response, check_etag, created, ok, page
from emulator.server import route

SETTING_TYPE = engine.SETTING_TYPE
_SUB = "/subscriptions/{subscriptionId}"
_RG = _SUB + "/resourcegroups/{resourceGroupName}"
_ONE = _RG + "/providers/Microsoft.Insights/autoscalesettings/{autoscaleSettingName}"

MAX_PROFILES = 20
MAX_RULES = 10
MAX_CAPACITY = 1000             # a scale set's own limit
# Durations Azure accepts (the spec's descriptions; timeWindow's minimum is 1 minute for every resource
# type but classic cloud services, Azure/azure-powershell#11556).
LIMITS = {
    "timeGrain": (60, 12 * 3600, "between 1 minute and 12 hours"),
    "timeWindow": (60, 12 * 3600, "between 1 minute and 12 hours"),
    "cooldown": (60, 7 * 24 * 3600, "between 1 minute and 1 week"),
    "scaleLookAheadTime": (60, 3600, "between 1 minute and 60 minutes"),
}


def bad(message, code="BadRequest", target=None):
    return ArmError(400, code, message, target=target)


def setting_id(sub, rg, name):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/autoscalesettings/{name}"


def _check_subscription(ctx, sub):
    if sub.lower() != ctx.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def _not_found(rg, name):
    return ArmError(404, "ResourceNotFound",
                    f"The Resource 'microsoft.insights/autoscalesettings/{name}' under resource group '{rg}' was "
                    "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _lookup(ctx, req):
    p = req.params
    _check_subscription(ctx, p["subscriptionId"])
    rid = setting_id(p["subscriptionId"], p["resourceGroupName"], p["autoscaleSettingName"])
    return rid, ctx.store.get(rid)


# --- validation (pure, but for the target's existence) -------------------------------------------

def _int_capacity(capacity, key):
    value = capacity.get(key)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise bad(f"The autoscale setting that you provided has an invalid {key} capacity value '{value}'. "
                  "Specify a whole number of instances.", target=f"capacity.{key}")
    if number < 0:
        raise bad(f"The {key} capacity value '{value}' that you specified in the autoscale setting is negative. "
                  "Enter a capacity of 0 or more.", target=f"capacity.{key}")
    return number


def validate_capacity(capacity):
    low, high, default = (_int_capacity(capacity, k) for k in ("minimum", "maximum", "default"))
    if low > high:
        raise bad(f"The minimum capacity value '{low}' that you specified in the autoscale setting is greater than "
                  f"the maximum capacity of '{high}'.  Enter a minimum capacity less than '{high}'.")
    if low > default:     # (observed)
        raise bad(f"The minimum capacity value '{low}' that you specified in the autoscale setting is greater than "
                  f"the default capacity of '{default}'.  Enter a minimum capacity less than '{default}'.")
    if default > high:
        raise bad(f"The default capacity value '{default}' that you specified in the autoscale setting is greater "
                  f"than the maximum capacity of '{high}'.  Enter a default capacity less than '{high}'.")
    if high > MAX_CAPACITY:
        raise bad(f"The maximum capacity value '{high}' that you specified in the autoscale setting is greater than "
                  f"the maximum allowed of '{MAX_CAPACITY}'.  Enter a maximum capacity less than "
                  f"'{MAX_CAPACITY + 1}'.")
    return low, high, default


def validate_duration(value, name):
    seconds = engine.parse_duration(value)
    if seconds is None:
        raise bad(f"The autoscale setting that you provided has an invalid {name} '{value}'. Specify the value in "
                  "ISO 8601 duration format, for example PT5M.", target=name)
    low, high, words = LIMITS[name]
    if not low <= seconds <= high:
        raise bad(f"The autoscale setting that you provided has an invalid {name} '{value}'. The {name} must be "
                  f"{words}.", target=name)
    return seconds


def validate_rule(rule, low, high):
    trigger, action = rule["metricTrigger"], rule["scaleAction"]
    grain = validate_duration(trigger["timeGrain"], "timeGrain")
    window = validate_duration(trigger["timeWindow"], "timeWindow")
    if window < grain:
        raise bad(f"The autoscale setting that you provided has a time window '{trigger['timeWindow']}' shorter "
                  f"than its time grain '{trigger['timeGrain']}'. The time window must be at least the time grain.",
                  target="timeWindow")
    validate_duration(action["cooldown"], "cooldown")
    kind = action.get("type") or "ChangeCount"
    raw = action.get("value", "1")
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        value = None
    smallest = 0 if kind == "ExactCount" else 1
    if value is None or value < smallest:
        raise bad(f"The autoscale setting you provided has an invalid scale action value ('{raw}'). Specify a scale "
                  f"value of {smallest} or more.", code="InvalidActionValue")
    if kind == "ChangeCount" and value > high - low:     # (observed)
        raise bad(f"The autoscale setting you provided has an invalid scale action value ('{raw}'). Specify a scale "
                  f"value less than or equal to the difference between the capacity maximum {high} and the capacity "
                  f"minimum {low}.", code="InvalidActionValue")
    if kind == "ExactCount" and not low <= value <= high:
        raise bad(f"The autoscale setting you provided has an invalid scale action value ('{raw}'). An exact count "
                  f"must be between the capacity minimum {low} and the capacity maximum {high}.",
                  code="InvalidActionValue")


def validate_recurrence(recurrence):
    if (recurrence.get("frequency") or "").lower() != "week":
        raise bad(f"The autoscale setting that you provided has an invalid recurrence frequency "
                  f"'{recurrence.get('frequency')}'. Only 'Week' is supported.", target="recurrence.frequency")
    schedule = recurrence["schedule"]
    _validate_zone(schedule.get("timeZone"))
    days = schedule.get("days") or []
    if not days or any(engine.weekday(d) is None for d in days):
        raise bad("The autoscale setting that you provided has an invalid recurrence schedule with invalid days "
                  f"{days}. Specify days from Sunday to Saturday.", target="recurrence.schedule.days")
    for key, top in (("hours", 23), ("minutes", 59)):
        values = schedule.get(key) or []
        if len(values) != 1:     # (observed, for minutes)
            raise bad(f"The autoscale setting that you provided has an invalid recurrence schedule with invalid "
                      f"count for {key} specified. Specify only one value for {key}.",
                      target=f"recurrence.schedule.{key}")
        if not 0 <= int(values[0]) <= top:
            raise bad(f"The autoscale setting that you provided has an invalid recurrence schedule with an invalid "
                      f"value {values[0]} for {key}. Specify a value from 0 to {top}.",
                      target=f"recurrence.schedule.{key}")


def validate_fixed_date(fixed):
    tz = _validate_zone(fixed.get("timeZone"))
    try:
        start, end = engine.parse_time(fixed["start"], tz), engine.parse_time(fixed["end"], tz)
    except (TypeError, ValueError):
        raise bad("The autoscale setting that you provided has an invalid fixed date: start and end must be ISO "
                  "8601 date-times.", target="fixedDate")
    if end <= start:
        raise bad(f"The autoscale setting that you provided has an invalid fixed date: the end time "
                  f"'{fixed['end']}' is not later than the start time '{fixed['start']}'.", target="fixedDate")


def _validate_zone(name):
    tz = engine.time_zone(name)
    if tz is None:
        raise bad(f"The autoscale setting that you provided has an invalid time zone '{name}'. Specify a time zone "
                  "name such as 'UTC' or 'Pacific Standard Time'.", target="timeZone")
    return tz


def validate_profiles(profiles):
    if not profiles:
        raise bad("The autoscale setting that you provided has no profiles. Specify at least one profile.",
                  target="profiles")
    if len(profiles) > MAX_PROFILES:
        raise bad(f"The autoscale setting that you provided has {len(profiles)} profiles. Specify at most "
                  f"{MAX_PROFILES} profiles.", target="profiles")
    names = [p["name"] for p in profiles]
    if len({n.lower() for n in names}) != len(names):
        raise bad("The autoscale setting that you provided has profiles with the same name. Profile names must be "
                  "unique.", target="profiles")
    defaults = [p for p in profiles if not p.get("fixedDate") and not p.get("recurrence")]
    if len(defaults) > 1:
        raise bad("The autoscale setting that you provided has more than one default profile (a profile without "
                  "fixedDate or recurrence). Specify at most one.", target="profiles")
    for profile in profiles:
        validate_profile(profile)


def validate_profile(profile):
    low, high, _ = validate_capacity(profile["capacity"])
    rules = profile.get("rules") or []
    if len(rules) > MAX_RULES:
        raise bad(f"The autoscale setting that you provided has {len(rules)} rules in profile '{profile['name']}'. "
                  f"Specify at most {MAX_RULES} rules per profile.", target="rules")
    if profile.get("fixedDate") and profile.get("recurrence"):
        raise bad(f"The profile '{profile['name']}' has both fixedDate and recurrence. Specify only one of them.",
                  target="profiles")
    if profile.get("fixedDate"):
        validate_fixed_date(profile["fixedDate"])
    if profile.get("recurrence"):
        validate_recurrence(profile["recurrence"])
    for rule in rules:
        validate_rule(rule, low, high)


def validate_setting(ctx, props, current):
    """Everything Azure checks beyond the spec; `current` is the stored setting on update."""
    validate_profiles(props.get("profiles"))
    policy = props.get("predictiveAutoscalePolicy") or {}
    if policy.get("scaleLookAheadTime") is not None:
        validate_duration(policy["scaleLookAheadTime"], "scaleLookAheadTime")
    target = props.get("targetResourceUri")
    if not target:
        raise bad("The autoscale setting that you provided has no targetResourceUri. Specify the resource to scale.",
                  target="targetResourceUri")
    old = (current or {}).get("properties", {}).get("targetResourceUri")
    if old and old.lower() != target.lower():     # (observed)
        p = current["id"].split("/")
        raise bad(f"The autoscale setting '{current['name']}' under resource group '{p[4]}' is referencing target "
                  f"resource '{old}'. The target resource reference is immutable. If you want to change it, please "
                  "create a new autoscale setting with a different name.", code="TargetResourceIdIsImmutable")
    if not ctx.store.exists(target):
        raise bad(f"The target resource id '{target}' was not found.", code="TargetResourceNotFound",
                  target="targetResourceUri")


# --- documents -----------------------------------------------------------------------------------

def compose(rid, name, location, tags, props):
    """The stored (and returned) document: what the client sent plus what Azure fills in."""
    policy = dict(props.get("predictiveAutoscalePolicy") or {"scaleMode": "Disabled"})
    policy.setdefault("scaleLookAheadTime", None)
    out_props = {
        "profiles": props["profiles"],
        "notifications": [_notification(n) for n in props.get("notifications") or []],
        "enabled": bool(props.get("enabled", False)),
        "predictiveAutoscalePolicy": policy,
        "name": name,
        "targetResourceUri": props.get("targetResourceUri"),
    }
    if props.get("targetResourceLocation"):
        out_props["targetResourceLocation"] = props["targetResourceLocation"]
    return {"id": rid, "name": name, "type": SETTING_TYPE, "location": location, "tags": tags or {},
            "properties": out_props}


def _notification(notification):
    """Azure fills both administrator flags into a notification's email (cli_monitor_autoscale_basic#02)."""
    out = dict(notification)
    if isinstance(out.get("email"), dict):
        out["email"] = dict({"sendToSubscriptionAdministrator": False, "sendToSubscriptionCoAdministrators": False},
                            **out["email"])
    return out


def _store(ctx, doc, current):
    if current and current["properties"].get("profiles") != doc["properties"]["profiles"]:
        engine.forget_setting(ctx, doc["id"])     # new rules: no cooldown or deferral carried over
    ctx.store.put(doc["id"], doc, SETTING_TYPE)


# --- routes --------------------------------------------------------------------------------------

@route("PUT", _ONE, operation_id="AutoscaleSettings_CreateOrUpdate")
def put_setting(ctx, req):
    engine.install(ctx)
    p = req.params
    rid, current = _lookup(ctx, req)
    ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    props = body.get("properties") or {}
    validate_setting(ctx, props, current)
    name = current["name"] if current else p["autoscaleSettingName"]
    location = current["location"] if current else body.get("location")
    doc = compose(rid, name, location, body.get("tags"), props)
    _store(ctx, doc, current)
    return ok(doc) if current else created(doc)


@route("PATCH", _ONE, operation_id="AutoscaleSettings_Update")
def patch_setting(ctx, req):
    engine.install(ctx)
    p = req.params
    rid, current = _lookup(ctx, req)
    if current is None:
        ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        raise _not_found(p["resourceGroupName"], p["autoscaleSettingName"])
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    props = dict(current["properties"])
    props.update({k: v for k, v in (body.get("properties") or {}).items() if v is not None})
    validate_setting(ctx, props, current)
    tags = body["tags"] if body.get("tags") is not None else current.get("tags")
    doc = compose(rid, current["name"], current["location"], tags, props)
    _store(ctx, doc, current)
    return ok(doc)


@route("GET", _ONE, operation_id="AutoscaleSettings_Get")
def get_setting(ctx, req):
    engine.install(ctx)
    p = req.params
    _, doc = _lookup(ctx, req)
    if doc is None:
        ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        raise _not_found(p["resourceGroupName"], p["autoscaleSettingName"])
    return ok(doc)


@route("DELETE", _ONE, operation_id="AutoscaleSettings_Delete")
def delete_setting(ctx, req):
    rid, doc = _lookup(ctx, req)
    if doc is None:
        return Response(204)
    ctx.store.delete(rid)
    engine.forget_setting(ctx, rid)
    return Response(200)


@route("GET", _RG + "/providers/Microsoft.Insights/autoscalesettings",
       operation_id="AutoscaleSettings_ListByResourceGroup")
def list_by_group(ctx, req):
    engine.install(ctx)
    p = req.params
    _check_subscription(ctx, p["subscriptionId"])
    ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
    group = f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
    items = ctx.store.list(SETTING_TYPE, group)
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("GET", _SUB + "/providers/Microsoft.Insights/autoscalesettings",
       operation_id="AutoscaleSettings_ListBySubscription")
def list_by_subscription(ctx, req):
    engine.install(ctx)
    _check_subscription(ctx, req.params["subscriptionId"])
    items = ctx.store.list(SETTING_TYPE, f"/subscriptions/{req.params['subscriptionId']}")
    return ok(page(req, items, ctx.base_url, ctx.page_size))
