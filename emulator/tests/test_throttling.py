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
from emulator.arm import ArmError, retry_after
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
    assert retry_after(0.05) == {"retry-after-ms": "50"}        # sub-second: no Retry-After (int() parsers)
    assert retry_after(2.2) == {"Retry-After": "3"}             # whole seconds, rounded up
    assert retry_after(10.0) == {"Retry-After": "10"}
    bucket = t.Bucket(12, 4 / 60, now=0.0)
    for _ in range(12):
        assert bucket.wait(0.0, 1) == 0
        bucket.take(0.0, 1)
    assert bucket.wait(0.0, 1) == pytest.approx(15.0)            # 4 per minute: one every 15 s
    assert bucket.level(30.0) == pytest.approx(2.0)
    assert bucket.need(50) == 12                                 # a charge above capacity is capped


def test_budgets_are_the_recorded_ones():
    """Full budgets derived from what recorded answers show left after a request or two."""
    windows = {p.label(w): w.budget for p in t.POLICIES.values() for w in p.windows}
    assert windows["HighCostGetVMScaleSet3Min"] == 180 and windows["HighCostGetVMScaleSet30Min"] == 900
    assert windows["VMScaleSetActions3Min"] == 240 and windows["VMScaleSetActions30Min"] == 1200
    assert windows["VmssQueuedVMOperations"] == 4800
    assert windows["GetOperation3Min"] == 15000 and windows["GetOperation30Min"] == 30000
    assert windows["CreateVMScaleSet3Min"] == 60 and windows["CreateVMScaleSet30Min"] == 300
    assert windows["VMScaleSetBatchedVMRequests5Min"] == 1200
    assert windows["CreateUpdateGalleryImageVersion3Min"] == 375
    assert windows["GetVMScaleSet3Min"] == 400 and windows["GetVMScaleSet30Min"] == 2600
    assert t.POLICIES["HighCostGetVMScaleSet"].per_minute == 30 and t.POLICIES["HighCostGetVMScaleSet"].burst == 180


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


GALLERY = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
OPS = f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope"


def header_after(ctx, method, path, body=None):
    req = fake_req(method, path, body)
    t.throttle(ctx, req)
    return req.response_headers["x-ms-ratelimit-remaining-resource"]


