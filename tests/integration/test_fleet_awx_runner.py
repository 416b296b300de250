# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/fleet_rollout.yml under ansible-runner, the engine AWX runs jobs with, set up as AWX sets it up: an
inventory sync (ansible-inventory on the fleetops.vmss.instances source) whose hosts the job then gets as a
script inventory, the project copied into a private data directory, survey answers as extravars, the credential
as environment variables. Asserts what AWX would record: the job events (a runner_on_ok per wave's scale set,
playbook_on_stats with the set_stats artifact) and the artifacts directory of the job (rc, status, events). And the
workflow's failure path, playbooks/fleet_rollback.yml, fed a fleet_outcome artifact."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import ansible_runner
import yaml

from conftest import ROOT
from test_fleet_rollout import RG, exclusion, seed, versions
from test_rollout_role import version_id


def wave_node(identifier, selection):
    """The extra_data of a wave node of docs/awx/fleet_workflow.yml, for the inventory group `selection`."""
    play, = yaml.safe_load((ROOT / "docs" / "awx" / "fleet_workflow.yml").read_text())
    workflow = next(task["awx.awx.workflow_job_template"] for task in play["tasks"] if "awx.awx.workflow_job_template" in task)
    data = next(node["extra_data"] for node in workflow["schema"] if node["identifier"] == identifier)
    return dict(data, fleet_hosts=data["fleet_hosts"].replace("{{ fleet_awx_selection }}", selection))


def private_data_dir(tmp_path, ansible_env, inventory):
    """AWX's layout: project/ (the project's checkout), inventory/hosts (the synced hosts, as a script), env/."""
    root = tmp_path / "job"
    shutil.copytree(ROOT / "playbooks", root / "project" / "playbooks")
    script = root / "inventory" / "hosts"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % json.dumps(inventory))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (root / "env").mkdir()
    return root


