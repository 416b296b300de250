# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Autoscale settings: spellings, Azure's rules, REST <-> options, the comparison and the request bodies."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils import _autoscale as autoscale

VMSS = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/api"
HOOK = "https://hooks.example.com/services/T0/B0?token=s3cr3t"


def trigger(**changes):
    base = {"metric_name": "Percentage CPU", "metric_namespace": None, "metric_resource_uri": None, "time_grain": "PT1M",
            "statistic": "Average", "time_window": "PT5M", "time_aggregation": "Average", "operator": "GreaterThan",
            "threshold": 70.0, "dimensions": None, "divide_per_instance": None}
    base.update(changes)
    return base


def action(**changes):
    base = {"direction": "Increase", "type": "ChangeCount", "value": 2, "cooldown": "PT5M"}
    base.update(changes)
    return base


def seed_profile(**changes):
    """The seed example, as the module's argument spec hands it over (unset suboptions None, defaults filled)."""
    profile = {"name": "default", "capacity": {"minimum": 3, "maximum": 30, "default": 3}, "recurrence": None,
               "fixed_date": None,
               "rules": [{"metric_trigger": trigger(), "scale_action": action()},
                         {"metric_trigger": trigger(time_window="PT10M", operator="LessThan", threshold=30.0),
                          "scale_action": action(direction="Decrease", value=1, cooldown="PT10M")}]}
    profile.update(changes)
    return profile


def params(**changes):
    base = {"enabled": None, "location": None, "target_resource_uri": None, "tags": None, "profiles": [seed_profile()],
            "notifications": None, "predictive_autoscale_policy": None}
    base.update(changes)
    return base


def desired(**changes):
    found, errors = autoscale.desired_options(params(**changes), VMSS)
    assert errors == []
    return found


def created(want):
    """What Azure stores (and returns) for the setting the module would create."""
    doc = autoscale.preview(autoscale.create_body(want, "api-autoscale", "westeurope", VMSS), "sub", "rg",
                            "api-autoscale")
    doc["properties"].setdefault("predictiveAutoscalePolicy", {"scaleMode": "Disabled", "scaleLookAheadTime": None})
    doc["properties"].setdefault("notifications", [])
    return doc


# --- spellings --------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=40 * 86400))
def test_iso_duration_is_the_seconds_it_says(seconds):
    spelled = autoscale.iso_duration(seconds)
    assert autoscale.seconds_of(spelled) == seconds
    assert autoscale.seconds_of(str(seconds)) == seconds
    assert spelled.startswith("P") and not spelled.endswith(("P", "T"))


@pytest.mark.parametrize("seconds, spelled", [(300, "PT5M"), (5400, "PT1H30M"), (604800, "P7D"), (0, "PT0S"),
                                              (90061, "P1DT1H1M1S"), (60, "PT1M")])
def test_iso_duration_is_the_shortest_spelling(seconds, spelled):
    assert autoscale.iso_duration(seconds) == spelled


@pytest.mark.parametrize("value", ["5 minutes", "PT", "PT0.5S", -60, "1H", None, True])
def test_not_whole_second_durations(value):
    assert autoscale.seconds_of(value) is None


def test_enums_in_any_case_become_azures_spelling():
    assert autoscale.canonical("greaterthanorequal", autoscale.OPERATORS) == "GreaterThanOrEqual"
    assert autoscale.canonical(" FORECASTONLY ", autoscale.SCALE_MODES) == "ForecastOnly"
    assert autoscale.canonical("Above", autoscale.OPERATORS) is None


def test_webhook_addresses_are_masked_to_scheme_and_host():
    assert autoscale.mask_uri(HOOK) == "https://hooks.example.com/********"
    assert autoscale.mask_uri("https://user:pw@hooks.example.com/x") == "https://hooks.example.com/********"
    assert autoscale.mask_uri("not a url") == "********"


# --- options -> desired, and Azure's rules --------------------------------------------------------------------


