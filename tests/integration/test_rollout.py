# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout module against the emulator: the seed story (a bad image halted after the first 20% batch,
rolled back and demoted, the fix rolled out cleanly), the halt and rollback of 20 instances under both meanings
of latestModelApplied (Azure's model generations, and content), each gate, resume after the controller is killed
(under both meanings too), protected instances, the canary, each batch_by, Flexible, check mode.

Writes are counted from the emulator's traffic log, never from the module's own result alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import arm_writes, feature_state, last_seq, put_resource_group, register_feature, require_success

from ansible_collections.fleetops.vmss.plugins.module_utils._rollout import decode_marker, encode_marker, new_marker

RG = "payments-prod"
LOCATION = "westeurope"
MARKETPLACE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
FAST = {"wait_sleep": 0.1, "health_timeout": 20, "wait_timeout": 300}
UPGRADE = "VirtualMachineScaleSets_UpdateInstances"


# --- seeding (through the SDK and the collection's own scale-set layer: fast, no ansible process) ------------

def version_id(azure, version):
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/api/versions/%s"
            % (azure.subscription_id, RG, version))


def seed_gallery(control, azure, versions):
    """Gallery golden, image api and its versions replicated to westeurope (replication sped up meanwhile)."""
    put_resource_group(azure, RG, LOCATION)
    compute = azure.client("compute")
    scale = control.call("GET", "config")["time_scale"]
    control.set_config(time_scale=scale / 10)
    try:
        compute.galleries.begin_create_or_update(RG, "golden", {"location": LOCATION}).result()
        compute.gallery_images.begin_create_or_update(RG, "golden", "api", {
            "location": LOCATION, "properties": {"osType": "Linux", "osState": "Generalized",
                                                 "identifier": {"publisher": "fleetops", "offer": "api", "sku": "1"}}}
        ).result()
        source = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/base" % (
            azure.subscription_id, RG)
        pollers = [compute.gallery_image_versions.begin_create_or_update(RG, "golden", "api", version, {
            "location": LOCATION, "properties": {
                "storageProfile": {"source": {"id": source}},
                "publishingProfile": {"targetRegions": [{"name": LOCATION}]}}})
            for version in versions]
        for poller in pollers:
            poller.result()
    finally:
        control.set_config(time_scale=scale)


