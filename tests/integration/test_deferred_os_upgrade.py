# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deferred automatic OS upgrades against the emulator: promoting 1.1.0 on a scale set with
osRollingUpgradeDeferral starts Azure's automatic OS upgrade, which moves nothing until approved.
rolling_upgrade action=approve (check mode, nothing to approve, an unknown instance refused), and the rollout
role's Azure path approving it batch by batch - to the end when the gates pass; stopped at the first batch whose
failed-request rate is far above the baseline's, the rest left on 1.0.0 and the version demoted."""

from __future__ import annotations

import pytest
from conftest import arm_writes, last_seq
from test_metric_gates import component, failed_requests_gate, scale_set_id
from test_rolling_upgrade import CAPACITY, RG, image_versions, os_history, run_role, seed, wait_until

APPROVE = "VirtualMachineScaleSets_ApproveRollingUpgrade"


def deferred(emulator, azure, ansible):
    """api with a deferred automatic OS upgrade to 1.1.0 rolling forward, nothing approved yet."""
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], automatic=True, deferral=True)
    wait_until(lambda: [h["runningStatus"]["code"] for h in os_history(azure)] == ["RollingForward"],
               "the deferred automatic upgrade")
    return base


def latest_code(azure):
    return azure.client("compute").virtual_machine_scale_set_rolling_upgrades.get_latest(
        RG, "api").running_status.code


def approvals(control, since):
    return [w["operation_id"] for w in arm_writes(control, since) if w["operation_id"] == APPROVE]


def test_approve_module_check_mode_unknown_ids_and_one_batch(emulator, azure, ansible, control):
    base = deferred(emulator, azure, ansible)
    assert image_versions(azure) == ["1.0.0"] * CAPACITY           # nothing moves before an approval
    since = last_seq(control)

    code, planned = ansible.module("rolling_upgrade", dict(base, action="approve", max_instances=2), check=True)
    assert code == 0 and planned["changed"] is True and arm_writes(control, since) == []
    assert planned["approved_instance_ids"] == ["0", "1"] and planned["pending_instance_ids"] == ["0", "1", "2", "3"]

    code, refused = ansible.module("rolling_upgrade", dict(base, action="approve", instance_ids=["0", "42"]))
    assert code != 0 and "InvalidParameter" in refused["msg"] and "42" in refused["msg"]
    assert arm_writes(control, since) == []

    code, done = ansible.module("rolling_upgrade", dict(base, action="approve", instance_ids=["2"], wait_timeout=60))
    assert code == 0, done
    assert (done["changed"], done["decision"], done["approved_instance_ids"]) == (True, "approve", ["2"])
    assert done["pending_instance_ids"] == ["0", "1", "3"] and done["target_version"] == "1.1.0"
    assert done["started_by"] == "Platform" and done["running_status"]["code"] == "RollingForward"
    assert image_versions(azure) == ["1.0.0", "1.0.0", "1.0.0", "1.1.0"]
    assert approvals(control, since) == [APPROVE]

    since = last_seq(control)
    code, again = ansible.module("rolling_upgrade", dict(base, action="approve", instance_ids=["2"], wait_timeout=60))
    assert code == 0 and (again["changed"], again["decision"]) == (False, "nothing_to_approve")
    assert approvals(control, since) == []


def test_the_role_approves_the_deferred_upgrade_batch_by_batch(emulator, azure, ansible, ansible_env, control):
    deferred(emulator, azure, ansible)
    # the same failed-request rate on both versions: the gate passes
    control.call("POST", "metric-scripts", {"resource_id": component(azure), "metric": "requests/failed",
                                            "scale_set": scale_set_id(azure, "api"), "values": {"*": 5}})
    since = last_seq(control)

    completed, outcome = run_role(ansible_env, azure, rollout_azure_action="approve", rollout_batch_by="count",
                                  rollout_batch_size=2, rollout_demote_on_failure=True,
                                  rollout_metric_gates=[failed_requests_gate(azure)])

    assert completed.returncode == 0, completed.stdout[-3000:]
    assert outcome["status"] == "succeeded" and outcome["approval"]["batches"] == [["0", "1"], ["2", "3"]]
    assert outcome["approval"]["pending_instance_ids"] == [] and outcome["moved_instance_count"] == CAPACITY
    assert approvals(control, since) == [APPROVE, APPROVE]
    assert image_versions(azure) == ["1.1.0"] * CAPACITY
    wait_until(lambda: latest_code(azure) == "Completed", "the upgrade's end")
    assert "batch 1: 0, 1 upgraded, gates passed (2 pending)" in completed.stdout


def test_a_failing_gate_stops_the_approvals_and_demotes(emulator, azure, ansible, ansible_env, control):
    deferred(emulator, azure, ansible)
    # 1.1.0 fails 20x the requests of 1.0.0 while its probe stays Healthy
    control.call("POST", "metric-scripts", {"resource_id": component(azure), "metric": "requests/failed",
                                            "scale_set": scale_set_id(azure, "api"), "values": {"1.1.0": 100, "*": 5}})
    since = last_seq(control)

    completed, outcome = run_role(ansible_env, azure, rollout_azure_action="approve", rollout_batch_by="count",
                                  rollout_batch_size=1, rollout_demote_on_failure=True,
                                  rollout_metric_gates=[failed_requests_gate(azure)])

    out = completed.stdout
    assert completed.returncode != 0, out[-3000:]
    assert outcome["status"] == "failed" and outcome["approval"]["batches"] == [["0"]], outcome
    assert outcome["approval"]["pending_instance_ids"] == ["1", "2", "3"] and outcome["moved_instance_count"] == 1
    [verdict] = outcome["approval"]["metrics"]
    assert verdict["state"] == "failed" and verdict["baseline"] == pytest.approx(5) and verdict["ratio"] > 2
    assert "MetricGateFailed" in out and "above max_ratio_to_baseline 2" in out
    assert approvals(control, since) == [APPROVE]                   # no approval after the failing batch
    # the instances never approved stay on 1.0.0: the deferred upgrade is cancelled, the version demoted
    assert image_versions(azure) == ["1.0.0", "1.0.0", "1.0.0", "1.1.0"]
    assert [h["runningStatus"]["code"] for h in os_history(azure)
            if h["targetImageReference"]["exactVersion"] == "1.1.0"] == ["Cancelled"], out[-3000:]
    demoted = azure.client("compute").gallery_image_versions.get(RG, "golden", "payments", "1.1.0")
    assert demoted.publishing_profile.exclude_from_latest is True
    assert outcome["demoted"]["exclude_from_latest"] is True