def test_desired_options_in_canonical_spellings_with_the_target_as_default_metric_resource():
    spelled = seed_profile(capacity={"minimum": 3, "maximum": 30, "default": 3}, rules=[
        {"metric_trigger": trigger(time_grain=60, statistic="average", time_window="PT05M", time_aggregation="AVERAGE",
                                   operator="greaterthan", dimensions=[{"dimension_name": "VMName", "operator": "equals",
                                                                        "values": ["*"]}]),
         "scale_action": action(direction="increase", type="changecount", cooldown=300)}])
    want = desired(profiles=[spelled], predictive_autoscale_policy={"scale_mode": "forecastonly",
                                                                    "scale_look_ahead_time": None})
    rule = want["profiles"][0]["rules"][0]
    assert rule["metric_trigger"] == {"metric_name": "Percentage CPU", "metric_resource_uri": VMSS, "time_grain": "PT1M",
                                      "statistic": "Average", "time_window": "PT5M", "time_aggregation": "Average",
                                      "operator": "GreaterThan", "threshold": 70.0,
                                      "dimensions": [{"dimension_name": "VMName", "operator": "Equals", "values": ["*"]}]}
    assert rule["scale_action"] == {"direction": "Increase", "type": "ChangeCount", "value": 2, "cooldown": "PT5M"}
    assert want["predictive_autoscale_policy"] == {"scale_mode": "ForecastOnly"}
    assert "notifications" not in want and "enabled" not in want  # unset: never sent, never compared


def test_a_minimal_call_sets_only_what_it_names():
    found, errors = autoscale.desired_options(params(profiles=None, enabled=False), None)
    assert (found, errors) == ({"enabled": False}, [])


@pytest.mark.parametrize("change, says", [
    ({"capacity": {"minimum": 5, "maximum": 2, "default": 3}}, "profiles[default].capacity: maximum 2 is below minimum 5."),
    ({"capacity": {"minimum": 2, "maximum": 5, "default": 9}},
     "profiles[default].capacity: default 9 is outside [minimum 2, maximum 5]."),
    ({"capacity": {"minimum": 1, "maximum": 1500, "default": 1}}, "maximum 1500 is above 1000"),
    ({"rules": [{"metric_trigger": trigger(operator="Above"), "scale_action": action()}]},
     "profiles[default].rules[0].metric_trigger.operator: unknown value 'Above'"),
    ({"rules": [{"metric_trigger": trigger(statistic="Median"), "scale_action": action()}]},
     "metric_trigger.statistic: unknown value 'Median'"),
    ({"rules": [{"metric_trigger": trigger(time_aggregation="Mean"), "scale_action": action()}]},
     "metric_trigger.time_aggregation: unknown value 'Mean'"),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(direction="Up")}]},
     "scale_action.direction: unknown value 'Up'"),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(type="Double")}]},
     "scale_action.type: unknown value 'Double'"),
    ({"rules": [{"metric_trigger": trigger(time_grain="PT5M", time_window="PT1M"), "scale_action": action()}]},
     "profiles[default].rules[0]: time_window PT1M is shorter than time_grain PT5M"),
    ({"rules": [{"metric_trigger": trigger(time_window="5 minutes"), "scale_action": action()}]},
     "time_window: '5 minutes' is not an ISO 8601 duration"),
    ({"rules": [{"metric_trigger": trigger(time_window="PT13H"), "scale_action": action()}]},
     "time_window: PT13H must be between 1 minute and 12 hours."),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(cooldown="PT30S")}]},
     "cooldown: PT30S must be between 1 minute and 1 week."),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(value=28)}]},
     "a ChangeCount of 28 is more than maximum - minimum (27)."),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(type="ExactCount", value=40)}]},
     "an ExactCount of 40 is outside [minimum 3, maximum 30]."),
    ({"rules": [{"metric_trigger": trigger(), "scale_action": action(value=0)}]}, "0 is too small (at least 1)."),
    ({"recurrence": {"frequency": "Day", "schedule": {"time_zone": "UTC", "days": ["Monday"], "hours": [8],
                                                      "minutes": [0]}}}, "accepts only Week"),
    ({"recurrence": {"frequency": "Week", "schedule": {"time_zone": "UTC", "days": ["Funday"], "hours": [25],
                                                       "minutes": [0]}}}, "schedule.hours: one or more values"),
    ({"fixed_date": {"time_zone": None, "start": "2026-12-24T18:00:00Z", "end": "2026-12-24T08:00:00Z"}},
     "end 2026-12-24T08:00:00Z is not after start"),
    ({"fixed_date": {"time_zone": None, "start": "Christmas", "end": "2026-12-24T08:00:00Z"}}, "must be ISO 8601 date-times"),
])
def test_what_azure_refuses_is_refused_before_any_write(change, says):
    _found, errors = autoscale.desired_options(params(profiles=[seed_profile(**change)]), VMSS)
    assert any(says in error for error in errors), errors


