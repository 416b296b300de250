# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client factory: endpoints, scopes, user agent, retries and timeouts reach the wire."""

from __future__ import annotations

import http.client
import importlib
import json
import os
import subprocess
import sys
import threading

import pytest
import requests
import urllib3
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from azure_fakes import ScriptedAdapter, StaticCredential, session_for
from ansible_collections.fleetops.vmss.plugins.module_utils._auth import CLOUDS, Cloud
from ansible_collections.fleetops.vmss.plugins.module_utils._client import (
    SDK_CLIENTS,
    USER_AGENT,
    ClientFactory,
    RETRY_WINDOW,
    MissingLibrary,
    TokenPrefetch,
    Tuning,
    client_kwargs,
    import_in_background,
    load_client_class,
)

LAB = Cloud("Lab", "https://arm.lab.example", "https://login.lab.example", "https://management.lab.example", custom=True)
SCALE_SET = {"id": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
             "name": "web", "location": "westeurope", "properties": {"provisioningState": "Succeeded"}}
GET_SCALE_SET = r"/subscriptions/sub/resourceGroups/rg/providers/Microsoft\.Compute/virtualMachineScaleSets/web\?"


def factory_with(adapter, cloud=LAB, verify="/tmp/ca.pem", tuning=Tuning()):
    factory = ClientFactory(StaticCredential(), cloud, "sub", verify, tuning)
    factory.kwargs.update(session=session_for(adapter), session_owner=False)
    return factory


def test_client_kwargs():
    assert client_kwargs(CLOUDS["AzureChinaCloud"], "/ca.pem", Tuning(polling_interval=2)) == {
        "base_url": "https://management.chinacloudapi.cn",
        "credential_scopes": ["https://management.core.chinacloudapi.cn/.default"],
        "connection_verify": "/ca.pem",
        "user_agent": "fleetops.vmss/0.1.0",
        "retry_total": 7, "retry_connect": 7, "retry_read": 7, "retry_status": 7,
        "retry_backoff_factor": 0.8, "retry_backoff_max": 20.0,
        "connection_timeout": 20.0, "read_timeout": 120.0, "polling_interval": 2,
    }


@pytest.mark.parametrize("name", sorted(SDK_CLIENTS))
def test_every_named_client_is_constructible_with_our_kwargs(name):
    client_class = load_client_class(name)
    client = client_class(StaticCredential(), "sub", **client_kwargs(LAB, True))
    assert client._config.polling_interval == 15.0  # pylint: disable=protected-access


def test_unknown_client_name():
    with pytest.raises(ValueError, match="Unknown SDK client 'storage'"):
        load_client_class("storage")


def test_missing_sdk_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(SDK_CLIENTS, "compute", SDK_CLIENTS["compute"]._replace(package="azure.mgmt.not_installed"))
    with pytest.raises(MissingLibrary) as caught:
        load_client_class("compute")
    assert caught.value.requirement == "azure-mgmt-compute"


def test_request_reaches_the_cloud_with_scope_user_agent_verify_and_timeouts():
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [(200, {}, SCALE_SET)])])
    factory = factory_with(adapter)
    scale_set = factory.client("compute").virtual_machine_scale_sets.get("rg", "web")

    assert scale_set.name == "web"
    request = adapter.requests[0]
    assert request.url.startswith("https://arm.lab.example/subscriptions/sub/")
    assert request.headers["Authorization"] == "Bearer token"
    assert request.headers["User-Agent"].startswith(USER_AGENT + " ")
    assert factory.credential.scopes == [("https://management.lab.example/.default",)]
    assert adapter.sent_kwargs[0] == {"timeout": (20.0, 120.0), "verify": "/tmp/ca.pem"}


class GatedCredential(StaticCredential):
    """Answers get_token once ``release`` is set, from whichever thread asks; fails when told to."""

    def __init__(self, error=None):
        super().__init__()
        self.release = threading.Event()
        self.asked = threading.Event()
        self.threads = []
        self.error = error

    def get_token(self, *scopes, **kwargs):
        self.threads.append(threading.current_thread().name)
        self.asked.set()
        assert self.release.wait(10)
        if self.error is not None:
            raise self.error
        return super().get_token(*scopes, **kwargs)


def test_the_token_is_requested_in_the_background_and_served_once():
    credential = GatedCredential()
    prefetch = TokenPrefetch(credential, "https://management.lab.example/.default")
    assert credential.asked.wait(10)
    assert credential.threads == ["token-prefetch"]  # asked before any request, not on this thread
    credential.release.set()
    assert prefetch.get_token("https://management.lab.example/.default").token == "token"
    assert credential.threads == ["token-prefetch"]  # the first use waited for that answer, asked nothing
    prefetch.get_token("https://management.lab.example/.default")
    prefetch.get_token("https://other.example/.default")
    assert credential.threads == ["token-prefetch", "MainThread", "MainThread"]  # then the credential's own
    assert credential.scopes == [("https://management.lab.example/.default",)] * 2 + [("https://other.example/.default",)]


