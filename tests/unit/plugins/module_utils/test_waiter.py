# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deadline waiter, on a fake clock: no real sleeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, WaitTimeout, poller_result, wait_until


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def counting(results):
    calls = []

    def check():
        calls.append(1)
        return results[min(len(calls), len(results)) - 1]
    return check, calls


def test_returns_at_once_when_already_true():
    clock = FakeClock()
    check, calls = counting(["ready"])
    assert wait_until(check, timeout=60, sleep=5, clock=clock, sleeper=clock.sleep) == "ready"
    assert (len(calls), clock.slept) == (1, [])


def test_returns_the_first_truthy_value_after_sleeping():
    clock = FakeClock()
    check, calls = counting([None, [], {"healthy": 3}])
    assert wait_until(check, timeout=60, sleep=5, clock=clock, sleeper=clock.sleep) == {"healthy": 3}
    assert (len(calls), clock.slept) == (3, [5, 5])


def test_times_out_at_the_deadline_without_sleeping_past_it():
    clock = FakeClock()
    check, calls = counting([False])
    with pytest.raises(WaitTimeout, match="instances healthy not reached within 12 seconds") as caught:
        wait_until(check, timeout=12, sleep=5, clock=clock, sleeper=clock.sleep, what="instances healthy")
    assert clock.slept == [5, 5, 2]
    assert len(calls) == 4  # at once, then after each sleep: the last check is at the deadline
    assert caught.value.last is False


def test_zero_timeout_checks_once():
    clock = FakeClock()
    check, calls = counting([0])
    with pytest.raises(WaitTimeout):
        wait_until(check, timeout=0, sleep=5, clock=clock, sleeper=clock.sleep)
    assert (len(calls), clock.slept) == (1, [])


def test_a_stalled_clock_cannot_make_it_spin():
    # The clock never moves (a broken or frozen clock): the check count still bounds the loop.
    check, calls = counting([False])
    with pytest.raises(WaitTimeout):
        wait_until(check, timeout=30, sleep=10, clock=lambda: 0.0, sleeper=lambda seconds: None)
    assert len(calls) == 4


def test_sleep_must_be_positive():
    with pytest.raises(ValueError):
        wait_until(lambda: True, timeout=1, sleep=0)


@given(timeout=st.floats(min_value=0, max_value=3600), sleep=st.floats(min_value=0.5, max_value=600))
def test_never_waits_longer_than_the_timeout(timeout, sleep):
    clock = FakeClock()
    check, calls = counting([False])
    with pytest.raises(WaitTimeout):
        wait_until(check, timeout=timeout, sleep=sleep, clock=clock, sleeper=clock.sleep)
    assert sum(clock.slept) <= timeout + 1e-6
    assert len(calls) <= timeout / sleep + 2


class FakePoller:
    def __init__(self, finishes_after, result="done", error=None):
        self.finishes_after = finishes_after
        self.waited = []
        self.value = result
        self.error = error

    def result(self, timeout=None):
        self.waited.append(timeout)
        if self.error and timeout >= self.finishes_after:
            raise self.error
        return self.value if timeout >= self.finishes_after else None

    def done(self):
        return self.waited[-1] >= self.finishes_after

    def status(self):
        return "Succeeded" if self.done() else "InProgress"


def test_poller_result_within_the_deadline():
    clock = FakeClock()
    deadline = Deadline(60, clock=clock)
    clock.now += 15
    poller = FakePoller(finishes_after=30)
    assert poller_result(poller, deadline, "update") == "done"
    assert poller.waited == [45]


def test_poller_past_the_deadline_is_a_timeout():
    clock = FakeClock()
    deadline = Deadline(20, clock=clock)
    poller = FakePoller(finishes_after=30)
    with pytest.raises(WaitTimeout) as caught:
        poller_result(poller, deadline, "update of scale set rg/api")
    assert str(caught.value) == "update of scale set rg/api not finished within 20 seconds"
    assert caught.value.last == "InProgress"
    clock.now += 100
    assert deadline.expired and deadline.remaining() == 0


def test_poller_failure_is_raised():
    poller = FakePoller(finishes_after=0, error=RuntimeError("Failed"))
    with pytest.raises(RuntimeError):
        poller_result(poller, Deadline(5, clock=FakeClock()))