def test_profiles_as_a_set():
    recurring = seed_profile(name="nights", recurrence={"frequency": "Week", "schedule": {
        "time_zone": "UTC", "days": ["monday"], "hours": [20], "minutes": [0]}})
    _found, errors = autoscale.desired_options(params(profiles=[seed_profile(), seed_profile(name="DEFAULT")]), VMSS)
    assert "profiles: profile names must be unique (case-insensitively)." in errors
    assert any("a setting has at most one such default profile" in error for error in errors)
    found, errors = autoscale.desired_options(params(profiles=[seed_profile(), recurring]), VMSS)
    assert errors == [] and found["profiles"][1]["recurrence"]["schedule"]["days"] == ["Monday"]
    _found, errors = autoscale.desired_options(params(profiles=[]), VMSS)
    assert errors == ["profiles: at least one profile is needed."]


def test_every_reason_at_once():
    bad = seed_profile(capacity={"minimum": 5, "maximum": 2, "default": 3},
                       rules=[{"metric_trigger": trigger(operator="Above", time_window="soon"), "scale_action": action()}])
    _found, errors = autoscale.desired_options(params(profiles=[bad]), VMSS)
    assert len(errors) == 3


def test_warnings_for_what_azure_allows():
    grow_only = seed_profile(rules=[{"metric_trigger": trigger(), "scale_action": action(cooldown="PT1M")}])
    assert autoscale.warnings(desired(profiles=[grow_only])) == [
        "profiles[default] has a scale-out rule and no scale-in rule: the scale set would only grow, up to maximum 30. "
        "Pair every scale-out rule with a scale-in rule.",
        "profiles[default].rules[0]: the cooldown PT1M is shorter than the time window PT5M, so the next evaluation "
        "still counts the load from before this rule's scale action and may scale again."]
    assert autoscale.warnings(desired()) == []


def test_what_depends_on_the_existing_setting():
    current = autoscale.from_rest(created(desired()))
    assert autoscale.validate({"enabled": False}, current, None) == []
    other = VMSS.replace("/api", "/batch")
    [error] = autoscale.validate({"target_resource_uri": other}, current, other)
    assert "Azure cannot change the target of a setting" in error
    assert autoscale.validate({"target_resource_uri": VMSS.upper()}, current, VMSS) == []
    assert "location cannot be changed" in autoscale.validate({"location": "northeurope"}, current, VMSS)[0]
    assert autoscale.validate({"location": "West Europe"}, current, VMSS) == []
    assert autoscale.validate({"enabled": False}, None, None) == [
        "profiles is required to create the setting (it does not exist yet).",
        "the target is required to create the setting: scale_set or target_resource_uri."]


# --- REST <-> options, the comparison ---------------------------------------------------------------------------


def test_what_is_created_reads_back_as_no_difference():
    want = desired(notifications=[{"operation": "Scale", "email": None,
                                   "webhooks": [{"service_uri": HOOK, "properties": {"team": "payments"}}]}],
                   tags={"team": "payments"})
    doc = created(want)
    assert doc["properties"]["profiles"][0]["capacity"] == {"minimum": "3", "maximum": "30", "default": "3"}
    assert doc["properties"]["profiles"][0]["rules"][1]["scaleAction"] == {
        "direction": "Decrease", "type": "ChangeCount", "value": "1", "cooldown": "PT10M"}
    assert doc["properties"]["enabled"] is True  # not set: true on creation
    assert not autoscale.differences(want, autoscale.from_rest(doc))


def test_the_same_setting_in_other_spellings_is_no_difference():
    doc = created(desired())
    rule = doc["properties"]["profiles"][0]["rules"][0]
    rule["metricTrigger"].update(timeWindow="PT300S", metricResourceUri=VMSS.lower(), metricName="percentage cpu",
                                 metricNamespace="microsoft.compute/virtualmachinescalesets", dividePerInstance=False)
    rule["scaleAction"].update(cooldown="PT05M", direction="increase")
    doc["properties"]["profiles"][0]["name"] = "Default"
    assert not autoscale.differences(desired(), autoscale.from_rest(doc))


