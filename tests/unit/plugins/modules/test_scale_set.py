# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set over the real SDK pipeline: what is sent (and not), ETags, check mode, diff, failures."""

from __future__ import annotations

import copy
import json

from azure_fakes import arm_error
from module_runner import ARM, SUB, body_of, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import scale_set

VMSS_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets/api"
VMSS_ID = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB
OPERATION = ARM + "/providers/Microsoft.Compute/locations/westeurope/operations/op-1?api-version=2026-04-01"
LRO = {"Azure-AsyncOperation": OPERATION, "retry-after-ms": "10"}


def resource(capacity=2, etag='"7"', mode="Uniform", **props):
    doc = {"id": VMSS_ID, "name": "api", "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "westeurope",
           "etag": etag, "tags": {"team": "payments", "owner": "platform"},
           "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": capacity},
           "properties": {"orchestrationMode": mode, "provisioningState": "Succeeded", "singlePlacementGroup": True,
                          "upgradePolicy": {"mode": "Manual"},
                          "virtualMachineProfile": {
                              "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu",
                                                                    "sku": "server", "version": "latest"}},
                              "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser"}}}}
    doc["properties"].update(props)
    return doc


def vm(instance_id, latest=True):
    return {"name": "api_%s" % instance_id, "instanceId": instance_id, "id": VMSS_ID + "/virtualMachines/" + instance_id,
            "properties": {"latestModelApplied": latest, "provisioningState": "Succeeded"}}


def serve(arm, current, after=None, vms=None):
    """GET answers ``current`` until a write succeeded, then ``after``."""
    state = {"doc": current}

    def get(request):
        return (200, {}, state["doc"]) if state["doc"] is not None else arm_error("ResourceNotFound", "not found", 404)

    def write(request):
        state["doc"] = after
        return 200, LRO, after

    arm.route("GET", VMSS_PATH + r"\?", [get])
    arm.route("PATCH", VMSS_PATH + r"\?", [write])
    arm.route("PUT", VMSS_PATH + r"\?", [lambda request: (write(request)[0] + 1, LRO, after)])
    arm.route("GET", r"/operations/op-1", [(200, {}, {"status": "Succeeded"})])
    arm.route("GET", VMSS_PATH + r"/virtualMachines\?", [(200, {}, {"value": vms or []})])
    arm.route("GET", r"/resourcegroups/payments\?", [(200, {}, {"location": "westeurope", "name": "payments"})])


def run(args, capsys):
    base = {"resource_group": "payments", "name": "api", "wait_sleep": 0.01}
    return run_module(scale_set, dict(base, **args), capsys)


def test_idempotent_run_reads_and_writes_nothing(arm, capsys, sleeps):
    serve(arm, resource(), vms=[vm("0"), vm("3", latest=False)])
    code, result = run({"sku": {"capacity": 2, "name": "standard_d2s_v5"}, "tags": {"team": "payments"},
                        "upgrade_policy": {"mode": "Manual"}, "orchestration_mode": "Uniform",
                        "image": {"publisher": "canonical", "offer": "ubuntu", "sku": "server"}}, capsys)
    assert code == 0 and result["changed"] is False and result["changes"] == []
    assert writes(arm) == []
    assert result["instances_not_on_latest_model"] == 1
    assert result["arm_requests"] == 2  # the scale set, its instances
    assert result["scale_set"]["name"] == "api" and result["scale_set"]["resource_group"] == "payments"


def test_update_patches_only_the_difference_with_the_etag_read(arm, capsys, sleeps):
    serve(arm, resource(), after=resource(capacity=5, etag='"8"'), vms=[vm(str(i)) for i in (0, 2, 5, 6, 9)])
    code, result = run({"sku": {"capacity": 5}}, capsys)
    assert code == 0 and result["changed"] is True and result["changes"] == ["sku.capacity"]
    [patch] = writes(arm)
    assert patch.method == "PATCH" and body_of(patch) == {"sku": {"capacity": 5}}
    assert patch.headers["If-Match"] == '"7"'
    assert result["scale_set"]["sku"]["capacity"] == 5
    assert "diff" not in result


