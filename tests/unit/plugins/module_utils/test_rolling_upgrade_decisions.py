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


# --- Azure's automatic OS upgrade: join it, or report the one that already went for the target -----------------

GALLERY = "/subscriptions/s/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments"
TARGET = {"name": "1.7.0", "published_date": "2026-11-22T03:00:00Z"}


def history_entry(code, version="1.7.0", start="2026-11-22T04:00:00Z", reference=None):
    entry = status(code, start=start)
    entry.update(started_by="Platform", target_image_reference=reference if reference is not None else {
        "id": GALLERY, "exact_version": version})
    return entry


def scale_set(image_id):
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"id": image_id}}}}}


@pytest.mark.parametrize("image_id, follows", [
    (GALLERY, True),
    (GALLERY + "/versions/latest", True),
    (GALLERY.upper(), True),                                      # ARM ids are case-insensitive
    (GALLERY + "/versions/1.7.0", False),                         # pinned: Azure never upgrades it by itself
    ("/subscriptions/s/resourceGroups/images/providers/Microsoft.Compute/images/base", False),
    (None, False),
])
def test_floating_gallery_image(image_id, follows):
    found = r.floating_gallery_image(scale_set(image_id))
    assert (found is not None) is follows
    if follows:
        assert found["gallery"].lower() == "golden" and found["image"].lower() == "payments"


@pytest.mark.parametrize("reference, version", [
    ({"id": GALLERY, "exact_version": "1.7.0"}, "1.7.0"),
    ({"id": GALLERY + "/versions/1.7.0"}, "1.7.0"),
    ({"publisher": "p", "offer": "o", "sku": "s", "version": "2016.127.20180613"}, "2016.127.20180613"),
    ({"publisher": "p", "offer": "o", "sku": "s", "version": "latest"}, None),
    ({"id": GALLERY}, None),
    (None, None),
])
def test_target_version(reference, version):
    assert r.target_version(reference) == version


def test_covering_upgrade_is_the_newest_finished_one_for_the_target():
    faulted = history_entry("Faulted")
    assert r.covering_upgrade([faulted], TARGET) is faulted
    assert r.covering_upgrade([history_entry("Completed")], TARGET)["running_status"]["code"] == "Completed"
    assert r.covering_upgrade([history_entry("Cancelled")], TARGET) is not None
    assert r.covering_upgrade([history_entry("Completed", version="1.6.2")], TARGET) is None      # another version
    assert r.covering_upgrade([history_entry("Completed", version="1.6.2"), faulted], TARGET) is None   # newer since
    assert r.covering_upgrade([history_entry("RollingForward")], TARGET) is None
    assert r.covering_upgrade([], TARGET) is None and r.covering_upgrade([faulted], None) is None
    # no version named: started after the target was published
    unnamed = history_entry("Faulted", reference={"id": GALLERY})
    assert r.covering_upgrade([unnamed], TARGET) is unnamed
    assert r.covering_upgrade([unnamed], dict(TARGET, published_date="2026-11-22T05:00:00Z")) is None


@pytest.mark.parametrize("action, before, covering, decision", [
    ("start_os_upgrade", status("RollingForward"), None, "join"),
    ("start_os_upgrade", status("Faulted"), history_entry("Faulted"), "already_faulted"),
    ("start_os_upgrade", status("Completed"), history_entry("Completed"), "already_completed"),
    ("start_os_upgrade", status("Cancelled"), history_entry("Cancelled"), "already_cancelled"),
    ("start_os_upgrade", status("Completed"), None, "start"),
    ("start_os_upgrade", None, None, "start"),
    ("start_extension_upgrade", status("Faulted"), history_entry("Faulted"), "start"),   # not an OS upgrade
    ("start_extension_upgrade", status("RollingForward"), None, "join"),
])
def test_start_decision(action, before, covering, decision):
    assert r.start_decision(action, before, covering) == decision


def test_moved_count_is_the_growth_of_one_upgrades_successful_count():
    at_start = status("RollingForward", successful_instance_count=3)      # 3 needed no move
    assert r.moved_count(at_start, status("Completed", successful_instance_count=5)) == 2
    assert r.moved_count(at_start, status("Faulted", successful_instance_count=3)) == 0
    assert r.moved_count(None, status("Completed", successful_instance_count=5)) == 0
    other = status("Completed", start="2026-11-22T09:00:00Z", successful_instance_count=5)
    assert r.moved_count(at_start, other) == 0


# --- deferred automatic OS upgrades (action=approve) ------------------------------------------------------------

def instance(iid, version, health="Healthy", protected=False):
    return {"instance_id": iid, "image": {"id": "/subscriptions/s/.../images/payments", "exact_version": version},
            "health_state": health, "protection": {"protect_from_scale_set_actions": protected}}


def test_running_os_target_is_the_rolling_upgrades_own_history_entry():
    running = status("RollingForward")
    entry = dict(status("RollingForward"), target_image_reference={"exact_version": "1.1.0"})
    assert r.running_os_target([entry], running) == "1.1.0"
    assert r.running_os_target([entry], status("Completed")) is None                     # nothing rolls forward
    assert r.running_os_target([dict(entry, running_status={"code": "RollingForward", "start_time": "other"})],
                               running) is None                                          # another upgrade's entry
    assert r.running_os_target([], running) is None                                      # an extension upgrade


def test_pending_instances_leave_out_those_on_the_target_and_protected_ones_in_id_order():
    listed = [instance("10", "1.0.0"), instance("2", "1.0.0"), instance("3", "1.1.0"),
              instance("4", "1.0.0", protected=True)]
    assert r.not_on(listed, "1.1.0") == ["2", "10"]


@pytest.mark.parametrize("names, limit, chosen", [
    (None, None, ["1", "2", "5"]),
    (None, 2, ["1", "2"]),
    (["5", "9"], None, ["5"]),          # 9 already runs the target: nothing to approve for it
    (["2", "5"], 1, ["2"]),
    ([], None, []),
])
def test_choose_approval(names, limit, chosen):
    assert r.choose_approval(["1", "2", "5"], names, limit) == chosen


def test_unknown_ids_are_named():
    assert r.unknown_ids([instance("0", "1.0.0")], ["0", "7"]) == ["7"]
    assert r.unknown_ids([instance("0", "1.0.0")], None) == []


def test_approval_failure_health_gate():
    listed = [instance("0", "1.1.0"), instance("1", "1.1.0", health="Unhealthy"), instance("2", "1.0.0")]
    assert r.approval_failure(status("RollingForward"), listed, ["0"], "1.1.0") is None
    assert r.approval_failure(status("RollingForward"), [instance("0", "1.1.0", health=None)], ["0"], "1.1.0") is None
    code, message = r.approval_failure(status("RollingForward"), listed, ["0", "1", "2"], "1.1.0")
    assert code == "UnhealthyAfterApproval"
    assert message == "approved instances not healthy on version 1.1.0: not on it: 2; health: 1 (Unhealthy)"
    faulted = status("Faulted", error={"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
                                       "message": "Rolling Upgrade failed ..."})
    assert r.approval_failure(faulted, listed, ["0"], "1.1.0")[0] == \
        "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
