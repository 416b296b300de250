# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Results: SDK models and REST dicts to snake_case, flattened, without secrets."""

from __future__ import annotations

import pytest
from azure.mgmt.compute import models
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils._common import (
    argument_shape_errors,
    redact,
    resource_group_of,
    resource_result,
    snake,
    to_snake,
)

SCALE_SET_ID = "/subscriptions/sub/resourceGroups/Payments-Prod/providers/Microsoft.Compute/virtualMachineScaleSets/api"
UAMI = "/subscriptions/sub/resourceGroups/id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/rolloutIdentity"

REST_SCALE_SET = {
    "id": SCALE_SET_ID, "name": "api", "type": "Microsoft.Compute/virtualMachineScaleSets",
    "location": "westeurope", "zones": ["1", "2"], "etag": '"3"',
    "tags": {"CostCenter": "payments", "owner_Team": "x"},
    "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 10},
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAMI: {"principalId": "p", "clientId": "c"}}},
    "properties": {
        "orchestrationMode": "Uniform", "provisioningState": "Succeeded", "uniqueId": "u-1",
        "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 20,
                                                                      "pauseTimeBetweenBatches": "PT0S"}},
        "virtualMachineProfile": {
            "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser", "adminPassword": "hunter2",
                          "customData": "I2Nsb3VkLWNvbmZpZw=="},
            "storageProfile": {
                "imageReference": {"id": "/subscriptions/sub/resourceGroups/img/providers/Microsoft.Compute/galleries/g"
                                         "/images/payments/versions/1.7.1"},
                "osDisk": {"createOption": "FromImage", "diskSizeGB": 64,
                           "managedDisk": {"storageAccountType": "Premium_LRS"}}},
            "networkProfile": {"networkInterfaceConfigurations": [{
                "name": "nic", "properties": {"primary": True, "enableIPForwarding": False, "ipConfigurations": [
                    {"name": "ip", "properties": {"subnet": {"id": "/subnet"}, "privateIPAddressVersion": "IPv4"}}]}}]},
            "extensionProfile": {"extensions": [{
                "name": "health", "type": "Microsoft.Compute/virtualMachineScaleSets/extensions",
                "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                               "typeHandlerVersion": "1.0",
                               "settings": {"protocol": "http", "port": 8080, "requestPath": "/ready"},
                               "protectedSettings": {"token": "s3cret"}}}]},
        },
    },
}


@pytest.mark.parametrize("name, expected", [
    ("osProfile", "os_profile"),
    ("maxBatchInstancePercent", "max_batch_instance_percent"),
    ("enableIPForwarding", "enable_ip_forwarding"),
    ("privateIPAddressVersion", "private_ip_address_version"),
    ("diskSizeGB", "disk_size_gb"),
    ("diskIOPSReadWrite", "disk_iops_read_write"),
    ("diskMBpsReadWrite", "disk_mbps_read_write"),
    ("enableAutomaticOSUpgrade", "enable_automatic_os_upgrade"),
    ("doNotRunExtensionsOnOverprovisionedVMs", "do_not_run_extensions_on_overprovisioned_vms"),
    ("platformFaultDomainCount", "platform_fault_domain_count"),
    ("id", "id"),
    ("already_snake", "already_snake"),
])
def test_to_snake(name, expected):
    assert to_snake(name) == expected


@given(st.from_regex(r"[a-z][a-zA-Z0-9]{0,30}", fullmatch=True))
def test_to_snake_is_idempotent_and_lowercase(name):
    once = to_snake(name)
    assert once == once.lower() and to_snake(once) == once


def test_snake_of_an_sdk_model_flattens_properties_and_keeps_user_keys():
    result = snake(models.VirtualMachineScaleSet(REST_SCALE_SET))
    assert result["orchestration_mode"] == "Uniform" and "properties" not in result
    assert result["upgrade_policy"] == {"mode": "Rolling", "rolling_upgrade_policy": {
        "max_batch_instance_percent": 20, "pause_time_between_batches": "PT0S"}}
    assert result["tags"] == {"CostCenter": "payments", "owner_Team": "x"}  # user keys untouched
    assert result["identity"]["user_assigned_identities"] == {UAMI: {"principal_id": "p", "client_id": "c"}}
    nic = result["virtual_machine_profile"]["network_profile"]["network_interface_configurations"][0]
    assert nic["enable_ip_forwarding"] is False
    assert nic["ip_configurations"][0] == {"name": "ip", "subnet": {"id": "/subnet"}, "private_ip_address_version": "IPv4"}
    extension = result["virtual_machine_profile"]["extension_profile"]["extensions"][0]
    assert extension["type"] == "Microsoft.Compute/virtualMachineScaleSets/extensions"
    assert extension["type_properties_type"] == "ApplicationHealthLinux"  # as az shows typePropertiesType
    assert extension["settings"] == {"protocol": "http", "port": 8080, "requestPath": "/ready"}


def test_snake_of_a_plain_dict_equals_snake_of_the_model():
    assert snake(REST_SCALE_SET) == snake(models.VirtualMachineScaleSet(REST_SCALE_SET))


def test_snake_leaves_scalars_and_lists_alone():
    assert snake([1, "a", None, {"aB": [{"cD": 2}]}]) == [1, "a", None, {"a_b": [{"c_d": 2}]}]


def test_flattened_names_do_not_depend_on_the_envelope_keys_present():
    with_type = snake({"name": "h", "type": "Microsoft.Compute/virtualMachineScaleSets/extensions",
                       "properties": {"type": "ApplicationHealthLinux", "publisher": "p"}})
    without_type = snake({"name": "h", "properties": {"type": "ApplicationHealthLinux", "publisher": "p"}})
    assert with_type["type_properties_type"] == without_type["type_properties_type"] == "ApplicationHealthLinux"
    assert "type" not in without_type and without_type["publisher"] == "p"


