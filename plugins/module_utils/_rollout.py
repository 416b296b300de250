# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout planner and its health gates: pure functions, no I/O.

An instance is a dict with the keys scale_set_instance_info returns: ``instance_id``, ``zone``,
``update_domain``, ``fault_domain``, ``latest_model_applied``, ``image`` and ``vm_size`` (as the instance
reports them), ``health_state`` (Healthy, Unhealthy, Unknown, Initializing or None when no health signal),
``protection`` ({protect_from_scale_set_actions}).

Which instances a rollout moved is read from each instance's own image reference and VM size (runs_model),
never from ``latest_model_applied``: Azure tracks model generations, so a model change makes every instance
"not latest" and restoring the previous model does not make the untouched ones latest again.

The gates follow Azure's rolling-upgrade semantics with the user's thresholds:
- before starting, refuse when more than ``max_unhealthy_instance_percent`` of the set is unhealthy;
- after each batch, wait until its instances are Healthy (Initializing means "not yet", Unknown counts
  as unhealthy), then fail when more than ``max_unhealthy_upgraded_instance_percent`` of the instances
  upgraded so far are unhealthy, or the whole set crosses ``max_unhealthy_instance_percent``;
- when the health timeout passes first, judge by the same thresholds (an upgraded instance still
  Initializing counts as unhealthy): within both, the batch passes, as Azure's rolling upgrade does.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ._instance_state import BUSY_STATES, extension_named, folded, runs_extensions, runs_image
from ._validate import bad_number

BATCH_BY = ("update_domain", "fault_domain", "zone", "percent", "count")
HEALTHY, UNHEALTHY, UNKNOWN, INITIALIZING = "Healthy", "Unhealthy", "Unknown", "Initializing"

# Used for the estimate only: a manual upgrade reimages the instance onto the new model and runs its
# extensions (Azure quotes 1-2 minutes for a Linux VM from a gallery image; the emulator's figure too).
UPGRADE_SECONDS = 120.0
# Application Health extension defaults (intervalInSeconds, numberOfProbes).
HEALTH_INTERVAL_SECONDS, HEALTH_PROBES = 5, 1


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


def _refuse_bad_numbers(numbers: Dict[str, Any]) -> None:
    """The first number outside its option's range (_validate.NUMBER_RULES, the one place ranges are set)."""
    for name, value in sorted(numbers.items()):
        why = bad_number(name, value)
        if why:
            raise PlanError("%s %s, not %s." % (name, why, value))


@dataclass(frozen=True)
class Gate:
    """The health thresholds of a rollout, as Azure's rolling upgrade policy names them: the most unhealthy
    instances of the whole set (maxUnhealthyInstancePercent) and of those upgraded so far
    (maxUnhealthyUpgradedInstancePercent), each 0-100 (checked when the Gate is made)."""
    max_unhealthy_percent: int
    max_unhealthy_upgraded_percent: int

    def __post_init__(self):
        _refuse_bad_numbers(self.options())

    @classmethod
    def of(cls, params: Dict[str, Any]) -> "Gate":
        """The Gate of a module's options."""
        return cls(params["max_unhealthy_instance_percent"], params["max_unhealthy_upgraded_instance_percent"])

    def options(self) -> Dict[str, int]:
        return {"max_unhealthy_instance_percent": self.max_unhealthy_percent,
                "max_unhealthy_upgraded_instance_percent": self.max_unhealthy_upgraded_percent}


# No threshold: a watch that only waits for health (the rollback's).
NO_GATE = Gate(100, 100)


def validate_options(batch_by: str, batch_size: Optional[int], canary: int, **timing: Optional[float]) -> None:
    """Refuse batching that cannot make a plan (``batch_by`` is one of BATCH_BY: the argument spec's choices).
    ``timing``: health_timeout, canary_soak, pause_between_batches and max_batches, each checked when given."""
    if batch_by == "percent" and not (batch_size and 1 <= batch_size <= 100):
        raise PlanError("batch_by=percent needs batch_size between 1 and 100 (a percentage of the scale set).")
    if batch_by == "count" and not (batch_size and batch_size >= 1):
        raise PlanError("batch_by=count needs batch_size of at least 1 (instances per batch).")
    if canary < 0:
        raise PlanError("canary must be 0 or more instances.")
    _refuse_bad_numbers(timing)


