# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback point a rollout left in a scale set's tags, decoded by the module's own code.

The rollout role's pre-flight reads it to tell a run that must finish an interrupted rollback (state
``rolling_back``) from a new rollout, before it checks the image version: the tag's format stays in one place
(module_utils/_rollout.py ``decode_marker``), not re-implemented in Jinja.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils._rollout import PlanError, decode_marker


def rollback_point(tags: Any) -> Optional[Dict[str, Any]]:
    """The decoded ``fleetops.rollout`` tag(s) of ``tags`` (a scale set's tags), None when there is none."""
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise AnsibleFilterError("rollback_point expects a scale set's tags (a dict)")
    try:
        return decode_marker(dict(tags))
    except PlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:  # pylint: disable=too-few-public-methods
    """fleetops.vmss.rollback_point."""

    def filters(self):
        return {"rollback_point": rollback_point}
