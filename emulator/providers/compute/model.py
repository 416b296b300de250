"""The scale-set model: normalisation, merge, validation, hashing, rendering. Pure functions, no I/O.

A scale set is stored as the ARM document a GET returns (secrets removed). What instances run is the
*model*: the virtual machine profile plus the sku size (capacity is not part of it) and digests of the
secrets Azure never echoes (adminPassword, customData, extension protectedSettings), so a changed password
still makes instances "not latest" without the emulator keeping or returning the password.
"""
import copy
import hashlib
import json
import math
import re

from emulator import validation
from emulator.arm import ArmError

VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
HEALTH_PUBLISHER = "microsoft.managedservices"
HEALTH_TYPES = ("applicationhealthlinux", "applicationhealthwindows")

# Fields a client sets; everything else in a body (provisioningState, uniqueId, ...) is read-only.
_TOP_LEVEL = ("location", "tags", "sku", "plan", "identity", "zones", "extendedLocation", "properties")
_READ_ONLY_PROPS = ("provisioningState", "uniqueId", "timeCreated")
_IMMUTABLE = ("orchestrationMode", "platformFaultDomainCount")   # omitted on PUT = unchanged

# Supported platformFaultDomainCount values: (mode, zonal) -> (allowed, default).
# learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-manage-fault-domains
FAULT_DOMAINS = {
    ("Uniform", True): ((1, 5), 1),
    ("Uniform", False): ((1, 2, 3, 4, 5), 5),
    ("Flexible", True): ((1,), 1),
    ("Flexible", False): ((1, 2, 3), 1),
}
UPDATE_DOMAINS = 5
MAX_CAPACITY = 1000
MAX_SINGLE_PLACEMENT_GROUP = 100
DEFAULT_OS_DISK_GB = {"Windows": 127, "Linux": 30}     # marketplace images' OS disk size
# What Azure fills into a rollingUpgradePolicy it is given (sdkpy_vmss_rolling_upgrades#03, api 2020-06-01).
ROLLING_DEFAULTS = {"maxBatchInstancePercent": 20, "maxUnhealthyInstancePercent": 20,
                    "maxUnhealthyUpgradedInstancePercent": 20, "pauseTimeBetweenBatches": "PT0S"}


def invalid(target, message=None, code="InvalidParameter", status=400):
    return ArmError(status, code, message or f"The value of parameter {target} is invalid.", target=target)


def missing(target):
    return invalid(target, f"Required parameter '{target}' is missing (null).")


def change_not_allowed(prop):
    return ArmError(400, "PropertyChangeNotAllowed", f"Changing property '{prop}' is not allowed.", target=prop)


# --- small readers ------------------------------------------------------------------------------

def props(doc):
    return doc.get("properties") or {}


def profile(doc):
    return props(doc).get("virtualMachineProfile")


def mode_of(doc):
    return props(doc).get("orchestrationMode") or "Uniform"


def capacity_of(doc):
    return int((doc.get("sku") or {}).get("capacity") or 0)


def extensions_of(vm_profile):
    return ((vm_profile or {}).get("extensionProfile") or {}).get("extensions") or []


def health_extension(vm_profile):
    """The Application Health extension of a profile, or None."""
    for ext in extensions_of(vm_profile):
        p = ext.get("properties") or {}
        if (p.get("publisher") or "").lower() == HEALTH_PUBLISHER and (p.get("type") or "").lower() in HEALTH_TYPES:
            return ext
    return None


def health_probe(vm_profile):
    return (((vm_profile or {}).get("networkProfile") or {}).get("healthProbe") or {}).get("id")


def image_reference(vm_profile):
    return (((vm_profile or {}).get("storageProfile") or {}).get("imageReference")) or {}


_GALLERY_IMAGE = re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/"
                            r"[^/]+/images/[^/]+)(?:/versions/([^/]+))?/?$", re.I)


def gallery_image(image_ref):
    """(image definition id, version or None) for a Compute Gallery reference, else None."""
    m = _GALLERY_IMAGE.match(image_ref.get("id") or "")
    return (m.group(1), m.group(2)) if m else None


def image_version(image_ref):
    """The version an image reference asks for ('latest' when it floats), or None for custom images."""
    gallery = gallery_image(image_ref)
    if gallery:
        return gallery[1] or "latest"
    return image_ref.get("version")