# ---------------------------------------------------------------------------------------------
# which model an instance runs, from what it reports itself
#
# A model part is in the module's option shape: {"image": {"id": ...} or {publisher, offer, sku, version},
# "sku": {"name", "tier"}, "extensions": [{"name", <the fields that matter>} or {"name", "absent": true}]}
# (the rollout's target, or the rollback point's ``before``). Never protected settings nor custom data: Azure
# never returns them, so no instance reports them either.

EXTENSION_FIELDS = ("publisher", "type", "type_handler_version", "auto_upgrade_minor_version", "force_update_tag",
                    "settings")


def runs_model(instance: Dict, part: Optional[Dict]) -> Optional[bool]:
    """Whether the instance runs the model part: its image (runs_image), VM size (case-insensitive; the tier is
    not reported per instance) and extension definitions (runs_extensions, from the extensions it reports).
    False as soon as one differs; None when the part names none of them, or the instance does not report what
    would decide it."""
    part = part or {}
    checks = []
    if part.get("image"):
        checks.append(runs_image(instance.get("image"), part["image"]))
    size = (part.get("sku") or {}).get("name")
    if size:
        checks.append(folded(instance.get("vm_size")) == folded(size) if instance.get("vm_size") else None)
    if part.get("extensions"):
        checks.append(runs_extensions(instance.get("extensions"), part["extensions"]))
    if False in checks:
        return False
    return True if checks and None not in checks else None


def _extension_differs(before: Optional[Dict], after: Dict) -> bool:
    """Whether the definition ``after`` (its fields that are set) is not ``before``'s."""
    if before is None or before.get("absent") or after.get("absent"):
        return bool(before is None or before.get("absent")) != bool(after.get("absent"))
    return any(after.get(key) is not None and _same_value(key, before.get(key), after[key]) is False
               for key in EXTENSION_FIELDS)


def _same_value(key: str, have: Any, want: Any) -> bool:
    if key == "settings":
        return (have or {}) == (want or {})
    if key in ("publisher", "type", "force_update_tag", "type_handler_version"):
        return folded(have) == folded(want)
    return have == want


def changed_part(before: Optional[Dict], after: Optional[Dict]) -> Dict:
    """What of ``after`` differs from ``before`` and tells instances apart: the image, the VM size name and the
    extension definitions that changed. Empty for any other change (a SKU tier alone, protected settings or
    custom data alone), which runs_model cannot see."""
    before, after = before or {}, after or {}
    out: Dict[str, Any] = {}
    if after.get("image") and runs_image(before.get("image"), after["image"]) is not True:
        out["image"] = after["image"]
    size = (after.get("sku") or {}).get("name")
    if size and folded(size) != folded((before.get("sku") or {}).get("name")):
        out["sku"] = {"name": size}
    extensions = [ext for ext in after.get("extensions") or []
                  if _extension_differs(extension_named(before.get("extensions") or [], ext["name"]), ext)]
    if extensions:
        out["extensions"] = extensions
    return out


def on_model(instance: Dict, part: Optional[Dict]) -> Optional[bool]:
    """runs_model, else (a model change that is neither image nor size, or an instance that does not say)
    Azure's ``latest_model_applied``."""
    runs = runs_model(instance, part)
    return instance.get("latest_model_applied") if runs is None else runs


def select_targets(instances: Iterable[Dict], target: Optional[Dict] = None):
    """Split the set into (to_upgrade, skipped): instances already running ``target`` are done (on_model),
    protected ones skipped.

    A re-run after an interruption continues where it stopped and never upgrades an instance twice.
    """
    targets, skipped = [], []
    for instance in sorted(instances, key=_sort_key):
        if on_model(instance, target):
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


