# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale set's model: options <-> REST, Azure's rules before any write, minimal PATCH bodies."""

from __future__ import annotations

import base64
import copy

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model

SUB = "/subscriptions/s/resourceGroups/rg/providers"
SUBNET = SUB + "/Microsoft.Network/virtualNetworks/vnet/subnets/app"
POOL = SUB + "/Microsoft.Network/loadBalancers/lb/backendAddressPools/pool"
PROBE = SUB + "/Microsoft.Network/loadBalancers/lb/probes/http"
GALLERY = SUB + "/Microsoft.Compute/galleries/golden/images/payments"

HEALTH = {"name": "HealthExtension", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
    "autoUpgradeMinorVersion": True, "provisioningState": "Succeeded",
    "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"}}}
AGENT = {"name": "agent", "properties": {"publisher": "Contoso", "type": "Agent", "typeHandlerVersion": "1.0",
                                         "settings": {"region": "eu"}}}


def resource(mode="Uniform", **props):
    """A scale set as Azure returns it (defaults filled in, no secrets)."""
    doc = {
        "id": SUB + "/Microsoft.Compute/virtualMachineScaleSets/api", "name": "api", "location": "westeurope",
        "etag": '"4"', "tags": {"team": "payments", "owner": "platform"}, "zones": ["1", "2"],
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 4},
        "properties": {
            "orchestrationMode": mode, "platformFaultDomainCount": 1, "singlePlacementGroup": mode == "Uniform",
            "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {
                "maxBatchInstancePercent": 20, "maxUnhealthyInstancePercent": 20,
                "maxUnhealthyUpgradedInstancePercent": 20, "pauseTimeBetweenBatches": "PT0S"}},
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"id": GALLERY + "/versions/1.7.0"},
                                   "osDisk": {"createOption": "FromImage"}},
                "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser", "linuxConfiguration": {
                    "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys",
                                            "keyData": "ssh-ed25519 AAAA one"}]}}},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "enableAcceleratedNetworking": True, "ipConfigurations": [
                        {"name": "ip", "properties": {"primary": True, "subnet": {"id": SUBNET},
                                                      "loadBalancerBackendAddressPools": [{"id": POOL}]}}]}}]},
                "extensionProfile": {"extensions": [copy.deepcopy(HEALTH), copy.deepcopy(AGENT)]},
            },
            "provisioningState": "Succeeded",
        },
    }
    doc["properties"].update(props)
    return doc


def params(**options):
    base = {key: None for key in model.MODEL_OPTIONS}
    base.update(options)
    return base


# --- desired / current ---------------------------------------------------------------------------

def test_desired_keeps_only_what_the_user_set():
    desired = model.desired_options(params(sku={"name": None, "tier": None, "capacity": 3}, zones=[1, "2"],
                                           upgrade_policy={"mode": "Manual", "rolling_upgrade_policy": None}))
    assert desired == {"sku": {"capacity": 3}, "zones": ["1", "2"], "upgrade_policy": {"mode": "Manual"}}