def test_diff_shows_before_and_after_of_what_differs(arm, capsys, sleeps):
    serve(arm, resource(), after=resource())
    code, result = run({"upgrade_policy": {"mode": "Rolling"}, "network_profile": {"health_probe_id": "/probe"},
                        "tags": {"team": "payments", "env": "prod"}, "_ansible_diff": True}, capsys)
    assert code == 0
    assert result["diff"] == {"before": {"upgrade_policy": {"mode": "Manual"}, "network_profile": {"health_probe_id": None},
                                         "tags": {"env": None}},
                              "after": {"upgrade_policy": {"mode": "Rolling"}, "network_profile": {"health_probe_id": "/probe"},
                                        "tags": {"env": "prod"}}}
    assert body_of(writes(arm)[0])["tags"] == {"team": "payments", "owner": "platform", "env": "prod"}


def test_check_mode_says_what_would_change_and_writes_nothing(arm, capsys, sleeps):
    serve(arm, resource())
    code, result = run({"sku": {"capacity": 9}, "_ansible_check_mode": True, "_ansible_diff": True}, capsys)
    assert code == 0 and result["changed"] is True and result["changes"] == ["sku.capacity"]
    assert result["diff"] == {"before": {"sku": {"capacity": 2}}, "after": {"sku": {"capacity": 9}}}
    assert writes(arm) == [] and result["scale_set"]["sku"]["capacity"] == 2


def test_someone_else_changed_it_between_read_and_write(arm, capsys, sleeps):
    serve(arm, resource())
    arm.routes.insert(0, ("PATCH", __import__("re").compile(VMSS_PATH), [arm_error(
        "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met.", 412)]))
    code, result = run({"sku": {"capacity": 3}}, capsys)
    assert code == 1
    assert result["msg"] == (
        "Failed to update scale set payments/api: PreconditionFailed: The condition specified using HTTP conditional "
        "header(s) is not met. (Scale set payments/api was changed by someone else after this task read it (its ETag "
        "no longer matches); nothing was written: run the task again to compare with the new state)")
    assert result["error"]["status"] == 412
    assert [request.method for request in writes(arm)] == ["PATCH"]


def test_create_puts_if_none_match_in_the_resource_group_region(arm, capsys, sleeps):
    created = resource(capacity=2)
    serve(arm, None, after=created, vms=[vm("1"), vm("3")])
    code, result = run({"orchestration_mode": "Uniform", "sku": {"name": "Standard_D2s_v5", "capacity": 2},
                        "image": "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/i",
                        "os_profile": {"computer_name_prefix": "api", "admin_username": "azureuser",
                                       "admin_password": "Hunter2-Hunter2", "custom_data": "#cloud-config"},
                        "_ansible_diff": True}, capsys)
    assert code == 0 and result["changed"] is True
    [put] = writes(arm)
    assert put.method == "PUT" and put.headers["If-None-Match"] == "*"
    body = body_of(put)
    assert body["location"] == "westeurope"
    assert body["properties"]["virtualMachineProfile"]["osProfile"]["adminPassword"] == "Hunter2-Hunter2"
    assert "Hunter2" not in json.dumps(result) and "cloud-config" not in json.dumps(result)
    assert result["diff"]["before"] == {} and result["diff"]["after"]["sku"] == {"name": "Standard_D2s_v5", "capacity": 2}
    assert result["instances_not_on_latest_model"] == 0


def test_create_in_check_mode_returns_the_would_be_scale_set(arm, capsys, sleeps):
    serve(arm, None)
    code, result = run({"orchestration_mode": "Flexible", "location": "northeurope", "sku": {"capacity": 0},
                        "os_profile": {"admin_password": "Hunter2-Hunter2"}, "_ansible_check_mode": True}, capsys)
    assert code == 0 and result["changed"] is True and writes(arm) == []
    assert result["scale_set"]["orchestration_mode"] == "Flexible" and result["scale_set"]["location"] == "northeurope"
    assert result["scale_set"]["id"] == VMSS_ID and result["instances_not_on_latest_model"] is None
    assert "Hunter2" not in json.dumps(result)


