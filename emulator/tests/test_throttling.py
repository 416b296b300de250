"""Throttling: bucket arithmetic and policy mapping (pure), then ARM + Compute token buckets on a real
emulator driven by the SDK (azure-core's retry honours the Retry-After we send)."""
import json
import os
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import Emu
from emulator import throttling as t
from emulator.arm import ArmError
from emulator.server import find_route
from emulator.store import Store

SUB = "4f1c9c2e-5b4a-4b8e-9a51-1d2f3c4b5a60"
VMSS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"


# --- pure ----------------------------------------------------------------------------------------

def test_bucket_arithmetic():
    assert t.refilled(0, 100.0, 101.5, 36, 2.0) == 3.0
    assert t.refilled(35, 100.0, 200.0, 36, 2.0) == 36          # never above capacity
    assert t.wait_for(0.5, 1, 2.0) == pytest.approx(0.25)
    assert t.wait_for(3, 1, 2.0) == 0
    assert t.retry_headers(0.05) == {"Retry-After": "1", "retry-after-ms": "50"}
    assert t.retry_headers(2.2) == {"Retry-After": "3", "retry-after-ms": "2200"}
    bucket = t.Bucket(12, 4 / 60, now=0.0)
    for _ in range(12):
        assert bucket.wait(0.0, 1) == 0
        bucket.take(0.0, 1)
    assert bucket.wait(0.0, 1) == pytest.approx(15.0)            # 4 per minute: one every 15 s
    assert bucket.level(30.0) == pytest.approx(2.0)
    assert bucket.need(50) == 12                                 # a charge above capacity is capped


class FakeClock:
    def __init__(self, time_scale=1.0, now=1000.0):
        self.time_scale, self.t = time_scale, now

    def now(self):
        return self.t

    def iso(self, t=None):
        return f"T{self.t if t is None else t}"


def fake_ctx(time_scale=1.0, throttling=True):
    store = Store(":memory:")
    store.put(VMSS, {"id": VMSS, "sku": {"capacity": 4}}, "Microsoft.Compute/virtualMachineScaleSets")
    return SimpleNamespace(store=store, clock=FakeClock(time_scale), config={"throttling": throttling},
                           subscription_id=SUB)


def fake_req(method, path, body=None):
    from emulator.providers import load_all
    load_all()
    matched, params = find_route(method, path)
    assert matched is not None, path
    return SimpleNamespace(method=method, path=path, route=matched, params=params, body=body,
                           operation_id=matched.operation_id, principal={"object_id": "me"})


@pytest.mark.parametrize("method,suffix,body,policy,scope,charge", [
    ("GET", "", None, "GetVMScaleSet", t.BOTH, 1),
    ("GET", "/instanceView", None, "HighCostGetVMScaleSet", t.BOTH, 1),
    ("GET", "/virtualMachines", None, "HighCostGetVMScaleSet", t.BOTH, 1),
    ("PATCH", "", {"sku": {"capacity": 10}}, "VMScaleSetActions", t.BOTH, 6),
    ("PUT", "", {"location": "x"}, "VMScaleSetActions", t.BOTH, 1),
    ("POST", "/manualupgrade", {"instanceIds": ["0", "1", "2"]}, "VMScaleSetActions", t.SUB_ONLY, 3),
    ("POST", "/restart", None, "VMScaleSetActions", t.SUB_ONLY, 4),
    ("POST", "/delete", {"instanceIds": ["3"]}, "DeleteVMScaleSet", t.SUB_ONLY, 1),
    ("DELETE", "", None, "DeleteVMScaleSet", t.BOTH, 1),
    ("GET", "/virtualMachines/3", None, "GetVMScaleSetVM", t.BOTH, 1),
    ("PUT", "/virtualMachines/3", {}, "UpdateVMScaleSetVM", t.BOTH, 1),
    ("POST", "/virtualMachines/3/restart", None, "UpdateVMScaleSetVM", t.BOTH, 1),
    ("DELETE", "/virtualMachines/3", None, "DeleteVMScaleSetVM", t.BOTH, 1),
])
def test_operations_map_to_documented_policies(method, suffix, body, policy, scope, charge):
    ctx = fake_ctx()
    got = t.classify(ctx, fake_req(method, VMSS + suffix, body))
    assert (got.policy, got.scope, got.charge) == (policy, scope, charge)
    expected_resource = VMSS + (suffix if suffix.startswith("/virtualMachines/") else "")
    if method == "POST" and suffix.startswith("/virtualMachines/"):
        expected_resource = VMSS + "/virtualMachines/3"
    assert got.resource_id == expected_resource