# The exact recorded header of each family (GUIDE.md "Throttling headers"; recordings in throttling.py and the
# conformance corpus, which show the policy sets GUIDE.md abbreviates), after the same number of requests.
@pytest.mark.parametrize("method,path,body,times,header", [
    ("GET", VMSS + "/virtualMachines", None, 2,
     "Microsoft.Compute/HighCostGetVMScaleSet3Min;178,Microsoft.Compute/HighCostGetVMScaleSet30Min;898,"
     "Microsoft.Compute/VMScaleSetVMViews3Min;4998"),             # cli_vmss_create_and_modify#04
    ("POST", VMSS + "/manualupgrade", {"instanceIds": []}, 1,
     "Microsoft.Compute/VMScaleSetActions3Min;239,Microsoft.Compute/VMScaleSetActions30Min;1199,"
     "Microsoft.Compute/VmssQueuedVMOperations;4799"),
    ("GET", OPS + "/operations/abc", None, 1,
     "Microsoft.Compute/GetOperation3Min;14999,Microsoft.Compute/GetOperation30Min;29999"),
    ("PUT", VMSS.replace("/web", "/api"), {"sku": {"capacity": 4}}, 1,
     "Microsoft.Compute/CreateVMScaleSet3Min;59,Microsoft.Compute/CreateVMScaleSet30Min;299,"
     "Microsoft.Compute/VMScaleSetBatchedVMRequests5Min;1196,Microsoft.Compute/VmssQueuedVMOperations;4796"),
    ("PUT", GALLERY + "/images/i/versions/1.0.0", {}, 1,
     "Microsoft.Compute/CreateUpdateGalleryImageVersion3Min;374,Microsoft.Compute/CreateUpdateGalleryImageVersion30Min;1199"),
    ("DELETE", GALLERY + "/images/i/versions/1.0.0", None, 1,
     "Microsoft.Compute/DeleteGalleryImageVersion3Min;149,Microsoft.Compute/DeleteGalleryImageVersion30Min;999"),
    ("DELETE", GALLERY, None, 1, "Microsoft.Compute/DeleteGallery3Min;49,Microsoft.Compute/DeleteGallery30Min;299"),
    ("GET", VMSS + "/virtualMachines/3", None, 1,
     "Microsoft.Compute/GetVMScaleSetVM3Min;999,Microsoft.Compute/GetVMScaleSetVM30Min;4999,"
     "Microsoft.Compute/VMScaleSetVMViews3Min;4999"),              # sdkpy_vmss_vm#07
    ("POST", VMSS + "/virtualMachines/3/restart", None, 1,
     "Microsoft.Compute/VMScaleSetActions3Min;239,Microsoft.Compute/VMScaleSetActions30Min;1199,"
     "Microsoft.Compute/VMScaleSetVMActions3Min;199,Microsoft.Compute/VMScaleSetVMActions30Min;999,"
     "Microsoft.Compute/VMScaleSetBatchedVMRequests5Min;1199,Microsoft.Compute/VmssQueuedVMOperations;4799"),
    ("POST", VMSS + "/poweroff", None, 1,
     "Microsoft.Compute/DeleteVMScaleSet3Min;119,Microsoft.Compute/DeleteVMScaleSet30Min;599,"
     "Microsoft.Compute/VMScaleSetBatchedVMRequests5Min;1196,Microsoft.Compute/VmssQueuedVMOperations;4796"),
    ("PUT", GALLERY, {}, 1,
     "Microsoft.Compute/CreateUpdateGallery3Min;49,Microsoft.Compute/CreateUpdateGallery30Min;299"),
    ("GET", GALLERY + "/images/i", None, 1,
     "Microsoft.Compute/GetGalleryImage3Min;599,Microsoft.Compute/GetGalleryImage30Min;2999"),
    ("GET", VMSS, None, 5, "Microsoft.Compute/GetVMScaleSet3Min;395,Microsoft.Compute/GetVMScaleSet30Min;2595"),
    ("GET", VM, None, 1, "Microsoft.Compute/LowCostGet3Min;3999,Microsoft.Compute/LowCostGet30Min;31999"),
    ("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/capsOperations/abc", None, 2,
     "Microsoft.Compute/GetOperationStatus3Min;4998,Microsoft.Compute/GetOperationStatus30Min;14998"),
])
def test_each_family_answers_its_recorded_buckets(method, path, body, times, header):
    ctx = fake_ctx()
    for _ in range(times):
        got = header_after(ctx, method, path, body)
    assert got == header


def test_subscription_wide_list_has_no_compute_header():
    """cli_vmss_create_and_modify#02: Azure answers the subscription-wide scale-set list with no
    x-ms-ratelimit-remaining-resource (ARM's read counters only)."""
    req = fake_req("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachineScaleSets")
    assert req.operation_id == "VirtualMachineScaleSets_ListAll"
    t.throttle(fake_ctx(), req)
    assert "x-ms-ratelimit-remaining-resource" not in req.response_headers
    assert "x-ms-ratelimit-remaining-subscription-reads" in req.response_headers


def test_deleting_an_emptied_set_is_no_batched_vm_request():
    """sdkpy_vmss_vm#33: the DELETE of a set whose last instance was deleted lists DeleteVMScaleSet and
    VmssQueuedVMOperations but not VMScaleSetBatchedVMRequests5Min (which a set with VMs is charged)."""
    ctx = fake_ctx()
    full = header_after(ctx, "DELETE", VMSS)
    assert "VMScaleSetBatchedVMRequests5Min;1196" in full
    ctx.store.put(VMSS, {"id": VMSS, "sku": {"capacity": 0}}, "Microsoft.Compute/virtualMachineScaleSets")
    empty = header_after(ctx, "DELETE", VMSS)
    assert [p.split(";")[0] for p in empty.split(",")] == [
        "Microsoft.Compute/DeleteVMScaleSet3Min", "Microsoft.Compute/DeleteVMScaleSet30Min",
        "Microsoft.Compute/VmssQueuedVMOperations"]


