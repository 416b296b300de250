# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the rollout role: one result from the calls of a rollout run batch by batch, and its reports.

The role calls fleetops.vmss.rollout with ``max_batches: 1`` so that each batch shows in the job output as it
ends; every call resumes where the previous one stopped and returns only its own batches, plan and summary.
``rollout_merge`` puts those results back together into one result of the rollout contract's shape (batches
numbered in the order they ran), and ``rollout_reports`` renders its JSON, Markdown and SVG reports with the
collection's renderer (module_utils/_report.py), for the role to write. Both are pure.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils import _report as report

COUNTERS = ("total", "writes", "reads")


def _requests(items: List[Optional[Mapping]]) -> Dict[str, int]:
    """The sum of ``{"total", "writes", "reads"}`` counters (missing ones count 0)."""
    return {key: sum(int((item or {}).get(key) or 0) for item in items) for key in COUNTERS}


def _last(results: List[Mapping], key: str) -> Any:
    """The value of ``key`` in the last result that has one (not None)."""
    return next((result[key] for result in reversed(results) if result.get(key) is not None), None)


def _renumbered(result: Mapping, offset: int):
    """One call's (batches run, planned batches it ran, planned batches it left, index map), numbered from
    ``offset`` in the order they ran (each call numbers its own plan from 0)."""
    run = list(result.get("batches") or [])
    index_map = {batch.get("index", position): offset + position for position, batch in enumerate(run)}
    plan = list((result.get("plan") or {}).get("batches") or [])
    ran = [dict(item, index=index_map[item.get("index")]) for item in plan if item.get("index") in index_map]
    left = [item for item in plan if item.get("index") not in index_map]
    run = [dict(batch, index=offset + position) for position, batch in enumerate(run)]
    return run, ran, left, index_map


def _duration(started: Any, ended: Any, fallback: float) -> Optional[float]:
    start, end = report.parse_time(started), report.parse_time(ended)
    return round((end - start).total_seconds(), 3) if start and end else fallback


def rollout_merge(results: Any) -> Dict[str, Any]:
    """One rollout result from the results of successive calls (oldest first) of the same rollout."""
    if not isinstance(results, (list, tuple)) or not all(isinstance(item, Mapping) for item in results):
        raise AnsibleFilterError("rollout_merge expects a list of fleetops.vmss.rollout results")
    results = [item for item in results if item]
    if not results:
        return {}
    first, last = results[0], results[-1]
    batches, planned, index_maps, left = [], [], [], []
    for result in results:
        run, ran, left, index_map = _renumbered(result, len(batches))
        batches += run
        planned += ran
        index_maps.append(index_map)
    planned += [dict(item, index=len(planned) + position) for position, item in enumerate(left)]  # never ran

    merged = dict(last)
    if merged.get("status") is None:  # a call that failed before the rollout ran (an error, a timeout)
        merged["status"] = "failed" if last.get("failed") else _last(results, "status")
    halt = _last(results, "halt")
    if halt is not None:
        owner = max(i for i, result in enumerate(results) if result.get("halt") is not None)
        index = halt.get("batch_index")
        merged["halt"] = dict(halt, batch_index=index_maps[owner].get(index, index))
    summaries = [result.get("summary") or {} for result in results]
    started, ended = summaries[0].get("started_at"), summaries[-1].get("ended_at")
    merged.update(
        changed=any(result.get("changed") for result in results),
        model_changed=any(result.get("model_changed") for result in results),
        image_before=first.get("image_before"),
        image_after=_last(results, "image_after"),
        plan=dict(last.get("plan") or {}, batches=planned,
                  estimated_seconds=(first.get("plan") or {}).get("estimated_seconds")),
        batches=batches,
        rollback=_last(results, "rollback"),
        demoted=_last(results, "demoted"),
        arm_requests=sum(int(result.get("arm_requests") or 0) for result in results),
        summary=dict(summaries[-1],
                     instances_total=summaries[0].get("instances_total"),
                     instances_upgraded=sum(int(item.get("instances_upgraded") or 0) for item in summaries),
                     batches_planned=len(planned),
                     batches_completed=sum(int(item.get("batches_completed") or 0) for item in summaries),
                     started_at=started, ended_at=ended,
                     duration_seconds=_duration(started, ended, sum(float(item.get("duration_seconds") or 0)
                                                                    for item in summaries)),
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