def test_invalid_combinations_fail_before_any_write(arm, capsys, sleeps):
    serve(arm, resource(mode="Flexible"))
    code, result = run({"orchestration_mode": "Uniform", "priority_mix_policy": {"base_regular_priority_count": 1},
                        "upgrade_policy": {"rolling_upgrade_policy": {"max_batch_instance_percent": 3}}}, capsys)
    assert code == 1 and writes(arm) == []
    assert result["msg"].startswith("Invalid options for scale set payments/api: orchestration_mode cannot be changed")
    assert len(result["errors"]) == 3


def test_orchestration_mode_is_required_to_create(arm, capsys, sleeps):
    serve(arm, None)
    code, result = run({"sku": {"capacity": 1}}, capsys)
    assert code == 1 and "orchestration_mode is required" in result["msg"] and writes(arm) == []


def test_delete_and_absent(arm, capsys, sleeps):
    serve(arm, resource())
    arm.route("DELETE", VMSS_PATH + r"\?", [(202, {"Location": OPERATION.replace("operations", "operationResults"),
                                                   "retry-after-ms": "10"}, None)])
    arm.route("GET", r"/operationResults/op-1", [(200, {}, None)])
    code, result = run({"state": "absent", "_ansible_diff": True}, capsys)
    assert code == 0 and result["changed"] is True and result["scale_set"] is None
    assert [request.method for request in writes(arm)] == ["DELETE"]
    assert result["diff"] == {"before": {"state": "present"}, "after": {"state": "absent"}}


def test_absent_already(arm, capsys, sleeps):
    serve(arm, None)
    code, result = run({"state": "absent"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])


def test_capacity_change_waits_for_the_instances(arm, capsys, sleeps):
    growing = [[vm("0")], [vm("0"), dict(vm("4"), properties={"provisioningState": "Creating"})],
               [vm("0"), vm("4")]]
    serve(arm, resource(capacity=1), after=resource(capacity=2))
    arm.routes.insert(0, ("GET", __import__("re").compile(VMSS_PATH + r"/virtualMachines\?"),
                          [(200, {}, {"value": listed}) for listed in growing]))
    code, result = run({"sku": {"capacity": 2}}, capsys)
    assert code == 0
    lists = [r for r in arm.requests if r.method == "GET" and "/virtualMachines?" in r.url]
    assert len(lists) == 4  # three checks until provisioned, one count
    assert result["instances_not_on_latest_model"] == 0


def test_secrets_are_not_logged(arm, capsys, sleeps):
    serve(arm, resource(), after=resource())
    code, result = run({"os_profile": {"admin_password": "Hunter2-Hunter2"},
                        "extensions": [{"name": "x", "protected_settings": {"token": "Sekr1t-token"}}]}, capsys)
    assert code == 0
    text = json.dumps(result)
    assert "Hunter2" not in text and "Sekr1t" not in text
    assert result["changes"] == ["extensions[x]"]
    [patch] = writes(arm)
    assert body_of(patch)["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"] == [
        {"name": "x", "properties": {"protectedSettings": {"token": "Sekr1t-token"}}}]


def test_read_failure_is_one_message(arm, capsys, sleeps):
    arm.route("GET", VMSS_PATH, [arm_error("AuthorizationFailed", "no read", 403)])
    code, result = run({"sku": {"capacity": 1}}, capsys)
    assert code == 1 and result["msg"] == "Failed to get scale set payments/api: AuthorizationFailed: no read"


def test_resource_doc_is_not_mutated():
    before = resource()
    copy_before = copy.deepcopy(before)
    from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model
    model.update_body(model.differences({"tags": {"a": "b"}}, before), {"tags": {"a": "b"}}, before)
    assert before == copy_before
