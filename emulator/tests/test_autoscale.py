"""Autoscale: the pure evaluation (profiles, metrics, decisions), CRUD and validation through
azure-mgmt-monitor, and the engine scaling a real (emulated) scale set from fed metrics."""
import copy
import datetime
import itertools
import json
import os
import time

import pytest

from conftest import TIME_SCALE
from emulator import autoscale_engine as engine
from emulator.arm import ArmError

SPEC_EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..",
                             "shared", "azure-specs", "specification", "monitor", "resource-manager",
                             "Microsoft.Insights", "stable", "2022-10-01", "examples")
API = "2022-10-01"
CPU = "Percentage CPU"


def scaled(seconds):
    return seconds * TIME_SCALE


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp()


# --- pure: durations, profiles -------------------------------------------------------------------

def test_iso_durations():
    assert engine.parse_duration("PT5M") == 300
    assert engine.parse_duration("PT1H30M") == 5400
    assert engine.parse_duration("P1D") == 86400
    assert engine.parse_duration("PT0.5S") == 0.5
    assert engine.parse_duration("5M") is None and engine.parse_duration("PT") is None


def _profile(name, **extra):
    return dict({"name": name, "capacity": {"minimum": "1", "maximum": "10", "default": "2"}, "rules": []}, **extra)


def test_profile_precedence_fixed_date_then_recurrence_then_default():
    default = _profile("default")
    weekday = _profile("weekday-mornings", recurrence={"frequency": "Week", "schedule": {
        "timeZone": "Pacific Standard Time", "days": ["Monday"], "hours": [9], "minutes": [0]}})
    evening = _profile("monday-evening", recurrence={"frequency": "Week", "schedule": {
        "timeZone": "Pacific Standard Time", "days": ["Monday"], "hours": [18], "minutes": [0]}})
    event = _profile("launch", fixedDate={"timeZone": "UTC", "start": "2025-03-03T17:00:00Z",
                                          "end": "2025-03-03T18:00:00Z"})
    profiles = [default, weekday, evening, event]
    # Monday 3 March 2025, 09:30 PST = 17:30 UTC: the fixed date wins over the running recurrence.
    assert engine.active_profile(profiles, utc(2025, 3, 3, 17, 30))["name"] == "launch"
    # 18:30 UTC = 10:30 PST: the morning recurrence (started 09:00 Pacific) runs.
    assert engine.active_profile(profiles, utc(2025, 3, 3, 18, 30))["name"] == "weekday-mornings"
    # 16:59 UTC = 08:59 PST: the latest start is last Monday's 18:00 (a week-long run).
    assert engine.active_profile(profiles, utc(2025, 3, 3, 16, 59))["name"] == "monday-evening"
    # without recurrences, outside the fixed date: the default profile
    assert engine.active_profile([default, event], utc(2025, 3, 4))["name"] == "default"
    assert engine.active_profile([event], utc(2025, 3, 4)) is None


def test_recurrence_days_as_dotnet_numbers_and_time_zones():
    monday = _profile("m", recurrence={"frequency": "Week", "schedule": {
        "timeZone": "W. Europe Standard Time", "days": ["1"], "hours": [0], "minutes": [30]}})
    start = engine.last_recurrence_start(monday, datetime.datetime(2025, 3, 3, 0, 0, tzinfo=datetime.timezone.utc))
    assert start.isoformat() == "2025-03-03T00:30:00+01:00"      # Monday 00:30 Berlin = Sunday 23:30 UTC
    assert engine.weekday("0") == 6 and engine.weekday("Sunday") == 6 and engine.weekday("Funday") is None
    assert engine.time_zone("Tokyo Standard Time").key == "Asia/Tokyo"
    assert engine.time_zone("Mars Standard Time") is None


# --- pure: a rule's metric -----------------------------------------------------------------------

