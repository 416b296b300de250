# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout planner and gates: batching, canary, resume, protection, thresholds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as r


def fleet(n, zones=3, uds=5, fds=5, **overrides):
    out = []
    for i in range(n):
        inst = {"instance_id": str(i), "zone": str(i % zones + 1) if zones else None, "update_domain": i % uds,
                "fault_domain": i % fds, "latest_model_applied": False, "health_state": "Healthy",
                "protection": {}}
        inst.update(overrides.get(str(i), {}))
        out.append(inst)
    return out


def ids(batches):
    return [[i["instance_id"] for i in b] for b in batches]


def test_percent_batches_round_up_against_the_whole_set():
    batches = r.plan_batches(fleet(10), "percent", 20, set_size=10)
    assert ids(batches) == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"]]
    assert ids(r.plan_batches(fleet(3), "percent", 20, set_size=3)) == [["0"], ["1"], ["2"]]


def test_count_batches_and_numeric_id_order():
    instances = fleet(12)
    instances.reverse()
    assert ids(r.plan_batches(instances, "count", 5)) == [[str(i) for i in range(5)],
                                                          [str(i) for i in range(5, 10)], ["10", "11"]]


def test_update_domain_batches_follow_domain_order_and_cap():
    batches = r.plan_batches(fleet(10, uds=5), "update_domain")
    assert ids(batches) == [["0", "5"], ["1", "6"], ["2", "7"], ["3", "8"], ["4", "9"]]
    assert ids(r.plan_batches(fleet(10, uds=2), "update_domain", batch_size=3)) == [
        ["0", "2", "4"], ["6", "8"], ["1", "3", "5"], ["7", "9"]]


def test_zone_and_fault_domain_batches():
    assert ids(r.plan_batches(fleet(6, zones=3), "zone")) == [["0", "3"], ["1", "4"], ["2", "5"]]
    assert ids(r.plan_batches(fleet(4, fds=2), "fault_domain")) == [["0", "2"], ["1", "3"]]
    regional = fleet(3, zones=0)
    assert ids(r.plan_batches(regional, "zone")) == [["0", "1", "2"]]   # no zones: one batch


def test_canary_goes_first_then_the_plan():
    batches = r.plan_batches(fleet(10), "percent", 50, canary=1, set_size=10)
    assert ids(batches) == [["0"], ["1", "2", "3", "4", "5"], ["6", "7", "8", "9"]]


def test_prioritize_unhealthy_puts_them_first():
    instances = fleet(5, **{"3": {"health_state": "Unhealthy"}, "4": {"health_state": "Unknown"}})
    assert ids(r.plan_batches(instances, "count", 2, prioritize_unhealthy=True)) == [["3", "4"], ["0", "1"], ["2"]]


def test_select_targets_resumes_and_skips_protected():
    instances = fleet(5, **{"0": {"latest_model_applied": True},
                            "2": {"protection": {"protect_from_scale_set_actions": True}}})
    targets, skipped = r.select_targets(instances)
    assert [t["instance_id"] for t in targets] == ["1", "3", "4"]
    assert skipped == [{"instance_id": "2", "reason": "protect_from_scale_set_actions"}]


def test_precheck_refuses_an_already_unhealthy_set():
    instances = fleet(10, **{str(i): {"health_state": "Unhealthy"} for i in range(3)})
    assert r.precheck(instances, 20).startswith("3 of 10 instances (30%)")
    assert r.precheck(instances, 30) is None


def test_gate_waits_on_initializing_and_passes_when_healthy():
    instances = fleet(4, **{"0": {"health_state": "Initializing"}})
    gate = r.batch_gate(["0", "1"], ["0", "1"], instances, 20, 20)
    assert gate["state"] == "waiting" and gate["pending"] == ["0"]
    gate = r.batch_gate(["0", "1"], ["0", "1"], fleet(4), 20, 20)
    assert gate["state"] == "passed" and gate["healthy"] == ["0", "1"]


def test_gate_fails_on_unhealthy_upgraded_instances_unknown_included():
    instances = fleet(10, **{"0": {"health_state": "Unknown"}})
    gate = r.batch_gate(["0", "1"], ["0", "1"], instances, 20, 50)
    assert gate["state"] == "failed"
    assert "max_unhealthy_upgraded_instance_percent=20" in gate["reason"]


def test_gate_fails_when_the_whole_set_crosses_its_threshold():
    instances = fleet(10, **{str(i): {"health_state": "Unhealthy"} for i in range(5, 9)})
    gate = r.batch_gate(["0"], ["0"], instances, 100, 30)
    assert gate["state"] == "failed" and "max_unhealthy_instance_percent=30" in gate["reason"]


def test_gate_counts_a_vanished_instance_as_unhealthy():
    gate = r.batch_gate(["0", "42"], ["0", "42"], fleet(3), 20, 100)
    assert gate["state"] == "failed" and gate["unhealthy"] == ["42"]


@pytest.mark.parametrize("args,message", [
    (("nope", None, 0, 20, 20), "batch_by must be one of"),
    (("percent", None, 0, 20, 20), "batch_by=percent needs batch_size"),
    (("percent", 150, 0, 20, 20), "batch_by=percent needs batch_size"),
    (("count", 0, 0, 20, 20), "batch_by=count needs batch_size"),
    (("count", 1, -1, 20, 20), "canary must be"),
    (("count", 1, 0, 120, 20), "max_unhealthy_instance_percent must be between"),
])
def test_invalid_options_are_refused(args, message):
    with pytest.raises(r.PlanError, match=message):
        r.validate_options(*args)


def test_estimate_and_describe():
    batches = r.plan_batches(fleet(10), "percent", 20, set_size=10)
    assert r.estimate_seconds(batches, 120, 30, 10) == 5 * 150 + 4 * 10
    assert r.estimate_seconds(batches, 120, 30, 10, soak_seconds=60, canary=1) == 5 * 150 + 4 * 10 + 60
    plan = r.describe_plan(batches[:1])
    assert plan == [{"batch": 1, "instance_ids": ["0", "1"], "update_domains": [0, 1], "fault_domains": [0, 1],
                     "zones": ["1", "2"]}]


@given(n=st.integers(0, 60), size=st.integers(1, 100), by=st.sampled_from(r.BATCH_BY), canary=st.integers(0, 5),
       unhealthy=st.sets(st.integers(0, 59)))
def test_every_target_is_planned_exactly_once(n, size, by, canary, unhealthy):
    instances = fleet(n, **{str(i): {"health_state": "Unhealthy"} for i in unhealthy})
    batches = r.plan_batches(instances, by, size, canary=canary, prioritize_unhealthy=True, set_size=n)
    planned = [i["instance_id"] for b in batches for i in b]
    assert sorted(planned, key=int) == [str(i) for i in range(n)]
    assert all(batches)
