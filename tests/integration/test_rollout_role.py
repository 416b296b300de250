# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rollout.yml (the rollout role) against the emulator: a Uniform set of 5 on payments-api 1.0.0 with the
Application Health extension and an enabled autoscale setting, rolled to 1.1.0 batch by batch; then 1.1.0 turned
Unhealthy by a health rule: the play fails with the module's message, the batch is rolled back, 1.1.0 demoted.
Both times the autoscale setting is disabled for the rollout and enabled again afterwards."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import ROOT, last_seq, put_resource_group, uniform_scale_set

RG = "payments-prod"
NAME = "payments-api"
GALLERY_RG = "images-prod"
AUTOSCALE = "payments-api-autoscale"


def version_id(azure, version):
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/payments-api/"
            "versions/%s" % (azure.subscription_id, GALLERY_RG, version))


def seed_gallery(azure, location):
    """Gallery image payments-api, its versions 1.0.0 and 1.1.0 replicated to the region."""
    put_resource_group(azure, GALLERY_RG, location)
    compute = azure.client("compute")
    compute.galleries.begin_create_or_update(GALLERY_RG, "golden", {"location": location}).result()
    compute.gallery_images.begin_create_or_update(GALLERY_RG, "golden", "payments-api", {
        "location": location, "properties": {"osType": "Linux", "osState": "Generalized", "identifier": {
            "publisher": "fleetops", "offer": "payments", "sku": "cis"}}}).result()
    source = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/base" % (
        azure.subscription_id, GALLERY_RG)
    pollers = [compute.gallery_image_versions.begin_create_or_update(GALLERY_RG, "golden", "payments-api", version, {
        "location": location, "properties": {"storageProfile": {"source": {"id": source}},
                                             "publishingProfile": {"targetRegions": [{"name": location}]}}})
               for version in ("1.0.0", "1.1.0")]
    for poller in pollers:
        poller.result()


def seed(azure, location):
    """Gallery versions 1.0.0 and 1.1.0 replicated to the region, the scale set on 1.0.0, its autoscale setting."""
    seed_gallery(azure, location)
    put_resource_group(azure, RG, location)
    compute = azure.client("compute")
    scale_set = compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, NAME, uniform_scale_set(location, {"id": version_id(azure, "1.0.0")}, 5)).result()
    azure.client("monitor").autoscale_settings.create_or_update(RG, AUTOSCALE, {
        "location": location, "enabled": True, "target_resource_uri": scale_set.id,
        "profiles": [{"name": "default", "capacity": {"minimum": "5", "maximum": "10", "default": "5"}, "rules": []}]})


def rollout(ansible_env, azure, reports: Path, **extra):
    extra_vars = {"rollout_resource_group": RG, "rollout_scale_set": NAME,
                  "rollout_image_version_id": version_id(azure, "1.1.0"), "rollout_batch_size": 40,
                  "rollout_canary": 1, "rollout_health_timeout": 30, "rollout_wait_sleep": 0.2,
                  "rollout_heartbeat_seconds": 1,
                  "rollout_report_dir": str(reports), **extra}
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "rollout.yml"), "-e", json.dumps(extra_vars)],
                          env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true"), cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def custom_stats(out):
    """The rollout_outcome published with set_stats, as the default callback prints it (JSON) at the end."""
    match = re.search(r"CUSTOM STATS: \*+\s+RUN: (\{.*\})\s*$", out, re.S)
    assert match, out[-3000:]
    return json.loads(match.group(1))["rollout_outcome"]


def images(azure):
    return sorted((vm.instance_id, vm.storage_profile.image_reference.id.rsplit("/", 1)[-1], vm.latest_model_applied)
                  for vm in azure.client("compute").virtual_machine_scale_set_vms.list(RG, NAME))


def autoscale_writes(control, since):
    """(seq, enabled, tags) of each write of the autoscale setting, and the seq of each write on the scale set."""
    toggles, scale_set_writes = [], []
    for entry in control.traffic(since):
        request = entry["liveRequest"]
        if request["method"] not in ("PUT", "PATCH", "POST"):
            continue
        if "/autoscalesettings/" in request["url"].lower():
            body = request.get("body") or {}
            toggles.append((entry["seq"], body.get("properties", {}).get("enabled"), body.get("tags") or {}))
        elif "/virtualmachinescalesets/%s" % NAME in request["url"].lower():
            scale_set_writes.append(entry["seq"])
    return toggles, scale_set_writes