@pytest.mark.parametrize("image, expected", [
    (GALLERY + "/versions/1.7.1", {"id": GALLERY + "/versions/1.7.1"}),
    (GALLERY, {"id": GALLERY}),
    ({"id": GALLERY}, {"id": GALLERY}),
    ({"publisher": "Canonical", "offer": "ubuntu", "sku": "server"},
     {"publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "latest"}),
])
def test_image_shapes(image, expected):
    assert model.desired_options(params(image=image))["image"] == expected


def test_current_options_read_the_resource():
    current = model.current_options(resource())
    assert current["image"] == {"id": GALLERY + "/versions/1.7.0"}
    assert current["os_profile"] == {"computer_name_prefix": "api", "admin_username": "azureuser",
                                     "ssh_public_keys": ["ssh-ed25519 AAAA one"]}
    assert current["network_profile"] == {"subnet_id": SUBNET, "load_balancer_backend_address_pool_ids": [POOL],
                                          "health_probe_id": None}
    assert current["application_health"]["request_path"] == "/ready"
    assert current["upgrade_policy"]["rolling_upgrade_policy"]["max_batch_instance_percent"] == 20
    assert [ext["name"] for ext in current["extensions"]] == ["HealthExtension", "agent"]
    assert current["extensions"][1] == {"name": "agent", "publisher": "Contoso", "type": "Agent",
                                        "type_handler_version": "1.0", "settings": {"region": "eu"}}


def test_a_scale_set_read_back_has_no_differences_with_the_options_that_made_it():
    options = params(
        orchestration_mode="Uniform", sku={"name": "standard_d2s_v5", "capacity": 4}, zones=["2", "1"],
        image=GALLERY.upper() + "/VERSIONS/1.7.0",
        os_profile={"computer_name_prefix": "api", "admin_username": "azureuser", "admin_password": "hunter2",
                    "custom_data": "#cloud-config", "ssh_public_keys": ["ssh-ed25519  AAAA one"]},
        network_profile={"subnet_id": SUBNET.lower(), "load_balancer_backend_address_pool_ids": [POOL]},
        application_health={"protocol": "http", "port": 80, "request_path": "/ready"},
        extensions=[{"name": "AGENT", "publisher": "contoso", "settings": {"region": "eu"},
                     "protected_settings": {"token": "t"}}],
        upgrade_policy={"mode": "rolling", "rolling_upgrade_policy": {"pause_time_between_batches": "PT00S"}},
        tags={"team": "payments"})
    tracker = model.differences(model.desired_options(options), resource())
    assert not tracker, tracker.display_paths()


# --- validation ------------------------------------------------------------------------------------

def errors_for(existing=None, **options):
    return model.validate(model.desired_options(params(**options)), existing)


def test_valid_update_has_no_errors():
    assert errors_for(resource(), sku={"capacity": 10}) == []


@pytest.mark.parametrize("options, existing, fragment", [
    ({"sku": {"capacity": 1}}, None, "orchestration_mode is required"),
    ({"orchestration_mode": "Flexible"}, resource(), "orchestration_mode cannot be changed"),
    ({"platform_fault_domain_count": 3}, resource(), "platform_fault_domain_count cannot be changed"),
    ({"location": "northeurope"}, resource(), "location cannot be changed"),
    ({"os_profile": {"admin_username": "root"}}, resource(), "os_profile.admin_username cannot be changed"),
    ({"single_placement_group": True}, resource(singlePlacementGroup=False), "false to true"),
    ({"zones": ["1"]}, resource(), "zones cannot be removed from an existing scale set (zone(s) 2 would be)"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_batch_instance_percent": 4}}}, resource(), "between 5 and 100"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_unhealthy_instance_percent": 101}}}, resource(), "between 5"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_unhealthy_upgraded_instance_percent": -1}}}, resource(),
     "between 0 and 100"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_batch_instance_percent": 50}}}, resource(),
     "max_batch_instance_percent (50) cannot be above max_unhealthy_instance_percent (20"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_batch_instance_percent": 30,
                                                    "max_unhealthy_instance_percent": 25}}}, resource(),
     "(30) cannot be above max_unhealthy_instance_percent (25)"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"pause_time_between_batches": "5 minutes"}}}, resource(),
     "ISO 8601"),
    ({"automatic_repairs_policy": {"enabled": True, "grace_period": "PT5M"}}, resource(), "between PT10M and PT90M"),
    ({"automatic_repairs_policy": {"grace_period": "PT2H"}}, resource(), "between PT10M and PT90M"),
    ({"network_profile": {"health_probe_id": PROBE}}, resource(), "one health source"),
    ({"orchestration_mode": "Flexible", "upgrade_policy": {"mode": "Rolling"},
      "network_profile": {"health_probe_id": PROBE}}, None, "requires the Application Health extension"),
    ({"orchestration_mode": "Uniform", "upgrade_policy": {"mode": "Rolling"}}, None, "requires a health signal"),
    ({"upgrade_policy": {"rolling_upgrade_policy": {"max_surge": True},
                         "automatic_os_upgrade_policy": {"enable_automatic_os_upgrade": True}}},
     resource("Flexible"), "max_surge cannot be used with automatic OS image upgrades"),
    ({"orchestration_mode": "Uniform", "priority": "Spot"}, None, "Spot requires eviction_policy"),
    ({"orchestration_mode": "Uniform", "eviction_policy": "Delete"}, None, "eviction_policy can only be set"),
    ({"orchestration_mode": "Uniform", "max_price": 0.5}, None, "max_price can only be set"),
    ({"orchestration_mode": "Uniform", "priority": "Spot", "eviction_policy": "Delete", "max_price": 0}, None,
     "greater than 0"),
    ({"orchestration_mode": "Uniform", "priority_mix_policy": {"base_regular_priority_count": 1}}, None,
     "only supported on Flexible"),
    ({"priority": "Spot"}, resource(), "priority cannot be changed"),
    ({"overprovision": True}, resource("Flexible"), "overprovision is not supported on Flexible"),
    ({"orchestration_mode": "Flexible", "single_placement_group": True}, None, "must be false on Flexible"),
    ({"application_health": {"port": 80},
      "extensions": [{"name": "h", "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthWindows"}]},
     resource(), "set twice"),
])
def test_azure_rules_fail_before_any_write(options, existing, fragment):
    errors = errors_for(existing, **options)
    assert any(fragment in error for error in errors), errors


