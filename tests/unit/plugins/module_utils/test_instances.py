# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances: summaries from REST dicts, selection, the action plan and per-instance outcomes."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/api"
GALLERY = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/payments"
UNIFORM = {"id": VMSS, "sku": {"name": "Standard_D2s_v5"}, "properties": {"orchestrationMode": "Uniform"}}
FLEXIBLE = {"id": VMSS, "sku": {"name": "Standard_D2s_v5"}, "properties": {
    "orchestrationMode": "Flexible",
    "virtualMachineProfile": {"storageProfile": {"imageReference": {"id": GALLERY + "/versions/1.7.1"}}}}}


def status(code, message=None):
    out = {"code": code, "level": "Info"}
    if message:
        out["message"] = message
    return out


def uniform_vm(instance_id, latest=True, power="running", health="healthy", state="Succeeded", protection=None,
               error=None, zone="1"):
    statuses = [status("ProvisioningState/failed/%s" % error[0], error[1]) if error else
                status("ProvisioningState/succeeded"), status("PowerState/%s" % power)]
    view = {"platformUpdateDomain": int(instance_id) % 5, "platformFaultDomain": 0, "computerName": "api%06d" % int(instance_id),
            "statuses": statuses}
    if health:
        view["vmHealth"] = {"status": {"code": "HealthState/%s" % health}}
    props = {"latestModelApplied": latest, "provisioningState": state, "vmId": "vm-%s" % instance_id,
             "storageProfile": {"imageReference": {"id": GALLERY, "exactVersion": "1.7.0"}}, "instanceView": view}
    if protection:
        props["protectionPolicy"] = protection
    vm = {"name": "api_%s" % instance_id, "id": "%s/virtualMachines/%s" % (VMSS, instance_id), "instanceId": instance_id,
          "sku": {"name": "Standard_D2s_v5"}, "properties": props, "etag": '"1"'}
    if zone:
        vm["zones"] = [zone]
    return vm


def flexible_vm(name, version="1.7.1", size="Standard_D2s_v5"):
    return {"name": name, "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + name,
            "properties": {"virtualMachineScaleSet": {"id": VMSS}, "provisioningState": "Succeeded",
                           "hardwareProfile": {"vmSize": size}, "platformFaultDomain": 2,
                           "storageProfile": {"imageReference": {"id": GALLERY + "/versions/" + version}},
                           "instanceView": {"statuses": [status("PowerState/deallocated")]}}}


def test_uniform_summary():
    vm = uniform_vm("7", latest=False, health="unhealthy", protection={"protectFromScaleIn": True},
                    error=("VMExtensionProvisioningError", "Enable failed"), zone="2")
    assert instances.summary(vm, UNIFORM) == {
        "instance_id": "7", "name": "api_7", "id": VMSS + "/virtualMachines/7", "vm_id": "vm-7",
        "computer_name": "api000007", "zone": "2", "update_domain": 2, "fault_domain": 0,
        "latest_model_applied": False, "image": {"id": GALLERY, "exact_version": "1.7.0"}, "vm_size": "Standard_D2s_v5",
        "priority": None, "provisioning_state": "Succeeded", "power_state": "running", "health_state": "Unhealthy",
        "protection": {"protect_from_scale_in": True, "protect_from_scale_set_actions": False},
        "error": {"code": "VMExtensionProvisioningError", "message": "Enable failed"}, "extensions": None}


def test_flexible_summary_and_latest_model_by_image_and_size():
    summary = instances.summary(flexible_vm("api_1a2b3c4d"), FLEXIBLE)
    assert (summary["instance_id"], summary["fault_domain"], summary["power_state"], summary["health_state"],
            summary["latest_model_applied"], summary["zone"]) == ("api_1a2b3c4d", 2, "deallocated", None, True, None)
    assert instances.latest_model_applied(flexible_vm("x", version="1.7.0"), FLEXIBLE) is False
    assert instances.latest_model_applied(flexible_vm("x", size="Standard_D4s_v5"), FLEXIBLE) is False
    assert instances.count_not_on_latest_model([flexible_vm("a"), flexible_vm("b", "1.6.0")], FLEXIBLE) == 1