def check_autoscale_suspended_around(control, azure, since):
    """Disabled before the first write on the scale set, marked as held by the rollout (so that a run after a crash
    finds it), enabled again after the last write, the mark gone."""
    toggles, writes = autoscale_writes(control, since)
    assert [enabled for _name, enabled, _tags in toggles] == [False, True], toggles
    assert writes and toggles[0][0] < min(writes) and toggles[1][0] > max(writes), (toggles, writes)
    assert "fleetops.rollout.suspended" in toggles[0][2] and "fleetops.rollout.suspended" not in toggles[1][2]
    setting = azure.client("monitor").autoscale_settings.get(RG, AUTOSCALE)
    assert setting.enabled is True and "fleetops.rollout.suspended" not in (setting.tags or {})


def test_rollout_playbook_rolls_out_batch_by_batch_with_autoscale_suspended(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)

    run = rollout(ansible_env, azure, tmp_path / "reports")

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    out = run.stdout
    assert "payments-api 1.1.0 is replicated to westeurope" in out
    assert "payments-prod/payments-api: 5 instance(s), Uniform, Manual upgrade mode; health: 5 Healthy" in out
    outcome = custom_stats(out)
    assert outcome["status"] == "succeeded" and outcome["failed"] is False, outcome
    assert outcome["autoscale_suspended"] == [AUTOSCALE]
    summary = outcome["summary"]
    assert (summary["instances_total"], summary["instances_upgraded"]) == (5, 5)
    # one line per batch, printed as it ended: the canary, then batches of 40%
    lines = re.findall(r'"msg": "((?:canary|batch) \d+ of \d+: instance\(s\) [^"]*)"', out)
    assert len(lines) == summary["batches_completed"] == summary["batches_planned"] >= 3, lines
    assert lines[0].startswith("canary 1 of %d: instance(s) " % summary["batches_planned"])
    assert all("-> healthy; unhealthy: 0.0% of the upgraded, 0.0% of the set" in line for line in lines), lines
    # the report files the module wrote, named in the outcome
    report = outcome["report"]
    assert all(Path(report[kind]).is_file() for kind in ("json", "markdown", "svg")), report
    assert Path(report["json"]).parent == tmp_path / "reports"
    assert json.loads(Path(report["json"]).read_text())["status"] == "succeeded"
    assert images(azure) == [(str(i), "1.1.0", True) for i in range(5)]
    check_autoscale_suspended_around(control, azure, since)


def test_unhealthy_version_fails_the_play_rolls_back_and_is_demoted(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.call("POST", "health-rules", {"match": {"scale_set": NAME, "image_version": "1.1.0"}, "state": "Unhealthy"})
    since = last_seq(control)

    run = rollout(ansible_env, azure, tmp_path / "reports", rollout_demote_on_failure=True)

    assert run.returncode != 0
    out = run.stdout
    outcome = custom_stats(out)
    assert outcome["status"] == "rolled_back" and outcome["failed"] is True, outcome
    assert outcome["msg"].startswith("Rollout of scale set %s/%s halted after batch 1 of " % (RG, NAME)), outcome["msg"]
    # the play ends failed with the module's message, after the batch line and the rollback were shown
    assert out.rstrip().count(outcome["msg"]) >= 1
    assert re.search(r"canary 1 of \d+: instance\(s\) \d -> unhealthy", out), out[-4000:]
    assert "rolled back instance(s) " in out
    assert outcome["rollback"]["outcome"] == "healthy"
    assert outcome["demoted"]["image_version_id"].lower() == version_id(azure, "1.1.0").lower()
    assert Path(outcome["report"]["markdown"]).is_file()
    # every instance back on 1.0.0; latestModelApplied is not compared: on Azure a revert is a new model
    # generation, so the untouched instances stay "not latest" (only the rolled-back canary is latest)
    assert [(instance_id, version) for instance_id, version, _latest in images(azure)] == [
        (str(i), "1.0.0") for i in range(5)]
    version = azure.client("compute").gallery_image_versions.get(GALLERY_RG, "golden", "payments-api", "1.1.0")
    assert version.properties.publishing_profile.exclude_from_latest is True
    check_autoscale_suspended_around(control, azure, since)
    assert "PLAY RECAP" in out and "failed=1" in out.split("PLAY RECAP")[-1]