def _trigger(**extra):
    base = {"metricName": CPU, "metricResourceUri": "/vmss", "timeGrain": "PT1M", "statistic": "Average",
            "timeWindow": "PT5M", "timeAggregation": "Average", "operator": "GreaterThan", "threshold": 70}
    return dict(base, **extra)


def one(seconds):
    return seconds       # time scale 1 for the pure tests


def test_window_must_be_covered_before_a_held_value_counts():
    series = {"holds": [[1000.0, 85.0, None, None]], "points": []}
    trig = _trigger()
    assert engine.metric_value(series, trig, 1000 + 120, one, 2) is None          # 2 of 5 minutes
    assert engine.metric_value(series, trig, 1000 + 300, one, 2) == 85.0
    series["holds"].append([1300.0, 20.0, None, None])
    assert engine.metric_value(series, trig, 1300 + 120, one, 2) == pytest.approx((3 * 85 + 2 * 20) / 5)
    # a change within a grain is time-weighted: 85% for the first 15 s of the oldest grain
    assert engine.metric_value(series, trig, 1300 + 285, one, 2) == pytest.approx((85 * 0.25 + 20 * 0.75 + 4 * 20) / 5)
    assert engine.metric_value(series, trig, 1300 + 300, one, 2) == 20.0


def test_statistic_per_grain_then_time_aggregation_then_divide_per_instance():
    # two instances, five one-minute grains: instance a 10..50, instance b constant 30
    points = [[1000 + 60 * g + 30, 10.0 * (g + 1), "a", None] for g in range(5)]
    points += [[1000 + 60 * g + 30, 30.0, "b", None] for g in range(5)]
    series = {"points": points, "holds": []}
    now = 1300
    avg = engine.metric_value(series, _trigger(), now, one, 2)
    assert avg == pytest.approx(sum((10 * (g + 1) + 30) / 2 for g in range(5)) / 5)
    mx = engine.metric_value(series, _trigger(statistic="Max", timeAggregation="Maximum"), now, one, 2)
    assert mx == 50
    total = engine.metric_value(series, _trigger(statistic="Sum", timeAggregation="Total"), now, one, 2)
    assert total == 150 + 150
    last = engine.metric_value(series, _trigger(statistic="Min", timeAggregation="Last"), now, one, 2)
    assert last == 30
    per_instance = engine.metric_value(series, _trigger(statistic="Sum", timeAggregation="Total",
                                                        dividePerInstance=True), now, one, 4)
    assert per_instance == 300 / 4


def test_dimension_filters():
    points = [[1010, 90.0, None, {"Role": "web"}], [1010, 10.0, None, {"Role": "batch"}]]
    series = {"points": points, "holds": []}
    trig = _trigger(timeWindow="PT1M", dimensions=[{"DimensionName": "Role", "Operator": "Equals", "Values": ["web"]}])
    assert engine.metric_value(series, trig, 1060, one, 1) == 90
    trig["dimensions"][0]["Operator"] = "NotEquals"
    assert engine.metric_value(series, trig, 1060, one, 1) == 10


def test_forecast_extrapolates_the_trend():
    assert engine.forecast([40, 45, 50, 55, 60], 5) == pytest.approx(85)
    assert engine.forecast([50], 3) == 50


# --- pure: decisions -----------------------------------------------------------------------------

def _rule(direction, operator, threshold, value="1", kind="ChangeCount", cooldown="PT5M", **trigger):
    return {"metricTrigger": _trigger(operator=operator, threshold=threshold, **trigger),
            "scaleAction": {"direction": direction, "type": kind, "value": value, "cooldown": cooldown}}


def _cap_profile(rules, low=1, high=10, default=2):
    return {"name": "p", "capacity": {"minimum": str(low), "maximum": str(high), "default": str(default)},
            "rules": rules}


OUT2 = _rule("Increase", "GreaterThan", 70, "2")
IN1 = _rule("Decrease", "LessThan", 30, "1")


