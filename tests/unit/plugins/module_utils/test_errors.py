# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SDK errors -> ``Failed to <action> <resource>: <ARM code>: <message>``, raised through the real SDK."""

from __future__ import annotations

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from azure_fakes import ScriptedAdapter, StaticCredential, arm_error, session_for
from ansible_collections.fleetops.vmss.plugins.module_utils._auth import Cloud
from ansible_collections.fleetops.vmss.plugins.module_utils._client import ClientFactory, Tuning
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import (
    AzureFailure,
    arm_errors,
    error_details,
    ignore_not_found,
    operation_error,
)
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import WaitTimeout

CLOUD = Cloud("Lab", "https://arm.lab.example", "https://login.lab.example", "https://management.lab.example")
VMSS = r"/resourceGroups/rg/providers/Microsoft\.Compute/virtualMachineScaleSets/web\?"


def compute(adapter, credential=None, tuning=Tuning(retry_total=0, polling_interval=1)):
    factory = ClientFactory(credential or StaticCredential(), CLOUD, "sub", True, tuning)
    factory.kwargs.update(session=session_for(adapter), session_owner=False)
    return factory.client("compute")


def fail_with(call, action="get", resource="scale set rg/web"):
    """What the module fails with (AzureModule.fail_from) for the AzureFailure arm_errors raises."""
    with pytest.raises(AzureFailure) as caught:
        with arm_errors(action, resource):
            call()
    return dict(caught.value.result, msg=caught.value.msg, error=caught.value.error)


