# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/fleet_rollout.yml against the emulator: four small scale sets in three regions, listed by the
instances inventory plugin with host_type: scale_set, rolled from payments-api 1.0.0 to 1.1.0 in waves by region
(canary westeurope, then eastus, then northeurope). Clean: every set on 1.1.0, the version promoted region by
region as each wave passed. Canary failing: the set alongside it stops after the batch it ran with the failed one,
no set of another region touched, the canary rolled back, the version excluded from latest everywhere. Check mode: the plan, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from azure.core.exceptions import HttpResponseError

from conftest import ROOT, arm_writes, last_seq, put_resource_group, uniform_scale_set
from test_inventory import inventory as list_inventory
from test_rollout_role import GALLERY_RG, version_id

RG = "fleet"
REGIONS = ("westeurope", "eastus", "northeurope")
SETS = {"api-we1": "westeurope", "api-we2": "westeurope", "api-us": "eastus", "api-ne": "northeurope"}


def seed(azure, location, failed_region=None):
    """Gallery versions 1.0.0 (the three regions and japaneast) and 1.1.0 (the three regions, excluded from latest, as
    baked; its replication to failed_region fails, as the emulator was told), and the four sets on 1.0.0."""
    put_resource_group(azure, GALLERY_RG, location)
    put_resource_group(azure, RG, location)
    compute = azure.client("compute")
    compute.galleries.begin_create_or_update(GALLERY_RG, "golden", {"location": location}).result()
    compute.gallery_images.begin_create_or_update(GALLERY_RG, "golden", "payments-api", {
        "location": location, "properties": {"osType": "Linux", "osState": "Generalized", "identifier": {
            "publisher": "fleetops", "offer": "payments", "sku": "cis"}}}).result()
    source = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/base" % (
        azure.subscription_id, GALLERY_RG)
    for version, excluded, regions in (("1.0.0", False, REGIONS + ("japaneast",)), ("1.1.0", True, REGIONS)):
        poller = compute.gallery_image_versions.begin_create_or_update(GALLERY_RG, "golden", "payments-api", version, {
            "location": location, "properties": {"storageProfile": {"source": {"id": source}}, "publishingProfile": {
                "targetRegions": [{"name": region} for region in regions], "excludeFromLatest": excluded}}})
        try:
            poller.result()
        except HttpResponseError as exc:   # the version exists all the same, replicated to the other regions
            assert failed_region and failed_region in str(exc), exc
    pollers = [compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, name, uniform_scale_set(region, {"id": version_id(azure, "1.0.0")}, 2)) for name, region in SETS.items()]
    for poller in pollers:
        poller.result()


def fleet_command(ansible_env, azure, tmp_path, *extra_args, **extra):
    """(command, environment) of a fleet run on the four sets."""
    inventory = tmp_path / "fleet.vmss.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "fleetops.vmss.instances", "host_type": "scale_set",
                                         "scale_sets": [{"resource_group": RG}],
                                         "keyed_groups": [{"key": "location", "prefix": "region"}]}))
    extra_vars = {"fleet_image_version_id": version_id(azure, "1.1.0"), "fleet_canary_region": "West Europe",
                  "fleet_region_order": ["eastus"], "fleet_parallel": 2, "fleet_replication_sleep": 0.2,
                  "fleet_report_dir": str(tmp_path / "reports"), "fleet_batch_seconds": 60,
                  "rollout_batch_size": 50, "rollout_health_timeout": 30, "rollout_wait_sleep": 0.2, **extra}
    env = dict(ansible_env, ANSIBLE_INVENTORY_ENABLED="fleetops.vmss.instances", ANSIBLE_SHOW_CUSTOM_STATS="true")
    return (["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / "fleet_rollout.yml"), "--forks", "4",
             "-e", json.dumps(extra_vars), *extra_args], env)


def fleet(ansible_env, azure, tmp_path, *extra_args, **extra):
    command, env = fleet_command(ansible_env, azure, tmp_path, *extra_args, **extra)
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)


def versions(azure):
    """{set: sorted versions its instances run}."""
    vms = azure.client("compute").virtual_machine_scale_set_vms
    return {name: sorted(vm.storage_profile.image_reference.id.rsplit("/", 1)[-1] for vm in vms.list(RG, name))
            for name in SETS}