def test_optional_trigger_fields_are_compared_only_when_set():
    doc = created(desired())
    doc["properties"]["profiles"][0]["rules"][0]["metricTrigger"]["dimensions"] = [
        {"DimensionName": "VMName", "Operator": "Equals", "Values": ["b", "a"]}]
    current = autoscale.from_rest(doc)
    assert not autoscale.differences(desired(), current)
    with_dimensions = seed_profile()
    with_dimensions["rules"][0]["metric_trigger"]["dimensions"] = [{"dimension_name": "vmname", "operator": "EQUALS",
                                                                    "values": ["a", "b"]}]
    assert not autoscale.differences(desired(profiles=[with_dimensions]), current)  # values in any order
    with_dimensions["rules"][0]["metric_trigger"]["dimensions"][0]["values"] = ["a"]
    assert autoscale.differences(desired(profiles=[with_dimensions]), current).display_paths() == [
        "profiles[default].rules"]


def test_differences_name_what_changes():
    current = autoscale.from_rest(created(desired(tags={"team": "payments", "owner": "ops"})))
    changed = seed_profile(capacity={"minimum": 3, "maximum": 20, "default": 3})
    changed["rules"][0]["metric_trigger"]["threshold"] = 75.0
    nights = seed_profile(name="nights", recurrence={"frequency": "Week", "schedule": {
        "time_zone": "UTC", "days": ["Monday"], "hours": [20], "minutes": [0]}})
    tracker = autoscale.differences(desired(profiles=[nights], enabled=False, tags={"team": "checkout"}), current)
    assert sorted(tracker.display_paths()) == ["enabled", "profiles[default]", "profiles[nights]", "tags.team"]
    assert tracker.before()["profiles"][0]["name"] == "default" and tracker.after()["profiles"][0]["name"] == "nights"
    tracker = autoscale.differences(desired(profiles=[changed]), current)
    assert tracker.display_paths() == ["profiles[default].capacity.maximum", "profiles[default].rules"]
    assert tracker.diff()["before"]["profiles"][0]["capacity"] == {"maximum": 30}
    assert tracker.diff()["after"]["profiles"][0]["rules"][0]["metric_trigger"]["threshold"] == 75.0


def test_notifications_compared_as_sets_and_masked_in_the_diff():
    hooks = [{"service_uri": HOOK, "properties": {}}, {"service_uri": HOOK + "2", "properties": {}}]
    want = desired(notifications=[{"operation": "Scale", "email": {"send_to_subscription_administrator": True,
                                                                   "send_to_subscription_co_administrators": None,
                                                                   "custom_emails": ["A@example.com", "b@example.com"]},
                                   "webhooks": hooks}])
    current = autoscale.from_rest(created(want))
    reordered = copy.deepcopy(want)
    reordered["notifications"][0]["webhooks"].reverse()
    reordered["notifications"][0]["email"]["custom_emails"] = ["b@example.com", "a@example.com"]
    assert not autoscale.differences(reordered, current)
    reordered["notifications"][0]["webhooks"][0]["service_uri"] = HOOK + "3"
    tracker = autoscale.differences(reordered, current)
    assert tracker.display_paths() == ["notifications"]
    assert "s3cr3t" not in repr(tracker.diff())
    assert tracker.after()["notifications"][0]["webhooks"][0]["service_uri"] == "https://hooks.example.com/********"


def test_fixed_dates_compared_as_instants():
    profile = seed_profile(name="black-friday", fixed_date={"time_zone": "UTC", "start": "2026-11-27T06:00:00+01:00",
                                                            "end": "2026-11-28T00:00:00Z"})
    want = desired(profiles=[seed_profile(), profile])
    doc = created(want)
    doc["properties"]["profiles"][1]["fixedDate"].update(start="2026-11-27T05:00:00.000Z", timeZone="utc")
    assert not autoscale.differences(want, autoscale.from_rest(doc))


def test_predictive_policy_only_the_fields_set():
    current = autoscale.from_rest(created(desired(predictive_autoscale_policy={"scale_mode": "ForecastOnly",
                                                                               "scale_look_ahead_time": "PT10M"})))
    assert current["predictive_autoscale_policy"] == {"scale_mode": "ForecastOnly", "scale_look_ahead_time": "PT10M"}
    same = desired(profiles=None, predictive_autoscale_policy={"scale_mode": "forecastonly", "scale_look_ahead_time": 600})
    assert not autoscale.differences(same, current)
    enable = desired(profiles=None, predictive_autoscale_policy={"scale_mode": "Enabled", "scale_look_ahead_time": None})
    assert autoscale.differences(enable, current).display_paths() == ["predictive_autoscale_policy.scale_mode"]


# --- request bodies --------------------------------------------------------------------------------------------


