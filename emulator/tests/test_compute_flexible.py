"""Flexible orchestration through the real SDK: instances are Microsoft.Compute/virtualMachines."""
import pytest
from azure.core.exceptions import HttpResponseError

from compute_support import body, health_code, statuses, vmss_path


def flex_vms(compute, rg="rg"):
    return sorted((vm.as_dict() for vm in compute.virtual_machines.list(rg)), key=lambda v: v["name"])


def test_flexible_set_creates_real_virtual_machines(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    vmss = compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "flex", body(emu, 3, mode="Flexible", zones=["1", "2", "3"], health=True)).result().as_dict()
    assert vmss["properties"]["orchestrationMode"] == "Flexible"
    assert vmss["properties"]["singlePlacementGroup"] is False and "overprovision" not in vmss["properties"]
    vms = flex_vms(compute)
    assert len(vms) == 3
    assert {v["properties"]["virtualMachineScaleSet"]["id"].lower() for v in vms} == {vmss["id"].lower()}
    assert sorted(v["zones"][0] for v in vms) == ["1", "2", "3"]               # spread over the zones
    assert all(v["name"].startswith("flex_") and len(v["name"]) == len("flex_") + 8 for v in vms)
    one = compute.virtual_machines.get("rg", vms[0]["name"], expand="instanceView").as_dict()
    assert one["properties"]["hardwareProfile"]["vmSize"] == "Standard_D2s_v3"
    assert one["properties"]["instanceView"]["computerName"].startswith("web")
    view = compute.virtual_machines.instance_view("rg", vms[0]["name"]).as_dict()
    assert statuses(view)["PowerState"] == "PowerState/running"
    assert health_code(view) == "HealthState/healthy"
    assert len(list(compute.virtual_machines.list_all())) == 3
    status, answer, _ = emu.arm("GET", vmss_path(emu, "rg", "flex", "/virtualMachines"))
    assert (status, answer["error"]["code"]) == (400, "BadRequest")           # Uniform-only API


def test_flexible_scale_in_delete_and_vm_actions(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "flex", body(emu, 4, mode="Flexible")).result()
    names = [v["name"] for v in flex_vms(compute)]
    compute.virtual_machines.begin_restart("rg", names[0]).result()
    compute.virtual_machines.begin_deallocate("rg", names[0]).result()
    assert statuses(compute.virtual_machines.instance_view("rg", names[0]).as_dict())["PowerState"] == \
        "PowerState/deallocated"
    compute.virtual_machine_scale_sets.begin_delete_instances("rg", "flex", {"instanceIds": [names[1]]}).result()
    compute.virtual_machines.begin_delete("rg", names[2]).result()
    assert [v["name"] for v in flex_vms(compute)] == [names[0], names[3]]
    assert compute.virtual_machine_scale_sets.get("rg", "flex").sku.capacity == 2
    compute.virtual_machine_scale_sets.begin_update("rg", "flex", {"sku": {"capacity": 1}}).result()
    assert len(flex_vms(compute)) == 1
    with pytest.raises(HttpResponseError) as missing:
        compute.virtual_machines.get("rg", names[1])
    assert missing.value.status_code == 404


def test_priority_mix_places_regular_then_spot(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    spec = body(emu, 6, mode="Flexible", priorityMixPolicy={"baseRegularPriorityCount": 2,
                                                            "regularPriorityPercentageAboveBase": 50})
    spec["properties"]["virtualMachineProfile"].update(priority="Spot", evictionPolicy="Delete",
                                                       billingProfile={"maxPrice": -1})
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "mix", spec).result()
    priorities = sorted(v["properties"]["priority"] for v in flex_vms(compute))
    assert priorities == ["Regular"] * 4 + ["Spot"] * 2


def test_flexible_rules(clean):
    emu = clean
    emu.rg("rg")
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "f"), body(emu, 1, mode="Flexible",
                                                                      singlePlacementGroup=True))
    assert (status, answer["error"]["target"]) == (400, "singlePlacementGroup")
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "f"), body(emu, 1, mode="Flexible", overprovision=True))
    assert (status, answer["error"]["target"]) == (400, "overprovision")
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "f"),
                                body(emu, 1, mode="Flexible", platformFaultDomainCount=5))
    assert (status, answer["error"]["target"]) == (400, "platformFaultDomainCount")
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "empty"), {
        "location": emu.location, "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1}})
    assert status == 201                                                        # an empty Flexible set is fine
