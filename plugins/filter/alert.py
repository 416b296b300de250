# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale sets an Azure Monitor alert is about, from its common alert schema payload: the job that the
rulebook extensions/eda/rulebooks/rollback_on_alert.yml launches (playbooks/alert_rollback.yml) rolls them back.

ansible-rulebook renders its actions with plain Jinja, without collection filters, so the rule passes the alert
as it came and the job parses it here, with the collection's one resource-id helper (_ids.py). Pure.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils import _ids

# The alert rule's custom property naming the scale set, for an alert whose target is another resource
# (an Application Insights component, a load balancer). Azure Monitor passes custom properties on metric alerts.
SCALE_SET_PROPERTY = "fleetops_scale_set_id"


def _payload(alert: Any) -> Mapping:
    """The common alert schema payload: the alert itself, or the event the Service Bus / Event Hubs event source
    made of it ({body: alert, meta: ...})."""
    if isinstance(alert, Mapping) and "data" not in alert and isinstance(alert.get("body"), Mapping):
        alert = alert["body"]
    data = alert.get("data") if isinstance(alert, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(data.get("essentials"), Mapping):
        raise AnsibleFilterError("alert_scale_sets expects an Azure Monitor alert in the common alert schema "
                                 "(schemaId azureMonitorCommonAlertSchema, with data.essentials); got %s"
                                 % type(alert).__name__)
    return alert


def scale_set_of(resource_id: Any) -> Dict[str, str]:
    """The scale set of an ARM id - the scale set itself or a resource inside it (a Uniform instance
    .../virtualMachineScaleSets/S/virtualMachines/3) - as {id, subscription_id, resource_group, name}; {} for any
    other id."""
    parsed = _ids.parse_id(resource_id) if isinstance(resource_id, str) else {}
    types = [kind.lower() for kind in parsed.get("types") or []]
    if (parsed.get("namespace") or "").lower() != _ids.COMPUTE.lower() or not types \
            or types[0] != _ids.SCALE_SETS.lower() or not parsed.get("names") or not parsed.get("resource_group"):
        return {}
    subscription, group, name = parsed["subscription"], parsed["resource_group"], parsed["names"][0]
    return {"id": _ids.scale_set_id(subscription, group, name), "subscription_id": subscription,
            "resource_group": group, "name": name}


def alert_scale_sets(alert: Any) -> List[Dict[str, str]]:
    """The scale sets the alert names, once each: the rule's custom property ``fleetops_scale_set_id`` when
    set, else its targets (``data.essentials.alertTargetIDs``) that are scale sets or inside one."""
    data = _payload(alert)["data"]
    properties = data.get("customProperties")
    named = properties.get(SCALE_SET_PROPERTY) if isinstance(properties, Mapping) else None
    ids = [named] if named else list(data["essentials"].get("alertTargetIDs") or [])
    found: List[Dict[str, str]] = []
    for resource_id in ids:
        scale_set = scale_set_of(resource_id)
        if scale_set and not any(_ids.same_id(scale_set["id"], seen["id"]) for seen in found):
            found.append(scale_set)
    return found


class FilterModule:  # pylint: disable=too-few-public-methods
    """fleetops.vmss.alert_scale_sets."""

    def filters(self):
        return {"alert_scale_sets": alert_scale_sets}
