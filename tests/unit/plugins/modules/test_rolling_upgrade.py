# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rolling_upgrade over the real SDK pipeline: which POST it sends (or not), the wait through GetLatest with its
progress samples, a stale read after a start, Faulted and timeout failures, check mode, a missing scale set."""

from __future__ import annotations

import re

import pytest

from azure_fakes import arm_error
from module_runner import SUB, run_module, serve_lease, writes
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline
from ansible_collections.fleetops.vmss.plugins.modules import rolling_upgrade

VMSS_PATH = r"/resourceGroups/payments/providers/Microsoft\.Compute/virtualMachineScaleSets/api"
VMSS_ID = "/subscriptions/%s/resourceGroups/payments/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB
OPERATION = ("https://management.azure.com/subscriptions/%s/providers/Microsoft.Compute/locations/westeurope/"
             "operations/op?api-version=2026-04-01" % SUB)
T0, T1 = "2026-11-22T04:00:00.100000Z", "2026-11-22T04:30:00.500000Z"


def latest(code, start=T1, done=0, failed=0, running=0, pending=0, error=None, last_action="Start"):
    props = {"policy": {"maxBatchInstancePercent": 20},
             "runningStatus": {"code": code, "startTime": start, "lastAction": last_action, "lastActionTime": start},
             "progress": {"successfulInstanceCount": done, "failedInstanceCount": failed,
                          "inProgressInstanceCount": running, "pendingInstanceCount": pending}}
    if error:
        props["error"] = error
    return 200, {}, {"location": "westeurope", "type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades",
                     "properties": props}


def serve(arm, statuses):
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, {"id": VMSS_ID, "name": "api", "location": "westeurope"})])
    serve_lease(arm, VMSS_PATH, {"id": VMSS_ID, "name": "api", "location": "westeurope"})
    arm.route("GET", VMSS_PATH + r"/rollingUpgrades/latest\?", statuses)
    accepted = (202, {"Azure-AsyncOperation": OPERATION, "retry-after-ms": "10"}, None)
    for path in ("osRollingUpgrade", "extensionRollingUpgrade", "rollingUpgrades/cancel"):
        arm.route("POST", VMSS_PATH + "/" + path + r"\?", [accepted])


def run(args, capsys):
    return run_module(rolling_upgrade, dict({"resource_group": "payments", "name": "api", "wait_sleep": 0.01}, **args),
                      capsys)


@pytest.fixture
def expired(monkeypatch):
    """A 1-second wait_timeout already spent when the module first looks (wait_timeout must be above 0)."""
    spent = iter(range(0, 10**6, 5))
    monkeypatch.setattr(rolling_upgrade, "Deadline",
                        lambda timeout: Deadline(timeout, clock=lambda: next(spent)))


def posted(arm):
    """The actions POSTed (the lease's PATCHes of the scale set's tags aside)."""
    return [request.url.split("/api/")[1].split("?")[0] for request in writes(arm) if request.method == "POST"]


@pytest.mark.parametrize("action, path", [("start_os_upgrade", "osRollingUpgrade"),
                                          ("start_extension_upgrade", "extensionRollingUpgrade")])
def test_start_waits_for_the_new_upgrade_and_keeps_each_change_of_progress(arm, capsys, sleeps, action, path):
    serve(arm, [latest("Completed", start=T0, done=4),          # before: an older upgrade
                latest("Completed", start=T0, done=4),          # a stale read right after the start
                latest("RollingForward", running=1, pending=3),
                latest("RollingForward", running=1, pending=3),  # unchanged: not sampled again
                latest("RollingForward", done=1, running=1, pending=2),
                latest("Completed", done=4)])
    code, result = run({"action": action}, capsys)
    assert code == 0 and result["changed"] is True
    assert posted(arm) == [path]
    assert result["running_status"]["code"] == "Completed" and result["running_status"]["start_time"] == T1
    assert result["progress"] == {"successful_instance_count": 4, "failed_instance_count": 0,
                                  "in_progress_instance_count": 0, "pending_instance_count": 0}
    assert result["error"] is None and result["policy"] == {"max_batch_instance_percent": 20}
    history = [(s["code"], s["successful_instance_count"], s["in_progress_instance_count"], s["pending_instance_count"])
               for s in result["progress_history"]]
    assert history == [("RollingForward", 0, 1, 3), ("RollingForward", 1, 1, 2), ("Completed", 4, 0, 0)]
    times = [s["time"] for s in result["progress_history"]]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert result["arm_requests"] == 1 + 6 + 1 + 1   # the scale set, six status reads, one POST, the lease's PATCH


def test_a_start_while_one_rolls_forward_starts_nothing_and_waits_for_it(arm, capsys, sleeps):
    serve(arm, [latest("RollingForward", start=T0, running=2, pending=2), latest("Completed", start=T0, done=4)])
    code, result = run({"action": "start_extension_upgrade"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])
    assert result["running_status"]["code"] == "Completed"
    assert [s["code"] for s in result["progress_history"]] == ["Completed"]


def test_faulted_upgrade_fails_with_azures_code(arm, capsys, sleeps):
    error = {"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
             "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value.\n"
                        "First failed instance ID is: 0."}
    serve(arm, [arm_error("NotFound", "The entity was not found in this Azure location.", 404),
                latest("RollingForward", running=1, pending=3), latest("Faulted", done=0, failed=1, pending=3,
                                                                       error=error)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert code == 1 and result["changed"] is True and posted(arm) == ["osRollingUpgrade"]
    assert result["msg"] == ("Failed to roll out the OS upgrade of scale set payments/api: "
                             "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade: Rolling Upgrade failed "
                             "after exceeding the MaxUnhealthyUpgradedInstancePercent value. First failed instance ID is: 0.")
    assert result["running_status"]["code"] == "Faulted" and result["progress"]["failed_instance_count"] == 1
    assert result["error"]["code"] == error["code"]


def test_cancel_sends_only_when_one_rolls_forward(arm, capsys, sleeps):
    serve(arm, [latest("Completed", start=T0, done=4)])
    code, result = run({"action": "cancel"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])
    assert result["running_status"]["code"] == "Completed" and result["progress_history"] == []

    arm.routes.clear()
    arm.requests.clear()
    serve(arm, [latest("RollingForward", running=1, pending=2), latest("RollingForward", running=1, pending=2,
                                                                       last_action="Cancel"),
                latest("Faulted", done=1, failed=1, last_action="Cancel",
                       error={"code": "RollingUpgradeInProgressWithFailedUpgradedVMs", "message": "1 failed"})])
    code, result = run({"action": "cancel"}, capsys)
    assert code == 0 and result["changed"] is True and posted(arm) == ["rollingUpgrades/cancel"]
    assert result["running_status"]["code"] == "Faulted"   # a cancel's own wait does not fail on the outcome


def test_a_start_cancelled_by_someone_else_fails(arm, capsys, sleeps):
    serve(arm, [latest("RollingForward", running=1), latest("Cancelled", done=1, last_action="Cancel")])
    code, result = run({"action": "status"}, capsys)
    assert code == 1 and writes(arm) == [] and result["changed"] is False
    assert result["msg"].startswith("Failed to complete the rolling upgrade of scale set payments/api: Cancelled: "
                                    "the rolling upgrade was cancelled (last action Cancel at ")


def test_check_mode_and_status_without_wait_write_nothing(arm, capsys, sleeps):
    serve(arm, [latest("Completed", start=T0, done=4)])
    code, result = run({"action": "start_os_upgrade", "_ansible_check_mode": True}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, True, [])
    assert result["running_status"]["start_time"] == T0   # what is there now

    arm.routes.clear()
    serve(arm, [latest("RollingForward", running=2)])
    code, result = run({"action": "status", "wait": False}, capsys)
    assert (code, result["changed"], writes(arm), result["running_status"]["code"]) == (0, False, [], "RollingForward")


def test_never_an_upgrade(arm, capsys, sleeps):
    serve(arm, [arm_error("NotFound", "The entity was not found in this Azure location.", 404)])
    code, result = run({"action": "status"}, capsys)
    assert code == 0 and result["changed"] is False
    assert [result[key] for key in ("running_status", "progress", "error", "policy")] == [None] * 4


def test_timeout_fails_and_says_the_upgrade_goes_on(arm, capsys, sleeps, expired):
    serve(arm, [latest("RollingForward", start=T0, running=1, pending=3)])
    code, result = run({"action": "status", "wait_timeout": 1}, capsys)
    assert code == 1 and result["error"]["code"] == "Timeout"
    assert result["msg"] == ("Failed to wait for the rolling upgrade of scale set payments/api: Timeout: still "
                             "RollingForward after 1 seconds; it goes on in Azure (action=cancel stops it)")


def test_missing_scale_set_and_a_refused_start(arm, capsys, sleeps):
    arm.route("GET", VMSS_PATH + r"\?", [arm_error("ResourceNotFound", "nope", 404)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert code == 1 and writes(arm) == []
    assert result["msg"] == ("Failed to roll out the OS upgrade of scale set payments/api: ResourceNotFound: "
                             "the scale set does not exist.")

    arm.routes.clear()
    serve(arm, [arm_error("NotFound", "none", 404)])
    arm.routes.insert(0, ("POST", re.compile("osRollingUpgrade"), [arm_error(
        "OperationNotAllowed", "The OS Rolling Upgrade API cannot be used on a Virtual Machine Scale Set unless ...",
        409)]))
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert code == 1 and result["error"]["status"] == 409 and result["changed"] is False
    assert result["msg"].startswith("Failed to roll out the OS upgrade of scale set payments/api: OperationNotAllowed: "
                                    "The OS Rolling Upgrade API cannot be used")


def test_an_unreadable_scale_set_fails_once_with_the_run_s_result(arm, capsys, sleeps):
    arm.route("GET", VMSS_PATH + r"\?", [arm_error("AuthorizationFailed", "no read permission", 403)])
    code, result = run({"action": "status"}, capsys)
    assert code == 1 and writes(arm) == []
    assert result["msg"] == "Failed to get scale set payments/api: AuthorizationFailed: no read permission"
    assert result["error"]["code"] == "AuthorizationFailed" and result["error"]["status"] == 403
    assert result["progress_history"] == [] and result["decision"] is None
    assert result["changed"] is False and result["arm_requests"] == 1


def test_timeout_before_azure_shows_the_new_upgrade(arm, capsys, sleeps, expired):
    serve(arm, [latest("Completed", start=T0, done=4)])   # GetLatest keeps showing the previous upgrade
    code, result = run({"action": "start_os_upgrade", "wait_timeout": 1}, capsys)
    assert code == 1 and result["changed"] is True and posted(arm) == ["osRollingUpgrade"]
    assert "Timeout: the new upgrade not yet reported after 1 seconds" in result["msg"]
    assert result["progress_history"] == []   # the previous upgrade is not sampled as this one


# --- Azure's automatic OS upgrade already went for the version "latest" resolves to -----------------------------

GALLERY = "/subscriptions/%s/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments" % SUB
UNHEALTHY = {"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
             "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value."}


def version(name, exclude=False):
    return {"id": GALLERY + "/versions/" + name, "name": name, "location": "westeurope", "properties": {
        "provisioningState": "Succeeded",
        "publishingProfile": {"targetRegions": [{"name": "West Europe"}], "excludeFromLatest": exclude,
                              "publishedDate": "2026-11-22T03:00:00Z"},
        "replicationStatus": {"aggregatedState": "Completed", "summary": [
            {"region": "West Europe", "state": "Completed", "progress": 100}]}}}


def os_history(code, target, start=T0, error=None, started_by="Platform", done=1, failed=0):
    entry = latest(code, start=start, done=done, failed=failed, error=error)[2]
    entry["properties"].pop("policy")
    entry["properties"].update(startedBy=started_by, targetImageReference={"id": GALLERY, "exactVersion": target},
                               rollbackInfo={"successfullyRolledbackInstanceCount": failed,
                                             "failedRolledbackInstanceCount": 0})
    return entry


def serve_following_latest(arm, statuses, history, versions=("1.6.0", "1.7.0")):
    """A scale set on `latest` of a gallery image (1.7.0 is "latest" in westeurope) and its OS upgrade history."""
    doc = {"id": VMSS_ID, "name": "api", "location": "westeurope",
           "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"id": GALLERY}}}}}
    arm.route("GET", VMSS_PATH + r"\?", [(200, {}, doc)])
    serve_lease(arm, VMSS_PATH, doc)
    arm.route("GET", r"/images/payments/versions\?", [(200, {}, {"value": [version(n) for n in versions]})])
    for name in versions:
        arm.route("GET", r"/images/payments/versions/%s\?" % re.escape(name), [(200, {}, version(name))])
    arm.route("GET", VMSS_PATH + r"/osUpgradeHistory\?", [(200, {}, {"value": history})])
    serve(arm, statuses)


def test_an_automatic_upgrade_that_faulted_on_the_target_is_reported_not_started_again(arm, capsys, sleeps):
    serve_following_latest(arm, [latest("Faulted", start=T0, failed=1, error=UNHEALTHY)],
                           [os_history("Faulted", "1.7.0", error=UNHEALTHY, done=0, failed=1)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert code != 0 and result["changed"] is False and writes(arm) == []
    assert result["decision"] == "already_faulted" and result["target_version"] == "1.7.0"
    assert result["started_by"] == "Platform" and result["moved_instance_count"] == 0
    assert result["error"]["code"] == UNHEALTHY["code"]
    assert result["msg"] == (
        "Failed to roll out the OS upgrade of scale set payments/api: %s: %s (the OS upgrade Azure started at %s for "
        "version 1.7.0 already ended Faulted; no other upgrade was started)"
        % (UNHEALTHY["code"], UNHEALTHY["message"], T0))


def test_an_automatic_upgrade_that_completed_the_target_leaves_nothing_to_do(arm, capsys, sleeps):
    serve_following_latest(arm, [latest("Completed", start=T0, done=4)], [os_history("Completed", "1.7.0", done=4)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])
    assert result["decision"] == "already_completed" and result["moved_instance_count"] == 0
    assert result["running_status"]["code"] == "Completed" and result["progress"]["successful_instance_count"] == 4


def test_an_upgrade_to_an_older_version_does_not_cover_the_new_latest(arm, capsys, sleeps):
    serve_following_latest(arm, [latest("Completed", start=T0, done=4), latest("RollingForward", done=1, pending=3),
                                 latest("Completed", done=4)],
                           [os_history("Completed", "1.6.0", done=4)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert code == 0 and result["changed"] is True and posted(arm) == ["osRollingUpgrade"]
    assert result["decision"] == "start" and result["started_by"] == "User"
    assert result["moved_instance_count"] == 3               # 1 counted at the start needed no move


def test_joining_the_automatic_upgrade_counts_what_it_moves_from_then(arm, capsys, sleeps):
    serve_following_latest(arm, [latest("RollingForward", start=T0, done=1, pending=3),
                                 latest("Completed", start=T0, done=4)],
                           [os_history("RollingForward", "1.7.0", done=1)])
    code, result = run({"action": "start_os_upgrade"}, capsys)
    assert (code, result["changed"], writes(arm)) == (0, False, [])
    assert result["decision"] == "join" and result["started_by"] == "Platform"
    assert result["moved_instance_count"] == 3


def test_check_mode_reports_the_decision_without_writing(arm, capsys, sleeps):
    serve_following_latest(arm, [latest("Completed", start=T0, done=4)], [os_history("Completed", "1.6.0", done=4)])
    code, result = run({"action": "start_os_upgrade", "_ansible_check_mode": True}, capsys)
    assert (code, result["changed"], result["decision"], writes(arm)) == (0, True, "start", [])


def test_approve_options_are_refused_with_another_action_before_any_request(arm, capsys, sleeps):
    code, result = run({"action": "status", "max_instances": 2, "instance_ids": ["0"]}, capsys)
    assert code == 1 and arm.requests == []
    assert result["msg"] == ("Invalid options: instance_ids is only for action=approve. "
                             "max_instances is only for action=approve.")
    code, result = run({"action": "approve", "max_instances": 0}, capsys)
    assert code == 1 and arm.requests == [] and result["msg"] == "Invalid options: max_instances must be at least 1."


def test_approve_with_no_os_upgrade_rolling_forward_sends_nothing(arm, capsys, sleeps):
    serve(arm, [latest("Completed", start=T0, done=4)])
    vm = {"instanceId": "0", "name": "api_0", "properties": {"storageProfile": {"imageReference": {
        "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/api",
        "exactVersion": "1.0.0"}}}}
    arm.route("GET", VMSS_PATH + r"/virtualMachines\?", [(200, {}, {"value": [vm]})])
    code, result = run({"action": "approve", "instance_ids": ["0"]}, capsys)
    assert code == 0 and writes(arm) == []
    assert (result["changed"], result["decision"], result["approved_instance_ids"], result["pending_instance_ids"]) == (
        False, "nothing_to_approve", [], [])
    code, result = run({"action": "approve", "instance_ids": ["7"]}, capsys)
    assert code == 1 and writes(arm) == [] and result["error"]["code"] == "InvalidParameter"
    assert "instance_ids names instances the scale set does not have: 7." in result["msg"]


def approval_run(rates, failures):
    """What judge_metrics reads of the module's run: approved 0-1 on the new image, 2-3 pending; a monitor client
    answering ``rates[instance id]`` failed requests per grain (three complete grains after now, one in progress)."""
    import datetime  # pylint: disable=import-outside-toplevel
    from types import SimpleNamespace as NS  # pylint: disable=import-outside-toplevel

    def list_metrics(resource, **kwargs):  # pylint: disable=unused-argument
        read = datetime.datetime.now(datetime.timezone.utc)
        return NS(value=[NS(timeseries=[NS(metadatavalues=[NS(name=NS(value="VMName"), value="api_%s" % i)],
                                           data=[NS(time_stamp=read + datetime.timedelta(seconds=grain), total=float(rate))
                                                 for grain in range(4)]) for i, rate in rates.items()])])

    def watch(predicate, timeout=None, observe=None, what=None):  # pylint: disable=unused-argument
        verdict = predicate(observe())
        return verdict, 1, False

    def fail(verb, code, reason, **kwargs):  # pylint: disable=unused-argument
        failures.append((code, reason))
        raise RuntimeError(code)

    scale_set = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB
    return NS(module=NS(client=lambda name: NS(metrics=NS(list=list_metrics))), azure=NS(id=scale_set, watch=watch),
              params={"metric_gates": [{"metric": "requests/failed", "aggregation": "total", "max_ratio_to_baseline": 2,
                                        "min_samples": 3}], "wait_timeout": 60},
              approved=["0", "1"], pending=["2", "3"], gates=None, fail=fail)


LISTED = [{"instance_id": str(i), "name": "api_%d" % i} for i in range(4)]


def test_approved_instances_failing_five_times_the_pending_fail_the_metric_gate():
    failures = []
    run = approval_run({"0": 25, "1": 25, "2": 5, "3": 5}, failures)
    with pytest.raises(RuntimeError):
        rolling_upgrade.judge_metrics(run, LISTED)
    [(code, reason)] = failures
    assert code == "MetricGateFailed" and "25 is 5x the baseline 5" in reason
    [verdict] = run.gates
    assert (verdict["value"], verdict["baseline"], verdict["samples"], verdict["baseline_samples"]) == (25, 5, 6, 6)


def test_approved_instances_like_the_pending_pass_the_metric_gate():
    failures = []
    run = approval_run({"0": 6, "1": 6, "2": 5, "3": 5}, failures)
    rolling_upgrade.judge_metrics(run, LISTED)
    assert failures == [] and [v["state"] for v in run.gates] == ["passed"]
