# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the fleet rollout (playbooks/fleet_rollout.yml, role fleetops.vmss.fleet): the plan - waves by
region, canary region first - from the scale-set hosts of the inventory (host_type: scale_set) and the gallery
image version; the per-region excludeFromLatest settings at each step; whether the sets rolling out stop after
their batch; and the fleet report. All pure."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils._fleet_report import render_fleet_svg
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import region_key

# Batches a set of N instances takes by domain when the plan cannot know its domains (an estimate only: the
# rollout role's own check mode prints the exact batches): Azure's 5 update domains, up to 3 fault domains.
DOMAIN_BATCHES = {"update_domain": 5, "fault_domain": 3}
# What the report keeps of each batch a set ran (for its tables and picture).
BATCH_KEYS = ("number", "kind", "started_at", "ended_at", "outcome")


def estimated_batches(capacity: int, batch_by: str, batch_size: int, canary: int, zones: int = 0) -> int:
    """How many batches the rollout of a set of ``capacity`` instances plans (canary batch included)."""
    capacity = max(int(capacity or 0), 0)
    canary = min(max(int(canary or 0), 0), capacity)
    rest = capacity - canary
    if rest == 0:
        return 1 if canary else 0
    if batch_by == "percent":
        per_batch = max(1, math.ceil(capacity * max(int(batch_size), 1) / 100.0))
        batches = math.ceil(rest / per_batch)
    elif batch_by == "count":
        batches = math.ceil(rest / max(int(batch_size), 1))
    elif batch_by == "zone":
        batches = min(rest, max(zones, 1))
    else:
        batches = min(rest, DOMAIN_BATCHES.get(batch_by, 1))
    return batches + (1 if canary else 0)


def _finished(host: Mapping[str, Any], version_id: str, version: str) -> bool:
    """The set's model runs the version and every instance runs it (as the inventory read them)."""
    model = str(((host.get("image") or {}).get("id")) or "").lower()
    count = int(host.get("instance_count") or 0)
    return (model == version_id.lower() and count > 0
            and (host.get("instance_image_versions") or {}).get(version) == count)


