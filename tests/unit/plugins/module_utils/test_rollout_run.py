# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout run's failure paths against a scale set simulated in memory (the emulator covers the main
stories in tests/integration/test_rollout.py): failed upgrades, an overrun deadline, a model changed by
someone else, an interrupted rollback, the tag removal racing an autoscale change, max_batches."""

from __future__ import annotations

import json

import pytest
from fake_scale_set import IMAGE, FakeScaleSet

from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as planner
from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout_run as run_module
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, arm_failure, is_transient
from ansible_collections.fleetops.vmss.plugins.module_utils._rollout_run import Rollout
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import WaitTimeout

VERSION_ID = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/i/versions/%s"


def failure(code, status=None):
    return arm_failure("upgrade instances of", "scale set rg/api", {"code": code, "message": "it broke",
                                                                    "status": status, "request_id": None})


def params(**overrides):
    out = dict(resource_group="rg", name="api", image=None, model=None, batch_by="count", batch_size=2, canary=0,
               canary_soak=0, pause_between_batches=0, health_timeout=5, max_unhealthy_instance_percent=20,
               max_unhealthy_upgraded_instance_percent=20, prioritize_unhealthy_instances=False,
               on_failure="rollback", demote_image_version_on_failure=False, max_batches=None, report_path=None,
               wait_timeout=60, wait_sleep=0.01, rollback=False)
    out.update(overrides)
    return out


def run(fake, image_version=None, check_mode=False, monitor=None, **overrides):
    """The module's story (plugins/modules/rollout.py main) on the fake; returns the Rollout."""
    rollout = Rollout(None, params(**overrides), None, check_mode, monitor=monitor)
    rollout.azure = fake
    rollout.read()
    desired = {"image": dict(IMAGE, version=image_version)} if image_version else {}
    assert rollout.compare(desired) == []
    assert rollout.plan() is None
    try:
        if rollout.marker is not None and rollout.marker.get("state") == "rolling_back":
            rollout.finish_interrupted_rollback()
        else:
            rollout.change_model()
            rollout.run_batches()
    except AzureFailure as failure:
        rollout.stopped_message = rollout.stopped_by(failure)
    rollout.finish()
    return rollout


def model_changed(fake, **overrides):
    """A Rollout on ``fake`` that read it, planned version 1.1.0 and changed the model: its batches are the test's."""
    rollout = Rollout(None, params(**overrides), None)
    rollout.azure = fake
    rollout.read()
    assert rollout.compare({"image": dict(IMAGE, version="1.1.0")}) == [] and rollout.plan() is None
    rollout.change_model()
    return rollout


BELIEFS = ("generation", "content")   # what latestModelApplied means: Azure's, and the content-only belief


@pytest.mark.parametrize("latest", BELIEFS)
def test_a_failed_upgrade_halts_and_rolls_back_what_moved(latest):
    fake = FakeScaleSet(latest=latest)
    original = fake.upgrade

    def upgrade(ids):
        if ids == ["2", "3"]:
            fake.vms["2"]["version"] = fake.model_version()          # one instance moved before the failure
            fake.calls.append(("upgrade", list(ids)))
            raise failure("VMExtensionProvisioningError")
        return original(ids)

    fake.upgrade = upgrade
    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["status"] == "rolled_back"
    assert [b["outcome"] for b in result["batches"]] == ["healthy", "failed"]
    assert result["halt"]["code"] == "UpgradeFailed" and result["halt"]["batch_index"] == 1
    assert "VMExtensionProvisioningError" in result["halt"]["reason"]
    assert result["rollback"]["instance_ids"] == ["0", "1", "2"] and result["rollback"]["outcome"] == "healthy"
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}
    assert planner.decode_marker(fake.resource["tags"]) is None
    assert rollout.message().endswith("; rolled back 3 instances")


def test_an_overrun_deadline_only_halts_keeping_the_rollback_point():
    fake = FakeScaleSet()
    fake.upgrade_errors = [failure("Timeout")]
    rollout = run(fake, "1.1.0", demote_image_version_on_failure=True)

    assert rollout.result["status"] == "halted" and rollout.result["halt"]["code"] == "Timeout"
    assert rollout.result["rollback"] is None and fake.demoted == []
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling"


