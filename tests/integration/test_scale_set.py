# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scale_set against the emulator: the playbook target for both orchestration modes, and an ETag conflict."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import arm_writes, last_seq, put_resource_group, require_success, seed_network

RG = "payments-prod"


@pytest.mark.parametrize("mode", ["Uniform", "Flexible"])
def test_scale_set_target(emulator, azure, ansible, control, mode):
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    put_resource_group(azure, RG, location)
    network = seed_network(azure, RG, location)
    extra = dict(network, rg=RG, vmss_name="api-%s" % mode.lower(), mode=mode, location=location,
                 traffic_start=last_seq(control))
    require_success(ansible.playbook("scale_set", extra, forked_modules=True))


def test_someone_else_changes_the_scale_set_between_read_and_write(emulator, azure, ansible, control):
    """The module's PATCH (If-Match: the ETag it read) is held in the emulator while the test updates the scale
    set directly; the PATCH then meets a newer ETag: 412, a clear failure, and nothing of the module's written."""
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    base = {"resource_group": RG, "name": "api", "wait_sleep": 0.2}
    create = dict(base, orchestration_mode="Uniform", sku={"name": "Standard_D2s_v3", "capacity": 2},
                  image={"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
                  os_profile={"computer_name_prefix": "api", "admin_username": "azureuser",
                              "admin_password": "Sup3r-secret-pw!"})
    code, created = ansible.module("scale_set", create)
    assert code == 0, created
    control.add_fault(kind="latency", match={"method": "PATCH", "operation_id": "VirtualMachineScaleSets_Update"},
                      count=1, latency_ms=5000)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(
        result=ansible.module("scale_set", dict(base, sku={"capacity": 3}))))
    worker.start()
    deadline = time.monotonic() + 120
    while control.call("GET", "faults")["value"] and time.monotonic() < deadline:  # the module's PATCH is held
        time.sleep(0.05)
    assert not control.call("GET", "faults")["value"], "the module never sent its PATCH"
    azure.client("compute").virtual_machine_scale_sets.begin_update(RG, "api", {"tags": {"changed": "behind"}}).result()
    worker.join(timeout=300)

    code, result = outcome["result"]
    assert code != 0
    assert result["msg"].startswith("Failed to update scale set %s/api: PreconditionFailed: " % RG)
    assert "was changed by someone else after this task read it" in result["msg"]
    assert result["error"]["status"] == 412
    now = azure.client("compute").virtual_machine_scale_sets.get(RG, "api")
    assert (now.sku.capacity, now.tags) == (2, {"changed": "behind"})


def test_capacity_left_to_autoscale_is_never_sent(emulator, azure, ansible, control):
    """Capacity changed by someone else (an autoscale setting) is left alone by a run that does not set it."""
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    options = {"resource_group": RG, "name": "auto", "orchestration_mode": "Flexible", "platform_fault_domain_count": 1,
               "sku": {"name": "Standard_D2s_v3"}, "image": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                             "sku": "server"},
               "os_profile": {"computer_name_prefix": "auto", "admin_username": "azureuser",
                              "admin_password": "Sup3r-secret-pw!"},
               "tags": {"team": "payments"}, "wait_sleep": 0.2}
    assert ansible.module("scale_set", options)[0] == 0
    azure.client("compute").virtual_machine_scale_sets.begin_update(RG, "auto", {"sku": {"capacity": 2}}).result()
    since = last_seq(control)
    code, result = ansible.module("scale_set", dict(options, tags={"team": "payments", "autoscaled": "yes"}))
    assert code == 0 and result["changes"] == ["tags.autoscaled"]
    [patch] = arm_writes(control, since)
    assert patch["liveRequest"]["body"] == {"tags": {"team": "payments", "autoscaled": "yes"}}
    assert result["scale_set"]["sku"]["capacity"] == 2