@pytest.mark.parametrize("method,suffix,body,first,instances", [
    ("GET", "/instanceView", None, "HighCostGetVMScaleSet", 1),
    ("PATCH", "", {"sku": {"capacity": 10}}, "VMScaleSetActions", 6),         # sdkpy_vmss_compute#01
    ("POST", "/manualupgrade", {"instanceIds": ["0", "1", "2"]}, "VMScaleSetActions", 3),
    ("POST", "/restart", None, "VMScaleSetActions", 4),
    ("POST", "/delete", {"instanceIds": ["3"]}, "VMScaleSetActions", 1),      # sdkpy_vmss_vm#28
    ("POST", "/deallocate", None, "DeleteVMScaleSet", 4),                    # sdkpy_vmss_compute#13
    ("DELETE", "", None, "DeleteVMScaleSet", 4),
    ("POST", "/osRollingUpgrade", None, "VMScaleSetActions", 1),
    ("GET", "/rollingUpgrades/latest", None, "GetVMScaleSet", 1),
    ("GET", "/virtualMachines/3", None, "GetVMScaleSetVM", 1),
    ("PUT", "/virtualMachines/3", {}, "VMScaleSetActions", 1),               # sdkpy_vmss_vm#10
    ("POST", "/virtualMachines/3/restart", None, "VMScaleSetActions", 1),    # sdkpy_vmss_vm#13
    ("POST", "/virtualMachines/3/poweroff", None, "DeleteVMScaleSetVM", 1),  # sdkpy_vmss_vm#16
    ("DELETE", "/virtualMachines/3", None, "DeleteVMScaleSetVM", 1),
])
def test_scale_set_operations_map_to_their_policies(method, suffix, body, first, instances):
    got = t.classify(fake_ctx(), fake_req(method, VMSS + suffix, body))
    assert (got.policies[0], got.instances) == (first, instances)


def test_other_providers_are_not_compute_throttled():
    ctx = fake_ctx()
    other = fake_req("GET", f"/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/operations/abc")
    assert t.classify(ctx, other) is None
    assert t.classify(ctx, fake_req("GET", f"/subscriptions/{SUB}/resourcegroups/rg")) is None


def test_compute_bucket_runs_dry_then_429_names_the_bucket():
    ctx = fake_ctx(time_scale=0.01)          # the 3-minute window lasts 1.8 s
    ctx.config["throttle_scale"] = 0.05      # GetVMScaleSet3Min 400 -> 20 tokens, refilled at 20 / 1.8 s
    seen = [header_after(ctx, "GET", VMSS) for _ in range(20)]
    assert seen[0] == "Microsoft.Compute/GetVMScaleSet3Min;19,Microsoft.Compute/GetVMScaleSet30Min;129"
    assert seen[-1].startswith("Microsoft.Compute/GetVMScaleSet3Min;0,")
    with pytest.raises(ArmError) as err:
        t.throttle(ctx, fake_req("GET", VMSS))
    e = err.value
    assert (e.status, e.code) == (429, "OperationNotAllowed")
    assert e.message == ("The server rejected the request because too many requests have been received for this "
                         "subscription.")
    assert e.details[0]["code"] == "TooManyRequests" and e.details[0]["target"] == "GetVMScaleSet3Min"
    detail = json.loads(e.details[0]["message"])
    assert detail["operationGroup"] == "GetVMScaleSet3Min"
    assert (detail["allowedRequestCount"], detail["measuredRequestCount"]) == (20, 21)
    assert set(detail) == {"operationGroup", "startTime", "endTime", "allowedRequestCount", "measuredRequestCount"}
    assert "Retry-After" not in e.headers and e.headers["retry-after-ms"] == "90"    # 1.8 s / 20: sub-second
    assert "GetVMScaleSet3Min;0" in e.headers["x-ms-ratelimit-remaining-resource"]
    ctx.clock.t += 0.09                      # one token back
    t.throttle(ctx, fake_req("GET", VMSS))


def test_a_full_window_wait_is_whole_seconds():
    ctx = fake_ctx(time_scale=1.0)
    ctx.config["throttle_scale"] = 0.01      # CreateUpdateGalleryImageVersion3Min: 375 -> 4 tokens
    for _ in range(4):
        header_after(ctx, "PUT", GALLERY + "/images/i/versions/1.0.0", {})
    with pytest.raises(ArmError) as err:
        t.throttle(ctx, fake_req("PUT", GALLERY + "/images/i/versions/1.0.0", {}))
    assert err.value.headers["Retry-After"] == "45" and "retry-after-ms" not in err.value.headers  # 180 s / 4
    assert err.value.details[0]["target"] == "CreateUpdateGalleryImageVersion3Min"