def test_every_reason_at_once():
    errors = errors_for(None, priority="Spot", priority_mix_policy={"base_regular_priority_count": 1},
                        automatic_repairs_policy={"grace_period": "PT1M"})
    assert len(errors) == 4  # mode required, Spot eviction, priority mix, repair grace


def test_rolling_on_flexible_with_the_health_extension_is_fine():
    assert errors_for(None, orchestration_mode="Flexible", upgrade_policy={"mode": "Rolling"},
                      application_health={"protocol": "http", "port": 80, "request_path": "/ready"}) == []


def test_spot_with_eviction_policy_and_mix_on_flexible_is_fine():
    assert errors_for(None, orchestration_mode="Flexible", priority="Spot", eviction_policy="Delete", max_price=-1,
                      priority_mix_policy={"base_regular_priority_count": 2}) == []


def test_rules_see_the_effective_model():
    existing = resource()
    existing["properties"]["upgradePolicy"]["rollingUpgradePolicy"]["maxUnhealthyInstancePercent"] = 60
    assert errors_for(existing, upgrade_policy={"rolling_upgrade_policy": {"max_batch_instance_percent": 50}}) == []
    assert errors_for(existing, zones=["1", "2", "3"]) == []       # adding a zone is allowed
    assert errors_for(existing, single_placement_group=False) == []  # true -> false is allowed


# --- bodies ----------------------------------------------------------------------------------------

