# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instances of a scale set, read the way each orchestration mode allows, in one shape.

* Uniform: one paged list of the scale set's VMs (``virtualMachineScaleSets/{name}/virtualMachines``),
  with ``$expand=instanceView`` when health, power or domains are wanted.
* Flexible: the scale set's VMs are ordinary ``Microsoft.Compute/virtualMachines``; one paged list of
  the resource group's VMs with ``$filter='virtualMachineScaleSet/id' eq '<id>'`` (and
  ``$expand=instanceView``), kept to the scale set's members client-side as well.

Azure reports ``latestModelApplied`` for Uniform instances only. For a Flexible VM the instance is
taken to be on the latest model when its image reference, VM size and extension definitions (its
``resources``: publisher, type, handler version, public settings) are the scale set's; a VM that reports no
``resources`` at all is judged on image and size only. Other model changes are not seen there.

The summaries are pure functions of the REST dicts, so they are unit-tested without Azure.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Iterable, Iterator, List, Optional

from ._common import snake
from ._instance_state import BUSY_STATES, extension_named, reported_extensions, same_extension, same_image

POWER_PREFIX = "PowerState/"
HEALTH_PREFIX = "HealthState/"
FAILED_PREFIX = "ProvisioningState/failed"


def is_flexible(scale_set: Dict[str, Any]) -> bool:
    return str((scale_set.get("properties") or {}).get("orchestrationMode") or "").lower() == "flexible"


def flexible_filter(scale_set_id: str) -> str:
    """The VirtualMachines_List filter Azure documents for the VMs of one Flexible scale set."""
    return "'virtualMachineScaleSet/id' eq '%s'" % scale_set_id


