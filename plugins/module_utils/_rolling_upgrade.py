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
    "approve": ("begin_approve_rolling_upgrade", "approve the deferred OS upgrade of"),
}


def read_latest(compute, resource_group: str, name: str) -> Optional[Dict[str, Any]]:
    """The latest rolling upgrade (snake_case, as scale_set_info returns it), None when there has been none."""
    operations = compute.virtual_machine_scale_set_rolling_upgrades
    found = ignore_not_found(lambda: operations.get_latest(resource_group, name))
    return resource_result(found) if found is not None else None


def read_os_history(compute, resource_group: str, name: str) -> List[Dict[str, Any]]:
    """The scale set's OS upgrades (``osUpgradeHistory``, newest first: Azure keeps the last five), snake_case."""
    operations = compute.virtual_machine_scale_sets
    found = ignore_not_found(lambda: list(operations.get_os_upgrade_history(resource_group, name)), default=[])
    return [resource_result(entry) for entry in found]


def floating_gallery_image(scale_set: Optional[Dict[str, Any]]) -> Optional[Dict[str, str]]:
    """{resource_group, gallery, image} when the scale set's model follows ``latest`` of a Compute Gallery image
    definition (its ID without a version, or with ``/versions/latest``); None otherwise."""
    profile = ((scale_set or {}).get("properties") or {}).get("virtualMachineProfile") or {}
    reference = (profile.get("storageProfile") or {}).get("imageReference") or {}
    parts = str(reference.get("id") or "").strip("/").split("/")
    shape = [part.lower() for part in parts[0:12:2]]
    if shape[:5] != ["subscriptions", "resourcegroups", "providers", "galleries", "images"] or \
            parts[5].lower() != "microsoft.compute" or len(parts) not in (10, 12):
        return None
    if len(parts) == 12 and (parts[10].lower(), parts[11].lower()) != ("versions", "latest"):
        return None
    return {"resource_group": parts[3], "gallery": parts[7], "image": parts[9]}


def target_version(reference: Optional[Dict[str, Any]]) -> Optional[str]:
    """The version an OS upgrade's ``target_image_reference`` names (exact version, a version that is not
    ``latest``, or the version in a gallery image version ID); None when it names none."""
    reference = reference or {}
    if reference.get("exact_version"):
        return str(reference["exact_version"])
    if reference.get("version") and str(reference["version"]).lower() != "latest":
        return str(reference["version"])
    parts = str(reference.get("id") or "").rstrip("/").split("/")
    if len(parts) > 2 and parts[-2].lower() == "versions" and parts[-1].lower() != "latest":
        return parts[-1]
    return None


def covering_upgrade(history: List[Dict[str, Any]], target: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The newest finished OS upgrade (``osUpgradeHistory`` entry) that already went for ``target`` - the
    version ``latest`` resolves to now (``{"name", "published_date"}``) - or None.

    An entry goes for the target when its target image names that version; when it names no version, when
    it started after the target version was published. Only the newest entry is looked at: an upgrade to
    something else since then means the target no longer describes what Azure did last.
    """
    if not target or not history:
        return None
    newest = history[0]
    if code_of(newest) not in (COMPLETED, FAULTED, CANCELLED):
        return None
    named = target_version(newest.get("target_image_reference"))
    if named is not None:
        return newest if named == target.get("name") else None
    started, published = (newest.get("running_status") or {}).get("start_time"), target.get("published_date")
    return newest if started and published and str(started) >= str(published) else None


def start_decision(action: str, before: Optional[Dict[str, Any]], covering: Optional[Dict[str, Any]]) -> str:
    """What a start does: ``join`` the upgrade rolling forward (Azure refuses a second one), report the
    upgrade that already went for the target (``already_completed``, ``already_faulted``,
    ``already_cancelled``: starting another would put a version Azure already rolled back onto the
    instances again, or count instances Azure already moved), else ``start``."""
    if is_running(before):
        return "join"
    if action == "start_os_upgrade" and covering is not None:
        return "already_" + code_of(covering).lower()
    return "start"


def moved_count(first: Optional[Dict[str, Any]], last: Optional[Dict[str, Any]]) -> int:
    """Instances Azure moved between two looks at one upgrade: the growth of its successful count (Azure
    counts instances that needed no move as successful from the start, so the count alone over-reports)."""
    if first is None or last is None or not same_upgrade(first, last):
        return 0
    done = [((status.get("progress") or {}).get("successful_instance_count") or 0) for status in (first, last)]
    return max(0, done[1] - done[0])


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


# --- deferred automatic OS upgrades (automaticOSUpgradePolicy.osRollingUpgradeDeferral) ------------------------

def running_os_target(history: List[Dict[str, Any]], status: Optional[Dict[str, Any]]) -> Optional[str]:
    """The image version the OS upgrade rolling forward goes for (its ``osUpgradeHistory`` entry), or None."""
    if not is_running(status) or not history or not same_upgrade(history[0], status):
        return None
    return target_version(history[0].get("target_image_reference"))


def _version_of(instance: Dict[str, Any]) -> Optional[str]:
    image = instance.get("image") or {}
    return image.get("exact_version") or target_version(image)


def _by_id(instance_id: Any) -> Tuple[int, str]:
    text = str(instance_id)
    return (int(text), text) if text.isdigit() else (1 << 62, text)


def not_on(instances: List[Dict[str, Any]], version: Optional[str]) -> List[str]:
    """Instance ids not running ``version`` (instance id order), protected ones left out (Azure skips them)."""
    return sorted((str(i["instance_id"]) for i in instances if _version_of(i) != version
                   and not (i.get("protection") or {}).get("protect_from_scale_set_actions")), key=_by_id)


def choose_approval(pending: List[str], instance_ids: Optional[List[str]], max_instances: Optional[int]) -> List[str]:
    """What an approval sends: the named instances still pending (all pending ones without names), at most
    ``max_instances`` of them, in instance id order."""
    wanted = pending if instance_ids is None else [i for i in pending if i in {str(n) for n in instance_ids}]
    return wanted[:max_instances] if max_instances else wanted


def unknown_ids(instances: List[Dict[str, Any]], instance_ids: Optional[List[str]]) -> List[str]:
    """The named instance ids the scale set does not have (refused before any write)."""
    have = {str(i["instance_id"]) for i in instances}
    return [str(n) for n in instance_ids or [] if str(n) not in have]


def approval_failure(status: Optional[Dict[str, Any]], instances: List[Dict[str, Any]], approved: List[str],
                     version: str) -> Optional[Tuple[str, str]]:
    """(code, message) when the approved instances did not come through the upgrade healthy: the upgrade
    Faulted (Azure's error), an approved instance not on ``version`` (its upgrade failed, or Azure rolled it
    back) or not Healthy (Unhealthy / Unknown: the health gate; no health signal counts as healthy)."""
    problem = failure("approve", status) if code_of(status) == FAULTED else None
    if problem:
        return problem
    mine = [i for i in instances if str(i["instance_id"]) in set(approved)]
    behind = [str(i["instance_id"]) for i in mine if _version_of(i) != version]
    sick = ["%s (%s)" % (i["instance_id"], i.get("health_state")) for i in mine
            if i.get("health_state") in ("Unhealthy", "Unknown")]
    if behind or sick:
        return ("UnhealthyAfterApproval", "approved instances not healthy on version %s: %s" % (
            version, "; ".join(filter(None, ["not on it: " + ", ".join(behind) if behind else "",
                                             "health: " + ", ".join(sick) if sick else ""]))))
    return None
