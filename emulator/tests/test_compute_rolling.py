"""Azure's own rolling upgrades through the real SDK: a model change in Rolling mode, osRollingUpgrade,
extensionRollingUpgrade, rollingUpgrades/latest and cancel, osUpgradeHistory, maxSurge, pauses, the
unhealthy checks with their error codes and rollback, the automatic OS image upgrade, restarts."""
import json
import re
import time
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

import conftest
from compute_support import body, gallery_image, wait_until
from emulator import main as runtime
from emulator.specs import SpecIndex

SPECS = SpecIndex.load()


def rolling_body(emu, capacity, *, image=None, pause=None, **policy):
    """A Rolling-mode Uniform set (fault domain 1: batch sizes follow maxBatchInstancePercent alone)."""
    rolling = dict({"maxBatchInstancePercent": 50}, **policy)
    if pause:
        rolling["pauseTimeBetweenBatches"] = pause
    return body(emu, capacity, health=True, overprovision=False, platformFaultDomainCount=1,
                image=image or gallery_image(emu, "1.0.0"), upgrade="Rolling",
                upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": rolling})


def new_image(emu, version):
    return {"properties": {"virtualMachineProfile": {"storageProfile": {
        "imageReference": gallery_image(emu, version)}}}}


def events(emu, kind, since=0):
    return [e for e in emu.control.call("GET", f"events?kind={kind}&since={since}")["value"]]


def mark(emu):
    found = emu.control.call("GET", "events")["value"]
    return found[-1]["seq"] if found else 0


def versions(compute, rg="rg", name="web"):
    out = {}
    for vm in compute.virtual_machine_scale_set_vms.list(rg, name):
        p = vm.as_dict()["properties"]
        out[vm.instance_id] = (p["storageProfile"]["imageReference"].get("exactVersion"), p["latestModelApplied"])
    return out


def provisioning(compute, rg="rg", name="web"):
    return compute.virtual_machine_scale_sets.get(rg, name).properties.provisioning_state


def running(compute, rg="rg", name="web"):
    return compute.virtual_machine_scale_set_rolling_upgrades.get_latest(rg, name).properties.running_status.code


FAST = 0.005    # a batch (instance_upgrade, 120 s) takes 0.6 s, the 5-minute health wait 1.5 s
IN_FLIGHT = 0.02  # for a test that reads an upgrade in flight: a batch takes 2.4 s, so a busy machine still reads it


@pytest.fixture
def fleet(clean):
    clean.control.set_config(time_scale=FAST)
    clean.rg("rg")
    return clean, clean.compute()


def create(compute, emu, capacity, **kwargs):
    return compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", rolling_body(
        emu, capacity, **kwargs)).result()


# --- a model change in Rolling mode ---------------------------------------------------------------------

