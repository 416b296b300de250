# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure's own rolling upgrades of a scale set (``rollingUpgrades/latest``): reading the latest one,
and the pure decisions around it - whether an action writes, when a wait is over, what a failure says,
and the progress samples seen while waiting.

A status is the snake_case result of GetLatest: ``{"policy", "running_status": {"code", "start_time",
"last_action", "last_action_time"}, "progress": {"successful_instance_count", ...}, "error"}``, or None
when the scale set has never had a rolling upgrade (Azure answers 404).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ._common import resource_result
from ._errors import ignore_not_found

ROLLING_FORWARD, COMPLETED, CANCELLED, FAULTED = "RollingForward", "Completed", "Cancelled", "Faulted"
PROGRESS_KEYS = ("successful_instance_count", "failed_instance_count", "in_progress_instance_count",
                 "pending_instance_count")
STATUS_KEYS = ("policy", "running_status", "progress", "error")

# action -> (SDK method of virtual_machine_scale_set_rolling_upgrades, what its failure message says it did)
ACTIONS = {
    "start_os_upgrade": ("begin_start_os_upgrade", "roll out the OS upgrade of"),
    "start_extension_upgrade": ("begin_start_extension_upgrade", "roll out the extension upgrade of"),
    "cancel": ("begin_cancel", "cancel the rolling upgrade of"),
    "status": (None, "complete the rolling upgrade of"),
}


def read_latest(compute, resource_group: str, name: str) -> Optional[Dict[str, Any]]:
    """The latest rolling upgrade (snake_case, as scale_set_info returns it), None when there has been none."""
    operations = compute.virtual_machine_scale_set_rolling_upgrades
    found = ignore_not_found(lambda: operations.get_latest(resource_group, name))
    return resource_result(found) if found is not None else None


def code_of(status: Optional[Dict[str, Any]]) -> Optional[str]:
    return ((status or {}).get("running_status") or {}).get("code")


def is_running(status: Optional[Dict[str, Any]]) -> bool:
    return code_of(status) == ROLLING_FORWARD


def sends_request(action: str, before: Optional[Dict[str, Any]]) -> bool:
    """Whether ``action`` writes: a start when none rolls forward (Azure refuses a second one), a cancel
    when one does (nothing to cancel otherwise); ``status`` never."""
    if action.startswith("start_"):
        return not is_running(before)
    if action == "cancel":
        return is_running(before)
    return False


def same_upgrade(left: Optional[Dict[str, Any]], right: Optional[Dict[str, Any]]) -> bool:
    """Two statuses of one upgrade: the same start time (a cancel changes last_action_time only)."""
    if left is None or right is None:
        return left is right
    return (left.get("running_status") or {}).get("start_time") == (right.get("running_status") or {}).get("start_time")


def settled(status: Optional[Dict[str, Any]], before: Optional[Dict[str, Any]], started: bool) -> bool:
    """Whether a wait is over: the upgrade no longer rolls forward, and after a start it is the new one
    (GetLatest may still show the previous, finished upgrade for a moment)."""
    if status is None or is_running(status):
        return False
    return not (started and same_upgrade(status, before))


def failure(action: str, status: Optional[Dict[str, Any]]) -> Optional[Tuple[str, str]]:
    """(code, message) when the upgrade a start or status waited for did not complete; None otherwise.

    Faulted carries Azure's error (MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade, ...);
    a cancel by someone else fails the wait too, since the new model did not reach every instance.
    A cancel's own wait never fails on the upgrade's outcome.
    """
    if action == "cancel" or status is None:
        return None
    code = code_of(status)
    if code == FAULTED:
        error = status.get("error") or {}
        return (error.get("code") or FAULTED,
                " ".join(str(error.get("message") or "the rolling upgrade ended Faulted without an error").split()))
    if code == CANCELLED:
        last = status.get("running_status") or {}
        return (CANCELLED, "the rolling upgrade was cancelled (last action %s at %s)"
                % (last.get("last_action"), last.get("last_action_time")))
    return None


def sample(status: Optional[Dict[str, Any]], at: str) -> Dict[str, Any]:
    """One progress_history entry: when, the running status code and the four instance counts."""
    progress = (status or {}).get("progress") or {}
    entry: Dict[str, Any] = {"time": at, "code": code_of(status)}
    entry.update((key, progress.get(key)) for key in PROGRESS_KEYS)
    return entry


def record(history: List[Dict[str, Any]], entry: Dict[str, Any]) -> None:
    """Append ``entry`` unless only its time differs from the last one (a long wait stays short)."""
    if history and {k: v for k, v in history[-1].items() if k != "time"} == \
            {k: v for k, v in entry.items() if k != "time"}:
        return
    history.append(entry)


def status_fields(status: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The module's result keys for a status (each None when there has been no rolling upgrade)."""
    return {key: (status or {}).get(key) for key in STATUS_KEYS}
