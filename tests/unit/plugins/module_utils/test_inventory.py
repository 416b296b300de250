# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory hosts from REST dicts: private IPs from NICs, image version, host names."""

from __future__ import annotations

from ansible_collections.fleetops.vmss.plugins.module_utils import _inventory as inventory

VMSS = "/subscriptions/s/resourceGroups/Payments/providers/Microsoft.Compute/virtualMachineScaleSets/api"
VM = VMSS + "/virtualMachines/3"


def nic(vm_id, primary, *ip_configurations):
    configurations = [{"properties": {"primary": ipc_primary, "privateIPAddress": address}}
                      for ipc_primary, address in ip_configurations]
    return {"properties": {"virtualMachine": {"id": vm_id}, "primary": primary, "ipConfigurations": configurations}}


def test_private_ip_is_the_primary_configuration_of_the_primary_nic():
    ips = inventory.private_ips([
        nic(VM, False, (True, "10.0.9.9")),
        nic(VM.upper(), True, (False, "10.0.1.5"), (True, "10.0.1.4")),   # ids compare in any case
        nic(VMSS + "/virtualMachines/4", None, (None, "10.0.1.6")),          # one NIC and configuration: no flags
        nic(VMSS + "/virtualMachines/5", True, (True, None)),                # no address yet
        {"properties": {"ipConfigurations": []}},                            # a NIC attached to nothing
    ])
    assert ips == {VM.lower(): "10.0.1.4", (VMSS + "/virtualMachines/4").lower(): "10.0.1.6"}


def test_image_version_from_exact_version_pinned_version_or_gallery_version_id():
    gallery = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web"
    assert inventory.image_version({"id": gallery, "exact_version": "1.7.0"}) == "1.7.0"
    assert inventory.image_version({"id": gallery + "/versions/1.7.1"}) == "1.7.1"
    assert inventory.image_version({"publisher": "Canonical", "version": "24.04.1"}) == "24.04.1"
    assert inventory.image_version({"publisher": "Canonical", "version": "latest"}) == "latest"
    assert inventory.image_version({"id": gallery}) is None
    assert inventory.image_version(None) is None


def test_host_vars_add_the_set_ip_and_tags_to_the_instance_summary():
    scale_set = {"id": VMSS, "location": "westeurope", "tags": {"team": "payments"},
                 "properties": {"orchestrationMode": "Uniform"}}
    vm = {"id": VM, "name": "api_3", "instanceId": "3", "zones": ["2"],
          "properties": {"latestModelApplied": False, "instanceView": {"computerName": "api000003",
                                                                       "platformUpdateDomain": 3}}}
    out = inventory.host_vars(vm, scale_set, {VM.lower(): "10.0.1.4"})
    assert {key: out[key] for key in ("instance_id", "computer_name", "zone", "update_domain", "latest_model_applied",
                                      "private_ip", "tags", "location", "scale_set", "resource_group",
                                      "orchestration_mode", "scale_set_id")} == {
        "instance_id": "3", "computer_name": "api000003", "zone": "2", "update_domain": 3,
        "latest_model_applied": False, "private_ip": "10.0.1.4", "tags": {"team": "payments"},
        "location": "westeurope", "scale_set": "api", "resource_group": "Payments", "orchestration_mode": "Uniform",
        "scale_set_id": VMSS}
    assert inventory.host_vars(dict(vm, tags={}), scale_set, {})["tags"] == {}   # the VM's own tags win
    assert inventory.host_vars(vm, scale_set, {})["private_ip"] is None


def test_host_name_falls_back_to_the_vm_name_and_duplicates_are_found():
    assert inventory.host_name({"name": "api_3", "private_ip": "10.0.1.4"}, "private_ip") == ("10.0.1.4", True)
    assert inventory.host_name({"name": "api_3", "private_ip": None}, "private_ip") == ("api_3", False)
    named = [("api000001", {"id": "a"}), ("api000002", {"id": "b"}), ("api000001", {"id": "c"})]
    assert inventory.duplicates(named) == {"api000001": ["a", "c"]}


def test_split_id():
    assert inventory.split_id(VMSS) == ("Payments", "api")