def seed_scale_set(azure, name, image, capacity=10, mode="Uniform", grace_period=30, zones=None, **options):
    """A scale set in upgrade mode Manual with the Application Health extension, every instance created."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model

    put_resource_group(azure, RG, LOCATION)
    desired = model.desired_options(dict({
        "orchestration_mode": mode, "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "image": image, "zones": zones, "upgrade_policy": {"mode": "Manual"},
        "platform_fault_domain_count": 1 if mode == "Flexible" or zones else None,
        "overprovision": False if mode == "Uniform" else None,
        "os_profile": {"computer_name_prefix": name, "admin_username": "azureuser", "admin_password": "Sup3r-secret-pw!"},
        "application_health": {"protocol": "http", "port": 80, "request_path": "/ready", "grace_period": grace_period}},
        **options))
    compute = azure.client("compute")
    compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, name, model.create_body(name, desired, LOCATION)).result()
    wait_for(lambda: len(instances(azure, name)) == capacity
             and all(i["provisioning_state"] == "Succeeded" and i["health_state"] == "Healthy"
                     for i in instances(azure, name)), "%d healthy instances" % capacity)


def instances(azure, name):
    # pylint: disable=import-outside-toplevel
    from ansible_collections.fleetops.vmss.plugins.module_utils import _instances

    compute = azure.client("compute")
    scale_set = compute.virtual_machine_scale_sets.get(RG, name).as_dict()
    return [_instances.summary(vm, scale_set) for vm in _instances.list_instances(compute, RG, name, scale_set)]


def scale_set_tags(azure, name):
    return azure.client("compute").virtual_machine_scale_sets.get(RG, name).as_dict().get("tags") or {}


def wait_for(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.2)


def upgrades(control, since):
    """The instanceIds of every manual upgrade the emulator answered since ``since``, in order."""
    return [entry["liveRequest"]["body"]["instanceIds"] for entry in arm_writes(control, since)
            if entry.get("operation_id") == UPGRADE]


def write_kinds(control, since):
    return [entry.get("operation_id") for entry in arm_writes(control, since)]


def descendants(pid):
    """Every process below ``pid`` (ansible's worker calls setsid, so a process group kill would miss it)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process):
    """SIGKILL the controller and everything it started (the module included), as a killed AWX job would."""
    for pid in [process.pid] + descendants(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def rollout(ansible, name, **args):
    return ansible.module("rollout", dict(FAST, resource_group=RG, name=name, **args))


# What latestModelApplied means in the emulator (its control API): "generation" is Azure's (a model change makes
# every instance not latest, and a revert does not make the untouched ones latest again), "content" compares
# the instance's model with the scale set's. The rollout must write the same and end the same under both.
BELIEFS = ("generation", "content")


@pytest.fixture
def latest_model(request, control):
    """Switch the emulator's latest-model semantics for one test (settings outlive the per-test reset: the
    previous value is put back)."""
    from emulator.client import ControlError  # pylint: disable=import-outside-toplevel

    previous = control.call("GET", "config").get("latest_model")
    try:
        control.set_config(latest_model=request.param)
    except ControlError as error:
        pytest.fail("the emulator refused latest_model=%r (its control API has no latest-model switch): %s"
                    % (request.param, error))
    try:
        yield request.param
    finally:
        if previous is not None:
            control.set_config(latest_model=previous)


# --- the seed story ------------------------------------------------------------------------------------------

def test_seed_story_bad_image_halts_rolls_back_and_is_demoted_then_the_fix_rolls_out(
        emulator, azure, ansible, control, tmp_path):
    seed_gallery(control, azure, ["1.0.0", "1.1.0", "1.1.1"])
    seed_scale_set(azure, "api", version_id(azure, "1.0.0"))
    control.add_health_rule(match={"scale_set": "api", "image_version": "1.1.0"}, state="Unhealthy")
    since = last_seq(control)

    code, bad = rollout(ansible, "api", image=version_id(azure, "1.1.0"), batch_by="percent", batch_size=20,
                        demote_image_version_on_failure=True, report_path=str(tmp_path))

    assert code != 0, bad
    assert bad["status"] == "rolled_back" and bad["changed"] is True
    assert bad["msg"].startswith("Rollout of scale set %s/api halted after batch 1 of 5: 2 of 2 upgraded instances "
                                 "(100%%) are unhealthy" % RG)
    assert bad["msg"].endswith("; rolled back 2 instances")
    [first] = bad["batches"]
    assert first["outcome"] == "unhealthy" and first["instance_ids"] == ["0", "1"]
    assert first["health"] == {"0": "Unhealthy", "1": "Unhealthy"}
    assert first["arm_requests"]["writes"] == 1 and first["unhealthy_upgraded_percent"] == 100.0
    assert bad["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded" and bad["halt"]["batch_index"] == 0
    assert bad["rollback"]["instance_ids"] == ["0", "1"] and bad["rollback"]["outcome"] == "healthy"
    assert bad["demoted"] == {"image_version_id": version_id(azure, "1.1.0"), "exclude_from_latest": True}
    assert bad["image_before"] == {"id": version_id(azure, "1.0.0")}
    assert [len(b["instance_ids"]) for b in bad["plan"]["batches"]] == [2, 2, 2, 2, 2]
    # the writes, from the emulator: model+tag, one upgrade, demotion, model back, one upgrade back, tag removed
    assert write_kinds(control, since) == [
        "VirtualMachineScaleSets_Update", UPGRADE, "GalleryImageVersions_Update", "VirtualMachineScaleSets_Update",
        UPGRADE, "VirtualMachineScaleSets_Update"]
    assert upgrades(control, since) == [["0", "1"], ["0", "1"]]
    excluded = azure.client("compute").gallery_image_versions.get(RG, "golden", "api", "1.1.0").as_dict()
    assert excluded["properties"]["publishingProfile"]["excludeFromLatest"] is True
    fleet = instances(azure, "api")
    assert {i["image"]["id"].rsplit("/", 1)[1] for i in fleet} == {"1.0.0"}
    # not latest_model_applied: on Azure the revert is a new model generation, the untouched 2..9 stay not latest
    assert all(i["health_state"] == "Healthy" for i in fleet)
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "api"))
    report = json.loads(Path(bad["report"]["json"]).read_text())
    assert report["status"] == "rolled_back" and Path(bad["report"]["svg"]).read_text().startswith("<")

    since = last_seq(control)
    code, good = rollout(ansible, "api", image=version_id(azure, "1.1.1"), batch_by="percent", batch_size=20,
                         demote_image_version_on_failure=True)

    assert code == 0, good
    assert good["status"] == "succeeded" and good["halt"] is None and good["rollback"] is None
    assert [b["outcome"] for b in good["batches"]] == ["healthy"] * 5
    assert [b["arm_requests"]["writes"] for b in good["batches"]] == [1] * 5
    assert good["summary"]["instances_upgraded"] == 10 and good["summary"]["batches_completed"] == 5
    upgraded = upgrades(control, since)
    assert upgraded == [b["instance_ids"] for b in good["batches"]]        # exactly one write per batch
    assert sorted(sum(upgraded, []), key=int) == [str(i) for i in range(10)]
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update"] + [UPGRADE] * 5 + [
        "VirtualMachineScaleSets_Update"]
    fleet = instances(azure, "api")
    assert all(i["latest_model_applied"] and i["health_state"] == "Healthy" for i in fleet)  # the tag removal
    assert {i["image"]["id"].rsplit("/", 1)[1] for i in fleet} == {"1.1.1"}               # changed no model
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "api"))

    since = last_seq(control)
    code, again = rollout(ansible, "api", image=version_id(azure, "1.1.1"))
    assert code == 0 and again["status"] == "nothing_to_do" and again["changed"] is False
    assert arm_writes(control, since) == []