def test_a_failed_prefetch_fails_the_first_use_and_is_not_asked_twice():
    error = ValueError("AADSTS7000215: Invalid client secret provided.")
    credential = GatedCredential(error)
    prefetch = TokenPrefetch(credential, "https://management.lab.example/.default")
    credential.release.set()
    with pytest.raises(ValueError) as caught:
        prefetch.get_token("https://management.lab.example/.default")
    assert caught.value is error
    assert credential.threads == ["token-prefetch"]


def test_a_token_with_claims_is_not_the_prefetched_one():
    credential = GatedCredential()
    credential.release.set()
    prefetch = TokenPrefetch(credential, "https://management.lab.example/.default")
    prefetch.get_token("https://management.lab.example/.default", claims='{"access_token": {}}')
    assert credential.threads.count("MainThread") == 1


def test_the_factory_prefetches_one_token_for_all_its_clients():
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [(200, {}, SCALE_SET)] * 2)])
    factory = factory_with(adapter)
    factory.client("compute").virtual_machine_scale_sets.get("rg", "web")
    factory.client("network")
    factory.client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert factory.credential.scopes == [("https://management.lab.example/.default",)]


def test_import_in_background_hands_the_module_or_the_error_to_the_next_import(tmp_path, monkeypatch):
    (tmp_path / "slow_sdk_probe.py").write_text("import threading, time\ntime.sleep(0.2)\n"
                                                "IMPORTED_ON = threading.current_thread().name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import_in_background("slow_sdk_probe")
    import_in_background("not_an_installed_sdk_probe")
    module = importlib.import_module("slow_sdk_probe")  # waits for the background import, does not redo it
    assert module.IMPORTED_ON == "import-slow_sdk_probe"
    with pytest.raises(ImportError):
        importlib.import_module("not_an_installed_sdk_probe")
    monkeypatch.delitem(sys.modules, "slow_sdk_probe")


def test_clients_are_built_once_and_reused():
    factory = factory_with(ScriptedAdapter([]))
    assert factory.client("compute") is factory.client("compute")


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "7"}, [7.0, 7.0]),
    ({"retry-after-ms": "250"}, [0.25, 0.25]),
    ({"x-ms-retry-after-ms": "40"}, [0.04, 0.04]),
])
def test_throttling_is_retried_after_the_time_the_service_asks(sleeps, headers, expected):
    throttled = (429, headers, {"error": {"code": "TooManyRequests", "message": "slow down"}})
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [throttled, throttled, (200, {}, SCALE_SET)])])
    scale_set = factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert scale_set.name == "web"
    assert len(adapter.requests) == 3
    assert sleeps == expected


def test_retry_after_seconds_is_read_before_retry_after_ms(sleeps):
    # azure-core 1.41 looks at Retry-After first: a server wanting sub-second polls must omit it.
    throttled = (503, {"Retry-After": "2", "retry-after-ms": "10"}, {"error": {"code": "Busy", "message": "busy"}})
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [throttled, (200, {}, SCALE_SET)])])
    factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert sleeps == [2.0]


def test_server_errors_without_retry_after_back_off(sleeps):
    failing = (500, {}, {"error": {"code": "InternalServerError", "message": "oops"}})
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [failing, failing, (200, {}, SCALE_SET)])])
    factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert len(adapter.requests) == 3
    assert sleeps == [1.6]  # azure-core retries once at once, then backs off 0.8 * 2 ** n seconds


def test_retries_stop_after_retry_total(sleeps):
    throttled = (429, {"retry-after-ms": "1"}, {"error": {"code": "TooManyRequests", "message": "slow down"}})
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [throttled])])
    client = factory_with(adapter, tuning=Tuning(retry_total=2)).client("compute")
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_scale_sets.get("rg", "web")
    assert caught.value.status_code == 429
    assert len(adapter.requests) == 3  # the first try and two retries


BACKOFF = [1.6, 3.2, 6.4, 12.8, 20.0, 20.0]  # azure-core retries once at once, then backs off


def refused(request):
    raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")


def dropped(request):
    # what requests raises when the server closes the connection without an answer
    raise requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")))


FAULTS = {
    "429": (429, {}, {"error": {"code": "TooManyRequests", "message": "slow down"}}),
    "503": (503, {}, {"error": {"code": "ServiceUnavailable", "message": "busy"}}),
    "500": (500, {}, {"error": {"code": "InternalServerError", "message": "oops"}}),
    "refused": refused,
    "dropped": dropped,
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_seven_consecutive_faults_of_one_kind_are_retried(sleeps, kind):
    # azure-core's per-kind limits (3 by default) would give up at the 4th
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [FAULTS[kind]] * 7 + [(200, {}, SCALE_SET)])])
    scale_set = factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert scale_set.name == "web"
    assert len(adapter.requests) == 8
    assert sleeps == BACKOFF
    assert sum(sleeps) == RETRY_WINDOW == 64.0  # the outage the default settings ride out


