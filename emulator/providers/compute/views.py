"""ARM shapes of instances: VMSS VMs (Uniform), VMs (Flexible), their instance views, and the scale set's
instance view summary. Pure: everything comes in as arguments (records, models, health states, times).
"""
import copy
import re
from collections import Counter

from emulator.providers.compute import health as h
from emulator.providers.compute import model as m
from emulator.providers.compute.instances import UNIFORM_VM_TYPE, VM_TYPE

_PROVISIONING = {
    "Succeeded": ("ProvisioningState/succeeded", "Info", "Provisioning succeeded"),
    "Creating": ("ProvisioningState/creating", "Info", "Creating"),
    "Updating": ("ProvisioningState/updating", "Info", "Updating"),
    "Deleting": ("ProvisioningState/deleting", "Info", "Deleting"),
    "Failed": ("ProvisioningState/failed", "Error", "Provisioning failed"),
}
_POWER = {"running": "VM running", "starting": "VM starting", "stopping": "VM stopping", "stopped": "VM stopped",
          "deallocating": "VM deallocating", "deallocated": "VM deallocated"}
AGENT_VERSION = "2.12.0.2"


def status(code, level, display, time=None, message=None):
    out = {"code": code, "level": level, "displayStatus": display}
    if message is not None:
        out["message"] = message
    if time is not None:
        out["time"] = time
    return out


def provisioning_status(view, time=None):
    state = view.get("provisioningState") or "Succeeded"
    code, level, display = _PROVISIONING.get(state, _PROVISIONING["Succeeded"])
    error = view.get("error") if state == "Failed" else None
    if error:
        return status(f"{code}/{error['code']}", level, display, time, error.get("message"))
    return status(code, level, display, time)


def power_status(view):
    power = view.get("power") or "running"
    return status(f"PowerState/{power}", "Info", _POWER.get(power, "VM " + power))


# --- pieces of the VM document ------------------------------------------------------------------

def _rg_id(vmss_id):
    return vmss_id.split("/providers/")[0]


def os_disk_name(view, vmss_name):
    suffix = view["vmId"].replace("-", "")
    if view["mode"] == "Flexible":
        return f"{view['name']}_OsDisk_1_{suffix}"
    return f"{vmss_name}_{vmss_name}_{view['instanceId']}_OsDisk_1_{suffix}"


def storage_profile(vm_profile, view, vmss_doc):
    storage = copy.deepcopy((vm_profile or {}).get("storageProfile") or {})
    ref = storage.get("imageReference")
    if ref is not None and view.get("exactVersion"):
        ref["exactVersion"] = view["exactVersion"]
    os_disk = storage.setdefault("osDisk", {"createOption": "FromImage"})
    os_disk.setdefault("osType", "Windows" if m.is_windows(vm_profile) else "Linux")
    name = os_disk_name(view, vmss_doc["name"])
    os_disk["name"] = name
    managed = os_disk.setdefault("managedDisk", {})
    managed.setdefault("storageAccountType", "Standard_LRS")
    managed["id"] = f"{_rg_id(vmss_doc['id'])}/providers/Microsoft.Compute/disks/{name}"
    os_disk.setdefault("diskSizeGB", m.DEFAULT_OS_DISK_GB[os_disk["osType"]])
    storage.setdefault("dataDisks", [])
    return storage


def os_profile(vm_profile, view):
    source = (vm_profile or {}).get("osProfile")
    if source is None:
        return None
    out = {k: copy.deepcopy(v) for k, v in source.items() if k not in ("computerNamePrefix", "adminPassword",
                                                                        "customData")}
    out["computerName"] = view["computerName"]
    out.setdefault("secrets", [])
    out.setdefault("allowExtensionOperations", True)
    out.setdefault("requireGuestProvisionSignal", True)
    return dict(computerName=out.pop("computerName"), **out)