def test_model_change_rolls_batch_after_batch(fleet):
    emu, compute = fleet
    create(compute, emu, 4)
    emu.control.set_config(time_scale=IN_FLIGHT)
    seq = mark(emu)
    poller = compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0"))
    now = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()
    assert now["type"] == "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades" and "id" not in now
    assert now["properties"]["runningStatus"]["code"] == "RollingForward"
    assert now["properties"]["runningStatus"]["lastAction"] == "Start"
    assert now["properties"]["progress"] == {"successfulInstanceCount": 0, "failedInstanceCount": 0,
                                             "inProgressInstanceCount": 2, "pendingInstanceCount": 2}
    assert now["properties"]["policy"] == {
        "maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 20, "maxUnhealthyUpgradedInstancePercent": 20,
        "pauseTimeBetweenBatches": "PT0S", "rollbackFailedInstancesOnPolicyBreach": False, "maxSurge": False}
    assert provisioning(compute) == "Updating"
    poller.result()                     # the write's LRO lasts as long as the rolling upgrade
    done = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert done["runningStatus"]["code"] == "Completed" and "error" not in done
    assert done["progress"] == {"successfulInstanceCount": 4, "failedInstanceCount": 0,
                                "inProgressInstanceCount": 0, "pendingInstanceCount": 0}
    assert versions(compute) == {i: ("1.1.0", True) for i in "0123"}
    assert provisioning(compute) == "Succeeded"
    started = events(emu, "rolling.batch_started", seq)
    assert [e["instance_ids"] for e in started] == [["0", "1"], ["2", "3"]]
    healthy = events(emu, "rolling.batch_healthy", seq)
    assert [e["batch"] for e in healthy] == [1, 2]
    assert healthy[0]["ts"] <= started[1]["ts"]            # the next batch waits for the previous one's health
    assert [e["code"] for e in events(emu, "rolling.finished", seq)] == ["Completed"]
    # a write that changes nothing starts no upgrade
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"tags": {"a": "b"}}).result()
    assert len(events(emu, "rolling.started", seq)) == 1
    assert list(compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web")) == []   # not an OS upgrade


def test_batches_stay_within_a_fault_domain(fleet):
    emu, compute = fleet
    spec = rolling_body(emu, 4, maxBatchInstancePercent=100)
    spec["properties"]["platformFaultDomainCount"] = 2
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    seq = mark(emu)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    assert [e["instance_ids"] for e in events(emu, "rolling.batch_started", seq)] == [["0", "2"], ["1", "3"]]


def test_pre_check_refuses_to_start_over_max_unhealthy(fleet):
    emu, compute = fleet
    create(compute, emu, 5)
    emu.control.add_health_rule(match={"instance_ids": ["1", "3"]}, state="Unhealthy")
    wait_until(lambda: compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", "3").vm_health.status
               .code == "HealthState/unhealthy")
    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    assert refused.value.error.code == "MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade"
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["runningStatus"]["code"] == "Faulted"
    assert latest["error"]["code"] == "MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade"
    assert "40% of instances" in latest["error"]["message"]
    assert latest["progress"]["pendingInstanceCount"] == 5
    assert versions(compute) == {i: ("1.0.0", False) for i in "01234"}      # nothing was touched
    assert provisioning(compute) == "Failed"


@pytest.mark.parametrize("rollback", [True, False])
def test_unhealthy_batch_faults_the_upgrade(fleet, rollback):
    emu, compute = fleet
    create(compute, emu, 4, maxBatchInstancePercent=25, rollbackFailedInstancesOnPolicyBreach=rollback)
    emu.control.add_health_rule(match={"image_version": "1.1.0"}, state="Unhealthy")
    seq = mark(emu)
    with pytest.raises(HttpResponseError) as faulted:
        compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    code = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert faulted.value.error.code == code
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["runningStatus"]["code"] == "Faulted" and latest["error"]["code"] == code
    assert latest["error"]["message"].endswith("100% of instances are in an unhealthy state after being upgraded - "
                                               "more than the threshold of 20%. The most impactful error is: Instance "
                                               "found to be unhealthy or unreachable.. First failed instance ID is: 0.")
    assert latest["progress"] == {"successfulInstanceCount": 0, "failedInstanceCount": 1,
                                  "inProgressInstanceCount": 0, "pendingInstanceCount": 3}
    started, unhealthy = events(emu, "rolling.batch_started", seq), events(emu, "rolling.batch_unhealthy", seq)
    assert [e["instance_ids"] for e in started] == [["0"]] and unhealthy[0]["failed_instance_ids"] == ["0"]
    assert unhealthy[0]["ts"] - started[0]["ts"] >= emu_scaled(emu, 120 + 300) * 0.99   # upgrade + 5 min wait
    if rollback:     # back to the model (and image) it had
        wait_until(lambda: versions(compute)["0"] == ("1.0.0", False))
    else:
        assert versions(compute)["0"] == ("1.1.0", True)
    assert {i: v for i, v in versions(compute).items() if i != "0"} == {i: ("1.0.0", False) for i in "123"}


def emu_scaled(emu, seconds):
    return seconds * emu.control.call("GET", "config")["time_scale"]


def test_failed_instances_within_the_threshold_let_the_upgrade_go_on(fleet):
    emu, compute = fleet
    create(compute, emu, 4, maxBatchInstancePercent=25, maxUnhealthyUpgradedInstancePercent=50,
           maxUnhealthyInstancePercent=50)       # the failed instance counts as unhealthy in the pre-checks too
    emu.control.call("POST", "instance-failures", {"match": {"instance_ids": ["1"]},
                                                   "code": "VMExtensionProvisioningError"})
    compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["runningStatus"]["code"] == "Completed"
    assert latest["progress"]["successfulInstanceCount"] == 3 and latest["progress"]["failedInstanceCount"] == 1
    assert latest["error"]["code"] == "RollingUpgradeInProgressWithFailedUpgradedVMs"


def test_cancel_lets_the_batch_in_flight_finish(fleet):
    emu, compute = fleet
    create(compute, emu, 4, maxBatchInstancePercent=25)
    emu.control.set_config(time_scale=IN_FLIGHT)
    poller = compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0"))
    compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel("rg", "web").result()
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert (latest["runningStatus"]["code"], latest["runningStatus"]["lastAction"]) == ("Cancelled", "Cancel")
    assert latest["progress"] == {"successfulInstanceCount": 1, "failedInstanceCount": 0,
                                  "inProgressInstanceCount": 0, "pendingInstanceCount": 3}
    assert versions(compute) == {"0": ("1.1.0", True), "1": ("1.0.0", False), "2": ("1.0.0", False),
                                 "3": ("1.0.0", False)}
    with pytest.raises(HttpResponseError):
        poller.result()                                      # the write's LRO: Canceled
    assert provisioning(compute) == "Succeeded"
    emu.control.set_config(time_scale=FAST)                  # nothing in flight any more
    # a write that changes nothing restarts it (the docs' "Restart a Rolling Upgrade")
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {}).result()
    assert set(versions(compute).values()) == {("1.1.0", True)}