def test_new_scale_set_put_and_polls_and_other_providers():
    ctx = fake_ctx()
    new = VMSS.replace("/web", "/api")
    assert t.classify(ctx, fake_req("PUT", new, {"sku": {"capacity": 3}})).policy == "PutVMScaleSet"
    poll = fake_req("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/abc")
    assert t.classify(ctx, poll).policy == "GetOperation"
    other = fake_req("GET", f"/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/operations/abc")
    assert t.classify(ctx, other) is None
    assert t.classify(ctx, fake_req("GET", f"/subscriptions/{SUB}/resourcegroups/rg")) is None


def test_compute_bucket_runs_dry_then_429_names_the_policy():
    ctx = fake_ctx(time_scale=0.01)          # a minute lasts 0.6 s: 12 per minute = 20 per second
    seen = []
    for _ in range(36):
        req = fake_req("GET", VMSS)
        t.throttle(ctx, req)
        seen.append(req.response_headers["x-ms-ratelimit-remaining-resource"])
    assert seen[0] == ("Microsoft.Compute/GetVMScaleSetResource;35,"
                       "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum;2399")
    assert seen[-1].startswith("Microsoft.Compute/GetVMScaleSetResource;0,")
    with pytest.raises(ArmError) as err:
        t.throttle(ctx, fake_req("GET", VMSS))
    e = err.value
    assert (e.status, e.code, e.message) == (429, "OperationNotAllowed", t.COMPUTE_MESSAGE)
    assert e.details[0]["code"] == "TooManyRequests" and e.details[0]["target"] == "GetVMScaleSetResource"
    assert json.loads(e.details[0]["message"])["allowedRequestCount"] == 36
    assert e.headers["Retry-After"] == "1" and e.headers["retry-after-ms"] == "50"
    assert "GetVMScaleSetResource;0" in e.headers["x-ms-ratelimit-remaining-resource"]
    ctx.clock.t += 0.05                      # one token back
    t.throttle(ctx, fake_req("GET", VMSS))
    # another scale set has its own resource bucket
    other = fake_req("GET", VMSS.replace("/web", "/api"))
    t.throttle(ctx, other)
    assert other.response_headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/GetVMScaleSetResource;35,")


def test_batch_requests_charge_the_subscription_bucket_per_instance():
    ctx = fake_ctx()
    req = fake_req("POST", VMSS + "/manualupgrade", {"instanceIds": ["0", "1", "2", "3", "4"]})
    t.throttle(ctx, req)
    assert req.response_headers["x-ms-request-charge"] == "5"
    assert req.response_headers["x-ms-ratelimit-remaining-resource"] == \
        "Microsoft.Compute/VMScaleSetActionsSubscriptionMaximum;1495"


def test_arm_reads_bucket_per_principal():
    ctx = fake_ctx()
    rg = f"/subscriptions/{SUB}/resourcegroups/rg"
    for i in range(250):
        req = fake_req("GET", rg)
        t.throttle(ctx, req)
    assert req.response_headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert req.response_headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3500"
    with pytest.raises(ArmError) as err:
        t.throttle(ctx, fake_req("GET", rg))
    assert (err.value.status, err.value.code) == (429, "SubscriptionRequestsThrottled")
    assert "Number of 'read' requests" in err.value.message and err.value.headers["retry-after-ms"] == "40"
    someone_else = fake_req("GET", rg)
    someone_else.principal = {"object_id": "other"}
    t.throttle(ctx, someone_else)            # another principal has its own bucket
    write = fake_req("PUT", rg, {"location": "x"})
    t.throttle(ctx, write)                   # and writes have theirs
    assert write.response_headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"


def test_switched_off_nothing_is_counted():
    ctx = fake_ctx(throttling=False)
    for _ in range(100):
        req = fake_req("GET", VMSS)
        t.throttle(ctx, req)
    assert req.response_headers == {}


# --- a real emulator with throttling on ----------------------------------------------------------