def extension_resources(vm_profile, view, vm_id):
    out = []
    for ext in m.extensions_of(vm_profile):
        p = {k: copy.deepcopy(v) for k, v in (ext.get("properties") or {}).items()
             if k not in ("protectedSettings", "provisionAfterExtensions")}
        p["provisioningState"] = _extension_state(ext, vm_profile, view)
        out.append({"name": ext.get("name"), "id": f"{vm_id}/extensions/{ext.get('name')}",
                    "type": "Microsoft.Compute/virtualMachines/extensions", "location": view["location"],
                    "properties": p})
    return out


def _failed_extension(vm_profile, view):
    """The extension a VMExtension* failure is pinned on: the first one of the model."""
    error = view.get("error")
    if view.get("provisioningState") != "Failed" or not error or not error["code"].startswith("VMExtension"):
        return None
    exts = m.extensions_of(vm_profile)
    return exts[0].get("name") if exts else None


def _extension_state(ext, vm_profile, view):
    if view.get("provisioningState") in ("Creating", "Updating", "Deleting"):
        return view["provisioningState"]
    return "Failed" if ext.get("name") == _failed_extension(vm_profile, view) else "Succeeded"


def _full_type(ext):
    p = ext.get("properties") or {}
    return f"{p.get('publisher')}.{p.get('type')}"


def _handler(ext):
    return {"type": _full_type(ext), "typeHandlerVersion": (ext.get("properties") or {}).get("typeHandlerVersion"),
            "status": status("ProvisioningState/succeeded", "Info", "Ready")}


def _extension_view(ext, vm_profile, view, time):
    p = ext.get("properties") or {}
    state = _extension_state(ext, vm_profile, view)
    if state == "Failed":
        st = status("ProvisioningState/failed/1", "Error", "Provisioning failed", time, view["error"]["message"])
    elif state in ("Creating", "Updating", "Deleting"):
        st = status("ProvisioningState/transitioning", "Info", "Transitioning", time)
    else:
        st = status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", time,
                    "Enable succeeded")
    return {"name": ext.get("name"), "type": _full_type(ext),
            "typeHandlerVersion": p.get("typeHandlerVersion"), "statuses": [st]}


# --- instance views -----------------------------------------------------------------------------

_WINDOWS_BUILDS = (("2016", "10.0.14393"), ("2019", "10.0.17763"), ("2022", "10.0.20348"), ("2025", "10.0.26100"))
_LINUX_RELEASE = re.compile(r"(\d{2})[._](\d{2})")


def os_version(vm_profile):
    """What the guest agent reports as osVersion: Windows' NT build (as in the spec's examples), a Linux
    release read off the image's offer / sku (22.04 when the image does not say, e.g. a gallery image)."""
    ref = m.image_reference(vm_profile)
    words = f"{ref.get('offer', '')} {ref.get('sku', '')}"
    if m.is_windows(vm_profile):
        build = next((b for year, b in _WINDOWS_BUILDS if year in words), "10.0.20348")
        return f"Microsoft Windows NT {build}.0"
    found = _LINUX_RELEASE.search(words)
    return f"{found.group(1)}.{found.group(2)}" if found else "22.04"