def test_scale_out_takes_the_largest_result_and_wins_over_scale_in():
    profile = _cap_profile([OUT2, _rule("Increase", "GreaterThan", 50, "3"), IN1])
    d = engine.decide(profile, [85, 85, 85], 3, 1000, None, one)
    assert (d.capacity, d.rule) == (6, 1)
    assert engine.decide(_cap_profile([OUT2]), [85], 9, 1000, None, one).capacity == 10     # capped at maximum


def test_scale_in_needs_every_scale_in_rule_and_no_scale_out_condition():
    other_in = _rule("Decrease", "LessThan", 40, "1", metricName="Memory")
    profile = _cap_profile([OUT2, IN1, other_in])
    assert engine.decide(profile, [20, 20, 50], 4, 1000, None, one) is None            # memory rule not met
    assert engine.decide(profile, [20, 20, 35], 4, 1000, None, one).capacity == 3
    assert engine.decide(profile, [20, None, 35], 4, 1000, None, one) is None          # a metric missing


def test_cooldown_counts_from_the_last_scale_action():
    profile = _cap_profile([OUT2, IN1])
    assert engine.decide(profile, [85, 85], 2, 1000, 1000 - 200, one) is None           # PT5M not over
    assert engine.decide(profile, [85, 85], 2, 1000, 1000 - 300, one).capacity == 4
    # a scale-out condition in cooldown still blocks scale-in
    assert engine.decide(_cap_profile([OUT2, _rule("Decrease", "LessThan", 90, "1")]), [85, 85], 4, 1000,
                         900, one) is None


def test_flapping_defers_or_limits_scale_in():
    out = _rule("Increase", "GreaterThan", 50, "1")
    inn = _rule("Decrease", "LessThan", 30, "1")
    # Azure's example: 2 instances at 28% -> 1 instance would be 56% > 50: deferred
    d = engine.decide(_cap_profile([out, inn]), [28, 28], 2, 1000, None, one)
    assert d.deferred and d.capacity == 2
    assert not engine.decide(_cap_profile([out, inn]), [24, 24], 2, 1000, None, one).deferred
    # scale in by 3 from 6 at 25%: 3 instances would be 50% (not > 50) -> allowed; by 4 -> 2 at 75%: limited
    big = _rule("Decrease", "LessThan", 30, "4")
    d = engine.decide(_cap_profile([out, big]), [25, 25], 6, 1000, None, one)
    assert d.capacity == 3 and "avoid flapping" in d.reason
    # a metric of another resource is not projected
    d = engine.decide(_cap_profile([out, inn]), [28, 28], 2, 1000, None, one, per_instance=[False, False])
    assert d.capacity == 1


def test_limits_and_default_capacity():
    profile = _cap_profile([OUT2, IN1], low=2, high=5, default=3)
    assert engine.decide(profile, [50, 50], 1, 1000, None, one).capacity == 2
    assert engine.decide(profile, [50, 50], 7, 1000, None, one).capacity == 5
    d = engine.decide(profile, [None, None], 2, 1000, None, one)
    assert d.capacity == 3 and "default" in d.reason
    assert engine.decide(profile, [None, None], 4, 1000, None, one) is None             # default never lowers


def test_action_types():
    assert engine.action_target(4, {"direction": "Increase", "type": "PercentChangeCount", "value": "50"}) == 6
    assert engine.action_target(3, {"direction": "Decrease", "type": "PercentChangeCount", "value": "10"}) == 2
    assert engine.action_target(4, {"direction": "Increase", "type": "ExactCount", "value": "7"}) == 7
    assert engine.action_target(4, {"direction": "Decrease", "type": "ServiceAllowedNextValue"}) == 3


def test_predictive_forecast_scales_out_only_when_enabled():
    profile = _cap_profile([OUT2])
    assert engine.decide(profile, [55], 2, 1000, None, one, forecasts=[90]).reason.startswith("predictive")
    assert engine.decide(profile, [55], 2, 1000, None, one, forecasts=None) is None


# --- ARM: CRUD and validation through the SDK ----------------------------------------------------

