# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The closed loop (issue 21): the job the rulebook extensions/eda/rulebooks/rollback_on_alert.yml launches -
playbooks/alert_rollback.yml with the extra vars the rule passes (alert_payload: the alert, event.body) - rolls back
the scale set the alert names, against the emulator.

The alert is Microsoft's documented common-alert-schema sample (tests/unit/eda/alert_sample.json), Fired, its target
the scale set, lower-cased as Azure sends it."""

from __future__ import annotations

import copy
import json
import subprocess

from ansible_collections.fleetops.vmss.plugins.module_utils._rollout import decode_marker
from conftest import ROOT, arm_writes, last_seq
from test_rollout_role import NAME, RG, custom_stats, images, rollout, seed, version_id

SAMPLE = json.loads((ROOT / "tests" / "unit" / "eda" / "alert_sample.json").read_text())
UPGRADE = "VirtualMachineScaleSets_UpdateInstances"
UPDATE = "VirtualMachineScaleSets_Update"


def alert(azure):
    """What the rule passes as alert_payload: the alert of rule payments-api-failed-requests, Fired on the set."""
    payload = copy.deepcopy(SAMPLE)
    payload["data"]["essentials"].update(
        alertRule="payments-api-failed-requests", severity="Sev1", monitorCondition="Fired",
        alertTargetIDs=[("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s"
                         % (azure.subscription_id, RG, NAME)).lower()])
    return payload


def alert_rollback(ansible_env, payload, **extra):
    extra_vars = dict(alert_payload=payload, alert_rollback_health_timeout=30, alert_rollback_wait_sleep=0.2, **extra)
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "alert_rollback.yml"), "-e", json.dumps(extra_vars)],
                          env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true"), cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def tags(azure):
    return azure.client("compute").virtual_machine_scale_sets.get(RG, NAME).tags or {}


def test_a_fired_alert_rolls_back_a_halted_rollout_whatever_health_says_once(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    # 1.1.0 Unhealthy: the rollout halts after the canary (on_failure halt), the rollback point kept on the set
    control.add_health_rule(match={"scale_set": NAME, "image_version": "1.1.0"}, state="Unhealthy")
    halted = rollout(ansible_env, azure, tmp_path / "reports", rollout_on_failure="halt")
    assert halted.returncode != 0 and custom_stats(halted.stdout)["status"] == "halted", halted.stdout[-3000:]
    canary = [i for i, version, _latest in images(azure) if version == "1.1.0"]
    assert len(canary) == 1 and decode_marker(tags(azure))["state"] == "rolling"
    # the probe turns green again: health alone would not roll back; the alert (a metric, say) decides
    control.clear_health_rules()
    since = last_seq(control)

    job = alert_rollback(ansible_env, alert(azure))

    assert job.returncode == 0, job.stdout[-6000:] + job.stderr[-2000:]
    assert "%s/%s: rolled back 1 instance(s) to %s" % (RG, NAME, version_id(azure, "1.0.0")) in job.stdout
    # (the untouched instances stay "not latest" after the revert, as on Azure: GUIDE, model generations)
    assert [version for _i, version, _latest in images(azure)] == ["1.0.0"] * 5
    assert not any(tag.startswith("fleetops.rollout") for tag in tags(azure))
    writes = [(entry.get("operation_id"), (entry["liveRequest"].get("body") or {}).get("instanceIds"))
              for entry in arm_writes(control, since)]
    # the model back with the rollback point in state rolling_back, the canary moved back, the rollback point removed
    assert writes == [(UPDATE, None), (UPGRADE, canary), (UPDATE, None)], writes
    assert decode_marker(arm_writes(control, since)[0]["liveRequest"]["body"]["tags"])["state"] == "rolling_back"

    # the same alert again (it keeps firing, or the rulebook's throttle window passed): nothing to roll back
    since = last_seq(control)
    again = alert_rollback(ansible_env, alert(azure))

    assert again.returncode == 0, again.stdout[-6000:]
    assert "%s/%s: no rollback point: its rollout completed or was rolled back" % (RG, NAME) in again.stdout
    assert [entry.get("operation_id") for entry in arm_writes(control, since)] == []


def test_after_a_completed_rollout_the_alert_rolls_the_set_back_to_the_version_given(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    done = rollout(ansible_env, azure, tmp_path / "reports")
    assert done.returncode == 0 and custom_stats(done.stdout)["status"] == "succeeded", done.stdout[-3000:]
    assert "fleetops.rollout" not in tags(azure)

    job = alert_rollback(ansible_env, alert(azure), alert_rollback_image_version_id=version_id(azure, "1.0.0"),
                         rollout_report_dir=str(tmp_path / "back"), rollout_health_timeout=30, rollout_wait_sleep=0.2,
                         rollout_heartbeat_seconds=1)

    assert job.returncode == 0, job.stdout[-6000:] + job.stderr[-2000:]
    assert "no rollback point: its rollout completed or was rolled back, rolling out %s" % version_id(azure, "1.0.0") \
        in job.stdout
    outcome = custom_stats(job.stdout)
    assert outcome["status"] == "succeeded" and outcome["image_version_id"] == version_id(azure, "1.0.0"), outcome
    assert [version for _i, version, _latest in images(azure)] == ["1.0.0"] * 5
