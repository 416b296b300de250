# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale set's model for fleetops.vmss.scale_set: pure functions, no I/O, no Ansible.

Three views of one scale set:

* the module's options (snake_case, ``desired_options(params)``: only what the user set);
* the same options read back from the REST resource (``current_options(resource)``), so that both
  sides of a comparison have one shape and a diff speaks the user's vocabulary;
* the REST bodies Azure takes: ``create_body`` (PUT, everything the user set) and ``update_body``
  (PATCH, only what differs).

``validate`` checks Azure's rules on the *effective* model (what the user set, else what the scale
set has, else Azure's default) before anything is written, so an invalid combination fails with
every reason at once and no request.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, Dict, List, Optional, Tuple

from ._names import camel, to_camel, to_snake
from ._compare import DifferenceTracker, compare, duration_seconds, equal, find_named, get_path, prune

HEALTH_PUBLISHER = "Microsoft.ManagedServices"
HEALTH_TYPES = ("ApplicationHealthLinux", "ApplicationHealthWindows")
DEFAULT_HEALTH_EXTENSION = "HealthExtension"
DEFAULT_HEALTH_HANDLER_VERSION = "2.0"
# Flexible scale sets take NIC configurations only with this networkApiVersion (or later).
FLEXIBLE_NETWORK_API_VERSION = "2020-11-01"
# Azure's defaults, for checks on the effective policy (RollingUpgradePolicy in the REST reference).
ROLLING_DEFAULT_PERCENT = 20
REPAIR_GRACE_MIN, REPAIR_GRACE_MAX = 600, 5400  # PT10M .. PT90M

# Options that are the scale set's model (everything else is connection, state or waiting).
MODEL_OPTIONS = ("location", "sku", "zones", "platform_fault_domain_count", "single_placement_group",
                 "overprovision", "orchestration_mode", "image", "os_profile", "network_profile",
                 "application_health", "extensions", "upgrade_policy", "automatic_repairs_policy",
                 "scale_in_policy", "priority", "eviction_policy", "max_price", "priority_mix_policy", "tags")

# How each option path is compared (see _compare). Secrets are "skip": Azure never returns them.
RULES: Dict[str, str] = {
    "location": "location",
    "sku.name": "enum",
    "sku.tier": "enum",
    "zones": "set",
    "orchestration_mode": "enum",
    "image.id": "id",
    "image.publisher": "enum",
    "image.offer": "enum",
    "image.sku": "enum",
    "image.version": "enum",
    "os_profile.admin_password": "skip",
    "os_profile.custom_data": "skip",
    "os_profile.ssh_public_keys": "set",
    "network_profile.subnet_id": "id",
    "network_profile.load_balancer_backend_address_pool_ids": "ids",
    "network_profile.health_probe_id": "id",
    "application_health.name": "skip",
    "application_health.type": "enum",
    "application_health.protocol": "enum",
    "extensions": "named",
    "extensions[].publisher": "enum",
    "extensions[].type": "enum",
    "extensions[].settings": "exact",
    "extensions[].protected_settings": "skip",
    "upgrade_policy.mode": "enum",
    "upgrade_policy.rolling_upgrade_policy.pause_time_between_batches": "duration",
    "automatic_repairs_policy.grace_period": "duration",
    "automatic_repairs_policy.repair_action": "enum",
    "scale_in_policy.rules": "enum_list",
    "priority": "enum",
    "eviction_policy": "enum",
    "tags": "map",
}

SECRET_PATHS = (("os_profile", "admin_password"), ("os_profile", "custom_data"))

# Set at creation, never changed by Azure afterwards: (path, compare kind, why).
IMMUTABLE: Tuple[Tuple[Tuple[str, ...], Optional[str]], ...] = (
    (("location",), "location"),
    (("orchestration_mode",), "enum"),
    (("platform_fault_domain_count",), None),
    (("os_profile", "computer_name_prefix"), None),
    (("os_profile", "admin_username"), None),
    (("priority",), "enum"),
    (("eviction_policy",), "enum"),
)