def exclusion(azure):
    """(global excludeFromLatest, {region: its excludeFromLatest}) of 1.1.0."""
    profile = azure.client("compute").gallery_image_versions.get(
        GALLERY_RG, "golden", "payments-api", "1.1.0").publishing_profile
    return bool(profile.exclude_from_latest), {
        region.name.lower().replace(" ", ""): bool(region.exclude_from_latest) for region in profile.target_regions}


def writes_by_target(control, since):
    """[(seq, "set:<name>" or "version")] of the ARM writes on the sets and on version 1.1.0, in order."""
    out = []
    for entry in arm_writes(control, since):
        url = entry["liveRequest"]["url"].lower().split("?")[0]
        if "/versions/1.1.0" in url:
            out.append((entry["seq"], "version", entry["liveRequest"].get("body")))
        for name in SETS:
            if "/virtualmachinescalesets/%s" % name in url:
                out.append((entry["seq"], "set:" + name, None))
    return out


def test_scale_sets_as_inventory_hosts(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.add_health_rule(match={"scale_set": "api-ne", "instance_ids": ["0"]}, state="Unhealthy")
    (tmp_path / "fleet.vmss.yml").write_text(yaml.safe_dump({
        "plugin": "fleetops.vmss.instances", "host_type": "scale_set", "scale_sets": [{"resource_group": RG}],
        "keyed_groups": [{"key": "location", "prefix": "region"}, {"key": "upgrade_mode", "prefix": "mode"}],
        "groups": {"degraded": "health_summary.Unhealthy | default(0) > 0"}}))
    deadline = time.monotonic() + 60
    while True:  # health comes once the instances' grace period has passed (scaled: a fraction of a second)
        inventory, _stderr = list_inventory(ansible_env, tmp_path / "fleet.vmss.yml")
        ne = inventory["_meta"]["hostvars"]["api-ne"]
        if "Initializing" not in ne["health_summary"] and "None" not in ne["health_summary"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert sorted(inventory["_meta"]["hostvars"]) == sorted(SETS)
    assert ne["health_summary"] == {"Healthy": 1, "Unhealthy": 1}, ne
    assert (ne["location"], ne["capacity"], ne["upgrade_mode"], ne["orchestration_mode"], ne["image_version"],
            ne["instance_image_versions"], ne["resource_group"], ne["subscription_id"]) == (
        "northeurope", 2, "Manual", "Uniform", "1.0.0", {"1.0.0": 2}, RG, azure.subscription_id)
    assert sorted(inventory["region_westeurope"]["hosts"]) == ["api-we1", "api-we2"]
    assert inventory["degraded"]["hosts"] == ["api-ne"] and len(inventory["mode_Manual"]["hosts"]) == 4


def test_clean_fleet_run_in_three_waves_promoting_region_by_region(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path)

    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    assert versions(azure) == {name: ["1.1.0", "1.1.0"] for name in SETS}
    assert exclusion(azure) == (False, {region: False for region in REGIONS})
    writes = writes_by_target(control, since)
    # the first version write excludes every region (the global flag lifted); each later one promotes one more region
    promotions = [sorted(region["name"].lower().replace(" ", "") for region in body["properties"]["publishingProfile"]
                         ["targetRegions"] if not region.get("excludeFromLatest"))
                  for _seq, target, body in writes if target == "version"]
    assert promotions == [[], ["westeurope"], ["eastus", "westeurope"], list(sorted(REGIONS))], promotions
    # no set of a wave is written before the previous wave's region is promoted
    version_seqs = [seq for seq, target, _body in writes if target == "version"]
    first_write = {name: min(seq for seq, target, _body in writes if target == "set:" + name) for name in SETS}
    last_write = {name: max(seq for seq, target, _body in writes if target == "set:" + name) for name in SETS}
    assert version_seqs[0] < min(first_write.values())
    assert max(last_write["api-we1"], last_write["api-we2"]) < version_seqs[1] < first_write["api-us"]
    assert last_write["api-us"] < version_seqs[2] < first_write["api-ne"] and last_write["api-ne"] < version_seqs[3]
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "succeeded" and report["set_counts"] == {"succeeded": 4}, report
    assert [wave["region"] for wave in report["waves"]] == ["westeurope", "eastus", "northeurope"]
    assert "fleet_outcome" in run.stdout
    picture = (tmp_path / "reports" / "fleet-1.1.0.svg").read_text()   # sets against time, waves marked
    assert "wave 3 · northeurope · promoted" in picture and picture.count('class="batch healthy"') == 8, picture

    # a second run finds every set done: no set is written, the version stays promoted everywhere
    since = last_seq(control)
    again = fleet(ansible_env, azure, tmp_path)
    assert again.returncode == 0, again.stdout[-8000:]
    assert not [target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")]
    assert exclusion(azure) == (False, {region: False for region in REGIONS})


def test_failing_canary_wave_halts_the_fleet_rolls_back_and_demotes_everywhere(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.add_health_rule(match={"scale_set": "api-we1", "image_version": "1.1.0"}, state="Unhealthy")
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path, rollout_batch_size=50, rollout_health_timeout=5)

    assert run.returncode != 0
    assert "Fleet halted by scale set api-we1 in wave 1 (westeurope)" in run.stdout, run.stdout[-8000:]
    touched = {target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")}
    assert touched <= {"set:api-we1", "set:api-we2"} and "set:api-we1" in touched, touched
    got = versions(azure)
    assert got["api-we1"] == ["1.0.0", "1.0.0"]                       # rolled back
    # api-we2 ran its first batch alongside api-we1's and stopped there: no second batch, its rollback point kept
    assert got["api-we2"] == ["1.0.0", "1.1.0"], got
    assert "fleetops.rollout" in (azure.client("compute").virtual_machine_scale_sets.get(RG, "api-we2").tags or {})
    assert got["api-us"] == got["api-ne"] == ["1.0.0", "1.0.0"]       # other regions untouched
    assert exclusion(azure) == (True, {region: True for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "halted" and report["halted"]["host"] == "api-we1", report
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert statuses["api-we1"] == "failed" and statuses["api-us"] == statuses["api-ne"] == "not_started", statuses
    assert statuses["api-we2"] == "stopped", statuses
    picture = (tmp_path / "reports" / "fleet-1.1.0.svg").read_text()
    assert 'class="halt"' in picture and "halt (api-we1)" in picture and "api-we2 · stopped" in picture


def test_check_mode_prints_the_plan_and_writes_nothing(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path, "--check")

    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    assert "Fleet rollout of 1.1.0: 3 wave(s), up to 2 scale set(s) at a time, about 360 s" in run.stdout, run.stdout
    assert "wave 1 westeurope (about 120 s): api-we1:2:False, api-we2:2:False" in run.stdout
    assert "wave 2 eastus" in run.stdout and "wave 3 northeurope" in run.stdout
    assert arm_writes(control, since) == []


def test_a_region_the_version_does_not_target_is_refused_before_any_write(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(
        RG, "api-jp", uniform_scale_set("japaneast", {"id": version_id(azure, "1.0.0")}, 1)).result()
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path)

    assert run.returncode != 0
    assert ("Fleet rollout refused, nothing written: scale set api-jp is in japaneast, a region image version 1.1.0 "
            "does not target") in run.stdout, run.stdout[-5000:]
    assert arm_writes(control, since) == []


def test_a_run_killed_in_the_second_wave_resumes_where_it_stopped(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)
    command, env = fleet_command(ansible_env, azure, tmp_path)
    with open(tmp_path / "killed.log", "w", encoding="utf-8") as log:
        run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            # the controller dies as api-us (wave 2) starts moving instances: the first instance upgrade is sent
            while time.monotonic() < deadline and run.poll() is None and not any(
                    "/virtualmachinescalesets/api-us/manualupgrade" in entry["liveRequest"]["url"].lower()
                    for entry in arm_writes(control, since)):
                time.sleep(0.2)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    log_text = (tmp_path / "killed.log").read_text()
    assert run.returncode == -signal.SIGKILL, log_text[-5000:]
    assert exclusion(azure) == (False, {"westeurope": False, "eastus": True, "northeurope": True})
    assert versions(azure)["api-ne"] == ["1.0.0", "1.0.0"]

    since = last_seq(control)
    again = fleet(ansible_env, azure, tmp_path)

    assert again.returncode == 0, again.stdout[-8000:] + again.stderr[-3000:]
    assert versions(azure) == {name: ["1.1.0", "1.1.0"] for name in SETS}
    touched = {target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")}
    assert touched == {"set:api-us", "set:api-ne"}, touched           # wave 1's sets were finished: skipped
    assert exclusion(azure) == (False, {region: False for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert statuses == {"api-we1": "already_done", "api-we2": "already_done", "api-us": "succeeded",
                        "api-ne": "succeeded"}, statuses


@pytest.mark.parametrize("compose, why", [
    ({"scale_set": "scale_set ~ '-gone' if scale_set == 'api-we2' else scale_set"}, "Scale set fleet/api-we2-gone does not exist"),
    ({"rollout_strategy": "'sideways' if scale_set == 'api-we2' else 'in_place'"}, "rollout_strategy"),
], ids=["set-does-not-exist", "bad-input"])
def test_a_set_refused_in_its_preflight_halts_the_fleet_as_a_failed_batch_does(
        emulator, azure, control, ansible_env, tmp_path, compose, why):
    """api-we2 names a scale set that does not exist (the rollout role's pre-flight refuses it), or has a bad input
    (the role's argument spec refuses it): nothing of api-we2 is written, and the fleet halts as for a failed batch:
    api-we1 alongside it stops after the batch it was running, no other region is touched, the version is demoted
    everywhere, the report names api-we2 and why."""
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)
    command, env = fleet_command(ansible_env, azure, tmp_path)
    inventory = yaml.safe_load((tmp_path / "fleet.vmss.yml").read_text())
    (tmp_path / "fleet.vmss.yml").write_text(yaml.safe_dump(dict(inventory, compose=compose, strict=True)))

    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)

    assert run.returncode != 0
    assert "Fleet halted by scale set api-we2 in wave 1 (westeurope)" in run.stdout, run.stdout[-8000:]
    touched = {target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")}
    assert touched <= {"set:api-we1"}, touched
    got = versions(azure)
    assert got["api-we1"] == ["1.0.0", "1.1.0"], got    # the batch it ran alongside the refusal, then stopped
    assert got["api-us"] == got["api-ne"] == ["1.0.0", "1.0.0"]
    assert exclusion(azure) == (True, {region: True for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "halted" and report["halted"]["host"] == "api-we2", report
    assert why in report["halted"]["msg"], report["halted"]
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert statuses["api-we2"] == "failed" and statuses["api-we1"] == "stopped", statuses
    assert statuses["api-us"] == statuses["api-ne"] == "not_started", statuses


def test_a_region_not_replicated_in_time_halts_the_fleet_before_its_wave(emulator, azure, control, ansible_env, tmp_path):
    """1.1.0's replication to the canary region failed (and fails again when the fleet's first update retries it):
    the wait before wave 1 gives up, the fleet halts: no set is touched, the version is demoted everywhere, the report
    says why. (A region failed is a version Failed: the rollout role's pre-flight would refuse every set anyway.)"""
    control.call("POST", "replication-failures", {"region": "westeurope", "version": "1.1.0", "count": 5,
                                                  "details": "Replica creation failed."})
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"], failed_region="westeurope")
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path, fleet_replication_timeout=2)

    assert run.returncode != 0, run.stdout[-8000:]
    assert ("Fleet halted before wave 1 (westeurope): image version 1.1.0 is not replicated to westeurope within 2 s "
            "(replication Failed: Replica creation failed.)") in run.stdout, run.stdout[-8000:]
    assert not [target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")]
    assert versions(azure) == {name: ["1.0.0", "1.0.0"] for name in SETS}
    assert exclusion(azure) == (True, {region: True for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "halted" and report["halted"]["host"] is None, report
    assert (report["halted"]["wave"], report["halted"]["region"]) == (1, "westeurope"), report["halted"]
    assert report["set_counts"] == {"not_started": 4}, report
    assert "**Halted** before wave 1 (westeurope): image version 1.1.0" in (tmp_path / "reports" / "fleet-1.1.0.md").read_text()