def precheck(instances: List[Dict], max_unhealthy_instance_percent: int, ignore: Iterable = ()) -> Optional[str]:
    """Why the rollout must not start, or None.

    ``ignore``: ids not counted as unhealthy (instances an interrupted run already upgraded: the gate of
    the resumed run judges them), while the percentage stays one of the whole set.
    """
    if not instances:
        return None
    ignored = {str(i) for i in ignore}
    unhealthy = [i["instance_id"] for i in instances if is_unhealthy(i) and str(i["instance_id"]) not in ignored]
    percent = 100.0 * len(unhealthy) / len(instances)
    if percent > max_unhealthy_instance_percent:
        return ("%d of %d instances (%.0f%%) are already unhealthy, more than max_unhealthy_instance_percent=%d: %s"
                % (len(unhealthy), len(instances), percent, max_unhealthy_instance_percent,
                   ", ".join(map(str, unhealthy))))
    return None


def _pending(instance: Optional[Dict]) -> bool:
    return instance is not None and instance.get("health_state") in (INITIALIZING, None)


def batch_gate(batch_ids: Iterable, upgraded_ids: Iterable, instances: List[Dict], gate: Gate,
               at_timeout: bool = False) -> Dict:
    """Evaluate the health gate after a batch.

    Returns {"state": "waiting"|"passed"|"failed", "reason", "code", "healthy", "unhealthy", "pending",
    "upgraded_percent", "set_percent"} (``code`` names the threshold crossed; the percents are the
    unhealthy shares of the upgraded instances and of the set):
    failed when a threshold is crossed; otherwise waiting while any batch instance is not Healthy yet;
    passed once all are Healthy.
    An instance missing from ``instances`` (deleted) counts as unhealthy.

    ``at_timeout``: the health timeout has passed, so no more waiting. Upgraded instances still Initializing
    (or without a signal) count as unhealthy too, and the batch passes when both thresholds still hold, as
    Azure's rolling upgrade goes on with a batch within its limits (``reason`` then says what was tolerated).
    """
    max_unhealthy_upgraded_instance_percent = gate.max_unhealthy_upgraded_percent
    max_unhealthy_instance_percent = gate.max_unhealthy_percent
    by_id = {str(i["instance_id"]): i for i in instances}
    batch = [by_id.get(str(b)) for b in batch_ids]
    pending = [str(b) for b, i in zip(batch_ids, batch) if _pending(i)]
    unhealthy = [str(b) for b, i in zip(batch_ids, batch) if i is None or is_unhealthy(i)]
    healthy = [str(b) for b, i in zip(batch_ids, batch) if i is not None and i.get("health_state") == HEALTHY]

    upgraded = [by_id.get(str(u)) for u in upgraded_ids]
    upgraded_unhealthy = [u for u in upgraded if u is None or is_unhealthy(u) or (at_timeout and _pending(u))]
    upgraded_percent = 100.0 * len(upgraded_unhealthy) / len(upgraded) if upgraded else 0.0
    stalled = {str(i["instance_id"]) for i in upgraded + batch if at_timeout and _pending(i)}
    set_unhealthy = [i for i in instances if is_unhealthy(i) or str(i["instance_id"]) in stalled]
    set_percent = 100.0 * len(set_unhealthy) / len(instances) if instances else 0.0

    result = {"healthy": healthy, "unhealthy": unhealthy, "pending": pending, "reason": None, "code": None,
              "upgraded_percent": round(upgraded_percent, 2), "set_percent": round(set_percent, 2)}
    if upgraded_percent > max_unhealthy_upgraded_instance_percent:
        counts = (len(upgraded_unhealthy), len(upgraded), upgraded_percent, max_unhealthy_upgraded_instance_percent)
        result.update(state="failed", code="MaxUnhealthyUpgradedInstancePercentExceeded", reason=(
            "%d of %d upgraded instances (%.0f%%) are unhealthy, more than "
            "max_unhealthy_upgraded_instance_percent=%d" % counts))
    elif set_percent > max_unhealthy_instance_percent:
        result.update(state="failed", code="MaxUnhealthyInstancePercentExceeded", reason=(
            "%d of %d instances of the set (%.0f%%) are unhealthy, more than max_unhealthy_instance_percent=%d"
            % (len(set_unhealthy), len(instances), set_percent, max_unhealthy_instance_percent)))
    elif (pending or unhealthy) and not at_timeout:
        result["state"] = "waiting"
    else:
        result["state"] = "passed"
        if pending or unhealthy:
            result["reason"] = (
                "%d of %d upgraded instances (%.0f%%) and %d of %d instances of the set (%.0f%%) unhealthy or not "
                "Healthy yet, within max_unhealthy_upgraded_instance_percent=%d and max_unhealthy_instance_percent=%d"
                % (len(upgraded_unhealthy), len(upgraded), upgraded_percent, len(set_unhealthy), len(instances),
                   set_percent, max_unhealthy_upgraded_instance_percent, max_unhealthy_instance_percent))
    return result


