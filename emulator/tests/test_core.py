"""ARM core behaviour: identity, envelopes, resource groups, paging, ETags, faults, traffic, persistence."""
import json
import os
import signal
import time

import pytest

from conftest import start
from emulator import main as runtime


def rg_path(emu, name=""):
    return f"/subscriptions/{emu.subscription_id}/resourcegroups" + (f"/{name}" if name else "")


def test_env_files_carry_everything_a_client_needs(emu):
    with open(os.path.join(emu.state_dir, "env.json")) as fh:
        env = json.load(fh)
    for key in ("AZURE_CLOUD_ENVIRONMENT", "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_SECRET",
                "AZURE_TENANT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "FLEETOPS_EMULATOR_CONTROL_URL",
                "FLEETOPS_EMULATOR_ADMIN_TOKEN"):
        assert env[key], key
    assert env["AZURE_CLOUD_ENVIRONMENT"].startswith("https://127.0.0.1:")
    sh = open(os.path.join(emu.state_dir, "env.sh")).read()
    assert f"export AZURE_SUBSCRIPTION_ID={env['AZURE_SUBSCRIPTION_ID']}" in sh


def test_cloud_metadata_points_at_the_emulator(emu):
    status, body, _ = emu.arm("GET", "/metadata/endpoints", api_version="2022-09-01", token=False)
    assert status == 200
    cloud = body[0] if isinstance(body, list) else body
    assert cloud["resourceManager"].rstrip("/") == emu.url
    assert cloud["authentication"]["loginEndpoint"].rstrip("/") == emu.url


def test_arm_rejects_missing_malformed_and_foreign_tokens(emu):
    # Azure answers a missing header with AuthenticationFailed, a bad token with InvalidAuthenticationToken.
    status, body, _ = emu.arm("GET", rg_path(emu), token=False, api_version="2021-04-01")
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    status, body, _ = emu.arm("GET", rg_path(emu), token="not-a-jwt", api_version="2021-04-01")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    admin = emu.env["FLEETOPS_EMULATOR_ADMIN_TOKEN"]
    status, body, _ = emu.arm("GET", rg_path(emu), token=admin, api_version="2021-04-01")
    assert status == 401


def test_control_api_refuses_arm_tokens(emu):
    from emulator.client import ControlClient, ControlError
    client = ControlClient(emu.env["FLEETOPS_EMULATOR_CONTROL_URL"], emu.token(), emu.env["REQUESTS_CA_BUNDLE"])
    with pytest.raises(ControlError, match="401"):
        client.call("GET", "config")


def test_resource_group_lifecycle_and_error_envelope(clean):
    emu = clean
    status, body, headers = emu.arm("GET", rg_path(emu, "missing"), api_version="2021-04-01")
    assert status == 404
    assert body == {"error": {"code": "ResourceGroupNotFound", "message": "Resource group 'missing' could not be found."}}
    assert headers.get("x-ms-request-id") and headers.get("x-ms-correlation-request-id")
    created = emu.rg("fleet-rg")
    assert created["properties"]["provisioningState"] == "Succeeded"
    status, body, headers = emu.arm("GET", rg_path(emu, "FLEET-RG"), api_version="2021-04-01")
    assert status == 200 and body["name"] == "fleet-rg"       # ARM paths are case-insensitive
    assert int(headers["x-ms-ratelimit-remaining-subscription-reads"]) < 12000
    status, _, _ = emu.arm("DELETE", rg_path(emu, "fleet-rg"), api_version="2021-04-01")
    assert status in (200, 202)
    status, _, _ = emu.arm("GET", rg_path(emu, "fleet-rg"), api_version="2021-04-01")
    assert status == 404


