# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout role's filters: the results of a rollout run one batch per call, merged into one result, and its
reports rendered."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.filter.rollout import FilterModule, rollout_merge, rollout_reports


def plan_item(index, ids, number):
    return {"index": index, "number": number, "kind": "batch", "instance_ids": ids, "update_domains": [],
            "fault_domains": [], "zones": []}


def batch(index, ids, outcome, started, ended, number):
    return {"index": index, "number": number, "kind": "batch", "instance_ids": ids, "started_at": started, "ended_at": ended,
            "outcome": outcome, "health": {i: "Healthy" if outcome == "healthy" else "Unhealthy" for i in ids},
            "unhealthy_upgraded_percent": 0.0, "unhealthy_set_percent": 0.0,
            "arm_requests": {"total": 5, "writes": 1, "reads": 4}}


def call(status, plan_ids, ran, started, ended, upgraded, completed, first=1, **extra):
    """One call's result as the module returns it: its own plan (index from 0; number over the whole rollout,
    from ``first``) and the batches it ran."""
    return dict({
        "changed": True, "status": status, "scale_set": "rg/web", "orchestration_mode": "Uniform",
        "model_changed": False, "image_before": {"id": "v1"}, "image_after": {"id": "v2"},
        "plan": {"batches": [plan_item(i, ids, first + i) for i, ids in enumerate(plan_ids)], "skipped": [],
                 "estimated_seconds": 100.0 * len(plan_ids)},
        "batches": ran, "halt": None, "rollback": None, "demoted": None, "skipped_instances": [], "report": None,
        "summary": {"instances_total": 6, "instances_upgraded": upgraded, "instances_skipped": 0,
                    "batches_planned": len(plan_ids), "batches_completed": completed, "started_at": started,
                    "ended_at": ended, "duration_seconds": 1.0,
                    "arm_requests": {"total": 10, "writes": 2, "reads": 8}},
        "arm_requests": 10, "batches_total": first - 1 + len(plan_ids)}, **extra)


FIRST = call("in_progress", [["0", "1"], ["2", "3"], ["4", "5"]],
             [batch(0, ["0", "1"], "healthy", "2026-11-22T04:30:00Z", "2026-11-22T04:32:00Z", 1)],
             "2026-11-22T04:29:58Z", "2026-11-22T04:32:01Z", 2, 1, model_changed=True)
SECOND = call("in_progress", [["2", "3"], ["4", "5"]],
              [batch(0, ["2", "3"], "healthy", "2026-11-22T04:32:02Z", "2026-11-22T04:34:00Z", 2)],
              "2026-11-22T04:32:01Z", "2026-11-22T04:34:01Z", 2, 1, first=2, image_before={"id": "v1-from-tag"})


def test_calls_merge_into_one_rollout_keeping_the_modules_numbers():
    halt = {"at": "2026-11-22T04:36:00Z", "batch_index": 0, "batch_number": 3, "reason": "2 of 6 unhealthy",
            "code": "X"}
    third = call("rolled_back", [["4", "5"]],
                 [batch(0, ["4", "5"], "unhealthy", "2026-11-22T04:34:02Z", "2026-11-22T04:36:00Z", 3)],
                 "2026-11-22T04:34:01Z", "2026-11-22T04:37:00Z", 2, 0, first=3, halt=halt,
                 msg="halted after batch 3 of 3",
                 rollback={"instance_ids": ["0", "1", "2", "3", "4", "5"], "outcome": "healthy"},
                 demoted={"image_version_id": "v2", "exclude_from_latest": True})

    merged = rollout_merge([FIRST, SECOND, third])

    assert [(b["number"], b["instance_ids"], b["outcome"]) for b in merged["batches"]] == [
        (1, ["0", "1"], "healthy"), (2, ["2", "3"], "healthy"), (3, ["4", "5"], "unhealthy")]
    assert [(b["number"], b["instance_ids"]) for b in merged["plan"]["batches"]] == [
        (1, ["0", "1"]), (2, ["2", "3"]), (3, ["4", "5"])]
    assert merged["plan"]["estimated_seconds"] == 300.0  # the first call's, for the whole rollout
    assert merged["halt"] == halt and merged["batches_total"] == 3  # the module's numbers, as they are
    assert (merged["status"], merged["msg"], merged["rollback"], merged["demoted"]) == (
        "rolled_back", "halted after batch 3 of 3", third["rollback"], third["demoted"])
    assert (merged["changed"], merged["model_changed"], merged["image_before"]) == (True, True, {"id": "v1"})
    assert merged["summary"] == {
        "instances_total": 6, "instances_upgraded": 6, "instances_skipped": 0, "batches_planned": 3,
        "batches_completed": 2, "started_at": "2026-11-22T04:29:58Z", "ended_at": "2026-11-22T04:37:00Z",
        "duration_seconds": 422.0, "arm_requests": {"total": 30, "writes": 6, "reads": 24}}
    assert merged["arm_requests"] == 30
    assert "report" not in merged
    assert FIRST["batches"][0]["index"] == 0 and SECOND["batches"][0]["index"] == 0  # inputs untouched
    # what async_status adds to a call run in the background stays out of the rollout's result
    assert "ansible_job_id" not in rollout_merge([dict(FIRST, ansible_job_id="j1", finished=1)])
    # nor what rollout_wait adds to a gated call's step
    assert "gate_step" not in rollout_merge([dict(FIRST, ansible_job_id="j1", finished=False, gate_step=1)])


