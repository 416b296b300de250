# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout planner and its health gates: pure functions, no I/O.

An instance is a dict with the keys scale_set_instance_info returns: ``instance_id``, ``zone``,
``update_domain``, ``fault_domain``, ``latest_model_applied``, ``health_state`` (Healthy, Unhealthy,
Unknown, Initializing or None when no health signal), ``protection`` ({protect_from_scale_set_actions}).

The gates follow Azure's rolling-upgrade semantics with the user's thresholds:
- before starting, refuse when more than ``max_unhealthy_instance_percent`` of the set is unhealthy;
- after each batch, wait until its instances are Healthy (Initializing means "not yet", Unknown counts
  as unhealthy), then fail when more than ``max_unhealthy_upgraded_instance_percent`` of the instances
  upgraded so far are unhealthy, or the whole set crosses ``max_unhealthy_instance_percent``.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional

BATCH_BY = ("update_domain", "fault_domain", "zone", "percent", "count")
HEALTHY, UNHEALTHY, UNKNOWN, INITIALIZING = "Healthy", "Unhealthy", "Unknown", "Initializing"


class PlanError(ValueError):
    """Options that cannot make a plan (reported before any write)."""


def is_protected(instance: Dict) -> bool:
    return bool((instance.get("protection") or {}).get("protect_from_scale_set_actions"))


def is_unhealthy(instance: Dict) -> bool:
    """Unknown counts as unhealthy (Azure's rule); Initializing and no signal do not."""
    return instance.get("health_state") in (UNHEALTHY, UNKNOWN)


def _sort_key(instance: Dict):
    text = str(instance["instance_id"])
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def validate_options(batch_by: str, batch_size: Optional[int], canary: int,
                     max_unhealthy_instance_percent: int, max_unhealthy_upgraded_instance_percent: int) -> None:
    if batch_by not in BATCH_BY:
        raise PlanError("batch_by must be one of %s, not %r." % (", ".join(BATCH_BY), batch_by))
    if batch_by == "percent" and not (batch_size and 1 <= batch_size <= 100):
        raise PlanError("batch_by=percent needs batch_size between 1 and 100 (a percentage of the scale set).")
    if batch_by == "count" and not (batch_size and batch_size >= 1):
        raise PlanError("batch_by=count needs batch_size of at least 1 (instances per batch).")
    if canary < 0:
        raise PlanError("canary must be 0 or more instances.")
    for name, value in (("max_unhealthy_instance_percent", max_unhealthy_instance_percent),
                        ("max_unhealthy_upgraded_instance_percent", max_unhealthy_upgraded_instance_percent)):
        if not 0 <= value <= 100:
            raise PlanError("%s must be between 0 and 100, not %s." % (name, value))


def select_targets(instances: Iterable[Dict]):
    """Split the set into (to_upgrade, skipped): already-upgraded instances are done, protected ones skipped.

    Instances already on the latest model are not targets: a re-run after an interruption continues
    where it stopped and never upgrades an instance twice.
    """
    targets, skipped = [], []
    for instance in sorted(instances, key=_sort_key):
        if instance.get("latest_model_applied"):
            continue
        if is_protected(instance):
            skipped.append({"instance_id": instance["instance_id"], "reason": "protect_from_scale_set_actions"})
            continue
        targets.append(instance)
    return targets, skipped


def _domain(instance: Dict, key: str):
    value = instance.get(key)
    return (1, "") if value is None else (0, str(value))