@pytest.mark.parametrize("kind, error", [("503", HttpResponseError), ("refused", ServiceRequestError),
                                         ("dropped", ServiceResponseError)])
def test_an_eighth_consecutive_fault_fails(sleeps, kind, error):
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [FAULTS[kind]])])
    with pytest.raises(error):
        factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert len(adapter.requests) == 8  # the first try and retry_total retries
    assert sleeps == BACKOFF


def test_mixed_faults_share_the_total(sleeps):
    answers = [FAULTS["429"], FAULTS["refused"], FAULTS["503"], FAULTS["dropped"]] * 2 + [(200, {}, SCALE_SET)]
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, answers)])
    with pytest.raises(ServiceResponseError):
        factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert len(adapter.requests) == 8


def test_retry_after_is_honoured_over_the_backoff_cap(sleeps):
    throttled = (429, {"Retry-After": "30"}, {"error": {"code": "TooManyRequests", "message": "slow down"}})
    adapter = ScriptedAdapter([("GET", GET_SCALE_SET, [throttled] * 5 + [(200, {}, SCALE_SET)])])
    factory_with(adapter).client("compute").virtual_machine_scale_sets.get("rg", "web")
    assert sleeps == [30.0] * 5  # the service's word, not our 20 s cap


UPGRADE = r"/virtualMachineScaleSets/web/manualupgrade\?"


@pytest.mark.parametrize("kind, sent", [("503", 8), ("refused", 1), ("dropped", 1)])
def test_a_post_is_retried_on_server_errors_not_on_connection_errors(sleeps, kind, sent):
    # Azure may have acted on a POST whose answer was lost: sending it again is the caller's decision
    adapter = ScriptedAdapter([("POST", UPGRADE, [FAULTS[kind]])])
    compute = factory_with(adapter).client("compute")
    with pytest.raises((HttpResponseError, ServiceRequestError, ServiceResponseError)):
        compute.virtual_machine_scale_sets.begin_update_instances("rg", "web", {"instanceIds": ["0"]}, polling=False)
    assert len(adapter.requests) == sent


def test_backoff_schedule_is_what_azure_core_sleeps():
    assert [Tuning().backoff(retry) for retry in range(1, 8)] == [0.0] + BACKOFF


def test_only_the_asked_sdk_is_imported(tmp_path):
    # A fresh interpreter: what a module pays for at start-up and on first use.
    script = (
        "import sys, json\n"
        "from ansible_collections.fleetops.vmss.plugins.module_utils import _common, _errors, _waiter\n"
        "before = sorted(m for m in sys.modules if m.startswith('azure'))\n"
        "from ansible_collections.fleetops.vmss.plugins.module_utils._client import load_client_class\n"
        "load_client_class('compute')\n"
        "after = sorted({'.'.join(m.split('.')[:3]) for m in sys.modules if m.startswith('azure.mgmt.')})\n"
        "print(json.dumps([before, after]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True).stdout
    before, after = json.loads(output)
    assert before == []
    assert after == ["azure.mgmt.compute", "azure.mgmt.core"]


def test_request_counter_sees_every_request_on_the_wire(sleeps):
    throttled = (429, {"retry-after-ms": "1"}, {"error": {"code": "TooManyRequests", "message": "slow down"}})
    operation = "https://arm.lab.example/subscriptions/sub/providers/Microsoft.Compute/locations/westeurope/operations/1"
    adapter = ScriptedAdapter([
        ("GET", GET_SCALE_SET, [throttled, (200, {}, SCALE_SET)]),
        ("PATCH", GET_SCALE_SET, [(200, {"Azure-AsyncOperation": operation, "retry-after-ms": "1"}, SCALE_SET)]),
        ("GET", r"/operations/1", [(200, {}, {"status": "InProgress"}), (200, {}, {"status": "Succeeded"})]),
    ])
    factory = factory_with(adapter)
    operations = factory.client("compute").virtual_machine_scale_sets
    operations.get("rg", "web")
    operations.begin_update("rg", "web", {"tags": {}}).result()
    assert factory.requests.total == len(adapter.requests) == 6  # GET twice (429), PATCH, 2 polls, final GET
    assert factory.requests.as_dict() == {"total": 6, "by_method": {"GET": 5, "PATCH": 1}}
    assert factory.requests.writes == 1


def test_request_counter_is_per_factory():
    first, second = factory_with(ScriptedAdapter([])), factory_with(ScriptedAdapter([]))
    assert first.requests is not second.requests and first.requests.total == 0
