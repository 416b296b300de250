"""Public IP addresses and inbound NAT: a Uniform set's NAT pool becomes one rule per instance on the load
balancer ({pool}.{instanceId}, frontend port start + instance id), which the instance's NIC references."""
from compute_support import body, vmss_path
from test_network_pools import API, net  # noqa: F401  pylint: disable=unused-import  (the fixture: a vnet)


def lb_body(emu, base, **nat):
    frontend = base + "/loadBalancers/edge/frontendIPConfigurations/fe"
    return {"location": emu.location, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": base + "/publicIPAddresses/pip"}}}],
        "backendAddressPools": [{"name": "pool"}],
        "inboundNatPools": [{"name": "ssh", "properties": dict({
            "frontendIPConfiguration": {"id": frontend}, "protocol": "Tcp", "frontendPortRangeStart": 50000,
            "frontendPortRangeEnd": 50119, "backendPort": 22}, **nat)}]}}


def test_public_ip_gets_an_address_and_shows_its_frontend(net):
    emu, base = net
    status, pip, _ = emu.arm("PUT", base + "/publicIPAddresses/pip", {"location": emu.location,
                                                                      "sku": {"name": "Standard"}}, api_version=API)
    assert status == 201
    assert pip["properties"]["publicIPAllocationMethod"] == "Static" and pip["properties"]["ipAddress"]
    status, err, _ = emu.arm("PUT", base + "/publicIPAddresses/dyn", {"location": emu.location, "sku": {"name": "Standard"},
                                                                      "properties": {"publicIPAllocationMethod": "Dynamic"}},
                             api_version=API)
    assert status == 400 and err["error"]["code"] == "StandardSkuPublicIPAddressesCannotBeDynamic"
    status, _, _ = emu.arm("PUT", base + "/loadBalancers/edge", lb_body(emu, base), api_version=API)
    assert status == 201
    status, again, _ = emu.arm("GET", base + "/publicIPAddresses/pip", api_version=API)
    assert again["properties"]["ipAddress"] == pip["properties"]["ipAddress"]
    assert again["properties"]["ipConfiguration"]["id"].endswith("/loadBalancers/edge/frontendIPConfigurations/fe")
    status, err, _ = emu.arm("DELETE", base + "/publicIPAddresses/pip", api_version=API)
    assert status == 400 and err["error"]["code"] == "PublicIPAddressInUse"


def test_nat_pool_rules_per_uniform_instance_and_on_their_nics(net):
    emu, base = net
    emu.arm("PUT", base + "/publicIPAddresses/pip", {"location": emu.location}, api_version=API)
    status, err, _ = emu.arm("PUT", base + "/loadBalancers/edge", lb_body(emu, base, backendPort=0), api_version=API)
    assert status == 400 and "backendPort" in err["error"]["message"]
    status, lb, _ = emu.arm("PUT", base + "/loadBalancers/edge", lb_body(emu, base), api_version=API)
    assert status == 201 and lb["properties"]["inboundNatRules"] == []

    spec = body(emu, 3, overprovision=False, subnet=base + "/virtualNetworks/vnet/subnets/app")
    ipc = spec["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerInboundNatPools"] = [
        {"id": base + "/loadBalancers/edge/inboundNatPools/ssh"}]
    emu.compute().virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()

    status, lb, _ = emu.arm("GET", base + "/loadBalancers/edge", api_version=API)
    rules = {r["name"]: r["properties"] for r in lb["properties"]["inboundNatRules"]}
    assert sorted(rules) == ["ssh.0", "ssh.1", "ssh.2"]
    assert [rules["ssh.%d" % i]["frontendPort"] for i in range(3)] == [50000, 50001, 50002]
    assert rules["ssh.1"]["backendPort"] == 22
    assert rules["ssh.1"]["backendIPConfiguration"]["id"] == vmss_path(
        emu, "rg", "web", "/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ipc")
    status, one, _ = emu.arm("GET", base + "/loadBalancers/edge/inboundNatRules/ssh.2", api_version=API)
    assert status == 200 and one["properties"]["frontendPort"] == 50002

    from azure.mgmt.network import NetworkManagementClient  # pylint: disable=import-outside-toplevel
    network = NetworkManagementClient(**emu.sdk_kwargs())
    nic = next(iter(network.network_interfaces.list_virtual_machine_scale_set_vm_network_interfaces("rg", "web", "1")))
    refs = [r.id for r in nic.ip_configurations[0].load_balancer_inbound_nat_rules]
    assert refs == [base + "/loadBalancers/edge/inboundNatRules/ssh.1"]

    # a client that echoes the load balancer it read does not turn the generated rules into its own
    status, echoed, _ = emu.arm("PUT", base + "/loadBalancers/edge", lb, api_version=API)
    assert status == 200 and sorted(r["name"] for r in echoed["properties"]["inboundNatRules"]) == sorted(rules)


def test_flexible_nat_rule_for_a_backend_pool_maps_a_port_per_member(net):
    emu, base = net
    emu.arm("PUT", base + "/publicIPAddresses/pip", {"location": emu.location}, api_version=API)
    lb = lb_body(emu, base)
    props = lb["properties"]
    pool = base + "/loadBalancers/edge/backendAddressPools/pool"
    props["inboundNatRules"] = [{"name": "ssh", "properties": {
        "frontendIPConfiguration": props["inboundNatPools"][0]["properties"]["frontendIPConfiguration"],
        "backendAddressPool": {"id": pool}, "protocol": "Tcp", "frontendPortRangeStart": 50000,
        "frontendPortRangeEnd": 50099, "backendPort": 22}}]
    del props["inboundNatPools"]
    status, created_lb, _ = emu.arm("PUT", base + "/loadBalancers/edge", lb, api_version=API)
    assert status == 201 and created_lb["properties"]["inboundNatRules"][0]["properties"]["frontendPortRangeEnd"] == 50099

    spec = body(emu, 2, mode="Flexible", subnet=base + "/virtualNetworks/vnet/subnets/app")
    ipc = spec["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] = [{"id": pool}]
    emu.compute().virtual_machine_scale_sets.begin_create_or_update("rg", "flex", spec).result()
    from azure.mgmt.network import NetworkManagementClient  # pylint: disable=import-outside-toplevel
    network = NetworkManagementClient(**emu.sdk_kwargs())
    ipcs = sorted(n.ip_configurations[0].id for n in network.network_interfaces.list("rg"))
    ports = []
    for ipc_id in ipcs:
        answer = network.load_balancers.begin_list_inbound_nat_rule_port_mappings(
            "rg", "edge", "pool", {"ipConfiguration": {"id": ipc_id}}).result()
        mapping, = answer.inbound_nat_rule_port_mappings
        assert (mapping.inbound_nat_rule_name, mapping.backend_port) == ("ssh", 22)
        ports.append(mapping.frontend_port)
    assert sorted(ports) == [50000, 50001]
    status, err, _ = emu.arm("POST", base + "/loadBalancers/edge/backendAddressPools/pool/queryInboundNatRulePortMapping",
                             {"ipConfiguration": {"id": base + "/networkInterfaces/nope/ipConfigurations/ipc"}},
                             api_version=API)
    assert status == 400 and err["error"]["code"] == "BackendAddressNotFoundInBackendPool"
