"""Automatic instance repairs through the real SDK: each repair action after the grace period, the
orchestration service state (suspend / resume), protected instances, the events record."""
import time

import pytest
from azure.core.exceptions import HttpResponseError

from compute_support import body, health_code, instance_ids, statuses, wait_until

SCALE = 0.002   # the minimum grace period (PT10M) is 1.2 s here, a VM create 0.18 s


def repair_events(emu, since=0):
    return emu.control.call("GET", f"events?kind=repair&since={since}")["value"]


def mark(emu):
    found = emu.control.call("GET", "events")["value"]
    return found[-1]["seq"] if found else 0


@pytest.fixture
def fleet(clean):
    clean.control.set_config(time_scale=SCALE)
    clean.rg("rg")
    return clean, clean.compute()


def create(emu, compute, action=None, capacity=2):
    policy = {"enabled": True, "gracePeriod": "PT10M"}
    if action:
        policy["repairAction"] = action
    poller = compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", body(
        emu, capacity, health=True, overprovision=False, automaticRepairsPolicy=policy))
    try:
        poller.result()
    except HttpResponseError:
        pass
    return poller.status()


def service_state(compute):
    return compute.virtual_machine_scale_sets.get_instance_view("rg", "web").as_dict()["orchestrationServices"][0][
        "serviceState"]


@pytest.mark.parametrize("action", ["Replace", "Restart", "Reimage"])
def test_an_instance_that_stays_unhealthy_is_repaired(fleet, action):
    emu, compute = fleet
    born = time.time()      # before the create: a slow create answer (a busy machine) must not shift the bound
    create(emu, compute, None if action == "Replace" else action)     # Replace is the default
    seq = mark(emu)
    emu.control.add_health_rule(match={"instance_ids": ["1"]}, state="Unhealthy")
    wait_until(lambda: health_code(compute.virtual_machine_scale_set_vms.get_instance_view(
        "rg", "web", "1").as_dict()) == "HealthState/unhealthy")
    repaired = wait_until(lambda: repair_events(emu, seq), timeout=15)[0]
    assert (repaired["instance_id"], repaired["action"], repaired["health"]) == ("1", action, "Unhealthy")
    assert repaired["ts"] - born >= 600 * SCALE - 0.3            # not before the grace period (since the boot)
    if action == "Replace":                                       # a new instance (new id) on the current model
        assert repaired["new_instance_id"] == "2"
        wait_until(lambda: instance_ids(compute, "rg", "web") == ["0", "2"])
        assert compute.virtual_machine_scale_sets.get("rg", "web").sku.capacity == 2
    else:
        view = compute.virtual_machine_scale_set_vms.get_instance_view("rg", "web", "1").as_dict()
        assert statuses(view)["ProvisioningState"] in ("ProvisioningState/updating", "ProvisioningState/succeeded")
        assert "new_instance_id" not in repaired
        assert instance_ids(compute, "rg", "web") == ["0", "1"]
    assert all(e["instance_id"] != "0" for e in repair_events(emu, seq))      # the healthy one is left alone


def test_suspend_and_resume_automatic_repairs(fleet):
    emu, compute = fleet
    create(emu, compute, "Restart")
    assert service_state(compute) == "Running"
    compute.virtual_machine_scale_sets.begin_set_orchestration_service_state(
        "rg", "web", {"serviceName": "AutomaticRepairs", "action": "Suspend"}).result()
    assert service_state(compute) == "Suspended"
    seq = mark(emu)
    emu.control.add_health_rule(match={"instance_ids": ["0"]}, state="Unhealthy")
    time.sleep(600 * SCALE + 0.6)                                # past the grace period and a few looks
    assert repair_events(emu, seq) == []
    compute.virtual_machine_scale_sets.begin_set_orchestration_service_state(
        "rg", "web", {"serviceName": "AutomaticRepairs", "action": "Resume"}).result()
    assert service_state(compute) == "Running"
    assert wait_until(lambda: repair_events(emu, seq))[0]["instance_id"] == "0"


def test_protected_and_failed_instances_are_not_repaired(fleet):
    emu, compute = fleet
    emu.control.call("POST", "instance-failures", {"match": {"instance_ids": ["2"]},
                                                   "code": "VMExtensionProvisioningError"})
    assert create(emu, compute, "Restart", capacity=3) == "Failed"      # instance 2 failed to provision
    vm = compute.virtual_machine_scale_set_vms.get("rg", "web", "1").as_dict()
    vm["properties"]["protectionPolicy"] = {"protectFromScaleIn": True}
    compute.virtual_machine_scale_set_vms.begin_update("rg", "web", "1", vm).result()
    seq = mark(emu)
    emu.control.add_health_rule(state="Unhealthy")              # every instance
    repaired = wait_until(lambda: repair_events(emu, seq), timeout=15)
    time.sleep(0.5)
    assert {e["instance_id"] for e in repair_events(emu, seq)} == {"0"}
    assert repaired[0]["instance_id"] == "0"


def test_repairs_go_one_at_a_time_below_twenty_instances(fleet):
    emu, compute = fleet
    create(emu, compute, "Reimage", capacity=3)
    seq = mark(emu)
    emu.control.add_health_rule(state="Unhealthy")
    first = wait_until(lambda: repair_events(emu, seq), timeout=15)
    second = wait_until(lambda: repair_events(emu, first[0]["seq"]), timeout=15)[0]
    assert second["ts"] - first[0]["ts"] >= 120 * SCALE * 0.99    # after the first reimage (120 s) ended