def estimate_seconds(batches: List[List[Dict]], upgrade_seconds: float, settle_seconds: float,
                     pause_seconds: float, soak_seconds: float = 0.0, canary: int = 0) -> float:
    """A lower bound for the plan's duration: each batch upgrades and settles, then the pause
    (none after the last batch); a canary adds its soak time."""
    if not batches:
        return 0.0
    total = len(batches) * (upgrade_seconds + settle_seconds) + (len(batches) - 1) * pause_seconds
    return total + (soak_seconds if canary else 0.0)


def describe_plan(batches: List[List[Dict]], canary: int = 0, resume: bool = False) -> List[Dict]:
    """The plan as the rollout module returns it: per batch (``index`` from 0, ``kind``) the instance ids and
    the domains and zones it spans. ``resume``: the first batch is the check of instances an interrupted
    run upgraded (kind "resume", no write); ``canary``: the first batch that writes is the canary."""
    out = []
    for index, batch in enumerate(batches):
        if resume and index == 0:
            kind = "resume"
        else:
            kind = "canary" if canary and index == (1 if resume else 0) else "batch"
        out.append({
            "index": index,
            "kind": kind,
            "instance_ids": [str(i["instance_id"]) for i in batch],
            "update_domains": sorted({i.get("update_domain") for i in batch if i.get("update_domain") is not None}),
            "fault_domains": sorted({i.get("fault_domain") for i in batch if i.get("fault_domain") is not None}),
            "zones": sorted({str(i.get("zone")) for i in batch if i.get("zone") is not None}),
        })
    return out


# ---------------------------------------------------------------------------------------------
# where a rollout stands (a re-run after an interruption starts from the instances as they are)

def is_busy(instance: Dict) -> bool:
    """An operation runs on the instance (an upgrade an interrupted run started, a repair...)."""
    return str(instance.get("provisioning_state") or "").lower() in BUSY_STATES


def upgraded(instances: Iterable[Dict], target: Optional[Dict] = None) -> List[str]:
    """Ids of the instances running ``target`` (on_model) that the rollout is responsible for (protected
    instances are never touched, so never counted)."""
    return [str(i["instance_id"]) for i in sorted(instances, key=_sort_key)
            if on_model(i, target) and not is_protected(i)]


def rollback_targets(instances: Iterable[Dict], restored: Optional[Dict] = None) -> List[str]:
    """After the previous model (``restored``) is back: the instances not running it (those the rollout
    moved), protected ones excluded, instances that say nothing (None) left alone. One manual upgrade moves
    them all back."""
    return [str(i["instance_id"]) for i in sorted(instances, key=_sort_key)
            if on_model(i, restored) is False and not is_protected(i)]


def rollback_watch(instances: Iterable[Dict], restored: Optional[Dict], moved: Iterable) -> List[str]:
    """The instances a resumed rollback must see Healthy: those it moves back (``moved``) and those running the
    restored model that are not Healthy (an interrupted run may have moved them back already; which ones
    cannot be told apart from the model, so none is assumed fine). Protected instances excluded."""
    ids = [str(i) for i in moved]
    ids.extend(str(i["instance_id"]) for i in sorted(instances, key=_sort_key)
               if str(i["instance_id"]) not in ids and on_model(i, restored) and not is_protected(i)
               and i.get("health_state") != HEALTHY)
    return ids


def health_of(batch_ids: Iterable, instances: Iterable[Dict]) -> Dict[str, Optional[str]]:
    """{instance id: health state or None} for the batch (None too for an instance that is gone)."""
    by_id = {str(i["instance_id"]): i for i in instances}
    return {str(b): (by_id.get(str(b)) or {}).get("health_state") for b in batch_ids}


