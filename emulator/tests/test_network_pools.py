"""Load balancer backend pools list the scale-set instances in them, by the model each instance runs."""
import pytest

from compute_support import body, vmss_path, wait_until

API = "2024-05-01"


@pytest.fixture
def net(clean):
    emu = clean
    emu.rg("rg")
    base = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg/providers/Microsoft.Network"
    status, _, _ = emu.arm("PUT", base + "/virtualNetworks/vnet", {"location": emu.location, "properties": {
        "addressSpace": {"addressPrefixes": ["10.8.0.0/16"]},
        "subnets": [{"name": "app", "properties": {"addressPrefix": "10.8.1.0/24"}}]}}, api_version=API)
    assert status in (200, 201)
    status, _, _ = emu.arm("PUT", base + "/loadBalancers/lb", {"location": emu.location, "properties": {
        "backendAddressPools": [{"name": "pool"}, {"name": "other"}]}}, api_version=API)
    assert status in (200, 201)
    return emu, base


def in_pool(spec, pool_id):
    """The scale-set body with its primary IP configuration in `pool_id` (None: in no pool)."""
    ipc = spec["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] = \
        [{"id": pool_id}] if pool_id else []
    return spec


def members(emu, base, pool="pool"):
    status, doc, _ = emu.arm("GET", base + f"/loadBalancers/lb/backendAddressPools/{pool}", api_version=API)
    assert status == 200, doc
    return sorted(c["id"] for c in doc["properties"].get("backendIPConfigurations") or [])


def uniform_member(emu, name, instance_id):
    return vmss_path(emu, "rg", name, f"/virtualMachines/{instance_id}/networkInterfaces/nic/ipConfigurations/ipc")


def test_uniform_instances_leave_the_pool_when_upgraded_onto_a_model_without_it(net):
    emu, base = net
    pool = base + "/loadBalancers/lb/backendAddressPools/pool"
    compute = emu.compute()
    spec = in_pool(body(emu, 2, overprovision=False, subnet=base + "/virtualNetworks/vnet/subnets/app"), pool)
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "blue", spec).result()
    assert members(emu, base) == [uniform_member(emu, "blue", i) for i in (0, 1)]

    # the model drops the pool: nothing changes on the load balancer until an instance runs that model
    compute.virtual_machine_scale_sets.begin_update("rg", "blue", {"properties": {"virtualMachineProfile": {
        "networkProfile": in_pool(spec, None)["properties"]["virtualMachineProfile"]["networkProfile"]}}}).result()
    assert members(emu, base) == [uniform_member(emu, "blue", i) for i in (0, 1)]
    compute.virtual_machine_scale_sets.begin_update_instances("rg", "blue", {"instanceIds": ["0"]}).result()
    assert members(emu, base) == [uniform_member(emu, "blue", 1)]

    # a new set with the pool in its model: its instances are in the pool once created; the whole-LB GET agrees
    green = in_pool(body(emu, 2, overprovision=False, subnet=base + "/virtualNetworks/vnet/subnets/app"), pool)
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "green", green).result()
    expected = sorted([uniform_member(emu, "blue", 1)] + [uniform_member(emu, "green", i) for i in (0, 1)])
    assert members(emu, base) == expected
    status, lb, _ = emu.arm("GET", base + "/loadBalancers/lb", api_version=API)
    pools = {p["name"]: p["properties"] for p in lb["properties"]["backendAddressPools"]}
    assert sorted(c["id"] for c in pools["pool"]["backendIPConfigurations"]) == expected
    assert "backendIPConfigurations" not in pools["other"]
    assert members(emu, base, "other") == []

    # deleting a set takes its instances out once the delete is done
    compute.virtual_machine_scale_sets.begin_delete("rg", "green").result()
    wait_until(lambda: members(emu, base) == [uniform_member(emu, "blue", 1)])


def test_flexible_vms_are_members_by_their_own_nics(net):
    emu, base = net
    pool = base + "/loadBalancers/lb/backendAddressPools/pool"
    compute = emu.compute()
    spec = in_pool(body(emu, 2, mode="Flexible", subnet=base + "/virtualNetworks/vnet/subnets/app"), pool)
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "flex", spec).result()
    vms = [vm.as_dict() for vm in compute.virtual_machines.list("rg")]
    nics = sorted(vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"] + "/ipConfigurations/ipc"
                  for vm in vms)
    assert len(nics) == 2 and members(emu, base) == nics


def test_a_put_echoing_members_back_does_not_store_them(net):
    emu, base = net
    status, lb, _ = emu.arm("GET", base + "/loadBalancers/lb", api_version=API)
    lb["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"] = [
        {"id": uniform_member(emu, "ghost", 0)}]
    status, answer, _ = emu.arm("PUT", base + "/loadBalancers/lb", lb, api_version=API)
    assert status == 200, answer
    assert members(emu, base) == []
    status, answer, _ = emu.arm("GET", base + "/loadBalancers/lb/backendAddressPools/nope", api_version=API)
    assert (status, answer["error"]["code"]) == (404, "ResourceNotFound")
