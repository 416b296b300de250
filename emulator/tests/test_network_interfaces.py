"""Network interfaces of scale-set instances through azure-mgmt-network: the scale-set NIC list (Uniform)
and Microsoft.Network/networkInterfaces (Flexible), with the instances' private IPs."""
import ipaddress

import pytest
from azure.core.exceptions import HttpResponseError

from compute_support import body, vmss_path

NET_API = "2024-05-01"


def network(emu, credential=None):
    from azure.mgmt.network import NetworkManagementClient
    return NetworkManagementClient(**emu.sdk_kwargs(credential))


def seed_subnet(emu, rg):
    path = f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/vnet"
    status, answer, _ = emu.arm("PUT", path, {"location": emu.location, "properties": {
        "addressSpace": {"addressPrefixes": ["10.8.0.0/16"]},
        "subnets": [{"name": "app", "properties": {"addressPrefix": "10.8.1.0/24"}}]}}, api_version=NET_API)
    assert status in (200, 201), answer
    return path + "/subnets/app"


def seeded(emu, name, capacity, **kwargs):
    """A scale set on a new subnet of group rg: (compute client, subnet id)."""
    emu.rg("rg")
    subnet = seed_subnet(emu, "rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", name, body(emu, capacity, subnet=subnet,
                                                                               **kwargs)).result()
    return compute, subnet


def private_ips(nic):
    return [c["properties"].get("privateIPAddress") for c in nic["properties"]["ipConfigurations"]]


def test_uniform_scale_set_nics_carry_each_instance_private_ip(clean):
    emu = clean
    compute, subnet = seeded(emu, "web", 7)
    vms = {vm.id.lower(): vm.as_dict() for vm in compute.virtual_machine_scale_set_vms.list("rg", "web")}

    nics = [nic.as_dict() for nic in
            network(emu).network_interfaces.list_virtual_machine_scale_set_network_interfaces("rg", "web")]

    assert len(nics) == 7                                                      # two pages of 5
    assert {nic["properties"]["virtualMachine"]["id"].lower() for nic in nics} == set(vms)
    ips = [private_ips(nic)[0] for nic in nics]
    assert len(set(ips)) == 7 and all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.8.1.0/24") for ip in ips)
    for nic in nics:
        vm = vms[nic["properties"]["virtualMachine"]["id"].lower()]
        assert nic["properties"]["primary"] is True and nic["properties"]["ipConfigurations"][0]["properties"][
            "subnet"]["id"].lower() == subnet.lower()
        assert [ref["id"].lower() for ref in vm["properties"]["networkProfile"]["networkInterfaces"]] == [
            nic["id"].lower()]                                                 # the id the VM refers to
    one = network(emu).network_interfaces.get_virtual_machine_scale_set_network_interface(
        "rg", "web", vms[nics[0]["properties"]["virtualMachine"]["id"].lower()]["instanceId"], "nic").as_dict()
    assert (one["id"], private_ips(one)) == (nics[0]["id"], private_ips(nics[0]))

    # A NIC goes with its instance.
    compute.virtual_machine_scale_sets.begin_delete_instances(
        "rg", "web", {"instanceIds": [next(iter(vms.values()))["instanceId"]]}).result()
    assert len(list(network(emu).network_interfaces.list_virtual_machine_scale_set_network_interfaces(
        "rg", "web"))) == 6


def test_flexible_instances_have_network_interfaces_in_the_resource_group(clean):
    emu = clean
    compute, _ = seeded(emu, "flex", 3, mode="Flexible")
    vms = {vm.id.lower(): vm.as_dict() for vm in compute.virtual_machines.list("rg")}
    client = network(emu)

    nics = [nic.as_dict() for nic in client.network_interfaces.list("rg")]

    assert {nic["properties"]["virtualMachine"]["id"].lower() for nic in nics} == set(vms)
    assert len({private_ips(nic)[0] for nic in nics}) == 3
    for nic in nics:
        vm = vms[nic["properties"]["virtualMachine"]["id"].lower()]
        assert vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower() == nic["id"].lower()
        assert client.network_interfaces.get("rg", nic["name"]).as_dict()["id"] == nic["id"]

    # The scale-set NIC list is Azure's for Uniform sets; a missing NIC is a 404.
    status, answer, _ = emu.arm("GET", vmss_path(emu, "rg", "flex", "/networkInterfaces"), api_version="2018-10-01")
    assert (status, answer["error"]["code"]) == (400, "BadRequest")
    with pytest.raises(HttpResponseError) as missing:
        client.network_interfaces.get("rg", "nope")
    assert missing.value.status_code == 404


def test_reading_scale_set_nics_needs_its_own_action(clean):
    emu = clean
    seeded(emu, "web", 1)
    narrow = emu.control.call("POST", "principals", {"name": "vmss-reader-only",
                                                     "role": ["Microsoft.Compute/virtualMachineScaleSets/read"]})
    client = network(emu, emu.credential(narrow["client_id"], narrow["secret"]))

    with pytest.raises(HttpResponseError) as denied:
        list(client.network_interfaces.list_virtual_machine_scale_set_network_interfaces("rg", "web"))

    assert denied.value.status_code == 403
    assert "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read" in str(denied.value)