def test_max_surge_creates_new_instances_before_deleting_old_ones(fleet):
    emu, compute = fleet
    create(compute, emu, 2, maxSurge=True)
    emu.control.set_config(time_scale=IN_FLIGHT)
    seq = mark(emu)
    poller = compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0"))
    assert sorted(versions(compute)) == ["0", "1", "2"]             # 2 is created, 0 still runs
    poller.result()
    assert versions(compute) == {"2": ("1.1.0", True), "3": ("1.1.0", True)}
    assert compute.virtual_machine_scale_sets.get("rg", "web").sku.capacity == 2
    started = events(emu, "rolling.batch_started", seq)
    assert [(e["instance_ids"], e["new_instance_ids"]) for e in started] == [(["0"], ["2"]), (["1"], ["3"])]


def test_pause_between_batches_is_honoured(fleet):
    emu, compute = fleet
    create(compute, emu, 2, pause="PT1M")
    seq = mark(emu)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    healthy, started = events(emu, "rolling.batch_healthy", seq), events(emu, "rolling.batch_started", seq)
    gap = started[1]["ts"] - healthy[0]["ts"]
    assert emu_scaled(emu, 60) * 0.99 <= gap < emu_scaled(emu, 60) + 0.5


def test_protected_instances_are_skipped(fleet):
    emu, compute = fleet
    create(compute, emu, 3, maxBatchInstancePercent=34)
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "1").as_dict()
    vm["properties"]["protectionPolicy"] = {"protectFromScaleSetActions": True}
    compute.virtual_machine_scale_set_vms.begin_update("rg", "web", "1", vm).result()
    compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    assert versions(compute) == {"0": ("1.1.0", True), "1": ("1.0.0", False), "2": ("1.1.0", True)}
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").properties.progress
    assert (latest.successful_instance_count, latest.pending_instance_count) == (2, 0)


def test_no_rolling_upgrade_yet_and_conflicts(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", body(
        emu, 2, health=True, overprovision=False, image=gallery_image(emu, "1.0.0"))).result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web")
    with pytest.raises(ResourceExistsError) as nothing:
        compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel("rg", "web")
    assert nothing.value.error.code == "OperationNotAllowed"
    with pytest.raises(ResourceExistsError) as pinned:          # an OS upgrade needs a floating image
        compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade("rg", "web")
    assert "imageReference.version set to latest" in pinned.value.error.message
    # an extension upgrade with every instance up to date completes at once, counting them all
    compute.virtual_machine_scale_set_rolling_upgrades.begin_start_extension_upgrade("rg", "web").result()
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["runningStatus"]["code"] == "Completed"
    assert latest["progress"]["successfulInstanceCount"] == 2
    # cancelling a finished one is accepted and reads Cancelled (as the recorded Azure SDK tests show)
    compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel("rg", "web").result()
    assert running(compute) == "Cancelled"


