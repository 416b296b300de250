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
taken to be on the latest model when its image reference and VM size are the scale set's (what a
rollout changes); other model changes are not seen there.

The summaries are pure functions of the REST dicts, so they are unit-tested without Azure.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ._common import snake

POWER_PREFIX = "PowerState/"
HEALTH_PREFIX = "HealthState/"
FAILED_PREFIX = "ProvisioningState/failed"
BUSY_STATES = ("creating", "updating", "deleting", "migrating")


def is_flexible(scale_set: Dict[str, Any]) -> bool:
    return str((scale_set.get("properties") or {}).get("orchestrationMode") or "").lower() == "flexible"


def flexible_filter(scale_set_id: str) -> str:
    """The VirtualMachines_List filter Azure documents for the VMs of one Flexible scale set."""
    return "'virtualMachineScaleSet/id' eq '%s'" % scale_set_id


def list_instances(compute, resource_group: str, name: str, scale_set: Dict[str, Any],
                   instance_view: bool = True) -> List[Dict[str, Any]]:
    """Every instance of the scale set as REST dicts (VirtualMachineScaleSetVM or VirtualMachine)."""
    expand = "instanceView" if instance_view else None
    if is_flexible(scale_set):
        scale_set_id = str(scale_set.get("id") or "").lower()
        pages = compute.virtual_machines.list(resource_group, filter=flexible_filter(scale_set.get("id")),
                                              expand=expand)
        return [vm for vm in (item.as_dict() for item in pages)
                if str(((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id") or "").lower()
                == scale_set_id]
    pages = compute.virtual_machine_scale_set_vms.list(resource_group, name, expand=expand)
    return [item.as_dict() for item in pages]


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


def _same_image(left: Dict[str, Any], right: Dict[str, Any]) -> bool:
    def key(ref):
        ref = ref or {}
        if ref.get("id"):
            return ("id", str(ref["id"]).rstrip("/").lower())
        return tuple(str(ref.get(part) or "").lower() for part in ("publisher", "offer", "sku", "version"))
    return key(left) == key(right)


def latest_model_applied(vm: Dict[str, Any], scale_set: Dict[str, Any]) -> Optional[bool]:
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
    return _same_image(want_image, have_image) and (not want_size or not have_size or want_size == have_size)


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
    }


def count_not_on_latest_model(instances: Iterable[Dict[str, Any]], scale_set: Dict[str, Any]) -> int:
    return sum(1 for vm in instances if latest_model_applied(vm, scale_set) is False)


def busy(vm: Dict[str, Any]) -> bool:
    return str((vm.get("properties") or {}).get("provisioningState") or "").lower() in BUSY_STATES


def provisioned(instances: List[Dict[str, Any]], capacity: Optional[int]) -> bool:
    """Whether a capacity change is done: as many instances as asked, none still being created or deleted."""
    return (capacity is None or len(instances) == capacity) and not any(busy(vm) for vm in instances)