def iter_instances(compute, resource_group: str, name: str, scale_set: Dict[str, Any],
                   instance_view: bool = True, **request_options: Any) -> Iterator[Dict[str, Any]]:
    """Every instance of the scale set as a REST dict (VirtualMachineScaleSetVM or VirtualMachine), page by
    page: only the current page is held, so a 1000-instance scale set does not sit in memory twice.

    ``request_options`` go to every page's request (azure-core options, such as ``raw_response_hook``)."""
    expand = "instanceView" if instance_view else None
    if is_flexible(scale_set):
        scale_set_id = str(scale_set.get("id") or "").lower()
        pages = compute.virtual_machines.list(resource_group, filter=flexible_filter(scale_set.get("id")),
                                              expand=expand, **request_options)
        for item in pages:
            vm = item.as_dict()
            member = ((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id")
            if str(member or "").lower() == scale_set_id:
                yield vm
        return
    for item in compute.virtual_machine_scale_set_vms.list(resource_group, name, expand=expand, **request_options):
        yield item.as_dict()


def list_instances(compute, resource_group: str, name: str, scale_set: Dict[str, Any],
                   instance_view: bool = True) -> List[Dict[str, Any]]:
    """Every instance of the scale set as REST dicts (see iter_instances)."""
    return list(iter_instances(compute, resource_group, name, scale_set, instance_view))


# ---------------------------------------------------------------------------------------------
# one instance, summarised

def instance_id_of(vm: Dict[str, Any]) -> str:
    """Uniform: the instance id ("3"); Flexible: the VM name (what Azure's instanceIds take there)."""
    return str(vm.get("instanceId") if vm.get("instanceId") is not None else vm.get("name"))


def _statuses(vm: Dict[str, Any]) -> List[Dict[str, Any]]:
    return ((vm.get("properties") or {}).get("instanceView") or {}).get("statuses") or []


def power_state(vm: Dict[str, Any]) -> Optional[str]:
    """``running``, ``deallocated``, ``stopped``, ``starting``, ...; None without an instance view."""
    for status in _statuses(vm):
        code = status.get("code") or ""
        if code.startswith(POWER_PREFIX):
            return code[len(POWER_PREFIX):]
    return None


def health_state(vm: Dict[str, Any]) -> Optional[str]:
    """The Application Health state (``Healthy``, ``Unhealthy``, ``Unknown``, ``Initializing``), or None."""
    code = ((((vm.get("properties") or {}).get("instanceView") or {}).get("vmHealth") or {}).get("status")
            or {}).get("code") or ""
    if not code.startswith(HEALTH_PREFIX):
        return None
    state = code[len(HEALTH_PREFIX):]
    return state[:1].upper() + state[1:]


def provisioning_error(vm: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``{code, message}`` of a failed provisioning (``ProvisioningState/failed/<code>``), else None."""
    for status in _statuses(vm):
        code = status.get("code") or ""
        if code.lower().startswith(FAILED_PREFIX.lower()):
            parts = code.split("/", 2)
            return {"code": parts[2] if len(parts) > 2 else "ProvisioningFailed", "message": status.get("message")}
    return None


def extensions_applied(vm: Dict[str, Any], scale_set: Dict[str, Any]) -> Optional[bool]:
    """Whether a Flexible VM carries every extension of the scale set's model as defined there; None when the
    VM reports no ``resources`` at all (then nothing is known). Extensions on the VM only are not judged."""
    have = vm.get("resources")
    if have is None:
        return None
    model = ((scale_set.get("properties") or {}).get("virtualMachineProfile") or {})
    wanted = (model.get("extensionProfile") or {}).get("extensions") or []
    for ext in wanted:
        found = extension_named(have, str(ext.get("name") or ""))
        if found is None or not same_extension(ext, found):
            return False
    return True


def latest_model_applied(vm: Dict[str, Any], scale_set: Dict[str, Any]) -> Optional[bool]:
    """Uniform: Azure's ``latestModelApplied``. Flexible: the VM's image reference, size and extension
    definitions are the model's (see extensions_applied)."""
    props = vm.get("properties") or {}
    if "latestModelApplied" in props:
        return bool(props["latestModelApplied"])
    if not is_flexible(scale_set):
        return None
    model = ((scale_set.get("properties") or {}).get("virtualMachineProfile") or {})
    want_image = (model.get("storageProfile") or {}).get("imageReference") or {}
    have_image = (props.get("storageProfile") or {}).get("imageReference") or {}
    want_size = str((scale_set.get("sku") or {}).get("name") or "").lower()
    have_size = str((props.get("hardwareProfile") or {}).get("vmSize") or "").lower()
    return (same_image(have_image, want_image) and (not want_size or not have_size or want_size == have_size)
            and extensions_applied(vm, scale_set) is not False)


def protection(vm: Dict[str, Any]) -> Optional[Dict[str, bool]]:
    policy = (vm.get("properties") or {}).get("protectionPolicy")
    if not policy:
        return None
    return {"protect_from_scale_in": bool(policy.get("protectFromScaleIn")),
            "protect_from_scale_set_actions": bool(policy.get("protectFromScaleSetActions"))}


def protected_from_scale_set_actions(vm: Dict[str, Any]) -> bool:
    return bool(((vm.get("properties") or {}).get("protectionPolicy") or {}).get("protectFromScaleSetActions"))


def summary(vm: Dict[str, Any], scale_set: Dict[str, Any]) -> Dict[str, Any]:
    """What scale_set_instance_info returns for one instance."""
    props = vm.get("properties") or {}
    view = props.get("instanceView") or {}
    zones = vm.get("zones") or []
    image = (props.get("storageProfile") or {}).get("imageReference")
    fault_domain = view.get("platformFaultDomain")
    if fault_domain is None:
        fault_domain = props.get("platformFaultDomain")
    return {
        "instance_id": instance_id_of(vm),
        "name": vm.get("name"),
        "id": vm.get("id"),
        "vm_id": props.get("vmId"),
        "computer_name": view.get("computerName") or (props.get("osProfile") or {}).get("computerName"),
        "zone": str(zones[0]) if zones else None,
        "update_domain": view.get("platformUpdateDomain"),
        "fault_domain": fault_domain,
        "latest_model_applied": latest_model_applied(vm, scale_set),
        "image": snake(image) if image else None,
        "vm_size": (vm.get("sku") or {}).get("name") or (props.get("hardwareProfile") or {}).get("vmSize"),
        "priority": props.get("priority"),
        "provisioning_state": props.get("provisioningState"),
        "power_state": power_state(vm),
        "health_state": health_state(vm),
        "protection": protection(vm),
        "error": provisioning_error(vm),
        "extensions": reported_extensions(vm.get("resources")),
    }


def flexible_instance_view(vms: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """What a scale set's instance view summarises, made from its Flexible VMs' own instance views (Azure
    refuses the scale-set instance view on Flexible sets). Pure.

    ``statuses_summary``: how many VMs have each provisioning status code; ``extensions``: per extension, how
    many VMs have each of its status codes. The scale set's own ``statuses`` and ``orchestration_services``
    exist only in the scale-set instance view: None."""
    def counted(codes):
        return [{"code": code, "count": count} for code, count in sorted(Counter(codes).items())]

    provisioning, by_extension = [], {}
    for vm in vms:
        provisioning += [status.get("code") for status in _statuses(vm)
                         if str(status.get("code") or "").startswith("ProvisioningState/")]
        for ext in ((vm.get("properties") or {}).get("instanceView") or {}).get("extensions") or []:
            by_extension.setdefault(ext.get("name"), []).extend(
                status.get("code") for status in ext.get("statuses") or [] if status.get("code"))
    return {"statuses_summary": counted(provisioning),
            "extensions": [{"name": name, "statuses_summary": counted(codes)} for name, codes in by_extension.items()],
            "statuses": None, "orchestration_services": None}


def count_not_on_latest_model(instances: Iterable[Dict[str, Any]], scale_set: Dict[str, Any]) -> int:
    return sum(1 for vm in instances if latest_model_applied(vm, scale_set) is False)


def busy(vm: Dict[str, Any]) -> bool:
    return str((vm.get("properties") or {}).get("provisioningState") or "").lower() in BUSY_STATES


def provisioned(instances: List[Dict[str, Any]], capacity: Optional[int]) -> bool:
    """Whether a capacity change is done: as many instances as asked, none still being created or deleted."""
    return (capacity is None or len(instances) == capacity) and not any(busy(vm) for vm in instances)


# ---------------------------------------------------------------------------------------------
# actions on instances: which ones, and how Azure takes them

ACTIONS = ("upgrade", "reimage", "restart", "deallocate", "start", "power_off", "delete", "protect")

# Uniform: every action is one scale-set call taking instanceIds (protect: one PUT per VM).
UNIFORM_BATCH = {"upgrade": "begin_update_instances", "reimage": "begin_reimage", "restart": "begin_restart",
                 "deallocate": "begin_deallocate", "start": "begin_start", "power_off": "begin_power_off",
                 "delete": "begin_delete_instances"}
# Flexible: Azure documents the scale-set calls with VM names for manual upgrade and batch delete; every
# other action is the single-VM API on Microsoft.Compute/virtualMachines (orchestration-modes API comparison).
FLEXIBLE_BATCH = {"upgrade": "begin_update_instances", "delete": "begin_delete_instances"}
FLEXIBLE_PER_VM = {"reimage": "begin_reimage", "restart": "begin_restart", "deallocate": "begin_deallocate",
                   "start": "begin_start", "power_off": "begin_power_off"}


def begin_action(compute, resource_group: str, name: str, scale_set: Dict[str, Any], action: str,
                 instance_ids: List[str]):
    """Start ``action`` (not protect) on instances the way the set's mode takes it: [(instance ids, poller)]."""
    if is_flexible(scale_set) and action in FLEXIBLE_PER_VM:
        method = FLEXIBLE_PER_VM[action]
        return [([instance_id], getattr(compute.virtual_machines, method)(resource_group, instance_id))
                for instance_id in instance_ids]
    method = UNIFORM_BATCH[action]
    return [(list(instance_ids), getattr(compute.virtual_machine_scale_sets, method)(
        resource_group, name, {"instanceIds": list(instance_ids)}))]


# Actions whose end state can already hold: (what says so, the reason reported).
ALREADY = {
    "upgrade": (lambda vm, ss: latest_model_applied(vm, ss) is True, "already on the latest model"),
    "start": (lambda vm, ss: power_state(vm) == "running", "already running"),
    "deallocate": (lambda vm, ss: power_state(vm) == "deallocated", "already deallocated"),
    "power_off": (lambda vm, ss: power_state(vm) in ("stopped", "deallocated"), "already stopped"),
}

OUTCOMES = ("planned", "started", "succeeded", "failed", "skipped", "unchanged")


def select(vms: List[Dict[str, Any]], scale_set: Dict[str, Any], instance_ids: Optional[List[str]] = None,
           not_on_latest_model: Optional[bool] = None, health: Optional[str] = None):
    """(selected instances, unknown ids): the instances named (all for None or ``*``) that pass the filters."""
    unknown: List[str] = []
    if instance_ids is None or "*" in [str(i) for i in instance_ids]:
        chosen = list(vms)
    else:
        by_id = {instance_id_of(vm).lower(): vm for vm in vms}
        chosen = []
        for wanted in dict.fromkeys(str(i) for i in instance_ids):
            vm = by_id.get(wanted.lower())
            if vm is None:
                unknown.append(wanted)
            elif vm not in chosen:
                chosen.append(vm)
    if not_on_latest_model is not None:
        chosen = [vm for vm in chosen if (latest_model_applied(vm, scale_set) is False) == not_on_latest_model]
    if health is not None:
        chosen = [vm for vm in chosen if (health_state(vm) or "").lower() == health.lower()]
    return chosen, unknown


def wanted_protection(vm: Dict[str, Any], protect_from_scale_in: Optional[bool],
                      protect_from_scale_set_actions: Optional[bool]) -> Dict[str, bool]:
    """The whole protection policy to PUT: what the user set, the rest as it is."""
    have = protection(vm) or {"protect_from_scale_in": False, "protect_from_scale_set_actions": False}
    want = dict(have)
    if protect_from_scale_in is not None:
        want["protect_from_scale_in"] = protect_from_scale_in
    if protect_from_scale_set_actions is not None:
        want["protect_from_scale_set_actions"] = protect_from_scale_set_actions
    return want


def plan(action: str, vms: List[Dict[str, Any]], scale_set: Dict[str, Any],
         protect_from_scale_in: Optional[bool] = None,
         protect_from_scale_set_actions: Optional[bool] = None) -> List[Dict[str, Any]]:
    """Per instance: ``outcome`` planned / skipped / unchanged and the ``reason``. Pure.

    Skipped: an instance protected from scale-set actions (Azure refuses scale-set actions on it,
    Uniform), or one with an operation in progress (Azure would answer 409 for the whole batch).
    Unchanged: the action's end state already holds (on the latest model, running, deallocated, ...).
    """
    out = []
    for vm in vms:
        entry = {"instance_id": instance_id_of(vm), "name": vm.get("name"), "outcome": "planned", "reason": None}
        if action == "protect":
            if (protection(vm) or {"protect_from_scale_in": False, "protect_from_scale_set_actions": False}) == \
                    wanted_protection(vm, protect_from_scale_in, protect_from_scale_set_actions):
                entry.update(outcome="unchanged", reason="protection already as asked")
            elif busy(vm):
                entry.update(outcome="skipped", reason="an operation is in progress on the instance")
        elif not is_flexible(scale_set) and protected_from_scale_set_actions(vm):
            entry.update(outcome="skipped", reason="protected from scale-set actions (protect_from_scale_set_actions)")
        elif action in ALREADY and ALREADY[action][0](vm, scale_set):
            entry.update(outcome="unchanged", reason=ALREADY[action][1])
        elif busy(vm):
            entry.update(outcome="skipped", reason="an operation is in progress on the instance")
        out.append(entry)
    return out


def settle(planned: List[Dict[str, Any]], action: str, after: List[Dict[str, Any]], scale_set: Dict[str, Any],
           batch_error: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The outcome of each planned instance once Azure is done, from the instances read again. Pure.

    ``batch_error``: the failed operation's ``{code, message, targets}`` (ARM names the failing instances
    in the error's details), or None. An instance failed when it reports a provisioning error
    (``ProvisioningState/failed/<code>``) or is named by the operation's error; a deleted one succeeded
    when it is gone.
    """
    by_id = {instance_id_of(vm).lower(): vm for vm in after}
    out = []
    for entry in planned:
        entry = dict(entry)
        vm = by_id.get(str(entry["instance_id"]).lower())
        entry.update(provisioning_state=None, power_state=None, health_state=None, latest_model_applied=None,
                     error=None)
        if vm is not None:
            entry.update(provisioning_state=(vm.get("properties") or {}).get("provisioningState"),
                         power_state=power_state(vm), health_state=health_state(vm),
                         latest_model_applied=latest_model_applied(vm, scale_set))
        if entry["outcome"] == "planned":
            named = batch_error is not None and str(entry["instance_id"]) in (batch_error.get("targets") or [])
            if action == "delete":
                error = None if vm is None else (provisioning_error(vm) or _short(batch_error))
            elif vm is None:
                error = _short(batch_error) or {"code": "NotFound", "message": "the instance is gone"}
            else:
                error = provisioning_error(vm) or (_short(batch_error) if named else None)
            entry.update(outcome="failed" if error else "succeeded", error=error)
        out.append(entry)
    return out


def _short(error: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return {"code": error.get("code"), "message": error.get("message")} if error else None
