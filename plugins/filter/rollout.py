# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the rollout role: one result from the calls of a rollout run batch by batch, and its reports.

The role calls fleetops.vmss.rollout with ``max_batches: 1`` so that each batch shows in the job output as it
ends; every call resumes where the previous one stopped and returns only its own batches, plan and summary.
``rollout_merge`` puts those results back together into one result of the rollout contract's shape (the batches
keep the rollout-wide numbers the module gave them), and ``rollout_reports`` renders its JSON, Markdown and SVG reports with the
collection's renderer (module_utils/_report.py), for the role to write. Both are pure.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils import _report as report

COUNTERS = ("total", "writes", "reads")
# what async_status adds to a module's result (the role runs each call in the background), and rollout_wait
# to a gated call's step
ASYNC_KEYS = ("ansible_job_id", "finished", "started", "results_file", "attempts", "failed_when_result", "stdout",
              "stderr", "stdout_lines", "stderr_lines", "gate_step")


def _requests(items: List[Optional[Mapping]]) -> Dict[str, int]:
    """The sum of ``{"total", "writes", "reads"}`` counters (missing ones count 0)."""
    return {key: sum(int((item or {}).get(key) or 0) for item in items) for key in COUNTERS}


def _last(results: List[Mapping], key: str) -> Any:
    """The value of ``key`` in the last result that has one (not None)."""
    return next((result[key] for result in reversed(results) if result.get(key) is not None), None)


def _ran(result: Mapping, done: int):
    """One call's (batches run, the planned batches it ran, the planned batches it left), matched by their
    rollout-wide ``number``: fleetops.vmss.rollout numbers them over the whole rollout. Results without numbers
    (blue/green phases, ``done`` run before) are numbered here in the order they ran."""
    run = list(result.get("batches") or [])
    plan = list((result.get("plan") or {}).get("batches") or [])
    if any("number" not in item for item in run + plan):
        numbers = {batch.get("index", position): done + position + 1 for position, batch in enumerate(run)}
        run = [dict(batch, number=done + position + 1) for position, batch in enumerate(run)]
        plan = [dict(item, number=numbers.get(item.get("index"))) for item in plan]
    ran = {batch["number"] for batch in run}
    return run, [item for item in plan if item["number"] in ran], [item for item in plan if item["number"] not in ran]


def _duration(started: Any, ended: Any, fallback: float) -> Optional[float]:
    start, end = report.parse_time(started), report.parse_time(ended)
    return round((end - start).total_seconds(), 3) if start and end else fallback


def _estimate(results: List[Mapping]) -> Any:
    """The first call's estimate (it plans the whole rollout); blue/green calls each plan only their state
    (staged, then live), so theirs add up."""
    plans = [result.get("plan") or {} for result in results]
    if any(report.is_blue_green(result) or report.is_blue_green(plan) for result, plan in zip(results, plans)):
        return sum(float(plan.get("estimated_seconds") or 0) for plan in plans)
    return plans[0].get("estimated_seconds")


def rollout_merge(results: Any) -> Dict[str, Any]:
    """One rollout result from the results of successive calls (oldest first) of the same rollout."""
    if not isinstance(results, (list, tuple)) or not all(isinstance(item, Mapping) for item in results):
        raise AnsibleFilterError("rollout_merge expects a list of fleetops.vmss.rollout results")
    results = [item for item in results if item]
    if not results:
        return {}
    first, last = results[0], results[-1]
    batches, planned, left = [], [], []
    for result in results:
        run, ran, left = _ran(result, len(batches))
        batches += run
        planned += ran
    planned += left   # planned by the last call, never run

    merged = {key: value for key, value in last.items() if key not in ASYNC_KEYS}
    if merged.get("status") is None:  # a call that failed before the rollout ran (an error, a timeout)
        merged["status"] = "failed" if last.get("failed") else _last(results, "status")
    merged["halt"] = _last(results, "halt")
    summaries = [result.get("summary") or {} for result in results]
    started, ended = summaries[0].get("started_at"), summaries[-1].get("ended_at")
    merged.update(
        changed=any(result.get("changed") for result in results),
        model_changed=any(result.get("model_changed") for result in results),
        image_before=first.get("image_before"),
        image_after=_last(results, "image_after"),
        plan=dict(last.get("plan") or {}, batches=planned,
                  estimated_seconds=_estimate(results)),
        batches=batches,
        rollback=_last(results, "rollback"),
        demoted=_last(results, "demoted"),
        arm_requests=sum(int(result.get("arm_requests") or 0) for result in results),
        summary=dict(summaries[-1],
                     instances_total=summaries[0].get("instances_total"),
                     instances_upgraded=sum(int(item.get("instances_upgraded") or 0) for item in summaries),
                     batches_planned=last.get("batches_total", len(planned)),
                     batches_completed=sum(int(item.get("batches_completed") or 0) for item in summaries),
                     started_at=started, ended_at=ended,
                     # a last call without a summary (it failed outright): up to the last end known
                     duration_seconds=_duration(started, ended or _last(summaries, "ended_at"),
                                                sum(float(item.get("duration_seconds") or 0) for item in summaries)),
                     arm_requests=_requests([item.get("arm_requests") for item in summaries])),
    )
    merged.pop("report", None)
    return merged


def rollout_reports(result: Any, kind: str = "rollout") -> Dict[str, Dict[str, str]]:
    """``{"json" | "markdown" | "svg": {"name": file name, "content": text}}``: the reports of ``result`` as
    ``write_reports`` names and renders them (file names ``<kind>-<scale set>-<start time>``)."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError("rollout_reports expects a rollout result (a dict)")
    result = dict(result)
    stem = report.report_stem(result, kind)
    svg = stem + ".svg"
    return {"json": {"name": stem + ".json", "content": report.render_json(result)},
            "markdown": {"name": stem + ".md", "content": report.render_markdown(result, svg, kind)},
            "svg": {"name": svg, "content": report.render_svg(result, kind)}}


class FilterModule:  # pylint: disable=too-few-public-methods
    """fleetops.vmss.rollout_merge, fleetops.vmss.rollout_reports."""

    def filters(self):
        return {"rollout_merge": rollout_merge, "rollout_reports": rollout_reports}