def extension_options() -> Dict[str, Dict[str, Any]]:
    """The argument spec of an ``extensions`` item, shared by the modules that take extensions (scale_set,
    rollout): a fresh copy, as Ansible may change a spec it is given."""
    return dict(name=dict(type="str", required=True), publisher=dict(type="str"), type=dict(type="str"),
                type_handler_version=dict(type="str"), auto_upgrade_minor_version=dict(type="bool"),
                enable_automatic_upgrade=dict(type="bool"), force_update_tag=dict(type="str"),
                provision_after_extensions=dict(type="list", elements="str"), suppress_failures=dict(type="bool"),
                settings=dict(type="dict"), protected_settings=dict(type="dict", no_log=True))


def rules_for(purge_tags: bool) -> Dict[str, str]:
    rules = dict(RULES)
    rules["tags"] = "map_exact" if purge_tags else "map"
    return rules


# ---------------------------------------------------------------------------------------------
# desired: the options the user set

def desired_options(params: Dict[str, Any]) -> Dict[str, Any]:
    """The model options the user set, pruned of None, with the image in one shape."""
    desired = prune({key: copy.deepcopy(params.get(key)) for key in MODEL_OPTIONS})
    if "image" in desired:
        desired["image"] = image_option(desired["image"])
    if "zones" in desired:
        desired["zones"] = [str(zone) for zone in desired["zones"]]
    return desired


def image_option(image: Any) -> Dict[str, Any]:
    """``image`` as given (an ARM id, or a dict) -> ``{"id": ...}`` or a marketplace reference.

    A marketplace reference without ``version`` means ``latest``, as in the Azure CLI.
    """
    if isinstance(image, str):
        return {"id": image}
    image = {key: value for key, value in (image or {}).items() if value is not None}
    if "id" not in image and image:
        image.setdefault("version", "latest")
    return image


# ---------------------------------------------------------------------------------------------
# current: the REST resource read back as options

def _props(resource: Dict[str, Any]) -> Dict[str, Any]:
    return resource.get("properties") or {}


def vm_profile(resource: Dict[str, Any]) -> Dict[str, Any]:
    return _props(resource).get("virtualMachineProfile") or {}


def extensions_of(resource: Dict[str, Any]) -> List[Dict[str, Any]]:
    return ((vm_profile(resource).get("extensionProfile") or {}).get("extensions")) or []


def is_health_extension(ext: Dict[str, Any]) -> bool:
    props = ext.get("properties") or {}
    return (str(props.get("publisher", "")).lower() == HEALTH_PUBLISHER.lower()
            and str(props.get("type", "")).lower() in [t.lower() for t in HEALTH_TYPES])


