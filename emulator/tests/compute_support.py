"""Shared helpers of the compute tests: scale-set bodies, waiting, control-API shortcuts."""
import copy
import time

# For a test that reads an operation in flight: 45-120 s operations last 1.8-4.8 s, so a busy machine still reads them
# (0.45-1.2 s at the suite's 0.01). Set just before the operation; the `clean` fixture restores the scale.
IN_FLIGHT = 0.04

HEALTH = {"name": "health", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
    "autoUpgradeMinorVersion": True, "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"}}}


def gallery_image(emu, version=None, rg="images", gallery="gal", image="web"):
    rid = (f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/"
           f"{gallery}/images/{image}")
    return {"id": rid + (f"/versions/{version}" if version else "")}


def body(emu, capacity=2, *, mode=None, health=False, grace=None, image=None, subnet=None, zones=None,
         upgrade="Manual", **props):
    """A Linux scale set; `health` adds the Application Health extension (gracePeriod `grace` seconds)."""
    ipc = {"name": "ipc", "properties": {"primary": True}}
    if subnet:
        ipc["properties"]["subnet"] = {"id": subnet}
    vm = {"storageProfile": {"imageReference": image or {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"}},
          "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Sup3r-secret!",
                        "customData": "I2Nsb3VkLWNvbmZpZw=="},
          "networkProfile": {"networkInterfaceConfigurations": [
              {"name": "nic", "properties": {"primary": True, "ipConfigurations": [ipc]}}]}}
    if health:
        ext = copy.deepcopy(HEALTH)
        if grace is not None:
            ext["properties"]["settings"]["gracePeriod"] = grace
        vm["extensionProfile"] = {"extensions": [ext]}
    out = {"location": emu.location, "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
           "properties": {"upgradePolicy": {"mode": upgrade}, "virtualMachineProfile": vm, **props}}
    if mode:
        out["properties"]["orchestrationMode"] = mode
        if mode == "Flexible":
            vm["networkProfile"]["networkApiVersion"] = "2020-11-01"
            out["properties"].setdefault("platformFaultDomainCount", 1)
    if zones:
        out["zones"] = zones
    return out


def vmss_path(emu, rg, name, suffix=""):
    return (f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}{suffix}")


def wait_until(check, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def instance_ids(compute, rg, name):
    return sorted((vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(rg, name)), key=int)


def statuses(vm_instance_view):
    return {s["code"].split("/")[0]: s["code"] for s in vm_instance_view["statuses"]}


def health_code(view):
    return (view.get("vmHealth") or {}).get("status", {}).get("code")