def test_a_group_lists_its_top_level_resources_only(clean):
    """Resources_ListByResourceGroup: GenericResourceExpanded entries (id, name, type, location, tags), no
    proxy children such as subnets; 404 for a missing group."""
    emu = clean
    emu.rg("listed-rg")
    status, body, _ = emu.arm("GET", rg_path(emu, "listed-rg") + "/resources", api_version="2021-04-01")
    assert (status, body["value"]) == (200, [])
    network = rg_path(emu, "listed-rg") + "/providers/Microsoft.Network/virtualNetworks/vnet"
    status, _, _ = emu.arm("PUT", network, api_version="2024-05-01", body={
        "location": "westeurope", "tags": {"team": "net"}, "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "app", "properties": {"addressPrefix": "10.0.1.0/24"}}]}})
    assert status in (200, 201)
    status, body, _ = emu.arm("GET", rg_path(emu, "listed-rg") + "/resources", api_version="2021-04-01")
    assert [(r["name"], r["type"], r["location"], r["tags"]) for r in body["value"]] == [
        ("vnet", "Microsoft.Network/virtualNetworks", "westeurope", {"team": "net"})]
    assert "properties" not in body["value"][0]
    status, body, _ = emu.arm("GET", rg_path(emu, "missing-rg") + "/resources", api_version="2021-04-01")
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_missing_api_version_and_unknown_type(clean):
    emu = clean
    status, body, _ = emu.arm("GET", rg_path(emu), api_version=None)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body, _ = emu.arm("GET", f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Nope/things")
    assert status == 404 and body["error"]["code"] == "InvalidResourceType"


def test_paging_follows_next_links(clean):
    emu = clean
    for i in range(12):
        emu.rg(f"page-rg-{i:02d}")
    status, body, _ = emu.arm("GET", rg_path(emu), api_version="2021-04-01")
    names = [rg["name"] for rg in body["value"]]
    assert len(names) == 5 and "nextLink" in body
    while "nextLink" in body:
        path = body["nextLink"][len(emu.url):]
        status, body, _ = emu.arm("GET", path, api_version=None)
        assert status == 200
        names += [rg["name"] for rg in body["value"]]
    assert names == [f"page-rg-{i:02d}" for i in range(12)]


def test_if_match_and_if_none_match(clean):
    emu = clean
    emu.rg("etag-rg")
    status, body, _ = emu.arm("PUT", rg_path(emu, "etag-rg"), {"location": emu.location},
                              api_version="2021-04-01", headers={"If-None-Match": "*"})
    assert (status, body["error"]["code"]) == (412, "PreconditionFailed")
    status, body, _ = emu.arm("PUT", rg_path(emu, "etag-rg"), {"location": emu.location},
                              api_version="2021-04-01", headers={"If-Match": '"stale"'})
    assert status == 412


@pytest.mark.parametrize("kind,status,code", [("429", 429, "TooManyRequests"), ("500", 500, "InternalServerError"),
                                              ("503", 503, "ServiceUnavailable"), ("409", 409, "OperationNotAllowed")])
def test_faults_answer_in_the_arm_envelope(clean, kind, status, code):
    emu = clean
    emu.control.add_fault(kind=kind, match={"method": "GET", "path": "resourcegroups/fault-rg$"}, count=1,
                          retry_after=2)
    got, body, headers = emu.arm("GET", rg_path(emu, "fault-rg"), api_version="2021-04-01")
    assert (got, body["error"]["code"]) == (status, code)
    if kind in ("429", "503"):
        assert headers["Retry-After"] == "2"
    got, _, _ = emu.arm("GET", rg_path(emu, "fault-rg"), api_version="2021-04-01")
    assert got == 404                                   # count=1: the next request is served normally


def test_dropped_connection_and_latency(clean):
    import urllib.error
    emu = clean
    emu.control.add_fault(kind="drop", match={"path": "resourcegroups/drop-rg$"}, count=1)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        emu.arm("GET", rg_path(emu, "drop-rg"), api_version="2021-04-01")
    emu.control.add_fault(kind="latency", match={"path": "resourcegroups/slow-rg$"}, count=1, latency_ms=300)
    started = time.monotonic()
    emu.arm("GET", rg_path(emu, "slow-rg"), api_version="2021-04-01")
    assert time.monotonic() - started >= 0.3


def test_sdk_retries_a_throttled_request_honouring_retry_after(clean):
    """azure-core's retry policy waits Retry-After, then succeeds: the caller never sees the 429."""
    from azure.core.pipeline.policies import RetryPolicy
    from azure.mgmt.compute import ComputeManagementClient
    emu = clean
    emu.rg("sdk-rg")
    emu.control.add_fault(kind="429", match={"operation_id": "VirtualMachineScaleSets_List"}, count=2, retry_after=1)
    client = ComputeManagementClient(**emu.sdk_kwargs(), retry_policy=RetryPolicy(retry_total=3))
    mark = emu.traffic_mark()
    started = time.monotonic()
    assert list(client.virtual_machine_scale_sets.list("sdk-rg")) == []
    assert time.monotonic() - started >= 2.0
    traffic = emu.control.traffic(since=mark)
    statuses = [e["liveResponse"]["statusCode"] for e in traffic if e["operation_id"] == "VirtualMachineScaleSets_List"]
    assert statuses == ["429", "429", "200"]


def test_least_privilege_role_gets_403_naming_the_action(clean):
    emu = clean
    reader = emu.control.call("POST", "principals", {"name": "test-reader", "role": "Reader"})
    token = emu.token(reader["client_id"], reader["secret"])
    status, _, _ = emu.arm("GET", rg_path(emu), api_version="2021-04-01", token=token)
    assert status == 200
    status, body, _ = emu.arm("PUT", rg_path(emu, "nope"), {"location": emu.location}, api_version="2021-04-01",
                              token=token)
    assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
    assert "Microsoft.Resources/subscriptions/resourceGroups/write" in body["error"]["message"]


def test_wrong_secret_gets_an_aadsts_error(emu):
    from azure.core.exceptions import ClientAuthenticationError
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        emu.credential(secret="wrong").get_token(emu.url + "/.default")


def test_traffic_log_redacts_secrets_and_exports_for_oav(clean, tmp_path):
    emu = clean
    emu.control.call("DELETE", "traffic")
    emu.rg("traffic-rg")
    entries = emu.control.traffic()
    assert entries and entries[-1]["liveRequest"]["headers"]["Authorization"] == "Bearer <redacted>"
    assert entries[-1]["principal"] == "fleetops-admin"
    assert entries[-1]["operation_id"] == "ResourceGroups_CreateOrUpdate"


def test_state_survives_kill_minus_nine(tmp_path):
    emu = start(tmp_path / "persist", "--no-throttling")
    try:
        emu.rg("durable-rg")
        pid = runtime.read_pid(emu.state_dir)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        os.remove(os.path.join(emu.state_dir, "emulator.pid"))
        again = start(tmp_path / "persist", "--no-throttling")
        status, body, _ = again.arm("GET", rg_path(again, "durable-rg"), api_version="2021-04-01")
        assert status == 200 and body["name"] == "durable-rg"
    finally:
        runtime.stop(str(tmp_path / "persist"))