def health_extension(resource: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    return next((ext for ext in extensions_of(resource) if is_health_extension(ext)), None)


def primary(items: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The item marked primary, else the first one (as Azure picks the primary NIC / IP config)."""
    items = items or []
    return next((item for item in items if (item.get("properties") or {}).get("primary")), items[0] if items else None)


def primary_ip_configuration(resource: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    nic = primary((vm_profile(resource).get("networkProfile") or {}).get("networkInterfaceConfigurations") or [])
    return primary(((nic or {}).get("properties") or {}).get("ipConfigurations") or []) if nic else None


def image_from_reference(ref: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    if not ref:
        return None
    ref_id = ref.get("id") or ref.get("sharedGalleryImageId") or ref.get("communityGalleryImageId")
    if ref_id:
        return {"id": ref_id}
    return {key: ref.get(key) for key in ("publisher", "offer", "sku", "version")}


def _snake_dict(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if obj is None:
        return None
    return {to_snake(key): (_snake_dict(value) if isinstance(value, dict) else value) for key, value in obj.items()}


def extension_option(ext: Dict[str, Any]) -> Dict[str, Any]:
    """A REST extension as an ``extensions`` item (settings kept as stored, read-only fields dropped)."""
    props = ext.get("properties") or {}
    out: Dict[str, Any] = {"name": ext.get("name")}
    for key, value in props.items():
        if key in ("provisioningState", "protectedSettings"):
            continue
        out[to_snake(key)] = value
    return out


def health_option(ext: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if ext is None:
        return None
    props = ext.get("properties") or {}
    settings = props.get("settings") or {}
    return {"name": ext.get("name"), "type": props.get("type"), "type_handler_version": props.get("typeHandlerVersion"),
            "protocol": settings.get("protocol"), "port": settings.get("port"),
            "request_path": settings.get("requestPath"), "interval_in_seconds": settings.get("intervalInSeconds"),
            "number_of_probes": settings.get("numberOfProbes"), "grace_period": settings.get("gracePeriod")}


def current_options(resource: Dict[str, Any]) -> Dict[str, Any]:
    """A scale set as read from Azure (REST dict, camelCase) in the shape of the module's options."""
    props = _props(resource)
    vm = vm_profile(resource)
    os_profile = vm.get("osProfile") or {}
    linux = os_profile.get("linuxConfiguration") or {}
    ipc = (primary_ip_configuration(resource) or {}).get("properties") or {}
    network = vm.get("networkProfile") or {}
    return {
        "location": resource.get("location"),
        "sku": dict(resource.get("sku") or {}),
        "zones": [str(zone) for zone in resource.get("zones") or []],
        "platform_fault_domain_count": props.get("platformFaultDomainCount"),
        "single_placement_group": props.get("singlePlacementGroup"),
        "overprovision": props.get("overprovision"),
        "orchestration_mode": props.get("orchestrationMode"),
        "image": image_from_reference((vm.get("storageProfile") or {}).get("imageReference") or {}),
        "os_profile": {
            "computer_name_prefix": os_profile.get("computerNamePrefix"),
            "admin_username": os_profile.get("adminUsername"),
            "ssh_public_keys": [key.get("keyData") for key in ((linux.get("ssh") or {}).get("publicKeys") or [])],
        },
        "network_profile": {
            "subnet_id": (ipc.get("subnet") or {}).get("id"),
            "load_balancer_backend_address_pool_ids": [pool.get("id") for pool in
                                                       ipc.get("loadBalancerBackendAddressPools") or []],
            "health_probe_id": (network.get("healthProbe") or {}).get("id"),
        },
        "application_health": health_option(health_extension(resource)),
        "extensions": [extension_option(ext) for ext in extensions_of(resource)],
        "upgrade_policy": _snake_dict(props.get("upgradePolicy")),
        "automatic_repairs_policy": _snake_dict(props.get("automaticRepairsPolicy")),
        "scale_in_policy": _snake_dict(props.get("scaleInPolicy")),
        "priority": vm.get("priority"),
        "eviction_policy": vm.get("evictionPolicy"),
        "max_price": (vm.get("billingProfile") or {}).get("maxPrice"),
        "priority_mix_policy": _snake_dict(props.get("priorityMixPolicy")),
        "tags": dict(resource.get("tags") or {}),
    }


# ---------------------------------------------------------------------------------------------
# validation: Azure's rules, before any write

def _effective(desired: Dict[str, Any], current: Dict[str, Any], *path: str, default: Any = None) -> Any:
    value = get_path(desired, path)
    if value is None:
        value = get_path(current, path)
    return default if value is None else value


def _has_health_extension(desired: Dict[str, Any], current: Dict[str, Any]) -> bool:
    if desired.get("application_health") or current.get("application_health"):
        return True
    listed = desired.get("extensions") or []
    return any(str(ext.get("publisher", "")).lower() == HEALTH_PUBLISHER.lower()
               and str(ext.get("type", "")).lower() in [t.lower() for t in HEALTH_TYPES] for ext in listed)


def validate(desired: Dict[str, Any], resource: Optional[Dict[str, Any]] = None) -> List[str]:
    """Every reason Azure would refuse this change, as sentences; [] when there is none.

    ``resource`` is the scale set as read (REST dict), None when it is to be created. The rules are
    documented in the module's DOCUMENTATION (notes) and in docs of each option.
    """
    current = current_options(resource) if resource else {}
    creating = resource is None
    errors: List[str] = []
    mode = _effective(desired, current, "orchestration_mode")
    flexible = str(mode or "").lower() == "flexible"

    if creating and not desired.get("orchestration_mode"):
        errors.append("orchestration_mode is required to create a scale set (Uniform or Flexible): it cannot "
                      "be changed afterwards, so there is no default.")
    if not creating:
        errors.extend(_immutable_errors(desired, current))

    errors.extend(_rolling_policy_errors(desired, current))
    errors.extend(_health_errors(desired, current, flexible))
    errors.extend(_repairs_errors(desired))
    errors.extend(_priority_errors(desired, current, creating, flexible))
    if flexible:
        if desired.get("overprovision") is True:
            errors.append("overprovision is not supported on Flexible scale sets.")
        if desired.get("single_placement_group") is True:
            errors.append("single_placement_group must be false on Flexible scale sets.")
    health = desired.get("application_health")
    if health and any(str(ext.get("type", "")).lower() in [t.lower() for t in HEALTH_TYPES]
                      and str(ext.get("publisher", "")).lower() == HEALTH_PUBLISHER.lower()
                      for ext in desired.get("extensions") or []):
        errors.append("the Application Health extension is set twice: use application_health, not an "
                      "extensions item of type ApplicationHealthLinux / ApplicationHealthWindows.")
    return errors


# What Azure means when a set-at-creation field is absent from the resource.
IMMUTABLE_DEFAULTS = {("priority",): "Regular"}


def _immutable_errors(desired: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    errors = []
    for path, kind in IMMUTABLE:
        want, have = get_path(desired, path), get_path(current, path, IMMUTABLE_DEFAULTS.get(path))
        if want is not None and have is not None and not equal(want, have, kind):
            errors.append("%s cannot be changed on an existing scale set (it is %r, not %r): Azure sets it at "
                          "creation only; delete and create the scale set to change it."
                          % (".".join(path), have, want))
    if current.get("single_placement_group") is False and desired.get("single_placement_group") is True:
        errors.append("single_placement_group cannot go from false to true (Azure allows true -> false only).")
    if desired.get("zones") is not None:
        removed = sorted({str(z) for z in current.get("zones") or []} - {str(z) for z in desired["zones"]})
        if removed:
            errors.append("zones cannot be removed from an existing scale set (zone(s) %s would be); Azure "
                          "allows adding zones only." % ", ".join(removed))
    return errors


def _rolling_policy_errors(desired: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    errors = []
    want = get_path(desired, ("upgrade_policy", "rolling_upgrade_policy")) or {}
    for key, low, high in (("max_batch_instance_percent", 5, 100), ("max_unhealthy_instance_percent", 5, 100),
                           ("max_unhealthy_upgraded_instance_percent", 0, 100)):
        value = want.get(key)
        if value is not None and not low <= value <= high:
            errors.append("upgrade_policy.rolling_upgrade_policy.%s must be between %s and %s (got %s)."
                          % (key, low, high, value))
    if want.get("max_batch_instance_percent") is not None or want.get("max_unhealthy_instance_percent") is not None:
        batch = _effective(desired, current, "upgrade_policy", "rolling_upgrade_policy",
                           "max_batch_instance_percent", default=ROLLING_DEFAULT_PERCENT)
        unhealthy = _effective(desired, current, "upgrade_policy", "rolling_upgrade_policy",
                               "max_unhealthy_instance_percent", default=ROLLING_DEFAULT_PERCENT)
        if batch > unhealthy:
            errors.append("upgrade_policy.rolling_upgrade_policy.max_batch_instance_percent (%s) cannot be above "
                          "max_unhealthy_instance_percent (%s%s)." % (
                              batch, unhealthy, "" if want.get("max_unhealthy_instance_percent") is not None
                              else ", the scale set's value or Azure's default"))
    pause = want.get("pause_time_between_batches")
    if pause is not None and duration_seconds(pause) is None:
        errors.append("upgrade_policy.rolling_upgrade_policy.pause_time_between_batches must be an ISO 8601 "
                      "duration such as PT30S or PT5M (got %r)." % pause)
    return errors


def _health_errors(desired: Dict[str, Any], current: Dict[str, Any], flexible: bool) -> List[str]:
    errors = []
    has_extension = _has_health_extension(desired, current)
    has_probe = bool(_effective(desired, current, "network_profile", "health_probe_id"))
    touched = (desired.get("application_health") or get_path(desired, ("network_profile", "health_probe_id"))
               or get_path(desired, ("upgrade_policy", "mode")) or desired.get("extensions"))
    if has_extension and has_probe and touched:
        errors.append("a scale set takes one health source: the Application Health extension "
                      "(application_health) or a load balancer probe (network_profile.health_probe_id), not both.")
    mode = str(_effective(desired, current, "upgrade_policy", "mode") or "").lower()
    if mode == "rolling" and touched:
        if flexible and not has_extension:
            errors.append("upgrade_policy.mode Rolling on a Flexible scale set requires the Application Health "
                          "extension (application_health); load balancer probes are not used by Flexible rolling "
                          "upgrades.")
        elif not flexible and not (has_extension or has_probe):
            errors.append("upgrade_policy.mode Rolling requires a health signal: the Application Health extension "
                          "(application_health) or a load balancer probe (network_profile.health_probe_id).")
    surge = _effective(desired, current, "upgrade_policy", "rolling_upgrade_policy", "max_surge")
    auto_os = _effective(desired, current, "upgrade_policy", "automatic_os_upgrade_policy", "enable_automatic_os_upgrade")
    if flexible and surge and auto_os and (get_path(desired, ("upgrade_policy",)) is not None):
        errors.append("upgrade_policy.rolling_upgrade_policy.max_surge cannot be used with automatic OS image "
                      "upgrades (automatic_os_upgrade_policy.enable_automatic_os_upgrade) on a Flexible scale set.")
    return errors


def _repairs_errors(desired: Dict[str, Any]) -> List[str]:
    grace = get_path(desired, ("automatic_repairs_policy", "grace_period"))
    if grace is None:
        return []
    seconds = duration_seconds(grace)
    if seconds is None or not REPAIR_GRACE_MIN <= seconds <= REPAIR_GRACE_MAX:
        return ["automatic_repairs_policy.grace_period must be an ISO 8601 duration between PT10M and PT90M "
                "(got %r)." % grace]
    return []


def _priority_errors(desired: Dict[str, Any], current: Dict[str, Any], creating: bool, flexible: bool) -> List[str]:
    errors = []
    priority = str(_effective(desired, current, "priority", default="Regular")).lower()
    spot = priority == "spot"
    if spot and creating and not desired.get("eviction_policy"):
        errors.append("priority Spot requires eviction_policy (Deallocate or Delete).")
    if desired.get("eviction_policy") is not None and not spot:
        errors.append("eviction_policy can only be set when priority is Spot.")
    price = desired.get("max_price")
    if price is not None:
        if price != -1 and not spot:
            errors.append("max_price can only be set when priority is Spot (or -1, no cap).")
        if price != -1 and price <= 0:
            errors.append("max_price must be -1 (pay up to the on-demand price) or greater than 0 (got %s)." % price)
    if desired.get("priority_mix_policy") is not None and not flexible:
        errors.append("priority_mix_policy is only supported on Flexible scale sets.")
    return errors


# ---------------------------------------------------------------------------------------------
# comparison

def differences(desired: Dict[str, Any], resource: Optional[Dict[str, Any]], purge_tags: bool = False) -> DifferenceTracker:
    """What would change: everything the user set when creating, else what differs from the resource."""
    current = current_options(resource) if resource else {}
    rules = rules_for(purge_tags)
    if resource is None:
        rules["tags"] = "map"  # a new scale set: each tag is a difference, shown one by one
    return compare(desired, current, rules)


# ---------------------------------------------------------------------------------------------
# REST bodies

IMAGE_REFERENCE_KEYS = ("id", "sharedGalleryImageId", "communityGalleryImageId", "publisher", "offer", "sku", "version")


def image_reference(image: Dict[str, Any]) -> Dict[str, Any]:
    """An ``image`` option as Azure's imageReference: shared and community gallery ids go in their own fields."""
    if image.get("id"):
        lowered = image["id"].lower()
        if lowered.startswith("/sharedgalleries/"):
            return {"sharedGalleryImageId": image["id"]}
        if lowered.startswith("/communitygalleries/"):
            return {"communityGalleryImageId": image["id"]}
        return {"id": image["id"]}
    return {key: image[key] for key in ("publisher", "offer", "sku", "version") if image.get(key) is not None}


def health_extension_body(option: Dict[str, Any], existing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The Application Health extension: ``existing`` (REST) updated with what the user set, or a new one."""
    ext = copy.deepcopy(existing) if existing else {
        "name": option.get("name") or DEFAULT_HEALTH_EXTENSION,
        "properties": {"publisher": HEALTH_PUBLISHER, "type": option.get("type") or HEALTH_TYPES[0],
                       "typeHandlerVersion": option.get("type_handler_version") or DEFAULT_HEALTH_HANDLER_VERSION,
                       "autoUpgradeMinorVersion": True, "settings": {}}}
    props = ext.setdefault("properties", {})
    props.pop("provisioningState", None)
    if existing:
        if option.get("type"):
            props["type"] = option["type"]
        if option.get("type_handler_version"):
            props["typeHandlerVersion"] = option["type_handler_version"]
    settings = dict(props.get("settings") or {})
    for key in ("protocol", "port", "request_path", "interval_in_seconds", "number_of_probes", "grace_period"):
        if option.get(key) is not None:
            settings[to_camel(key)] = option[key]
    props["settings"] = settings
    return ext


def extension_body(option: Dict[str, Any], existing: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """An ``extensions`` item as REST: ``existing`` updated with what the user set, or a new extension.

    ``settings`` and ``protected_settings`` are sent as given (their keys are the extension's own).
    """
    ext = copy.deepcopy(existing) if existing else {"name": option["name"], "properties": {}}
    props = ext.setdefault("properties", {})
    props.pop("provisioningState", None)
    for key, value in option.items():
        if key == "name" or value is None:
            continue
        props[to_camel(key)] = copy.deepcopy(value)
    return ext


def merged_extensions(resource: Optional[Dict[str, Any]], desired: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The whole extension list to send (arrays are replaced, not merged, by a PATCH): the current
    extensions, the ones the user set updated or added; extensions the user did not list are kept."""
    out = [copy.deepcopy(ext) for ext in (extensions_of(resource) if resource else [])]
    for ext in out:
        (ext.get("properties") or {}).pop("provisioningState", None)
    health = desired.get("application_health")
    if health:
        index = next((i for i, ext in enumerate(out) if is_health_extension(ext)), None)
        if index is None:
            out.append(health_extension_body(health))
        else:
            out[index] = health_extension_body(health, out[index])
    for option in desired.get("extensions") or []:
        found = find_named(out, option["name"])
        if found is None:
            out.append(extension_body(option))
        else:
            out[out.index(found)] = extension_body(option, found)
    return out


def ssh_public_keys_body(keys: List[str], admin_username: Optional[str]) -> List[Dict[str, str]]:
    path = "/home/%s/.ssh/authorized_keys" % (admin_username or "azureuser")
    return [{"path": path, "keyData": " ".join(str(key).split())} for key in keys]


def _ip_configuration_update(ipc: Dict[str, Any], network: Dict[str, Any]) -> None:
    props = ipc.setdefault("properties", {})
    if network.get("subnet_id") is not None:
        props["subnet"] = {"id": network["subnet_id"]}
    if network.get("load_balancer_backend_address_pool_ids") is not None:
        props["loadBalancerBackendAddressPools"] = [{"id": pool} for pool in
                                                    network["load_balancer_backend_address_pool_ids"]]


def new_network_profile(name: str, network: Dict[str, Any], flexible: bool) -> Dict[str, Any]:
    ipc = {"name": "%s-ipconfig" % name, "properties": {"primary": True}}
    _ip_configuration_update(ipc, network)
    profile: Dict[str, Any] = {"networkInterfaceConfigurations": [
        {"name": "%s-nic" % name, "properties": {"primary": True, "ipConfigurations": [ipc]}}]}
    if network.get("health_probe_id"):
        profile["healthProbe"] = {"id": network["health_probe_id"]}
    if flexible:
        profile["networkApiVersion"] = FLEXIBLE_NETWORK_API_VERSION
    return profile


def encode_custom_data(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _os_profile_body(os_profile: Dict[str, Any]) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    for key in ("computer_name_prefix", "admin_username", "admin_password"):
        if os_profile.get(key) is not None:
            body[to_camel(key)] = os_profile[key]
    if os_profile.get("custom_data") is not None:
        body["customData"] = encode_custom_data(os_profile["custom_data"])
    if os_profile.get("ssh_public_keys"):
        body["linuxConfiguration"] = {
            "disablePasswordAuthentication": os_profile.get("admin_password") is None,
            "ssh": {"publicKeys": ssh_public_keys_body(os_profile["ssh_public_keys"], os_profile.get("admin_username"))}}
    return body


def _policies(desired: Dict[str, Any]) -> Dict[str, Any]:
    props = {}
    for key in ("upgrade_policy", "automatic_repairs_policy", "scale_in_policy", "priority_mix_policy"):
        if desired.get(key) is not None:
            props[to_camel(key)] = camel(desired[key])
    return props


def create_body(name: str, desired: Dict[str, Any], location: str) -> Dict[str, Any]:
    """The PUT body that creates the scale set: every option the user set, nothing else (Azure fills
    its defaults), plus the primary NIC a scale set needs and the Flexible network API version."""
    flexible = str(desired.get("orchestration_mode", "")).lower() == "flexible"
    body: Dict[str, Any] = {"location": desired.get("location") or location}
    if desired.get("tags") is not None:
        body["tags"] = dict(desired["tags"])
    if desired.get("sku") is not None:
        body["sku"] = camel(desired["sku"])
    if desired.get("zones"):
        body["zones"] = list(desired["zones"])
    props: Dict[str, Any] = {}
    for key in ("orchestration_mode", "platform_fault_domain_count", "single_placement_group", "overprovision"):
        if desired.get(key) is not None:
            props[to_camel(key)] = desired[key]
    props.update(_policies(desired))
    vm: Dict[str, Any] = {}
    if desired.get("image"):
        vm["storageProfile"] = {"imageReference": image_reference(desired["image"])}
    if desired.get("os_profile"):
        vm["osProfile"] = _os_profile_body(desired["os_profile"])
    if vm or desired.get("network_profile"):
        vm["networkProfile"] = new_network_profile(name, desired.get("network_profile") or {}, flexible)
    extensions = merged_extensions(None, desired)
    if extensions:
        vm["extensionProfile"] = {"extensions": extensions}
    if desired.get("priority") is not None:
        vm["priority"] = desired["priority"]
    if desired.get("eviction_policy") is not None:
        vm["evictionPolicy"] = desired["eviction_policy"]
    if desired.get("max_price") is not None:
        vm["billingProfile"] = {"maxPrice": desired["max_price"]}
    if vm:
        props["virtualMachineProfile"] = vm
    body["properties"] = props
    return body


def update_body(tracker: DifferenceTracker, desired: Dict[str, Any], resource: Dict[str, Any],
                purge_tags: bool = False) -> Dict[str, Any]:
    """The PATCH body for the differences: only what changed.

    Objects are merged by Azure, so a changed policy is sent as the options the user set in it; arrays
    are replaced, so a changed extension list, NIC configuration or SSH key list is sent whole: the
    current one (read with the ETag the PATCH is conditioned on) with the user's changes applied.
    Options the user did not set are never sent; secrets are not sent on update (never compared).
    """
    body: Dict[str, Any] = {}
    props: Dict[str, Any] = {}
    vm: Dict[str, Any] = {}
    if tracker.touches("tags"):
        body["tags"] = dict(desired["tags"]) if purge_tags else dict(resource.get("tags") or {}, **desired["tags"])
    if tracker.touches("sku"):
        body["sku"] = camel(desired["sku"])
    if tracker.touches("zones"):
        body["zones"] = list(desired["zones"])
    for key in ("single_placement_group", "overprovision"):
        if tracker.touches(key):
            props[to_camel(key)] = desired[key]
    for key in ("upgrade_policy", "automatic_repairs_policy", "scale_in_policy", "priority_mix_policy"):
        if tracker.touches(key):
            props[to_camel(key)] = camel(desired[key])
    if tracker.touches("image"):
        # A PATCH merges objects (RFC 7386): when the kind of reference changes (marketplace <-> ID), the old
        # kind's fields are removed with explicit nulls, or the result would carry both.
        reference = image_reference(desired["image"])
        current_reference = (vm_profile(resource).get("storageProfile") or {}).get("imageReference") or {}
        for key in IMAGE_REFERENCE_KEYS:
            if current_reference.get(key) is not None and key not in reference:
                reference[key] = None
        vm["storageProfile"] = {"imageReference": reference}
    if tracker.touches("os_profile", "ssh_public_keys"):
        username = get_path(current_options(resource), ("os_profile", "admin_username"))
        vm["osProfile"] = {"linuxConfiguration": {"ssh": {"publicKeys": ssh_public_keys_body(
            desired["os_profile"]["ssh_public_keys"], username)}}}
    network = desired.get("network_profile") or {}
    if tracker.touches("network_profile", "subnet_id") or tracker.touches(
            "network_profile", "load_balancer_backend_address_pool_ids"):
        nics = copy.deepcopy((vm_profile(resource).get("networkProfile") or {}).get("networkInterfaceConfigurations")
                             or [])
        nic = primary(nics)
        ipc = primary(((nic or {}).get("properties") or {}).get("ipConfigurations") or []) if nic else None
        if ipc is not None:
            _ip_configuration_update(ipc, network)
            vm.setdefault("networkProfile", {})["networkInterfaceConfigurations"] = nics
    if tracker.touches("network_profile", "health_probe_id"):
        vm.setdefault("networkProfile", {})["healthProbe"] = {"id": network["health_probe_id"]}
    if tracker.touches("application_health") or tracker.touches("extensions"):
        vm["extensionProfile"] = {"extensions": merged_extensions(resource, desired)}
    if tracker.touches("max_price"):
        vm["billingProfile"] = {"maxPrice": desired["max_price"]}
    if vm:
        props["virtualMachineProfile"] = vm
    if props:
        body["properties"] = props
    return body
