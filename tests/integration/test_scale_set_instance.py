# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set_instance and scale_set_instance_info against the emulator, both orchestration modes, and an
instance whose upgrade fails (emulator control API: instance-failures)."""

from __future__ import annotations

import pytest

from conftest import arm_writes, last_seq, put_resource_group, register_feature, require_success

RG = "payments-prod"
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}


@pytest.mark.parametrize("mode", ["Uniform", "Flexible"])
def test_scale_set_instance_target(emulator, azure, ansible, control, mode):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    if mode == "Flexible":
        register_feature(azure)  # the target upgrades Flexible VMs to a new image (a preview behind the feature)
    require_success(ansible.playbook("scale_set_instance", {
        "rg": RG, "vmss_name": "web-%s" % mode.lower(), "mode": mode, "traffic_start": last_seq(control)}, forked_modules=True))


@pytest.mark.parametrize("mode", ["Uniform", "Flexible"])
def test_failed_instance_upgrade_is_reported_per_instance(emulator, azure, ansible, control, mode):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    if mode == "Flexible":
        register_feature(azure)
    base = {"resource_group": RG, "name": "api", "wait_sleep": 0.2}
    code, created = ansible.module("scale_set", dict(
        base, orchestration_mode=mode, platform_fault_domain_count=1, sku={"name": "Standard_D2s_v3", "capacity": 3},
        image=dict(IMAGE, version="1.0.0"), upgrade_policy={"mode": "Manual"},
        os_profile={"computer_name_prefix": "api", "admin_username": "azureuser", "admin_password": "Sup3r-secret-pw!"},
        **({"overprovision": False} if mode == "Uniform" else {})))
    assert code == 0, created
    code, fleet = ansible.module("scale_set_instance_info", {"resource_group": RG, "name": "api"})
    ids = [instance["instance_id"] for instance in fleet["instances"]]
    control.call("POST", "instance-failures", {"match": {"scale_set": "api", "instance_ids": [ids[1]]},
                                               "code": "VMExtensionProvisioningError",
                                               "message": "VM has reported a failure when processing extension "
                                                          "'HealthExtension'."})
    assert ansible.module("scale_set", dict(base, image=dict(IMAGE, version="1.1.0")))[0] == 0
    since = last_seq(control)

    code, result = ansible.module("scale_set_instance", dict(base, instance_ids=["*"], action="upgrade"))

    assert code != 0 and result["changed"] is True
    assert result["msg"] == ("Failed to upgrade 1 of 3 instances of scale set %s/api: VMExtensionProvisioningError: "
                             "VM has reported a failure when processing extension 'HealthExtension'." % RG)
    outcomes = {entry["instance_id"]: (entry["outcome"], (entry["error"] or {}).get("code")) for entry in result["instances"]}
    assert outcomes == {ids[0]: ("succeeded", None), ids[1]: ("failed", "VMExtensionProvisioningError"),
                        ids[2]: ("succeeded", None)}
    assert result["summary"] == {"succeeded": 2, "failed": 1}
    [upgrade] = arm_writes(control, since)  # one batch call for the three instances
    assert upgrade["operation_id"] == "VirtualMachineScaleSets_UpdateInstances"
    assert sorted(upgrade["liveRequest"]["body"]["instanceIds"]) == sorted(ids)