# --- the halt-and-rollback story under either meaning of "latest": the same writes, the same end state ----------

@pytest.mark.parametrize("latest_model", BELIEFS, indirect=True)
def test_halt_and_rollback_writes_back_exactly_the_touched_instances_whatever_latest_means(
        emulator, azure, ansible, control, latest_model):
    seed_gallery(control, azure, ["1.0.0", "1.1.0"])
    seed_scale_set(azure, "pay", version_id(azure, "1.0.0"), capacity=20)
    control.add_health_rule(match={"scale_set": "pay", "image_version": "1.1.0"}, state="Unhealthy")
    since = last_seq(control)

    code, bad = rollout(ansible, "pay", image=version_id(azure, "1.1.0"), batch_by="percent", batch_size=20)

    assert code != 0 and bad["status"] == "rolled_back", bad
    [first] = bad["batches"]
    touched = first["instance_ids"]
    assert touched == ["0", "1", "2", "3"] and first["outcome"] == "unhealthy"
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update", UPGRADE, "VirtualMachineScaleSets_Update",
                                           UPGRADE, "VirtualMachineScaleSets_Update"]
    batch_write, rollback_write = upgrades(control, since)       # from the emulator's traffic log
    assert batch_write == touched and rollback_write == touched    # the rollback moved back exactly those
    assert bad["rollback"]["instance_ids"] == touched and bad["rollback"]["outcome"] == "healthy"
    assert bad["msg"].endswith("; rolled back 4 instances")
    fleet = sorted(instances(azure, "pay"), key=lambda i: int(i["instance_id"]))
    end = [(i["instance_id"], i["image"]["id"].rsplit("/", 1)[1], i["health_state"]) for i in fleet]
    assert end == [(str(i), "1.0.0", "Healthy") for i in range(20)]
    # the emulator did answer with the belief asked for: under Azure's, only the instances moved back after the
    # revert are on the latest model
    latest = [i["instance_id"] for i in fleet if i["latest_model_applied"]]
    assert latest == (touched if latest_model == "generation" else [str(i) for i in range(20)])
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "pay"))
    print("\n[latest_model=%s] touched by batch 1: %s; written by the rollback: %s; end state: %d/%d on 1.0.0 and "
          "Healthy; reported latest: %s" % (latest_model, ",".join(touched), ",".join(rollback_write),
                                            sum(1 for e in end if e[1:] == ("1.0.0", "Healthy")), len(end),
                                            ",".join(latest)))


# --- gates: the precheck refuses with nothing written; a batch not healthy in time halts; a later run rolls back

