# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale-set client's one watch (deadline, read budget, the verdict returned), its timeout failure and the
wait predicates; the run record's batches, halts and request deltas."""

from __future__ import annotations

import re

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_client as client_module
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure
from ansible_collections.fleetops.vmss.plugins.module_utils._run import RunRecord, empty_summary, now
from ansible_collections.fleetops.vmss.plugins.module_utils._scale_set_client import (
    ScaleSetClient, failures_only, holds, no_instance_busy, not_yet_on, set_gone, set_provisioned, set_settled)
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline


class Clock:
    """time.monotonic and time.sleep of the client's module, advanced only by the sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(client_module.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(client_module.time, "sleep", clock.sleep)
    return clock


def client(timeout=100.0, clock=None):
    return ScaleSetClient(None, "rg", "web", Deadline(timeout, clock=clock.monotonic), sleep=5.0)


def test_watch_returns_the_verdict_that_holds_and_the_observation(clock):
    looks = iter([[{"provisioning_state": "Updating"}], [{"provisioning_state": "Succeeded"}]])
    verdict, observed, timed_out = client(clock=clock).watch(no_instance_busy, observe=lambda: next(looks))
    assert verdict == {"state": "passed"} and observed == [{"provisioning_state": "Succeeded"}] and not timed_out
    assert clock.sleeps == [5.0]


def test_watch_stops_at_its_timeout_and_says_so(clock):
    verdict, _observed, timed_out = client(clock=clock).watch(lambda _o: {"state": "waiting"}, timeout=12,
                                                              observe=lambda: None)
    assert timed_out and verdict == {"state": "waiting"} and sum(clock.sleeps) == pytest.approx(12)


def test_watch_never_passes_the_run_s_deadline(clock):
    _verdict, _observed, timed_out = client(timeout=7, clock=clock).watch(lambda _o: False, timeout=60,
                                                                          observe=lambda: None)
    assert timed_out and sum(clock.sleeps) == pytest.approx(7)


def test_watch_slows_down_while_compute_s_read_budget_runs_low(clock):
    azure = client(clock=clock)

    def observe():
        azure.pages, azure.remaining = 1, 2      # fewer reads left than three polls need
        return None

    azure.watch(lambda _o: False, timeout=40, observe=observe)
    assert clock.sleeps[:3] == [10.0, 20.0, 10.0]   # doubling, then cut short by the timeout


def test_wait_for_fails_with_the_timeout_in_the_usual_message(clock):
    with pytest.raises(AzureFailure) as caught:
        client(clock=clock).wait_for(set_gone, lambda: {"name": "web"}, "get", "deletion of scale set rg/web",
                                     timeout=10)
    assert str(caught.value) == ("Failed to get scale set rg/web: Timeout: deletion of scale set rg/web not reached "
                                 "within 10 seconds")
    assert caught.value.error["code"] == "Timeout" and not caught.value.transient


@pytest.mark.parametrize("verdict, expected", [({"state": "waiting"}, False), ({"state": "failed"}, True),
                                               ({"state": "passed"}, True), (None, False), ({"outcome": "x"}, True),
                                               (True, True)])
def test_holds(verdict, expected):
    assert holds(verdict) is expected


def test_the_set_predicates():
    busy_vm = {"properties": {"provisioningState": "Updating"}}
    done_vm = {"properties": {"provisioningState": "Succeeded"}}
    settled_set = {"properties": {"provisioningState": "Succeeded"}}
    assert set_settled((settled_set, [done_vm])) and not set_settled((settled_set, [busy_vm]))
    assert not set_settled(({"properties": {"provisioningState": "Updating"}}, [done_vm]))
    assert not set_settled((None, []))
    assert set_provisioned(2)((settled_set, [done_vm, done_vm])) and not set_provisioned(3)((settled_set, [done_vm]))
    assert set_gone(None) and not set_gone(settled_set)


def test_a_soak_holds_only_when_the_gate_fails():
    gates = iter([{"state": "passed"}, {"state": "failed", "code": "X"}])
    soak = failures_only(lambda _listed: next(gates))
    assert soak([]) == {"state": "waiting"} and soak([]) == {"state": "failed", "code": "X"}


class Counter:
    total = writes = 0


def test_the_run_record_counts_each_batch_s_requests_and_writes_times_one_way():
    counter = Counter()
    record = RunRecord(counter)
    counter.total, counter.writes = 3, 1
    batch = record.batch(0, "canary", ["1", "2"], note=None)
    counter.total, counter.writes = 10, 2
    record.close(batch, outcome="healthy")
    assert batch["arm_requests"] == {"total": 7, "writes": 1, "reads": 6} and batch["outcome"] == "healthy"
    assert batch["instance_ids"] == ["1", "2"] and batch["note"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", batch["ended_at"])
    summary = record.finish(record.summary())
    assert summary["arm_requests"] == {"total": 10, "writes": 2, "reads": 8} and summary["ended_at"] >= now()[:19]
    halt = RunRecord.halt(0, "HealthTimeout", "slow", phase="stage")
    assert (halt["batch_index"], halt["code"], halt["reason"], halt["phase"]) == (0, "HealthTimeout", "slow", "stage")
    assert RunRecord.rollback("healthy")["outcome"] == "healthy" and empty_summary("t")["started_at"] == "t"


# --- the model PATCH not waited for through its poller; looks due at an expected moment (issue 18) -----------

def test_after_a_patch_the_scale_set_is_read_until_it_is_no_longer_updating(clock):
    azure = client(clock=clock)
    azure.resource = {"name": "web", "properties": {"provisioningState": "Updating"}}   # the PATCH's answer
    reads = iter(["Updating", "Updating", "Succeeded"])

    def read():
        azure.resource = {"name": "web", "properties": {"provisioningState": next(reads)}}
        return azure.resource

    azure.read = read
    assert azure.wait_applied()["properties"]["provisioningState"] == "Succeeded"
    # no read at once (the PATCH's answer was the first look); then every quarter of wait_sleep (5 s): a GET is
    # cheap, and the first batch waits on it
    assert clock.sleeps == [1.25, 1.25, 1.25]


def test_a_patch_that_ends_failed_fails_with_its_state(clock):
    azure = client(clock=clock)
    azure.resource = {"name": "web", "properties": {"provisioningState": "Updating"}}
    azure.read = lambda: {"name": "web", "properties": {"provisioningState": "Failed"}}
    with pytest.raises(AzureFailure) as caught:
        azure.wait_applied()
    assert caught.value.error["code"] == "ProvisioningFailed" and not caught.value.transient
    assert "provisioningState is Failed after the update" in str(caught.value)


def test_looks_thin_out_far_from_the_expected_moment_and_one_lands_on_it(clock):
    azure = client(clock=clock)
    looks = []

    def observe():
        looks.append(clock.now)
        return clock.now >= 100

    _verdict, _observed, timed_out = azure.watch(bool, timeout=300, observe=observe, expected_at=100.0)
    assert not timed_out and looks == [0.0, 50.0, 75.0, 87.5, 100.0]


def test_past_the_expected_moment_looks_are_every_wait_sleep(clock):
    azure = client(clock=clock)
    looks = []

    def observe():
        looks.append(clock.now)
        return clock.now >= 12

    azure.watch(bool, timeout=300, observe=observe, expected_at=-3.0)
    assert looks == [0.0, 5.0, 10.0, 15.0]


def test_looks_land_on_each_moment_it_may_hold_at_then_every_wait_sleep(clock):
    azure = client(timeout=400, clock=clock)
    looks = []

    def observe():
        looks.append(clock.now)
        return clock.now >= 130

    _verdict, _observed, timed_out = azure.watch(bool, timeout=300, observe=observe, expected_at=[100.0, 110.0])
    assert not timed_out and looks == [0.0, 50.0, 75.0, 87.5, 100.0, 110.0, 115.0, 120.0, 125.0, 130.0]


def test_a_moment_passed_while_listing_is_looked_at_at_once(clock):
    azure = client(timeout=400, clock=clock)
    looks = []

    def observe():   # a list that takes 3 s
        looks.append(clock.now)
        clock.now += 3
        return clock.now >= 105

    azure.watch(bool, timeout=300, observe=observe, expected_at=[98.0, 100.0])
    # 100 passed while the look at 98 listed: the next one at once, then every wait_sleep
    assert looks[-3:] == [98.0, 101.0, 109.0]


def test_a_list_told_when_to_stop_reads_no_further_page(clock, monkeypatch):
    azure = client(clock=clock)
    azure.resource = {"name": "web", "properties": {"orchestrationMode": "Uniform"}}
    read = []

    def pages():   # two pages of two instances, noted as they are read
        for page in ([{"instanceId": "0"}, {"instanceId": "1"}], [{"instanceId": "2"}, {"instanceId": "3"}]):
            read.append([vm["instanceId"] for vm in page])
            yield from page

    monkeypatch.setattr(azure, "_pages", pages)
    monkeypatch.setattr(client_module.instances, "summary", lambda vm, _set: {"instance_id": vm["instanceId"]})
    assert [i["instance_id"] for i in azure.instances()] == ["0", "1", "2", "3"] and read == [["0", "1"], ["2", "3"]]
    del read[:]
    assert azure.instances(until=lambda i: i["instance_id"] == "1") is None and read == [["0", "1"]]
    assert not_yet_on(["1"], None)({"instance_id": "1", "provisioning_state": "Updating"})
    assert not not_yet_on(["1"], None)({"instance_id": "0", "provisioning_state": "Updating"})


def test_looks_land_on_the_expected_moment_while_compute_reports_a_comfortable_read_budget(clock):
    # the schedule's long pauses are not the budget's: read as a slow-down, they kept the looks off the moment
    azure = client(timeout=400, clock=clock)
    looks = []

    def observe():   # a 10-page list, Compute's budget untouched (HighCostGetVMScaleSet30Min;899)
        looks.append(clock.now)
        azure.pages, azure.remaining = 10, 899
        return clock.now >= 100

    _verdict, _observed, timed_out = azure.watch(bool, timeout=300, observe=observe, expected_at=100.0)
    assert not timed_out and looks == [0.0, 50.0, 75.0, 87.5, 100.0]