def fleet_plan(hosts: List[Mapping[str, Any]], version: Mapping[str, Any], canary_region: str,
               region_order: Optional[List[str]] = None, parallel: int = 5, batch_by: str = "percent",
               batch_size: int = 20, canary: int = 0, batch_seconds: int = 600,
               pause_seconds: int = 0) -> Dict[str, Any]:
    """The fleet plan: ``waves`` ([{index, region, sets, pending, replicated, estimated_seconds}]), canary region first, then
    ``region_order``, then the other regions in the order of the version's target regions; ``errors`` (what
    refuses the run: a set in a region the version does not target, a canary region or an ordered region without
    sets, a host that is not a scale set); ``passed_regions`` (the leading waves' regions where every set already
    runs the version: promoted from the start of a re-run); ``regions_without_sets`` (target regions no selected
    set is in, promoted when the last wave passes).

    ``hosts`` are scale-set hosts' variables (plus ``inventory_hostname``); ``version`` is one item of
    gallery_image_version_info's ``gallery_image_versions``. A set is ``done`` when its model and every instance
    already run the version: the fleet skips it (a re-run resumes where the last one stopped). Estimated time:
    per set, its batches times ``batch_seconds`` plus the pauses between them; per wave, the slowest set times
    the rounds of ``parallel`` sets it takes to start every pending one."""
    if not isinstance(version, Mapping) or not version.get("id"):
        raise AnsibleFilterError("fleet_plan: the image version (a gallery_image_versions item) is required")
    version_id, name = str(version["id"]), str(version["id"]).rstrip("/").rsplit("/", 1)[-1]
    targets = [region_key(region.get("name")) for region in
               (version.get("publishing_profile") or {}).get("target_regions") or []]
    # the regions replicated at plan time stay so (the fleet's updates change no target region): no wait before them
    replicated = {region_key(entry.get("region")) for entry in
                  ((version.get("replication_status") or {}).get("summary") or []) if entry.get("state") == "Completed"}
    parallel = max(int(parallel or 1), 1)
    by_region: Dict[str, List[Dict[str, Any]]] = {}
    for host in sorted(hosts, key=lambda item: str(item.get("inventory_hostname"))):
        if not host.get("scale_set_id"):
            continue
        batches = estimated_batches(host.get("capacity") or 0, batch_by, batch_size, canary, len(host.get("zones") or []))
        done = _finished(host, version_id, name)
        seconds = 0 if done else batches * int(batch_seconds) + max(batches - 1, 0) * int(pause_seconds)
        by_region.setdefault(region_key(host.get("location")), []).append({
            "host": host.get("inventory_hostname"), "scale_set": host.get("scale_set"),
            "resource_group": host.get("resource_group"), "subscription_id": host.get("subscription_id"),
            "capacity": host.get("capacity"), "batches": batches, "done": done, "estimated_seconds": seconds})

    not_a_set = "host %s is not a scale-set host (the fleetops.vmss.instances inventory with host_type: scale_set)"
    errors = [not_a_set % host.get("inventory_hostname") for host in hosts if not host.get("scale_set_id")]
    untargeted = "scale set %s is in %s, a region image version %s does not target (its target regions: %s)"
    errors += [untargeted % (item["host"], region, name, ", ".join(targets) or "none")
               for region, items in sorted(by_region.items()) if region not in targets for item in items]
    canary_key = region_key(canary_region)
    wanted = [canary_key] + [region_key(region) for region in region_order or []]
    errors += ["%s %s has no selected scale set" % ("the canary region" if index == 0 else "fleet_region_order's", region)
               for index, region in enumerate(wanted) if region not in by_region]
    order: List[str] = []
    for region in wanted + targets + sorted(by_region):
        if region in by_region and region not in order:
            order.append(region)
    waves = []
    for index, region in enumerate(order, start=1):
        pending = [item for item in by_region[region] if not item["done"]]
        slowest = max([item["estimated_seconds"] for item in pending] or [0])
        waves.append({"index": index, "region": region, "sets": by_region[region], "pending": len(pending),
                      "replicated": region in replicated, "estimated_seconds": slowest * math.ceil(len(pending) / parallel)})
    passed = []  # the leading waves with nothing left to roll out (a re-run): promoted from the start
    for wave in waves:
        if wave["pending"]:
            break
        passed.append(wave["region"])
    return {"image_version_id": version_id, "image_version": name, "canary_region": canary_key,
            "target_regions": targets, "parallel": parallel, "waves": waves, "errors": errors,
            "passed_regions": passed, "regions_without_sets": [region for region in targets if region not in by_region],
            "estimated_seconds": sum(wave["estimated_seconds"] for wave in waves)}


def fleet_regions(plan: Mapping[str, Any], promoted: List[str], demote: bool = False) -> List[Dict[str, Any]]:
    """``target_regions`` for gallery_image_version: every target region excluded from latest but the
    ``promoted`` ones (all excluded with ``demote``). Only the flag: replicas and storage stay as they are."""
    keys = {region_key(region) for region in promoted or []}
    return [{"name": region, "exclude_from_latest": demote or region not in keys} for region in plan["target_regions"]]