def test_batch_requests_charge_the_per_vm_policies_per_instance():
    ctx = fake_ctx()
    req = fake_req("POST", VMSS + "/manualupgrade", {"instanceIds": ["0", "1", "2", "3", "4"]})
    t.throttle(ctx, req)
    assert req.response_headers["x-ms-request-charge"] == "5"
    assert req.response_headers["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/VMScaleSetActions3Min;239,Microsoft.Compute/VMScaleSetActions30Min;1199,"
        "Microsoft.Compute/VmssQueuedVMOperations;4795")


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


# --- per region: "All Compute throttling policies are implemented on a per-region basis" ---------------------
# (learn.microsoft.com/azure/virtual-machines/compute-throttling-limits)

EAST = VMSS.replace("/web", "/east")
EAST_GALLERY = GALLERY + "east"


def two_region_ctx(scale=0.05):
    """`web` in westeurope (the emulator's own region), `east` and the gallery `geast` in East US, budgets scaled."""
    ctx = fake_ctx()
    ctx.config.update(throttle_scale=scale, default_location="westeurope")
    ctx.store.put(VMSS, {"id": VMSS, "location": "westeurope", "sku": {"capacity": 4}},
                  "Microsoft.Compute/virtualMachineScaleSets")
    ctx.store.put(EAST, {"id": EAST, "location": "East US", "sku": {"capacity": 4}},
                  "Microsoft.Compute/virtualMachineScaleSets")
    ctx.store.put(EAST_GALLERY, {"id": EAST_GALLERY, "location": "eastus"}, "Microsoft.Compute/galleries")
    return ctx


def drain(ctx, method, path, body=None):
    """Requests until one is refused; the 429."""
    for _ in range(100000):
        try:
            t.throttle(ctx, fake_req(method, path, body))
        except ArmError as err:
            assert err.status == 429
            return err
    raise AssertionError("never throttled")


def test_a_bucket_drained_in_one_region_leaves_another_regions_full():
    ctx = two_region_ctx()                   # HighCostGetVMScaleSet: 9 / 45 tokens, VMScaleSetVMViews3Min 250
    err = drain(ctx, "GET", VMSS + "/virtualMachines")
    assert err.details[0]["target"] == "HighCostGetVMScaleSet3Min"
    assert "HighCostGetVMScaleSet3Min;0" in err.headers["x-ms-ratelimit-remaining-resource"]
    assert header_after(ctx, "GET", EAST + "/virtualMachines") == (
        "Microsoft.Compute/HighCostGetVMScaleSet3Min;8,Microsoft.Compute/HighCostGetVMScaleSet30Min;44,"
        "Microsoft.Compute/VMScaleSetVMViews3Min;249")          # same names, East US's own buckets
    assert drain(ctx, "GET", VMSS + "/instanceView").details[0]["target"] == "HighCostGetVMScaleSet3Min"
    assert t.region_of(ctx, fake_req("GET", EAST + "/virtualMachines/3")) == "eastus"     # an instance: its set's


def test_operation_polls_are_charged_to_the_region_in_their_path():
    ctx = two_region_ctx(scale=0.001)        # GetOperation3Min: 15 tokens
    west, east = OPS + "/operations/abc", OPS.replace("westeurope", "eastus") + "/operations/abc"
    assert drain(ctx, "GET", west).details[0]["target"] == "GetOperation3Min"
    assert header_after(ctx, "GET", east) == "Microsoft.Compute/GetOperation3Min;14,Microsoft.Compute/GetOperation30Min;29"
    caps = OPS.replace("westeurope", "eastus") + "/capsOperations/abc"
    assert t.region_of(ctx, fake_req("GET", caps)) == "eastus"
    assert drain(ctx, "GET", caps).details[0]["target"] == "GetOperationStatus3Min"
    assert header_after(ctx, "GET", OPS + "/capsOperations/abc").startswith("Microsoft.Compute/GetOperationStatus3Min;4,")