def test_precheck_refusal_health_timeout_halt_then_a_later_run_rolls_back(emulator, azure, ansible, control):
    # gracePeriod 600 s (6 s here): how long Azure lets probes without a verdict keep an instance Initializing
    seed_scale_set(azure, "web", dict(MARKETPLACE, version="1.0.0"), capacity=5, grace_period=600)
    control.add_health_rule(match={"scale_set": "web", "instance_ids": ["1", "3"]}, state="Unhealthy")
    wait_for(lambda: sum(i["health_state"] == "Unhealthy" for i in instances(azure, "web")) == 2, "2 unhealthy")
    since = last_seq(control)

    code, refused = rollout(ansible, "web", image=dict(MARKETPLACE, version="1.1.0"))

    assert code != 0 and refused["status"] == "halted" and refused["changed"] is False
    assert refused["halt"]["code"] == "PrecheckFailed" and refused["halt"]["batch_index"] is None
    assert refused["msg"] == ("Rollout of scale set %s/web halted before batch 1 of 5: 2 of 5 instances (40%%) are "
                              "already unhealthy, more than max_unhealthy_instance_percent=20: 1, 3" % RG)
    assert refused["batches"] == [] and len(refused["plan"]["batches"]) == 5
    assert arm_writes(control, since) == []

    # Healthy again, but the new image never gets past Initializing while a batch has 1 s to be Healthy.
    control.clear_health_rules()
    control.add_health_rule(match={"scale_set": "web", "image_version": "1.1.0"}, state="Initializing")
    wait_for(lambda: all(i["health_state"] == "Healthy" for i in instances(azure, "web")), "healthy again")
    since = last_seq(control)

    code, slow = rollout(ansible, "web", image=dict(MARKETPLACE, version="1.1.0"), batch_by="count", batch_size=2,
                         health_timeout=1, on_failure="halt")

    assert code != 0 and slow["status"] == "halted" and slow["rollback"] is None
    [batch] = slow["batches"]
    assert batch["outcome"] == "timeout" and batch["health"] == {"0": "Initializing", "1": "Initializing"}
    assert slow["halt"]["code"] == "HealthTimeout"
    assert slow["msg"] == ("Rollout of scale set %s/web halted after batch 1 of 3: not Healthy within "
                           "health_timeout=1 seconds: 0 Initializing, 1 Initializing" % RG)
    # the model (with the rollback point and the lease), batch 1, the lease released (tags only: halted, not done)
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update", UPGRADE, "VirtualMachineScaleSets_Update"]
    # halted, not rolled back: the rollback point stays on the scale set, for a later run
    tags = scale_set_tags(azure, "web")
    assert sorted(tags) == ["fleetops.rollout", "fleetops.rollout.2"]   # longer than a tag value: continued
    marker = decode_marker(tags)
    assert marker["state"] == "rolling" and marker["before"] == {"image": dict(MARKETPLACE, version="1.0.0")}

    # The image turns out Unhealthy. Another controller run with the same options (rollback by default): the
    # instances already upgraded are checked first, with no write, fail the gate, and are rolled back to the
    # image the tag remembers.
    control.clear_health_rules()
    control.add_health_rule(match={"scale_set": "web", "image_version": "1.1.0"}, state="Unhealthy")
    since = last_seq(control)

    code, back = rollout(ansible, "web", image=dict(MARKETPLACE, version="1.1.0"), batch_by="count", batch_size=2)

    assert code != 0 and back["status"] == "rolled_back", back
    assert back["msg"].startswith("Rollout of scale set %s/web halted after batch 1 of 3: 2 of 2 upgraded" % RG)
    [check] = back["batches"]
    assert check["kind"] == "resume" and check["instance_ids"] == ["0", "1"] and check["outcome"] == "unhealthy"
    assert check["arm_requests"]["writes"] == 0
    assert back["rollback"]["instance_ids"] == ["0", "1"] and back["rollback"]["outcome"] == "healthy"
    assert back["image_before"] == dict(MARKETPLACE, version="1.0.0")
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update", UPGRADE, "VirtualMachineScaleSets_Update"]
    assert {i["image"]["version"] for i in instances(azure, "web")} == {"1.0.0"}
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "web"))


# --- resume after the controller is killed ---------------------------------------------------------------