def test_extension_rolling_upgrade_rolls_a_changed_extension(fleet):
    emu, compute = fleet
    spec = body(emu, 2, health=True, overprovision=False)            # Manual mode: the model change waits
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    compute.virtual_machine_scale_set_extensions.begin_update("rg", "web", "health", {
        "properties": {"settings": {"protocol": "http", "port": 8080, "requestPath": "/ready"}}}).result()
    emu.control.set_config(time_scale=IN_FLIGHT)
    poller = compute.virtual_machine_scale_set_rolling_upgrades.begin_start_extension_upgrade("rg", "web")
    with pytest.raises(ResourceExistsError):                                       # one at a time
        compute.virtual_machine_scale_set_rolling_upgrades.begin_start_extension_upgrade("rg", "web")
    poller.result()
    assert {latest for _, latest in versions(compute).values()} == {True}


# --- OS upgrades from a gallery --------------------------------------------------------------------------

GALLERY_SCALE = 0.003   # replication (600 s) takes 1.8 s here


def gallery_setup(emu, compute):
    emu.control.set_config(time_scale=GALLERY_SCALE)
    emu.rg("images")
    emu.rg("rg")
    compute.galleries.begin_create_or_update("images", "gal", {"location": emu.location}).result()
    compute.gallery_images.begin_create_or_update("images", "gal", "web", {
        "location": emu.location, "properties": {
            "osType": "Linux", "osState": "Generalized",
            "identifier": {"publisher": "fleetops", "offer": "web", "sku": "base"}}}).result()
    publish(emu, compute, "1.0.0").result()


def publish(emu, compute, version, exclude=False):
    source = f"/subscriptions/{emu.subscription_id}/resourceGroups/src/providers/Microsoft.Compute/images/base"
    return compute.gallery_image_versions.begin_create_or_update("images", "gal", "web", version, {
        "location": emu.location, "properties": {
            "storageProfile": {"source": {"id": source}},
            "publishingProfile": {"targetRegions": [{"name": emu.location}], "excludeFromLatest": exclude}}})