def monitor(emu):
    from azure.mgmt.monitor import MonitorManagementClient
    return MonitorManagementClient(**emu.sdk_kwargs())


def vmss_body(emu, capacity):
    return {"location": emu.location, "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
            "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                      "sku": "server", "version": "latest"}},
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser",
                              "adminPassword": "Sup3r-secret!"},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "ipConfigurations": [{"name": "ipc", "properties": {"primary": True}}]}}]}}}}


def make_vmss(emu, rg, name, capacity=2):
    path = (f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}")
    status, body, _ = emu.arm("PUT", path, vmss_body(emu, capacity))
    assert status in (200, 201), body
    return body["id"]


def capacity_of(emu, vmss_id):
    status, body, _ = emu.arm("GET", vmss_id)
    assert status == 200, body
    return body["sku"]["capacity"]


def setting_body(emu, target, rules, low=1, high=10, default=2, enabled=True, predictive=None, **extra):
    props = {"enabled": enabled, "targetResourceUri": target,
             "profiles": [{"name": "cpu", "capacity": {"minimum": str(low), "maximum": str(high),
                                                       "default": str(default)}, "rules": rules}]}
    if predictive:
        props["predictiveAutoscalePolicy"] = predictive
    props.update(extra)
    return {"location": emu.location, "properties": props}


def cpu_rule(target, direction, operator, threshold, value="1", cooldown="PT5M", window="PT5M"):
    return {"metricTrigger": {"metricName": CPU, "metricNamespace": "microsoft.compute/virtualmachinescalesets",
                              "metricResourceUri": target, "timeGrain": "PT1M", "statistic": "Average",
                              "timeWindow": window, "timeAggregation": "Average", "operator": operator,
                              "threshold": threshold},
            "scaleAction": {"direction": direction, "type": "ChangeCount", "value": value, "cooldown": cooldown}}


def put_setting(client, rg, name, body):
    from azure.mgmt.monitor.models import AutoscaleSettingResource
    return client.autoscale_settings.create_or_update(rg, name, AutoscaleSettingResource.deserialize(body))


@pytest.fixture
def fleet(clean):
    emu = clean
    emu.rg("as-rg")
    return emu, make_vmss(emu, "as-rg", "web", 2)


def test_crud_through_the_sdk(fleet):
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.monitor.models import AutoscaleSettingResourcePatch
    emu, vmss = fleet
    client = monitor(emu)
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70, "2"), cpu_rule(vmss, "Decrease", "LessThan", 30)]
    created = put_setting(client, "as-rg", "web-autoscale", setting_body(emu, vmss, rules,
                                                                          predictive={"scaleMode": "ForecastOnly"}))
    assert created.name == "web-autoscale" and created.type == "Microsoft.Insights/autoscaleSettings"
    assert created.id.lower().endswith("/providers/microsoft.insights/autoscalesettings/web-autoscale")
    assert created.profiles[0].rules[0].metric_trigger.time_window == datetime.timedelta(minutes=5)
    assert created.predictive_autoscale_policy.scale_mode == "ForecastOnly"
    got = client.autoscale_settings.get("as-rg", "web-autoscale")
    assert got.target_resource_uri == vmss and got.enabled is True
    for i in range(6):        # pages of 5
        put_setting(client, "as-rg", f"extra-{i}", setting_body(emu, vmss, [], enabled=False))
    assert len(list(client.autoscale_settings.list_by_resource_group("as-rg"))) == 7
    assert len(list(client.autoscale_settings.list_by_subscription())) == 7
    patched = client.autoscale_settings.update("as-rg", "web-autoscale", AutoscaleSettingResourcePatch(
        tags={"team": "fleet"}, enabled=False, profiles=got.profiles))
    assert patched.tags == {"team": "fleet"} and patched.enabled is False
    assert patched.profiles[0].capacity.maximum == "10"
    client.autoscale_settings.delete("as-rg", "web-autoscale")
    with pytest.raises(ResourceNotFoundError):
        client.autoscale_settings.get("as-rg", "web-autoscale")
    status, _, _ = emu.arm("DELETE", f"/subscriptions/{emu.subscription_id}/resourcegroups/as-rg/providers/"
                                     "Microsoft.Insights/autoscalesettings/web-autoscale", api_version=API)
    assert status == 204