def settle_seconds(health_settings: Optional[Dict[str, Any]]) -> float:
    """How long an instance is expected to report Initializing after a (re)start: the Application Health
    extension settles on a state after numberOfProbes identical probes, one every intervalInSeconds.

    gracePeriod is only the most an instance may stay Initializing (then it turns Unknown or Unhealthy until
    the probes settle), not how long it does: the estimate does not read it."""
    settings = health_settings or {}
    return float((settings.get("intervalInSeconds") or HEALTH_INTERVAL_SECONDS)
                 * (settings.get("numberOfProbes") or HEALTH_PROBES))


def first_batch_number(marker: Optional[Dict[str, Any]], left: int, resuming: bool) -> int:
    """The rollout-wide number of a run's first batch, from the rollback point of the rollout it continues
    (None: a rollout starting now). The batches done are those planned at the model change minus the write
    batches left; a resume check re-watches the last of them, so it keeps that batch's number."""
    planned = (marker or {}).get("planned")
    if not isinstance(planned, int) or isinstance(planned, bool):
        return 1
    done = max(0, planned - left)
    return max(1, done if resuming else done + 1)


def halt_message(scale_set: str, batch_index: Optional[int], batches: int, reason: str,
                 rolled_back: Optional[int] = None, first: int = 1) -> str:
    """``Rollout of scale set rg/name halted after batch 1 of 5: <reason>; rolled back 2 instances``.
    ``first``: the rollout-wide number of this run's batch ``batch_index`` 0 (earlier runs ran the ones before)."""
    where = ("after batch %d of %d" % (first + batch_index, batches) if batch_index is not None and batch_index >= 0
             else "before batch %d of %d" % (first, batches))
    message = "Rollout of scale set %s halted %s: %s" % (scale_set, where, reason.rstrip("."))
    if rolled_back is not None:
        message += "; rolled back %d instance%s" % (rolled_back, "" if rolled_back == 1 else "s")
    return message


# ---------------------------------------------------------------------------------------------
# pacing the health polls within Compute's read budget
#
# A health poll is one paged list (a request per 100 instances), charged to Compute's read policies. Compute
# names its buckets by policy and window and says what is left of each in every answer
# (x-ms-ratelimit-remaining-resource), e.g. ``Microsoft.Compute/HighCostGetVMScaleSet3Min;178,
# Microsoft.Compute/HighCostGetVMScaleSet30Min;898`` on an instance list (180 per 3 minutes, 900 per 30);
# older answers name them ``...Resource;n`` / ``...SubscriptionMaximum;n``. The polls slow down before the
# scarcest bucket runs out, instead of running into 429s and their Retry-After.

RATE_LIMIT_HEADER = "x-ms-ratelimit-remaining-resource"
MAX_POLL_SECONDS = 60.0


def _buckets(header: Optional[str]) -> List[tuple]:
    """[(bucket name, tokens left)] of a rate-limit header; malformed parts are skipped."""
    out = []
    for part in (header or "").split(","):
        name, separator, count = part.strip().rpartition(";")
        if separator and count.strip().isdigit():
            out.append((name.strip(), int(count.strip())))
    return out


def remaining_reads(header: Optional[str]) -> Optional[int]:
    """The fewest tokens left among the read buckets Compute names in the header (any window: 3Min, 30Min...);
    read buckets are those whose policy name has ``Get`` in it (HighCostGetVMScaleSet, GetVMScaleSet, LowCostGet,
    GetOperation). A header that names no read bucket counts every bucket (unknown names: be careful). None
    without a header."""
    buckets = _buckets(header)
    reads = [count for name, count in buckets if "get" in name.rpartition("/")[2].lower()]
    counts = reads or [count for _name, count in buckets]
    return min(counts) if counts else None


