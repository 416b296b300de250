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
  Flexible sets it holds;
* with ``connect_via: nat`` (``NatEndpoints``): one GET per load balancer and per public IP the NICs lead to,
  and for Flexible instances behind an inbound NAT rule for a backend pool, one port-mapping query per instance.

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


def _primary_nics(nics: Iterable[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """{VM id (lower case): its primary NIC}."""
    by_vm: Dict[str, List[Dict[str, Any]]] = {}
    for nic in nics:
        vm_id = ((nic.get("properties") or {}).get("virtualMachine") or {}).get("id")
        if vm_id:
            by_vm.setdefault(vm_id.lower(), []).append(nic)
    return {vm_id: nic for vm_id, nic in ((vm_id, _primary(vm_nics)) for vm_id, vm_nics in by_vm.items()) if nic}


def private_ips(nics: Iterable[Dict[str, Any]]) -> Dict[str, str]:
    """{VM id (lower case): private IP} from NIC dicts: the primary IP configuration of the VM's primary NIC."""
    out = {}
    for vm_id, nic in _primary_nics(nics).items():
        ipc = _primary(nic.get("properties", {}).get("ipConfigurations") or [])
        address = ((ipc or {}).get("properties") or {}).get("privateIPAddress")
        if address:
            out[vm_id] = address
    return out


# ---------------------------------------------------------------------------------------------
# how an operator reaches an instance (the plugin's connect_via)

CONNECT_VIA = ("private_ip", "nat", "jump_host")


def _lb_id(sub_id: str, segment: str) -> str:
    """The load balancer id of one of its sub-resources (``.../loadBalancers/lb/inboundNatRules/ssh.0``)."""
    return sub_id[:sub_id.lower().index("/" + segment.lower() + "/")] if sub_id else ""


def _by_id(items: Iterable[Dict[str, Any]], wanted: str) -> Optional[Dict[str, Any]]:
    return next((item for item in items if str(item.get("id") or "").lower() == str(wanted or "").lower()), None)


class NatEndpoints:
    """{VM id: (frontend address, frontend port)} of the inbound NAT rules that forward to ``backend_port``.

    Uniform: the NIC's IP configuration names the rules Azure generated from the load balancer's inbound NAT
    pool (``loadBalancerInboundNatRules``: ``{pool}.{instance id}``). Flexible: an inbound NAT rule for a backend
    pool (``backendAddressPool``, a frontend port range), whose port per member Azure gives with the backend
    pool's ``queryInboundNatRulePortMapping``. The address is the frontend's public IP (its private IP for an
    internal load balancer). Readers are injected, each asked once per resource: ``load_balancer(id)``,
    ``public_ip(id)`` (dicts, None when absent) and ``port_mappings(lb id, pool name, IP configuration id)``
    (the ``inboundNatRulePortMappings`` list).
    """

    def __init__(self, load_balancer, public_ip, port_mappings, backend_port: int = 22):
        self.backend_port = backend_port
        self._read = {"lb": load_balancer, "pip": public_ip}
        self._port_mappings = port_mappings
        self._cache: Dict[Tuple[str, str], Any] = {}

    def _get(self, kind: str, rid: str) -> Optional[Dict[str, Any]]:
        key = (kind, rid.lower())
        if key not in self._cache:
            self._cache[key] = self._read[kind](rid) or None
        return self._cache[key]

    def _address(self, lb: Dict[str, Any], frontend_id: str) -> Optional[str]:
        frontend = (_by_id((lb.get("properties") or {}).get("frontendIPConfigurations") or [], frontend_id)
                    or {}).get("properties") or {}
        public_id = (frontend.get("publicIPAddress") or {}).get("id")
        if public_id:
            return ((self._get("pip", public_id) or {}).get("properties") or {}).get("ipAddress")
        return frontend.get("privateIPAddress")

    def _rules(self, lb_id: str) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]:
        lb = self._get("lb", lb_id) if lb_id else None
        rules = [r for r in ((lb or {}).get("properties") or {}).get("inboundNatRules") or []
                 if (r.get("properties") or {}).get("backendPort") == self.backend_port]
        return lb, rules

    def of_ip_configuration(self, ipc: Dict[str, Any]) -> Optional[Tuple[str, int]]:
        props = ipc.get("properties") or {}
        for ref in props.get("loadBalancerInboundNatRules") or []:
            lb, rules = self._rules(_lb_id(ref.get("id"), "inboundNatRules"))
            rule = (_by_id(rules, ref.get("id")) or {}).get("properties")
            if lb and rule and rule.get("frontendPort"):
                address = self._address(lb, (rule.get("frontendIPConfiguration") or {}).get("id"))
                if address:
                    return address, rule["frontendPort"]
        for ref in props.get("loadBalancerBackendAddressPools") or []:
            lb_id = _lb_id(ref.get("id"), "backendAddressPools")
            lb, rules = self._rules(lb_id)
            for rule in rules:
                rule_props = rule.get("properties") or {}
                if str((rule_props.get("backendAddressPool") or {}).get("id") or "").lower() != ref["id"].lower():
                    continue
                mappings = self._port_mappings(lb_id, ref["id"].rsplit("/", 1)[1], ipc.get("id")) or []
                port = next((m.get("frontendPort") for m in mappings
                             if str(m.get("inboundNatRuleName") or "").lower() == str(rule.get("name")).lower()), None)
                address = self._address(lb, (rule_props.get("frontendIPConfiguration") or {}).get("id"))
                if port and address:
                    return address, port
        return None

    def of_nics(self, nics: Iterable[Dict[str, Any]]) -> Dict[str, Tuple[str, int]]:
        """{VM id (lower case): (address, port)}: the primary NIC's primary IP configuration, like private_ips."""
        out = {}
        for vm_id, nic in _primary_nics(nics).items():
            ipc = _primary((nic.get("properties") or {}).get("ipConfigurations") or [])
            endpoint = self.of_ip_configuration(ipc) if ipc else None
            if endpoint:
                out[vm_id] = endpoint
        return out


def connection_vars(variables: Dict[str, Any], connect_via: str, jump_host: Optional[str] = None) -> Dict[str, Any]:
    """The connection variables of one host: ``ansible_host`` (and ``ansible_port``, ``ansible_ssh_common_args``)
    for the chosen way in. Nothing for an instance that has no address that way (yet)."""
    if connect_via == "nat":
        if variables.get("nat_host") and variables.get("nat_port"):
            return {"ansible_host": variables["nat_host"], "ansible_port": variables["nat_port"]}
        return {}
    if not variables.get("private_ip"):
        return {}
    out = {"ansible_host": variables["private_ip"]}
    if connect_via == "jump_host" and jump_host:
        out["ansible_ssh_common_args"] = "-o ProxyJump=%s" % jump_host
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


def host_vars(vm: Dict[str, Any], scale_set: Dict[str, Any], ips: Dict[str, str],
              nat: Optional[Dict[str, Tuple[str, int]]] = None) -> Dict[str, Any]:
    """One host's variables: scale_set_instance_info's fields plus private IP, image version, tags and the set
    (and, with ``nat``, the inbound NAT endpoint as ``nat_host`` / ``nat_port``)."""
    out = instances.summary(vm, scale_set)
    group, name = split_id(scale_set.get("id"))
    if nat is not None:
        out["nat_host"], out["nat_port"] = nat.get(str(vm.get("id") or "").lower(), (None, None))
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