def _example(name):
    with open(os.path.join(SPEC_EXAMPLES, name)) as fh:
        return json.load(fh)


def test_every_spec_example_request_is_accepted(clean):
    emu = clean
    put = _example("createOrUpdateAutoscaleSetting.json")["parameters"]
    example_sub = put["subscriptionId"]

    def ours(value):
        return json.loads(json.dumps(value).replace(example_sub, emu.subscription_id))
    rg, name = put["resourceGroupName"], put["autoscaleSettingName"]
    emu.rg(rg)
    make_vmss(emu, rg, "testingsc", 1)
    base = f"/subscriptions/{emu.subscription_id}/resourcegroups/{rg}/providers/Microsoft.Insights/autoscalesettings"
    status, body, _ = emu.arm("PUT", f"{base}/{name}", ours(put["parameters"]), api_version=API)
    assert status == 201, body
    expected = ours(_example("createOrUpdateAutoscaleSetting.json")["responses"]["201"]["body"])
    assert body["properties"]["profiles"] == expected["properties"]["profiles"]
    assert body["properties"]["predictiveAutoscalePolicy"] == expected["properties"]["predictiveAutoscalePolicy"]
    assert body["id"].lower() == expected["id"].lower() and body["type"] == expected["type"]
    status, body, _ = emu.arm("PUT", f"{base}/{name}", ours(put["parameters"]), api_version=API)
    assert status == 200
    patch = _example("patchAutoscaleSetting.json")["parameters"]
    status, body, _ = emu.arm("PATCH", f"{base}/{name}", ours(patch["autoscaleSettingResource"]), api_version=API)
    assert status == 200 and body["tags"] == {"key1": "value1"}, body
    status, body, _ = emu.arm("GET", f"{base}/{name}", api_version=API)
    assert status == 200 and body["name"] == name
    status, body, _ = emu.arm("GET", base, api_version=API)
    assert status == 200 and [s["name"] for s in body["value"]] == [name]
    status, _, _ = emu.arm("DELETE", f"{base}/{name}", api_version=API)
    assert status == 200


@pytest.mark.parametrize("mutate,code,words", [
    (lambda b: b["properties"]["profiles"][0]["capacity"].update(minimum="5", maximum="3", default="4"),
     "BadRequest", "greater than the maximum capacity"),
    (lambda b: b["properties"]["profiles"][0]["capacity"].update(minimum="3", default="1"),
     "BadRequest", "greater than the default capacity of '1'"),
    (lambda b: b["properties"]["profiles"][0]["capacity"].update(default="11"),
     "BadRequest", "default capacity value '11'"),
    (lambda b: b["properties"]["profiles"][0]["rules"].extend(
        copy.deepcopy(b["properties"]["profiles"][0]["rules"][0]) for _ in range(10)), "BadRequest", "at most 10"),
    (lambda b: b["properties"]["profiles"][0]["rules"][0]["scaleAction"].update(value="12"),
     "InvalidActionValue", "difference between the capacity maximum 10 and the capacity minimum 1"),
    (lambda b: b["properties"]["profiles"][0]["rules"][0]["scaleAction"].update(cooldown="PT30S"),
     "BadRequest", "cooldown"),
    (lambda b: b["properties"]["profiles"][0]["rules"][0]["metricTrigger"].update(timeWindow="PT13H"),
     "BadRequest", "timeWindow"),
    (lambda b: b["properties"]["profiles"][0].update(recurrence={"frequency": "Week", "schedule": {
        "timeZone": "UTC", "days": ["Monday"], "hours": [8], "minutes": [0, 30]}}),
     "BadRequest", "Specify only one value for minutes"),
    (lambda b: b["properties"]["profiles"][0].update(recurrence={"frequency": "Week", "schedule": {
        "timeZone": "Mars Standard Time", "days": ["Monday"], "hours": [8], "minutes": [0]}}),
     "BadRequest", "invalid time zone"),
    (lambda b: b["properties"].update(targetResourceUri=b["properties"]["targetResourceUri"] + "-gone"),
     "TargetResourceNotFound", "was not found"),
    (lambda b: b["properties"]["predictiveAutoscalePolicy"].update(scaleLookAheadTime="PT2H"),
     "BadRequest", "scaleLookAheadTime"),
])
def test_validation_errors(fleet, mutate, code, words):
    from azure.core.exceptions import HttpResponseError
    emu, vmss = fleet
    body = setting_body(emu, vmss, [cpu_rule(vmss, "Increase", "GreaterThan", 70)],
                        predictive={"scaleMode": "Disabled"})
    mutate(body)
    with pytest.raises(HttpResponseError) as err:
        put_setting(monitor(emu), "as-rg", "invalid", body)
    assert err.value.status_code == 400
    assert err.value.error.code == code, err.value.message
    assert words in err.value.error.message


