# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set_info end to end inside one process: options -> auth -> SDK -> HTTP (scripted) -> result."""

from __future__ import annotations

import json
import os

from azure_fakes import arm_error
from module_runner import ARM, SUB, run_module
from ansible_collections.fleetops.vmss.plugins.modules import scale_set_info

RG_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets"


def scale_set(name, rg="payments"):
    return {"id": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (SUB, rg, name),
            "name": name, "location": "westeurope", "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 2},
            "properties": {"orchestrationMode": "Uniform", "provisioningState": "Succeeded",
                           "upgradePolicy": {"mode": "Rolling"},
                           "virtualMachineProfile": {"osProfile": {"adminUsername": "ops", "adminPassword": "pw"}}}}


def run(args, capsys):
    return run_module(scale_set_info, args, capsys)


def test_one_scale_set(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    code, result = run({"resource_group": "payments", "name": "api"}, capsys)
    assert code == 0 and result["changed"] is False
    [found] = result["scale_sets"]
    assert (found["name"], found["resource_group"], found["orchestration_mode"], found["sku"]["capacity"]) == (
        "api", "payments", "Uniform", 2)
    assert found["virtual_machine_profile"]["os_profile"] == {"admin_username": "ops"}
    assert "pw" not in json.dumps(result)
    assert arm.credential.kwargs == {"tenant_id": "tenant", "client_id": "client", "client_secret": "secret",
                                     "authority": "https://login.microsoftonline.com", "connection_verify": True}
    assert arm.credential.scopes == [("https://management.core.windows.net/.default",)]


def test_absent_scale_set_is_an_empty_list(arm, capsys):
    arm.route("GET", RG_PATH + r"/gone\?", [arm_error("ResourceNotFound", "not found", 404)])
    code, result = run({"resource_group": "payments", "name": "gone"}, capsys)
    assert (code, result["changed"], result["scale_sets"]) == (0, False, [])


def test_every_page_of_a_resource_group(arm, capsys):
    page_two = ARM + "/resourceGroups/payments/providers/Microsoft.Compute/virtualMachineScaleSets?api-version=2026-04-01&$skiptoken=2"
    arm.route("GET", RG_PATH + r"\?api-version=[^&]+$", [(200, {}, {"value": [scale_set("a")], "nextLink": page_two})])
    arm.route("GET", r"skiptoken=2", [(200, {}, {"value": [scale_set("b")]})])
    code, result = run({"resource_group": "payments"}, capsys)
    assert code == 0
    assert [s["name"] for s in result["scale_sets"]] == ["a", "b"]


def test_absent_resource_group_is_an_empty_list(arm, capsys):
    arm.route("GET", RG_PATH, [arm_error("ResourceGroupNotFound", "Resource group 'payments' could not be found.", 404)])
    code, result = run({"resource_group": "payments"}, capsys)
    assert (code, result["scale_sets"]) == (0, [])


def test_whole_subscription(arm, capsys):
    everything = [scale_set("a", "rg1"), scale_set("b", "rg2")]
    arm.route("GET", r"/subscriptions/%s/providers/Microsoft\.Compute/virtualMachineScaleSets\?" % SUB,
              [(200, {}, {"value": everything})])
    code, result = run({}, capsys)
    assert code == 0
    assert [(s["resource_group"], s["name"]) for s in result["scale_sets"]] == [("rg1", "a"), ("rg2", "b")]


def test_check_mode_reads_as_usual(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    code, result = run({"resource_group": "payments", "name": "api", "_ansible_check_mode": True}, capsys)
    assert code == 0 and len(result["scale_sets"]) == 1


def test_arm_error_is_one_message(arm, capsys):
    arm.route("GET", RG_PATH, [arm_error(
        "AuthorizationFailed", "The client 'x' does not have authorization to perform action "
        "'Microsoft.Compute/virtualMachineScaleSets/read'.", 403, "req-9")])
    code, result = run({"resource_group": "payments"}, capsys)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == ("Failed to list scale sets in resource group payments: AuthorizationFailed: The client 'x' "
                             "does not have authorization to perform action 'Microsoft.Compute/virtualMachineScaleSets/read'.")
    assert result["error"] == {"code": "AuthorizationFailed", "status": 403, "request_id": "req-9",
                               "message": result["msg"].split("AuthorizationFailed: ")[1]}
    assert "exception" not in result


def test_name_needs_a_resource_group(arm, capsys):
    code, result = run({"name": "api"}, capsys)
    assert code == 1 and "resource_group" in result["msg"]
    assert arm.requests == []


def test_missing_credentials_fail_before_any_request(arm, capsys, monkeypatch):
    monkeypatch.delenv("AZURE_SECRET")
    code, result = run({"resource_group": "payments"}, capsys)
    assert code == 1
    assert result["msg"].startswith("Missing Azure credentials: set secret (AZURE_SECRET) as options, ")
    assert arm.requests == []


def test_secret_option_is_not_logged(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    result = run({"resource_group": "payments", "name": "api", "secret": "TopSecretValue"}, capsys)[1]
    assert "TopSecretValue" not in json.dumps(result)


def test_malformed_tenant_is_reported_not_raised(arm, capsys, monkeypatch):
    monkeypatch.undo()  # the real azure.identity, whose ClientSecretCredential validates the tenant
    for name in list(os.environ):
        if name.startswith("AZURE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/nonexistent")
    code, result = run({"subscription_id": SUB, "client_id": "c", "secret": "a-long-secret", "tenant": "not a tenant!"}, capsys)
    assert code == 1
    assert result["msg"].startswith("Invalid Azure credentials: ")


def test_include_instance_view_rolling_upgrade_and_os_upgrade_history(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    arm.route("GET", RG_PATH + r"/api/instanceView\?", [(200, {}, {
        "virtualMachine": {"statusesSummary": [{"code": "ProvisioningState/succeeded", "count": 9},
                                               {"code": "ProvisioningState/failed/VMExtensionProvisioningError", "count": 1}]},
        "extensions": [{"name": "health", "statusesSummary": [{"code": "ProvisioningState/succeeded", "count": 10}]}],
        "statuses": [{"code": "ProvisioningState/succeeded"}]})])
    arm.route("GET", RG_PATH + r"/api/rollingUpgrades/latest\?", [(200, {}, {
        "location": "westeurope", "properties": {"runningStatus": {"code": "Faulted", "lastAction": "Start"},
                                                 "progress": {"successfulInstanceCount": 2, "failedInstanceCount": 1},
                                                 "error": {"code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade"}}})])
    arm.route("GET", RG_PATH + r"/api/osUpgradeHistory\?", [(200, {}, {"value": [
        {"properties": {"runningStatus": {"code": "Completed"}, "startedBy": "Platform"}, "location": "westeurope"}]})])
    code, result = run({"resource_group": "payments", "name": "api",
                        "include": ["instance_view", "rolling_upgrade", "os_upgrade_history"]}, capsys)
    assert code == 0
    [found] = result["scale_sets"]
    assert found["instance_view"]["statuses_summary"][1] == {
        "code": "ProvisioningState/failed/VMExtensionProvisioningError", "count": 1}
    assert found["instance_view"]["extensions"][0]["name"] == "health"
    assert found["rolling_upgrade"]["running_status"]["code"] == "Faulted"
    assert found["rolling_upgrade"]["progress"]["failed_instance_count"] == 1
    assert found["os_upgrade_history"] == [{"running_status": {"code": "Completed"}, "started_by": "Platform",
                                            "location": "westeurope"}]
    assert result["arm_requests"] == 4


def test_no_rolling_upgrade_yet_is_none(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    arm.route("GET", RG_PATH + r"/api/rollingUpgrades/latest", [arm_error("NotFound", "The entity was not found.", 404)])
    code, result = run({"resource_group": "payments", "name": "api", "include": ["rolling_upgrade"]}, capsys)
    assert code == 0 and result["scale_sets"][0]["rolling_upgrade"] is None
    assert "instance_view" not in result["scale_sets"][0]


def test_include_failure_names_the_scale_set(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [(200, {}, scale_set("api"))])
    arm.route("GET", RG_PATH + r"/api/instanceView", [arm_error("AuthorizationFailed", "no", 403)])
    code, result = run({"resource_group": "payments", "name": "api", "include": ["instance_view"]}, capsys)
    assert code == 1 and result["msg"] == "Failed to read the status of scale set payments/api: AuthorizationFailed: no"


def flexible_vm(name, provisioning, health_status):
    return {"name": name, "id": "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute/virtualMachines/%s"
            % (SUB, name), "properties": {
                "virtualMachineScaleSet": {"id": scale_set("flex")["id"]},
                "instanceView": {"statuses": [{"code": provisioning}, {"code": "PowerState/running"}],
                                 "extensions": [{"name": "health", "type": "Microsoft.ManagedServices.ApplicationHealthLinux",
                                                 "statuses": [{"code": health_status}]}]}}}


def test_flexible_instance_view_comes_from_the_vms_never_the_scale_set(arm, capsys):
    flexible = scale_set("flex")
    flexible["properties"]["orchestrationMode"] = "Flexible"
    arm.route("GET", RG_PATH + r"/flex\?", [(200, {}, flexible)])
    # Azure refuses this on Flexible (OperationNotAllowed); the module must not send it at all.
    arm.route("GET", RG_PATH + r"/flex/instanceView", [arm_error("OperationNotAllowed", "not allowed", 409)])
    arm.route("GET", r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachines\?", [(200, {}, {"value": [
        flexible_vm("flex_a", "ProvisioningState/succeeded", "ProvisioningState/succeeded"),
        flexible_vm("flex_b", "ProvisioningState/failed/VMExtensionProvisioningError", "ProvisioningState/failed"),
        flexible_vm("flex_c", "ProvisioningState/succeeded", "ProvisioningState/succeeded")]})])
    code, result = run({"resource_group": "payments", "name": "flex", "include": ["instance_view"]}, capsys)
    assert code == 0, result
    assert result["scale_sets"][0]["instance_view"] == {
        "statuses_summary": [{"code": "ProvisioningState/failed/VMExtensionProvisioningError", "count": 1},
                             {"code": "ProvisioningState/succeeded", "count": 2}],
        "extensions": [{"name": "health", "statuses_summary": [{"code": "ProvisioningState/failed", "count": 1},
                                                               {"code": "ProvisioningState/succeeded", "count": 2}]}],
        "statuses": None, "orchestration_services": None}
    assert not [r for r in arm.requests if "/instanceView" in r.url.split("?")[0]]
    [listed] = [r for r in arm.requests if "/virtualMachines?" in r.url]
    assert "expand=instanceView" in listed.url and "virtualMachineScaleSet%2Fid" in listed.url.replace("/", "%2F")


def test_a_fault_that_outlasts_the_retries_fails_as_transient(arm, capsys, sleeps):
    # 503 on every try: the SDK retries, then the module fails saying the failure was a fault, not an answer
    arm.route("GET", RG_PATH + r"/api\?", [arm_error("ServerBusy", "try later", 503, "req-503")])
    code, result = run({"resource_group": "payments", "name": "api"}, capsys)
    assert code == 1 and result["transient"] is True and result["error"]["status"] == 503
    assert len(arm.requests) > 1 and sleeps   # retried first


def test_an_answer_is_not_transient(arm, capsys):
    arm.route("GET", RG_PATH + r"/api\?", [arm_error("InvalidParameter", "bad", 400)])
    code, result = run({"resource_group": "payments", "name": "api"}, capsys)
    assert code == 1 and "transient" not in result and result["error"]["code"] == "InvalidParameter"
