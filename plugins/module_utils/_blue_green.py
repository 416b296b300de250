# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green for scale sets behind a load balancer: pure functions, no I/O, no Ansible.

* **Copying the model**: green is blue's scale set (REST dict, read with ``$expand=userData``) without
  its read-only fields, renamed, with the new image and capacity, and out of the swapped backend pools.
* **Pool membership**: which instances the load balancer lists in the pools (by their NICs), and the
  PATCH bodies that put a set's model into the pools or take it out.
* **Autoscale**: an autoscale setting's target is immutable in Azure, so following the live set means a
  copy of blue's setting aimed at green (metric sources that are blue re-aimed too), blue's disabled.
* **Steps**: every target state is an ordered list of steps. A step is *needed* when the state observed
  in Azure says so (``observe``), so a run after an interruption skips what is done and continues; the
  same steps ``simulate``'d on the observed state give check mode's plan.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, Iterable, List, Optional

from . import _instance_state as instance_state
from ._instances import instance_id_of, power_state
from ._ids import resource_type, same_id
from ._lease import TAG as LEASE_TAG
from ._rollout import Gate, PlanError, settle_seconds
from ._scale_set_model import image_option, image_reference, primary

STATES = ("staged", "live", "rolled_back", "finalized")
POOL_TYPE = "microsoft.network/loadbalancers/backendaddresspools"
# Tags that carry the swap's state in Azure itself (so any run, anywhere, can resume it).
TAG_PREFIX = "fleetops.blue_green."
TAG_BLUE = TAG_PREFIX + "blue"            # on green: the name of the blue set it was copied from
TAG_CAPACITY = TAG_PREFIX + "capacity"    # on blue while scaled in for the rollback window: its capacity before
TAG_SOURCE = TAG_PREFIX + "source"        # on green's autoscale setting: the blue setting it copies

# Typical Azure durations (seconds), for the plan's estimate only.
TYPICAL_SECONDS = {"create": 90.0, "update": 30.0, "upgrade": 120.0, "delete": 60.0, "deallocate": 60.0,
                   "start": 45.0, "autoscale": 1.0}

_READ_ONLY_TOP = ("id", "name", "type", "etag", "systemData", "managedBy", "resourceGroup")
_READ_ONLY_PROPS = ("provisioningState", "uniqueId", "timeCreated")


class BlueGreenError(ValueError):
    """Options or state that cannot make a plan (reported before any write)."""


def default_green_name(blue: str) -> str:
    """``web-blue`` -> ``web-green``, ``web-green`` -> ``web-blue``, ``web`` -> ``web-green``."""
    for mine, other in (("-blue", "-green"), ("-green", "-blue")):
        if blue.lower().endswith(mine):
            return blue[:-len(mine)] + other
    return blue + "-green"


def load_balancer_of(sub_resource_id: str) -> str:
    """The load balancer id of a backend pool / probe / NAT pool id (lower case)."""
    return re.split(r"/(?:backendaddresspools|probes|inboundnatpools)/", (sub_resource_id or "").lower())[0]


# ---------------------------------------------------------------------------------------------
# images

def same_image(image: Any, reference: Optional[Dict[str, Any]]) -> bool:
    """Whether a scale set with the image reference ``reference`` runs the ``image`` option (id string or dict)."""
    return instance_state.same_image(reference, image_option(image))


