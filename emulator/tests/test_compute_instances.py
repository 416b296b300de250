"""Uniform instances through the real SDK: VM get/list/instance view, actions, protection, model
upgrades, health from rules over time, injected provisioning failures, addresses."""
import time

import pytest
from azure.core.exceptions import HttpResponseError

from conftest import TIME_SCALE
from compute_support import IN_FLIGHT, body, gallery_image, health_code, instance_ids, statuses, vmss_path, wait_until


@pytest.fixture
def fleet(clean):
    """Scale set 'web' in 'rg': 3 instances (ids 0-2), Application Health extension."""
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "web", body(emu, 3, health=True, overprovision=False)).result()
    return emu, compute


def power(compute, iid, rg="rg", name="web"):
    return statuses(compute.virtual_machine_scale_set_vms.get_instance_view(rg, name, iid).as_dict())["PowerState"]


def test_vm_get_list_and_instance_view_shapes(fleet):
    emu, compute = fleet
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "1", expand="instanceView").as_dict()
    # the type Azure's recorded VMSS VM GETs carry (the spec's examples say Microsoft.Compute/virtualMachines)
    assert vm["name"] == "web_1" and vm["instanceId"] == "1" and \
        vm["type"] == "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
    p = vm["properties"]
    assert p["latestModelApplied"] is True and p["provisioningState"] == "Succeeded"
    assert p["osProfile"]["computerName"] == "web000001" and "adminPassword" not in p["osProfile"]
    assert p["osProfile"]["allowExtensionOperations"] is True and p["osProfile"]["requireGuestProvisionSignal"] is True
    view = p["instanceView"]
    assert (view["osName"], view["osVersion"]) == ("ubuntu", "24.04")            # read off ubuntu-24_04-lts
    assert view["placementGroupId"] == compute.virtual_machine_scale_sets.get("rg", "web").unique_id
    assert (view["platformFaultDomain"], view["platformUpdateDomain"]) == (1, 1)
    assert statuses(view) == {"ProvisioningState": "ProvisioningState/succeeded", "PowerState": "PowerState/running"}
    assert health_code(view) == "HealthState/healthy"
    listed = list(compute.virtual_machine_scale_set_vms.list("rg", "web", expand="instanceView"))
    assert [v.instance_id for v in listed] == ["0", "1", "2"]
    assert all(v.properties.instance_view.vm_health.status.code == "HealthState/healthy" for v in listed)
    status, answer, _ = emu.arm("GET", vmss_path(emu, "rg", "web", "/virtualMachines"),
                                raw_query="$filter=startswith(instanceView/statuses/code,'PowerState')%20eq%20true"
                                          "&$select=instanceView")
    assert status == 200 and "instanceView" in answer["value"][0]["properties"]
    with pytest.raises(HttpResponseError) as missing:
        compute.virtual_machine_scale_set_vms.get("rg", "web", "42")
    assert missing.value.status_code == 404


def test_scale_set_actions_move_power_states_over_time(fleet):
    emu, compute = fleet
    emu.control.set_config(time_scale=IN_FLIGHT)
    poller = compute.virtual_machine_scale_sets.begin_deallocate("rg", "web", {"instanceIds": ["0", "1"]})
    assert power(compute, "0") == "PowerState/deallocating"
    view = compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", "0").as_dict()
    assert statuses(view)["ProvisioningState"] == "ProvisioningState/updating"
    poller.result()
    assert (power(compute, "0"), power(compute, "1"), power(compute, "2")) == \
        ("PowerState/deallocated", "PowerState/deallocated", "PowerState/running")
    emu.control.set_config(time_scale=TIME_SCALE)               # nothing is read in flight below
    compute.virtual_machine_scale_sets.begin_start("rg", "web").result()            # no ids: all
    assert power(compute, "0") == "PowerState/running"
    compute.virtual_machine_scale_sets.begin_power_off("rg", "web", {"instanceIds": ["2"]}).result()
    assert power(compute, "2") == "PowerState/stopped"
    compute.virtual_machine_scale_sets.begin_restart("rg", "web").result()
    compute.virtual_machine_scale_sets.begin_reimage("rg", "web", {"instanceIds": ["1"]}).result()
    status, answer, _ = emu.arm("POST", vmss_path(emu, "rg", "web", "/restart"), {"instanceIds": ["7"]})
    assert (status, answer["error"]["code"], answer["error"]["target"]) == (400, "InvalidParameter", "instanceIds")


