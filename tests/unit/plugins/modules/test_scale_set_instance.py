# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set_instance and scale_set_instance_info over the real SDK pipeline: one batch call, per-VM calls
for Flexible, protected instances skipped, per-instance outcomes, request counts."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from azure_fakes import arm_error
from module_runner import ARM, SUB, body_of, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import scale_set_instance, scale_set_instance_info

RG = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute" % SUB
VMSS_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets/api"
VMSS_ID = RG + "/virtualMachineScaleSets/api"
OPERATION = ARM + "/providers/Microsoft.Compute/locations/westeurope/operations/%s?api-version=2026-04-01"


def scale_set(mode="Uniform"):
    return {"id": VMSS_ID, "name": "api", "location": "westeurope", "sku": {"name": "Standard_D2s_v5", "capacity": 3},
            "properties": {"orchestrationMode": mode, "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"id": "/img/versions/2"}}}}}


def uniform_vm(instance_id, latest=True, protection=None, failed=None, power="running"):
    statuses = [{"code": "ProvisioningState/failed/%s" % failed, "message": "Enable failed"} if failed else
                {"code": "ProvisioningState/succeeded"}, {"code": "PowerState/%s" % power}]
    props = {"latestModelApplied": latest, "provisioningState": "Failed" if failed else "Succeeded",
             "instanceView": {"statuses": statuses, "vmHealth": {"status": {"code": "HealthState/healthy"}}}}
    if protection:
        props["protectionPolicy"] = protection
    return {"name": "api_%s" % instance_id, "instanceId": instance_id, "id": VMSS_ID + "/virtualMachines/" + instance_id,
            "etag": '"3"', "properties": props}


def flexible_vm(name, version="2"):
    return {"name": name, "id": RG + "/virtualMachines/" + name,
            "properties": {"virtualMachineScaleSet": {"id": VMSS_ID}, "provisioningState": "Succeeded",
                           "storageProfile": {"imageReference": {"id": "/img/versions/" + version}},
                           "instanceView": {"statuses": [{"code": "PowerState/running"}]}}}


def lro(name, status="Succeeded", error=None):
    body = {"status": status}
    if error:
        body["error"] = error
    return (202, {"Azure-AsyncOperation": OPERATION % name, "retry-after-ms": "10"}, None), body


def serve(arm, mode, before, after=None):
    answers = [(200, {}, {"value": before}), (200, {}, {"value": after if after is not None else before})]
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, scale_set(mode))])
    if mode == "Uniform":
        arm.route("GET", VMSS_PATH + r"/virtualMachines\?", answers)
    else:
        arm.route("GET", r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachines\?", answers)


def run(module, args, capsys):
    base = {"resource_group": "payments", "name": "api"}
    if module is scale_set_instance:
        base["wait_sleep"] = 0.01
    return run_module(module, dict(base, **args), capsys)


def test_upgrade_is_one_batch_call_and_protected_instances_are_left_alone(arm, capsys, sleeps):
    guarded = {"protectFromScaleSetActions": True}
    serve(arm, "Uniform", [uniform_vm("0", False), uniform_vm("3", False, guarded), uniform_vm("4", False),
                           uniform_vm("7")],
          [uniform_vm("0"), uniform_vm("3", False, guarded), uniform_vm("4"), uniform_vm("7")])
    accepted, status = lro("up")
    arm.route("POST", VMSS_PATH + r"/manualupgrade\?", [accepted])
    arm.route("GET", r"/operations/up", [(200, {}, status)])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "upgrade"}, capsys)
    assert code == 0 and result["changed"] is True
    [post] = writes(arm)
    assert body_of(post) == {"instanceIds": ["0", "4"]}
    outcomes = {entry["instance_id"]: (entry["outcome"], entry["reason"]) for entry in result["instances"]}
    assert outcomes == {"0": ("succeeded", None), "4": ("succeeded", None),
                        "3": ("skipped", "protected from scale-set actions (protect_from_scale_set_actions)"),
                        "7": ("unchanged", "already on the latest model")}
    assert result["summary"] == {"succeeded": 2, "skipped": 1, "unchanged": 1}


def test_failed_instance_is_reported_and_fails_the_task(arm, capsys, sleeps):
    serve(arm, "Uniform", [uniform_vm("0", False), uniform_vm("1", False)],
          [uniform_vm("0"), uniform_vm("1", False, failed="VMExtensionProvisioningError")])
    accepted, status = lro("up", "Failed", {"code": "VMExtensionProvisioningError", "message": "Enable failed",
                                            "target": "1"})
    arm.route("POST", VMSS_PATH + r"/manualupgrade\?", [accepted])
    arm.route("GET", r"/operations/up", [(200, {}, status)])
    code, result = run(scale_set_instance, {"not_on_latest_model": True, "action": "upgrade"}, capsys)
    assert code == 1 and result["changed"] is True
    assert result["msg"] == ("Failed to upgrade 1 of 2 instances of scale set payments/api: "
                             "VMExtensionProvisioningError: Enable failed")
    assert [(e["instance_id"], e["outcome"], (e["error"] or {}).get("code")) for e in result["instances"]] == [
        ("0", "succeeded", None), ("1", "failed", "VMExtensionProvisioningError")]