def test_not_found():
    adapter = ScriptedAdapter([("GET", VMSS, [arm_error(
        "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachineScaleSets/web' under resource group "
        "'rg' was not found.", 404, "req-404")])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"] == ("Failed to get scale set rg/web: ResourceNotFound: The Resource "
                              "'Microsoft.Compute/virtualMachineScaleSets/web' under resource group 'rg' was not found.")
    assert failure["error"] == {"code": "ResourceNotFound", "status": 404, "request_id": "req-404",
                                "message": failure["msg"].split(": ", 2)[2]}


def test_conflict_from_arm():
    adapter = ScriptedAdapter([("PATCH", VMSS, [arm_error(
        "OperationNotAllowed", "Operation 'Update' is not allowed while a rolling upgrade is in progress.", 409)])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.begin_update(
        "rg", "web", {"tags": {"a": "b"}}), action="update")
    assert failure["msg"] == ("Failed to update scale set rg/web: OperationNotAllowed: Operation 'Update' is not "
                              "allowed while a rolling upgrade is in progress.")
    assert failure["error"]["status"] == 409


def test_error_details_are_appended():
    body = {"error": {"code": "InvalidParameter", "message": "One or more errors occurred.",
                      "details": [{"code": "SkuNotAvailable", "message": "Standard_X is not available\nin westeurope."}]}}
    adapter = ScriptedAdapter([("GET", VMSS, [(400, {}, body)])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"] == ("Failed to get scale set rg/web: InvalidParameter: One or more errors occurred. "
                              "(SkuNotAvailable: Standard_X is not available in westeurope.)")


def test_arm_rejecting_the_token():
    adapter = ScriptedAdapter([("GET", VMSS, [arm_error("InvalidAuthenticationToken", "The access token is invalid.", 401)])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"] == "Failed to get scale set rg/web: InvalidAuthenticationToken: The access token is invalid."


def test_credential_failing_before_arm():
    class RefusingCredential(StaticCredential):
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("ClientSecretCredential.get_token failed: AADSTS7000215: Invalid client secret.")

    adapter = ScriptedAdapter([])
    failure = fail_with(lambda: compute(adapter, RefusingCredential()).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"] == ("Failed to get scale set rg/web: AuthenticationFailed: ClientSecretCredential.get_token "
                              "failed: AADSTS7000215: Invalid client secret.")
    assert adapter.requests == []


def test_connection_failure():
    def refuse(request):
        raise requests.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")

    adapter = ScriptedAdapter([("GET", VMSS, [refuse])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"].startswith("Failed to get scale set rg/web: ConnectionFailed: ")
    assert "Connection refused" in failure["msg"]
    assert failure["error"]["status"] is None


def test_body_that_is_not_an_arm_error():
    adapter = ScriptedAdapter([("GET", VMSS, [(502, {"x-ms-request-id": "r"}, "<html>Bad Gateway</html>")])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.get("rg", "web"))
    assert failure["msg"].startswith("Failed to get scale set rg/web: HTTP 502: ")
    assert failure["error"]["request_id"] == "r"


def test_failed_long_running_operation_reports_the_operation_error(sleeps):
    status_url = "https://arm.lab.example/subscriptions/sub/providers/Microsoft.Compute/locations/westeurope/operations/op1"
    accepted = (201, {"Azure-AsyncOperation": status_url + "?api-version=2026-04-01", "retry-after-ms": "10"},
                {"name": "web", "location": "westeurope", "properties": {"provisioningState": "Updating"}})
    running = (200, {"retry-after-ms": "10"}, {"name": "op1", "status": "InProgress"})
    failed = (200, {"x-ms-request-id": "req-op"}, {
        "name": "op1", "status": "Failed",
        "error": {"code": "VMExtensionProvisioningError",
                  "message": "VM has reported a failure when processing extension 'health'."}})
    adapter = ScriptedAdapter([("PUT", VMSS, [accepted]), ("GET", r"/operations/op1", [running, failed])])

    def create():
        client = compute(adapter)
        client.virtual_machine_scale_sets.begin_create_or_update(
            "rg", "web", {"location": "westeurope", "sku": {"name": "Standard_D2s_v5", "capacity": 2}}).result()

    failure = fail_with(create, action="create")
    assert failure["msg"] == ("Failed to create scale set rg/web: VMExtensionProvisioningError: VM has reported a "
                              "failure when processing extension 'health'.")
    assert failure["error"]["request_id"] == "req-op"
    assert [r.method for r in adapter.requests] == ["PUT", "GET", "GET"]
    assert sleeps and set(sleeps) == {0.01}  # the poller waited as asked (retry-after-ms), not polling_interval


def test_wait_timeout():
    def wait():
        raise WaitTimeout("instances healthy not reached within 60 seconds")

    failure = fail_with(wait, action="wait for", resource="scale set rg/web")
    assert failure["msg"] == ("Failed to wait for scale set rg/web: Timeout: instances healthy not reached "
                              "within 60 seconds")


def test_other_exceptions_are_bugs_and_propagate():
    with pytest.raises(KeyError):
        with arm_errors("get", "x"):
            raise KeyError("bug")


def test_no_error_no_failure():
    with arm_errors("get", "x"):
        value = 1
    assert value == 1


def test_error_details_of_a_bare_http_response_error():
    details = error_details(HttpResponseError(message="plain"))
    assert details == {"code": "HttpResponseError", "message": "plain", "status": None, "request_id": None}


def test_ignore_not_found():
    adapter = ScriptedAdapter([("GET", VMSS, [arm_error("ResourceGroupNotFound", "Resource group 'rg' could not be found.", 404)])])
    client = compute(adapter)
    assert ignore_not_found(lambda: client.virtual_machine_scale_sets.get("rg", "web")) is None
    assert ignore_not_found(lambda: client.virtual_machine_scale_sets.get("rg", "web"), default=[]) == []
    forbidden = ScriptedAdapter([("GET", VMSS, [arm_error("AuthorizationFailed", "no", 403)])])
    with pytest.raises(HttpResponseError):
        ignore_not_found(lambda: compute(forbidden).virtual_machine_scale_sets.get("rg", "web"))


def test_precondition_failed_says_someone_else_changed_it():
    adapter = ScriptedAdapter([("PATCH", VMSS, [arm_error(
        "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met.", 412)])])
    failure = fail_with(lambda: compute(adapter).virtual_machine_scale_sets.begin_update(
        "rg", "web", {"tags": {"a": "b"}}, etag='"3"', match_condition=MatchConditions.IfNotModified),
        action="update")
    assert failure["msg"].startswith("Failed to update scale set rg/web: PreconditionFailed: The condition specified")
    assert "Scale set rg/web was changed by someone else after this task read it" in failure["msg"]
    assert adapter.requests[0].headers["If-Match"] == '"3"'


def test_operation_error_names_the_failing_instances(sleeps):
    status_url = "https://arm.lab.example/subscriptions/sub/providers/Microsoft.Compute/locations/westeurope/operations/op2"
    adapter = ScriptedAdapter([
        ("POST", VMSS[:-2] + r"/manualupgrade", [(202, {"Azure-AsyncOperation": status_url, "retry-after-ms": "1"}, None)]),
        ("GET", r"/operations/op2", [(200, {}, {"status": "Failed", "error": {
            "code": "VMExtensionProvisioningError", "message": "first", "details": [
                {"code": "VMExtensionProvisioningError", "message": "first", "target": "3"},
                {"code": "VMExtensionProvisioningError", "message": "second", "target": "5"}]}})])])
    with pytest.raises(HttpResponseError) as caught:
        compute(adapter).virtual_machine_scale_sets.begin_update_instances(
            "rg", "web", {"instanceIds": ["3", "5", "6"]}).result()
    details = operation_error(caught.value)
    assert (details["code"], details["targets"]) == ("VMExtensionProvisioningError", ["3", "5"])
