# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the app_update role (in-guest updates on a stable host image): the rollout's planner and health
gates (module_utils/_rollout.py), applied to the instances as inventory hosts, so that an in-guest update is
batched and gated exactly as an image rollout is. Both are pure.

``app_update_plan`` maps the instances of the scale set (fleetops.vmss.scale_set_instance_info's ``instances``)
to the inventory hosts the fleetops.vmss.instances plugin made of them (matched by VM id) and plans the batches;
its ``serial`` and ``hosts`` drive a play's ``serial`` over a group holding the hosts in that order.
``app_update_gate`` judges a batch from a fresh read of the instances.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as rollout


def _instances(value: Any, what: str) -> List[Mapping]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, Mapping) for item in value):
        raise AnsibleFilterError("%s expects the instances of fleetops.vmss.scale_set_instance_info (a list of dicts)"
                                 % what)
    return list(value)


def app_update_plan(instances: Any, hosts: Any, batch_by: str = "percent", batch_size: Optional[int] = 20,
                    canary: int = 0, max_unhealthy_instance_percent: int = 20,
                    max_unhealthy_upgraded_instance_percent: int = 20) -> Dict[str, Any]:
    """The plan of an in-guest update.

    ``hosts``: the inventory's host variables (dicts with ``inventory_hostname`` and the plugin's ``id``).
    Returns ``{"batches": [rollout plan entries + "hosts" + "protect"], "serial": [batch sizes], "hosts": [host names in
    batch order], "skipped": [{"instance_id", "reason"}], "precheck": why not to start, or None}``. Instances
    that are not running are skipped (nothing inside to update); a running instance with no inventory host is an
    error (the inventory does not cover the scale set, or is stale: refresh it). A batch's ``protect`` lists the
    instances the update protects from scale-in while it runs, and unprotects after: not those already protected.
    """
    instances = _instances(instances, "app_update_plan")
    try:
        rollout.validate_options(batch_by, batch_size, int(canary or 0))
    except rollout.PlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    _gate(max_unhealthy_instance_percent, max_unhealthy_upgraded_instance_percent)
    by_vm = {str(host.get("id") or "").lower(): host.get("inventory_hostname")
             for host in hosts or [] if isinstance(host, Mapping) and host.get("id")}
    running, skipped, missing = [], [], []
    for instance in instances:
        if instance.get("power_state") not in (None, "running"):
            skipped.append({"instance_id": str(instance["instance_id"]),
                            "reason": "power state %s" % instance.get("power_state")})
        elif str(instance.get("id") or "").lower() not in by_vm:
            missing.append(str(instance["instance_id"]))
        else:
            running.append(instance)
    if missing:
        raise AnsibleFilterError("instance(s) %s of the scale set are not hosts of the inventory: refresh it "
                                 "(--flush-cache) or add the scale set to its scale_sets" % ", ".join(missing))
    batches = rollout.plan_batches(running, batch_by, batch_size, int(canary or 0), set_size=len(instances))
    described = rollout.describe_plan(batches, int(canary or 0))
    for entry, batch in zip(described, batches):
        entry["hosts"] = [by_vm[str(i["id"]).lower()] for i in batch]
        # to protect from scale-in for the batch, and unprotect after: not those already protected
        entry["protect"] = [str(i["instance_id"]) for i in batch
                            if not (i.get("protection") or {}).get("protect_from_scale_in")]
    return {"batches": described, "serial": [len(batch) for batch in batches],
            "hosts": [name for entry in described for name in entry["hosts"]], "skipped": skipped,
            "precheck": rollout.precheck(instances, int(max_unhealthy_instance_percent))}


def app_update_gate(instances: Any, batch_ids: Iterable, updated_ids: Iterable,
                    max_unhealthy_upgraded_instance_percent: int = 20, max_unhealthy_instance_percent: int = 20,
                    at_timeout: bool = False) -> Dict[str, Any]:
    """The rollout's health gate after a batch (``_rollout.batch_gate``): ``updated_ids`` are the instances
    updated so far, this batch's included; ``state`` is waiting, passed or failed."""
    return rollout.batch_gate([str(i) for i in batch_ids], [str(i) for i in updated_ids],
                              _instances(instances, "app_update_gate"),
                              _gate(max_unhealthy_instance_percent, max_unhealthy_upgraded_instance_percent),
                              at_timeout=bool(at_timeout))


def _gate(max_unhealthy_instance_percent: Any, max_unhealthy_upgraded_instance_percent: Any) -> rollout.Gate:
    try:
        return rollout.Gate(int(max_unhealthy_instance_percent), int(max_unhealthy_upgraded_instance_percent))
    except rollout.PlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:  # pylint: disable=too-few-public-methods
    """fleetops.vmss.app_update_plan, fleetops.vmss.app_update_gate."""

    def filters(self):
        return {"app_update_plan": app_update_plan, "app_update_gate": app_update_gate}