def test_a_minimal_update_sends_the_setting_as_read_with_the_change():
    doc = created(desired(tags={"team": "payments"}))
    doc["properties"]["profiles"][0]["rules"][0]["metricTrigger"]["metricResourceLocation"] = "westeurope"  # not modelled
    doc["systemData"] = {"createdBy": "someone"}
    body = autoscale.update_body({"enabled": False}, doc, purge_tags=False)
    assert body["properties"]["enabled"] is False
    assert body["properties"]["profiles"] == doc["properties"]["profiles"]
    assert body["properties"]["predictiveAutoscalePolicy"] == {"scaleMode": "Disabled"}  # no nulls sent
    assert body["tags"] == {"team": "payments"} and body["location"] == "westeurope"
    assert set(body) == {"location", "tags", "properties"}


def test_update_merges_tags_and_the_predictive_policy():
    doc = created(desired(tags={"team": "payments"}, predictive_autoscale_policy={
        "scale_mode": "ForecastOnly", "scale_look_ahead_time": "PT10M"}))
    body = autoscale.update_body({"tags": {"env": "prod"}, "predictive_autoscale_policy": {"scale_mode": "Enabled"}},
                                 doc, purge_tags=False)
    assert body["tags"] == {"team": "payments", "env": "prod"}
    assert body["properties"]["predictiveAutoscalePolicy"] == {"scaleMode": "Enabled", "scaleLookAheadTime": "PT10M"}
    assert autoscale.update_body({"tags": {"env": "prod"}}, doc, purge_tags=True)["tags"] == {"env": "prod"}


def test_results_mask_webhooks_and_read_capacities_as_numbers():
    want = desired(notifications=[{"operation": "Scale", "email": None, "webhooks": [{"service_uri": HOOK,
                                                                                      "properties": None}]}])
    result = autoscale.mask(autoscale.from_rest(created(want)))
    assert result["notifications"][0]["webhooks"][0]["service_uri"] == "https://hooks.example.com/********"
    assert result["profiles"][0]["capacity"] == {"minimum": 3, "maximum": 30, "default": 3}
    assert result["profiles"][0]["rules"][0]["scale_action"]["value"] == 2
    assert result["resource_group"] == "rg" and result["target_resource_uri"] == VMSS


RULES = st.builds(
    lambda grain, extra, op, stat, agg, threshold, direction, value, cooldown: {
        "metric_trigger": trigger(time_grain=grain, time_window=grain + extra, operator=op, statistic=stat,
                                  time_aggregation=agg, threshold=threshold),
        "scale_action": action(direction=direction, value=value, cooldown=cooldown)},
    st.integers(min_value=1, max_value=60).map(lambda minutes: minutes * 60), st.integers(min_value=0, max_value=3600),
    st.sampled_from(autoscale.OPERATORS).map(str.lower), st.sampled_from(autoscale.STATISTICS),
    st.sampled_from(autoscale.TIME_AGGREGATIONS).map(str.upper), st.floats(min_value=0, max_value=100, allow_nan=False),
    st.sampled_from(["Increase", "Decrease"]), st.integers(min_value=1, max_value=5),
    st.integers(min_value=60, max_value=7 * 86400))


@given(st.lists(RULES, max_size=10))
def test_any_valid_profile_round_trips_through_azure_as_no_difference(rules):
    want, errors = autoscale.desired_options(params(profiles=[seed_profile(rules=rules)]), VMSS)
    assert errors == []
    assert not autoscale.differences(want, autoscale.from_rest(created(want)))


def test_targeting_keeps_the_settings_of_the_target_as_azure_compares_ids_masked():
    vmss = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/api"

    def doc(name, target):
        return {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/autoscalesettings/" + name,
                "name": name, "location": "westeurope", "properties": {
                    "enabled": True, "targetResourceUri": target, "profiles": [],
                    "notifications": [{"operation": "Scale", "webhooks": [{"serviceUri": "https://hooks.example.com/token"}]}]}}

    docs = [doc("mine", vmss.upper()), None, doc("other", vmss + "2")]
    found = autoscale.targeting(docs, vmss)
    assert [setting["name"] for setting in found] == ["mine"]                     # None (not found) skipped
    assert found[0]["notifications"][0]["webhooks"][0]["service_uri"] == "https://hooks.example.com/********"
    assert [setting["name"] for setting in autoscale.targeting(docs, None)] == ["mine", "other"]
