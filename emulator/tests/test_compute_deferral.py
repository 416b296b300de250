"""Deferred automatic OS upgrades (automaticOSUpgradePolicy.osRollingUpgradeDeferral) and approveRollingUpgrade,
through the real SDK: nothing moves before an approval, the approved instances move (their LRO answers then),
the rest stay pending on the old image, and a cancel ends the wait."""
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from compute_support import body, gallery_image, wait_until
from test_compute_rolling import events, gallery_setup, mark, publish, versions


def deferred_set(emu, compute, capacity=4):
    gallery_setup(emu, compute)
    spec = body(emu, capacity, health=True, overprovision=False, platformFaultDomainCount=1, image=gallery_image(emu),
                upgradePolicy={"mode": "Automatic", "automaticOSUpgradePolicy": {
                    "enableAutomaticOSUpgrade": True, "osRollingUpgradeDeferral": True}})
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", spec).result()


def latest(compute):
    return compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]


def test_a_deferred_upgrade_waits_for_approval_batch_by_batch(clean):
    emu, compute = clean, clean.compute()
    deferred_set(emu, compute)
    seq = mark(emu)
    publish(emu, compute, "1.1.0").result()
    wait_until(lambda: events(emu, "rolling.started", seq), timeout=10)
    time.sleep(1.0)                                   # several engine looks: still nothing moved
    assert {v for v, _ in versions(compute).values()} == {"1.0.0"}
    status = latest(compute)
    assert status["runningStatus"]["code"] == "RollingForward"
    assert status["progress"]["pendingInstanceCount"] == 4 and status["progress"]["inProgressInstanceCount"] == 0
    assert events(emu, "rolling.batch_started", seq) == []

    ids = sorted(versions(compute))
    compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade(
        "rg", "web", {"instanceIds": ids[:2]}).result()       # answers once both are upgraded
    now = versions(compute)
    assert {now[i][0] for i in ids[:2]} == {"1.1.0"} and {now[i][0] for i in ids[2:]} == {"1.0.0"}
    status = latest(compute)
    assert status["runningStatus"]["code"] == "RollingForward"
    assert status["progress"]["successfulInstanceCount"] == 2 and status["progress"]["pendingInstanceCount"] == 2

    # one instance through the instance-level route, then the rest (no ids: every instance)
    compute.virtual_machine_scale_set_vms.begin_approve_rolling_upgrade("rg", "web", ids[2]).result()
    assert versions(compute)[ids[2]][0] == "1.1.0" and versions(compute)[ids[3]][0] == "1.0.0"
    compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade("rg", "web").result()
    assert {v for v, _ in versions(compute).values()} == {"1.1.0"}
    wait_until(lambda: latest(compute)["runningStatus"]["code"] == "Completed")
    entry = next(iter(compute.virtual_machine_scale_sets.get_os_upgrade_history("rg", "web"))).as_dict()
    assert entry["properties"]["startedBy"] == "Platform"


def test_without_a_deferred_upgrade_an_approval_is_refused(clean):
    emu, compute = clean, clean.compute()
    deferred_set(emu, compute, capacity=2)
    with pytest.raises(ResourceExistsError) as refused:
        compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade("rg", "web").result()
    assert refused.value.error.code == "OperationNotAllowed"


def test_an_unknown_instance_is_refused_and_a_cancel_ends_the_wait(clean):
    emu, compute = clean, clean.compute()
    deferred_set(emu, compute, capacity=2)
    seq = mark(emu)
    publish(emu, compute, "1.1.0").result()
    wait_until(lambda: events(emu, "rolling.started", seq), timeout=10)
    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade("rg", "web", {"instanceIds": ["99"]})
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidParameter"
    compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel("rg", "web").result()
    assert latest(compute)["runningStatus"]["code"] == "Cancelled"
    assert {v for v, _ in versions(compute).values()} == {"1.0.0"}


def test_without_deferral_the_automatic_upgrade_needs_no_approval(clean):
    emu, compute = clean, clean.compute()
    deferred_set(emu, compute, capacity=2)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", {"properties": {"upgradePolicy": {
        "automaticOSUpgradePolicy": {"osRollingUpgradeDeferral": False}}}}).result()
    seq = mark(emu)
    publish(emu, compute, "1.1.0").result()
    wait_until(lambda: events(emu, "rolling.finished", seq), timeout=20)
    assert {v for v, _ in versions(compute).values()} == {"1.1.0"}
