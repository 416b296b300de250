# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault matrix, for one read path (scale_set_info) and one write path (scale_set), through the
emulator's control API: throttling, server errors, dropped connections, conflicts and a failed
long-running operation. Each is either retried to success or reported with ARM's code; never a traceback.
"""

from __future__ import annotations

import pytest

from conftest import put_resource_group

RG = "faults-rg"
NAME = "api"
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}


def scale_set_args(**extra):
    args = {"resource_group": RG, "name": NAME, "orchestration_mode": "Uniform", "wait_sleep": 0.2,
            "sku": {"name": "Standard_D2s_v3", "capacity": 2}, "image": IMAGE,
            "os_profile": {"computer_name_prefix": "api", "admin_username": "azureuser",
                           "admin_password": "Sup3r-secret-pw!"}}
    args.update(extra)
    return args


def statuses(control, since, operation_id):
    return [e["liveResponse"]["statusCode"] for e in control.traffic(since) if e.get("operation_id") == operation_id]


def mark(control):
    return max((e["seq"] for e in control.traffic()), default=0)


@pytest.fixture
def scale_set(emulator, azure, ansible):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    code, result = ansible.module("scale_set", scale_set_args())
    assert code == 0, result
    return result


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop"])
def test_read_path_retries_transient_faults_to_success(scale_set, ansible, control, kind):
    since = mark(control)
    control.add_fault(kind=kind, match={"operation_id": "VirtualMachineScaleSets_Get"}, count=2, retry_after_ms=20)
    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": NAME})
    assert code == 0, result
    assert [s["name"] for s in result["scale_sets"]] == [NAME]
    # a dropped connection leaves no answer in the log: only the successful GET is recorded
    expected = ["200"] if kind == "drop" else [kind, kind, "200"]
    assert statuses(control, since, "VirtualMachineScaleSets_Get") == expected


@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_write_path_retries_transient_faults_to_success(scale_set, ansible, control, kind):
    since = mark(control)
    control.add_fault(kind=kind, match={"method": "PATCH", "operation_id": "VirtualMachineScaleSets_Update"},
                      count=1, retry_after_ms=20)
    code, result = ansible.module("scale_set", scale_set_args(tags={"fault": kind}))
    assert code == 0, result
    assert result["changed"]
    assert statuses(control, since, "VirtualMachineScaleSets_Update") == [kind, "200"]


def test_read_path_reports_a_lasting_outage_with_the_arm_code(scale_set, ansible, control):
    control.add_fault(kind="500", match={"operation_id": "VirtualMachineScaleSets_Get"}, count=50, retry_after_ms=10)
    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": NAME})
    assert code != 0
    assert result["msg"].startswith("Failed to get scale set %s/%s: InternalServerError: " % (RG, NAME))
    assert "exception" not in result and "Traceback" not in result["msg"]


def test_write_path_reports_dropped_connections_clearly(scale_set, ansible, control):
    control.add_fault(kind="drop", match={"method": "PATCH"}, count=50)
    code, result = ansible.module("scale_set", scale_set_args(tags={"fault": "drop"}))
    assert code != 0
    assert result["msg"].startswith("Failed to update scale set %s/%s: " % (RG, NAME))
    assert "exception" not in result and "Traceback" not in result["msg"]


def test_write_path_reports_a_conflict_naming_it(scale_set, ansible, control):
    control.add_fault(kind="409", match={"method": "PATCH"}, count=50)
    code, result = ansible.module("scale_set", scale_set_args(tags={"fault": "409"}))
    assert code != 0
    assert "OperationNotAllowed" in result["msg"] and "another operation is in progress" in result["msg"]
    assert result["error"]["status"] == 409


def test_write_path_reports_a_failed_long_running_operation_with_its_code(scale_set, ansible, control):
    control.call("POST", "instance-failures", {"match": {"scale_set": NAME}, "code": "VMExtensionProvisioningError",
                                               "message": "Extension 'health' failed: HSM unreachable."})
    code, result = ansible.module("scale_set", scale_set_args(sku={"name": "Standard_D2s_v3", "capacity": 3}))
    assert code != 0
    assert "VMExtensionProvisioningError" in result["msg"], result["msg"]
    assert "exception" not in result
