# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults are not verdicts, in the roles: a 503 that outlasts the SDK's retries (injected by the emulator) stops the
rollout role and the fleet as interrupted - nothing judged, rolled back or demoted, the version's promotion state
unchanged - and the same playbook run again resumes and finishes."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import arm_writes, last_seq
from test_fleet_rollout import (REGIONS, SETS, exclusion, fleet, fleet_command, seed as seed_fleet, versions,
                                writes_by_target)
from test_rollout_role import GALLERY_RG, NAME, custom_stats, images, rollout, seed as seed_set

UPGRADE = "VirtualMachineScaleSets_UpdateInstances"   # POST .../manualupgrade


def storm(control, scale_set, **match):
    """Every matching request on ``scale_set`` answered 503, more times than any retry policy tries."""
    control.add_fault(kind="503", count=1000, retry_after_ms=10,
                      match=dict({"path": "/virtualMachineScaleSets/%s(/manualupgrade)?$" % scale_set}, **match))


def set_writes(control, since):
    return {target for _seq, target, _body in writes_by_target(control, since) if target.startswith("set:")}


def version_writes(control, since):
    return [body for _seq, target, body in writes_by_target(control, since) if target == "version"]


def test_the_rollout_role_interrupted_by_a_fault_neither_rolls_back_nor_demotes(
        emulator, azure, control, ansible_env, tmp_path):
    seed_set(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    storm(control, NAME, operation_id=UPGRADE)
    since = last_seq(control)

    run = rollout(ansible_env, azure, tmp_path / "reports", rollout_demote_on_failure=True)

    assert run.returncode != 0
    outcome = custom_stats(run.stdout)
    assert (outcome["status"], outcome["failed"], outcome["interrupted"]) == ("interrupted", False, True), outcome
    assert outcome["demoted"] is None and outcome["rollback"] is None, outcome
    assert "ServiceUnavailable" in outcome["msg"], outcome["msg"]
    assert "Run the same playbook again to resume." in run.stdout, run.stdout[-4000:]
    assert all(version == "1.0.0" for _id, version, _latest in images(azure))
    # no write on the gallery (no demotion), autoscale enabled again
    assert not [entry for entry in control.traffic(since) if "/galleries/" in entry["liveRequest"]["url"].lower()
                and entry["liveRequest"]["method"] != "GET"]
    version = azure.client("compute").gallery_image_versions.get(GALLERY_RG, "golden", "payments-api", "1.1.0")
    assert not version.publishing_profile.exclude_from_latest
    assert azure.client("monitor").autoscale_settings.get("payments-prod", "payments-api-autoscale").enabled is True


def test_a_fault_in_the_canary_wave_interrupts_the_fleet_without_demotion_and_a_rerun_finishes(
        emulator, azure, control, ansible_env, tmp_path):
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    storm(control, "api-we1", operation_id=UPGRADE)
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path)

    assert run.returncode != 0
    assert "Fleet interrupted by scale set api-we1 in wave 1 (westeurope)" in run.stdout, run.stdout[-8000:]
    assert "run the same playbook again to resume" in run.stdout
    assert "Fleet halted" not in run.stdout
    assert set_writes(control, since) <= {"set:api-we1", "set:api-we2"}     # no other region touched
    got = versions(azure)
    assert got["api-we1"] == ["1.0.0", "1.0.0"] and got["api-we2"] == ["1.0.0", "1.1.0"], got   # nothing rolled back
    assert got["api-us"] == got["api-ne"] == ["1.0.0", "1.0.0"]
    # the plan's exclusion of the regions not passed yet, and no demotion after it
    assert exclusion(azure) == (False, {region: True for region in REGIONS})
    assert len(version_writes(control, since)) == 1
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "interrupted" and report["halted"]["host"] == "api-we1", report
    assert report["halted"]["interrupted"] is True and "ServiceUnavailable" in report["halted"]["msg"], report["halted"]
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert statuses == {"api-we1": "interrupted", "api-we2": "stopped", "api-us": "not_started",
                        "api-ne": "not_started"}, statuses

    control.clear_faults()
    again = fleet(ansible_env, azure, tmp_path)

    assert again.returncode == 0, again.stdout[-8000:] + again.stderr[-3000:]
    assert versions(azure) == {name: ["1.1.0", "1.1.0"] for name in SETS}
    assert exclusion(azure) == (False, {region: False for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "succeeded" and report["halted"] is None, report


def test_a_fault_on_a_preflight_read_interrupts_the_fleet_without_demotion(
        emulator, azure, control, ansible_env, tmp_path):
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    storm(control, "api-we2", method="GET")   # the pre-flight's read of the scale set
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path)

    assert run.returncode != 0
    assert "Fleet interrupted by scale set api-we2 in wave 1 (westeurope)" in run.stdout, run.stdout[-8000:]
    assert "Fleet halted" not in run.stdout
    assert set_writes(control, since) <= {"set:api-we1"}
    got = versions(azure)
    assert got["api-we2"] == got["api-us"] == got["api-ne"] == ["1.0.0", "1.0.0"], got
    assert exclusion(azure) == (False, {region: True for region in REGIONS})
    assert len(version_writes(control, since)) == 1                           # the plan's, no demotion
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "interrupted" and report["halted"]["host"] == "api-we2", report
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert statuses["api-we2"] == "interrupted" and statuses["api-we1"] == "stopped", statuses


def test_a_fault_on_the_promotion_interrupts_the_fleet_before_the_next_wave_without_demotion(
        emulator, azure, control, ansible_env, tmp_path):
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)
    command, env = fleet_command(ansible_env, azure, tmp_path)
    with open(tmp_path / "fleet.log", "w", encoding="utf-8") as log:
        run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)  # pylint: disable=consider-using-with
        try:
            # once the canary wave moves instances (the plan's version write is done), every version write fails
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and run.poll() is None and not any(
                    "/manualupgrade" in entry["liveRequest"]["url"].lower() for entry in arm_writes(control, since)):
                time.sleep(0.2)
            control.add_fault(kind="503", count=1000, retry_after_ms=10, match={"path": r"/versions/1\.1\.0$"})
            run.wait(600)
        finally:
            if run.poll() is None:
                run.kill()
    out = (tmp_path / "fleet.log").read_text()

    assert run.returncode != 0
    assert "Fleet interrupted: the promotion in westeurope failed" in out, out[-8000:]
    assert "Fleet halted" not in out
    assert set_writes(control, since) <= {"set:api-we1", "set:api-we2"}     # no set of the next wave started
    assert versions(azure)["api-we1"] == versions(azure)["api-we2"] == ["1.1.0", "1.1.0"]
    # the faulted writes leave no trace in the emulator's traffic: the demotion task itself was skipped, not refused
    demotion = out.split("Halt - demote the image version in every region]", 1)[1].split("TASK [", 1)[0]
    assert "skipping: [localhost]" in demotion and "fatal:" not in demotion, demotion
    control.clear_faults()
    assert exclusion(azure) == (False, {region: True for region in REGIONS})   # as the plan left it
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "interrupted" and report["halted"]["host"] is None, report
    assert report["promoted_regions"] == [], report


def test_a_failure_and_a_fault_in_the_same_wave_halt_and_demote_the_verdict_wins(
        emulator, azure, control, ansible_env, tmp_path):
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.add_health_rule(match={"scale_set": "api-we1", "image_version": "1.1.0"}, state="Unhealthy")
    storm(control, "api-we2", operation_id=UPGRADE)
    since = last_seq(control)

    run = fleet(ansible_env, azure, tmp_path, rollout_health_timeout=5)

    assert run.returncode != 0
    assert "Fleet halted by scale set api-we1 in wave 1 (westeurope)" in run.stdout, run.stdout[-8000:]
    assert "demoted in every region" in run.stdout
    assert set_writes(control, since) <= {"set:api-we1", "set:api-we2"}
    assert exclusion(azure) == (True, {region: True for region in REGIONS})
    report = json.loads((tmp_path / "reports" / "fleet-1.1.0.json").read_text())
    assert report["status"] == "halted" and report["halted"]["host"] == "api-we1", report
    assert report["halted"]["interrupted"] is False, report["halted"]
    statuses = {item["host"]: item["status"] for wave in report["waves"] for item in wave["sets"]}
    assert (statuses["api-we1"], statuses["api-we2"]) == ("failed", "interrupted"), statuses