def test_results_without_numbers_are_numbered_in_the_order_they_ran():
    """blue/green phases carry no rollout-wide number: the merge numbers them in the order they ran."""
    def strip(result):
        return dict(result, batches=[{k: v for k, v in b.items() if k != "number"} for b in result["batches"]],
                    plan=dict(result["plan"], batches=[{k: v for k, v in b.items() if k != "number"}
                                                       for b in result["plan"]["batches"]]))
    merged = rollout_merge([strip(FIRST), strip(SECOND)])
    assert [(b["number"], b["instance_ids"]) for b in merged["batches"]] == [(1, ["0", "1"]), (2, ["2", "3"])]
    assert [b["number"] for b in merged["plan"]["batches"]] == [1, 2, None]


def test_batches_still_planned_when_the_last_call_stopped_are_kept_in_the_plan():
    merged = rollout_merge([FIRST])
    assert {key: merged[key] for key in ("batches", "plan", "status", "halt")} == {
        key: FIRST[key] for key in ("batches", "plan", "status", "halt")}
    assert merged["summary"]["duration_seconds"] == 123.0  # from its start to its end
    merged = rollout_merge([FIRST, SECOND])
    assert [(b["number"], b["instance_ids"]) for b in merged["plan"]["batches"]] == [
        (1, ["0", "1"]), (2, ["2", "3"]), (3, ["4", "5"])]
    assert merged["status"] == "in_progress" and merged["summary"]["batches_planned"] == 3
    assert merged["halt"] is None and rollout_merge([]) == {}


def test_a_failed_call_without_the_rollout_keys_still_merges():
    failed = {"failed": True, "msg": "Failed to roll out scale set rg/web: Timeout: ...", "arm_requests": 3}
    merged = rollout_merge([FIRST, failed])
    assert (merged["msg"], merged["status"]) == (failed["msg"], "failed")
    assert [b["number"] for b in merged["batches"]] == [1]
    assert merged["summary"]["started_at"] == "2026-11-22T04:29:58Z" and merged["arm_requests"] == 13


def test_reports_are_named_and_rendered_as_write_reports_does():
    reports = rollout_reports(rollout_merge([FIRST, SECOND]))
    assert {kind: item["name"] for kind, item in reports.items()} == {
        "json": "rollout-web-20261122T042958Z.json", "markdown": "rollout-web-20261122T042958Z.md",
        "svg": "rollout-web-20261122T042958Z.svg"}
    assert json.loads(reports["json"]["content"])["summary"]["batches_completed"] == 2
    assert "![timeline](rollout-web-20261122T042958Z.svg)" in reports["markdown"]["content"]
    assert reports["svg"]["content"].lstrip().startswith(("<?xml", "<svg"))


def test_bad_input_is_a_filter_error_and_both_filters_are_exported():
    with pytest.raises(AnsibleFilterError):
        rollout_merge("not a list")
    with pytest.raises(AnsibleFilterError):
        rollout_reports(["not", "a", "dict"])
    assert set(FilterModule().filters()) == {"rollout_merge", "rollout_reports"}


def test_blue_green_calls_add_up_their_estimates_and_any_model_change():
    """Blue/green's calls each plan only their own state (staged, then live); a staged call that found green
    already there planned nothing, but the live one still has its estimate."""
    staged = {"status": "nothing_to_do", "model_changed": False, "batches": [],
              "plan": {"batches": [], "estimated_seconds": 0.0}}
    live = {"status": "succeeded", "model_changed": True,
            "batches": [{"index": 0, "kind": "swap", "instance_ids": [], "outcome": "healthy"}],
            "plan": {"batches": [{"index": 0, "kind": "swap", "instance_ids": []}], "estimated_seconds": 296.0}}
    merged = rollout_merge([staged, live])
    assert merged["plan"]["estimated_seconds"] == 296.0 and merged["model_changed"] is True
    assert rollout_merge([dict(staged, plan={"batches": [{"index": 0, "kind": "stage"}], "estimated_seconds": 90.0}),
                          live])["plan"]["estimated_seconds"] == 386.0


def test_merging_the_merged_result_with_the_next_call_is_merging_every_call():
    """The role keeps one merged result and merges each call into it (O(calls), not O(calls^2)): the same result."""
    def strip(result):
        return dict(result, batches=[{k: v for k, v in b.items() if k != "number"} for b in result["batches"]],
                    plan=dict(result["plan"], batches=[{k: v for k, v in b.items() if k != "number"}
                                                       for b in result["plan"]["batches"]]))
    third = call("rolled_back", [["4", "5"]],
                 [batch(0, ["4", "5"], "unhealthy", "2026-11-22T04:34:02Z", "2026-11-22T04:36:00Z", 3)],
                 "2026-11-22T04:34:01Z", "2026-11-22T04:37:00Z", 2, 0, first=3,
                 halt={"at": "2026-11-22T04:36:00Z", "batch_index": 0, "batch_number": 3, "reason": "x", "code": "X"},
                 rollback={"instance_ids": ["4", "5"], "outcome": "healthy"})
    failed = {"failed": True, "msg": "Failed to roll out scale set rg/web: Timeout: ...", "arm_requests": 3}
    for calls in ([FIRST, SECOND, third], [FIRST, SECOND, failed], [strip(FIRST), strip(SECOND)], [FIRST]):
        folded = {}
        for result in calls:
            folded = rollout_merge([folded, result])
        assert folded == rollout_merge(calls)