def test_fleet_rollout_job_events_and_artifacts_as_awx_records_them(emulator, azure, ansible_env, tmp_path, monkeypatch):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    for key in list(os.environ):  # the job sees the credential and settings AWX gives it, nothing of this machine's
        if key.startswith(("AZURE_", "ANSIBLE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", ansible_env["PATH"])  # runner finds ansible-playbook / ansible-inventory on PATH
    envvars = dict(ansible_env, ANSIBLE_INVENTORY_ENABLED="script,fleetops.vmss.instances")

    # inventory source sync: ansible-inventory on the plugin's file, as AWX runs it in the execution environment
    source = tmp_path / "fleet.vmss.yml"
    source.write_text(yaml.safe_dump({"plugin": "fleetops.vmss.instances", "host_type": "scale_set",
                                      "scale_sets": [{"resource_group": RG}],
                                      "keyed_groups": [{"key": "location", "prefix": "region"}]}))
    synced, error = ansible_runner.get_inventory("list", [str(source)], response_format="json", envvars=envvars,
                                                 private_data_dir=str(tmp_path / "sync"), quiet=True)
    assert not error and sorted(synced["_meta"]["hostvars"]) == ["api-ne", "api-us", "api-we1", "api-we2"], error

    # the job of the workflow's wave_2 node (westeurope and eastus; northeurope is wave_3's): its extra_data and
    # the workflow survey's answers, as extravars
    extravars = {"fleet_image_version_id": version_id(azure, "1.1.0"), "fleet_parallel": 2, "fleet_replication_sleep": 0.2,
                 "fleet_batch_seconds": 60, "rollout_batch_size": 50, "rollout_health_timeout": 30,
                 "rollout_wait_sleep": 0.2, **wave_node("wave_2", "all")}
    root = private_data_dir(tmp_path, ansible_env, synced)
    runner = ansible_runner.run(private_data_dir=str(root), ident="42", playbook="playbooks/fleet_rollout.yml",
                                extravars=extravars, envvars=envvars, forks=2, quiet=True, timeout=600)

    stdout = runner.stdout.read()
    assert (runner.status, runner.rc) == ("successful", 0), stdout[-8000:]
    events = list(runner.events)
    oks = {(event["event_data"].get("play"), event["event_data"].get("host")) for event in events
           if event["event"] == "runner_on_ok" and event["event_data"].get("task") == "Roll out the scale set"}
    assert oks == {("Roll out the scale sets of wave 1", "api-we1"), ("Roll out the scale sets of wave 1", "api-we2"),
                   ("Roll out the scale sets of wave 2", "api-us")}, oks
    stats = [event for event in events if event["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    assert not stats[0]["event_data"]["failures"] and not stats[0]["event_data"]["dark"], stats[0]["event_data"]
    assert set(stats[0]["event_data"]["ok"]) == {"localhost", "api-we1", "api-we2", "api-us"}
    outcome = stats[0]["event_data"]["artifact_data"]["fleet_outcome"]  # what AWX stores as the job's artifacts
    assert outcome["status"] == "succeeded" and outcome["set_counts"] == {"succeeded": 3}, outcome
    assert [wave["region"] for wave in outcome["waves"]] == ["westeurope", "eastus"], outcome["waves"]
    markdown = stats[0]["event_data"]["artifact_data"]["fleet_report_markdown"]
    assert "1.1.0" in markdown and all(name in markdown for name in ("api-we1", "api-we2", "api-us")), markdown
    assert versions(azure) == {"api-we1": ["1.1.0", "1.1.0"], "api-us": ["1.1.0", "1.1.0"],
                               "api-we2": ["1.1.0", "1.1.0"], "api-ne": ["1.0.0", "1.0.0"]}
    # fleet_promote_unselected: false - northeurope, the next node's region, stays out of latest
    assert exclusion(azure) == (False, {"westeurope": False, "eastus": False, "northeurope": True})

    # the job's artifacts directory, as AWX's receptor worker hands it back
    artifacts = root / "artifacts" / "42"
    assert (artifacts / "rc").read_text().strip() == "0" and (artifacts / "status").read_text().strip() == "successful"
    saved = [json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")]
    saved_stats = [event for event in saved if event["event"] == "playbook_on_stats"]
    assert saved_stats[0]["event_data"]["artifact_data"]["fleet_outcome"] == outcome
    assert "Fleet rollout of 1.1.0: succeeded" in (artifacts / "stdout").read_text()
    # the report files land in the project's playbooks/reports (fleet_report_dir's default) of the private data dir
    report = json.loads((root / "project" / "playbooks" / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "succeeded"


def rollback(ansible_env, tmp_path, extra_vars):
    return subprocess.run(["ansible-playbook", "-i", "localhost,", str(ROOT / "playbooks" / "fleet_rollback.yml"),
                           "-e", json.dumps(extra_vars)], env=ansible_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False)


def test_rollback_job_moves_back_the_sets_the_outcome_says_moved(emulator, azure, ansible_env, tmp_path):
    """The workflow's failure path: fleet_outcome (the failed job's artifact) names the sets that had taken the new
    version; only those roll to fleet_rollback_image_version_id (here 1.1.0 stands in for the previous version)."""
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    item = {"resource_group": RG, "subscription_id": azure.subscription_id, "msg": ""}
    outcome = {"status": "halted", "waves": [
        {"index": 1, "region": "westeurope", "sets": [dict(item, host="api-we1", scale_set="api-we1", status="succeeded"),
                                                      dict(item, host="api-we2", scale_set="api-we2", status="failed")]},
        {"index": 2, "region": "eastus", "sets": [dict(item, host="api-us", scale_set="api-us", status="not_started")]}]}

    run = rollback(ansible_env, tmp_path, {"fleet_outcome": outcome, "fleet_rollback_image_version_id": version_id(azure, "1.1.0"),
                                           "rollout_batch_size": 50, "rollout_health_timeout": 30, "rollout_wait_sleep": 0.2})

    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    assert versions(azure) == {"api-we1": ["1.1.0", "1.1.0"], "api-we2": ["1.0.0", "1.0.0"],
                               "api-us": ["1.0.0", "1.0.0"], "api-ne": ["1.0.0", "1.0.0"]}


def test_rollback_job_without_the_outcome_fails_clearly(ansible_env, tmp_path):
    run = rollback(ansible_env, tmp_path, {"fleet_rollback_image_version_id": "/subscriptions/x"})

    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr
    assert "fleet_rollback needs fleet_outcome" in run.stdout, run.stdout[-3000:]
