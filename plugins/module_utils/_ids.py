# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ARM resource ids: parsed and built by azure-mgmt-core (``parse_resource_id`` / ``resource_id``), compared
case-insensitively as ARM does. Pure.

azure.mgmt.core.tools is imported on first use: importing it loads the ARM pipeline (about 0.1 s), which a module
that never parses an id should not pay.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

COMPUTE = "Microsoft.Compute"
SCALE_SETS = "virtualMachineScaleSets"


def parse_id(resource_id: Optional[str]) -> Dict[str, Any]:
    """An ARM id split: {subscription, resource_group, namespace, types: [...], names: [...]}; {} if not an id.

    A trailing type without a name (``.../images/web/versions``) is kept in ``types``, so ``types`` and ``names``
    differ in length and resource_type says it is no resource."""
    from azure.mgmt.core.tools import parse_resource_id  # pylint: disable=import-outside-toplevel

    text = "/" + str(resource_id or "").strip().strip("/")
    parsed = parse_resource_id(text)
    if "subscription" not in parsed:
        return {}
    types: List[str] = [parsed["type"]] if "type" in parsed else []
    names: List[str] = [parsed["name"]] if "type" in parsed else []
    for level in range(1, (parsed.get("last_child_num") or 0) + 1):
        types.append(parsed["child_type_%d" % level])
        names.append(parsed["child_name_%d" % level])
    segments = text.split("/")[1:]
    lowered = [segment.lower() for segment in segments]
    if types and "providers" in lowered and len(segments[lowered.index("providers") + 2:]) % 2:
        types.append(segments[-1])
    return {"subscription": parsed["subscription"], "resource_group": parsed.get("resource_group"),
            "namespace": parsed.get("namespace"), "types": types, "names": names}


def resource_type(resource_id: Optional[str]) -> Optional[str]:
    """``microsoft.compute/galleries/images/versions`` for a version id, lower-cased; None if not a resource id."""
    parsed = parse_id(resource_id)
    if not parsed.get("namespace") or not parsed["types"] or len(parsed["names"]) != len(parsed["types"]):
        return None
    return "/".join([parsed["namespace"]] + parsed["types"]).lower()


def resource_group_of(resource_id: Optional[str]) -> Optional[str]:
    """The resource group named in an ARM id, or None."""
    return parse_id(resource_id).get("resource_group")


def same_id(one: Optional[str], other: Optional[str]) -> bool:
    """ARM ids are case-insensitive; a trailing slash is no part of them."""
    return (one or "").rstrip("/").lower() == (other or "").rstrip("/").lower()


def scale_set_id(subscription_id: str, resource_group: str, name: str) -> str:
    from azure.mgmt.core.tools import resource_id  # pylint: disable=import-outside-toplevel

    return resource_id(subscription=subscription_id, resource_group=resource_group, namespace=COMPUTE,
                       type=SCALE_SETS, name=name)