def image_of(scale_set: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    ref = (_profile(scale_set).get("storageProfile") or {}).get("imageReference")
    if not ref:
        return None
    return {key: value for key, value in ref.items() if key != "exactVersion" and value is not None}


# ---------------------------------------------------------------------------------------------
# the model: pools, copy, PATCH bodies

def _profile(scale_set: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return ((scale_set or {}).get("properties") or {}).get("virtualMachineProfile") or {}


def _ip_configurations(network: Dict[str, Any]) -> Iterable[Dict[str, Any]]:
    for nic in (network or {}).get("networkInterfaceConfigurations") or []:
        yield from (nic.get("properties") or {}).get("ipConfigurations") or []


def _unique(ids: Iterable[str]) -> List[str]:
    """ARM ids without case-insensitive duplicates, as first spelled (they are written back), sorted."""
    out: Dict[str, str] = {}
    for rid in ids:
        out.setdefault(rid.rstrip("/").lower(), rid.rstrip("/"))
    return [out[key] for key in sorted(out)]


def pools_in_model(scale_set: Optional[Dict[str, Any]]) -> List[str]:
    """The backend pool ids the scale set's model puts its instances in."""
    return _unique(ref["id"] for ipc in _ip_configurations(_profile(scale_set).get("networkProfile") or {})
                   for ref in (ipc.get("properties") or {}).get("loadBalancerBackendAddressPools") or []
                   if ref.get("id"))


def swapped_pools(explicit: Optional[List[str]], blue: Optional[Dict[str, Any]],
                  green: Optional[Dict[str, Any]]) -> List[str]:
    """The pools traffic moves between: the ones given, else those of blue's model and green's (one of
    the two has them at every point of the swap, so a resumed run finds them again)."""
    if explicit:
        return _unique(explicit)
    return _unique(pools_in_model(blue) + pools_in_model(green))


def network_without(network: Optional[Dict[str, Any]], pools: List[str], copying: bool = False) -> Dict[str, Any]:
    """The network profile out of ``pools`` (every IP configuration).

    ``copying`` (green's first model): also without the load balancer's probe and inbound NAT pools,
    which Azure lets one scale set only use at a time (a probe must cover the set's pool; NAT port
    ranges would collide); green keeps its Application Health extension as health signal.
    """
    out = copy.deepcopy(network or {})
    wanted = {pool.lower() for pool in pools}
    balancers = {load_balancer_of(pool) for pool in wanted}
    for ipc in _ip_configurations(out):
        props = ipc.setdefault("properties", {})
        if "loadBalancerBackendAddressPools" in props:
            props["loadBalancerBackendAddressPools"] = [
                ref for ref in props["loadBalancerBackendAddressPools"] or []
                if (ref.get("id") or "").rstrip("/").lower() not in wanted]
        if copying and props.get("loadBalancerInboundNatPools"):
            props["loadBalancerInboundNatPools"] = [
                ref for ref in props["loadBalancerInboundNatPools"] if load_balancer_of(ref.get("id")) not in balancers]
    if copying and (out.get("healthProbe") or {}).get("id") and load_balancer_of(out["healthProbe"]["id"]) in balancers:
        out.pop("healthProbe")
    return out


def network_with(network: Optional[Dict[str, Any]], pools: List[str]) -> Dict[str, Any]:
    """The network profile with the primary IP configuration of the primary NIC in every pool of ``pools``."""
    out = copy.deepcopy(network or {})
    nic = primary(out.get("networkInterfaceConfigurations") or [])
    ipc = primary(((nic or {}).get("properties") or {}).get("ipConfigurations") or []) if nic else None
    if ipc is None:
        raise BlueGreenError("the scale set's model has no NIC IP configuration to put into the backend pool")
    props = ipc.setdefault("properties", {})
    refs = list(props.get("loadBalancerBackendAddressPools") or [])
    have = {(ref.get("id") or "").rstrip("/").lower() for ref in refs}
    refs.extend({"id": pool} for pool in pools if pool.lower() not in have)
    props["loadBalancerBackendAddressPools"] = refs
    return out


def pool_patch(scale_set: Dict[str, Any], pools: List[str], join: bool) -> Dict[str, Any]:
    """The PATCH body putting a set's model into ``pools`` (join) or out of them. A PATCH replaces
    arrays, so the NIC configurations are sent whole, built from the model read under the same ETag."""
    network = _profile(scale_set).get("networkProfile") or {}
    changed = network_with(network, pools) if join else network_without(network, pools)
    return {"properties": {"virtualMachineProfile": {"networkProfile": {
        "networkInterfaceConfigurations": changed.get("networkInterfaceConfigurations") or []}}}}


def scale_in_patch(scale_set: Dict[str, Any], capacity: int) -> Dict[str, Any]:
    """Blue scaled in for the rollback window; its capacity before is kept in a tag (the first one, on a re-run)."""
    tags = dict(scale_set.get("tags") or {})
    tags.setdefault(TAG_CAPACITY, str(int((scale_set.get("sku") or {}).get("capacity") or 0)))
    return {"sku": {"capacity": capacity}, "tags": tags}


def scale_out_patch(scale_set: Dict[str, Any]) -> Dict[str, Any]:
    """Blue back at its capacity before the swap (never less than it has), the tag removed (ARM replaces tags)."""
    tags = dict(scale_set.get("tags") or {})
    original = tags.pop(TAG_CAPACITY, None)
    current = int((scale_set.get("sku") or {}).get("capacity") or 0)
    body: Dict[str, Any] = {"tags": tags}
    if str(original or "").isdigit() and int(original) > current:
        body["sku"] = {"capacity": int(original)}
    return body


def strip_read_only(scale_set: Dict[str, Any]) -> Dict[str, Any]:
    """A scale set as read, without what Azure sets itself (ids, states, times, principals, exactVersion)."""
    body = {key: copy.deepcopy(value) for key, value in scale_set.items() if key not in _READ_ONLY_TOP}
    props = body.get("properties") or {}
    for key in _READ_ONLY_PROPS:
        props.pop(key, None)
    vm = props.get("virtualMachineProfile") or {}
    vm.pop("timeCreated", None)
    ref = (vm.get("storageProfile") or {}).get("imageReference")
    if isinstance(ref, dict):
        ref.pop("exactVersion", None)
    for ext in (vm.get("extensionProfile") or {}).get("extensions") or []:
        (ext.get("properties") or {}).pop("provisioningState", None)
        ext.pop("id", None)
        ext.pop("type", None)
    identity = body.get("identity")
    if isinstance(identity, dict):
        identity.pop("principalId", None)
        identity.pop("tenantId", None)
        if isinstance(identity.get("userAssignedIdentities"), dict):
            identity["userAssignedIdentities"] = {key: {} for key in identity["userAssignedIdentities"]}
    return body


def green_body(blue: Dict[str, Any], image: Any, capacity: int, pools: List[str],
               secrets: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The PUT body of green: blue's model (network, extensions, policies, identity, zones, tags) with
    ``image``, ``capacity`` and out of ``pools``; tagged with blue's name.

    ``secrets``: what Azure never returns and a new scale set needs again: ``admin_password``,
    ``custom_data`` (base64, as Azure takes it) and ``protected_settings`` ({extension name: settings}).
    """
    secrets = secrets or {}
    body = strip_read_only(blue)
    body["tags"] = dict({key: value for key, value in (body.get("tags") or {}).items()
                         if not key.startswith(TAG_PREFIX) and key != LEASE_TAG}, **{TAG_BLUE: blue["name"]})
    body["sku"] = dict(body.get("sku") or {}, capacity=capacity)
    vm = body.setdefault("properties", {}).setdefault("virtualMachineProfile", {})
    vm.setdefault("storageProfile", {})["imageReference"] = image_reference(image_option(image))
    vm["networkProfile"] = network_without(vm.get("networkProfile"), pools, copying=True)
    os_profile = vm.get("osProfile")
    if os_profile is not None:
        if secrets.get("admin_password"):
            os_profile["adminPassword"] = secrets["admin_password"]
        if secrets.get("custom_data"):
            os_profile["customData"] = secrets["custom_data"]
    for ext in (vm.get("extensionProfile") or {}).get("extensions") or []:
        protected = (secrets.get("protected_settings") or {}).get(ext.get("name"))
        if protected is not None:
            ext.setdefault("properties", {})["protectedSettings"] = protected
    return body


def unknown_protected_settings(blue: Dict[str, Any], protected_settings: Optional[Dict[str, Any]]) -> List[str]:
    names = {(ext.get("name") or "") for ext in (_profile(blue).get("extensionProfile") or {}).get("extensions") or []}
    return sorted(name for name in (protected_settings or {}) if name not in names)


def has_health_extension(scale_set: Dict[str, Any]) -> bool:
    for ext in (_profile(scale_set).get("extensionProfile") or {}).get("extensions") or []:
        props = ext.get("properties") or {}
        if (str(props.get("publisher", "")).lower() == "microsoft.managedservices"
                and str(props.get("type", "")).lower() in ("applicationhealthlinux", "applicationhealthwindows")):
            return True
    return False


def health_settle_seconds(scale_set: Optional[Dict[str, Any]]) -> float:
    """How long new instances are expected to report Initializing (_rollout.settle_seconds); 0 without an
    Application Health extension."""
    for ext in (_profile(scale_set).get("extensionProfile") or {}).get("extensions") or []:
        if str((ext.get("properties") or {}).get("type", "")).lower().startswith("applicationhealth"):
            return settle_seconds((ext.get("properties") or {}).get("settings"))
    return 0.0


# ---------------------------------------------------------------------------------------------
# load balancer membership

def nic_ids(vm: Dict[str, Any]) -> List[str]:
    network = (vm.get("properties") or {}).get("networkProfile") or {}
    return [(nic.get("id") or "").lower() for nic in network.get("networkInterfaces") or [] if nic.get("id")]


def pool_counts(vms: List[Dict[str, Any]], members: Dict[str, List[str]]) -> Dict[str, int]:
    """{instance id: in how many of the pools} from each pool's backendIPConfigurations ids."""
    owner = {nic: instance_id_of(vm) for vm in vms for nic in nic_ids(vm)}
    counts = {instance_id_of(vm): 0 for vm in vms}
    for ip_configurations in members.values():
        seen = set()
        for ipc in ip_configurations:
            instance = owner.get(ipc.lower().split("/ipconfigurations/")[0])
            if instance is not None and instance not in seen:
                seen.add(instance)
                counts[instance] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# autoscale

def counterpart_name(setting_name: str, blue: str, green: str) -> str:
    """The name of green's copy of a blue autoscale setting: blue's name replaced by green's, else suffixed."""
    if blue.lower() in setting_name.lower():
        return re.sub(re.escape(blue), green, setting_name, count=1, flags=re.IGNORECASE)
    return "%s-%s" % (setting_name, green)


def _swap_uri(value: Any, old: str, new: str) -> Any:
    return new if isinstance(value, str) and same_id(value, old) else value


def counterpart_body(setting: Dict[str, Any], blue_id: str, green_id: str, name: str) -> Dict[str, Any]:
    """Green's copy of a blue autoscale setting (REST dict): same profiles, notifications and predictive
    policy, target and blue-sourced metrics re-aimed at green, enabled as blue's is."""
    props = copy.deepcopy(setting.get("properties") or {})
    for profile in props.get("profiles") or []:
        for rule in profile.get("rules") or []:
            trigger = rule.get("metricTrigger") or {}
            trigger["metricResourceUri"] = _swap_uri(trigger.get("metricResourceUri"), blue_id, green_id)
    props["targetResourceUri"] = green_id
    props["name"] = name
    tags = dict(setting.get("tags") or {}, **{TAG_SOURCE: setting.get("name")})
    return {"location": setting.get("location"), "tags": tags, "properties": props}


def toggled(setting: Dict[str, Any], enabled: bool) -> Dict[str, Any]:
    """The PUT body of a setting (REST dict) switched on or off. Not a PATCH: the spec makes a PATCH that
    carries properties carry the profiles too, so the whole setting is sent either way."""
    props = dict(copy.deepcopy(setting.get("properties") or {}), enabled=enabled)
    return {"location": setting.get("location"), "tags": dict(setting.get("tags") or {}), "properties": props}


def autoscale_view(settings: List[Dict[str, Any]], blue_id: str, green_id: str, blue: str,
                   green: str) -> Dict[str, Any]:
    """Blue's settings and green's copies among ``settings`` (REST dicts)."""
    def target(setting):
        return (setting.get("properties") or {}).get("targetResourceUri")

    blue_settings = [s for s in settings if same_id(target(s), blue_id)]
    green_settings = [s for s in settings if same_id(target(s), green_id)]
    names = {(s.get("name") or "").lower() for s in green_settings}
    missing = [s for s in blue_settings if counterpart_name(s["name"], blue, green).lower() not in names]
    return {"blue": blue_settings, "green": green_settings, "missing": missing}


# ---------------------------------------------------------------------------------------------
# the state observed

def set_state(scale_set: Optional[Dict[str, Any]], vms: List[Dict[str, Any]], counts: Dict[str, int],
              pools: List[str]) -> Dict[str, Any]:
    """One scale set as the steps see it (pure numbers)."""
    if scale_set is None:
        return {"exists": False, "capacity": 0, "instances": 0, "members": 0, "touching": 0, "non_members": 0,
                "deallocated": 0, "in_model": False, "out_model": True, "original_capacity": None, "blue_tag": None}
    in_model = {pool.lower() for pool in pools_in_model(scale_set)}
    tags = scale_set.get("tags") or {}
    original = tags.get(TAG_CAPACITY)
    members = sum(1 for count in counts.values() if pools and count == len(pools))
    return {
        "exists": True,
        "capacity": int((scale_set.get("sku") or {}).get("capacity") or 0),
        "instances": len(vms),
        "members": members,
        "touching": sum(1 for count in counts.values() if count > 0),
        "non_members": len(vms) - members,
        "deallocated": sum(1 for vm in vms if power_state(vm) in ("deallocated", "deallocating")),
        "in_model": bool(pools) and all(pool.lower() in in_model for pool in pools),
        "out_model": not any(pool.lower() in in_model for pool in pools),
        "original_capacity": int(original) if str(original or "").isdigit() else None,
        "blue_tag": tags.get(TAG_BLUE),
    }


def observe(blue: Dict[str, Any], green: Dict[str, Any], autoscale: Dict[str, Any]) -> Dict[str, Any]:
    """The observation the steps read: ``blue`` and ``green`` from set_state, ``autoscale`` counts."""
    return {"blue": dict(blue), "green": dict(green), "autoscale": {
        "blue_total": len(autoscale["blue"]),
        "blue_enabled": sum(1 for s in autoscale["blue"] if (s.get("properties") or {}).get("enabled")),
        "missing": len(autoscale["missing"]),
        "green_total": len(autoscale["green"]),
        "green_enabled": sum(1 for s in autoscale["green"] if (s.get("properties") or {}).get("enabled")),
    }}


# ---------------------------------------------------------------------------------------------
# steps: name, phase kind, whether it writes, when it is needed, what it leaves behind (simulated)

class Step:
    """One step of a phase. ``needed(obs, opts)``; ``simulate(obs, opts)`` changes ``obs`` as the step would.
    Gates (``write=False``) verify and wait; they run whenever their set exists."""

    def __init__(self, name, kind, write, description, needed, simulate=None, subject="green"):
        self.name, self.kind, self.write, self.description = name, kind, write, description
        self.needed, self.simulate, self.subject = needed, simulate or (lambda obs, opts: None), subject


def _set(obs, which, **values):
    obs[which].update(values)


def _created(obs, opts):
    capacity = opts["capacity"] if opts.get("capacity") is not None else obs["blue"]["capacity"]
    _set(obs, "green", exists=True, capacity=capacity, instances=capacity, members=0, touching=0,
         non_members=capacity, deallocated=0, in_model=False, out_model=True)


def _joined(which):
    return lambda obs, opts: _set(obs, which, in_model=True, out_model=False)


def _left(which):
    return lambda obs, opts: _set(obs, which, in_model=False, out_model=True)


def _all_members(which):
    return lambda obs, opts: _set(obs, which, members=obs[which]["instances"], touching=obs[which]["instances"],
                                  non_members=0)


def _no_members(which):
    return lambda obs, opts: _set(obs, which, members=0, touching=0, non_members=obs[which]["instances"])


def _scaled_in(obs, opts):
    blue = obs["blue"]
    keep = min(blue["instances"], opts["blue_capacity"])
    removed = blue["instances"] - keep
    members = max(blue["members"] - removed, 0)
    _set(obs, "blue", original_capacity=blue["original_capacity"] or blue["capacity"], capacity=opts["blue_capacity"],
         instances=keep, members=members, touching=max(blue["touching"] - removed, 0), non_members=keep - members)


def _scaled_out(obs, opts):
    blue = obs["blue"]
    target = blue["original_capacity"] or blue["capacity"]
    added = max(target - blue["instances"], 0)
    joined = added if blue["in_model"] else 0
    _set(obs, "blue", capacity=target, instances=blue["instances"] + added, original_capacity=None,
         members=blue["members"] + joined, touching=blue["touching"] + joined,
         non_members=blue["non_members"] + added - joined)


def _autoscale_to_green(obs, opts):
    auto = obs["autoscale"]
    auto.update(green_total=auto["green_total"] + auto["missing"], missing=0,
                green_enabled=auto["green_enabled"] + auto["blue_enabled"], blue_enabled=0)


def _autoscale_to_blue(obs, opts):
    auto = obs["autoscale"]
    auto.update(blue_enabled=auto["blue_enabled"] + auto["green_enabled"], green_enabled=0)
    if not opts.get("keep_green"):
        auto["green_total"] = 0


def _green_exists(obs):
    return obs["green"]["exists"]


def serving_capacity(obs):
    """What blue serves with before the swap: its capacity, or the one before its scale-in (a resumed run)."""
    blue = obs["blue"]
    return max(blue["capacity"], blue["original_capacity"] or 0) if blue["exists"] else 0


def _green_scaled_out(obs, opts):
    green = obs["green"]
    added = max(serving_capacity(obs) - green["instances"], 0)
    _set(obs, "green", capacity=serving_capacity(obs), instances=green["instances"] + added,
         non_members=green["non_members"] + added)


def _blue_exists(obs):
    return obs["blue"]["exists"]


STAGE = [
    Step("create_green", "stage", True, "create green as a copy of blue's model with the new image, out of the pool",
         lambda obs, opts: not _green_exists(obs), _created),
    Step("green_healthy", "stage", False, "wait for green's instances to be provisioned and Healthy",
         lambda obs, opts: _green_exists(obs)),
]
SWAP_IN = [
    # a green staged smaller (capacity) grows to what blue serves with before it takes traffic
    Step("green_scale_out", "swap", True, "scale green out to blue's capacity before it joins the pools",
         lambda obs, opts: _green_exists(obs) and not obs["green"]["in_model"]
         and obs["green"]["capacity"] < serving_capacity(obs), _green_scaled_out),
    Step("green_join_model", "swap", True, "put the backend pools into green's model",
         lambda obs, opts: _green_exists(obs) and not obs["green"]["in_model"], _joined("green")),
    Step("green_upgrade", "swap", True, "upgrade green's instances not yet in the pools onto its model",
         lambda obs, opts: _green_exists(obs) and obs["green"]["non_members"] > 0, _all_members("green")),
    Step("green_in_pool", "swap", False, "verify on the load balancer that every green instance is in the pools, "
                                         "and Healthy", lambda obs, opts: _green_exists(obs)),
]
SOAK = [
    Step("soak", "soak", False, "soak: green and blue both in the pools while green's health is watched",
         lambda obs, opts: bool(opts.get("soak")) and _green_exists(obs) and obs["blue"]["touching"] > 0),
]
SWAP_OUT = [
    Step("autoscale_to_green", "swap", True, "copy blue's autoscale settings to green, then disable blue's",
         lambda obs, opts: opts.get("move_autoscale", True) and _green_exists(obs)
         and (obs["autoscale"]["missing"] > 0 or obs["autoscale"]["blue_enabled"] > 0), _autoscale_to_green),
    Step("blue_scale_in", "swap", True, "scale blue in to blue_capacity for the rollback window",
         lambda obs, opts: _blue_exists(obs) and opts.get("blue_capacity") is not None
         and obs["blue"]["capacity"] > opts["blue_capacity"], _scaled_in, subject="blue"),
    Step("blue_leave_model", "swap", True, "take the backend pools out of blue's model",
         lambda obs, opts: _blue_exists(obs) and not obs["blue"]["out_model"], _left("blue"), subject="blue"),
    Step("blue_upgrade", "swap", True, "upgrade blue's instances still in a pool onto its model",
         lambda obs, opts: _blue_exists(obs) and obs["blue"]["touching"] > 0, _no_members("blue"), subject="blue"),
    Step("blue_out_of_pool", "swap", False, "verify on the load balancer that no blue instance is in a pool",
         lambda obs, opts: _blue_exists(obs), subject="blue"),
    Step("blue_deallocate", "swap", True, "deallocate blue's instances for the rollback window",
         lambda obs, opts: opts.get("deallocate_blue") and _blue_exists(obs)
         and obs["blue"]["instances"] > obs["blue"]["deallocated"],
         lambda obs, opts: _set(obs, "blue", deallocated=obs["blue"]["instances"]), subject="blue"),
]
ROLLBACK = [
    Step("blue_start", "rollback", True, "start blue's deallocated instances",
         lambda obs, opts: _blue_exists(obs) and obs["blue"]["deallocated"] > 0,
         lambda obs, opts: _set(obs, "blue", deallocated=0), subject="blue"),
    Step("blue_join_model", "rollback", True, "put the backend pools back into blue's model",
         lambda obs, opts: _blue_exists(obs) and not obs["blue"]["in_model"], _joined("blue"), subject="blue"),
    Step("blue_scale_out", "rollback", True, "scale blue back out to its capacity before the swap",
         lambda obs, opts: _blue_exists(obs) and obs["blue"]["original_capacity"] is not None, _scaled_out,
         subject="blue"),
    Step("blue_rejoin", "rollback", True, "upgrade blue's instances not in the pools onto its model",
         lambda obs, opts: _blue_exists(obs) and obs["blue"]["non_members"] > 0, _all_members("blue"), subject="blue"),
    Step("blue_in_pool", "rollback", False, "verify on the load balancer that every blue instance is in the pools, "
                                            "and Healthy", lambda obs, opts: _blue_exists(obs), subject="blue"),
    Step("autoscale_to_blue", "rollback", True, "enable blue's autoscale settings again, remove (or disable) green's",
         lambda obs, opts: obs["autoscale"]["green_total"] > 0
         and (obs["autoscale"]["green_enabled"] > 0 or not opts.get("keep_green")), _autoscale_to_blue),
    Step("green_leave_model", "rollback", True, "take the backend pools out of green's model (green kept)",
         lambda obs, opts: opts.get("keep_green") and _green_exists(obs) and not obs["green"]["out_model"],
         _left("green")),
    Step("green_leave", "rollback", True, "upgrade green's instances still in a pool onto its model (green kept)",
         lambda obs, opts: opts.get("keep_green") and _green_exists(obs) and obs["green"]["touching"] > 0,
         _no_members("green")),
    Step("delete_green", "rollback", True, "delete green",
         lambda obs, opts: not opts.get("keep_green") and _green_exists(obs),
         lambda obs, opts: _set(obs, "green", **set_state(None, [], {}, [])))
]
FINALIZE = [
    Step("delete_blue_autoscale", "finalize", True, "delete blue's (disabled) autoscale settings",
         lambda obs, opts: obs["autoscale"]["blue_total"] > 0,
         lambda obs, opts: obs["autoscale"].update(blue_total=0, blue_enabled=0), subject="blue"),
    Step("delete_blue", "finalize", True, "delete blue",
         lambda obs, opts: _blue_exists(obs),
         lambda obs, opts: _set(obs, "blue", **set_state(None, [], {}, [])), subject="blue"),
    # the cycle is over: green is just the set that serves (a stale tag would make it look staged later)
    Step("green_clear_tag", "finalize", True, "remove the tag %s from green" % TAG_BLUE,
         lambda obs, opts: _green_exists(obs) and not _blue_exists(obs) and obs["green"]["blue_tag"] is not None,
         lambda obs, opts: _set(obs, "green", blue_tag=None)),
]
# A failed stage only ever needs green gone (blue was never touched).
CLEANUP = [ROLLBACK[-1]]

SEQUENCES = {
    "staged": STAGE,
    "live": STAGE + SWAP_IN + SOAK + SWAP_OUT,
    "rolled_back": ROLLBACK,
    "finalized": FINALIZE,
}


def is_live(obs: Dict[str, Any]) -> bool:
    """Green serves and blue does not (the swap is done)."""
    green, blue = obs["green"], obs["blue"]
    return (green["exists"] and green["in_model"] and green["instances"] > 0 and green["members"] == green["instances"]
            and (not blue["exists"] or (blue["out_model"] and blue["touching"] == 0)))


def preconditions(state: str, obs: Dict[str, Any], opts: Dict[str, Any], blue_name: str,
                  green_name: str) -> List[str]:
    """Why ``state`` cannot be reached from ``obs`` (before any write); [] when it can."""
    errors = []
    blue, green = obs["blue"], obs["green"]
    if not blue["exists"] and not green["exists"]:
        return ["neither the blue scale set %s nor the green one %s exists." % (blue_name, green_name)]
    if green["exists"] and green["blue_tag"] is not None and green["blue_tag"].lower() != blue_name.lower():
        errors.append("scale set %s is the green copy of %s, not of %s." % (green_name, green["blue_tag"], blue_name))
    elif green["exists"] and green["blue_tag"] is None and not is_live(obs):
        errors.append("scale set %s exists and is not a green copy made by this module (no %s tag): choose "
                      "another green_name." % (green_name, TAG_BLUE))
    if state in ("staged", "live") and not blue["exists"] and not is_live(obs):
        errors.append("the blue scale set %s does not exist." % blue_name)
    if state in ("staged", "live") and not green["exists"] and opts.get("image") is None:
        errors.append("image is required to create the green scale set %s." % green_name)
    if state == "rolled_back" and not blue["exists"]:
        errors.append("the blue scale set %s no longer exists (finalized?): there is nothing to roll back to."
                      % blue_name)
    if state == "finalized" and blue["exists"] and not is_live(obs):
        errors.append("finalized deletes blue once green is live: run state=live first (green must be in the "
                      "backend pools and blue out of them).")
    if state in ("staged", "live", "rolled_back") and blue["exists"] and not opts.get("pools"):
        errors.append("no backend pool to swap: blue's model is in none, and backend_pool_ids is not set.")
    return errors


def plan(state: str, obs: Dict[str, Any], opts: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The phases (``kind``, ``steps``) a run would go through from ``obs``: a phase is listed when one of
    its writing steps is needed; its gates are listed with it."""
    obs = copy.deepcopy(obs)
    phases: List[Dict[str, Any]] = []
    for step in SEQUENCES[state]:
        if not step.needed(obs, opts):
            continue
        if not phases or phases[-1]["kind"] != step.kind:
            phases.append({"kind": step.kind, "steps": []})
        phases[-1]["steps"].append({"name": step.name, "description": step.description, "write": step.write})
        step.simulate(obs, opts)
    return [phase for phase in phases if any(s["write"] for s in phase["steps"]) or phase["kind"] == "soak"]


STEP_SECONDS = {
    "create_green": ("create",), "green_scale_out": ("create",), "green_clear_tag": ("autoscale",),
    "green_join_model": ("update",), "green_upgrade": ("upgrade",),
    "blue_scale_in": ("delete",), "blue_leave_model": ("update",), "blue_upgrade": ("upgrade",),
    "blue_deallocate": ("deallocate",), "blue_start": ("start",), "blue_join_model": ("update",),
    "blue_scale_out": ("create",), "blue_rejoin": ("upgrade",), "green_leave_model": ("update",),
    "green_leave": ("upgrade",), "delete_green": ("delete",), "delete_blue": ("delete",),
    "autoscale_to_green": ("autoscale",), "autoscale_to_blue": ("autoscale",), "delete_blue_autoscale": ("autoscale",),
}
HEALTH_GATES = ("green_healthy", "green_in_pool", "blue_in_pool")


def estimate_seconds(phases: List[Dict[str, Any]], settle: float, soak: float) -> float:
    """A rough duration of a plan from typical Azure durations, the health settle time and the soak."""
    total = 0.0
    for phase in phases:
        for step in phase["steps"]:
            total += sum(TYPICAL_SECONDS[kind] for kind in STEP_SECONDS.get(step["name"], ()))
            if step["name"] in HEALTH_GATES:
                total += settle
            if step["name"] == "soak":
                total += soak
    return total


def describe_plan(state: str, obs: Dict[str, Any], opts: Dict[str, Any],
                  scale_set: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The plan as the module returns it (the rollout report's shape, phases for batches)."""
    phases = plan(state, obs, opts)
    return {"batches": [{"index": index, "kind": phase["kind"], "instance_ids": [], "update_domains": [],
                         "fault_domains": [], "zones": [],
                         "steps": [{"name": s["name"], "description": s["description"]} for s in phase["steps"]]}
                        for index, phase in enumerate(phases)],
            "skipped": [],
            "estimated_seconds": estimate_seconds(phases, health_settle_seconds(scale_set), opts.get("soak") or 0)}


def validate(params: Dict[str, Any], obs: Dict[str, Any], blue: Optional[Dict[str, Any]],
             green: Optional[Dict[str, Any]], pools: List[str], opts: Dict[str, Any], blue_name: str,
             green_name: str) -> List[str]:
    """Every reason not to start, as sentences (before any write); [] when there is none."""
    errors = []
    for key in ("soak", "health_timeout", "wait_timeout"):
        if (params.get(key) or 0) < 0:
            errors.append("%s must be 0 or more." % key)
    try:
        Gate.of(params)
    except PlanError as exc:
        errors.append(str(exc))
    if params.get("blue_capacity") is not None and params["blue_capacity"] < 0:
        errors.append("blue_capacity must be 0 or more.")
    for pool in params.get("backend_pool_ids") or []:
        if resource_type(pool) != POOL_TYPE:
            errors.append("backend_pool_ids: %r is not the id of a load balancer backend pool." % pool)
    if green_name.lower() == blue_name.lower():
        return errors + ["green_name must differ from name."]     # the state read says nothing then
    errors = preconditions(params["state"], obs, dict(opts, image=params.get("image"), pools=pools), blue_name,
                           green_name) + errors
    if params["state"] in ("staged", "live") and green is None and blue is not None:
        if opts["capacity"] < 1:
            errors.append("capacity must be at least 1 (got %s)." % opts["capacity"])
        if not has_health_extension(blue):
            errors.append("blue has no Application Health extension: the health gates need one.")
        unknown = unknown_protected_settings(blue, params.get("protected_settings"))
        if unknown:
            errors.append("protected_settings names extensions blue's model does not have: %s." % ", ".join(unknown))
    if params["state"] in ("staged", "live") and blue is not None:
        errors += _window_errors(obs, blue, green, blue_name, green_name) + _secret_errors(params, blue, green, green_name)
    if green is not None and params.get("image") is not None and not same_image(params["image"], image_of(green)):
        errors.append("green %s exists with another image (%s): finalise or roll back first, or choose another "
                      "green_name." % (green_name, image_of(green)))
    return errors


def in_rollback_window(blue: Dict[str, Any], green: Optional[Dict[str, Any]], green_name: str) -> bool:
    """Whether ``green`` is the blue of an earlier cycle, kept for its rollback window: scaled in for it
    (capacity tag), or ``blue`` is its green copy (blue's blue tag names it)."""
    if green is None:
        return False
    return (TAG_CAPACITY in (green.get("tags") or {})
            or str((blue.get("tags") or {}).get(TAG_BLUE) or "").lower() == green_name.lower())


def _window_errors(obs, blue, green, blue_name, green_name):
    """A set waiting in a rollback window is never swapped in as a staged green. Refused rather than finalised
    on the way: finalising deletes the only way back, which the operator decides (state=finalized)."""
    if is_live(obs) or not in_rollback_window(blue, green, green_name):
        return []
    return ["scale set %s is the blue of the previous blue/green cycle, waiting in its rollback window (%s serves as "
            "its green): end that cycle first - finalize it (state=finalized, name=%s, green_name=%s: deletes %s) or "
            "roll it back (state=rolled_back, same names) - then start the new rollout."
            % (green_name, blue_name, green_name, blue_name, green_name)]


def password_required(blue: Dict[str, Any]) -> bool:
    """Whether a copy of blue's model needs ``adminPassword``: Windows, or Linux that signs in with a password
    (``disablePasswordAuthentication`` not true). Azure never returns the password, so it must be given."""
    os_profile = _profile(blue).get("osProfile") or {}
    if os_profile.get("windowsConfiguration") is not None:
        return True
    linux = os_profile.get("linuxConfiguration")
    return linux is not None and linux.get("disablePasswordAuthentication") is not True


def _secret_errors(params, blue, green, green_name):
    given = [key for key in ("admin_password", "custom_data", "protected_settings") if params.get(key)]
    if green is not None and given:
        return ["%s given, but green %s exists: Azure never returns them, so they are only used when green is "
                "created. Leave them out to go on with green as it is, or roll back (state=rolled_back: deletes "
                "green) and stage green again with them." % (", ".join(given), green_name)]
    if green is None and password_required(blue) and not params.get("admin_password"):
        return ["blue's model signs in with a password (linuxConfiguration.disablePasswordAuthentication is not "
                "true, or Windows) and Azure never returns it: give admin_password for green."]
    return []