def fleet_report(plan: Mapping[str, Any], outcomes: Mapping[str, Any], halted: Optional[Mapping[str, Any]] = None,
                 promoted: Optional[List[str]] = None) -> Dict[str, Any]:
    """The fleet report: ``data`` (JSON-ready), ``markdown`` and ``svg`` (the picture: _fleet_report.py).
    ``outcomes`` maps a host to the rollout role's ``rollout_outcome`` (hosts the run did not roll out have none);
    ``halted``: ``{host, wave, region, msg, at}`` of the set that halted the fleet (host ``None`` when the wait for
    the wave's replication did; ``interrupted`` true when a fault stopped it, not a verdict: the fleet is then
    ``interrupted``, not ``halted``). A set the halt stopped after its batch is ``stopped`` (its rollback point kept);
    the set that halted it without an outcome (refused in its pre-flight) is ``failed`` (``interrupted``)."""
    interrupted = bool((halted or {}).get("interrupted"))
    waves, counts = [], {}
    for wave in plan.get("waves") or []:
        sets = []
        for item in wave["sets"]:
            outcome = outcomes.get(item["host"]) or {}
            if item["done"]:
                status = "already_done"
            elif not outcome and item["host"] == (halted or {}).get("host"):   # refused before it wrote anything
                status = "interrupted" if interrupted else "failed"
                outcome = {"failed": not interrupted, "msg": halted.get("msg")}
            elif outcome:
                status = "failed" if outcome.get("failed") else str(outcome.get("status") or "unknown")
            else:
                status = "not_started"
            counts[status] = counts.get(status, 0) + 1
            summary = outcome.get("summary") or {}
            batches_run = [{key: batch.get(key) for key in BATCH_KEYS}
                           for batch in outcome.get("batches") or [] if isinstance(batch, Mapping)]
            sets.append(dict(item, status=status, msg=outcome.get("msg") or "",
                             rollback=outcome.get("rollback"), duration_seconds=summary.get("duration_seconds"),
                             instances_upgraded=summary.get("instances_upgraded"),
                             started_at=summary.get("started_at"), ended_at=summary.get("ended_at"),
                             batches_run=batches_run))
        waves.append({"index": wave["index"], "region": wave["region"], "sets": sets,
                      "promoted": wave["region"] in (promoted or [])})
    status = ("interrupted" if interrupted else "halted") if halted else ("succeeded" if all(wave["promoted"] for wave in waves) else "incomplete")
    data = {"image_version_id": plan.get("image_version_id"), "status": status, "halted": dict(halted or {}) or None,
            "promoted_regions": list(promoted or []), "set_counts": counts, "waves": waves,
            "estimated_seconds": plan.get("estimated_seconds")}
    return {"data": data, "markdown": _markdown(data, plan), "svg": render_fleet_svg(data)}


def _markdown(data: Mapping[str, Any], plan: Mapping[str, Any]) -> str:
    lines = ["# Fleet rollout of %s: %s" % (plan.get("image_version"), data["status"]), "",
             "Image version: `%s`" % data["image_version_id"], ""]
    if data["halted"]:
        halted = data["halted"]
        where = (halted.get("wave"), halted.get("region"), halted.get("msg"))
        word = "**Interrupted** (a fault, not a verdict: run it again to resume)" if halted.get("interrupted") else "**Halted**"
        lines += [(word + " in wave %s (%s) by " + halted["host"] + ": %s" if halted.get("host")
                   else word + " before wave %s (%s): %s") % where, ""]
        stopped = [item["host"] for wave in data["waves"] for item in wave["sets"] if item["status"] == "stopped"]
        if stopped:
            lines += ["Stopped after their batch, rollback point kept: %s" % ", ".join(stopped), ""]
    lines += ["| wave | region | scale set | instances | batches | status | promoted |", "|---|---|---|---|---|---|---|"]
    for wave in data["waves"]:
        for item in wave["sets"]:
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                wave["index"], wave["region"], item["host"], item["capacity"], item["batches"], item["status"],
                "yes" if wave["promoted"] else "no"))
    lines += ["", "Sets by status: %s" % json.dumps(data["set_counts"], sort_keys=True), ""]
    return "\n".join(lines)


def fleet_stop(hostvars: Mapping[str, Any], hosts: List[str], running: List[str]) -> bool:
    """Whether the sets rolling out alongside each other stop after this batch: one of ``hosts`` (the wave's sets)
    noted a ``rollout_failure`` or a ``rollout_interrupted`` (a fault: the fleet stops without a verdict), or one
    of ``running`` (the sets of this round still running) has none at all (it failed before the rollout role
    started). Each host's variables are looked up once (a lookup builds all of
    them), and the first failure found ends the search."""
    running = set(running)
    for host in hosts:
        seen = hostvars[host]
        if "rollout_failure" not in seen:
            if host in running:
                return True
        elif seen["rollout_failure"] or seen.get("rollout_interrupted"):
            return True
    return False


class FilterModule:
    def filters(self):
        return {"fleet_plan": fleet_plan, "fleet_regions": fleet_regions, "fleet_report": fleet_report,
                "fleet_stop": fleet_stop}