def test_os_rolling_upgrade_to_the_new_latest_version(clean):
    emu, compute = clean, clean.compute()
    gallery_setup(emu, compute)
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", body(
        emu, 3, health=True, overprovision=False, image=gallery_image(emu))).result()
    assert {v for v, _ in versions(compute).values()} == {"1.0.0"}
    publish(emu, compute, "1.1.0").result()
    compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade("rg", "web").result()
    assert {v for v, _ in versions(compute).values()} == {"1.1.0"}
    history = [h.as_dict() for h in compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web")]
    assert len(history) == 1
    entry = history[0]["properties"]
    assert entry["startedBy"] == "User" and entry["runningStatus"]["code"] == "Completed"
    assert "endTime" in entry["runningStatus"]
    assert entry["targetImageReference"] == dict(gallery_image(emu), exactVersion="1.1.0")
    assert entry["progress"]["successfulInstanceCount"] == 3
    assert entry["rollbackInfo"] == {"successfullyRolledbackInstanceCount": 0, "failedRolledbackInstanceCount": 0}
    assert history[0]["type"] == "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades"
    # nothing newer: the next one completes at once, every instance counted, and history grows newest first
    compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade("rg", "web").result()
    history = list(compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web"))
    assert len(history) == 2 and history[0].properties.progress.successful_instance_count == 3


def test_automatic_os_upgrade_follows_latest_but_not_an_excluded_version(clean):
    emu, compute = clean, clean.compute()
    gallery_setup(emu, compute)
    spec = body(emu, 2, health=True, overprovision=False, image=gallery_image(emu),
                upgradePolicy={"mode": "Automatic", "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}})
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    seq = mark(emu)
    publish(emu, compute, "1.1.0", exclude=True).result()
    time.sleep(1.0)                                     # several looks of the engine (every 0.2 s here)
    assert {v for v, _ in versions(compute).values()} == {"1.0.0"}
    assert events(emu, "rolling.started", seq) == []
    publish(emu, compute, "1.2.0").result()
    started = wait_until(lambda: events(emu, "rolling.started", seq), timeout=10)
    assert started[0]["startedBy"] == "Platform"
    wait_until(lambda: events(emu, "rolling.finished", seq), timeout=20)
    assert {v for v, _ in versions(compute).values()} == {"1.2.0"}
    history = [h.as_dict()["properties"]
               for h in compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web")]
    assert [(h["startedBy"], h["runningStatus"]["code"], h["targetImageReference"]["exactVersion"])
            for h in history] == [("Platform", "Completed", "1.2.0")]
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["policy"]["maxBatchInstancePercent"] == 20          # the default policy, not the set's


def test_automatic_os_upgrade_rolls_failed_instances_back(clean):
    emu, compute = clean, clean.compute()
    gallery_setup(emu, compute)
    spec = body(emu, 2, health=True, overprovision=False, image=gallery_image(emu),
                upgradePolicy={"mode": "Automatic", "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}})
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()
    emu.control.add_health_rule(match={"image_version": "1.1.0"}, state="Unhealthy")
    seq = mark(emu)
    publish(emu, compute, "1.1.0").result()
    finished = wait_until(lambda: events(emu, "rolling.finished", seq), timeout=20)
    assert finished[0]["code"] == "Faulted"
    wait_until(lambda: {v for v, _ in versions(compute).values()} == {"1.0.0"})
    entry = next(iter(compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web"))).as_dict()
    assert entry["properties"]["error"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert entry["properties"]["rollbackInfo"] == {"successfullyRolledbackInstanceCount": 1,
                                                   "failedRolledbackInstanceCount": 0}


# --- spec examples ----------------------------------------------------------------------------------------

EXAMPLE_OPERATIONS = ["VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade",
                      "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade",
                      "VirtualMachineScaleSetRollingUpgrades_GetLatest",
                      "VirtualMachineScaleSetRollingUpgrades_Cancel",
                      "VirtualMachineScaleSets_GetOSUpgradeHistory"]


@pytest.mark.skipif(not SPECS.available, reason="Azure specs not found")
@pytest.mark.parametrize("op_id", EXAMPLE_OPERATIONS)
def test_examples_are_accepted(fleet, op_id):
    emu, compute = fleet
    op = SPECS.operation(op_id)
    examples = SPECS.examples(op_id)
    assert examples
    failures = []
    for n, example in enumerate(examples):
        name = f"ex{n}"
        compute.virtual_machine_scale_sets.begin_create_or_update("rg", name, body(
            emu, 2, health=True, overprovision=False)).result()
        if op_id.endswith(("_GetLatest", "_Cancel")):       # there has to be a rolling upgrade to see / cancel
            compute.virtual_machine_scale_set_rolling_upgrades.begin_start_extension_upgrade("rg", name).result()
        params = json.loads(json.dumps(example.parameters).replace("{subscription-id}", emu.subscription_id))
        names = {"subscriptionId": emu.subscription_id, "resourceGroupName": "rg", "vmScaleSetName": name}
        path = re.sub(r"\{([^}]+)\}", lambda mt: quote(names[mt.group(1)], safe=""), op.path_template)
        status, answer, _ = emu.arm(op.method, path, example.body, api_version=params["api-version"])
        if status >= 300:
            failures.append((example.title, status, answer))
    assert not failures, failures


# --- restarts -----------------------------------------------------------------------------------------------

def test_a_rolling_upgrade_survives_a_restart(tmp_path):
    emu = conftest.start(tmp_path / "emu", "--no-throttling")
    try:
        emu.rg("rg")
        compute = emu.compute()
        compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", rolling_body(emu, 2)).result()
        compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0"))
        runtime.stop(emu.state_dir)                  # mid-batch
        emu = conftest.start(tmp_path / "emu", "--no-throttling")
        compute = emu.compute()
        assert running(compute) in ("RollingForward", "Completed")
        wait_until(lambda: running(compute) == "Completed")
        assert set(versions(compute).values()) == {("1.1.0", True)}
    finally:
        runtime.stop(emu.state_dir)