def test_without_instance_view():
    vm = uniform_vm("1")
    del vm["properties"]["instanceView"]
    summary = instances.summary(vm, UNIFORM)
    assert (summary["power_state"], summary["health_state"], summary["update_domain"], summary["error"]) == (
        None, None, None, None)


@pytest.mark.parametrize("ids, latest, health, expected", [
    (None, None, None, ["0", "3", "4", "9"]),
    (["*"], None, None, ["0", "3", "4", "9"]),
    (["9", "3", "3"], None, None, ["9", "3"]),
    (None, True, None, ["3", "9"]),
    (None, False, None, ["0", "4"]),
    (None, None, "Unhealthy", ["4", "9"]),
    (["4", "9", "0"], True, "unhealthy", ["9"]),
])
def test_select(ids, latest, health, expected):
    vms = [uniform_vm("0"), uniform_vm("3", latest=False), uniform_vm("4", health="unhealthy"),
           uniform_vm("9", latest=False, health="unhealthy")]
    chosen, unknown = instances.select(vms, UNIFORM, ids, latest, health)
    assert [vm["instanceId"] for vm in chosen] == expected and unknown == []


def test_select_reports_unknown_ids():
    assert instances.select([uniform_vm("0")], UNIFORM, ["0", "1", "2"])[1] == ["1", "2"]


def test_plan_skips_protected_busy_and_already_done():
    vms = [uniform_vm("0", latest=False), uniform_vm("1", latest=False, protection={"protectFromScaleSetActions": True}),
           uniform_vm("2", latest=True), uniform_vm("3", latest=False, state="Updating"),
           uniform_vm("4", latest=False, protection={"protectFromScaleIn": True})]
    plan = instances.plan("upgrade", vms, UNIFORM)
    assert [(p["instance_id"], p["outcome"]) for p in plan] == [
        ("0", "planned"), ("1", "skipped"), ("2", "unchanged"), ("3", "skipped"), ("4", "planned")]
    assert "protected from scale-set actions" in plan[1]["reason"]
    assert plan[2]["reason"] == "already on the latest model"


@pytest.mark.parametrize("action, power, outcome", [
    ("start", "running", "unchanged"), ("start", "deallocated", "planned"),
    ("deallocate", "deallocated", "unchanged"), ("power_off", "stopped", "unchanged"),
    ("power_off", "deallocated", "unchanged"), ("restart", "running", "planned"), ("reimage", "running", "planned"),
])
def test_plan_power_actions(action, power, outcome):
    assert instances.plan(action, [uniform_vm("0", power=power)], UNIFORM)[0]["outcome"] == outcome


def test_plan_protection_is_idempotent_and_keeps_what_is_not_set():
    protected = uniform_vm("0", protection={"protectFromScaleIn": True, "protectFromScaleSetActions": False})
    plain = uniform_vm("1")
    plan = instances.plan("protect", [protected, plain], UNIFORM, protect_from_scale_in=True)
    assert [p["outcome"] for p in plan] == ["unchanged", "planned"]
    assert instances.wanted_protection(protected, None, True) == {"protect_from_scale_in": True,
                                                                  "protect_from_scale_set_actions": True}
    # protection from scale-set actions does not stop a change of the protection itself
    guarded = uniform_vm("2", protection={"protectFromScaleSetActions": True})
    assert instances.plan("protect", [guarded], UNIFORM, protect_from_scale_set_actions=False)[0]["outcome"] == "planned"


def test_flexible_vms_have_no_protection_to_skip():
    plan = instances.plan("restart", [flexible_vm("a")], FLEXIBLE)
    assert plan[0]["outcome"] == "planned"