def test_per_vm_actions_and_delete_reduce_capacity(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_set_vms.begin_deallocate("rg", "web", "2").result()
    assert power(compute, "2") == "PowerState/deallocated"
    compute.virtual_machine_scale_set_vms.begin_start("rg", "web", "2").result()
    compute.virtual_machine_scale_set_vms.begin_restart("rg", "web", "2").result()
    compute.virtual_machine_scale_set_vms.begin_reimage("rg", "web", "2").result()
    compute.virtual_machine_scale_set_vms.begin_power_off("rg", "web", "2").result()
    assert power(compute, "2") == "PowerState/stopped"
    compute.virtual_machine_scale_set_vms.begin_delete("rg", "web", "2").result()
    assert instance_ids(compute, "rg", "web") == ["0", "1"]
    assert compute.virtual_machine_scale_sets.get("rg", "web").sku.capacity == 2
    compute.virtual_machine_scale_sets.begin_delete_instances("rg", "web", {"instanceIds": ["0"]}).result()
    assert instance_ids(compute, "rg", "web") == ["1"]
    assert compute.virtual_machine_scale_sets.get("rg", "web").sku.capacity == 1


def test_busy_instance_refuses_another_operation(fleet):
    emu, compute = fleet
    emu.control.set_config(time_scale=IN_FLIGHT)
    poller = compute.virtual_machine_scale_set_vms.begin_restart("rg", "web", "0")
    status, answer, _ = emu.arm("POST", vmss_path(emu, "rg", "web", "/virtualMachines/0/deallocate"))
    assert (status, answer["error"]["code"]) == (409, "Conflict")
    status, _, _ = emu.arm("POST", vmss_path(emu, "rg", "web", "/virtualMachines/1/deallocate"))
    assert status == 202                                                       # another instance is free
    poller.result()


def test_protection_is_honoured_on_scale_in_and_scale_set_actions(fleet):
    emu, compute = fleet
    for iid, policy in (("2", {"protectFromScaleIn": True}), ("1", {"protectFromScaleSetActions": True})):
        vm = compute.virtual_machine_scale_set_vms.get("rg", "web", iid).as_dict()     # GET, change, PUT
        vm["properties"]["protectionPolicy"] = policy
        compute.virtual_machine_scale_set_vms.begin_update("rg", "web", iid, vm).result()
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "2").as_dict()
    assert vm["properties"]["protectionPolicy"] == {"protectFromScaleIn": True}
    status, answer, _ = emu.arm("POST", vmss_path(emu, "rg", "web", "/restart"), {"instanceIds": ["1"]})
    assert (status, answer["error"]["code"]) == (409, "OperationNotAllowed")
    compute.virtual_machine_scale_set_vms.begin_restart("rg", "web", "1").result()   # the user's own VM call
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"sku": {"capacity": 1}}).result()
    assert instance_ids(compute, "rg", "web") == ["1", "2"]                   # both protected ones stay


def test_model_change_then_manual_upgrade(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                              "sku": "server", "version": "24.04.202411"}}}}}).result()
    latest = {v.instance_id: v.properties.latest_model_applied
              for v in compute.virtual_machine_scale_set_vms.list("rg", "web")}
    assert latest == {"0": False, "1": False, "2": False}
    emu.control.set_config(time_scale=IN_FLIGHT)
    poller = compute.virtual_machine_scale_sets.begin_update_instances("rg", "web", {"instanceIds": ["0", "2"]})
    assert statuses(compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", "0").as_dict())[
        "ProvisioningState"] == "ProvisioningState/updating"
    poller.result()
    vms = {v.instance_id: v.as_dict() for v in compute.virtual_machine_scale_set_vms.list("rg", "web")}
    assert {k: v["properties"]["latestModelApplied"] for k, v in vms.items()} == {"0": True, "1": False, "2": True}
    ref = vms["0"]["properties"]["storageProfile"]["imageReference"]
    assert ref["version"] == "24.04.202411" and ref["exactVersion"] == "24.04.202411"
    assert vms["1"]["properties"]["storageProfile"]["imageReference"]["version"] == "latest"