def _chunks(items: List[Dict], size: int) -> List[List[Dict]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def plan_batches(instances: Iterable[Dict], batch_by: str, batch_size: Optional[int] = None, canary: int = 0,
                 prioritize_unhealthy: bool = False, set_size: Optional[int] = None) -> List[List[Dict]]:
    """The batches (lists of instances) in the order they run.

    - update_domain / fault_domain / zone: one batch per domain, in domain order; ``batch_size`` (if set)
      caps a batch, splitting a large domain.
    - percent: ``batch_size`` percent of the whole set (``set_size``), rounded up, at least one instance.
    - count: ``batch_size`` instances per batch.
    - canary: the first batch is that many instances (taken in the same order), the rest follow the plan.
    - prioritize_unhealthy: unhealthy instances go first (within the domain order for domain batching).
    """
    targets = sorted(instances, key=_sort_key)
    if prioritize_unhealthy:
        targets.sort(key=lambda i: not is_unhealthy(i))   # stable: keeps id order within each group
    if not targets:
        return []
    batches: List[List[Dict]] = []
    if canary:
        batches.append(targets[:canary])
        targets = targets[canary:]
    if batch_by in ("update_domain", "fault_domain", "zone"):
        key = "zone" if batch_by == "zone" else batch_by
        domains = sorted({_domain(i, key) for i in targets})
        for domain in domains:
            members = [i for i in targets if _domain(i, key) == domain]
            batches.extend(_chunks(members, batch_size) if batch_size else [members])
    else:
        if batch_by == "percent":
            size = max(1, math.ceil((set_size or len(targets)) * batch_size / 100.0))
        else:
            size = batch_size
        batches.extend(_chunks(targets, size))
    return [b for b in batches if b]


def precheck(instances: List[Dict], max_unhealthy_instance_percent: int) -> Optional[str]:
    """Why the rollout must not start, or None."""
    if not instances:
        return None
    unhealthy = [i["instance_id"] for i in instances if is_unhealthy(i)]
    percent = 100.0 * len(unhealthy) / len(instances)
    if percent > max_unhealthy_instance_percent:
        return ("%d of %d instances (%.0f%%) are already unhealthy, more than max_unhealthy_instance_percent=%d: %s"
                % (len(unhealthy), len(instances), percent, max_unhealthy_instance_percent,
                   ", ".join(map(str, unhealthy))))
    return None


def batch_gate(batch_ids: Iterable, upgraded_ids: Iterable, instances: List[Dict],
               max_unhealthy_upgraded_instance_percent: int, max_unhealthy_instance_percent: int) -> Dict:
    """Evaluate the health gate after a batch.

    Returns {"state": "waiting"|"passed"|"failed", "reason", "healthy", "unhealthy", "pending"}:
    failed when a threshold is crossed; otherwise waiting while any batch instance is not Healthy yet
    (the caller's health timeout turns a long wait into a failure); passed once all are Healthy.
    An instance missing from ``instances`` (deleted) counts as unhealthy.
    """
    by_id = {str(i["instance_id"]): i for i in instances}
    batch = [by_id.get(str(b)) for b in batch_ids]
    pending = [str(b) for b, i in zip(batch_ids, batch) if i is not None and i.get("health_state") in (INITIALIZING, None)]
    unhealthy = [str(b) for b, i in zip(batch_ids, batch) if i is None or is_unhealthy(i)]
    healthy = [str(b) for b, i in zip(batch_ids, batch) if i is not None and i.get("health_state") == HEALTHY]

    upgraded = [by_id.get(str(u)) for u in upgraded_ids]
    upgraded_unhealthy = [u for u in upgraded if u is None or is_unhealthy(u)]
    upgraded_percent = 100.0 * len(upgraded_unhealthy) / len(upgraded) if upgraded else 0.0
    set_unhealthy = [i for i in instances if is_unhealthy(i)]
    set_percent = 100.0 * len(set_unhealthy) / len(instances) if instances else 0.0

    result = {"healthy": healthy, "unhealthy": unhealthy, "pending": pending, "reason": None}
    if upgraded_percent > max_unhealthy_upgraded_instance_percent:
        counts = (len(upgraded_unhealthy), len(upgraded), upgraded_percent, max_unhealthy_upgraded_instance_percent)
        result.update(state="failed", reason=(
            "%d of %d upgraded instances (%.0f%%) are unhealthy, more than "
            "max_unhealthy_upgraded_instance_percent=%d" % counts))
    elif set_percent > max_unhealthy_instance_percent:
        result.update(state="failed", reason=(
            "%d of %d instances of the set (%.0f%%) are unhealthy, more than max_unhealthy_instance_percent=%d"
            % (len(set_unhealthy), len(instances), set_percent, max_unhealthy_instance_percent)))
    elif pending or unhealthy:
        result["state"] = "waiting"
    else:
        result["state"] = "passed"
    return result


def estimate_seconds(batches: List[List[Dict]], upgrade_seconds: float, settle_seconds: float,
                     pause_seconds: float, soak_seconds: float = 0.0, canary: int = 0) -> float:
    """A lower bound for the plan's duration: each batch upgrades and settles, then the pause
    (none after the last batch); a canary adds its soak time."""
    if not batches:
        return 0.0
    total = len(batches) * (upgrade_seconds + settle_seconds) + (len(batches) - 1) * pause_seconds
    return total + (soak_seconds if canary else 0.0)


def describe_plan(batches: List[List[Dict]]) -> List[Dict]:
    """The plan as check mode returns it: per batch the instance ids and the domains and zones it spans."""
    out = []
    for number, batch in enumerate(batches, start=1):
        out.append({
            "batch": number,
            "instance_ids": [str(i["instance_id"]) for i in batch],
            "update_domains": sorted({i.get("update_domain") for i in batch if i.get("update_domain") is not None}),
            "fault_domains": sorted({i.get("fault_domain") for i in batch if i.get("fault_domain") is not None}),
            "zones": sorted({str(i.get("zone")) for i in batch if i.get("zone") is not None}),
        })
    return out