def test_check_mode_plans_without_writing(arm, capsys, sleeps):
    serve(arm, "Uniform", [uniform_vm("0"), uniform_vm("1", power="deallocated")])
    code, result = run(scale_set_instance, {"instance_ids": ["0", "1"], "action": "start", "_ansible_check_mode": True},
                       capsys)
    assert code == 0 and result["changed"] is True and writes(arm) == []
    assert [(e["instance_id"], e["outcome"]) for e in result["instances"]] == [("0", "unchanged"), ("1", "planned")]


def test_nothing_to_do_is_no_change(arm, capsys, sleeps):
    serve(arm, "Uniform", [uniform_vm("0"), uniform_vm("1")])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "upgrade"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])


def test_unknown_instance_fails_before_any_write(arm, capsys, sleeps):
    serve(arm, "Uniform", [uniform_vm("0")])
    code, result = run(scale_set_instance, {"instance_ids": ["0", "12"], "action": "restart"}, capsys)
    assert code == 1 and writes(arm) == []
    assert result["msg"] == "Failed to restart instances of scale set payments/api: not instances of the scale set: 12."


def test_protection_is_one_put_per_instance_with_its_etag(arm, capsys, sleeps):
    serve(arm, "Uniform", [uniform_vm("0"), uniform_vm("2", protection={"protectFromScaleIn": True})])
    arm.route("PUT", VMSS_PATH + r"/virtualMachines/0\?", [(200, {}, uniform_vm("0"))])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "protect", "protect_from_scale_in": True},
                       capsys)
    assert code == 0
    [put] = writes(arm)
    assert put.headers["If-Match"] == '"3"'
    assert body_of(put) == {"location": "westeurope", "properties": {"protectionPolicy": {
        "protectFromScaleIn": True, "protectFromScaleSetActions": False}}}
    assert [e["outcome"] for e in result["instances"]] == ["succeeded", "unchanged"]


def test_flexible_restart_is_one_call_per_vm_and_upgrade_a_batch_of_names(arm, capsys, sleeps):
    vms = [flexible_vm("api_a1"), flexible_vm("api_b2", version="1")]
    serve(arm, "Flexible", vms)
    for name in ("api_a1", "api_b2"):
        accepted, status = lro(name)
        arm.route("POST", r"/virtualMachines/%s/restart\?" % name, [accepted])
        arm.route("GET", r"/operations/%s" % name, [(200, {}, status)])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "restart"}, capsys)
    assert code == 0 and sorted(re.sub(r"\?.*", "", w.url).rsplit("/", 2)[-2] for w in writes(arm)) == ["api_a1", "api_b2"]
    list_request = [r for r in arm.requests if "/virtualMachines?" in r.url][0]
    query = unquote_plus(list_request.url)
    assert "$filter='virtualMachineScaleSet/id' eq '%s'" % VMSS_ID in query and "$expand=instanceView" in query

    arm.requests.clear()
    accepted, status = lro("up")
    arm.route("POST", VMSS_PATH + r"/manualupgrade\?", [accepted])
    arm.route("GET", r"/operations/up", [(200, {}, status)])
    code, result = run(scale_set_instance, {"not_on_latest_model": True, "action": "upgrade"}, capsys)
    [post] = writes(arm)
    assert body_of(post) == {"instanceIds": ["api_b2"]}


def test_flexible_protection_is_refused_before_any_write(arm, capsys, sleeps):
    serve(arm, "Flexible", [flexible_vm("api_a1")])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "protect", "protect_from_scale_in": True},
                       capsys)
    assert code == 1 and "not available for Flexible" in result["msg"] and writes(arm) == []


def test_missing_scale_set(arm, capsys, sleeps):
    arm.route("GET", VMSS_PATH, [arm_error("ResourceNotFound", "nope", 404)])
    code, result = run(scale_set_instance, {"instance_ids": ["*"], "action": "start"}, capsys)
    assert code == 1 and "does not exist" in result["msg"]


def test_instance_info_counts_every_page(arm, capsys, sleeps):
    page = VMSS_ID.join(["https://management.azure.com", "/virtualMachines?api-version=2026-04-01&$skiptoken=%d"])
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, scale_set())])
    arm.route("GET", r"skiptoken=100", [(200, {}, {"value": [uniform_vm(str(i)) for i in range(100, 150)]})])
    arm.route("GET", VMSS_PATH + r"/virtualMachines\?", [(200, {}, {"value": [uniform_vm(str(i)) for i in range(100)],
                                                                    "nextLink": page % 100})])
    code, result = run(scale_set_instance_info, {}, capsys)
    assert code == 0 and result["changed"] is False
    assert len(result["instances"]) == 150 and result["arm_requests"] == 3
    assert result["instances"][0]["health_state"] == "Healthy"
    assert result["scale_set"] == {"id": VMSS_ID, "orchestration_mode": "Uniform", "capacity": 3}
    assert "$expand=instanceView" in [r for r in arm.requests if "virtualMachines?" in r.url][0].url


def test_instance_info_of_a_missing_scale_set_is_empty(arm, capsys, sleeps):
    arm.route("GET", VMSS_PATH, [arm_error("ResourceNotFound", "nope", 404)])
    code, result = run(scale_set_instance_info, {}, capsys)
    assert (code, result["instances"], result["arm_requests"]) == (0, [], 1)