def test_automatic_upgrade_policy_updates_every_instance(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "web", body(emu, 2, upgrade="Automatic", overprovision=False)).result()
    compute.virtual_machine_scale_sets.begin_update(
        "rg", "web", {"sku": {"name": "Standard_D4s_v3"}}).result()
    assert all(v.properties.latest_model_applied for v in compute.virtual_machine_scale_set_vms.list("rg", "web"))
    assert next(iter(compute.virtual_machine_scale_set_vms.list("rg", "web"))).sku.name == "Standard_D4s_v3"


def test_health_initializing_then_rules_over_time(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    spec = body(emu, 2, health=True, grace=200, overprovision=False)                      # 2 s scaled
    spec["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0]["properties"]["settings"].update(
        intervalInSeconds=50, numberOfProbes=3)                   # Azure: Initializing until 3 probes, 1.5 s here
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()

    def health(iid):
        return health_code(compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", iid).as_dict())
    assert health("0") == "HealthState/initializing"
    wait_until(lambda: health("0") == "HealthState/healthy")
    emu.control.add_health_rule(match={"scale_set": "web", "instance_ids": ["1"]}, state="Unhealthy")
    assert (health("0"), health("1")) == ("HealthState/healthy", "HealthState/unhealthy")
    emu.control.add_health_rule(match={"scale_set": "web"}, state="Unknown")   # the last matching rule wins:
    wait_until(lambda: health("1") == "HealthState/unknown")          # no verdict, Unknown once the grace is over
    emu.control.clear_health_rules()
    compute.virtual_machine_scale_sets.begin_deallocate("rg", "web", {"instanceIds": ["0"]}).result()
    assert health("0") is None                                                # no signal from a stopped VM
    compute.virtual_machine_scale_sets.begin_start("rg", "web", {"instanceIds": ["0"]}).result()
    assert health("0") == "HealthState/initializing"                          # probes start over after a boot


def test_health_by_image_version_and_flapping(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "web", body(emu, 2, health=True, overprovision=False, image=gallery_image(emu, "1.6.0"))).result()
    emu.control.add_health_rule(match={"image_version": "1.7.0"}, state="Unhealthy")
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"imageReference": gallery_image(emu, "1.7.0")}}}}).result()
    compute.virtual_machine_scale_sets.begin_update_instances("rg", "web", {"instanceIds": ["0"]}).result()

    def health(iid):
        return health_code(compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", iid).as_dict())
    wait_until(lambda: health("0") == "HealthState/unhealthy")
    assert health("1") == "HealthState/healthy"
    emu.control.add_health_rule(match={"instance_ids": ["1"]}, state="Flapping", period=100)   # 1 s scaled
    seen = set()
    wait_until(lambda: seen.add(health("1")) or len(seen) == 2, timeout=10)
    assert seen == {"HealthState/healthy", "HealthState/unhealthy"}


def test_injected_failure_fails_the_operation_and_the_instance(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg", "web", body(emu, 2, health=True, overprovision=False, image=gallery_image(emu, "1.6.0"))).result()
    emu.control.call("POST", "instance-failures", {"match": {"scale_set": "web", "image_version": "1.7.0"},
                                                   "code": "VMExtensionProvisioningError",
                                                   "message": "Extension 'hsm-agent' failed: HSM unreachable"})
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"imageReference": gallery_image(emu, "1.7.0")}}}}).result()
    with pytest.raises(HttpResponseError) as failed:
        compute.virtual_machine_scale_sets.begin_update_instances("rg", "web", {"instanceIds": ["1"]}).result()
    assert failed.value.error.code == "VMExtensionProvisioningError"
    assert "HSM unreachable" in failed.value.error.message
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "1", expand="instanceView").as_dict()
    assert vm["properties"]["provisioningState"] == "Failed"
    assert statuses(vm["properties"]["instanceView"])["ProvisioningState"] == \
        "ProvisioningState/failed/VMExtensionProvisioningError"
    assert vm["properties"]["latestModelApplied"] is True          # the model was applied; its extension failed
    assert compute.virtual_machine_scale_set_vms.get("rg", "web", "0").properties.provisioning_state == "Succeeded"


