"""Model generations: latestModelApplied as Azure judges it (the model version an instance runs, not its
content), the 10-model limit, and the control-API switch back to content comparison (`latest_model`)."""
import json

import pytest
from azure.core.exceptions import HttpResponseError

import conftest
from compute_support import body, vmss_path
from emulator import main as runtime
from emulator.client import ControlError

UBUNTU = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}


def image(version):
    ref = dict(UBUNTU, version=version)
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": ref}}}}


def latest(compute, name="web"):
    return {v.instance_id: v.properties.latest_model_applied
            for v in compute.virtual_machine_scale_set_vms.list("rg", name)}


def versions(compute, name="web"):
    return {v.instance_id: v.properties.storage_profile.image_reference.version
            for v in compute.virtual_machine_scale_set_vms.list("rg", name)}


def upgrade(compute, *ids, name="web"):
    compute.virtual_machine_scale_sets.begin_update_instances("rg", name, {"instanceIds": list(ids)}).result()


@pytest.fixture(params=["generation", "content"])
def mode(request, clean):
    clean.control.set_config(latest_model=request.param)
    return request.param


@pytest.fixture
def fleet(clean, mode):
    """Scale set 'web' in 'rg', Manual upgrade policy: 3 instances (0-2) on image version 'latest'."""
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    spec = body(emu, 3, overprovision=False)
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    return emu, compute, mode


def test_change_upgrade_and_revert(fleet):
    emu, compute, mode = fleet
    assert latest(compute) == {"0": True, "1": True, "2": True}
    compute.virtual_machine_scale_sets.begin_update("rg", "web", image("24.04.202411")).result()
    assert latest(compute) == {"0": False, "1": False, "2": False}
    upgrade(compute, "0")
    assert latest(compute) == {"0": True, "1": False, "2": False}
    compute.virtual_machine_scale_sets.begin_update("rg", "web", image("latest")).result()      # the revert
    if mode == "generation":     # a revert is a new model version: nobody runs it yet
        assert latest(compute) == {"0": False, "1": False, "2": False}
    else:                        # equal content counts as latest
        assert latest(compute) == {"0": False, "1": True, "2": True}
    # every instance still reports the model it runs
    assert versions(compute) == {"0": "24.04.202411", "1": "latest", "2": "latest"}
    upgrade(compute, "0", "1", "2")
    assert latest(compute) == {"0": True, "1": True, "2": True}
    assert set(versions(compute).values()) == {"latest"}


def test_tags_and_capacity_changes_keep_instances_latest(fleet):
    emu, compute, _ = fleet
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"tags": {"team": "payments"}}).result()
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"sku": {"capacity": 4}}).result()
    assert latest(compute) == {"0": True, "1": True, "2": True, "3": True}


def test_resending_os_disk_makes_instances_outdated(fleet):
    emu, compute, mode = fleet
    read = compute.virtual_machine_scale_sets.get("rg", "web").as_dict()["properties"][
        "virtualMachineProfile"]["storageProfile"]["osDisk"]
    # resent as a PATCH can carry it: VirtualMachineScaleSetUpdateOSDisk has no osType, createOption or name
    os_disk = {key: value for key, value in read.items() if key not in ("osType", "createOption", "name")}
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"osDisk": os_disk}}}}).result()
    # azure-rest-api-specs#22552: osDisk in the body, even unchanged, is a new model for Azure
    assert latest(compute) == ({"0": False, "1": False, "2": False} if mode == "generation"
                               else {"0": True, "1": True, "2": True})
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"sku": {"capacity": 4}}).result()
    assert latest(compute)["3"] is True                    # a new instance gets the current generation


def test_unchanged_put_without_os_disk_keeps_instances_latest(fleet):
    emu, compute, _ = fleet
    status, answer, _ = emu.arm("PUT", vmss_path(emu, "rg", "web"), body(emu, 3, overprovision=False))
    assert status == 200, answer
    assert latest(compute) == {"0": True, "1": True, "2": True}


