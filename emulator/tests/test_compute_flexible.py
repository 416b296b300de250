"""Flexible orchestration through the real SDK: instances are Microsoft.Compute/virtualMachines."""
import pytest
from azure.core.exceptions import HttpResponseError

from compute_support import body, health_code, statuses, vmss_path, wait_until


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


# --- what Azure refuses on Flexible, and the manual-upgrade preview ---------------------------------

FEATURE_PATH = "/providers/Microsoft.Features/providers/Microsoft.Compute/features/ImageReferenceUpgradeForVmoVMs"
NEW_IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "24.04.202502210"}
EXTRA = {"name": "script", "properties": {
    "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
    "autoUpgradeMinorVersion": True, "settings": {"commandToExecute": "true"},
    "protectedSettings": {"storageAccountKey": "s3cret-key"}}}


def flex_set(emu, compute, capacity=2):
    emu.rg("rg")
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "flex", body(emu, capacity, mode="Flexible", health=True)).result()
    return [v["name"] for v in flex_vms(compute)]


def patch_profile(compute, **profile):
    compute.virtual_machine_scale_sets.begin_update("rg", "flex", {"properties": {"virtualMachineProfile": profile}}
                                                     ).result()


def vm_doc(compute, name):
    return compute.virtual_machines.get("rg", name).as_dict()


def test_scale_set_instance_view_is_refused_on_flexible(clean):
    emu = clean
    compute = emu.compute()
    flex_set(emu, compute, 1)
    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machine_scale_sets.get_instance_view("rg", "flex")
    assert (refused.value.status_code, refused.value.error.code) == (400, "BadRequest")
    assert refused.value.error.message == ("Operation 'VirtualMachineScaleSets.instanceView.GET' is not allowed on "
                                           "Virtual Machine Scale Set 'flex'.")
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "uni", body(emu, 1)).result()
    assert compute.virtual_machine_scale_sets.get_instance_view("rg", "uni").virtual_machine is not None


def test_flexible_vm_resources_are_its_extensions_without_secrets(clean):
    emu = clean
    compute = emu.compute()
    name = flex_set(emu, compute, 1)[0]
    resources = vm_doc(compute, name)["resources"]
    vm_id = vm_doc(compute, name)["id"]
    assert resources == [{
        "id": f"{vm_id}/extensions/health", "name": "health", "type": "Microsoft.Compute/virtualMachines/extensions",
        "location": emu.location, "properties": {
            "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
            "autoUpgradeMinorVersion": True, "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"},
            "provisioningState": "Succeeded"}}]


def test_extension_only_manual_upgrade_needs_no_feature_and_moves_extensions(clean):
    emu = clean
    compute = emu.compute()
    names = flex_set(emu, compute)
    current = compute.virtual_machine_scale_sets.get("rg", "flex").as_dict()
    extensions = current["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    patch_profile(compute, extensionProfile={"extensions": extensions + [EXTRA]})
    assert [r["name"] for r in vm_doc(compute, names[0])["resources"]] == ["health"]   # not before the upgrade
    compute.virtual_machine_scale_sets.begin_update_instances("rg", "flex", {"instanceIds": [names[0]]}).result()
    moved, untouched = vm_doc(compute, names[0]), vm_doc(compute, names[1])
    assert [r["name"] for r in moved["resources"]] == ["health", "script"]
    script = moved["resources"][1]["properties"]
    assert script["settings"] == {"commandToExecute": "true"} and "protectedSettings" not in script
    assert "s3cret-key" not in str(moved)
    assert [r["name"] for r in untouched["resources"]] == ["health"]


def test_image_upgrade_of_flexible_vms_needs_the_preview_feature(clean):
    emu = clean
    compute = emu.compute()
    names = flex_set(emu, compute)
    old_image = vm_doc(compute, names[0])["properties"]["storageProfile"]["imageReference"]
    patch_profile(compute, storageProfile={"imageReference": NEW_IMAGE})
    mark = emu.traffic_mark()
    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machine_scale_sets.begin_update_instances("rg", "flex", {"instanceIds": [names[0]]})
    assert (refused.value.status_code, refused.value.error.code) == (400, "OperationNotAllowed")
    assert "Microsoft.Compute/ImageReferenceUpgradeForVmoVMs" in refused.value.error.message
    assert "az feature register" in refused.value.error.message
    written = [e for e in emu.control.traffic(since=mark) if e["liveRequest"]["method"] != "GET"]
    assert [e["liveResponse"]["statusCode"] for e in written] == ["400"]      # refused before any write
    assert vm_doc(compute, names[0])["properties"]["storageProfile"]["imageReference"] == old_image
    assert vm_doc(compute, names[0])["properties"]["provisioningState"] == "Succeeded"

    sub = f"/subscriptions/{emu.subscription_id}"
    status, feature, _ = emu.arm("POST", sub + FEATURE_PATH + "/register", api_version="2021-07-01")
    assert (status, feature["properties"]["state"]) == (200, "Registering")
    with pytest.raises(HttpResponseError) as registering:     # Registering is not Registered yet
        compute.virtual_machine_scale_sets.begin_update_instances("rg", "flex", {"instanceIds": [names[0]]})
    assert registering.value.error.code == "OperationNotAllowed"
    wait_until(lambda: emu.arm("GET", sub + FEATURE_PATH, api_version="2021-07-01")[1]["properties"]["state"]
               == "Registered", timeout=30)
    compute.virtual_machine_scale_sets.begin_update_instances("rg", "flex", {"instanceIds": [names[0]]}).result()
    upgraded = vm_doc(compute, names[0])["properties"]["storageProfile"]["imageReference"]
    assert upgraded["version"] == NEW_IMAGE["version"]
    assert vm_doc(compute, names[1])["properties"]["storageProfile"]["imageReference"] == old_image