def serve_in_process(state_dir, time_scale, also=None):
    """The emulator in a thread of this process (main.serve wires throttling and the engines);
    `also(ctx, server)` may change more before the first request."""
    from emulator import main as runtime
    ready = threading.Event()
    holder = {}

    def on_ready(ctx, server):
        if also:
            also(ctx, server)
        holder["server"] = server
        ready.set()
    thread = threading.Thread(target=runtime.serve, args=(str(state_dir),),
                              kwargs={"time_scale": time_scale, "page_size": 5, "ready": on_ready}, daemon=True)
    thread.start()
    assert ready.wait(60), "the emulator did not start"
    with open(os.path.join(state_dir, "env.json")) as fh:
        env = json.load(fh)
    return Emu(str(state_dir), env), holder["server"], thread


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    emu, server, thread = serve_in_process(tmp_path_factory.mktemp("throttled"), time_scale=0.1)
    emu.rg("thr-rg")
    from test_autoscale import make_vmss
    vmss = make_vmss(emu, "thr-rg", "web", 1)
    yield emu, vmss
    server.shutdown()
    thread.join(30)


def remaining(headers, label):
    for item in headers.get("x-ms-ratelimit-remaining-resource", "").split(","):
        name, _, count = item.partition(";")
        if name == f"Microsoft.Compute/{label}":
            return int(count)
    return None


def test_polling_too_fast_gets_429_with_a_retry_after(throttled):
    emu, vmss = throttled
    counts, answer = [], None
    for _ in range(80):
        status, body, headers = emu.arm("GET", vmss)
        if status == 429:
            answer = (body, headers)
            break
        counts.append(remaining(headers, "GetVMScaleSetResource"))
        assert int(headers["x-ms-ratelimit-remaining-subscription-reads"]) < 250
        assert int(headers["x-ms-ratelimit-remaining-subscription-global-reads"]) < 3750
    assert answer is not None, "never throttled"
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]      # the header counts down
    body, headers = answer
    assert body["error"]["code"] == "OperationNotAllowed"
    assert body["error"]["details"][0]["target"] == "GetVMScaleSetResource"
    assert int(headers["Retry-After"]) >= 1 and 0 < int(headers["retry-after-ms"]) <= 1000
    time.sleep(int(headers["retry-after-ms"]) / 1000 + 0.05)
    status, _, _ = emu.arm("GET", vmss)
    assert status == 200                     # honouring Retry-After is enough


def test_sdk_retry_honours_retry_after_and_succeeds(throttled):
    emu, vmss = throttled
    client = emu.compute()
    while emu.arm("GET", vmss)[0] != 429:      # run the scale set's GET bucket dry
        pass
    mark = emu.control.traffic()[-1]["seq"]
    started = time.monotonic()
    for _ in range(6):
        assert client.virtual_machine_scale_sets.get("thr-rg", "web").name == "web"
    statuses = [e["liveResponse"]["statusCode"] for e in emu.control.traffic(since=mark)
                if e["operation_id"] == "VirtualMachineScaleSets_Get"]
    assert "429" in statuses and statuses[-1] == "200"
    assert statuses.count("200") == 6
    assert time.monotonic() - started >= 0.5 * statuses.count("429") * 0.9     # it waited retry-after-ms


def test_every_compute_answer_carries_the_headers_and_config_switches_it_off(throttled):
    emu, vmss = throttled
    status, body, headers = emu.arm("GET", vmss + "/virtualMachines/999")
    assert status == 404 and remaining(headers, "GetVMScaleSetVMResource") is not None
    status, _, headers = emu.arm("GET", f"/subscriptions/{emu.subscription_id}/resourcegroups/thr-rg",
                                 api_version="2021-04-01")
    assert "x-ms-ratelimit-remaining-resource" not in headers          # not a Compute request
    emu.control.set_config(throttling=False)
    try:
        for _ in range(60):
            status, _, headers = emu.arm("GET", vmss + "/instanceView")
            assert status == 200 and "x-ms-ratelimit-remaining-resource" not in headers
    finally:
        emu.control.set_config(throttling=True)
    status, _, headers = emu.arm("GET", vmss + "/instanceView")
    assert remaining(headers, "HighCostGetVMScaleSetResource") is not None