def test_failing_create_fails_the_scale_set(clean):
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    emu.control.call("POST", "instance-failures",
                     {"match": {"scale_set": "bad"}, "code": "VMExtensionProvisioningError"})
    with pytest.raises(HttpResponseError) as failed:
        compute.virtual_machine_scale_sets.begin_create_or_update("rg", "bad", body(emu, 1, health=True)).result()
    assert failed.value.error.code == "VMExtensionProvisioningError"
    assert compute.virtual_machine_scale_sets.get("rg", "bad").properties.provisioning_state == "Failed"


def test_network_neighbours_see_the_instances(clean):
    emu = clean
    emu.rg("rg")
    net = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg/providers/Microsoft.Network"
    status, _, _ = emu.arm("PUT", net + "/virtualNetworks/vnet", {"location": emu.location, "properties": {
        "addressSpace": {"addressPrefixes": ["10.8.0.0/16"]},
        "subnets": [{"name": "app", "properties": {"addressPrefix": "10.8.1.0/24"}}]}}, api_version="2024-05-01")
    assert status in (200, 201)
    status, _, _ = emu.arm("PUT", net + "/loadBalancers/lb", {"location": emu.location, "properties": {
        "backendAddressPools": [{"name": "pool"}]}}, api_version="2024-05-01")
    assert status in (200, 201)
    spec = body(emu, 2, overprovision=False, subnet=net + "/virtualNetworks/vnet/subnets/app")
    ipc = spec["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] = [
        {"id": net + "/loadBalancers/lb/backendAddressPools/pool"}]
    compute = emu.compute()
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    status, answer, _ = emu.arm("DELETE", net + "/virtualNetworks/vnet/subnets/app", api_version="2024-05-01")
    assert (status, answer["error"]["code"]) == (400, "InUseSubnetCannotBeDeleted")
    status, lb, _ = emu.arm("GET", net + "/loadBalancers/lb", api_version="2024-05-01")
    members = [c["id"] for c in lb["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"]]
    assert members == [vmss_path(emu, "rg", "web", f"/virtualMachines/{i}/networkInterfaces/nic/ipConfigurations/ipc")
                       for i in (0, 1)]


def test_timestamps_are_real(fleet):
    emu, compute = fleet
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "0").as_dict()
    created = vm["properties"]["timeCreated"]
    assert created.startswith(time.strftime("%Y-", time.gmtime()))


def test_images_of_an_emulated_gallery_must_be_available_in_the_region(clean):
    emu = clean
    emu.rg("images")
    emu.rg("rg")
    compute = emu.compute()
    compute.galleries.begin_create_or_update("images", "gal", {"location": emu.location}).result()
    compute.gallery_images.begin_create_or_update("images", "gal", "web", {
        "location": emu.location, "properties": {
            "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
            "identifier": {"publisher": "fleetops", "offer": "web", "sku": "cis"}}}).result()
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "web"), body(emu, 1, image=gallery_image(emu)))
    assert (status, answer["error"]["code"]) == (400, "InvalidParameter")        # nothing is "latest" yet
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "web"), body(emu, 1, image=gallery_image(emu, "9.9.9")))
    assert (status, answer["error"]["code"]) == (404, "GalleryImageNotFound")
    status, _, _ = emu.arm("GET", vmss_path(emu, "rg", "web"))
    assert status == 404                                                            # nothing was written