@pytest.mark.parametrize("latest_model", BELIEFS, indirect=True)
def test_a_killed_rollout_resumes_and_upgrades_every_instance_exactly_once(
        emulator, azure, ansible, control, latest_model):
    seed_scale_set(azure, "api", dict(MARKETPLACE, version="1.0.0"), capacity=10)
    since = last_seq(control)
    args = dict(FAST, resource_group=RG, name="api", image=dict(MARKETPLACE, version="1.1.0"), batch_by="count",
                batch_size=2, pause_between_batches=1)
    command = ["ansible", "localhost", "-m", "fleetops.vmss.rollout", "-a", json.dumps(args)]
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(command, env=ansible.env, cwd=workdir, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: upgrades(control, since), "the first batch's upgrade", timeout=120)
        finally:
            kill_tree(process)
    assert upgrades(control, since) == [["0", "1"]]
    assert "fleetops.rollout" in scale_set_tags(azure, "api")

    code, step = rollout(ansible, "api", **{k: v for k, v in args.items() if k not in ("resource_group", "name")},
                         max_batches=1)

    assert code == 0 and step["status"] == "in_progress" and step["model_changed"] is False, step
    assert [b["kind"] for b in step["plan"]["batches"]][-4:] == ["batch"] * 4
    assert [b["instance_ids"] for b in step["batches"] if b["kind"] == "batch"] == [["2", "3"]]
    # numbered over the rollout: batch 2 of 5 (a resume check, when batch 1's health was not seen yet, re-watches
    # batch 1 and keeps its number)
    assert [(b["kind"], b["number"]) for b in step["batches"]][-1] == ("batch", 2)
    assert all(b["number"] == 1 for b in step["batches"] if b["kind"] == "resume")
    assert step["batches_total"] == 5

    code, rest = rollout(ansible, "api", **{k: v for k, v in args.items() if k not in ("resource_group", "name")})

    assert code == 0 and rest["status"] == "succeeded"
    assert [b["instance_ids"] for b in rest["batches"]] == [["4", "5"], ["6", "7"], ["8", "9"]]
    assert [b["number"] for b in rest["batches"]] == [3, 4, 5] and rest["batches_total"] == 5
    done = Counter(sum(upgrades(control, since), []))
    assert done == Counter({str(i): 1 for i in range(10)})              # each instance upgraded exactly once
    models = [entry for entry in arm_writes(control, since) if entry.get("operation_id") == "VirtualMachineScaleSets_Update"
              and set(entry["liveRequest"]["body"]) != {"tags"}]
    assert len(models) == 1          # the model changed once (the other PATCHes: tags only, the lease, the rollback point)
    assert all(i["latest_model_applied"] and i["health_state"] == "Healthy" for i in instances(azure, "api"))
    assert "fleetops.rollout" not in scale_set_tags(azure, "api")


# --- protected instances and the canary ------------------------------------------------------------------

def test_protected_instances_are_skipped_and_the_canary_goes_first(emulator, azure, ansible, control):
    seed_scale_set(azure, "api", dict(MARKETPLACE, version="1.0.0"), capacity=6)
    compute = azure.client("compute")
    vm = compute.virtual_machine_scale_set_vms.get(RG, "api", "3").as_dict()
    compute.virtual_machine_scale_set_vms.begin_update(RG, "api", "3", {
        "location": vm["location"], "properties": {"protectionPolicy": {"protectFromScaleSetActions": True}}}).result()
    since = last_seq(control)

    code, result = rollout(ansible, "api", image=dict(MARKETPLACE, version="1.1.0"), canary=1, canary_soak=1,
                           batch_by="count", batch_size=3)

    assert code == 0 and result["status"] == "succeeded", result
    assert result["skipped_instances"] == [{"instance_id": "3", "reason": "protect_from_scale_set_actions"}]
    assert [(b["kind"], b["instance_ids"]) for b in result["batches"]] == [
        ("canary", ["0"]), ("batch", ["1", "2", "4"]), ("batch", ["5"])]
    assert upgrades(control, since) == [["0"], ["1", "2", "4"], ["5"]]
    fleet = {i["instance_id"]: i for i in instances(azure, "api")}
    assert fleet["3"]["image"]["version"] == "1.0.0" and fleet["3"]["latest_model_applied"] is False
    assert all(fleet[i]["image"]["version"] == "1.1.0" for i in ("0", "1", "2", "4", "5"))


# --- each batch_by: planned in check mode (nothing written), then a real run by update domain --------------