def test_more_than_20_profiles():
    """The spec's maxItems answers first (kept off the session's traffic: oav checks requests too);
    the provider's own check stands in when the specs are absent."""
    from emulator.providers import autoscale
    from emulator.specs import SpecIndex
    profile = {"name": "p", "capacity": {"minimum": "1", "maximum": "2", "default": "1"}, "rules": []}
    body = {"location": "westeurope", "properties": {"targetResourceUri": "/x", "profiles": [
        dict(profile, name=f"p{i}", recurrence={"frequency": "Week", "schedule": {
            "timeZone": "UTC", "days": ["Monday"], "hours": [i], "minutes": [0]}}) for i in range(21)]}}
    with pytest.raises(ArmError) as err:
        SpecIndex.load().validate_body("AutoscaleSettings_CreateOrUpdate", body)
    assert (err.value.code, err.value.target) == ("InvalidParameter", "properties.profiles")
    with pytest.raises(ArmError) as err:
        autoscale.validate_profiles(body["properties"]["profiles"])
    assert err.value.code == "BadRequest" and "at most 20 profiles" in err.value.message


def test_target_resource_is_immutable(fleet):
    from azure.core.exceptions import HttpResponseError
    emu, vmss = fleet
    other = make_vmss(emu, "as-rg", "api", 1)
    client = monitor(emu)
    put_setting(client, "as-rg", "web-autoscale", setting_body(emu, vmss, []))
    with pytest.raises(HttpResponseError) as err:
        put_setting(client, "as-rg", "web-autoscale", setting_body(emu, other, []))
    assert err.value.error.code == "TargetResourceIdIsImmutable"


# --- the engine ----------------------------------------------------------------------------------

def feed(emu, resource_id, value, **extra):
    return emu.control.call("POST", "metrics", dict({"resource_id": resource_id, "metric": CPU, "value": value},
                                                    **extra))


def wait_capacity(emu, vmss, wanted, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if capacity_of(emu, vmss) == wanted:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"capacity never became {wanted} (now {capacity_of(emu, vmss)}); log: "
                         f"{emu.control.call('GET', 'autoscale-log')['value']}")


def scale_log(emu):
    return emu.control.call("GET", "autoscale-log")["value"]


