# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instances inventory plugin inside one process: config -> auth -> SDK -> HTTP (scripted) -> inventory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

from azure_fakes import arm_error
from module_runner import ARM, SUB, scripted_arm

ROOT = Path(__file__).resolve().parents[4]
RG_A = "/subscriptions/%s/resourceGroups/a" % SUB
RG_B = "/subscriptions/%s/resourceGroups/b" % SUB
WEB = RG_A + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
FLEX = RG_B + "/providers/Microsoft.Compute/virtualMachineScaleSets/flex"
GALLERY_IMAGE = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web"


@pytest.fixture
def arm(monkeypatch, tmp_path):
    return scripted_arm(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def plugin_loader():
    """Ansible's inventory loader, finding fleetops.vmss.instances as ansible-inventory does."""
    if not AnsibleCollectionConfig.collection_finder:  # ansible-test installs it; a plain pytest run does not
        # tests/unit/conftest.py made the collection importable through sys.path, as plain namespace packages:
        # let the collection finder own the packages (it gives them the paths and metadata the plugin loader
        # reads). Modules already imported stay as they are, so the patches of the tests still apply.
        for name in [name for name, module in sys.modules.items()
                     if name.startswith("ansible_collections") and getattr(module, "__file__", None) is None]:
            del sys.modules[name]
        init_plugin_loader([str(ROOT / ".cache" / "collections")])
    return inventory_loader


def scale_set(rid, mode):
    return {"id": rid, "name": rid.rsplit("/", 1)[1], "location": "westeurope", "tags": {"team": "payments"},
            "sku": {"name": "Standard_D2s_v5", "capacity": 2},
            "properties": {"orchestrationMode": mode, "virtualMachineProfile": {"storageProfile": {
                "imageReference": {"id": GALLERY_IMAGE + "/versions/1.7.1"}}}}}


def instance_view(computer_name, health, zone_ud):
    return {"computerName": computer_name, "platformUpdateDomain": zone_ud, "platformFaultDomain": 0,
            "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}],
            "vmHealth": {"status": {"code": "HealthState/" + health}}}


def uniform_vm(instance_id, zone, health, computer_name=None):
    return {"id": "%s/virtualMachines/%s" % (WEB, instance_id), "name": "web_%s" % instance_id,
            "instanceId": instance_id, "zones": [zone],
            "properties": {"latestModelApplied": True, "provisioningState": "Succeeded",
                           "storageProfile": {"imageReference": {"id": "/g/images/web", "exactVersion": "1.7.1"}},
                           "instanceView": instance_view(computer_name or "web00000%s" % instance_id, health,
                                                         int(instance_id))}}


def flexible_vm(name):
    return {"id": RG_B + "/providers/Microsoft.Compute/virtualMachines/" + name, "name": name,
            "properties": {"virtualMachineScaleSet": {"id": FLEX}, "provisioningState": "Succeeded",
                           "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                           "storageProfile": {"imageReference": {"id": GALLERY_IMAGE + "/versions/1.7.0"}},
                           "instanceView": instance_view(name.replace("_", ""), "healthy", 0)}}


def nic(vm_id, address, primary=True):
    return {"id": vm_id + "/nic", "properties": {"primary": primary, "virtualMachine": {"id": vm_id},
                                                 "ipConfigurations": [{"properties": {"primary": True,
                                                                                      "privateIPAddress": address}}]}}


def route_fleet(arm):
    """Two pages of scale sets (a Uniform one in group a, a Flexible one in group b) and their reads."""
    page_two = ARM + "/providers/Microsoft.Compute/virtualMachineScaleSets?api-version=2026-04-01&$skiptoken=1"
    arm.route("GET", r"/providers/Microsoft\.Compute/virtualMachineScaleSets\?api-version=[^&]+$",
              [(200, {}, {"value": [scale_set(WEB, "Uniform")], "nextLink": page_two})])
    arm.route("GET", r"skiptoken=1", [(200, {}, {"value": [scale_set(FLEX, "Flexible")]})])
    arm.route("GET", r"/virtualMachineScaleSets/web/virtualMachines\?",
              [(200, {}, {"value": [uniform_vm("0", "1", "unhealthy"), uniform_vm("1", "2", "healthy")]})])
    arm.route("GET", r"/virtualMachineScaleSets/web/networkInterfaces\?", [(200, {}, {"value": [
        nic(WEB + "/virtualMachines/0", "10.0.0.4"), nic(WEB + "/virtualMachines/1", "10.0.0.5")]})])
    arm.route("GET", r"/resourceGroups/b/providers/Microsoft\.Compute/virtualMachines\?",
              [(200, {}, {"value": [flexible_vm("flex_1a2b3c4d")]})])
    flex_vm_id = RG_B + "/providers/Microsoft.Compute/virtualMachines/flex_1a2b3c4d"
    arm.route("GET", r"/resourceGroups/b/providers/Microsoft\.Network/networkInterfaces\?", [(200, {}, {"value": [
        nic(flex_vm_id, "10.1.0.9", primary=False), nic(flex_vm_id, "10.1.0.8"),
        nic(RG_B + "/providers/Microsoft.Compute/virtualMachines/other", "10.1.0.7")]})])


def parse(plugin_loader, tmp_path, config):
    path = tmp_path / "fleet.vmss.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "fleetops.vmss.instances"}, **config)))
    plugin = plugin_loader.get("fleetops.vmss.instances")
    data = InventoryData()
    plugin.parse(data, DataLoader(), str(path), cache=False)
    return data, plugin


def group_hosts(data, group):
    return sorted(host.name for host in data.groups[group].get_hosts()) if group in data.groups else []


def test_every_scale_set_of_the_subscription_in_six_reads(arm, plugin_loader, tmp_path):
    route_fleet(arm)

    data, _cache = parse(plugin_loader, tmp_path, {
        "keyed_groups": [{"key": "zone", "prefix": "zone", "default_value": "none"},
                         {"key": "health_state | lower", "prefix": "health"}],
        "groups": {"old_image": "image_version != '1.7.1'"},
        "compose": {"ansible_port": "2200 + update_domain"}})

    assert sorted(data.hosts) == ["flex1a2b3c4d", "web000000", "web000001"]    # named by computer name
    web0 = data.hosts["web000000"].vars
    assert (web0["private_ip"], web0["ansible_host"], web0["instance_id"], web0["zone"], web0["update_domain"],
            web0["health_state"], web0["image_version"], web0["scale_set"], web0["resource_group"],
            web0["azure_tags"], web0["ansible_port"]) == (
        "10.0.0.4", "10.0.0.4", "0", "1", 0, "Unhealthy", "1.7.1", "web", "a", {"team": "payments"}, 2200)
    assert "tags" not in web0 and "name" not in web0 and web0["vm_name"] == "web_0"   # reserved in ansible-core 2.19
    flex = data.hosts["flex1a2b3c4d"].vars
    assert (flex["private_ip"], flex["orchestration_mode"], flex["latest_model_applied"], flex["image_version"]) == (
        "10.1.0.8", "Flexible", False, "1.7.0")                                 # the primary NIC's address
    assert group_hosts(data, "zone_1") == ["web000000"] and group_hosts(data, "zone_none") == ["flex1a2b3c4d"]
    assert group_hosts(data, "health_unhealthy") == ["web000000"]
    assert group_hosts(data, "old_image") == ["flex1a2b3c4d"]
    assert [request.method for request in arm.requests] == ["GET"] * 6


def test_hostname_choice_and_a_clash_named_in_the_error(arm, plugin_loader, tmp_path):
    route_fleet(arm)
    data, _cache = parse(plugin_loader, tmp_path, {"hostname": "private_ip"})
    assert sorted(data.hosts) == ["10.0.0.4", "10.0.0.5", "10.1.0.8"]

    arm.route("GET", r"/virtualMachineScaleSets/web/virtualMachines\?", [(200, {}, {"value": [
        uniform_vm("0", "1", "healthy", computer_name="api"), uniform_vm("1", "1", "healthy", computer_name="api")]})])
    arm.routes.insert(0, arm.routes.pop())  # the new answer first
    with pytest.raises(AnsibleParserError, match=r"2 instances would be named api \(.*/virtualMachines/0, "
                                                 r".*/virtualMachines/1\); set hostname to another of"):
        parse(plugin_loader, tmp_path, {})


def test_listed_sets_and_a_missing_one(arm, plugin_loader, tmp_path, monkeypatch):
    route_fleet(arm)
    arm.route("GET", r"/resourceGroups/a/providers/Microsoft\.Compute/virtualMachineScaleSets/web\?",
              [(200, {}, scale_set(WEB, "Uniform"))])
    arm.route("GET", r"/resourceGroups/a/providers/Microsoft\.Compute/virtualMachineScaleSets/gone\?",
              [arm_error("ResourceNotFound", "not found", 404)])
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda self, msg, *a, **k: warnings.append(msg))

    data, _cache = parse(plugin_loader, tmp_path, {"scale_sets": [{"resource_group": "a", "name": "web"},
                                                                  {"resource_group": "a", "name": "gone"}]})

    assert sorted(data.hosts) == ["web000000", "web000001"]
    assert warnings == ["fleetops.vmss.instances: scale set a/gone was not found; it adds no hosts."]
    assert not any("virtualMachineScaleSets?" in request.url for request in arm.requests)   # no subscription list