def test_batch_by_plans_in_check_mode_then_a_rollout_by_update_domain(emulator, azure, ansible, control, tmp_path):
    seed_scale_set(azure, "zonal", dict(MARKETPLACE, version="1.0.0"), capacity=6, zones=["1", "2", "3"],
                   platform_fault_domain_count=5)
    fleet = {i["instance_id"]: i for i in instances(azure, "zonal")}
    plans_file = tmp_path / "plans.json"

    completed = ansible.playbook("rollout", {"rg": RG, "vmss_name": "zonal", "plans_file": str(plans_file),
                                             "image": dict(MARKETPLACE, version="1.1.0"),
                                             "traffic_start": last_seq(control)}, forked_modules=True)

    require_success(completed)
    by_domain, by_fault_domain, by_zone, by_percent, by_count = json.loads(plans_file.read_text())
    for plan, key, field in ((by_domain, "update_domain", "update_domains"),
                             (by_fault_domain, "fault_domain", "fault_domains"), (by_zone, "zone", "zones")):
        ids = [b["instance_ids"] for b in plan["batches"]]
        assert sorted(sum(ids, []), key=int) == sorted(fleet, key=int)        # each instance once
        domains = [{str(fleet[i][key]) for i in batch} for batch in ids]
        assert all(len(d) == 1 for d in domains)                                # one domain per batch
        assert [d.pop() for d in domains] == sorted({str(i[key]) for i in fleet.values()})   # in domain order
        assert all(len(b[field]) == 1 for b in plan["batches"])
    assert [b["instance_ids"] for b in by_percent["batches"]] == [["0", "1", "2"], ["3", "4", "5"]]
    assert [(b["kind"], b["instance_ids"]) for b in by_count["batches"]] == [
        ("canary", ["0"]), ("batch", ["1", "2", "3", "4"]), ("batch", ["5"])]
    since = last_seq(control)

    code, result = rollout(ansible, "zonal", image=dict(MARKETPLACE, version="1.1.0"), batch_by="update_domain")

    assert code == 0 and result["status"] == "succeeded", result
    assert [b["instance_ids"] for b in result["batches"]] == [b["instance_ids"] for b in by_domain["batches"]]
    assert upgrades(control, since) == [b["instance_ids"] for b in by_domain["batches"]]
    assert all(i["latest_model_applied"] and i["image"]["version"] == "1.1.0" for i in instances(azure, "zonal"))


# --- Flexible: VM names as instance ids, the VM size changed with the image ------------------------------------

def test_flexible_rollout_of_image_and_size(emulator, azure, ansible, control):
    register_feature(azure)  # manual upgrade of Flexible instances to a new image is a preview behind it
    seed_scale_set(azure, "flex", dict(MARKETPLACE, version="1.0.0"), capacity=4, mode="Flexible")
    names = sorted(i["instance_id"] for i in instances(azure, "flex"))
    since = last_seq(control)

    code, result = rollout(ansible, "flex", image=dict(MARKETPLACE, version="1.1.0"),
                           model={"sku": {"name": "Standard_D4s_v3"}}, batch_by="count", batch_size=2)

    assert code == 0 and result["status"] == "succeeded", result
    assert result["orchestration_mode"] == "Flexible"
    assert [b["outcome"] for b in result["batches"]] == ["healthy", "healthy"]
    assert upgrades(control, since) == [names[:2], names[2:]]           # one write per batch, VM names
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update", UPGRADE, UPGRADE,
                                           "VirtualMachineScaleSets_Update"]
    fleet = instances(azure, "flex")
    assert {(i["image"]["version"], i["vm_size"], i["latest_model_applied"]) for i in fleet} == {
        ("1.1.0", "Standard_D4s_v3", True)}
    assert "fleetops.rollout" not in scale_set_tags(azure, "flex")


# --- Flexible: the manual-upgrade preview feature (ImageReferenceUpgradeForVmoVMs) read before any write ------

def test_flexible_image_rollout_without_the_feature_fails_before_any_write(emulator, azure, ansible, control):
    seed_scale_set(azure, "flex", dict(MARKETPLACE, version="1.0.0"), capacity=2, mode="Flexible")
    assert feature_state(azure) != "Registered"
    since = last_seq(control)

    for check in (True, False):
        code, result = ansible.module("rollout", dict(FAST, resource_group=RG, name="flex",
                                                      image=dict(MARKETPLACE, version="1.1.0")), check=check)
        assert code != 0 and result["changed"] is False, result
        for words in ("Microsoft.Compute/ImageReferenceUpgradeForVmoVMs",
                      "az feature register --namespace Microsoft.Compute --name ImageReferenceUpgradeForVmoVMs",
                      "az provider register -n Microsoft.Compute", "azure_rolling", "blue_green"):
            assert words in result["msg"]

    assert arm_writes(control, since) == []
    reads = [entry["liveRequest"]["url"] for entry in control.traffic(since)
             if "/providers/Microsoft.Features/" in entry["liveRequest"]["url"]]
    assert len(reads) == 2 and all("features/ImageReferenceUpgradeForVmoVMs?" in url for url in reads)
    assert {i["image"]["version"] for i in instances(azure, "flex")} == {"1.0.0"}