def test_gallery_calls_are_charged_to_the_gallerys_region():
    ctx = two_region_ctx(scale=0.01)         # CreateUpdateGalleryImageVersion3Min: 4 tokens
    version = EAST_GALLERY + "/images/i/versions/1.0.0"
    # the body's location does not move the call: the gallery's region serves it
    assert t.region_of(ctx, fake_req("PUT", version, {"location": "westeurope"})) == "eastus"
    drain(ctx, "PUT", version, {"location": "westeurope"})
    assert header_after(ctx, "PUT", GALLERY + "/images/i/versions/1.0.0", {"location": "westeurope"}).startswith(
        "Microsoft.Compute/CreateUpdateGalleryImageVersion3Min;3,")      # a westeurope gallery: untouched
    with pytest.raises(ArmError):
        t.throttle(ctx, fake_req("PATCH", version, {}))                   # the gallery's bucket is still dry


def test_a_request_without_a_region_is_charged_to_the_emulators_own_region():
    """A list by resource group or a set that does not exist names no region: charged to the ARM front door's region
    (default_location); a create is charged to its body's location."""
    ctx = two_region_ctx()
    listing = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets"
    assert t.region_of(ctx, fake_req("GET", listing)) == "westeurope"
    assert t.region_of(ctx, fake_req("GET", VMSS.replace("/web", "/none"))) == "westeurope"
    assert t.region_of(ctx, fake_req("PUT", VMSS.replace("/web", "/new"), {"location": "East US 2"})) == "eastus2"
    assert drain(ctx, "GET", listing).details[0]["target"] == "HighCostGetVMScaleSet3Min"
    with pytest.raises(ArmError):
        t.throttle(ctx, fake_req("GET", VMSS + "/instanceView"))         # the same bucket as westeurope's sets
    t.throttle(ctx, fake_req("GET", EAST + "/instanceView"))              # East US's is full


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
    emu.control.set_config(throttle_scale=0.05)     # GetVMScaleSet3Min: 20 tokens per 18 s (scaled 3 minutes)
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
        counts.append(remaining(headers, "GetVMScaleSet3Min"))
        assert int(headers["x-ms-ratelimit-remaining-subscription-reads"]) < 250
        assert int(headers["x-ms-ratelimit-remaining-subscription-global-reads"]) < 3750
    assert answer is not None, "never throttled"
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]      # the header counts down
    body, headers = answer
    assert body["error"]["code"] == "OperationNotAllowed"
    assert body["error"]["details"][0]["target"] == "GetVMScaleSet3Min"
    wait = int(headers["Retry-After"]) if "Retry-After" in headers else int(headers["retry-after-ms"]) / 1000
    assert 0 < wait <= 1 and ("Retry-After" in headers) != ("retry-after-ms" in headers)   # one or the other
    time.sleep(wait + 0.05)
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
    assert time.monotonic() - started >= 0.8 * statuses.count("429") * 0.9     # it waited retry-after(-ms)


def test_every_compute_answer_carries_the_headers_and_config_switches_it_off(throttled):
    emu, vmss = throttled
    status, body, headers = emu.arm("GET", vmss + "/virtualMachines/999")
    assert status == 404 and remaining(headers, "GetVMScaleSetVM3Min") is not None
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
    assert remaining(headers, "HighCostGetVMScaleSet3Min") is not None
    assert remaining(headers, "HighCostGetVMScaleSet30Min") is not None


def test_two_scale_sets_in_two_regions_have_their_own_budgets(throttled):
    emu, vmss = throttled
    from test_autoscale import vmss_body
    body = vmss_body(emu, 1)
    body["location"] = "eastus" if emu.location != "eastus" else "westus2"
    status, created, _ = emu.arm("PUT", vmss.rsplit("/", 1)[0] + "/other", body)
    assert status in (200, 201), created
    while emu.arm("GET", vmss + "/instanceView")[0] != 429:     # HighCostGetVMScaleSet: 9 tokens, 45
        pass
    status, _, headers = emu.arm("GET", created["id"] + "/instanceView")
    assert status == 200
    assert remaining(headers, "HighCostGetVMScaleSet3Min") == 8 and remaining(headers, "HighCostGetVMScaleSet30Min") == 44
