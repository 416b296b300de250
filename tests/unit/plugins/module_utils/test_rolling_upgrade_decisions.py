# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions around Azure's rolling upgrades: when an action writes, when a wait is over, what fails."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _rolling_upgrade as r


def status(code, start="2026-11-22T04:30:00Z", error=None, **progress):
    return {"running_status": {"code": code, "start_time": start, "last_action": "Start",
                               "last_action_time": start}, "progress": progress, "error": error, "policy": {}}


@pytest.mark.parametrize("action, before, writes", [
    ("start_os_upgrade", None, True),
    ("start_os_upgrade", status("Completed"), True),
    ("start_extension_upgrade", status("Faulted"), True),
    ("start_os_upgrade", status("RollingForward"), False),     # Azure refuses a second one: report that one
    ("cancel", status("RollingForward"), True),
    ("cancel", status("Cancelled"), False),
    ("cancel", None, False),
    ("status", status("RollingForward"), False),
])
def test_sends_request(action, before, writes):
    assert r.sends_request(action, before) is writes


def test_settled_waits_past_a_stale_read_of_the_previous_upgrade():
    old = status("Completed", start="2026-11-22T04:00:00Z")
    assert not r.settled(old, old, started=True)                   # GetLatest still shows the previous one
    assert not r.settled(None, None, started=True)                 # nor any yet
    assert not r.settled(status("RollingForward"), old, started=True)
    assert r.settled(status("Completed"), old, started=True)
    assert r.settled(status("Cancelled"), status("RollingForward"), started=False)   # a cancel: same upgrade
    assert r.same_upgrade(None, None) and not r.same_upgrade(old, None)


def test_failure_of_faulted_and_cancelled_upgrades():
    error = {"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade", "message": "50%  of\ninstances"}
    assert r.failure("start_os_upgrade", status("Faulted", error=error)) == (error["code"], "50% of instances")
    assert r.failure("status", status("Faulted")) == ("Faulted", "the rolling upgrade ended Faulted without an error")
    assert r.failure("status", status("Cancelled"))[0] == "Cancelled"
    assert r.failure("cancel", status("Faulted", error=error)) is None
    assert r.failure("start_os_upgrade", status("Completed")) is None


def test_record_keeps_changes_only():
    history = []
    for at, code, done in (("t1", "RollingForward", 0), ("t2", "RollingForward", 0), ("t3", "RollingForward", 2),
                           ("t4", "Completed", 2)):
        r.record(history, r.sample(status(code, successful_instance_count=done), at))
    assert [(s["time"], s["code"], s["successful_instance_count"]) for s in history] == [
        ("t1", "RollingForward", 0), ("t3", "RollingForward", 2), ("t4", "Completed", 2)]
    assert set(history[0]) == {"time", "code"} | set(r.PROGRESS_KEYS)
    assert r.sample(None, "t")["code"] is None