def test_settle_reports_each_instance():
    planned = instances.plan("upgrade", [uniform_vm("0", latest=False), uniform_vm("3", latest=False),
                                         uniform_vm("5", protection={"protectFromScaleSetActions": True})], UNIFORM)
    after = [uniform_vm("0"), uniform_vm("3", latest=False, error=("VMExtensionProvisioningError", "Enable failed")),
             uniform_vm("5")]
    error = {"code": "VMExtensionProvisioningError", "message": "Enable failed", "targets": ["3"]}
    settled = instances.settle(planned, "upgrade", after, UNIFORM, error)
    assert [(s["instance_id"], s["outcome"]) for s in settled] == [("0", "succeeded"), ("3", "failed"), ("5", "skipped")]
    assert settled[1]["error"] == {"code": "VMExtensionProvisioningError", "message": "Enable failed"}
    assert settled[0]["latest_model_applied"] is True and settled[0]["error"] is None


def test_settle_names_instances_from_the_operation_error():
    planned = instances.plan("restart", [uniform_vm("0"), uniform_vm("1")], UNIFORM)
    error = {"code": "OperationPreempted", "message": "preempted", "targets": ["1"]}
    settled = instances.settle(planned, "restart", [uniform_vm("0"), uniform_vm("1")], UNIFORM, error)
    assert [s["outcome"] for s in settled] == ["succeeded", "failed"]


def test_settle_delete():
    planned = instances.plan("delete", [uniform_vm("0"), uniform_vm("1")], UNIFORM)
    settled = instances.settle(planned, "delete", [uniform_vm("1")], UNIFORM,
                               {"code": "Conflict", "message": "busy", "targets": []})
    assert [(s["outcome"], (s["error"] or {}).get("code")) for s in settled] == [("succeeded", None), ("failed", "Conflict")]


def test_provisioned():
    assert instances.provisioned([uniform_vm("0"), uniform_vm("1")], 2)
    assert not instances.provisioned([uniform_vm("0")], 2)
    assert not instances.provisioned([uniform_vm("0"), uniform_vm("1", state="Creating")], 2)
    assert instances.provisioned([], None)


def test_flexible_filter():
    assert instances.flexible_filter(VMSS) == "'virtualMachineScaleSet/id' eq '%s'" % VMSS


# --- Flexible latest-ness: extension definitions (the VM's ``resources`` as Azure's VM GET/list returns them) --

HEALTH_MODEL = {"name": "HealthExtension", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
    "autoUpgradeMinorVersion": True, "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"},
    "protectedSettings": {"token": "never-returned"}}}


def flexible_with_extensions(*extensions):
    scale_set = dict(FLEXIBLE, properties=dict(FLEXIBLE["properties"]))
    scale_set["properties"]["virtualMachineProfile"] = dict(
        FLEXIBLE["properties"]["virtualMachineProfile"], extensionProfile={"extensions": list(extensions)})
    return scale_set


def vm_extension(vm_name, name="HealthExtension", **changes):
    """One item of a VM's ``resources`` as Azure returns it (no protectedSettings, provisioningState added)."""
    props = {"autoUpgradeMinorVersion": True, "provisioningState": "Succeeded", "publisher": "Microsoft.ManagedServices",
             "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
             "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"}}
    props.update(changes)
    return {"name": name, "type": "Microsoft.Compute/virtualMachines/extensions", "location": "westeurope",
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/%s/extensions/%s"
                  % (vm_name, name), "properties": props}


def with_resources(vm, *resources):
    return dict(vm, resources=list(resources))


def test_flexible_vm_with_the_models_extensions_is_latest():
    scale_set = flexible_with_extensions(HEALTH_MODEL)
    vm = with_resources(flexible_vm("a"), vm_extension("a"))
    assert instances.latest_model_applied(vm, scale_set) is True
    # an extension added on the VM alone is not the model's business
    assert instances.latest_model_applied(with_resources(flexible_vm("a"), vm_extension("a"),
                                                         vm_extension("a", "Custom", type="CustomScript")), scale_set)


