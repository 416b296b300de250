# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale-set instances as inventory hosts: what the ``fleetops.vmss.instances`` inventory plugin reads and
how one instance becomes one host's variables.

Reads, per scale set (the cost the plugin documents):

* the scale set itself: one GET per listed set, or one paged list for all sets of a group or subscription;
* its instances with their instance views: one paged list (``_instances.iter_instances``);
* its network interfaces, for the private IPs: one paged list. Uniform NICs belong to the scale set
  (``virtualMachineScaleSets/{name}/networkInterfaces``); Flexible VMs' NICs are ordinary
  ``Microsoft.Network/networkInterfaces`` of the resource group, listed once per group however many
  Flexible sets it holds.

Everything but those three readers is a pure function of REST dicts, unit-tested without Azure.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _instances as instances
from ._ids import parse_id

HOSTNAMES = ("computer_name", "name", "private_ip")


def split_id(resource_id: str) -> Tuple[str, str]:
    """(resource group, name) of a resource id."""
    parsed = parse_id(resource_id)
    return parsed.get("resource_group") or "", (parsed.get("names") or [""])[-1]


# ---------------------------------------------------------------------------------------------
# reading

def scale_sets(compute, wanted: Optional[List[Dict[str, Any]]],
               ignore_not_found) -> Tuple[List[Dict[str, Any]], List[str]]:
    """(the scale sets to read as REST dicts, what was asked for but is not there).

    Every set of the subscription when ``wanted`` is empty, else each ``{resource_group, name}`` (every set
    of the group when ``name`` is not set). ``ignore_not_found(call)`` returns None for a 404.
    """
    if not wanted:
        return [item.as_dict() for item in compute.virtual_machine_scale_sets.list_all()], []
    found: List[Dict[str, Any]] = []
    missing: List[str] = []
    for entry in wanted:
        group, name = entry["resource_group"], entry.get("name")
        if name:
            item = ignore_not_found(lambda g=group, n=name: compute.virtual_machine_scale_sets.get(g, n))
            items = None if item is None else [item]
        else:
            items = ignore_not_found(lambda g=group: list(compute.virtual_machine_scale_sets.list(g)))
        if items is None:
            missing.append("scale set %s/%s" % (group, name) if name else "resource group %s" % group)
        found.extend(item.as_dict() for item in items or [])
    # A set named and also in a listed group is read once.
    unique = {str(item.get("id")).lower(): item for item in found}
    return list(unique.values()), missing


def network_interfaces(network, scale_set: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """The NICs holding the private IPs of a scale set's instances (one paged list, see the module doc)."""
    group, name = split_id(scale_set.get("id"))
    if instances.is_flexible(scale_set):
        pages = network.network_interfaces.list(group)
    else:
        pages = network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(group, name)
    for item in pages:
        yield item.as_dict()


# ---------------------------------------------------------------------------------------------
# one instance, one host

def _primary(items: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return next((item for item in items if (item.get("properties") or {}).get("primary")),
                items[0] if len(items) == 1 else None)


def private_ips(nics: Iterable[Dict[str, Any]]) -> Dict[str, str]:
    """{VM id (lower case): private IP} from NIC dicts: the primary IP configuration of the VM's primary NIC."""
    by_vm: Dict[str, List[Dict[str, Any]]] = {}
    for nic in nics:
        vm_id = ((nic.get("properties") or {}).get("virtualMachine") or {}).get("id")
        if vm_id:
            by_vm.setdefault(vm_id.lower(), []).append(nic)
    out = {}
    for vm_id, vm_nics in by_vm.items():
        nic = _primary(vm_nics)
        ipc = _primary((nic or {}).get("properties", {}).get("ipConfigurations") or [])
        address = ((ipc or {}).get("properties") or {}).get("privateIPAddress")
        if address:
            out[vm_id] = address
    return out


def image_version(image: Optional[Dict[str, Any]]) -> Optional[str]:
    """The version an instance runs: Azure's resolved ``exact_version``, a pinned ``version``, or the last
    segment of a gallery image version id (``.../images/web/versions/1.7.1``)."""
    if not image:
        return None
    if image.get("exact_version"):
        return image["exact_version"]
    if image.get("version") and image["version"] != "latest":
        return image["version"]
    parts = str(image.get("id") or "").rstrip("/").split("/")
    if len(parts) > 2 and parts[-2].lower() == "versions":
        return parts[-1]
    return image.get("version")


def host_vars(vm: Dict[str, Any], scale_set: Dict[str, Any], ips: Dict[str, str]) -> Dict[str, Any]:
    """One host's variables: scale_set_instance_info's fields plus private IP, image version, tags and the set."""
    out = instances.summary(vm, scale_set)
    group, name = split_id(scale_set.get("id"))
    out.update(
        private_ip=ips.get(str(vm.get("id") or "").lower()),
        image_version=image_version(out.get("image")),
        tags=dict(vm["tags"] if vm.get("tags") is not None else scale_set.get("tags") or {}),
        location=vm.get("location") or scale_set.get("location"),
        scale_set=name,
        scale_set_id=scale_set.get("id"),
        resource_group=group,
        orchestration_mode=(scale_set.get("properties") or {}).get("orchestrationMode") or "Uniform",
    )
    return out


def host_name(variables: Dict[str, Any], hostname: str) -> Tuple[str, bool]:
    """(inventory host name, whether it is the asked-for one): the VM name stands in when the chosen
    field is unknown (no private IP, no computer name yet)."""
    wanted = variables.get(hostname)
    return (str(wanted), True) if wanted else (str(variables.get("name")), False)


def duplicates(names: Iterable[Tuple[str, Dict[str, Any]]]) -> Dict[str, List[str]]:
    """{host name: [VM ids]} for host names that more than one instance would take."""
    seen: Dict[str, List[str]] = {}
    for name, variables in names:
        seen.setdefault(name, []).append(str(variables.get("id")))
    return {name: ids for name, ids in seen.items() if len(ids) > 1}