def test_properties_that_is_not_an_envelope_is_kept():
    assert snake({"properties": "text"}) == {"properties": "text"}


def test_redact_drops_secrets_at_any_depth():
    assert redact({"a": [{"admin_password": "x", "b": {"protected_settings": {}, "custom_data": "y", "c": 1}}]}) == {
        "a": [{"b": {"c": 1}}]}


def test_resource_result_has_no_secrets_and_names_the_resource_group():
    result = resource_result(models.VirtualMachineScaleSet(REST_SCALE_SET))
    text = repr(result)
    assert "hunter2" not in text and "s3cret" not in text and "I2Nsb3VkLWNvbmZpZw" not in text
    assert "admin_password" not in text and "protected_settings" not in text
    assert result["resource_group"] == "Payments-Prod"
    assert result["virtual_machine_profile"]["os_profile"] == {"computer_name_prefix": "api", "admin_username": "azureuser"}
    assert result["sku"] == {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 10}


@pytest.mark.parametrize("resource_id, expected", [
    (SCALE_SET_ID, "Payments-Prod"),
    ("/subscriptions/sub/resourcegroups/lower/providers/x", "lower"),
    ("/subscriptions/sub", None),
    (None, None),
    ("/subscriptions/sub/resourceGroups", None),
])
def test_resource_group_of(resource_id, expected):
    assert resource_group_of(resource_id) == expected


def test_azure_module_merges_the_shared_options_and_polls_every_wait_sleep(monkeypatch, tmp_path):
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule

    monkeypatch.setenv("HOME", str(tmp_path))
    args = {"name": "api", "wait_sleep": 2.5, "subscription_id": "sub", "client_id": "client", "secret": "long-secret",
            "tenant": "00000000-0000-0000-0000-000000000002", "cloud_environment": "AzureUSGovernment"}
    with patch_module_args(args):
        module = AzureModule({"name": {"type": "str"}}, wait=True, supports_check_mode=True)
    assert (module.params["wait"], module.params["wait_timeout"], module.params["auth_source"]) == (True, 1800, None)
    assert module.subscription_id == "sub"
    assert module.cloud.resource_manager == "https://management.usgovcloudapi.net"
    factory = module._connect()  # pylint: disable=protected-access
    assert factory.kwargs["polling_interval"] == 2.5
    assert type(factory.credential).__name__ == "ClientSecretCredential"


@pytest.mark.parametrize("error", [None, {"code": "Conflict", "message": "busy", "status": 409, "request_id": "r"}])
def test_fail_from_fails_once_with_the_message_the_arm_error_and_the_result_so_far(
        monkeypatch, tmp_path, capsys, error):
    # pylint: disable=import-outside-toplevel
    import json

    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
    from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure

    monkeypatch.setenv("HOME", str(tmp_path))
    with patch_module_args({"name": "api"}), pytest.raises(SystemExit) as caught:
        module = AzureModule({"name": {"type": "str"}})
        module.fail_from(AzureFailure("Failed to get x: Conflict: busy", error=error, status="halted"),
                         arm_requests=3)
    result = json.loads(capsys.readouterr().out)
    assert caught.value.code == 1 and result["failed"] is True
    assert (result["msg"], result["status"], result["arm_requests"]) == ("Failed to get x: Conflict: busy", "halted", 3)
    assert result.get("error") == error and ("error" in result) == (error is not None)
    assert "transient" not in result


def test_fail_from_says_when_the_failure_was_a_fault_not_an_answer(monkeypatch, tmp_path, capsys):
    # pylint: disable=import-outside-toplevel
    import json

    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
    from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure

    monkeypatch.setenv("HOME", str(tmp_path))
    error = {"code": "ServerBusy", "message": "later", "status": 503, "request_id": "r"}
    failure = AzureFailure("Failed to get x: ServerBusy: later", error=error, transient=True)
    with patch_module_args({"name": "api"}), pytest.raises(SystemExit):
        AzureModule({"name": {"type": "str"}}).fail_from(failure)
    result = json.loads(capsys.readouterr().out)
    assert (result["failed"], result["transient"], result["error"]) == (True, True, error)


SHAPED_SPEC = {
    "name": {"type": "str", "required": True, "aliases": ["scale_set"]},
    "sku": {"type": "dict", "options": {"name": {"type": "str"}, "capacity": {"type": "int"}}},
    "rules": {"type": "list", "elements": "dict", "options": {"trigger": {"type": "dict", "options": {
        "threshold": {"type": "float", "required": True}}}}},
    "tags": {"type": "dict"},
}


@pytest.mark.parametrize("params, errors", [
    ({"name": "web", "sku": {"capacity": 2}, "rules": [{"trigger": {"threshold": 70}}], "tags": 3}, []),
    ({"name": "web", "sku": "name=Standard_D2s_v3 capacity=2"}, []),  # key=value text: Ansible parses it
    ({"name": "web", "sku": '{"capacity": 2}'}, []),
    ({"scale_set": None}, ["name is required and must not be null."]),
    ({"name": "web", "sku": 0}, ["sku must be a dictionary, not int."]),
    ({"name": "web", "sku": "web"}, ["sku must be a dictionary, not str."]),
    ({"name": "web", "rules": [{"trigger": 1}, 2]},
     ["rules[0].trigger must be a dictionary, not int.", "rules[1] must be a dictionary, not int."]),
    ({"name": "web", "rules": [{"trigger": {"threshold": None}}]},
     ["rules[0].trigger.threshold is required and must not be null."]),
])
def test_argument_shape_errors_name_what_ansible_core_would_trip_on(params, errors):
    assert argument_shape_errors(SHAPED_SPEC, params) == errors