def test_model_limit(fleet):
    """Ten generations referenced by instances: the eleventh is refused (generation mode) until the VMs are
    upgraded; nothing is written by the refused change."""
    emu, compute, mode = fleet
    # Ten instances and nine upgrades only have to end: a tenth of the suite's scale (the next test's `clean` restores it).
    emu.control.set_config(time_scale=conftest.TIME_SCALE / 10)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"sku": {"capacity": 10}}).result()
    for n in range(1, 10):              # generation n+1, run by instance n; instance 0 stays on generation 1
        compute.virtual_machine_scale_sets.begin_update("rg", "web", image(f"24.04.2024{n:02d}")).result()
        upgrade(compute, str(n))
    assert len(set(versions(compute).values())) == 10
    before = compute.virtual_machine_scale_sets.get("rg", "web").as_dict()
    status, answer, _ = emu.arm("PATCH", vmss_path(emu, "rg", "web"), image("24.04.202410"))
    if mode == "content":
        assert status == 200, answer
        return
    assert status == 409, answer
    assert answer["error"]["code"] == "OperationNotAllowed"
    assert answer["error"]["message"] == (
        "Virtual Machine Scale Set 'web' has reached its limit of 10 models that may be referenced by one or "
        "more VMs belonging to the Virtual Machine Scale Set. Upgrade the VMs to the latest model of the "
        "Virtual Machine Scale Set before trying again.")
    after = compute.virtual_machine_scale_sets.get("rg", "web").as_dict()
    assert after["etag"] == before["etag"]
    assert after["properties"]["virtualMachineProfile"] == before["properties"]["virtualMachineProfile"]
    # changes that start no generation still pass
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"tags": {"team": "payments"}}).result()
    with pytest.raises(HttpResponseError) as refused:       # the SDK sees the same refusal
        compute.virtual_machine_scale_sets.begin_update("rg", "web", image("24.04.202410")).result()
    assert refused.value.status_code == 409
    upgrade(compute, "0")                                   # generation 1 is no longer referenced
    compute.virtual_machine_scale_sets.begin_update("rg", "web", image("24.04.202410")).result()
    assert latest(compute)["0"] is False


@pytest.mark.parametrize("orchestration", ["Uniform", "Flexible"])
def test_rolling_upgrade_moves_instances_off_the_current_generation(clean, mode, orchestration):
    """Azure's rolling upgrade of a model write rolls exactly the instances not on the latest model, by the
    same rule on both orchestration modes (Flexible VMs carry no latestModelApplied, as in Azure)."""
    emu = clean
    emu.rg("rg")
    compute = emu.compute()
    extra = {"overprovision": False} if orchestration == "Uniform" else {}
    spec = body(emu, 2, mode=orchestration, health=True, platformFaultDomainCount=1, **extra,
                upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}})
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    if orchestration == "Flexible":
        assert all("latestModelApplied" not in json.dumps(v.as_dict()) for v in compute.virtual_machines.list("rg"))
    read = compute.virtual_machine_scale_sets.get("rg", "web").as_dict()["properties"][
        "virtualMachineProfile"]["storageProfile"]["osDisk"]
    # resent as a PATCH can carry it: VirtualMachineScaleSetUpdateOSDisk has no osType, createOption or name
    os_disk = {key: value for key, value in read.items() if key not in ("osType", "createOption", "name")}
    seq = max((e["seq"] for e in emu.control.call("GET", "events")["value"]), default=0)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"osDisk": os_disk}}}}).result()
    started = [e for e in emu.control.call("GET", f"events?kind=rolling.started&since={seq}")["value"]]
    if mode == "generation":
        assert [e["instances"] for e in started] == [2]
    else:
        assert started == []


def test_latest_model_config(clean):
    emu = clean
    assert emu.control.call("GET", "config")["latest_model"] == "generation"
    for bad in ("Generation", "hash", 1):
        with pytest.raises(ControlError, match="400.*InvalidConfig.*'generation' or 'content'"):
            emu.control.set_config(latest_model=bad)
    assert emu.control.set_config(latest_model="content")["latest_model"] == "content"
    assert emu.control.call("GET", "config")["latest_model"] == "content"


def test_serve_flag_sets_latest_model_and_generations_survive_a_restart(tmp_path):
    emu = conftest.start(tmp_path / "emu", "--no-throttling", "--latest-model", "content")
    try:
        assert emu.control.call("GET", "config")["latest_model"] == "content"
        emu.rg("rg")
        compute = emu.compute()
        spec = body(emu, 2, overprovision=False)
        compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
        compute.virtual_machine_scale_sets.begin_update("rg", "web", image("24.04.202411")).result()
        compute.virtual_machine_scale_sets.begin_update("rg", "web", image("latest")).result()
        assert latest(compute) == {"0": True, "1": True}
        runtime.stop(emu.state_dir)
        emu = conftest.start(tmp_path / "emu", "--no-throttling", "--latest-model", "generation")
        assert latest(emu.compute()) == {"0": False, "1": False}    # the generations were tracked all along
    finally:
        runtime.stop(emu.state_dir)