@pytest.mark.parametrize("vm_resources", [
    [],                                                                         # the extension was added to the model
    [vm_extension("a", settings={"protocol": "http", "port": 8080, "requestPath": "/ready"})],   # settings changed
    [vm_extension("a", typeHandlerVersion="1.0")],                              # major version moved
    [vm_extension("a", type="ApplicationHealthWindows")],
    [vm_extension("a", publisher="Microsoft.Azure.Extensions")],
    [vm_extension("a", "OtherName")],
])
def test_an_extension_only_model_change_makes_a_flexible_vm_outdated(vm_resources):
    scale_set = flexible_with_extensions(HEALTH_MODEL)
    assert instances.latest_model_applied(with_resources(flexible_vm("a"), *vm_resources), scale_set) is False
    assert instances.plan("upgrade", [with_resources(flexible_vm("a"), *vm_resources)], scale_set)[0]["outcome"] == \
        "planned"


def test_handler_versions_compare_by_major_minor_or_major_with_auto_upgrade():
    auto = flexible_with_extensions(HEALTH_MODEL)
    pinned = flexible_with_extensions({"name": "HealthExtension", "properties": dict(
        HEALTH_MODEL["properties"], autoUpgradeMinorVersion=False)})
    minor_moved = with_resources(flexible_vm("a"), vm_extension("a", typeHandlerVersion="2.1"))
    patch_only = with_resources(flexible_vm("a"), vm_extension("a", typeHandlerVersion="2.0.7"))
    assert instances.latest_model_applied(minor_moved, auto) is True      # Azure may move the minor version itself
    assert instances.latest_model_applied(minor_moved, pinned) is False
    assert instances.latest_model_applied(patch_only, pinned) is True
    # names, publishers and types are case-insensitive in ARM
    shouting = with_resources(flexible_vm("a"), vm_extension("a", "HEALTHEXTENSION", publisher="microsoft.managedservices"))
    assert instances.latest_model_applied(shouting, auto) is True


def test_a_flexible_vm_reporting_no_resources_is_judged_on_image_and_size_only():
    scale_set = flexible_with_extensions(HEALTH_MODEL)
    assert "resources" not in flexible_vm("a")
    assert instances.latest_model_applied(flexible_vm("a"), scale_set) is True
    assert instances.latest_model_applied(flexible_vm("a", version="1.7.0"), scale_set) is False
    assert instances.extensions_applied(flexible_vm("a"), scale_set) is None


def test_protected_settings_are_never_compared():
    scale_set = flexible_with_extensions(HEALTH_MODEL)
    vm = with_resources(flexible_vm("a"), vm_extension("a"))
    assert "protectedSettings" not in vm["resources"][0]["properties"]
    assert instances.same_extension(HEALTH_MODEL, vm["resources"][0]) is True
    assert instances.latest_model_applied(vm, scale_set) is True


def test_uniform_keeps_azures_latest_model_applied_whatever_the_resources():
    vm = with_resources(uniform_vm("1", latest=True))
    assert instances.latest_model_applied(vm, dict(UNIFORM, properties={"orchestrationMode": "Uniform",
                                                                        "virtualMachineProfile": {"extensionProfile": {
                                                                            "extensions": [HEALTH_MODEL]}}})) is True


def test_flexible_instance_view_summary_from_the_vms():
    def vm(provisioning, ext_code):
        return {"properties": {"instanceView": {
            "statuses": [{"code": provisioning}, {"code": "PowerState/running"}],
            "extensions": [{"name": "HealthExtension", "statuses": [{"code": ext_code}]}]}}}
    view = instances.flexible_instance_view([vm("ProvisioningState/succeeded", "ProvisioningState/succeeded"),
                                             vm("ProvisioningState/updating", "ProvisioningState/transitioning"),
                                             vm("ProvisioningState/succeeded", "ProvisioningState/succeeded")])
    assert view["statuses_summary"] == [{"code": "ProvisioningState/succeeded", "count": 2},
                                        {"code": "ProvisioningState/updating", "count": 1}]
    assert view["extensions"] == [{"name": "HealthExtension", "statuses_summary": [
        {"code": "ProvisioningState/succeeded", "count": 2}, {"code": "ProvisioningState/transitioning", "count": 1}]}]
    assert (view["statuses"], view["orchestration_services"]) == (None, None)
    assert instances.flexible_instance_view([])["statuses_summary"] == []