def test_no_rollback_when_someone_else_changed_the_model_meanwhile():
    fake = FakeScaleSet(bad={"1.1.0"})
    original = fake.read

    def read():
        if any(call[0] == "upgrade" for call in fake.writes()):
            fake.resource["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "9"
        return original()

    fake.read = read
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "rollback_failed"
    assert rollout.result["halt"]["reason"].endswith("not rolled back: the scale set's model was changed by someone "
                                                     "else during the rollout")
    assert [call[0] for call in fake.writes()] == ["update", "upgrade"]      # nothing written after the halt


@pytest.mark.parametrize("latest", BELIEFS)
def test_an_interrupted_rollback_is_finished_by_the_next_run_whatever_it_asks(latest):
    before, target = {"image": dict(IMAGE, version="1.0.0")}, {"image": dict(IMAGE, version="1.1.0")}
    marker = planner.new_marker(before, target, "2026-11-22T04:30:00.000Z", state="rolling_back")
    fake = FakeScaleSet(count=6, version="1.1.0", bad={"1.1.0"}, tags=dict(planner.encode_marker(marker), team="a"),
                        latest=latest)
    fake.resource["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "1.0.0"
    fake.generation = 2                                                     # the model changed, then restored
    for vm in fake.vms.values():
        vm["generation"] = 1
    fake.vms["4"].update(version="1.0.0", generation=2)                     # moved back before the interruption
    fake.vms["5"].update(version="1.0.0", generation=0)                     # never touched by the rollout

    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "rolled_back" and rollout.result["halt"]["code"] == "RollbackResumed"
    assert rollout.result["rollback"]["instance_ids"] == ["0", "1", "2", "3"]
    assert [call[0] for call in fake.writes()] == ["upgrade", "update"]      # model already restored: no PATCH
    assert fake.resource["tags"] == {"team": "a"}
    assert rollout.message().startswith("Rollout of scale set rg/api: a rollback of image Canonical:ubuntu:server:"
                                        "1.1.0 was interrupted; this run finished it; rolled back 4 instances")


def test_the_tag_removal_is_retried_once_after_a_concurrent_change():
    fake = FakeScaleSet(count=2)
    original = fake.update
    attempts = []

    def update(body, wait=True):  # pylint: disable=unused-argument
        if set(body) == {"tags"} and not attempts:
            attempts.append(body)
            fake.calls.append(("update", body))
            raise arm_failure("update", fake.what,
                              {"code": "PreconditionFailed", "message": "etag", "status": 412, "request_id": None})
        return original(body)

    fake.update = update
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "succeeded"
    assert fake.calls.count("read") == 2 and fake.resource["tags"] == {}


@pytest.mark.parametrize("latest", BELIEFS)
def test_max_batches_returns_in_progress_and_the_next_run_continues(latest):
    fake = FakeScaleSet(count=5, latest=latest)
    first = run(fake, "1.1.0", max_batches=2)
    assert first.result["status"] == "in_progress"
    assert [b["instance_ids"] for b in first.result["batches"]] == [["0", "1"], ["2", "3"]]
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling"

    second = run(fake, "1.1.0", max_batches=2)
    assert second.result["status"] == "succeeded" and second.result["model_changed"] is False
    assert [b["instance_ids"] for b in second.result["batches"]] == [["4"]]
    assert [call for call in fake.writes() if call[0] == "upgrade"] == [
        ("upgrade", ["0", "1"]), ("upgrade", ["2", "3"]), ("upgrade", ["4"])]

    third = run(fake, "1.1.0")
    assert third.result["status"] == "nothing_to_do" and third.result["changed"] is False


def test_check_mode_plans_and_writes_nothing():
    fake = FakeScaleSet(count=5)
    rollout = Rollout(None, params(canary=1), None, check_mode=True)
    rollout.azure = fake
    rollout.read()
    assert rollout.compare({"image": dict(IMAGE, version="1.1.0")}) == []
    assert rollout.plan() is None
    assert [b["instance_ids"] for b in rollout.result["plan"]["batches"]] == [["0"], ["1", "2"], ["3", "4"]]
    assert rollout.result["plan"]["estimated_seconds"] == 3 * (planner.UPGRADE_SECONDS + 5)
    assert rollout.diff() == {"before": {"image": {"version": "1.0.0"}}, "after": {"image": {"version": "1.1.0"}}}
    assert fake.writes() == []


@pytest.mark.parametrize("mode,words", [("Automatic", "all at once"), ("Rolling", "through Azure's rolling upgrade")])
def test_a_model_change_needs_upgrade_mode_manual(mode, words):
    fake = FakeScaleSet()
    fake.resource["properties"]["upgradePolicy"]["mode"] = mode
    rollout = Rollout(None, params(), None)
    rollout.azure = fake
    rollout.read()
    [error] = rollout.compare({"image": dict(IMAGE, version="1.1.0")})
    assert error.startswith("the scale set's upgrade_policy.mode is %s" % mode) and words in error
    assert rollout.compare({}) == []             # moving instances onto the current model is fine


def test_demotion_names_the_version_rolled_out():
    fake = FakeScaleSet(bad={"x"})
    fake.resource["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
        "id": VERSION_ID % "1.0.0"}
    for vm in fake.vms.values():
        vm["version"] = "1.0.0"
    fake.model_version = lambda: fake.resource["properties"]["virtualMachineProfile"]["storageProfile"][
        "imageReference"]["id"].rsplit("/", 1)[1]
    fake.bad = {"1.1.0"}
    rollout = Rollout(None, params(demote_image_version_on_failure=True, on_failure="halt"), None)
    rollout.azure = fake
    rollout.read()
    assert rollout.compare({"image": {"id": VERSION_ID % "1.1.0"}}) == []
    assert rollout.plan() is None
    rollout.change_model()
    rollout.run_batches()
    assert rollout.result["status"] == "halted" and fake.demoted == [VERSION_ID % "1.1.0"]
    assert rollout.result["demoted"] == {"image_version_id": VERSION_ID % "1.1.0", "exclude_from_latest": True}


def test_health_that_cannot_be_read_halts_where_it_is_without_rollback():
    fake = FakeScaleSet(count=4)
    original = fake.instances

    def instances(until=None):
        if any(call[0] == "upgrade" for call in fake.writes()):
            raise arm_failure("list the instances of", fake.what,
                              {"code": "InternalServerError", "message": "boom", "status": 500, "request_id": None})
        return original(until)

    fake.instances = instances
    rollout = model_changed(fake)
    with pytest.raises(AzureFailure, match="InternalServerError"):
        rollout.run_batches()
    [batch] = rollout.result["batches"]
    assert batch["outcome"] == "failed" and batch["ended_at"]
    assert rollout.result["halt"]["code"] == "InternalServerError" and rollout.result["halt"]["batch_index"] == 0
    assert rollout.result["rollback"] is None and [call[0] for call in fake.writes()] == ["update", "upgrade"]


def test_without_a_known_model_change_latest_model_applied_decides():
    """The model was changed earlier (fleetops.vmss.scale_set): no rollback point, so nothing says which image
    or size the change is about; the instances Azure reports not on the latest model are the targets."""
    fake = FakeScaleSet(count=5)
    fake.generation = 1
    for instance_id in ("0", "1"):
        fake.vms[instance_id]["generation"] = 1

    rollout = run(fake)

    assert rollout.result["status"] == "succeeded" and rollout.result["model_changed"] is False
    assert [call for call in fake.writes() if call[0] == "upgrade"] == [("upgrade", ["2", "3"]), ("upgrade", ["4"])]


def test_a_rerun_after_a_rollback_in_generation_mode_is_nothing_to_do():
    """Azure: after 1.1.0 was rolled back, the model is 1.0.0 again in a new generation, so the untouched
    instances report not latest although they run 1.0.0. Re-running the rollout of 1.0.0 (the seed's second
    demo run) must see that every instance already runs it: no write."""
    fake = FakeScaleSet(count=5, bad=("1.1.0",))
    assert run(fake, "1.1.0").result["status"] == "rolled_back"
    assert not any(i["latest_model_applied"] for i in fake.instances() if i["instance_id"] not in ("0", "1"))
    writes = len(fake.writes())

    again = run(fake, "1.0.0")

    assert again.result["status"] == "nothing_to_do" and again.result["changed"] is False
    assert len(fake.writes()) == writes


# --- faults are not verdicts -----------------------------------------------------------------------------

def http_error(status, code, message="it broke", exception=None):
    """What the SDK raises for an ARM answer: a real HttpResponseError (or subclass) over a real response."""
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.core.rest._http_response_impl import HttpResponseImpl

    response = HttpResponseImpl(request=HttpRequest("POST", "https://management.azure.com/x"), internal_response=None,
                                status_code=status, reason="x", content_type="application/json",
                                headers={"content-type": "application/json"}, stream_download_generator=None)
    response._content = json.dumps({"error": {"code": code, "message": message}}).encode()  # pylint: disable=W0212
    return (exception or HttpResponseError)(response=response)


def sdk_failure(exc, action="upgrade instances of"):
    """The AzureFailure arm_errors makes of an SDK exception."""
    with pytest.raises(AzureFailure) as caught:
        with arm_errors(action, "scale set rg/api"):
            raise exc
    return caught.value


def transient_errors():
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import ResourceExistsError, ServiceRequestError, ServiceResponseError

    return [http_error(429, "TooManyRequests"), http_error(500, "InternalServerError"),
            http_error(503, "ServiceUnavailable"),
            http_error(409, "OperationNotAllowed", "another operation is in progress", ResourceExistsError),
            http_error(409, "Conflict"), ServiceRequestError("connection refused"),
            ServiceResponseError("connection reset by peer")]


def test_transient_faults_are_told_from_verdicts_with_the_sdk_exception_types():
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

    for exc in transient_errors():
        assert is_transient(exc), exc
        assert sdk_failure(exc).transient
    verdicts = [http_error(200, "VMExtensionProvisioningError"),   # an LRO that ended Failed: its poll said 200
                http_error(400, "InvalidParameter"), http_error(404, "NotFound", exception=ResourceNotFoundError),
                http_error(412, "PreconditionFailed"),
                http_error(401, "AuthenticationFailed", exception=ClientAuthenticationError),
                WaitTimeout("upgrade", 5)]
    for exc in verdicts:
        assert not is_transient(exc), exc
        assert not sdk_failure(exc).transient
    assert "OperationNotAllowed: another operation is in progress" in str(sdk_failure(transient_errors()[3]))


@pytest.mark.parametrize("latest", BELIEFS)
@pytest.mark.parametrize("index", range(len(transient_errors())))
def test_a_transient_fault_on_a_batch_interrupts_then_the_rerun_resumes(latest, index):
    fake = FakeScaleSet(count=5, latest=latest)
    original = fake.upgrade

    def upgrade(ids):
        if ids == ["2", "3"] and not fake.demoted and not getattr(fake, "failed_once", False):
            fake.failed_once = True
            fake.calls.append(("upgrade", list(ids)))
            raise sdk_failure(transient_errors()[index])
        return original(ids)

    fake.upgrade = upgrade
    first = run(fake, "1.1.0", demote_image_version_on_failure=True)

    result = first.result
    assert result["status"] == "interrupted" and result["rollback"] is None and fake.demoted == []
    assert [b["outcome"] for b in result["batches"]] == ["healthy", "interrupted"]
    assert result["halt"]["batch_index"] == 1
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling"
    assert [call[0] for call in fake.writes()] == ["update", "upgrade", "upgrade"]   # no rollback write
    assert first.stopped_message.startswith("Rollout of scale set rg/api interrupted at batch 2 of 3 by a transient "
                                            "fault, not a verdict on the image: Failed to upgrade instances of ")
    assert first.stopped_message.endswith("Nothing was rolled back or demoted. The rollback point (tag "
                                          "fleetops.rollout) is kept. Run the same task again to resume.")

    second = run(fake, "1.1.0", demote_image_version_on_failure=True)

    assert second.result["status"] == "succeeded" and fake.resource["tags"] == {}
    moved = [i for call in fake.writes() if call[0] == "upgrade" for i in call[1]]
    assert sorted(moved) == ["0", "1", "2", "2", "3", "3", "4"]     # 2 and 3: the refused request, then once
    assert {vm["version"] for vm in fake.vms.values()} == {"1.1.0"}


def test_a_verdict_from_azure_still_rolls_back_and_demotes():
    fake = FakeScaleSet(count=5)
    original = fake.upgrade

    def upgrade(ids):
        if ids == ["2", "3"]:
            fake.calls.append(("upgrade", list(ids)))
            raise sdk_failure(http_error(200, "VMExtensionProvisioningError"))
        return original(ids)

    fake.upgrade = upgrade
    rollout = run(fake, "1.1.0", demote_image_version_on_failure=True)
    assert rollout.result["status"] == "rolled_back" and rollout.result["halt"]["code"] == "UpgradeFailed"
    assert fake.demoted and rollout.result["rollback"]["outcome"] == "healthy"


def test_a_transient_fault_while_rolling_back_leaves_it_for_the_rerun_to_finish():
    fake = FakeScaleSet(count=5, bad={"1.1.0"})
    original = fake.upgrade

    def upgrade(ids):
        if fake.model_version() == "1.0.0" and not getattr(fake, "failed_once", False):
            fake.failed_once = True
            fake.calls.append(("upgrade", list(ids)))
            raise sdk_failure(http_error(429, "TooManyRequests"))
        return original(ids)

    fake.upgrade = upgrade
    first = run(fake, "1.1.0")

    assert first.result["status"] == "interrupted" and first.result["rollback"]["outcome"] == "interrupted"
    assert first.result["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling_back"
    assert first.stopped_message.startswith(
        "Rollout of scale set rg/api halted after batch 1 of 3: 2 of 2 upgraded instances (100%) are unhealthy, more "
        "than max_unhealthy_upgraded_instance_percent=20; then a transient fault interrupted the rollback: Failed to "
        "upgrade instances of scale set rg/api: TooManyRequests")
    assert first.stopped_message.endswith("The rollback point (tag fleetops.rollout) is kept. Run the same task again "
                                          "to finish it.")

    second = run(fake, "1.1.0")
    assert second.result["status"] == "rolled_back" and fake.resource["tags"] == {}
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}


def test_an_error_that_is_no_fault_and_no_verdict_halts_where_it_is():
    fake = FakeScaleSet(count=5)
    original = fake.instances

    def instances(until=None):
        if any(call[0] == "upgrade" for call in fake.writes()):
            raise sdk_failure(http_error(403, "AuthorizationFailed"), action="list the instances of")
        return original(until)

    fake.instances = instances
    rollout = run(fake, "1.1.0")
    assert rollout.result["status"] == "halted" and rollout.result["rollback"] is None
    assert rollout.result["batches"][0]["outcome"] == "failed"
    assert rollout.stopped_message.startswith("Failed to list the instances of scale set rg/api: AuthorizationFailed")


# --- a resumed rollback watches health -------------------------------------------------------------------

def interrupted_rollback(count=6):
    """1.1.0 rolled out and being rolled back when the run was killed: the model is 1.0.0 again, 4 and 5 run
    1.0.0 (moved back, or never touched), the others still run 1.1.0."""
    before, target = {"image": dict(IMAGE, version="1.0.0")}, {"image": dict(IMAGE, version="1.1.0")}
    marker = planner.new_marker(before, target, "2026-11-22T04:30:00.000Z", state="rolling_back")
    fake = FakeScaleSet(count=count, version="1.1.0", tags=planner.encode_marker(marker))
    fake.resource["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "1.0.0"
    for instance_id in ("4", "5"):
        fake.vms[instance_id]["version"] = "1.0.0"
    return fake


def test_a_resumed_rollback_with_unhealthy_rolled_back_instances_fails_and_keeps_the_rollback_point():
    fake = interrupted_rollback()
    fake.health["4"] = "Unhealthy"            # moved back before the interruption, and not well

    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["status"] == "rollback_failed" and result["rollback"]["outcome"] == "unhealthy"
    assert result["rollback"]["instance_ids"] == ["0", "1", "2", "3"]
    assert result["rollback"]["health"] == {"0": "Healthy", "1": "Healthy", "2": "Healthy", "3": "Healthy",
                                            "4": "Unhealthy"}
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling_back"
    assert rollout.message() == (
        "Rollout of scale set rg/api: a rollback of image Canonical:ubuntu:server:1.1.0 was interrupted; rollback "
        "failed: not Healthy within health_timeout=5 seconds after the rollback: 4 Unhealthy (the rollback point, "
        "tag fleetops.rollout, is kept)")


def test_a_resumed_rollback_with_nothing_left_to_move_still_waits_for_health():
    fake = interrupted_rollback()
    for instance_id in fake.vms:
        fake.vms[instance_id]["version"] = "1.0.0"
    fake.health["1"] = "Initializing"

    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "rollback_failed" and rollout.result["rollback"]["outcome"] == "timeout"
    assert rollout.result["rollback"]["instance_ids"] == [] and rollout.result["rollback"]["health"] == {
        "1": "Initializing"}
    assert [call[0] for call in fake.writes()] == []             # no write at all: the tag stays
    fake.health.clear()
    again = run(fake, "1.1.0")
    assert again.result["status"] == "rolled_back" and fake.resource["tags"] == {}
    assert again.message().endswith("was interrupted; this run finished it; rolled back 0 instances")


def test_an_uninterrupted_rollback_that_fails_says_so():
    fake = FakeScaleSet(count=5, bad={"1.1.0"})
    original = fake.upgrade

    def upgrade(ids):
        fake.health["0"] = "Unhealthy"        # and stays so, whatever it runs
        return original(ids)

    fake.upgrade = upgrade
    rollout = run(fake, "1.1.0")
    assert rollout.result["status"] == "rollback_failed"
    assert rollout.message() == (
        "Rollout of scale set rg/api halted after batch 1 of 3: 2 of 2 upgraded instances (100%) are unhealthy, more "
        "than max_unhealthy_upgraded_instance_percent=20; rollback failed: not Healthy within health_timeout=5 "
        "seconds after the rollback: 0 Unhealthy (the rollback point, tag fleetops.rollout, is kept)")


# --- the health timeout judged by the thresholds; the set threshold named ------------------------------

@pytest.mark.parametrize("state", ["Unhealthy", "Initializing"])
def test_a_batch_within_both_thresholds_at_the_health_timeout_passes_with_a_note(state):
    """The issue's case: 25% / 5% thresholds, 1 of the 4 upgraded (25%) and so 1 of the 20 (5%) not Healthy."""
    fake = FakeScaleSet(count=20)
    fake.health["1"] = state

    rollout = run(fake, "1.1.0", batch_size=4, max_unhealthy_upgraded_instance_percent=25,
                  max_unhealthy_instance_percent=5, max_batches=1)

    [batch] = rollout.result["batches"]
    assert rollout.result["status"] == "in_progress" and rollout.result["halt"] is None
    assert batch["outcome"] == "tolerated" and rollout.message() is None
    assert batch["note"] == ("not Healthy within health_timeout=5 seconds: 1 %s; 1 of 4 upgraded instances (25%%) and "
                             "1 of 20 instances of the set (5%%) unhealthy or not Healthy yet, within "
                             "max_unhealthy_upgraded_instance_percent=25 and max_unhealthy_instance_percent=5" % state)


def test_initializing_forever_counts_as_unhealthy_at_the_health_timeout():
    fake = FakeScaleSet(count=20)
    fake.health.update({"1": "Initializing", "2": "Initializing"})

    rollout = run(fake, "1.1.0", batch_size=4, max_unhealthy_upgraded_instance_percent=25,
                  max_unhealthy_instance_percent=5, on_failure="halt")

    assert rollout.result["status"] == "halted" and rollout.result["halt"]["code"] == "HealthTimeout"
    assert rollout.result["batches"][0]["outcome"] == "timeout"
    assert rollout.result["halt"]["reason"] == ("not Healthy within health_timeout=5 seconds: 1 Initializing, "
                                                "2 Initializing")


def test_a_healthy_batch_halted_by_the_rest_of_the_set_names_the_set_threshold():
    fake = FakeScaleSet(count=10)
    rollout = model_changed(fake, on_failure="halt")
    fake.health.update({"7": "Unhealthy", "8": "Unhealthy", "9": "Unhealthy"})   # after the precheck, not upgraded
    rollout.run_batches()

    [batch] = rollout.result["batches"]
    assert batch["outcome"] == "set_unhealthy" and batch["health"] == {"0": "Healthy", "1": "Healthy"}
    assert rollout.result["halt"]["code"] == "MaxUnhealthyInstancePercentExceeded"
    assert "3 of 10 instances of the set (30%) are unhealthy, more than max_unhealthy_instance_percent=20" \
        in rollout.message()


def test_a_transient_fault_on_the_demotion_after_a_verdict_says_what_was_cut_short():
    fake = FakeScaleSet(count=5, bad={"1.1.0"})
    original = fake.demote

    def demote(version_id):
        if not getattr(fake, "failed_once", False):
            fake.failed_once = True
            raise sdk_failure(http_error(503, "ServiceUnavailable"), action="update")
        return original(version_id)

    fake.demote = demote
    first = run(fake, "1.1.0", demote_image_version_on_failure=True)

    assert first.result["status"] == "interrupted" and first.result["rollback"] is None
    assert first.result["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert first.stopped_message.startswith("Rollout of scale set rg/api halted after batch 1 of 3: 2 of 2 upgraded")
    assert "; then a transient fault interrupted the demotion: Failed to update scale set rg/api: " \
        "ServiceUnavailable" in first.stopped_message
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling"

    second = run(fake, "1.1.0", demote_image_version_on_failure=True)   # the resume check judges again
    assert second.result["status"] == "rolled_back" and len(fake.demoted) == 1
    assert [b["kind"] for b in second.result["batches"]] == ["resume"]
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}


def test_batches_are_numbered_rollout_wide_across_calls():
    """The rollback point keeps the batches planned at the model change: each later call of the same rollout
    numbers its batches after those done, in its result and in its message."""
    from ansible_collections.fleetops.vmss.plugins.modules.rollout import number_batches

    fake = FakeScaleSet(count=5)
    first = run(fake, "1.1.0", max_batches=1)
    second = run(fake, "1.1.0", max_batches=1)
    fake.health["4"] = "Unhealthy"
    third = run(fake, "1.1.0", max_batches=1, max_unhealthy_upgraded_instance_percent=10)

    numbered = [number_batches(call.result, call.first_number) for call in (first, second, third)]
    assert [[b["number"] for b in result["batches"]] for result in numbered] == [[1], [2], [3]]
    assert [result["batches_total"] for result in numbered] == [3, 3, 3]
    assert [b["number"] for b in numbered[1]["plan"]["batches"]] == [2, 3]
    assert numbered[2]["halt"]["batch_number"] == 3 and numbered[2]["halt"]["batch_index"] == 0
    assert third.message().startswith("Rollout of scale set rg/api halted after batch 3 of 3: ")
    assert planner.decode_marker(fake.resource["tags"])["planned"] == 3   # kept through the rollback


def test_first_batch_number_from_the_rollback_point():
    marker = planner.new_marker({}, {}, "t", planned=5)
    assert planner.first_batch_number(None, 5, False) == 1                  # a rollout starting now
    assert planner.first_batch_number({"state": "rolling"}, 3, False) == 1  # a rollback point of an older version
    assert planner.first_batch_number(marker, 3, False) == 3                # 2 done, 3 left
    assert planner.first_batch_number(marker, 3, True) == 2                 # the resume check watches batch 2 again
    assert planner.first_batch_number(marker, 5, True) == 1


# --- the batch judged from the instance list, the operation's outcome read without waiting for it ---------

def test_the_next_batch_starts_while_the_operations_poll_is_still_pending():
    fake = FakeScaleSet()
    fake.pending_polls = 10 ** 6   # Azure's first Retry-After (35-61 s) not over yet: the poller says "running"
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "succeeded"
    names = [call[:2] if isinstance(call, tuple) else (call,) for call in fake.calls]
    upgrades = [("upgrade", ["0", "1"]), ("upgrade", ["2", "3"]), ("upgrade", ["4"])]
    assert [call for call in names if call[0] == "upgrade"] == upgrades
    # every batch written before any operation's outcome was read; each outcome still read before success
    assert names.index(upgrades[-1]) < min(names.index(("outcome", ids)) for _name, ids in upgrades)
    assert [call[1] for call in names if call[0] == "outcome"] == [ids for _name, ids in upgrades]
    assert names.index(("outcome", ["4"])) < max(at for at, call in enumerate(names) if call[0] == "update")


def test_a_failed_operation_still_halts_with_its_code_and_rolls_back():
    fake = FakeScaleSet()
    original = fake.upgrade

    def upgrade(ids):
        if ids == ["2", "3"]:   # the operation is accepted; the instances' provisioning fails
            fake.calls.append(("upgrade", list(ids)))
            fake.counter.count(write=True)
            return None
        return original(ids)

    fake.upgrade = upgrade
    fake.upgrade_outcomes = [None, failure("VMExtensionProvisioningError")]
    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["halt"]["code"] == "UpgradeFailed" and result["halt"]["batch_index"] == 1
    assert "VMExtensionProvisioningError" in result["halt"]["reason"]
    assert [b["outcome"] for b in result["batches"]] == ["healthy", "failed"]
    assert result["status"] == "rolled_back" and result["rollback"]["instance_ids"] == ["0", "1"]


def test_an_operation_that_fails_after_its_batch_looked_done_halts_before_success():
    fake = FakeScaleSet()
    fake.pending_polls = 10 ** 6
    fake.upgrade_outcomes = [None, None, failure("OSProvisioningTimedOut")]
    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["status"] == "rolled_back" and result["halt"]["code"] == "UpgradeFailed"
    assert result["halt"]["batch_index"] == 2 and "OSProvisioningTimedOut" in result["halt"]["reason"]
    assert result["rollback"]["instance_ids"] == ["0", "1", "2", "3", "4"]


def test_a_transient_fault_reading_an_operation_interrupts_without_a_verdict():
    fake = FakeScaleSet()
    fake.pending_polls = 10 ** 6
    fake.upgrade_outcomes = [http_error(429, "TooManyRequests")]   # the poller's last poll throttled, retries spent
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "interrupted" and rollout.result["rollback"] is None
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling"


def test_a_failed_rollback_operation_fails_the_rollback_keeping_the_rollback_point():
    fake = FakeScaleSet(bad=("1.1.0",))
    fake.upgrade_outcomes = [None, failure("VMExtensionProvisioningError")]   # the batch's, then the rollback's
    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert result["status"] == "rollback_failed" and result["rollback"]["outcome"] == "failed"
    assert "; rollback failed: " in result["halt"]["reason"] and "VMExtensionProvisioningError" in result["halt"]["reason"]
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling_back"


# --- metric gates (the judging itself: test_metrics.py) -------------------------------------------------------

def metric_monitor(fake, rates, fault=None):
    """An azure-mgmt-monitor client whose ``metrics.list`` answers ``rates[version]`` failed requests per instance
    and grain (VMName series naming the instance id), or raises ``fault``: three complete grains since the read's
    moment, and the grain in progress."""
    import datetime  # pylint: disable=import-outside-toplevel
    from types import SimpleNamespace as NS  # pylint: disable=import-outside-toplevel

    def list_metrics(resource, **kwargs):  # pylint: disable=unused-argument
        if fault is not None:
            raise fault
        read = datetime.datetime.now(datetime.timezone.utc)
        series = [NS(metadatavalues=[NS(name=NS(value="VMName"), value=str(i))],
                     data=[NS(time_stamp=read + datetime.timedelta(seconds=grain), total=float(rates[vm["version"]]))
                           for grain in range(4)]) for i, vm in fake.vms.items()]
        return NS(value=[NS(timeseries=series)])

    return lambda: NS(metrics=NS(list=list_metrics))


def run_gated(fake, monitor, **overrides):
    gate = {"metric": "requests/failed", "aggregation": "total", "max_ratio_to_baseline": 2, "min_samples": 3}
    return run(fake, "1.1.0", monitor=monitor, metric_gates=[gate], **overrides)


def test_a_healthy_batch_failing_five_times_the_baseline_halts_and_rolls_back():
    fake = FakeScaleSet(count=5)
    result = run_gated(fake, metric_monitor(fake, {"1.1.0": 25, "1.0.0": 5})).result
    assert result["status"] == "rolled_back" and result["halt"]["code"] == "MetricGateFailed", result["halt"]
    [batch] = result["batches"]
    assert batch["outcome"] == "unhealthy" and batch["health"] == {"0": "Healthy", "1": "Healthy"}
    [verdict] = batch["metrics"]
    assert (verdict["value"], verdict["baseline"], verdict["ratio"], verdict["samples"]) == (25, 5, 5, 6)
    assert "25 is 5x the baseline 5" in result["halt"]["reason"]
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}


def test_gates_that_pass_let_every_batch_through_and_the_last_is_judged_without_a_baseline():
    fake = FakeScaleSet(count=5)
    result = run_gated(fake, metric_monitor(fake, {"1.1.0": 6, "1.0.0": 5})).result
    assert result["status"] == "succeeded" and [b["outcome"] for b in result["batches"]] == ["healthy"] * 3
    assert "no baseline" in result["batches"][-1]["note"]


def test_a_transient_fault_reading_metrics_interrupts_without_a_verdict():
    from azure.core.exceptions import ServiceResponseError  # pylint: disable=import-outside-toplevel

    fake = FakeScaleSet(count=5)
    rollout = run_gated(fake, metric_monitor(fake, {}, fault=ServiceResponseError("connection reset by peer")))
    result = rollout.result
    assert result["status"] == "interrupted" and result["rollback"] is None and fake.demoted == []
    assert [b["outcome"] for b in result["batches"]] == ["interrupted"]
    assert "not a verdict on the image" in rollout.stopped_message


# --- option rollback: roll back now, via the rollback point, whatever health says (the alert job) ---------------

def rollback_run(fake, check_mode=False):
    """The module's story with rollback: true (no plan, no precheck)."""
    rollout = Rollout(None, params(rollback=True), None, check_mode)
    rollout.azure = fake
    rollout.read()
    assert rollout.compare({}) == []
    rollout.roll_back_on_request()
    rollout.finish()
    return rollout


def test_a_requested_rollback_moves_back_what_the_rollout_moved_healthy_or_not():
    fake = FakeScaleSet()
    first = run(fake, "1.1.0", max_batches=1)
    assert first.result["status"] == "in_progress" and planner.decode_marker(fake.resource["tags"])["state"] == "rolling"
    moved = sorted(i for i, vm in fake.vms.items() if vm["version"] == "1.1.0")
    writes = len(fake.writes())

    rollout = rollback_run(fake)

    assert rollout.result["status"] == "rolled_back" and rollout.result["changed"] is True
    assert rollout.result["rollback"]["instance_ids"] == moved and rollout.result["rollback"]["outcome"] == "healthy"
    assert rollout.result["halt"]["code"] == "RollbackRequested"
    assert [call[0] for call in fake.writes()[writes:]] == ["update", "upgrade", "update"]
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}
    assert planner.decode_marker(fake.resource["tags"]) is None
    assert rollout.message() is None                                  # the rollback asked for: not a failure


def test_a_requested_rollback_without_a_rollback_point_does_nothing():
    fake = FakeScaleSet()
    rollout = rollback_run(fake)
    assert rollout.result["status"] == "nothing_to_do" and rollout.result["changed"] is False
    assert fake.writes() == [] and rollout.message() is None


def test_a_requested_rollback_in_check_mode_writes_nothing():
    fake = FakeScaleSet()
    run(fake, "1.1.0", max_batches=1)
    writes = len(fake.writes())
    rollout = rollback_run(fake, check_mode=True)
    assert rollout.result["status"] == "planned" and rollout.result["changed"] is True
    assert len(fake.writes()) == writes


def test_a_requested_rollback_that_stays_unhealthy_fails_keeping_the_rollback_point():
    fake = FakeScaleSet()
    run(fake, "1.1.0", max_batches=1)
    fake.bad = {"1.0.0"}                                   # the version to go back to does not come up Healthy
    rollout = rollback_run(fake)
    assert rollout.result["status"] == "rollback_failed"
    assert planner.decode_marker(fake.resource["tags"])["state"] == "rolling_back"
    assert rollout.message().startswith("Rollout of scale set rg/api: rollback of image ")


def test_metric_gates_cost_one_metrics_call_per_gate_per_batch_when_the_data_is_there():
    """The cost docs/metric_gates.md gives: gates x batches calls when every gate is judged at its first read."""
    from types import SimpleNamespace as NS  # pylint: disable=import-outside-toplevel

    fake = FakeScaleSet(count=5)
    answers, calls = metric_monitor(fake, {"1.1.0": 5, "1.0.0": 5}), []

    def monitor():
        client = answers()
        return NS(metrics=NS(list=lambda resource, **kwargs: calls.append(kwargs["metricnames"])
                             or client.metrics.list(resource, **kwargs)))

    gates = [{"metric": "requests/failed", "aggregation": "total", "max_ratio_to_baseline": 2, "min_samples": 3},
             {"metric": "requests/count", "aggregation": "total", "max": 100, "min_samples": 3}]
    rollout = run(fake, "1.1.0", monitor=monitor, metric_gates=gates)
    assert rollout.result["status"] == "succeeded" and len(rollout.result["batches"]) == 3
    assert calls == ["requests/failed", "requests/count"] * 3 and rollout.metrics.calls == 6


# --- the model PATCH not waited for through its poller; the first manual upgrade after it (issue 18) -------

def names_of(fake):
    return [call[:2] if isinstance(call, tuple) else (call,) for call in fake.calls]


def upgrades_of(fake):
    return [call for call in names_of(fake) if call[0] == "upgrade"]


def test_the_first_batch_starts_when_the_set_is_succeeded_not_when_the_patchs_poller_ends():
    fake = FakeScaleSet()
    fake.updating_reads = 3   # Azure's GET says Updating three more times; the PATCH's poller is never waited on
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "succeeded"
    names = names_of(fake)
    patched, applied = names.index(("patched", False)), names.index(("applied", "Succeeded"))
    assert names[patched + 1:applied] == [("read",)] * 4 and applied < names.index(("upgrade", ["0", "1"]))
    assert upgrades_of(fake) == [("upgrade", ["0", "1"]), ("upgrade", ["2", "3"]), ("upgrade", ["4"])]   # no 409


def test_a_409_on_the_first_manual_upgrade_after_the_patch_is_asked_again_not_judged():
    fake = FakeScaleSet()
    fake.upgrade_errors = [sdk_failure(http_error(409, "Conflict", "another operation is in progress"))]
    rollout = run(fake, "1.1.0")

    assert rollout.result["status"] == "succeeded" and rollout.result["halt"] is None
    assert upgrades_of(fake) == [("upgrade", ["0", "1"]), ("upgrade", ["0", "1"]), ("upgrade", ["2", "3"]),
                                 ("upgrade", ["4"])]
    assert [b["outcome"] for b in rollout.result["batches"]] == ["healthy"] * 3


def test_a_409_on_a_later_batch_is_not_asked_again_it_interrupts():
    fake = FakeScaleSet()
    original = fake.upgrade

    def upgrade(ids):
        if ids == ["2", "3"]:
            fake.calls.append(("upgrade", list(ids)))
            raise sdk_failure(http_error(409, "Conflict"))
        return original(ids)

    fake.upgrade = upgrade
    rollout = run(fake, "1.1.0")
    assert rollout.result["status"] == "interrupted" and rollout.result["halt"]["code"] == "Conflict"
    assert upgrades_of(fake) == [("upgrade", ["0", "1"]), ("upgrade", ["2", "3"])]


def test_the_rollbacks_patch_is_not_waited_through_its_poller_and_its_upgrade_asks_again_on_409():
    fake = FakeScaleSet(bad=("1.1.0",))
    fake.updating_reads = 2
    original = fake.update

    def update(body, wait=True, action="update"):
        after = original(body, wait, action)
        if "virtualMachineProfile" in (body.get("properties") or {}) and fake.model_version() == "1.0.0":
            fake.upgrade_errors.append(sdk_failure(http_error(409, "Conflict")))   # the rollback's upgrade, once
        return after

    fake.update = update
    rollout = run(fake, "1.1.0")

    result = rollout.result
    assert result["status"] == "rolled_back" and result["rollback"]["outcome"] == "healthy"
    names = names_of(fake)
    assert names.count(("patched", False)) == 2 and names.count(("applied", "Succeeded")) == 2
    assert upgrades_of(fake) == [("upgrade", ["0", "1"]), ("upgrade", ["0", "1"]), ("upgrade", ["0", "1"])]
    assert {vm["version"] for vm in fake.vms.values()} == {"1.0.0"}


def test_later_batches_look_when_the_first_batch_was_seen_done():
    fake = FakeScaleSet()
    run(fake, "1.1.0")
    # per batch: the upgrade's watch, then the health watch; the first batch's upgrade is watched every wait_sleep,
    # its health from the moment it was seen upgraded plus the health extension's settle time (5 x 1 probes here)
    assert list(fake.looks_due[0] or ()) == []
    assert fake.looks_due[1] and all(isinstance(at, float) for at in fake.looks_due[1])
    assert all(due and all(isinstance(at, float) for at in due) for due in fake.looks_due[2:])
    assert len(fake.looks_due) == 6


@pytest.fixture
def fake_clock(monkeypatch):
    """The run's monotonic clock starts at 1000 s and moves only when it sleeps."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(run_module.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(run_module.time, "sleep", lambda seconds: clock.update(now=clock["now"] + seconds))
    return clock


@pytest.mark.usefixtures("fake_clock")
def test_a_later_batch_is_seen_upgraded_and_healthy_by_one_list_aimed_at_the_healthy_moment():
    fake = FakeScaleSet(count=4)
    rollout = model_changed(fake, wait_sleep=5, wait_timeout=3600)
    # earlier batches: seen upgraded 118-122 s after their write, healthy 120-130 s after it
    rollout.expected = {"upgraded": (118.0, 122.0), "healthy": (120.0, 130.0)}
    listed = rollout.upgrade(["0", "1"], rollout.moves)
    posted = rollout.posted
    # the upgrade's looks aim at the healthy moments (mid-way into the bracket, then its end), not the upgraded ones
    assert fake.looks_due == [[posted + 125.0, posted + 130.0]]
    assert rollout.looked == [posted + 62.5]   # the first look: half-way to the first moment (_rollout.next_look)
    gate, _listed, timed_out = rollout.watch_health(rollout.gate(["0", "1"]), listed)
    assert gate["state"] == "passed" and not timed_out
    assert fake.calls.count("list") == 2   # the plan's, and the one list that saw the batch upgraded and healthy
    # seen by a look before the bracket (the fake's instances are done at once): this batch's bracket replaces it
    assert rollout.expected["healthy"] == (None, 62.5)


@pytest.mark.usefixtures("fake_clock")
def test_before_any_batch_was_judged_health_is_looked_for_when_the_extension_settles_after_the_upgrade():
    fake = FakeScaleSet(count=4)
    rollout = model_changed(fake, wait_sleep=5, wait_timeout=3600)
    listed = rollout.upgrade(["0", "1"], rollout.moves)
    assert fake.looks_due == [[]] and rollout.looked == [rollout.posted + 5.0]   # every wait_sleep: nothing known
    assert rollout.expected == {"upgraded": (None, 5.0)} and rollout.settle > 0
    rollout.watch_health(rollout.gate(["0", "1"]), listed)
    assert fake.looks_due[-1] == [rollout.posted + 5.0 + rollout.settle]


def test_while_the_upgrade_runs_a_look_stops_at_the_first_batch_instance_not_yet_upgraded():
    fake = FakeScaleSet(count=6)
    fake.pending_polls = 10   # the operation still running at every look
    rollout = model_changed(fake)
    fake.upgrade = lambda ids: fake.calls.append(("upgrade", list(ids)))   # accepted, nothing moved yet
    seen = []
    original = fake.instances

    def instances(until=None):
        return original(lambda instance: seen.append(instance["instance_id"]) or until(instance))

    fake.instances = instances
    with pytest.raises(AzureFailure, match="Timeout"):
        rollout.upgrade(["2", "3"], rollout.moves)
    assert seen == ["0", "1", "2"]   # instances 3 to 5 (their pages) not read: 2 says the batch is not done


# --- extension rollouts (issue 19): write-only parts, the rollback point, the restore ------------------------

SECRET = {"commandToExecute": "./install.sh --token s3cr3t-v2"}
PREVIOUS = {"commandToExecute": "./install.sh --token s3cr3t-v1"}
URIS_1, URIS_2 = ("https://pkgs.example.com/app-1.4.0.tgz",), ("https://pkgs.example.com/app-1.5.0.tgz",)


def with_app(fake, uris=URIS_1):
    """The fake's model with a custom script extension ``app`` (as Azure returns it: no protected settings)."""
    fake.resource["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].append(
        {"name": "app", "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                                       "typeHandlerVersion": "2.1", "settings": {"fileUris": list(uris)}}})
    return fake


def compared(fake, desired, **overrides):
    rollout = Rollout(None, params(**overrides), None)
    rollout.azure = fake
    rollout.read()
    return rollout, rollout.compare(desired)


def app(uris=URIS_2, protected="secret", name="app"):
    """The extension option; ``protected``: its protected settings, "secret" for SECRET."""
    out = {"name": name, "settings": {"fileUris": list(uris)}}
    protected = SECRET if protected == "secret" else protected
    return dict(out, protected_settings=protected) if protected is not None else out


def test_protected_settings_that_could_not_be_restored_refuse_the_rollout_before_any_write():
    fake = with_app(FakeScaleSet(count=4))
    _rollout, errors = compared(fake, {"extensions": [app()]})
    [error] = errors
    assert "a rollback could not restore the previous protected_settings.app" in error
    assert "Give previous_protected_settings.app" in error and "on_failure=halt" in error
    assert "s3cr3t" not in error and fake.writes() == []
    # accepted: a rollout that halts without rolling back; or restorable: the previous value given
    assert compared(fake, {"extensions": [app()]}, on_failure="halt")[1] == []
    assert compared(fake, {"extensions": [app()]}, previous_protected_settings={"APP": PREVIOUS})[1] == []
    # protected settings go with a changed extension list only: an image change alone sends (and needs) none
    rollout, errors = compared(fake, {"image": dict(IMAGE, version="1.1.0"), "extensions": [app(URIS_1)]})
    assert errors == [] and rollout.secrets == []
    # an extension the rollout adds needs nothing: the rollback removes it
    assert compared(fake, {"extensions": [app(name="agent")]})[1] == []
    # custom data is write-only too
    errors = compared(fake, {"extensions": [app(protected=None)], "os_profile": {"custom_data": "#cloud-config"}})[1]
    assert len(errors) == 1 and "previous_custom_data" in errors[0]
    assert fake.writes() == []


def test_the_model_change_sends_the_secrets_and_the_rollback_point_keeps_only_their_names():
    fake = with_app(FakeScaleSet(count=4))
    rollout, errors = compared(fake, {"extensions": [app()], "os_profile": {"custom_data": "#cloud-config v2"}},
                               previous_protected_settings={"app": PREVIOUS}, previous_custom_data="#cloud-config v1")
    assert errors == [] and rollout.moves == {"extensions": [{"name": "app", "settings": {"fileUris": list(URIS_2)}}]}
    assert rollout.before == {"extensions": [{"name": "app", "settings": {"fileUris": list(URIS_1)}}]}
    assert rollout.plan() is None
    rollout.change_model()
    [(kind, body)] = fake.writes()
    vm = body["properties"]["virtualMachineProfile"]
    [sent] = [ext for ext in vm["extensionProfile"]["extensions"] if ext["name"] == "app"]
    assert sent["properties"]["protectedSettings"] == SECRET and sent["properties"]["settings"] == {"fileUris": list(URIS_2)}
    assert vm["osProfile"]["customData"] == "I2Nsb3VkLWNvbmZpZyB2Mg=="          # base64 of "#cloud-config v2"
    marker = planner.decode_marker(body["tags"])
    assert marker["secrets"] == ["custom_data", "extensions/app/protected_settings"]
    assert marker["before"] == {"extensions": [{"name": "app", "settings": {"fileUris": list(URIS_1)}}]}
    assert "s3cr3t" not in json.dumps(body["tags"]) and "cloud-config" not in json.dumps(body["tags"])
    assert kind == "update" and "s3cr3t" not in json.dumps(rollout.result) and "s3cr3t" not in json.dumps(rollout.diff())


def test_the_restore_puts_back_settings_and_secrets_from_the_previous_values_and_removes_what_was_added():
    fake = with_app(FakeScaleSet(count=4))
    rollout, _errors = compared(fake, {"extensions": [app(), app(name="agent", protected={"k": "new"})],
                                       "os_profile": {"custom_data": "v2"}},
                                previous_protected_settings={"app": PREVIOUS}, previous_custom_data="v1")
    assert rollout.before["extensions"] == [{"name": "app", "settings": {"fileUris": list(URIS_1)}},
                                            {"name": "agent", "absent": True}]
    after = with_app(FakeScaleSet(count=4), URIS_2).resource      # the scale set after the model change
    after["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].append(
        {"name": "agent", "properties": {"settings": {"fileUris": list(URIS_2)}}})
    body = rollout.restore_body(after)
    extensions = body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert [ext["name"] for ext in extensions] == ["health", "app"]                       # agent removed
    assert extensions[1]["properties"]["settings"] == {"fileUris": list(URIS_1)}
    assert extensions[1]["properties"]["protectedSettings"] == PREVIOUS
    assert body["properties"]["virtualMachineProfile"]["osProfile"]["customData"] == "djE="   # "v1"