def instance_view(vmss_doc, view, model, health_state, now_iso):
    """VirtualMachineScaleSetVMInstanceView (Uniform) / VirtualMachineInstanceView (Flexible)."""
    vm_profile = (model or {}).get("profile") or {}
    changed = view.get("timeCreated")
    running = view.get("power") == "running" and view.get("provisioningState") not in ("Creating",)
    if running:
        agent_status = status("ProvisioningState/succeeded", "Info", "Ready", now_iso,
                              "GuestAgent is running and processing the extensions.")
    else:
        agent_status = status("ProvisioningState/Unavailable", "Warning", "Not Ready", now_iso,
                              "VM status blob is found but not yet populated.")
    exts = m.extensions_of(vm_profile)
    out = {
        "platformUpdateDomain": view.get("ud", 0),
        "platformFaultDomain": view.get("fd", 0),
        "computerName": view["computerName"],
        "osName": "Windows Server" if m.is_windows(vm_profile) else "ubuntu",
        "osVersion": os_version(vm_profile),
        "vmAgent": {"vmAgentVersion": AGENT_VERSION if running else "Unknown", "statuses": [agent_status],
                    "extensionHandlers": [_handler(e) for e in exts]},
        "disks": [{"name": os_disk_name(view, vmss_doc["name"]),
                   "statuses": [status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", changed)]}],
        "extensions": [_extension_view(e, vm_profile, view, now_iso) for e in exts],
        "statuses": [provisioning_status(view, now_iso), power_status(view)],
        "hyperVGeneration": "V2" if "gen2" in str(m.image_reference(vm_profile)).lower() else "V1",
    }
    if health_state:
        out["vmHealth"] = h.vm_health(health_state, now_iso)
    if view["mode"] == "Uniform" and view.get("power") != "deallocated":     # a deallocated VM has none (spec)
        out["placementGroupId"] = m.props(vmss_doc).get("uniqueId")
    return out


# --- documents ----------------------------------------------------------------------------------

def _add_resources(doc, vm_profile, view):
    """A Uniform VM's extensions as child resources; Azure leaves `resources` out when there are none
    (cli_vmss_create_and_modify#04, 2022). Flexible VMs keep `resources: []` (no recording shows one
    without extensions; the collection reads an absent list as "unknown")."""
    resources = extension_resources(vm_profile, view, view["id"])
    if resources:
        doc["resources"] = resources


def _zones(view):
    return [view["zone"]] if view.get("zone") else None


def vmss_vm(vmss_doc, view, model, latest, instance_view_body=None, expand_user_data=False):
    """A VirtualMachineScaleSetVM (Uniform)."""
    vm_profile = (model or {}).get("profile") or {}
    props = {
        "latestModelApplied": latest,
        "modelDefinitionApplied": "VirtualMachineScaleSet",
        "vmId": view["vmId"],
        "hardwareProfile": {},
        "storageProfile": storage_profile(vm_profile, view, vmss_doc),
        "osProfile": os_profile(vm_profile, view),
        "networkProfile": {"networkInterfaces": [
            {"id": f"{view['id']}/networkInterfaces/{nic.get('name')}"}
            for nic in (vm_profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []]},
        "networkProfileConfiguration": {"networkInterfaceConfigurations": copy.deepcopy(
            (vm_profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or [])},
        "provisioningState": view.get("provisioningState") or "Succeeded",
        "timeCreated": view["timeCreated"],
    }
    if vm_profile.get("diagnosticsProfile"):
        props["diagnosticsProfile"] = copy.deepcopy(vm_profile["diagnosticsProfile"])
    if view.get("protection"):
        props["protectionPolicy"] = dict(view["protection"])
    if expand_user_data and vm_profile.get("userData"):
        props["userData"] = vm_profile["userData"]
    if instance_view_body is not None:
        props["instanceView"] = instance_view_body
    props = {k: v for k, v in props.items() if v is not None}
    doc = {"name": view["name"], "id": view["id"], "type": UNIFORM_VM_TYPE,
           "location": view["location"], "instanceId": str(view["instanceId"]),
           "sku": dict((model or {}).get("sku") or {}), "etag": f'"{view.get("etag", 1)}"', "properties": props}
    _add_resources(doc, vm_profile, view)
    if vmss_doc.get("tags"):
        doc["tags"] = dict(vmss_doc["tags"])
    if _zones(view):
        doc["zones"] = _zones(view)
    if (model or {}).get("plan"):
        doc["plan"] = dict(model["plan"])
    return doc


def flexible_vm(vmss_doc, view, model, instance_view_body=None, expand_user_data=False):
    """A VirtualMachine created by a Flexible scale set."""
    vm_profile = (model or {}).get("profile") or {}
    network = vm_profile.get("networkProfile") or {}
    rg = _rg_id(vmss_doc["id"])
    props = {
        "vmId": view["vmId"],
        "hardwareProfile": {"vmSize": ((model or {}).get("sku") or {}).get("name")},
        "storageProfile": storage_profile(vm_profile, view, vmss_doc),
        "osProfile": os_profile(vm_profile, view),
        "networkProfile": {
            "networkApiVersion": network.get("networkApiVersion"),
            "networkInterfaceConfigurations": copy.deepcopy(network.get("networkInterfaceConfigurations") or []),
            "networkInterfaces": [
                {"id": f"{rg}/providers/Microsoft.Network/networkInterfaces/{view['name']}-{nic.get('name')}",
                 "properties": {"primary": bool((nic.get("properties") or {}).get("primary"))}}
                for nic in network.get("networkInterfaceConfigurations") or []]},
        "virtualMachineScaleSet": {"id": vmss_doc["id"]},
        "provisioningState": view.get("provisioningState") or "Succeeded",
        "timeCreated": view["timeCreated"],
    }
    props["networkProfile"] = {k: v for k, v in props["networkProfile"].items() if v is not None}
    if m.props(vmss_doc).get("platformFaultDomainCount", 1) > 1:
        props["platformFaultDomain"] = view.get("fd", 0)
    if vm_profile.get("priority") or view.get("priority") == "Spot":
        props["priority"] = view.get("priority") or vm_profile.get("priority")
        if props["priority"] == "Spot":
            for key in ("evictionPolicy", "billingProfile"):
                if vm_profile.get(key) is not None:
                    props[key] = copy.deepcopy(vm_profile[key])
    if vm_profile.get("diagnosticsProfile"):
        props["diagnosticsProfile"] = copy.deepcopy(vm_profile["diagnosticsProfile"])
    if expand_user_data and vm_profile.get("userData"):
        props["userData"] = vm_profile["userData"]
    if instance_view_body is not None:
        props["instanceView"] = instance_view_body
    props = {k: v for k, v in props.items() if v is not None}
    doc = {"name": view["name"], "id": view["id"], "type": VM_TYPE,
           "location": view["location"], "etag": f'"{view.get("etag", 1)}"', "properties": props,
           "resources": extension_resources(vm_profile, view, view["id"])}
    if vmss_doc.get("tags"):
        doc["tags"] = dict(vmss_doc["tags"])
    if _zones(view):
        doc["zones"] = _zones(view)
    return doc


def scale_set_instance_view(vmss_doc, views, models, orchestration, now_iso):
    """VirtualMachineScaleSetInstanceView: counts of instance statuses and extension statuses."""
    vm_counts = Counter()
    ext_counts = {}
    for view in views:
        vm_counts[provisioning_status(view)["code"]] += 1
        vm_profile = (models.get(view.get("model")) or {}).get("profile")
        for ext in m.extensions_of(vm_profile):
            code = _extension_view(ext, vm_profile, view, None)["statuses"][0]["code"]
            ext_counts.setdefault(ext.get("name"), Counter())[code] += 1
    state = m.props(vmss_doc).get("provisioningState", "Succeeded")
    out = {
        "virtualMachine": {"statusesSummary": [{"code": c, "count": n} for c, n in sorted(vm_counts.items())]},
        "statuses": [provisioning_status({"provisioningState": state}, now_iso)],
    }
    if ext_counts:      # left out when no instance has extensions (cli_vmss_create_and_modify#05)
        out["extensions"] = [{"name": name, "statusesSummary": [{"code": c, "count": n}
                                                                for c, n in sorted(cnt.items())]}
                             for name, cnt in ext_counts.items()]
    repairs = m.props(vmss_doc).get("automaticRepairsPolicy")
    if repairs is not None:
        default = "Running" if repairs.get("enabled") else "NotRunning"
        out["orchestrationServices"] = [{"serviceName": "AutomaticRepairs",
                                         "serviceState": (orchestration or {}).get("AutomaticRepairs", default)
                                         if repairs.get("enabled") else "NotRunning"}]
    return out
