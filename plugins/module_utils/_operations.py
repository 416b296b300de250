# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps every bake state module repeats: read (absent is None), write through a long-running
operation within the run's deadline, describe in check mode, and shape ``diff``."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ._compare import DifferenceTracker
from ._errors import arm_errors, ignore_not_found
from ._waiter import Deadline, poller_result


def as_dict(model: Any) -> Optional[Dict[str, Any]]:
    if model is None:
        return None
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


def read(action_resource: str, call: Callable[[], Any]) -> Optional[Dict[str, Any]]:
    """``call()`` as a REST dict; None when ARM answers 404 (the resource, or its parent, does not exist)."""
    with arm_errors("get", action_resource):
        return as_dict(ignore_not_found(call))


def long_running(action: str, resource: str, start: Callable[[], Any], deadline: Deadline,
                 wait: bool) -> Optional[Dict[str, Any]]:
    """Start an LRO and, with ``wait``, return its result (a REST dict, None for deletes) within the deadline.

    A failed operation or the deadline passing raises AzureFailure (``Failed to <action> <resource>: ...``).
    """
    with arm_errors(action, resource):
        poller = start()
        if wait:
            return as_dict(poller_result(poller, deadline, "%s of %s" % (action, resource)))
    return None


def preview(body: Dict[str, Any], resource_id: str, name: str, resource_type: str) -> Dict[str, Any]:
    """What a resource would look like once created (check mode): the request body with its identity."""
    return dict(body, id=resource_id, name=name, type=resource_type)


def diff(module, tracker: DifferenceTracker, current: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``{"diff": ...}`` when Ansible runs with --diff: only what differs, before and after (created: before {})."""
    if not module.diff_mode:
        return {}
    if current is None:
        return {"diff": {"before": {}, "after": tracker.after()}}
    return {"diff": tracker.diff()}


def deleted_diff(module, existed: bool) -> Dict[str, Any]:
    if not module.diff_mode or not existed:
        return {}
    return {"diff": {"before": {"state": "present"}, "after": {"state": "absent"}}}