def poll_interval(current: float, base: float, remaining: Optional[int], pages: int,
                  cap: float = MAX_POLL_SECONDS, previous: Optional[int] = None) -> float:
    """The pause before the next health poll. Compute's budgets are per subscription per region, and an answer
    reports those of the scale set's region: the tokens ``remaining`` are what every client of the subscription
    left there (the rollouts of a fleet's wave running alongside). ``need`` is what one interval costs the
    subscription: what the bucket lost since this client's ``previous`` reading (the others' reads and this one's,
    net of the refill), at least this client's ``pages``.

    Doubled, up to ``cap``, while fewer than three intervals' worth remains. Back towards ``base`` (wait_sleep)
    by halves, only while the bucket refills and holds ten intervals' worth (times the square root of the
    slow-down once the drop is known): pollers that slowed together would speed up together, and a pace that had to slow far is shared
    by many (tests/unit: ten pollers asking five times the refill get no 429)."""
    if remaining is None:
        return base
    shared = previous is not None    # a second reading: the others' share is known
    drop = previous - remaining if shared else 0
    need = max(pages, 1, drop)
    if remaining < 3 * need:
        return min(max(current, base) * 2, max(cap, base))
    room = 10 * need * (math.sqrt(max(current / base, 1.0)) if shared and base > 0 else 1.0)
    if drop <= 0 and remaining >= room:
        return max(current / 2.0, base)
    return max(current, base)


def next_look(left: Optional[float], base: float) -> float:
    """The pause before the next look at something expected to hold in ``left`` seconds (None: not known):
    half of what is left while that is more than four ``base`` (wait_sleep) away, so that a 1000-instance list,
    ten reads of Compute's scarcest budget (HighCostGetVMScaleSet, 30 a minute sustained), is rarely spent
    where nothing can have changed; then one look exactly at the expected moment; ``base`` after it."""
    if left is None or left <= 0:
        return base
    return left / 2 if left > 4 * base else left


def learn_bracket(known: Optional[Tuple[Optional[float], float]], lo: Optional[float],
                  hi: float) -> Tuple[Optional[float], float]:
    """When a batch's event (its instances seen upgraded, seen healthy) comes, in seconds after its manualupgrade:
    ``(lo, hi)``, the start of the latest look that did not see it (None: none) and of the first that did. Earlier
    batches' bracket ``known`` narrows with this batch's; when they disagree (a batch slower or faster than the
    others, as Azure's may be), this batch's own bracket replaces it."""
    if known is None:
        return lo, hi
    low = max(value for value in (known[0], lo, float("-inf")) if value is not None)
    high = min(known[1], hi)
    if low >= high:
        return lo, hi
    return (None if low == float("-inf") else low), high


def look_targets(bracket: Optional[Tuple[Optional[float], float]]) -> List[float]:
    """The moments (seconds after the manualupgrade) to look at for an event bracketed so by earlier batches:
    mid-way first (if it sees the event, the bracket halves for the next batch), then the earliest moment it was
    seen at. Empty when nothing is known yet."""
    if bracket is None:
        return []
    lo, hi = bracket
    return [(lo + hi) / 2.0, hi] if lo is not None and 0 <= lo < hi else [hi]


# ---------------------------------------------------------------------------------------------
# the rollback point, kept on the scale set itself
#
# A rollout that changes the model writes, in the same conditional PATCH, the tag ``fleetops.rollout``:
# compact JSON of {v, state ("rolling" | "rolling_back"), started_at, before, target, [secrets]}, ``before``
# and ``target`` model parts in the module's option shape ({"image", "sku", "extensions"}, see runs_model), and
# ``secrets`` naming what the rollout sends that Azure never returns (``extensions/<name>/protected_settings``,
# ``custom_data``) - their names, never their values nor a hash of them. Tags are not part of the model
# instances run, so the tag does not make instances "not latest".
#
# Where the previous definition lives: in the tags, because after the PATCH Azure's model is the target, and
# tags are the only place on the scale set a rollout can keep it (surviving the controller, readable by a
# re-run elsewhere). A tag value holds at most 256 characters and a resource at most 50 tags: JSON that fits
# PLAIN_TAGS_MAX values is kept as it is (readable in the portal), continued in ``fleetops.rollout.2``,
# ``.3``...; longer JSON (extension settings, long fileUris) is zlib-compressed and base64-encoded first (``z1:``
# prefix), then continued the same way. A rollback point that would not fit
# in the tags the scale set has left is refused before any write (marker_tag_problem). The secrets Azure never
# returns cannot be kept anywhere readable: the rollback restores them only from values the user supplies for
# the previous version (the rollout module's previous_protected_settings / previous_custom_data).
# The tags are removed when the rollout completes or is rolled back.