def test_create_body_sends_what_the_user_set_and_the_primary_nic():
    desired = model.desired_options(params(
        orchestration_mode="Flexible", platform_fault_domain_count=1, sku={"name": "Standard_D2s_v5", "capacity": 2},
        image={"publisher": "Canonical", "offer": "ubuntu", "sku": "server"},
        os_profile={"computer_name_prefix": "w", "admin_username": "azureuser", "custom_data": "#cloud-config",
                    "ssh_public_keys": ["ssh-ed25519 AAAA one"]},
        network_profile={"subnet_id": SUBNET},
        application_health={"protocol": "http", "port": 80, "request_path": "/ready"},
        upgrade_policy={"mode": "Manual"}, tags={"team": "batch"}))
    body = model.create_body("workers", desired, "westeurope")
    assert body["location"] == "westeurope" and body["tags"] == {"team": "batch"}
    assert body["sku"] == {"name": "Standard_D2s_v5", "capacity": 2}
    props = body["properties"]
    assert props["orchestrationMode"] == "Flexible" and props["upgradePolicy"] == {"mode": "Manual"}
    vm = props["virtualMachineProfile"]
    assert vm["storageProfile"]["imageReference"]["version"] == "latest"
    assert base64.b64decode(vm["osProfile"]["customData"]) == b"#cloud-config"
    assert vm["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert vm["networkProfile"]["networkApiVersion"] == model.FLEXIBLE_NETWORK_API_VERSION
    nic = vm["networkProfile"]["networkInterfaceConfigurations"][0]
    assert nic["properties"]["ipConfigurations"][0]["properties"]["subnet"] == {"id": SUBNET}
    [health] = vm["extensionProfile"]["extensions"]
    assert health["properties"]["type"] == "ApplicationHealthLinux"
    assert health["properties"]["settings"] == {"protocol": "http", "port": 80, "requestPath": "/ready"}
    assert "zones" not in body and "overprovision" not in props and "priority" not in vm


def patch_for(existing=None, purge_tags=False, **options):
    existing = existing or resource()
    desired = model.desired_options(params(**options))
    tracker = model.differences(desired, existing, purge_tags)
    return tracker, model.update_body(tracker, desired, existing, purge_tags)


def test_capacity_change_sends_only_the_capacity():
    tracker, body = patch_for(sku={"capacity": 10})
    assert tracker.display_paths() == ["sku.capacity"]
    assert body == {"sku": {"capacity": 10}}


def test_unchanged_options_send_nothing():
    tracker, body = patch_for(sku={"capacity": 4, "name": "STANDARD_D2S_V5"}, tags={"team": "payments"})
    assert not tracker and body == {}


def test_tags_are_merged_unless_purged():
    assert patch_for(tags={"env": "prod"})[1] == {"tags": {"team": "payments", "owner": "platform", "env": "prod"}}
    assert patch_for(purge_tags=True, tags={"env": "prod"})[1] == {"tags": {"env": "prod"}}


def test_policy_change_sends_the_policy_options_set():
    _tracker, body = patch_for(upgrade_policy={"mode": "Manual", "rolling_upgrade_policy": {
        "max_batch_instance_percent": 20, "pause_time_between_batches": "PT30S"}})
    assert body == {"properties": {"upgradePolicy": {"mode": "Manual", "rollingUpgradePolicy": {
        "maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT30S"}}}}


def test_automatic_os_upgrade_policy_names():
    _tracker, body = patch_for(upgrade_policy={"automatic_os_upgrade_policy": {"enable_automatic_os_upgrade": True}})
    assert body == {"properties": {"upgradePolicy": {"automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}}}}


def test_os_upgrade_deferral_is_diffed_sent_alone_and_idempotent():
    existing = resource()
    existing["properties"]["upgradePolicy"]["automaticOSUpgradePolicy"] = {"enableAutomaticOSUpgrade": True}
    deferral = {"automatic_os_upgrade_policy": {"os_rolling_upgrade_deferral": True}}
    tracker, body = patch_for(existing, upgrade_policy=deferral)
    assert tracker.display_paths() == ["upgrade_policy.automatic_os_upgrade_policy.os_rolling_upgrade_deferral"]
    assert body == {"properties": {"upgradePolicy": {"automaticOSUpgradePolicy": {"osRollingUpgradeDeferral": True}}}}
    existing["properties"]["upgradePolicy"]["automaticOSUpgradePolicy"]["osRollingUpgradeDeferral"] = True
    tracker, body = patch_for(existing, upgrade_policy=deferral)
    assert not tracker and body == {}


def test_health_settings_change_sends_the_whole_extension_list():
    tracker, body = patch_for(application_health={"request_path": "/healthz"})
    assert tracker.display_paths() == ["application_health.request_path"]
    extensions = body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert [ext["name"] for ext in extensions] == ["HealthExtension", "agent"]
    assert extensions[0]["properties"]["settings"] == {"protocol": "http", "port": 80, "requestPath": "/healthz"}
    assert all("provisioningState" not in ext["properties"] for ext in extensions)
    assert list(body) == ["properties"] and list(body["properties"]) == ["virtualMachineProfile"]


def test_new_extension_is_added_with_its_protected_settings():
    tracker, body = patch_for(extensions=[{"name": "script", "publisher": "Microsoft.Azure.Extensions",
                                           "type": "CustomScript", "type_handler_version": "2.1",
                                           "settings": {"commandToExecute": "true"},
                                           "protected_settings": {"token": "s3cret"}}])
    assert tracker.display_paths() == ["extensions[script]"]
    assert "s3cret" not in str(tracker.diff())
    extensions = body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert [ext["name"] for ext in extensions] == ["HealthExtension", "agent", "script"]
    assert extensions[2]["properties"]["protectedSettings"] == {"token": "s3cret"}
    assert extensions[2]["properties"]["typeHandlerVersion"] == "2.1"


def test_protected_settings_alone_are_not_compared():
    tracker, body = patch_for(extensions=[{"name": "agent", "protected_settings": {"token": "rotated"}}])
    assert not tracker and body == {}


def test_network_change_keeps_the_rest_of_the_nic():
    new_subnet = SUBNET.replace("/app", "/app2")
    _tracker, body = patch_for(network_profile={"subnet_id": new_subnet})
    [nic] = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"]
    assert nic["properties"]["enableAcceleratedNetworking"] is True
    ipc = nic["properties"]["ipConfigurations"][0]["properties"]
    assert ipc["subnet"] == {"id": new_subnet} and ipc["loadBalancerBackendAddressPools"] == [{"id": POOL}]


def test_pools_compared_as_a_set_and_probe_alone():
    assert not patch_for(network_profile={"load_balancer_backend_address_pool_ids": [POOL.upper()]})[0]
    existing = resource()
    existing["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"] = [copy.deepcopy(AGENT)]
    _tracker, body = patch_for(existing, network_profile={"health_probe_id": PROBE})
    assert body == {"properties": {"virtualMachineProfile": {"networkProfile": {"healthProbe": {"id": PROBE}}}}}


def test_image_and_ssh_keys():
    _tracker, body = patch_for(image=GALLERY + "/versions/1.7.1", os_profile={"ssh_public_keys": ["ssh-ed25519 BBBB two"]})
    vm = body["properties"]["virtualMachineProfile"]
    assert vm["storageProfile"] == {"imageReference": {"id": GALLERY + "/versions/1.7.1"}}
    assert vm["osProfile"] == {"linuxConfiguration": {"ssh": {"publicKeys": [
        {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-ed25519 BBBB two"}]}}}


def test_switching_image_kind_removes_the_old_fields():
    _tracker, body = patch_for(image={"publisher": "Canonical", "offer": "ubuntu", "sku": "server"})
    assert body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] == {
        "publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "latest", "id": None}
    existing = resource()
    existing["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
        "publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "latest", "exactVersion": "1.2.3"}
    _tracker, body = patch_for(existing, image=GALLERY)
    assert body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] == {
        "id": GALLERY, "publisher": None, "offer": None, "sku": None, "version": None}


def test_secrets_are_not_sent_on_update():
    tracker, body = patch_for(os_profile={"admin_password": "new", "custom_data": "x"}, max_price=-1)
    assert tracker.display_paths() == ["max_price"]
    assert body == {"properties": {"virtualMachineProfile": {"billingProfile": {"maxPrice": -1}}}}


def test_creating_lists_every_option_as_a_change():
    desired = model.desired_options(params(orchestration_mode="Uniform", sku={"capacity": 2}, tags={"a": "b"},
                                           os_profile={"admin_password": "hunter2"}))
    tracker = model.differences(desired, None)
    assert tracker.display_paths() == ["sku.capacity", "orchestration_mode", "tags.a"]
    assert "hunter2" not in str(tracker.after())


@pytest.mark.parametrize("name, camel", [
    ("max_batch_instance_percent", "maxBatchInstancePercent"),
    ("automatic_os_upgrade_policy", "automaticOSUpgradePolicy"),
    ("enable_automatic_os_upgrade", "enableAutomaticOSUpgrade"),
    ("os_rolling_upgrade_deferral", "osRollingUpgradeDeferral"),
    ("rollback_failed_instances_on_policy_breach", "rollbackFailedInstancesOnPolicyBreach"),
    ("capacity", "capacity"),
])
def test_to_camel(name, camel):
    assert model.to_camel(name) == camel