def test_flexible_size_only_rollout_does_not_read_the_feature(emulator, azure, ansible, control):
    seed_scale_set(azure, "flex", dict(MARKETPLACE, version="1.0.0"), capacity=2, mode="Flexible")
    since = last_seq(control)

    code, result = rollout(ansible, "flex", model={"sku": {"name": "Standard_D4s_v3"}}, batch_by="count", batch_size=1)

    assert code == 0 and result["status"] == "succeeded", result
    assert not [entry for entry in control.traffic(since) if "/Microsoft.Features/" in entry["liveRequest"]["url"]]
    assert {i["vm_size"] for i in instances(azure, "flex")} == {"Standard_D4s_v3"}


def test_flexible_extension_only_change_is_rolled_with_scale_set_instance(emulator, azure, ansible, control):
    """An extension-only model change (the health probe's settings) leaves every Flexible VM outdated until
    upgraded: scale_set_instance action upgrade moves them, and then they are latest."""
    seed_scale_set(azure, "flex", dict(MARKETPLACE, version="1.0.0"), capacity=2, mode="Flexible")
    base = {"resource_group": RG, "name": "flex", "wait_sleep": 0.1}
    code, changed = ansible.module("scale_set", dict(base, application_health={"request_path": "/healthz"}))
    assert code == 0 and changed["changed"] is True, changed
    assert {i["latest_model_applied"] for i in instances(azure, "flex")} == {False}
    since = last_seq(control)

    code, result = ansible.module("scale_set_instance", dict(base, instance_ids=["*"], action="upgrade"))

    assert code == 0 and result["summary"] == {"succeeded": 2}, result
    assert write_kinds(control, since) == [UPGRADE]
    assert {i["latest_model_applied"] for i in instances(azure, "flex")} == {True}


# --- faults are not verdicts; a resumed rollback checks health (issue 16) -------------------------------------

def accepted(control, since):
    """The ARM writes the emulator accepted (2xx) since ``since``: refused attempts changed nothing."""
    return [entry for entry in arm_writes(control, since) if str(entry["liveResponse"]["statusCode"]).startswith("2")]


def accepted_upgrades(control, since):
    return [entry["liveRequest"]["body"]["instanceIds"] for entry in accepted(control, since)
            if entry.get("operation_id") == UPGRADE]


