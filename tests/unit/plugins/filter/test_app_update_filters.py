# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app_update role's filters: the rollout's planner and gates over the instances as inventory hosts."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.filter.app_update import FilterModule, app_update_gate, app_update_plan

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/api"


def instance(instance_id, ud, health="Healthy", power="running", protected=False):
    return {"instance_id": str(instance_id), "id": "%s/virtualMachines/%s" % (VMSS, instance_id), "update_domain": ud,
            "fault_domain": 0, "zone": None, "health_state": health, "power_state": power,
            "protection": {"protect_from_scale_in": protected, "protect_from_scale_set_actions": False}}


def hosts(*ids):
    return [{"inventory_hostname": "api_%s" % i, "id": ("%s/virtualMachines/%s" % (VMSS, i)).upper()} for i in ids]


def test_plan_by_update_domain_maps_instances_to_hosts_skips_stopped_ones_and_keeps_protection():
    fleet = [instance(0, 0), instance(1, 1, protected=True), instance(2, 0), instance(3, 1, power="deallocated"),
             instance(4, 2)]
    plan = app_update_plan(fleet, hosts(0, 1, 2, 3, 4), batch_by="update_domain", batch_size=None)
    assert [b["hosts"] for b in plan["batches"]] == [["api_0", "api_2"], ["api_1"], ["api_4"]]
    assert [b["update_domains"] for b in plan["batches"]] == [[0], [1], [2]]
    assert plan["serial"] == [2, 1, 1] and plan["hosts"] == ["api_0", "api_2", "api_1", "api_4"]
    assert [b["protect"] for b in plan["batches"]] == [["0", "2"], [], ["4"]]   # 1 was protected already
    assert plan["skipped"] == [{"instance_id": "3", "reason": "power state deallocated"}]
    assert plan["precheck"] is None


def test_plan_by_percent_of_the_whole_set_with_a_canary_and_the_precheck():
    fleet = [instance(i, i % 3) for i in range(10)]
    plan = app_update_plan(fleet, hosts(*range(10)), batch_by="percent", batch_size=30, canary=1)
    assert plan["serial"] == [1, 3, 3, 3] and plan["batches"][0]["kind"] == "canary"
    sick = [instance(i, 0, health="Unhealthy" if i < 3 else "Healthy") for i in range(10)]
    assert "3 of 10 instances (30%) are already unhealthy" in app_update_plan(sick, hosts(*range(10)))["precheck"]


def test_plan_refuses_bad_options_and_instances_the_inventory_does_not_have():
    with pytest.raises(AnsibleFilterError, match="batch_by=percent needs batch_size"):
        app_update_plan([instance(0, 0)], hosts(0), batch_by="percent", batch_size=0)
    with pytest.raises(AnsibleFilterError, match=r"instance\(s\) 1 of the scale set are not hosts of the inventory"):
        app_update_plan([instance(0, 0), instance(1, 0)], hosts(0))
    with pytest.raises(AnsibleFilterError, match="expects the instances"):
        app_update_plan("nope", hosts(0))


def test_gate_is_the_rollout_gate():
    fleet = [instance(0, 0), instance(1, 0, health="Initializing"), instance(2, 1), instance(3, 1)]
    assert app_update_gate(fleet, ["0", "1"], ["0", "1"])["state"] == "waiting"
    timed_out = app_update_gate(fleet, ["0", "1"], ["0", "1"], 50, 50, at_timeout=True)
    assert timed_out["state"] == "passed" and "within" in timed_out["reason"]
    fleet[1]["health_state"] = "Unknown"                                       # Unknown counts as unhealthy
    failed = app_update_gate(fleet, ["0", "1"], ["0", "1"], 20, 50)
    assert (failed["state"], failed["code"], failed["unhealthy"]) == (
        "failed", "MaxUnhealthyUpgradedInstancePercentExceeded", ["1"])
    fleet[1]["health_state"] = "Healthy"
    assert app_update_gate(fleet, [0, 1], [0, 1])["state"] == "passed"
    assert set(FilterModule().filters()) == {"app_update_plan", "app_update_gate"}