def wait_log(emu, done, what, timeout=30.0):
    """The log of scale actions (failed ones left out) once ``done(log)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = [e for e in scale_log(emu) if e["action"] != "failed"]
        if done(log):
            return log
        time.sleep(0.05)
    raise AssertionError(f"{what} never happened; log: {scale_log(emu)}")


def test_cpu_high_scales_out_after_the_window_then_low_scales_in_after_window_and_cooldown(fleet):
    """Judged on the emulator's clock (the samples' and the log's times): how many scale-outs come before the test
    sees one and feeds the low CPU is the client's pace, not autoscale's, so each step is asserted, not their count."""
    emu, vmss = fleet
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70, "2"), cpu_rule(vmss, "Decrease", "LessThan", 30, "1")]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(emu, vmss, rules, low=1, high=10, default=2))
    window = cooldown = scaled(300)
    high_at = feed(emu, vmss, 85)["value"][0]["stored"][0]
    first = wait_log(emu, bool, "a scale-out")[0]
    assert (first["action"], first["old_capacity"], first["new_capacity"]) == ("scale-out", 2, 4)
    assert first["ts"] - high_at >= window - 1e-3            # not before the 85% filled the window
    assert first["metric"] == CPU and first["metric_value"] == pytest.approx(85)
    assert first["profile"] == "cpu" and first["rule"] == 0 and "GreaterThan" in first["reason"]
    assert capacity_of(emu, vmss) in (4, 6, 8, 10)           # the scale set itself moved (set before it is logged)

    low_at = feed(emu, vmss, 20)["value"][0]["stored"][0]
    log = wait_log(emu, lambda log: any(e["action"] == "scale-in" for e in log), "a scale-in")
    outs = list(itertools.takewhile(lambda e: e["action"] == "scale-out", log))
    scale_in = log[len(outs)]
    # scale-outs by 2 (up to the maximum), each a PT5M cooldown after the one before, until the low CPU prevailed
    steps = [(2 + 2 * i, min(4 + 2 * i, 10)) for i in range(len(outs))]
    assert [(e["old_capacity"], e["new_capacity"]) for e in outs] == steps
    assert all(later["ts"] - earlier["ts"] >= cooldown - 1e-3 for earlier, later in zip(outs, outs[1:]))
    assert all(e["metric_value"] > 70 for e in outs)
    assert all(e["metric_value"] == pytest.approx(85) for e in outs if e["ts"] <= low_at)
    assert (scale_in["action"], scale_in["old_capacity"], scale_in["new_capacity"]) == (
        "scale-in", outs[-1]["new_capacity"], outs[-1]["new_capacity"] - 1)
    # the 20% had to fill the window (the oldest grain may still hold some 85%: the average is per grain)
    assert scale_in["ts"] - low_at >= window - scaled(60) - 1e-3
    assert scale_in["ts"] - outs[-1]["ts"] >= cooldown - 1e-3   # and the PT5M cooldown to pass
    assert 20 <= scale_in["metric_value"] < 30
    # every scale action is an event of the scale set (the engine may act again between the two reads)
    kinds = [e["kind"] for e in emu.control.call("GET", f"events?resource_id={vmss}")["value"]]
    acted = [e for e in scale_log(emu) if e["action"] in ("scale-out", "scale-in")]
    assert len(outs) + 1 <= kinds.count("autoscale.scale") <= len(acted)


def test_missing_metrics_raise_capacity_to_default_and_limits_apply(fleet):
    emu, vmss = fleet
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70)]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(emu, vmss, rules, low=1, high=5, default=3))
    wait_capacity(emu, vmss, 3)
    assert "default" in scale_log(emu)[-1]["reason"]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(emu, vmss, rules, low=1, high=2, default=2))
    wait_capacity(emu, vmss, 2)
    assert "maximum" in scale_log(emu)[-1]["reason"]


def test_disabled_setting_never_acts(fleet):
    emu, vmss = fleet
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70, window="PT1M")]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(emu, vmss, rules, enabled=False))
    feed(emu, vmss, 95)
    time.sleep(scaled(60) * 4)
    assert capacity_of(emu, vmss) == 2 and scale_log(emu) == []


def _rising(emu, vmss, start, end, seconds, steps=10):
    now = time.time()
    samples = [{"resource_id": vmss, "metric": CPU, "value": start + (end - start) * i / (steps - 1),
                "timestamp": now - seconds + seconds * i / (steps - 1)} for i in range(steps)]
    emu.control.call("POST", "metrics", samples)


@pytest.mark.parametrize("mode", ["ForecastOnly", "Enabled"])
def test_predictive_forecast_only_never_acts_enabled_does(fleet, mode):
    emu, vmss = fleet
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70, "1")]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(
        emu, vmss, rules, default=1, predictive={"scaleMode": mode, "scaleLookAheadTime": "PT10M"}))
    _rising(emu, vmss, 30, 60, scaled(300))                  # the trend crosses 70% within ten minutes
    if mode == "ForecastOnly":
        time.sleep(scaled(60) * 2.5)                         # evaluations that never act, however many ran
        assert capacity_of(emu, vmss) == 2 and scale_log(emu) == []
    else:   # waited for, not slept on: the one scale-out (the samples age out of the window before the cooldown ends)
        [entry] = wait_log(emu, bool, "a predictive scale-out")
        assert (entry["old_capacity"], entry["new_capacity"]) == (2, 3)
        assert entry["reason"].startswith("predictive scale out") and capacity_of(emu, vmss) == 3


def wait_settled(emu, vmss, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body, _ = emu.arm("GET", vmss)
        if body["properties"]["provisioningState"] == "Succeeded":
            return body
        time.sleep(0.05)
    raise AssertionError("the scale set never settled")


def instance_ids(emu, vmss):
    status, body, _ = emu.arm("GET", vmss + "/virtualMachines")
    assert status == 200, body
    ids = [vm["instanceId"] for vm in body["value"]]
    while body.get("nextLink"):
        status, body, _ = emu.arm("GET", body["nextLink"][len(emu.url):], api_version=None)
        ids += [vm["instanceId"] for vm in body["value"]]
    return sorted(ids, key=int)


def test_scale_in_never_removes_protected_instances(fleet):
    emu, vmss = fleet
    wait_settled(emu, vmss)
    status, body, _ = emu.arm("PATCH", vmss, {"sku": {"capacity": 3}})
    assert status == 200, body
    wait_settled(emu, vmss)
    ids = instance_ids(emu, vmss)
    assert len(ids) == 3
    newest = ids[-1]                     # the one the default scale-in policy would remove first
    status, body, _ = emu.arm("PUT", f"{vmss}/virtualMachines/{newest}", {
        "location": emu.location, "properties": {"protectionPolicy": {"protectFromScaleIn": True}}})
    assert status == 200, body
    rules = [cpu_rule(vmss, "Increase", "GreaterThan", 70),
             cpu_rule(vmss, "Decrease", "LessThan", 30, "1", cooldown="PT1M", window="PT1M")]
    put_setting(monitor(emu), "as-rg", "web-autoscale", setting_body(emu, vmss, rules, low=1, high=5, default=1))
    feed(emu, vmss, 5)
    wait_capacity(emu, vmss, 1, timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(instance_ids(emu, vmss)) > 1:
        time.sleep(0.1)
    assert instance_ids(emu, vmss) == [newest]
    done = [e for e in scale_log(emu) if e["action"] != "failed"]      # a busy set answers 409: retried
    assert [(e["action"], e["old_capacity"], e["new_capacity"]) for e in done] == [("scale-in", 3, 2),
                                                                                  ("scale-in", 2, 1)]


def test_metrics_control_api_validates_and_lists(clean):
    from emulator.client import ControlError
    emu = clean
    with pytest.raises(ControlError, match="400"):
        emu.control.call("POST", "metrics", {"resource_id": "/x", "metric": CPU, "value": "high"})
    feed(emu, "/x", 42)
    feed(emu, "/x", 43, timestamp="2030-01-01T00:00:00Z")
    series = emu.control.call("GET", "metrics?resource_id=/x")["value"]
    assert len(series) == 1 and len(series[0]["holds"]) == 1 and len(series[0]["points"]) == 1
    emu.control.call("DELETE", "metrics")
    assert emu.control.call("GET", "metrics")["value"] == []
