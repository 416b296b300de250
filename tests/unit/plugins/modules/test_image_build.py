# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_build over the real SDK pipeline: when a build is started (and when not), failures, run outputs."""

from __future__ import annotations

from module_runner import SUB, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import image_build

TEMPLATE = r"/resourceGroups/img/providers/Microsoft\.VirtualMachineImages/imageTemplates/web-1-0-0"
VERSION = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0" % SUB


def template(run=None):
    props = {"provisioningState": "Succeeded", "buildTimeoutInMinutes": 60,
             "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "o", "sku": "s"},
             "distribute": [{"type": "SharedImage", "runOutputName": "web", "galleryImageId": VERSION}]}
    if run:
        props["lastRunStatus"] = run
    return {"id": "/subscriptions/%s%s" % (SUB, TEMPLATE.replace("\\", "")), "name": "web-1-0-0",
            "location": "westeurope", "properties": props}


FAILED = {"runState": "Failed", "runSubState": "Customizing", "startTime": "2026-05-01T10:00:00Z",
          "endTime": "2026-05-01T10:09:00Z",
          "message": "Packer build command has failed: Customizer 'hsm-client' (Shell, step 2 of 2) failed: exit 1"}


def run(args, capsys):
    return run_module(image_build, dict({"resource_group": "img", "name": "web-1-0-0", "wait_sleep": 0.01}, **args),
                      capsys)


def test_a_build_that_succeeded_is_not_started_again(arm, capsys):
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, template({"runState": "Succeeded", "endTime": "t", "message": ""}))])
    arm.route("GET", TEMPLATE + r"/runOutputs\?", [(200, {}, {"value": [
        {"name": "web", "properties": {"artifactId": VERSION, "provisioningState": "Succeeded"}}]})])
    code, result = run({}, capsys)
    assert code == 0 and result["changed"] is False and result["started"] is False
    assert result["run_outputs"][0]["artifact_id"] == VERSION
    assert writes(arm) == []


def test_watching_does_not_restart_a_build_that_failed(arm, capsys):
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, template(FAILED))])
    arm.route("GET", TEMPLATE + r"/runOutputs\?", [(200, {}, {"value": []})])
    code, result = run({"state": "started", "wait_timeout": 5}, capsys)
    assert code == 1 and writes(arm) == []
    assert result["msg"] == ("Image build of image template img/web-1-0-0 failed: Packer build command has failed: "
                             "Customizer 'hsm-client' (Shell, step 2 of 2) failed: exit 1")
    assert "image_template" not in result and result["last_run_status"]["run_state"] == "Failed"


def test_succeeded_starts_again_after_a_failure_and_waits(arm, capsys):
    running = dict(FAILED, runState="Running", startTime="2026-05-01T11:00:00Z", endTime=None, message="")
    answers = [template(FAILED), template(running),
               template({"runState": "Succeeded", "startTime": "2026-05-01T11:00:00Z", "endTime": "e", "message": ""})]
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, answer) for answer in answers])
    arm.route("POST", TEMPLATE + r"/run\?", [(202, {"Azure-AsyncOperation": "https://management.azure.com/op"}, None)])
    arm.route("GET", TEMPLATE + r"/runOutputs\?", [(200, {}, {"value": []})])
    code, result = run({}, capsys)
    assert code == 0 and result["changed"] is True and result["started"] is True and result["finished"] is True
    assert [request.method for request in writes(arm)] == ["POST"]
    assert result["msg"] == "image template img/web-1-0-0: Succeeded at e"


def test_check_mode_says_a_build_would_start(arm, capsys):
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, template())])
    code, result = run({"_ansible_check_mode": True}, capsys)
    assert code == 0 and result["changed"] is True and writes(arm) == []
    assert "a build would start" in result["msg"]


def test_cancel_waits_for_the_build_to_stop_and_never_reads_the_zero_end_time_as_an_end(arm, capsys):
    """Azure answers cancel with 204 and the build goes Canceling, endTime 0001-01-01 (test_image_builder_cancel.yaml)."""
    started = {"startTime": "2026-05-01T11:00:00Z", "endTime": "0001-01-01T00:00:00Z"}
    answers = [template(dict(started, runState="Running", runSubState="Customizing", message="")),
               template(dict(started, runState="Canceling", message="Canceling image build")),
               template(dict(started, runState="Canceling", message="Canceling image build")),
               template(dict(started, runState="Canceled", endTime="2026-05-01T11:03:30Z", message=""))]
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, answer) for answer in answers])
    arm.route("POST", TEMPLATE + r"/cancel\?", [(204, {}, None)])
    arm.route("GET", TEMPLATE + r"/runOutputs\?", [(200, {}, {"value": []})])
    code, result = run({"state": "canceled", "wait_timeout": 30}, capsys)
    assert code == 0 and result["changed"] is True and result["timed_out"] is False
    assert [request.method for request in writes(arm)] == ["POST"]
    assert result["last_run_status"]["run_state"] == "Canceled"
    assert (result["last_run_status"]["end_time"], result["last_run_status"]["duration_seconds"]) == \
        ("2026-05-01T11:03:30Z", 210)
    assert result["msg"] == "image template img/web-1-0-0: Canceled at 2026-05-01T11:03:30Z after 3m30s"


def test_a_running_build_reports_no_end_time(arm, capsys):
    running = {"runState": "Running", "runSubState": "Building", "startTime": "2026-05-01T11:00:00Z",
               "endTime": "0001-01-01T00:00:00Z", "message": ""}
    arm.route("GET", TEMPLATE + r"\?", [(200, {}, template(running))])
    code, result = run({"state": "started", "wait": False}, capsys)
    assert code == 0 and result["changed"] is False and result["finished"] is False and writes(arm) == []
    assert (result["last_run_status"]["end_time"], result["last_run_status"]["duration_seconds"]) == (None, None)
    assert result["image_template"]["last_run_status"]["end_time"] is None
    assert result["msg"] == "image template img/web-1-0-0: Running (Building) since 2026-05-01T11:00:00Z"