def is_windows(vm_profile):
    os_profile = (vm_profile or {}).get("osProfile") or {}
    if "windowsConfiguration" in os_profile:
        return True
    if "linuxConfiguration" in os_profile:
        return False
    ref = image_reference(vm_profile)
    words = " ".join(str(ref.get(k, "")) for k in ("publisher", "offer", "sku")).lower()
    if "windows" in words:
        return True
    os_type = ((((vm_profile or {}).get("storageProfile") or {}).get("osDisk")) or {}).get("osType")
    return os_type == "Windows"


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.I)


def parse_duration(value):
    """ISO 8601 duration ('PT10M') or plain seconds -> seconds; None when unparsable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    if value.strip().isdigit():
        return float(value)
    m = _DURATION.match(value.strip())
    if not m or value.strip().upper() in ("P", "PT"):
        return None
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


# --- secrets ------------------------------------------------------------------------------------

def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def secret_digest(value):
    """The digest a model keeps of a secret (what a health rule's protected_settings matcher compares)."""
    return _digest(value)


def strip_secrets(vm_profile):
    """(profile without secrets, {path: digest}) — Azure never echoes these back."""
    if not vm_profile:
        return vm_profile, {}
    clean = copy.deepcopy(vm_profile)
    digests = {}
    os_profile = clean.get("osProfile") or {}
    for key in ("adminPassword", "customData"):
        if key in os_profile:
            digests[f"osProfile.{key}"] = _digest(os_profile.pop(key))
    for ext in extensions_of(clean):
        p = ext.get("properties") or {}
        if "protectedSettings" in p:
            digests[f"extensions/{(ext.get('name') or '').lower()}/protectedSettings"] = _digest(
                p.pop("protectedSettings"))
    return clean, digests


def merge_secret_digests(old, new, vm_profile):
    """Secrets omitted on update keep their old value; an extension removed loses its settings."""
    names = {(e.get("name") or "").lower() for e in extensions_of(vm_profile)}
    merged = {k: v for k, v in (old or {}).items()
              if not k.startswith("extensions/") or k.split("/")[1] in names}
    merged.update(new)
    return merged


# --- request -> desired document ----------------------------------------------------------------

def client_fields(body):
    """Only what a client may set (read-only fields they echo back are dropped)."""
    body = body if isinstance(body, dict) else {}
    out = {k: copy.deepcopy(body[k]) for k in _TOP_LEVEL if k in body}
    p = out.get("properties")
    if isinstance(p, dict):
        for key in _READ_ONLY_PROPS:
            p.pop(key, None)
        vm = p.get("virtualMachineProfile")
        if isinstance(vm, dict):
            vm.pop("timeCreated", None)
    return out


def desired_from_put(current, body):
    """PUT replaces the document; immutable properties and capacity omitted keep their current value."""
    desired = client_fields(body)
    desired.setdefault("properties", {})
    if current:
        cur_props = props(current)
        for key in _IMMUTABLE:
            if key not in desired["properties"] and key in cur_props:
                desired["properties"][key] = cur_props[key]
        if "zones" not in desired and current.get("zones"):
            desired["zones"] = list(current["zones"])
        if "location" not in desired:
            desired["location"] = current.get("location")
        _keep_user_data(current, desired)
        sku = desired.get("sku")
        if isinstance(sku, dict) and "capacity" not in sku:
            sku["capacity"] = capacity_of(current)
        elif "sku" not in desired and current.get("sku"):
            desired["sku"] = dict(current["sku"])
    return desired


def _keep_user_data(current, desired):
    """userData is only returned with $expand=userData, so a GET-then-PUT omits it: it stays as it was."""
    old_vm, new_vm = profile(current) or {}, profile(desired)
    if isinstance(new_vm, dict) and "userData" in old_vm and "userData" not in new_vm:
        new_vm["userData"] = old_vm["userData"]


def desired_from_patch(current, body):
    """PATCH is a JSON merge of the update onto the current document; arrays are replaced, and so are
    tags (ARM replaces the whole tags object on PATCH)."""
    from emulator.arm import merge_patch
    update = client_fields(body)
    desired = client_fields(merge_patch(client_fields(current), update))
    if isinstance(update.get("tags"), dict):
        desired["tags"] = dict(update["tags"])
    return desired


# --- defaults Azure fills in --------------------------------------------------------------------

def apply_defaults(doc):
    """Fill the defaults Azure returns (idempotent: normalising twice changes nothing)."""
    p = doc.setdefault("properties", {})
    mode = p.setdefault("orchestrationMode", "Uniform")
    zonal = bool(doc.get("zones"))
    p.setdefault("platformFaultDomainCount", FAULT_DOMAINS[(mode, zonal)][1])
    p.setdefault("upgradePolicy", {"mode": "Manual"})
    p["upgradePolicy"].setdefault("mode", "Manual")
    if isinstance(p["upgradePolicy"].get("rollingUpgradePolicy"), dict):
        for key, value in ROLLING_DEFAULTS.items():
            p["upgradePolicy"]["rollingUpgradePolicy"].setdefault(key, value)
    if mode == "Uniform":
        p.setdefault("singlePlacementGroup", capacity_of(doc) <= MAX_SINGLE_PLACEMENT_GROUP)
        p.setdefault("overprovision", True)
        p.setdefault("doNotRunExtensionsOnOverprovisionedVMs", False)
    else:
        p.setdefault("singlePlacementGroup", False)
    if isinstance(p.get("automaticRepairsPolicy"), dict):
        p["automaticRepairsPolicy"].setdefault("repairAction", "Replace")
    if doc.get("sku") is not None:
        doc["sku"].setdefault("tier", "Standard")
        doc["sku"].setdefault("capacity", 0)
    vm = p.get("virtualMachineProfile")
    if vm:
        _profile_defaults(vm)
    return doc


def _profile_defaults(vm):
    """The model defaults Azure's answers show (conformance corpus: compute api 2020-12-01 to 2024-03-01;
    enableVMAgentPlatformUpdates from 2022-03-01; enableAcceleratedNetworking is no longer filled in 2022-24)."""
    storage = vm.get("storageProfile")
    if isinstance(storage, dict) and storage.get("imageReference") is not None:
        os_disk = storage.setdefault("osDisk", {})
        os_disk.setdefault("createOption", "FromImage")
        os_disk.setdefault("caching", "ReadWrite")
        if "vhdContainers" not in os_disk and "image" not in os_disk:
            os_disk.setdefault("managedDisk", {}).setdefault("storageAccountType", "Standard_LRS")
        if os_disk.get("createOption") == "FromImage":      # the image's OS and its disk size
            os_disk.setdefault("osType", "Windows" if is_windows(vm) else "Linux")
            os_disk.setdefault("diskSizeGB", DEFAULT_OS_DISK_GB[os_disk["osType"]])
    os_profile = vm.get("osProfile")
    if isinstance(os_profile, dict):
        os_profile.setdefault("secrets", [])
        os_profile.setdefault("allowExtensionOperations", True)
        os_profile.setdefault("requireGuestProvisionSignal", True)
        if is_windows(vm):
            win = os_profile.setdefault("windowsConfiguration", {})
            win.setdefault("provisionVMAgent", True)
            win.setdefault("enableAutomaticUpdates", True)
            win.setdefault("enableVMAgentPlatformUpdates", False)
        else:
            linux = os_profile.setdefault("linuxConfiguration", {})
            has_keys = bool(((linux.get("ssh") or {}).get("publicKeys")))
            linux.setdefault("disablePasswordAuthentication", has_keys and "adminPassword" not in os_profile)
            linux.setdefault("provisionVMAgent", True)
            linux.setdefault("enableVMAgentPlatformUpdates", False)
    for nic in ((vm.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []):
        nic_props = nic.setdefault("properties", {})
        nic_props.setdefault("dnsSettings", {"dnsServers": []})
        nic_props.setdefault("enableIPForwarding", False)
        for ipc in nic_props.get("ipConfigurations") or []:
            ipc.setdefault("properties", {}).setdefault("privateIPAddressVersion", "IPv4")


# --- validation ---------------------------------------------------------------------------------

def validate(desired, current=None):
    """Raise ArmError for what Azure refuses before any write. `current` is None on create."""
    p = props(desired)
    if not desired.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    if current and current.get("location", "").replace(" ", "").lower() != \
            str(desired["location"]).replace(" ", "").lower():
        raise ArmError(409, "InvalidResourceLocation",
                       f"The resource '{current['name']}' already exists in location '{current['location']}' in "
                       f"resource group. A resource with the same name cannot be created in location "
                       f"'{desired['location']}'. Please select a new resource name.")
    _validate_immutables(desired, current)
    if p.get("orchestrationMode") == "Uniform" and not p.get("virtualMachineProfile"):
        raise missing("virtualMachineProfile")
    _validate_placement(desired, current)
    _validate_capacity(desired)
    _validate_flexible(desired)
    _validate_policies(desired)
    _validate_priority(desired)
    _validate_inputs(desired)


def _validate_inputs(desired):
    """Size, image reference and admin password as Compute refuses them (emulator/validation.py)."""
    vm = profile(desired) or {}
    size = (desired.get("sku") or {}).get("name")
    mix = props(desired).get("skuProfile")
    if size == "Mix" and mix:                   # instance mix: the sizes are skuProfile's
        for i, entry in enumerate(mix.get("vmSizes") or []):
            validation.check_vm_size((entry or {}).get("name"), desired.get("location"),
                                     target=f"skuProfile.vmSizes[{i}].name")
    elif size is not None:
        validation.check_vm_size(size, desired.get("location"))
    validation.check_image_reference(image_reference(vm))
    password = (vm.get("osProfile") or {}).get("adminPassword")
    if password is not None:
        validation.check_password(password, is_windows(vm))


def _validate_immutables(desired, current):
    p = props(desired)
    if p.get("orchestrationMode", "Uniform") not in ("Uniform", "Flexible"):
        raise invalid("orchestrationMode")
    if not current:
        return
    cur = props(current)
    for key in _IMMUTABLE:
        if key in p and p[key] != cur.get(key):
            raise change_not_allowed(key)
    removed = {z.lower() for z in current.get("zones") or []} - {str(z).lower() for z in desired.get("zones") or []}
    if removed:
        raise change_not_allowed("zones")
    if cur.get("singlePlacementGroup") is False and p.get("singlePlacementGroup") is True:
        raise change_not_allowed("singlePlacementGroup")


def _validate_placement(desired, current):
    p = props(desired)
    zones = desired.get("zones") or []
    if not isinstance(zones, list) or any(str(z) not in ("1", "2", "3") for z in zones):
        raise invalid("zones", "The zones property contains an invalid zone; valid zones are '1', '2' and '3'.")
    if p.get("zoneBalance") is not None and len(zones) < 2:
        raise invalid("zoneBalance", "zoneBalance can only be set if the zones property of the scale set "
                                     "contains more than one zone.")
    pfd = p.get("platformFaultDomainCount")
    if pfd is not None:
        allowed, _ = FAULT_DOMAINS[(p.get("orchestrationMode") or "Uniform", bool(zones))]
        if pfd not in allowed:
            raise invalid("platformFaultDomainCount",
                          f"The value {pfd} of parameter platformFaultDomainCount is invalid. Allowed values for "
                          f"this scale set are {', '.join(map(str, allowed))}.")


def _validate_capacity(desired):
    sku = desired.get("sku") or {}
    cap = sku.get("capacity", 0)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise invalid("sku.capacity")
    if cap > MAX_CAPACITY:
        raise invalid("sku.capacity", f"The capacity {cap} exceeds the maximum of {MAX_CAPACITY} virtual "
                                      "machines in a scale set.")
    if props(desired).get("singlePlacementGroup") is True and cap > MAX_SINGLE_PLACEMENT_GROUP:
        raise invalid("sku.capacity", f"The capacity {cap} exceeds the maximum of {MAX_SINGLE_PLACEMENT_GROUP} "
                                      "virtual machines of a scale set with singlePlacementGroup true.")
    if cap and not profile(desired):
        raise invalid("sku.capacity", "A scale set without virtualMachineProfile must have capacity 0.")


def _validate_flexible(desired):
    p = props(desired)
    if p.get("orchestrationMode") != "Flexible":
        if p.get("priorityMixPolicy") is not None:
            raise invalid("priorityMixPolicy", "priorityMixPolicy is only supported for Virtual Machine Scale Sets "
                                               "with Flexible orchestration mode.")
        return
    if p.get("overprovision") is True:
        raise invalid("overprovision", "Overprovisioning is not supported for Virtual Machine Scale Sets with "
                                       "Flexible orchestration mode.")
    if p.get("singlePlacementGroup") is True:
        raise invalid("singlePlacementGroup", "singlePlacementGroup must be false for Virtual Machine Scale Sets "
                                              "with Flexible orchestration mode.")


def _validate_policies(desired):
    p = props(desired)
    upgrade = p.get("upgradePolicy") or {}
    vm = profile(desired)
    has_health = bool(health_extension(vm) or health_probe(vm))
    if upgrade.get("mode") == "Rolling":
        if not has_health:
            raise ArmError(400, "BadRequest", "Rolling Upgrade mode is not supported for this Virtual Machine Scale "
                                              "Set because a health probe or health extension was not provided.")
        pause = (upgrade.get("rollingUpgradePolicy") or {}).get("pauseTimeBetweenBatches")
        if pause is not None and parse_duration(pause) is None:
            raise invalid("upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches",
                          "The time duration should be specified in ISO 8601 format.")
    repairs = p.get("automaticRepairsPolicy") or {}
    if repairs.get("enabled") and repairs.get("gracePeriod") is not None:
        grace = parse_duration(repairs["gracePeriod"])
        if grace is None or not 600 <= grace <= 5400:
            raise invalid("automaticRepairsPolicy.gracePeriod",
                          "The grace period must be an ISO 8601 duration between PT10M and PT90M.")


def _validate_priority(desired):
    vm = profile(desired) or {}
    spot = vm.get("priority") == "Spot"
    if vm.get("evictionPolicy") is not None and not spot:
        raise invalid("evictionPolicy", "evictionPolicy can only be set when priority is Spot.")
    billing = vm.get("billingProfile") or {}
    if billing.get("maxPrice") not in (None, -1):      # -1 means "no cap", harmless on Regular VMs
        if not spot:
            raise invalid("billingProfile.maxPrice", "maxPrice can only be set when priority is Spot.")
        price = billing["maxPrice"]
        if price is not None and price != -1 and not (isinstance(price, (int, float)) and price > 0):
            raise invalid("billingProfile.maxPrice", "maxPrice must be -1 or greater than 0.")
    mix = props(desired).get("priorityMixPolicy") or {}
    pct = mix.get("regularPriorityPercentageAboveBase")
    if pct is not None and not 0 <= pct <= 100:
        raise invalid("priorityMixPolicy.regularPriorityPercentageAboveBase")
    base = mix.get("baseRegularPriorityCount")
    if base is not None and base < 0:
        raise invalid("priorityMixPolicy.baseRegularPriorityCount")


# --- the model instances run --------------------------------------------------------------------

def model_of(doc, secret_digests):
    """What an instance runs: profile + vm size + plan + secret digests (capacity excluded)."""
    vm = copy.deepcopy(profile(doc) or {})
    vm.pop("timeCreated", None)
    sku = doc.get("sku") or {}
    return {"profile": vm, "sku": {k: sku[k] for k in ("name", "tier") if k in sku},
            "plan": doc.get("plan"), "secrets": dict(sorted((secret_digests or {}).items()))}


def model_hash(model):
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:20]


# --- rendering ----------------------------------------------------------------------------------

def render(doc, expand=None):
    """The GET body: userData only with $expand=userData (secrets are never stored)."""
    out = copy.deepcopy(doc)
    if (expand or "").lower() != "userdata":
        vm = props(out).get("virtualMachineProfile")
        if vm:
            vm.pop("userData", None)
    return out


def next_etag(doc):
    """Compute's ETags are quoted integers that grow with every update ("1", "2", ...)."""
    try:
        return f'"{int(str(doc.get("etag", "0")).strip(chr(34))) + 1}"'
    except ValueError:
        return '"1"'


# --- priority mix (Flexible) --------------------------------------------------------------------

def regular_needed(total, base, percent_above_base):
    """How many of `total` VMs must be Regular priority under a priorityMixPolicy."""
    base = base or 0
    if total <= base:
        return total
    return base + math.ceil((total - base) * (100 if percent_above_base is None else percent_above_base) / 100)