MARKER_TAG = "fleetops.rollout"
TAG_VALUE_MAX = 256
TAGS_MAX = 50            # tags per resource (ARM)
PLAIN_TAGS_MAX = 4       # a rollback point up to this many tags stays readable JSON
MARKER_VERSION = 1
_COMPRESSED = "z1:"
_MARKER_PART = re.compile(r"^fleetops\.rollout(\.[0-9]+)?$", re.IGNORECASE)


def is_marker_tag(name: str) -> bool:
    return bool(_MARKER_PART.match(str(name)))


def new_marker(before: Dict[str, Any], target: Dict[str, Any], started_at: str, state: str = "rolling",
               planned: Optional[int] = None, secrets: Iterable[str] = ()) -> Dict:
    """``planned``: the write batches planned when the model changed, from which a later run of the same rollout
    numbers its batches rollout-wide (those done = planned - those left). ``secrets``: the names of the
    write-only parts the rollout changed (see above), never their values."""
    marker = {"v": MARKER_VERSION, "state": state, "started_at": started_at, "before": before, "target": target}
    if planned is not None:
        marker["planned"] = planned
    if secrets:
        marker["secrets"] = sorted(set(secrets))
    return marker


def encode_marker(marker: Dict[str, Any]) -> Dict[str, str]:
    """The marker as tags (``fleetops.rollout``, then ``fleetops.rollout.2``... when longer than a tag value,
    compressed first)."""
    text = json.dumps(marker, separators=(",", ":"), sort_keys=True)
    if len(text) > PLAIN_TAGS_MAX * TAG_VALUE_MAX:
        text = _COMPRESSED + base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    chunks = [text[start:start + TAG_VALUE_MAX] for start in range(0, len(text), TAG_VALUE_MAX)]
    return {(MARKER_TAG if number == 1 else "%s.%d" % (MARKER_TAG, number)): chunk
            for number, chunk in enumerate(chunks, start=1)}


def decode_marker(tags: Optional[Dict[str, str]]) -> Optional[Dict[str, Any]]:
    """The marker a rollout left on the scale set, None when there is none.

    Raises PlanError for a ``fleetops.rollout`` tag that is not one (edited by hand, truncated): the rollback
    point is then unknown, which the user must sort out before a rollout writes anything.
    """
    by_name = {str(name).lower(): value for name, value in (tags or {}).items()}
    if MARKER_TAG not in by_name:
        return None
    parts, number = [by_name[MARKER_TAG]], 2
    while "%s.%d" % (MARKER_TAG, number) in by_name:
        parts.append(by_name["%s.%d" % (MARKER_TAG, number)])
        number += 1
    text = "".join(str(part) for part in parts)
    try:
        if text.startswith(_COMPRESSED):
            text = zlib.decompress(base64.urlsafe_b64decode(text[len(_COMPRESSED):].encode("ascii"))).decode("utf-8")
        marker = json.loads(text)
    except (ValueError, zlib.error):
        marker = None
    if not isinstance(marker, dict) or not isinstance(marker.get("before"), dict) \
            or marker.get("state") not in ("rolling", "rolling_back"):
        raise PlanError("the scale set's tag %s is not a rollback point this module wrote; remove the tag (after "
                        "checking which image the instances should run) and run again." % MARKER_TAG)
    return marker


def without_marker(tags: Optional[Dict[str, str]]) -> Dict[str, str]:
    """The scale set's tags without the marker (what is sent to remove it: a PATCH replaces all tags)."""
    return {name: value for name, value in (tags or {}).items() if not is_marker_tag(name)}


def marker_tag_problem(tags: Optional[Dict[str, str]], marker: Dict[str, Any]) -> Optional[str]:
    """Why the rollback point cannot be written with the scale set's other tags (ARM keeps at most TAGS_MAX tags
    per resource), or None."""
    others = len(without_marker(tags))
    needed = len(encode_marker(marker))
    if others + needed <= TAGS_MAX:
        return None
    return ("the rollback point needs %d tag%s (%s...) and the scale set has %d other tags: Azure keeps at most %d "
            "per resource. Remove %d tag%s, or roll out fewer changes at once." % (
                needed, "" if needed == 1 else "s", MARKER_TAG, others, TAGS_MAX, others + needed - TAGS_MAX,
                "" if others + needed - TAGS_MAX == 1 else "s"))
