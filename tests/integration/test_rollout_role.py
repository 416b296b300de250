# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rollout.yml (the rollout role) against the emulator: a Uniform set of 5 on payments-api 1.0.0 with the
Application Health extension and an enabled autoscale setting, rolled to 1.1.0 batch by batch; then 1.1.0 turned
Unhealthy by a health rule: the play fails with the module's message, the batch is rolled back, 1.1.0 demoted.
Both times the autoscale setting is disabled for the rollout and enabled again afterwards."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

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


def rollout(ansible_env, azure, reports: Optional[Path], playbook=str(ROOT / "playbooks" / "rollout.yml"), cwd=ROOT,
            env=None, **extra):
    """The rollout playbook; ``reports`` None: rollout_report_dir left to its default."""
    extra_vars = dict({"rollout_resource_group": RG, "rollout_scale_set": NAME,
                       "rollout_image_version_id": version_id(azure, "1.1.0"), "rollout_batch_size": 40,
                       "rollout_canary": 1, "rollout_health_timeout": 30, "rollout_wait_sleep": 0.2,
                       "rollout_heartbeat_seconds": 1}, **({} if reports is None else {"rollout_report_dir": str(reports)}))
    extra_vars.update(extra)
    return subprocess.run(["ansible-playbook", playbook, "-e", json.dumps(extra_vars)],
                          env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true", **(env or {})), cwd=cwd, capture_output=True,
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


def iso_seconds(stamp):
    """Seconds since the epoch of the module's ISO-8601 UTC time (2026-12-06T15:04:05.123Z)."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


TIMELINE_CALLBACK = """
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "timeline"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        with open(os.environ["TIMELINE_FILE"], "a") as out:
            out.write(json.dumps([time.time(), task.get_name()]) + "\\n")
"""


def test_heartbeat_at_most_once_per_interval_and_the_next_batch_not_held_back_by_it(
        emulator, azure, ansible_env, tmp_path):
    """The canary soaks for two heartbeat intervals and more: heartbeat lines (plain lines, no FAILED - RETRYING)
    while it runs, never two within one interval; and the role moves on (a callback notes when each task starts)
    within a few seconds of the module's end of each batch, well inside one interval: the wait returns when the job
    ends, not at the next heartbeat."""
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    heartbeat = 20   # half of it is the leeway to move on: room for a loaded CI machine
    (tmp_path / "callbacks").mkdir()
    (tmp_path / "callbacks" / "timeline.py").write_text(TIMELINE_CALLBACK)
    timeline_file = tmp_path / "timeline.jsonl"

    run = rollout(ansible_env, azure, tmp_path / "reports", rollout_heartbeat_seconds=heartbeat,
                  rollout_canary_soak=2 * heartbeat + 2,
                  env={"ANSIBLE_CALLBACK_PLUGINS": str(tmp_path / "callbacks"), "ANSIBLE_CALLBACKS_ENABLED": "timeline",
                       "TIMELINE_FILE": str(timeline_file)})

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    out = run.stdout
    assert "RETRYING" not in out
    batches = json.loads(Path(custom_stats(out)["report"]["json"]).read_text())["batches"]
    assert [(b["number"], b["kind"]) for b in batches] == [(1, "canary"), (2, "batch"), (3, "batch")], batches
    # each wait: from its task's start to the next task's start (when the role moved on)
    timeline = [json.loads(line) for line in timeline_file.read_text().splitlines()]
    waits = [(started, timeline[i + 1][0]) for i, (started, name) in enumerate(timeline)
             if re.search(r": Running (canary|batch) \d of 3 on ", name)]
    assert len(waits) == len(batches), timeline
    for batch, (wait_started, moved_on) in zip(batches, waits):
        assert wait_started < iso_seconds(batch["ended_at"]) < moved_on < iso_seconds(batch["ended_at"]) + heartbeat / 2, (
            batch["number"], wait_started, batch["ended_at"], moved_on)
    # the heartbeat: the canary's lines, each with the time waited, never more than one per interval
    waited = [int(seconds) for seconds in re.findall(
        r"^\[localhost\]: Running canary 1 of 3 on %s/%s \((\d+) s\)$" % (RG, NAME), out, re.M)]
    assert waited and waited[0] >= heartbeat, out[-6000:]
    assert len(waited) <= (waits[0][1] - waits[0][0]) / heartbeat, (waited, waits[0])
    assert all(later - earlier >= heartbeat for earlier, later in zip(waited, waited[1:])), waited


def writes_since(control, since):
    """The writes sent to Azure Resource Manager (not the token requests) since ``since``."""
    return [(entry["liveRequest"]["method"], entry["liveRequest"]["url"]) for entry in control.traffic(since)
            if entry["liveRequest"]["method"] in ("PUT", "PATCH", "POST", "DELETE")
            and "/oauth2/" not in entry["liveRequest"]["url"]]


def test_one_numbering_everywhere_a_heartbeat_one_failure_block_and_reports_where_the_user_runs(
        emulator, azure, control, ansible_env, tmp_path):
    """Batch 2 of 3 fails: the console, the failure message, the JSON, the Markdown, the SVG and the AWX artifact
    all say batch 2 of 3 (the module numbers them over the rollout, one call per batch); a heartbeat line while a
    batch runs; one fatal block, the sentence first. Run as `ansible-playbook fleetops.vmss.rollout` from a
    directory of the user's: the reports land there, not in the installed collection."""
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.call("POST", "health-rules", {"match": {"scale_set": NAME, "image_version": "1.1.0",
                                                    "instance_ids": ["1", "2", "3", "4"]}, "state": "Unhealthy"})
    workdir = tmp_path / "operator"
    workdir.mkdir()
    collection = Path(ansible_env["ANSIBLE_COLLECTIONS_PATH"].split(":")[0]) / "ansible_collections" / "fleetops" / "vmss"
    assert not (collection / "playbooks" / "reports").exists()

    run = rollout(ansible_env, azure, None, playbook="fleetops.vmss.rollout", cwd=workdir)

    assert run.returncode != 0
    out = run.stdout
    outcome = custom_stats(out)
    message = "Rollout of scale set %s/%s halted after batch 2 of 3: " % (RG, NAME)
    assert outcome["status"] == "rolled_back" and outcome["msg"].startswith(message), outcome
    # the console: each batch as it ended, with the module's numbers; a heartbeat while one ran
    lines = re.findall(r'"msg": "((?:canary|batch) \d+ of \d+: instance\(s\) [^"]*)"', out)
    assert [line.split(":")[0] for line in lines] == ["canary 1 of 3", "batch 2 of 3"], lines
    assert "-> unhealthy" in lines[1]
    assert re.search(r"^\[localhost\]: Running (canary 1|batch 2) of 3 on %s/%s \(\d+ s\)$" % (RG, NAME), out, re.M), out[-6000:]
    assert "RETRYING" not in out
    # one failure block, the sentence first
    assert out.count("fatal:") == 1, out[-6000:]
    fatal = out[out.index("fatal:"):]
    assert fatal.startswith('fatal: [localhost]: FAILED! => {"changed": false, "msg": "%s' % message), fatal[:600]
    # the artifact carries the batches table, numbered as the console
    assert [(b["number"], b["outcome"]) for b in outcome["batches"]] == [(1, "healthy"), (2, "unhealthy")]
    assert outcome["batches_total"] == 3 and outcome["halt"]["batch_number"] == 2
    # the reports, in the directory the user ran from, numbered the same way
    report = outcome["report"]
    assert all(Path(report[kind]).parent == workdir / "reports" for kind in ("json", "markdown", "svg")), report
    written = json.loads(Path(report["json"]).read_text())
    assert [b["number"] for b in written["batches"]] == [1, 2] and written["halt"]["batch_number"] == 2
    assert written["msg"] == outcome["msg"]
    markdown = Path(report["markdown"]).read_text()
    assert "- Batch: 2 of 3" in markdown and "| 2 | batch | 1, 2 |" in markdown
    svg = ET.fromstring(Path(report["svg"]).read_bytes())
    texts = [text.text for text in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert ["canary 1 (1 instance)", "batch 2 (2 instances)", "batch 3 (2 instances)"] == [
        t for t in texts if t and t.startswith(("canary ", "batch "))]
    assert any(t.startswith("halted after batch 2 of 3 (MaxUnhealthyUpgradedInstancePercentExceeded)") for t in texts)
    assert any(t.startswith("not Healthy after batch 2: 1 (Unhealthy), 2 (Unhealthy)") for t in texts), texts
    assert not (collection / "playbooks" / "reports").exists()   # nothing written beside the collection's playbook


SURVEY = {  # every input of the rollout role as an AWX survey (or -e key=value) gives it: text
    "rollout_batch_by": "percent", "rollout_batch_size": "40", "rollout_canary": "1", "rollout_canary_soak": "0",
    "rollout_pause_between_batches": "0", "rollout_health_timeout": "30", "rollout_max_unhealthy_instance_percent": "20",
    "rollout_max_unhealthy_upgraded_instance_percent": "20", "rollout_prioritize_unhealthy_instances": "false",
    "rollout_on_failure": "rollback", "rollout_demote_on_failure": "false", "rollout_allow_excluded": "false",
    "rollout_autoscale": "suspend", "rollout_strategy": "in_place", "rollout_timeout": "900", "rollout_wait_sleep": "0.2",
    "rollout_heartbeat_seconds": "1", "rollout_poll_seconds": "30", "rollout_blue_green_state": "live",
    "rollout_soak": "0", "rollout_deallocate_blue": "false", "rollout_keep_green": "false",
    "rollout_move_autoscale": "true", "rollout_azure_action": "auto",
}


def test_survey_strings_roll_out_and_a_rerun_with_nothing_to_do_writes_nothing(
        emulator, azure, control, ansible_env, tmp_path):
    """ansible-core 2.19 (the EE's) refuses a string where a conditional wants a boolean: every input given as
    text still rolls out. Run again at the version rolled out: nothing is written (autoscale untouched, no
    report) and it says so."""
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    first = rollout(ansible_env, azure, tmp_path / "reports", **SURVEY)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    assert custom_stats(first.stdout)["status"] == "succeeded"
    assert images(azure) == [(str(i), "1.1.0", True) for i in range(5)]
    reports = sorted((tmp_path / "reports").iterdir())
    since = last_seq(control)

    again = rollout(ansible_env, azure, tmp_path / "reports", **SURVEY)

    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-2000:]
    assert "%s/%s: nothing to do: all 5 instances run 1.1.0" % (RG, NAME) in again.stdout, again.stdout[-4000:]
    outcome = custom_stats(again.stdout)
    assert outcome["status"] == "nothing_to_do" and outcome["failed"] is False and outcome["report"] is None, outcome
    assert writes_since(control, since) == []          # autoscale neither disabled nor enabled, the set untouched
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
    assert sorted((tmp_path / "reports").iterdir()) == reports
