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


# --- connect_via: inbound NAT endpoints and connection variables ------------------------------------

NET = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network"
LB = NET + "/loadBalancers/lb"
PIP = NET + "/publicIPAddresses/pip"


def lb_doc(rules, frontend=None):
    frontend = frontend or {"publicIPAddress": {"id": PIP}}
    return {"id": LB, "properties": {"frontendIPConfigurations": [{"id": LB + "/frontendIPConfigurations/fe",
                                                                   "properties": frontend}],
                                     "inboundNatRules": rules}}


def rule(name, **props):
    return {"id": LB + "/inboundNatRules/" + name, "name": name,
            "properties": dict({"frontendIPConfiguration": {"id": LB + "/frontendIPConfigurations/fe"},
                                "backendPort": 22}, **props)}


def nat_nic(vm_id, **ipc):
    return {"properties": {"virtualMachine": {"id": vm_id}, "primary": True, "ipConfigurations": [
        {"id": vm_id + "/nic/ipConfigurations/ipc", "properties": dict({"primary": True}, **ipc)}]}}


class Readers:
    """Fake readers that count their calls."""

    def __init__(self, lb, mappings=None):
        self.lb, self.mappings, self.calls = lb, mappings or {}, []

    def load_balancer(self, rid):
        self.calls.append(("lb", rid))
        return self.lb if rid.lower() == LB.lower() else None

    def public_ip(self, rid):
        self.calls.append(("pip", rid))
        return {"properties": {"ipAddress": "203.0.113.7"}} if rid == PIP else None

    def port_mappings(self, lb_id, pool, ipc_id):
        self.calls.append(("map", lb_id, pool, ipc_id))
        return self.mappings.get(ipc_id, [])


def test_uniform_nat_rules_give_the_frontend_public_ip_and_port_each_resource_read_once():
    readers = Readers(lb_doc([rule("ssh.0", frontendPort=50000), rule("ssh.1", frontendPort=50001),
                              rule("rdp.0", frontendPort=60000, backendPort=3389)]))
    nat = inventory.NatEndpoints(readers.load_balancer, readers.public_ip, readers.port_mappings)
    vm0, vm1, vm2 = (VMSS + "/virtualMachines/%d" % i for i in range(3))
    endpoints = nat.of_nics([
        nat_nic(vm0, loadBalancerInboundNatRules=[{"id": LB + "/inboundNatRules/rdp.0"},
                                                  {"id": LB + "/inboundNatRules/ssh.0"}]),
        nat_nic(vm1, loadBalancerInboundNatRules=[{"id": LB.upper() + "/inboundNatRules/SSH.1"}]),
        nat_nic(vm2, privateIPAddress="10.0.0.9"),                              # in no NAT rule
    ])
    assert endpoints == {vm0.lower(): ("203.0.113.7", 50000), vm1.lower(): ("203.0.113.7", 50001)}
    assert readers.calls == [("lb", LB), ("pip", PIP)]


def test_flexible_nat_rule_for_a_backend_pool_asks_the_port_mapping_internal_frontend_private_ip():
    pool = LB + "/backendAddressPools/pool"
    readers = Readers(lb_doc([rule("ssh", backendAddressPool={"id": pool}, frontendPortRangeStart=50000,
                                   frontendPortRangeEnd=50099)], frontend={"privateIPAddress": "10.0.0.100"}))
    vm = "/subscriptions/s/resourceGroups/b/providers/Microsoft.Compute/virtualMachines/flex_1"
    readers.mappings = {vm + "/nic/ipConfigurations/ipc": [
        {"inboundNatRuleName": "other", "frontendPort": 40000}, {"inboundNatRuleName": "ssh", "frontendPort": 50003}]}
    nat = inventory.NatEndpoints(readers.load_balancer, readers.public_ip, readers.port_mappings)
    assert nat.of_nics([nat_nic(vm, loadBalancerBackendAddressPools=[{"id": pool}])]) == {
        vm.lower(): ("10.0.0.100", 50003)}
    assert ("map", LB, "pool", vm + "/nic/ipConfigurations/ipc") in readers.calls
    # another backend port: no rule, no port-mapping query
    other = inventory.NatEndpoints(readers.load_balancer, readers.public_ip, readers.port_mappings, backend_port=80)
    readers.calls.clear()
    assert other.of_nics([nat_nic(vm, loadBalancerBackendAddressPools=[{"id": pool}])]) == {}
    assert not [call for call in readers.calls if call[0] == "map"]


def test_connection_vars_per_way_in():
    host = {"private_ip": "10.0.0.4", "nat_host": "203.0.113.7", "nat_port": 50003}
    assert inventory.connection_vars(host, "private_ip") == {"ansible_host": "10.0.0.4"}
    assert inventory.connection_vars(host, "nat") == {"ansible_host": "203.0.113.7", "ansible_port": 50003}
    assert inventory.connection_vars(host, "jump_host", "ops@bastion:2222") == {
        "ansible_host": "10.0.0.4", "ansible_ssh_common_args": "-o ProxyJump=ops@bastion:2222"}
    assert inventory.connection_vars({"private_ip": None, "nat_host": None}, "nat") == {}
    assert inventory.connection_vars({"private_ip": None}, "jump_host", "bastion") == {}
