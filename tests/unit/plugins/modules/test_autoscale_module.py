# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""autoscale end to end inside one process (options -> SDK -> HTTP, scripted): what is sent, and what is not."""

from __future__ import annotations

import copy

from azure_fakes import arm_error
from module_runner import SUB, body_of, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import autoscale

SETTING = r"(?i)/resourceGroups/payments/providers/Microsoft\.Insights/autoscalesettings/api-autoscale\?"
VMSS_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets/api\?"
VMSS = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB
RULES = [{"metric_trigger": {"metric_name": "Percentage CPU", "time_window": "PT5M", "operator": "GreaterThan",
                             "threshold": 70}, "scale_action": {"direction": "Increase", "value": 2}},
         {"metric_trigger": {"metric_name": "Percentage CPU", "time_window": "PT10M", "operator": "LessThan",
                             "threshold": 30}, "scale_action": {"direction": "Decrease", "cooldown": "PT10M"}}]
STORED = {
    "id": "/subscriptions/%s/resourceGroups/payments/providers/microsoft.insights/autoscalesettings/api-autoscale" % SUB,
    "name": "api-autoscale", "type": "Microsoft.Insights/autoscaleSettings", "location": "westeurope",
    "tags": {"team": "payments"},
    "properties": {
        "enabled": True, "targetResourceUri": VMSS, "name": "api-autoscale", "notifications": [],
        "predictiveAutoscalePolicy": {"scaleMode": "Disabled", "scaleLookAheadTime": None},
        "profiles": [{"name": "christmas", "capacity": {"minimum": "6", "maximum": "30", "default": "6"}, "rules": [],
                      # set in the portal: a local time without offset, which the SDK's models would turn into UTC
                      "fixedDate": {"timeZone": "W. Europe Standard Time", "start": "2026-12-24T08:00:00",
                                    "end": "2026-12-26T20:00:00"}}]}}


def run(args, capsys):
    return run_module(autoscale, dict({"resource_group": "payments"}, **args), capsys)


def test_a_minimal_call_puts_the_setting_back_as_read_with_only_enabled_changed(arm, capsys):
    after = copy.deepcopy(STORED)
    after["properties"]["enabled"] = False
    arm.route("GET", SETTING, [(200, {}, STORED)])
    arm.route("PUT", SETTING, [(200, {}, after)])
    code, result = run({"name": "api-autoscale", "enabled": False, "_ansible_diff": True}, capsys)
    assert code == 0 and result["changed"] and result["changes"] == ["enabled"], result
    [put] = writes(arm)
    sent = body_of(put)
    assert sent["properties"]["enabled"] is False
    assert sent["properties"]["profiles"] == STORED["properties"]["profiles"]  # the fixed date as read, to the letter
    assert sent["tags"] == {"team": "payments"} and sent["location"] == "westeurope"
    assert "api-version=2022-10-01" in put.url
    assert result["diff"] == {"before": {"enabled": True}, "after": {"enabled": False}}
    assert result["autoscale_setting"]["profiles"][0]["fixed_date"]["start"] == "2026-12-24T08:00:00"


def test_creating_for_a_scale_set_that_does_not_exist_fails_before_any_write(arm, capsys):
    arm.route("GET", SETTING, [arm_error("ResourceNotFound", "not found", 404)])
    arm.route("GET", VMSS_PATH, [arm_error("ResourceNotFound", "not found", 404)])
    code, result = run({"scale_set": "api", "profiles": [{"name": "default", "capacity": {
        "minimum": 3, "maximum": 30, "default": 3}, "rules": RULES}]}, capsys)
    assert code == 1
    assert result["msg"] == ("Failed to create autoscale setting payments/api-autoscale: ResourceNotFound: the target "
                             "scale set %s does not exist." % VMSS)
    assert writes(arm) == []


def test_creating_takes_the_scale_sets_region_and_is_enabled(arm, capsys):
    arm.route("GET", SETTING, [arm_error("ResourceNotFound", "not found", 404)])
    arm.route("GET", VMSS_PATH, [(200, {}, {"id": VMSS, "name": "api", "location": "northeurope",
                                            "sku": {"name": "Standard_D2s_v5", "capacity": 3}, "properties": {}})])
    arm.route("PUT", SETTING, [lambda request: (201, {}, dict(body_of(request), id=STORED["id"], name="api-autoscale"))])
    code, result = run({"scale_set": "api", "profiles": [{"name": "default", "capacity": {
        "minimum": 3, "maximum": 30, "default": 3}, "rules": RULES}]}, capsys)
    assert code == 0 and result["changed"], result
    sent = body_of(writes(arm)[0])
    assert sent["location"] == "northeurope"
    assert sent["properties"]["enabled"] is True and sent["properties"]["targetResourceUri"] == VMSS
    assert sent["properties"]["profiles"][0]["rules"][1] == {
        "metricTrigger": {"metricName": "Percentage CPU", "metricResourceUri": VMSS, "timeGrain": "PT1M",
                          "statistic": "Average", "timeWindow": "PT10M", "timeAggregation": "Average",
                          "operator": "LessThan", "threshold": 30.0},
        "scaleAction": {"direction": "Decrease", "type": "ChangeCount", "value": "1", "cooldown": "PT10M"}}


def test_another_resource_type_needs_a_location(arm, capsys):
    arm.route("GET", r"autoscalesettings/web-autoscale\?", [arm_error("ResourceNotFound", "not found", 404)])
    site = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Web/serverfarms/web" % SUB
    code, result = run({"target_resource_uri": site, "profiles": [{"name": "default", "capacity": {
        "minimum": 1, "maximum": 3, "default": 1}}]}, capsys)
    assert code == 1 and "location is required for a target that is not a scale set" in result["msg"]
    assert writes(arm) == []


def test_azure_refusing_the_write_is_one_clear_failure(arm, capsys):
    arm.route("GET", SETTING, [(200, {}, STORED)])
    arm.route("PUT", SETTING, [arm_error("TargetResourceNotFound", "The target resource id was not found.", 400)])
    code, result = run({"name": "api-autoscale", "enabled": False}, capsys)
    assert code == 1
    assert result["msg"] == ("Failed to update autoscale setting payments/api-autoscale: TargetResourceNotFound: "
                             "The target resource id was not found.")


def test_deleting(arm, capsys):
    arm.route("GET", SETTING, [(200, {}, STORED), arm_error("ResourceNotFound", "not found", 404)])
    arm.route("DELETE", SETTING, [(200, {}, None)])
    code, result = run({"scale_set": "api", "state": "absent"}, capsys)
    assert (code, result["changed"], result["autoscale_setting"]) == (0, True, None)
    code, result = run({"scale_set": "api", "state": "absent"}, capsys)
    assert (code, result["changed"]) == (0, False)
    assert [request.method for request in writes(arm)] == ["DELETE"]
