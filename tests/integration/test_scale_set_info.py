# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set_info against the emulator, through ansible-playbook and ansible."""

from __future__ import annotations

from conftest import last_seq, put_resource_group, require_success

RG = "payments-prod"
NAME = "payments-api"


def seed_scale_set(azure, location, rg=RG, name=NAME):
    put_resource_group(azure, rg, location)
    body = {
        "location": location, "tags": {"CostCenter": "payments"},
        "sku": {"name": "Standard_D2s_v3", "capacity": 3},
        "properties": {
            "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 20}},
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                      "sku": "server", "version": "latest"}},
                "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser",
                              "adminPassword": "Sup3r-secret!", "customData": "I2Nsb3VkLWNvbmZpZw=="},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "ipConfigurations": [{"name": "ip", "properties": {"primary": True}}]}}]},
                # Rolling upgrades need a health signal: the Application Health extension on /ready.
                "extensionProfile": {"extensions": [{"name": "health", "properties": {
                    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                    "typeHandlerVersion": "2.0", "autoUpgradeMinorVersion": True,
                    "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"},
                    "protectedSettings": {"token": "hsm-pin-1234"}}}]},
            },
        },
    }
    return azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(rg, name, body).result()


def test_scale_set_info_target(emulator, azure, ansible):
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    seed_scale_set(azure, location)
    require_success(ansible.playbook("scale_set_info", {"rg": RG, "vmss_name": NAME, "location": location}, forked_modules=True))


def test_throttled_reads_are_retried_after_the_time_asked(emulator, azure, ansible, control):
    seed_scale_set(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = max((entry["seq"] for entry in control.traffic()), default=0)
    control.add_fault(kind="429", match={"operation_id": "VirtualMachineScaleSets_Get"}, count=2, retry_after_ms=50)

    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": NAME})

    assert code == 0, result
    assert [s["name"] for s in result["scale_sets"]] == [NAME]
    gets = [entry for entry in control.traffic(since) if entry.get("operation_id") == "VirtualMachineScaleSets_Get"]
    assert [entry["liveResponse"]["statusCode"] for entry in gets] == ["429", "429", "200"]
    assert all(entry["liveRequest"]["headers"]["User-Agent"].startswith("fleetops.vmss/") for entry in gets)


def test_module_reports_the_arm_error_code(emulator, ansible, control):
    # More 503s than the retry policy's budget: the module gives up with ARM's code, no traceback.
    control.add_fault(kind="503", match={"operation_id": "VirtualMachineScaleSets_List"}, count=20, retry_after_ms=10)
    code, result = ansible.module("scale_set_info", {"resource_group": RG})
    assert code != 0
    assert result["msg"] == ("Failed to list scale sets in resource group %s: ServiceUnavailable: "
                             "The service is temporarily unavailable. Please retry later." % RG)
    assert (result["error"]["code"], result["error"]["status"]) == ("ServiceUnavailable", 503)
    assert result["error"]["request_id"]
    assert "exception" not in result


def test_flexible_instance_view_is_made_from_the_vms(emulator, azure, ansible, control):
    """Azure refuses the scale-set instance view on Flexible sets: scale_set_info reads the VMs' own views."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model

    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    put_resource_group(azure, RG, location)
    desired = model.desired_options({
        "orchestration_mode": "Flexible", "platform_fault_domain_count": 1,
        "sku": {"name": "Standard_D2s_v3", "capacity": 2}, "upgrade_policy": {"mode": "Manual"},
        "image": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "1.0.0"},
        "os_profile": {"computer_name_prefix": "flex", "admin_username": "azureuser", "admin_password": "Sup3r-secret-pw!"},
        "application_health": {"protocol": "http", "port": 80, "request_path": "/ready"}})
    azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(
        RG, "flex", model.create_body("flex", desired, location)).result()
    since = last_seq(control)

    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": "flex", "include": ["instance_view"]})

    assert code == 0, result
    [found] = result["scale_sets"]
    assert found["orchestration_mode"] == "Flexible"
    view = found["instance_view"]
    assert sum(entry["count"] for entry in view["statuses_summary"]) == 2
    assert all(entry["code"].startswith("ProvisioningState/") for entry in view["statuses_summary"])
    assert [ext["name"] for ext in view["extensions"]] == [model.DEFAULT_HEALTH_EXTENSION]
    assert (view["statuses"], view["orchestration_services"]) == (None, None)
    operations = [entry.get("operation_id") for entry in control.traffic(since)]
    assert "VirtualMachineScaleSets_GetInstanceView" not in operations
    assert operations.count("VirtualMachines_List") == 1