def test_an_arm_error_fails_the_inventory_with_one_line(arm, plugin_loader, tmp_path):
    route_fleet(arm)
    arm.route("GET", r"/virtualMachineScaleSets/web/networkInterfaces\?", [arm_error(
        "AuthorizationFailed", "The client does not have authorization to perform action "
        "'Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read'.", 403)])
    arm.routes.insert(0, arm.routes.pop())

    with pytest.raises(AnsibleError) as failed:
        parse(plugin_loader, tmp_path, {})

    assert str(failed.value).startswith(
        "Failed to list the network interfaces of scale set a/web: AuthorizationFailed: The client does not have "
        "authorization to perform action 'Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read'.")


def test_missing_credentials_fail_before_any_request(arm, plugin_loader, tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_SECRET")
    with pytest.raises(AnsibleParserError, match=r"Missing Azure credentials: set secret \(AZURE_SECRET\)"):
        parse(plugin_loader, tmp_path, {})
    assert arm.requests == []


def test_jump_host_way_in_needs_a_jump_host_before_any_request(arm, plugin_loader, tmp_path):
    with pytest.raises(AnsibleParserError, match="connect_via=jump_host needs jump_host"):
        parse(plugin_loader, tmp_path, {"connect_via": "jump_host"})
    assert arm.requests == []


def test_jump_host_way_in_sets_proxy_jump_on_the_private_ip(arm, plugin_loader, tmp_path):
    route_fleet(arm)
    data, _plugin = parse(plugin_loader, tmp_path, {"connect_via": "jump_host", "jump_host": "ops@bastion:2222"})
    web0 = data.hosts["web000000"].vars
    assert (web0["ansible_host"], web0["ansible_ssh_common_args"]) == ("10.0.0.4", "-o ProxyJump=ops@bastion:2222")
    assert "nat_host" not in web0 and "ansible_port" not in web0