@pytest.mark.parametrize("kind,code", [("409", "OperationNotAllowed"), ("429", "TooManyRequests")])
def test_a_fault_storm_on_batch_2_interrupts_without_a_verdict_and_the_rerun_completes(
        emulator, azure, ansible, control, kind, code):
    seed_gallery(control, azure, ["1.0.0", "1.1.0"])
    seed_scale_set(azure, "api", version_id(azure, "1.0.0"), capacity=10)
    since = last_seq(control)
    args = dict(image=version_id(azure, "1.1.0"), batch_by="count", batch_size=2, pause_between_batches=2,
                demote_image_version_on_failure=True)
    runs = {}
    worker = threading.Thread(target=lambda: runs.update(first=rollout(ansible, "api", **args)))
    worker.start()
    try:
        # batch 1 upgraded: from now on every manual upgrade is refused, more times than any retry policy tries
        wait_for(lambda: accepted_upgrades(control, since), "the first batch's upgrade", timeout=120)
        control.add_fault(kind=kind, match={"operation_id": UPGRADE}, count=200, retry_after_ms=10)
    finally:
        worker.join(600)
    code_, stopped = runs["first"]

    assert code_ != 0 and stopped["status"] == "interrupted", stopped
    assert [b["outcome"] for b in stopped["batches"]] == ["healthy", "interrupted"]
    assert stopped["halt"]["batch_index"] == 1 and stopped["halt"]["code"] == code
    assert stopped["rollback"] is None and stopped["demoted"] is None
    assert stopped["msg"].startswith("Rollout of scale set %s/api interrupted at batch 2 of 5 by a transient fault, "
                                     "not a verdict on the image: Failed to upgrade instances of scale set %s/api: %s"
                                     % (RG, RG, code)), stopped["msg"]
    assert stopped["msg"].endswith("Nothing was rolled back or demoted. The rollback point (tag fleetops.rollout) "
                                   "is kept. Run the same task again to resume.")
    # from the emulator: the model change and batch 1, nothing after (no rollback, no demotion) but the lease released
    assert [e.get("operation_id") for e in accepted(control, since)] == ["VirtualMachineScaleSets_Update", UPGRADE,
                                                                         "VirtualMachineScaleSets_Update"]
    assert set(accepted(control, since)[-1]["liveRequest"]["body"]) == {"tags"}
    assert accepted_upgrades(control, since) == [["0", "1"]]
    assert decode_marker(scale_set_tags(azure, "api"))["state"] == "rolling"
    version = azure.client("compute").gallery_image_versions.get(RG, "golden", "api", "1.1.0").as_dict()
    assert not version["properties"]["publishingProfile"].get("excludeFromLatest")

    control.clear_faults()
    code_, rest = rollout(ansible, "api", **args)

    assert code_ == 0 and rest["status"] == "succeeded", rest
    assert Counter(sum(accepted_upgrades(control, since), [])) == Counter({str(i): 1 for i in range(10)})
    fleet = instances(azure, "api")
    assert {i["image"]["id"].rsplit("/", 1)[1] for i in fleet} == {"1.1.0"}
    assert all(i["health_state"] == "Healthy" for i in fleet)
    assert "fleetops.rollout" not in scale_set_tags(azure, "api")


def test_a_resumed_rollback_over_unhealthy_rolled_back_instances_fails_and_keeps_the_rollback_point(
        emulator, azure, ansible, control):
    """As a controller killed while rolling back leaves it: the model restored, the instances moved back (here
    all of them), the rollback point in state rolling_back. One moved-back instance stays Unhealthy."""
    seed_scale_set(azure, "web", dict(MARKETPLACE, version="1.0.0"), capacity=4)
    marker = new_marker({"image": dict(MARKETPLACE, version="1.0.0")}, {"image": dict(MARKETPLACE, version="1.1.0")},
                        "2026-12-06T12:00:00.000Z", state="rolling_back")
    compute = azure.client("compute")
    compute.virtual_machine_scale_sets.begin_update(RG, "web", {"tags": encode_marker(marker)}).result()
    control.add_health_rule(match={"scale_set": "web", "instance_ids": ["1"]}, state="Unhealthy")
    wait_for(lambda: [i["health_state"] for i in instances(azure, "web")].count("Unhealthy") == 1, "1 unhealthy")
    since = last_seq(control)

    code, failed = rollout(ansible, "web", image=dict(MARKETPLACE, version="1.1.0"), health_timeout=2)

    assert code != 0 and failed["status"] == "rollback_failed", failed
    assert failed["rollback"]["instance_ids"] == [] and failed["rollback"]["outcome"] == "unhealthy"
    assert failed["rollback"]["health"] == {"1": "Unhealthy"}
    assert failed["msg"] == ("Rollout of scale set %s/web: a rollback of image %s:%s:%s:1.1.0 was interrupted; "
                             "rollback failed: not Healthy within health_timeout=2 seconds after the rollback: "
                             "1 Unhealthy (the rollback point, tag fleetops.rollout, is kept)"
                             % (RG, MARKETPLACE["publisher"], MARKETPLACE["offer"], MARKETPLACE["sku"]))
    assert arm_writes(control, since) == []
    assert decode_marker(scale_set_tags(azure, "web"))["state"] == "rolling_back"

    control.clear_health_rules()
    wait_for(lambda: all(i["health_state"] == "Healthy" for i in instances(azure, "web")), "healthy again")
    code, done = rollout(ansible, "web", image=dict(MARKETPLACE, version="1.1.0"), health_timeout=2)

    assert code != 0 and done["status"] == "rolled_back", done
    assert done["msg"].endswith("was interrupted; this run finished it; rolled back 0 instances")
    assert "fleetops.rollout" not in scale_set_tags(azure, "web")
