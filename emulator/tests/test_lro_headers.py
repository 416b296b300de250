"""Long-running operations answer as recorded from Compute (emulator/README.md, "Long-running operations"):
which headers start an operation per verb, the status polls and their Retry-After, the Location URL ending
200 with an empty body, and every wait scaled by the time scale."""
import math
import random
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from compute_support import IN_FLIGHT
from emulator.app import FIRST_POLL_RETRY_AFTER
from test_autoscale import vmss_body

STATUS_KEYS = {"startTime", "status", "name"}


def vmss_path(emu, name):
    return (f"/subscriptions/{emu.subscription_id}/resourceGroups/lro-rg/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}")


def poll(emu, url):
    """GET a header URL as the SDK would (it already carries its api-version)."""
    assert url.startswith(emu.url), url
    return emu.arm("GET", url[len(emu.url):], api_version=None)


def wait_done(emu, url, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status, body, _ = poll(emu, url)
        if status == 200 and body["status"] != "InProgress":
            return body
        time.sleep(0.05)
    raise AssertionError("operation never finished")


def operation_id(url):
    return urlsplit(url).path.rsplit("/", 1)[-1]


@pytest.fixture
def lro(clean):
    clean.rg("lro-rg")
    return clean


def test_put_and_patch_send_azure_async_operation_and_retry_after_without_location(lro):
    emu = lro
    status, _, headers = emu.arm("PUT", vmss_path(emu, "web"), vmss_body(emu, 2))
    assert status == 201
    assert "/providers/Microsoft.Compute/locations/" in headers["Azure-AsyncOperation"]
    assert "/operations/" in headers["Azure-AsyncOperation"] and "Location" not in headers
    # Retry-After: 10 s as recorded, x 0.01 = 0.1 s: sub-second, so only retry-after-ms (never a fractional
    # Retry-After, which azure-mgmt-compute would fail to int())
    assert headers["retry-after-ms"] == "100" and "Retry-After" not in headers
    wait_done(emu, headers["Azure-AsyncOperation"])
    status, _, headers = emu.arm("PATCH", vmss_path(emu, "web"), {"tags": {"team": "payments"}})
    assert status == 200
    assert headers["Azure-AsyncOperation"] and "Location" not in headers and headers["retry-after-ms"] == "100"


@pytest.mark.parametrize("method,suffix,body", [
    ("POST", "/manualupgrade", {"instanceIds": "first"}),
    ("POST", "/restart", {"instanceIds": "first"}),
    ("POST", "/deallocate", None),
    ("POST", "/delete", {"instanceIds": "last"}),
    ("DELETE", "", None),
])
def test_actions_and_delete_send_both_headers_and_location_ends_200_empty(lro, method, suffix, body):
    emu = lro
    status, _, headers = emu.arm("PUT", vmss_path(emu, "web"), vmss_body(emu, 2))
    wait_done(emu, headers["Azure-AsyncOperation"])
    if body:
        ids = sorted(vm["instanceId"] for vm in emu.arm("GET", vmss_path(emu, "web") + "/virtualMachines")[1]["value"])
        body = {"instanceIds": [ids[0] if body["instanceIds"] == "first" else ids[-1]]}
    emu.control.set_config(time_scale=IN_FLIGHT)             # polled once while it runs, below
    status, answer, headers = emu.arm(method, vmss_path(emu, "web") + suffix, body)
    assert status == 202 and answer is None
    async_url, location = headers["Azure-AsyncOperation"], headers["Location"]
    # Location: the same operation resource, ?monitor=true (recorded shape)
    assert urlsplit(location).path == urlsplit(async_url).path
    assert "/providers/Microsoft.Compute/locations/" in location and "/operations/" in location
    query = parse_qs(urlsplit(location).query)
    assert query["monitor"] == ["true"] and query["api-version"]
    status, answer, _ = poll(emu, location)
    assert status == 202 and answer is None                       # still running
    done = wait_done(emu, async_url)
    assert set(done) == STATUS_KEYS | {"endTime"} and done["status"] == "Succeeded"
    assert done["name"] == operation_id(async_url)
    status, answer, headers = poll(emu, location)
    assert status == 200 and answer is None                       # done: 200 with an empty body
    assert "Retry-After" not in headers and "retry-after-ms" not in headers


def test_first_in_progress_poll_asks_for_35_to_61_seconds_then_none(lro):
    emu = lro
    status, _, headers = emu.arm("PUT", vmss_path(emu, "web"), vmss_body(emu, 3))
    url = headers["Azure-AsyncOperation"]
    status, body, first = poll(emu, url)
    assert status == 200 and body["status"] == "InProgress" and set(body) == STATUS_KEYS
    wait = int(first["retry-after-ms"]) / 1000                    # 35-61 s x 0.01: sub-second
    assert 0.35 <= wait <= 0.61 and "Retry-After" not in first
    expected = random.Random(operation_id(url)).randint(*FIRST_POLL_RETRY_AFTER) * 0.01
    assert int(first["retry-after-ms"]) == math.ceil(expected * 1000)   # seeded: the same operation, the same wait
    status, body, later = poll(emu, url)
    assert body["status"] == "InProgress"
    assert "Retry-After" not in later and "retry-after-ms" not in later


def test_poll_retry_after_lro_poll_asks_lro_poll_on_every_in_progress_poll(lro):
    emu = lro
    emu.control.set_config(poll_retry_after="lro_poll")
    _, _, headers = emu.arm("PUT", vmss_path(emu, "flat"), vmss_body(emu, 3))
    url = headers["Azure-AsyncOperation"]
    for _poll in range(2):
        _, body, answer = poll(emu, url)
        assert body["status"] == "InProgress" and answer["retry-after-ms"] == "100"   # 10 s x 0.01, each time
    emu.control.set_config(poll_retry_after="recorded")


def test_scaled_waits_of_a_second_or_more_are_whole_seconds(lro):
    emu = lro
    emu.control.set_config(time_scale=0.1)
    status, _, headers = emu.arm("PUT", vmss_path(emu, "api"), vmss_body(emu, 2))
    assert status == 201
    assert headers["Retry-After"] == "1" and "retry-after-ms" not in headers      # 10 s x 0.1
    url = headers["Azure-AsyncOperation"]
    _, body, first = poll(emu, url)
    assert body["status"] == "InProgress" and "retry-after-ms" not in first
    expected = random.Random(operation_id(url)).randint(*FIRST_POLL_RETRY_AFTER) * 0.1
    assert first["Retry-After"] == str(math.ceil(expected - 1e-9)) and 4 <= int(first["Retry-After"]) <= 7


def test_operation_polls_are_charged_to_get_operation(lro):
    emu = lro
    emu.control.set_config(throttling=True)
    try:
        _, _, headers = emu.arm("PUT", vmss_path(emu, "web"), vmss_body(emu, 1))
        assert headers["x-ms-ratelimit-remaining-resource"].startswith("Microsoft.Compute/CreateVMScaleSet3Min;")
        _, _, polled = poll(emu, headers["Azure-AsyncOperation"])
        buckets = [item.split(";")[0] for item in polled["x-ms-ratelimit-remaining-resource"].split(",")]
        assert buckets == ["Microsoft.Compute/GetOperation3Min", "Microsoft.Compute/GetOperation30Min"]
    finally:
        emu.control.set_config(throttling=False)
