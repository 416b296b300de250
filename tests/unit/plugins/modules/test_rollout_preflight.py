# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout module's preflight option (check mode) over the real SDK pipeline (scripted ARM): the scale set, its
instances and the autoscale settings that target it are returned as the info modules return them, read once each;
a refusal is returned, not failed with, and comes after the reads; a fault still fails."""

from __future__ import annotations

import copy

import pytest

from azure_fakes import arm_error
from module_runner import SUB, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import autoscale_info, rollout, scale_set_info, scale_set_instance_info
from test_rollout_flexible import IMAGE, VMSS_PATH, feature, flexible_vm, scale_set, serve

SET_ID = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB
AUTOSCALE_PATH = r"/subscriptions/%s/providers/Microsoft\.Insights/autoscalesettings\?" % SUB


def setting(name, target, enabled=True):
    profile = {"name": "default", "capacity": {"minimum": "1", "maximum": "4", "default": "2"}, "rules": []}
    webhook = {"serviceUri": "https://hooks.example.com/secret-token"}
    return {"id": "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Insights/autoscalesettings/%s" % (SUB, name),
            "name": name, "type": "Microsoft.Insights/autoscaleSettings", "location": "westeurope", "tags": {},
            "properties": {"enabled": enabled, "targetResourceUri": target, "profiles": [profile],
                           "notifications": [{"operation": "Scale", "webhooks": [webhook]}]}}


def serve_all(arm, mode="Flexible", answer=None):
    serve(arm, feature("Registered"), mode=mode)
    arm.route("GET", AUTOSCALE_PATH, [answer or (200, {}, {"value": [
        setting("api-autoscale", SET_ID.upper()), setting("other-autoscale", SET_ID + "2")]})])


def preflight(capsys, check=True, **options):
    args = dict({"resource_group": "payments", "name": "api", "batch_by": "count", "batch_size": 1, "wait_sleep": 0.01,
                 "preflight": True, "_ansible_check_mode": check}, **options)
    return run_module(rollout, args, capsys)


def reads(arm, fragment):
    return [request for request in arm.requests if request.method == "GET" and fragment in request.url]


def test_preflight_returns_what_the_info_modules_return_each_read_once(arm, capsys):
    serve_all(arm)
    code, result = preflight(capsys, image=dict(IMAGE, version="1.1.0"))
    assert code == 0, result
    assert result["status"] == "planned" and result["refusal"] is None and writes(arm) == []
    assert [b["instance_ids"] for b in result["plan"]["batches"]] == [["api_a"], ["api_b"]]
    found = result["preflight"]
    # the plan reuses the pre-flight's reads: the scale set read as often as without preflight (the lease's read
    # and the rollout's), its instances listed once, the autoscale settings once
    assert len(reads(arm, "/virtualMachineScaleSets/api?")) == 2
    assert len(reads(arm, "/virtualMachines?")) == 1
    assert len(reads(arm, "/autoscalesettings?")) == 1
    # the setting targeting the set (its ID compared as Azure does), webhooks masked; not the other set's
    assert [(s["name"], s["enabled"]) for s in found["autoscale_settings"]] == [("api-autoscale", True)]
    assert "secret-token" not in str(result)
    assert [i["instance_id"] for i in found["instances"]] == ["api_a", "api_b"]
    assert {i["health_state"] for i in found["instances"]} == {"Healthy"}

    # the same as each info module returns, for the same answers
    _code, info = run_module(scale_set_info, {"resource_group": "payments", "name": "api"}, capsys)
    assert found["scale_set"] == info["scale_sets"][0]
    assert found["scale_set"]["upgrade_policy"]["mode"] == "Manual"
    _code, info = run_module(scale_set_instance_info, {"resource_group": "payments", "name": "api"}, capsys)
    assert found["instances"] == info["instances"]
    _code, info = run_module(autoscale_info, {"target_resource_uri": SET_ID}, capsys)
    assert found["autoscale_settings"] == info["autoscale_settings"]


def test_without_preflight_check_mode_returns_no_reads_and_reads_no_autoscale(arm, capsys):
    serve_all(arm)
    code, result = preflight(capsys, preflight=False, image=dict(IMAGE, version="1.1.0"))
    assert code == 0 and result["status"] == "planned"
    assert "preflight" not in result and "refusal" not in result and reads(arm, "/autoscalesettings") == []
    assert len(reads(arm, "/virtualMachineScaleSets/api?")) == 2 and len(reads(arm, "/virtualMachines?")) == 1


def test_preflight_is_for_check_mode_only(arm, capsys):
    serve_all(arm)
    code, result = preflight(capsys, check=False, batch_size=0)
    assert code == 1 and "Invalid options" in result["msg"] and arm.requests == []   # refused before any request
    assert "preflight" not in result


@pytest.mark.parametrize("options, words", [
    ({"demote_image_version_on_failure": True, "image": dict(IMAGE, version="1.1.0")},
     "Invalid options for the rollout of scale set payments/api: demote_image_version_on_failure needs image to be a gallery"),
    ({"image": dict(IMAGE, version="1.1.0"), "upgrade_mode": "Rolling"}, "upgrade_policy.mode is Rolling"),
    ({"image": dict(IMAGE, version="1.1.0"), "no_health": True}, "no Application Health extension"),
    ({"unhealthy": True}, "max_unhealthy_instance_percent"),
])
def test_a_refusal_is_returned_after_the_reads_not_failed(arm, capsys, options, words):
    answer = copy.deepcopy(scale_set())
    properties = answer["properties"]
    properties["upgradePolicy"]["mode"] = options.pop("upgrade_mode", "Manual")
    if options.pop("no_health", False):
        properties["virtualMachineProfile"]["extensionProfile"]["extensions"] = []
    vms = [flexible_vm("api_a"), flexible_vm("api_b")]
    if options.pop("unhealthy", False):
        for vm in vms:
            vm["properties"]["instanceView"]["vmHealth"]["status"]["code"] = "HealthState/unhealthy"
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, answer)])
    arm.route("GET", r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachines\?", [(200, {}, {"value": vms})])
    serve_all(arm)

    code, result = preflight(capsys, **options)

    assert code == 0 and "failed" not in result, result
    assert words in result["refusal"] and writes(arm) == []
    assert result["preflight"]["scale_set"]["name"] == "api" and len(result["preflight"]["instances"]) == 2
    # the same options without preflight fail with that message
    _code, plain = preflight(capsys, preflight=False, **options)
    assert plain["failed"] is True and plain["msg"] == result["refusal"]


def test_a_missing_scale_set_is_a_refusal_with_nothing_read(arm, capsys):
    arm.route("GET", VMSS_PATH + r"\?", [arm_error("ResourceNotFound", "not found", 404)])
    code, result = preflight(capsys)
    assert code == 0 and "does not exist" in result["refusal"]
    assert result["preflight"] == {"scale_set": None, "instances": [], "autoscale_settings": []}
    assert reads(arm, "autoscalesettings") == [] and reads(arm, "/virtualMachines?") == []


def test_a_fault_on_a_preflight_read_fails_as_an_interruption(arm, capsys, sleeps):
    serve_all(arm, answer=arm_error("ServiceUnavailable", "busy", 503))
    code, result = preflight(capsys, image=dict(IMAGE, version="1.1.0"))
    assert sum(sleeps) > 0                                          # retried first
    assert code == 1 and result["failed"] is True and result["status"] == "interrupted"
    assert "ServiceUnavailable" in result["msg"] and "refusal" not in result and writes(arm) == []


def test_an_azure_error_on_a_preflight_read_fails_naming_it(arm, capsys):
    serve_all(arm, answer=arm_error("AuthorizationFailed", "The client 'x' does not have authorization to perform action "
                                                           "'Microsoft.Insights/autoscalesettings/read'.", 403))
    code, result = preflight(capsys)
    assert code == 1 and "Microsoft.Insights/autoscalesettings/read" in result["msg"]
    assert "autoscale settings that target scale set payments/api" in result["msg"]
    assert result["status"] == "halted" and writes(arm) == []
