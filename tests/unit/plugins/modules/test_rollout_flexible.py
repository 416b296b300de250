# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout module on a Flexible scale set over the real SDK pipeline (scripted ARM): the manual-upgrade
preview feature ImageReferenceUpgradeForVmoVMs is read before any write, and only for image changes; bad metric_gates
are refused before any request."""

from __future__ import annotations

import pytest

from azure_fakes import arm_error
from module_runner import SUB, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import rollout

RG = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute" % SUB
VMSS_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets/api"
FEATURE_PATH = (r"/subscriptions/%s/providers/Microsoft\.Features/providers/Microsoft\.Compute/features/"
                r"ImageReferenceUpgradeForVmoVMs\?api-version=2021-07-01$" % SUB)
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
HEALTH = {"name": "health", "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                                           "typeHandlerVersion": "2.0", "settings": {"port": 80}}}


def scale_set(mode="Flexible"):
    return {"id": RG + "/virtualMachineScaleSets/api", "name": "api", "location": "westeurope", "etag": '"1"',
            "sku": {"name": "Standard_D2s_v5", "capacity": 2},
            "properties": {"orchestrationMode": mode, "upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
                "storageProfile": {"imageReference": dict(IMAGE, version="1.0.0")},
                "extensionProfile": {"extensions": [HEALTH]}}}}


def flexible_vm(name):
    return {"name": name, "id": RG + "/virtualMachines/" + name, "resources": [HEALTH],
            "properties": {"virtualMachineScaleSet": {"id": RG + "/virtualMachineScaleSets/api"},
                           "provisioningState": "Succeeded", "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                           "storageProfile": {"imageReference": dict(IMAGE, version="1.0.0")},
                           "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"},
                                                         {"code": "PowerState/running"}],
                                            "vmHealth": {"status": {"code": "HealthState/healthy"}}}}}


def feature(state):
    return 200, {}, {"id": "/subscriptions/%s/providers/Microsoft.Features/providers/Microsoft.Compute/features/"
                           "ImageReferenceUpgradeForVmoVMs" % SUB,
                     "name": "Microsoft.Compute/ImageReferenceUpgradeForVmoVMs",
                     "type": "Microsoft.Features/providers/features", "properties": {"state": state}}


def serve(arm, feature_answer, mode="Flexible"):
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, scale_set(mode))])
    arm.route("GET", FEATURE_PATH, [feature_answer])
    arm.route("GET", r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachines\?",
              [(200, {}, {"value": [flexible_vm("api_a"), flexible_vm("api_b")]})])


def run(arm, capsys, check=False, **options):
    args = dict({"resource_group": "payments", "name": "api", "batch_by": "count", "batch_size": 1,
                 "wait_sleep": 0.01}, **options)
    if check:
        args["_ansible_check_mode"] = True
    return run_module(rollout, args, capsys)


def feature_reads(arm):
    return [request for request in arm.requests if "Microsoft.Features" in request.url]


@pytest.mark.parametrize("check", [False, True])
@pytest.mark.parametrize("state", ["NotRegistered", "Registering", "Unregistered"])
def test_unregistered_feature_fails_before_any_write(arm, capsys, state, check):
    serve(arm, feature(state))
    code, result = run(arm, capsys, check=check, image=dict(IMAGE, version="1.1.0"))
    assert code == 1 and result["failed"] is True
    msg = result["msg"]
    for words in ("Microsoft.Compute/ImageReferenceUpgradeForVmoVMs", "(it is %s)" % state,
                  "az feature register --namespace Microsoft.Compute --name ImageReferenceUpgradeForVmoVMs",
                  "az provider register -n Microsoft.Compute", "azure_rolling", "blue_green"):
        assert words in msg
    assert writes(arm) == [] and len(feature_reads(arm)) == 1
    assert result["changed"] is False and result["batches"] == []


def test_feature_not_found_is_not_registered(arm, capsys):
    serve(arm, arm_error("FeatureNotFound", "The feature 'ImageReferenceUpgradeForVmoVMs' could not be found.", 404))
    code, result = run(arm, capsys, image=dict(IMAGE, version="1.1.0"))
    assert code == 1 and "(it is FeatureNotFound)" in result["msg"]
    assert writes(arm) == []


def test_unreadable_feature_names_the_permission(arm, capsys):
    serve(arm, arm_error("AuthorizationFailed", "The client 'x' does not have authorization to perform action "
                                                "'Microsoft.Features/providers/features/read'.", 403))
    code, result = run(arm, capsys, image=dict(IMAGE, version="1.1.0"))
    assert code == 1
    assert "Microsoft.Features/providers/features/read" in result["msg"]
    assert "ImageReferenceUpgradeForVmoVMs" in result["msg"] and "blue_green" in result["msg"]
    assert writes(arm) == []


def test_feature_unreadable_for_a_transient_reason_interrupts_with_the_arm_code(arm, capsys, sleeps):
    serve(arm, arm_error("InternalServerError", "boom", 500))
    code, result = run(arm, capsys, image=dict(IMAGE, version="1.1.0"))
    assert sum(sleeps) == pytest.approx(64.0)   # 7 retries with the documented backoff (recorded, not slept)
    assert code == 1 and "InternalServerError" in result["msg"] and "ImageReferenceUpgradeForVmoVMs" in result["msg"]
    assert result["status"] == "interrupted" and writes(arm) == []


def test_registered_feature_lets_the_plan_through(arm, capsys):
    serve(arm, feature("Registered"))
    code, result = run(arm, capsys, check=True, image=dict(IMAGE, version="1.1.0"))
    assert code == 0, result
    assert result["status"] == "planned" and result["changed"] is True
    assert [b["instance_ids"] for b in result["plan"]["batches"]] == [["api_a"], ["api_b"]]
    assert len(feature_reads(arm)) == 1 and writes(arm) == []


def test_size_only_change_does_not_need_the_feature(arm, capsys):
    serve(arm, feature("NotRegistered"))
    code, result = run(arm, capsys, check=True, model={"sku": {"name": "Standard_D4s_v5"}})
    assert code == 0 and result["status"] == "planned", result
    assert feature_reads(arm) == []


def test_uniform_image_change_does_not_need_the_feature(arm, capsys):
    serve(arm, feature("NotRegistered"), mode="Uniform")
    arm.route("GET", VMSS_PATH + r"/virtualMachines\?", [(200, {}, {"value": []})])
    run(arm, capsys, check=True, image=dict(IMAGE, version="1.1.0"))
    assert feature_reads(arm) == []


def test_metric_gates_without_a_threshold_fail_before_any_request(arm, capsys):
    serve(arm, feature("Registered"))
    code, result = run(arm, capsys, image=dict(IMAGE, version="1.1.0"),
                       metric_gates=[{"metric": "requests/failed", "resource": "web-ai"}, {"metric": "Percentage CPU",
                                                                                           "max": 80, "interval": 30}])
    assert code == 1 and result["msg"].startswith("Invalid options for the rollout of scale set payments/api: ")
    assert result["errors"] == [
        "metric_gates[1] (requests/failed) needs a threshold: max, min or max_ratio_to_baseline.",
        "metric_gates[1] (requests/failed): resource must be a full resource id (/subscriptions/...).",
        "metric_gates[2] (Percentage CPU): interval must be whole minutes (Azure Monitor's grains) and at most the window."]
    assert arm.requests == []


def test_a_batch_gate_it_cannot_write_to_is_refused_before_any_write(arm, capsys, tmp_path):
    serve(arm, feature("Registered"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, result = run(arm, capsys, image=dict(IMAGE, version="1.1.0"), batch_gate=str(blocker / "gate"))
    assert code == 1 and "batch_gate %s is not a directory this module can write to" % (blocker / "gate") in result["msg"]
    assert "Traceback" not in result["msg"] and writes(arm) == []
