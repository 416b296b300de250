# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure RBAC role assignments: which one already grants a role, and the name of a new one. Pure functions.

An assignment is identified by (scope, role definition, principal): Azure refuses a second one with
409 RoleAssignmentExists whatever its name. A new assignment is named by a UUID derived from those three
(as Bicep's ``guid(scope, principal, role)`` does), so a retried create is the same request.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Dict, Iterable, Optional

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Namespace for assignment names (uuid5 of "fleetops.vmss role assignment").
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://galaxy.ansible.com/fleetops/vmss/role_assignment")


def is_guid(value: Optional[str]) -> bool:
    return bool(_GUID.match(value or ""))


def role_guid(role_definition_id: Optional[str]) -> Optional[str]:
    """The GUID at the end of a role definition id (or the GUID itself), lower-cased; None otherwise."""
    tail = (role_definition_id or "").rstrip("/").rsplit("/", 1)[-1]
    return tail.lower() if is_guid(tail) else None


def normal_scope(scope: str) -> str:
    return "/" + (scope or "").strip("/").lower()


def assignment_name(scope: str, role_definition_id: str, principal_id: str) -> str:
    key = "%s|%s|%s" % (normal_scope(scope), role_guid(role_definition_id), (principal_id or "").lower())
    return str(uuid.uuid5(_NAMESPACE, key))


def _field(assignment: Dict[str, Any], snake_name: str, camel_name: str) -> Any:
    props = assignment.get("properties") or {}
    return assignment.get(snake_name, props.get(camel_name))


def matches(assignment: Dict[str, Any], scope: str, role_definition_id: str, principal_id: str) -> bool:
    """Whether an assignment (an SDK as_dict(), flattened or not) grants this role to this principal at this scope."""
    return (normal_scope(_field(assignment, "scope", "scope") or "") == normal_scope(scope)
            and role_guid(_field(assignment, "role_definition_id", "roleDefinitionId")) == role_guid(role_definition_id)
            and str(_field(assignment, "principal_id", "principalId") or "").lower() == principal_id.lower())


def find_assignment(assignments: Iterable[Dict[str, Any]], scope: str, role_definition_id: str,
                    principal_id: str) -> Optional[Dict[str, Any]]:
    return next((a for a in assignments if matches(a, scope, role_definition_id, principal_id)), None)


def role_definition_id(subscription_id: str, guid: str) -> str:
    return "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s" % (subscription_id, guid.lower())
