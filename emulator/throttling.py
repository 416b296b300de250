"""Request throttling: Azure Resource Manager's per-principal token buckets and Microsoft.Compute's
per-policy, per-window buckets, on scaled time.

Called by the pipeline as `throttle(ctx, req)` inside the state lock, after authentication and routing.
A request that finds a bucket empty gets 429 with the scaled time until enough tokens are back:
`Retry-After` in whole seconds, or only `retry-after-ms` when that time is under a second (arm.retry_after).
Otherwise the tokens are taken and the answer's rate-limit headers are left in `req.response_headers`
for `apply_headers(req, response)` to add (every answer, errors included).

On when `ctx.config["throttling"]` is true (the default); off with `--no-throttling` or
`PATCH /_emulator/config {"throttling": false}`. `PATCH /_emulator/config {"throttle_scale": 0.05}` multiplies
every Compute budget (tests use it to run a bucket dry in a few requests; 1.0 is Azure's). Buckets live in
memory only: a restart refills them (as if the emulator had been idle long enough).

Azure Resource Manager (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
"Regional throttling and token bucket algorithm", 2024): per subscription, per principal and per kind

    | kind   | bucket size | refill per second | global (all principals, 15x) |
    | reads  | 250         | 25                | 3750 / 375                   |
    | writes | 200         | 10                | 3000 / 150                   |
    | deletes| 200         | 10                | 3000 / 150                   |

Headers `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` and
`x-ms-ratelimit-remaining-subscription-global-{reads,writes,deletes}` carry the tokens left. A throttled
request gets 429 SubscriptionRequestsThrottled.

Microsoft.Compute names a bucket by policy and window, and says what is left of each in one header:

    x-ms-ratelimit-remaining-resource:
        Microsoft.Compute/HighCostGetVMScaleSet3Min;178,Microsoft.Compute/HighCostGetVMScaleSet30Min;898

The budgets below are what recorded answers show left after a request or a few, rounded up to the
round number Azure evidently starts from (178 after two lists -> 180; 898 -> 900; 14999 -> 15000; 1196 after a
create of 4 instances -> 1200, the batched policy being charged per VM). Sources (recorded real traffic):
  [G] GUIDE.md "What real Azure does" (instance list, manualupgrade, operation polls, create, gallery versions,
      scale-set GET);
  [C] Azure/azure-cli .../vm/tests/latest/recordings/test_gallery_image_definition_update_features.yaml
      (commit 0950696a, 2026-04): CreateUpdateGallery3Min;49/30Min;298, GetGallery3Min;346/30Min;2487,
      GetGalleryImage3Min;595/30Min;2981, CreateUpdateGalleryImage3Min;148/30Min;746, and on capsOperations
      polls GetOperationStatus3Min;4998/30Min;14989;
  [L] LowCostGet3Min;3999/30Min;31998 and PutVM3Min;740/30Min;3695 (VM get / put, recordings and client code
      quoting them, e.g. Azure SDK for JS nock recordings);
  [R] Azure/azure-cli .../recordings/test_vmss_run_command_v2.yaml (2024-08): a VMSS VM write is charged to
      VMScaleSetVMActions, VMScaleSetBatchedVMRequests and VmssQueuedVMOperations (earlier naming);
  [P] the conformance corpus (emulator/tests/conformance/corpus, sources in its SOURCES.md): Python SDK
      recordings 2020-21 (sdkpy_vmss_*: which policies each scale-set and scale-set VM call is charged to, VM
      reads' VMScaleSetVMViews3Min, no VMScaleSetBatchedVMRequests5Min when a delete names no VM),
      sdkpy_galleries (Delete* policies, both windows on version writes; again in cli_image_version_end_of_
      life_date, November 2025), cli_vmss_create_and_modify (2022: VMScaleSetVMViews3Min on the VM list, no
      Compute header on the subscription-wide ListAll);
  [D] learn.microsoft.com "Troubleshooting API throttling errors": DeleteVMScaleSet3Min;107/30Min;587,
      VMScaleSetBatchedVMRequests5Min, VmssQueuedVMOperations; a 429 for HighCostGet30Min with
      allowedRequestCount 800.
Families no recording shows are estimated from their nearest recorded sibling and marked so. Windows scale
with the time scale (a 3-minute window lasts 1.8 s at 0.01). VmssQueuedVMOperations has no window in its
name (a count of VM operations Compute will queue); it is modelled as a bucket charged per instance that
refills over 30 minutes.

Every Compute bucket is per subscription *per region* (learn.microsoft.com/azure/virtual-machines/
compute-throttling-limits, "Compute throttling limits", 2024: "All Compute throttling policies are implemented on
a per-region basis. ... Microsoft Compute implements throttling policies that limit the number of API requests
made per resource and per subscription per region per minute"). The names carry no region, so the header of an
answer reports the buckets of the region the request was charged to (region_of): the `locations/{location}` of
its path (operation polls, lists by location), else the stored `location` of the Compute resource it addresses
or lives under (a scale set's instances -> the scale set's region; a gallery's images and versions -> the
gallery's: the call is served by the gallery's region), else the `location` of the body creating it. A request
that names no region (a list by resource group, a resource that does not exist and a body without location) is
charged to the region of the ARM front door serving it: Azure does not document where such a call is counted,
and ARM, itself regional, forwards it from there; the emulator's front door is its `default_location`. ARM's
own buckets below stay per subscription and principal. The doc's per-resource limits (and the
`<Policy>Resource` / `<Policy>SubscriptionMaximum` names that carry them) are not modelled; its subscription-level
figures (1-minute token buckets) are looser than the windowed budgets below (a sustained 360 HighCostGetVMScaleSet
a minute against 30 here, 800 scale-set GETs against 87), so a client paced to these stays within them.

Note: some recordings show another naming for scale-set calls, `<Policy>Resource;n,<Policy>SubscriptionMaximum;n`
(test_monitor_autoscale_basic.yaml, westus, April 2024: GetVMScaleSetSubscriptionMaximum;2371,GetVMScaleSetResource;31),
while gallery calls still answer <Policy>3Min/<Policy>30Min in November 2025. The emulator keeps the windowed
naming GUIDE.md records; clients must parse any bucket name.

Refill is continuous (a bucket of `budget` tokens refilled at budget/window per second), rather than a fixed
window reset: the same average rate, and a Retry-After that does not depend on where in the window a
client is. Batch requests charge the per-VM policies (VMScaleSetBatchedVMRequests, VmssQueuedVMOperations)
one token per instance ("Batch requests, such as for scaling a virtual machine scale set, can charge
multiple counts", x-ms-request-charge); every other policy is charged 1 per request.

A throttled request gets Compute's 429 OperationNotAllowed "The server rejected the request because too many
requests have been received for this subscription." with one detail naming the bucket: code TooManyRequests,
target the bucket (e.g. HighCostGetVMScaleSet3Min), message the JSON {operationGroup, startTime, endTime,
allowedRequestCount, measuredRequestCount} [D].
"""
import json
import math
from collections import namedtuple

from emulator.arm import ArmError, retry_after
from emulator.validation import normalize_location

# --- policies ------------------------------------------------------------------------------------

MINUTE = 60.0
Window = namedtuple("Window", "suffix seconds budget")


class Policy(namedtuple("Policy", "name windows per_vm")):
    """A Compute throttling policy: its windows (label suffix, seconds, budget); `per_vm` policies are
    charged one token per instance a batch request names."""

    def label(self, window):
        return self.name + window.suffix

    @property
    def per_minute(self):
        """The sustained rate the tightest window allows (requests per minute)."""
        return min(w.budget * MINUTE / w.seconds for w in self.windows)

    @property
    def burst(self):
        """The most requests at once (the smallest window budget)."""
        return min(w.budget for w in self.windows)


def _windows(three=None, thirty=None, five=None, none=None):
    out = []
    if three:
        out.append(Window("3Min", 3 * MINUTE, three))
    if thirty:
        out.append(Window("30Min", 30 * MINUTE, thirty))
    if five:
        out.append(Window("5Min", 5 * MINUTE, five))
    if none:
        out.append(Window("", 30 * MINUTE, none))
    return tuple(out)


POLICIES = {p.name: p for p in (
    # scale sets [G] [P]
    Policy("CreateVMScaleSet", _windows(three=60, thirty=300), False),
    Policy("VMScaleSetBatchedVMRequests", _windows(five=1200), True),
    Policy("VMScaleSetActions", _windows(three=240, thirty=1200), False),
    Policy("VmssQueuedVMOperations", _windows(none=4800), True),
    Policy("GetVMScaleSet", _windows(three=400, thirty=2600), False),
    Policy("HighCostGetVMScaleSet", _windows(three=180, thirty=900), False),
    Policy("DeleteVMScaleSet", _windows(three=120, thirty=600), False),                 # [D]
    # scale-set VMs [P] (GetVMScaleSetVM3Min;999/30Min;4999, VMScaleSetVMViews3Min;4999,
    # VMScaleSetVMActions3Min;199/30Min;999, DeleteVMScaleSetVM3Min;239/30Min;1199)
    Policy("GetVMScaleSetVM", _windows(three=1000, thirty=5000), False),
    Policy("VMScaleSetVMViews", _windows(three=5000), False),
    Policy("VMScaleSetVMActions", _windows(three=200, thirty=1000), False),
    Policy("DeleteVMScaleSetVM", _windows(three=240, thirty=1200), False),
    # virtual machines (Flexible instances) [L]; update / delete estimated as PutVM, HighCostGet from [D]
    Policy("LowCostGet", _windows(three=4000, thirty=32000), False),
    Policy("HighCostGet", _windows(three=160, thirty=800), False),
    Policy("PutVM", _windows(three=750, thirty=3750), False),
    Policy("UpdateVM", _windows(three=750, thirty=3750), False),
    Policy("DeleteVM", _windows(three=750, thirty=3750), False),
    # galleries [C] [P]: CreateUpdateGalleryImageVersion3Min;374/30Min;1199 (also November 2025),
    # GetGalleryImageVersion3Min;1997/30Min;9995, Delete*3Min/30Min: Gallery 49/299, GalleryImage 49/299,
    # GalleryImageVersion 149/999
    Policy("CreateUpdateGallery", _windows(three=50, thirty=300), False),
    Policy("GetGallery", _windows(three=350, thirty=2500), False),
    Policy("DeleteGallery", _windows(three=50, thirty=300), False),
    Policy("CreateUpdateGalleryImage", _windows(three=150, thirty=750), False),
    Policy("GetGalleryImage", _windows(three=600, thirty=3000), False),
    Policy("DeleteGalleryImage", _windows(three=50, thirty=300), False),
    Policy("CreateUpdateGalleryImageVersion", _windows(three=375, thirty=1200), False),
    Policy("GetGalleryImageVersion", _windows(three=2000, thirty=10000), False),
    Policy("DeleteGalleryImageVersion", _windows(three=150, thirty=1000), False),
    # operation polls: Compute's operations [G], galleries' capsOperations [C]
    Policy("GetOperation", _windows(three=15000, thirty=30000), False),
    Policy("GetOperationStatus", _windows(three=5000, thirty=15000), False),
)}

# Policy sets as the recordings [P] show them, in the order Azure lists them. Batched = the request names
# VMs to act on now; Queued = any request that queues VM operations.
_BATCHED, _QUEUED = "VMScaleSetBatchedVMRequests", "VmssQueuedVMOperations"
_VMSS_CREATE = ("CreateVMScaleSet", _BATCHED, _QUEUED)
_VMSS_ACTION = ("VMScaleSetActions", _QUEUED)                      # PATCH, manualupgrade, rolling upgrades
_VMSS_BATCH = ("VMScaleSetActions", _BATCHED, _QUEUED)             # start, restart, reimage, delete instances
_VMSS_STOP = ("DeleteVMScaleSet", _BATCHED, _QUEUED)               # power off, deallocate, delete
_VM_RUN = ("VMScaleSetActions", "VMScaleSetVMActions", _BATCHED, _QUEUED)      # a VM's start / restart
_VM_STOP = ("DeleteVMScaleSetVM", _BATCHED, _QUEUED)                          # a VM's power off / deallocate
_VM_READ = ("GetVMScaleSetVM", "VMScaleSetVMViews")
_VMSS_VM_RUN = ("VMScaleSetVMActions", _BATCHED, _QUEUED)          # run commands [R]

# operation id -> the policies it is charged to (the first one names the family).
OPERATIONS = {
    "VirtualMachineScaleSets_CreateOrUpdate": _VMSS_CREATE,
    "VirtualMachineScaleSets_Update": _VMSS_ACTION,
    "VirtualMachineScaleSets_SetOrchestrationServiceState": ("VMScaleSetActions",),
    "VirtualMachineScaleSets_ConvertToSinglePlacementGroup": ("VMScaleSetActions",),
    "VirtualMachineScaleSets_ForceRecoveryServiceFabricPlatformUpdateDomainWalk": ("VMScaleSetActions",),
    "VirtualMachineScaleSetRollingUpgrades_Cancel": _VMSS_ACTION,
    "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade": _VMSS_ACTION,
    "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade": _VMSS_ACTION,
    "VirtualMachineScaleSetExtensions_CreateOrUpdate": ("VMScaleSetActions",),
    "VirtualMachineScaleSetExtensions_Update": ("VMScaleSetActions",),
    "VirtualMachineScaleSetExtensions_Delete": ("VMScaleSetActions",),
    "VirtualMachineScaleSets_Start": _VMSS_BATCH,
    "VirtualMachineScaleSets_Restart": _VMSS_BATCH,
    "VirtualMachineScaleSets_Redeploy": _VMSS_BATCH,
    "VirtualMachineScaleSets_PerformMaintenance": _VMSS_BATCH,
    "VirtualMachineScaleSets_Reimage": _VMSS_BATCH,
    "VirtualMachineScaleSets_ReimageAll": _VMSS_BATCH,
    "VirtualMachineScaleSets_DeleteInstances": _VMSS_BATCH,
    "VirtualMachineScaleSets_UpdateInstances": _VMSS_ACTION,
    "VirtualMachineScaleSets_PowerOff": _VMSS_STOP,
    "VirtualMachineScaleSets_Deallocate": _VMSS_STOP,
    "VirtualMachineScaleSets_Delete": _VMSS_STOP,
    "VirtualMachineScaleSets_Get": ("GetVMScaleSet",),
    "VirtualMachineScaleSets_ListSkus": ("GetVMScaleSet",),
    "VirtualMachineScaleSets_GetOSUpgradeHistory": ("GetVMScaleSet",),
    "VirtualMachineScaleSetRollingUpgrades_GetLatest": ("GetVMScaleSet",),
    "VirtualMachineScaleSetExtensions_Get": ("GetVMScaleSet",),
    "VirtualMachineScaleSetExtensions_List": ("GetVMScaleSet",),
    "VirtualMachineScaleSets_GetInstanceView": ("HighCostGetVMScaleSet",),
    "VirtualMachineScaleSetVMs_List": ("HighCostGetVMScaleSet", "VMScaleSetVMViews"),
    "VirtualMachineScaleSets_List": ("HighCostGetVMScaleSet",),
    # ListAll (the subscription-wide list) is answered with no Compute rate-limit header at all [P]
    "VirtualMachineScaleSets_ListByLocation": ("HighCostGetVMScaleSet",),
    "VirtualMachineScaleSetVMs_Start": _VM_RUN,
    "VirtualMachineScaleSetVMs_Restart": _VM_RUN,
    "VirtualMachineScaleSetVMs_Reimage": _VM_RUN,
    "VirtualMachineScaleSetVMs_ReimageAll": _VM_RUN,
    "VirtualMachineScaleSetVMs_Update": _VMSS_ACTION,
    "VirtualMachineScaleSetVMs_SimulateEviction": ("VMScaleSetVMActions",),
    "VirtualMachineScaleSetVMExtensions_CreateOrUpdate": ("VMScaleSetVMActions",),
    "VirtualMachineScaleSetVMExtensions_Update": ("VMScaleSetVMActions",),
    "VirtualMachineScaleSetVMRunCommands_CreateOrUpdate": _VMSS_VM_RUN,
    "VirtualMachineScaleSetVMRunCommands_Update": _VMSS_VM_RUN,
    "VirtualMachineScaleSetVMs_Delete": ("DeleteVMScaleSetVM", _QUEUED),
    "VirtualMachineScaleSetVMs_PowerOff": _VM_STOP,
    "VirtualMachineScaleSetVMs_Deallocate": _VM_STOP,
    "VirtualMachineScaleSetVMExtensions_Delete": ("DeleteVMScaleSetVM",),
    "VirtualMachineScaleSetVMRunCommands_Delete": ("DeleteVMScaleSetVM",),
    "VirtualMachineScaleSetVMs_Get": _VM_READ,
    "VirtualMachineScaleSetVMs_GetInstanceView": _VM_READ,
    "VirtualMachineScaleSetVMExtensions_Get": ("GetVMScaleSetVM",),
    "VirtualMachineScaleSetVMRunCommands_Get": ("GetVMScaleSetVM",),
    "VirtualMachineScaleSetVMs_RetrieveBootDiagnosticsData": ("GetVMScaleSetVM",),
    "VirtualMachines_CreateOrUpdate": ("PutVM",),
    "VirtualMachines_Update": ("UpdateVM",),
    "VirtualMachines_Start": ("UpdateVM",),
    "VirtualMachines_Restart": ("UpdateVM",),
    "VirtualMachines_PowerOff": ("UpdateVM",),
    "VirtualMachines_Reimage": ("UpdateVM",),
    "VirtualMachines_Redeploy": ("UpdateVM",),
    "VirtualMachines_Reapply": ("UpdateVM",),
    "VirtualMachines_Delete": ("DeleteVM",),
    "VirtualMachines_Deallocate": ("DeleteVM",),
    "VirtualMachines_SimulateEviction": ("DeleteVM",),
    "VirtualMachines_Get": ("LowCostGet",),
    "VirtualMachines_InstanceView": ("LowCostGet",),
    "VirtualMachines_List": ("HighCostGet",),
    "VirtualMachines_ListAll": ("HighCostGet",),
    "VirtualMachines_ListByLocation": ("HighCostGet",),
    "Galleries_CreateOrUpdate": ("CreateUpdateGallery",),
    "Galleries_Update": ("CreateUpdateGallery",),
    "Galleries_Delete": ("DeleteGallery",),
    "Galleries_Get": ("GetGallery",),
    "Galleries_ListByResourceGroup": ("GetGallery",),
    "Galleries_List": ("GetGallery",),
    "GalleryImages_CreateOrUpdate": ("CreateUpdateGalleryImage",),
    "GalleryImages_Update": ("CreateUpdateGalleryImage",),
    "GalleryImages_Delete": ("DeleteGalleryImage",),
    "GalleryImages_Get": ("GetGalleryImage",),
    "GalleryImages_ListByGallery": ("GetGalleryImage",),
    "GalleryImageVersions_CreateOrUpdate": ("CreateUpdateGalleryImageVersion",),
    "GalleryImageVersions_Update": ("CreateUpdateGalleryImageVersion",),
    "GalleryImageVersions_Delete": ("DeleteGalleryImageVersion",),
    "GalleryImageVersions_Get": ("GetGalleryImageVersion",),
    "GalleryImageVersions_ListByGalleryImage": ("GetGalleryImageVersion",),
}

# Scale-set actions whose body lists instanceIds (all instances when omitted).
BATCH_ACTIONS = {"VirtualMachineScaleSets_UpdateInstances", "VirtualMachineScaleSets_Reimage",
                 "VirtualMachineScaleSets_ReimageAll", "VirtualMachineScaleSets_Restart",
                 "VirtualMachineScaleSets_Start", "VirtualMachineScaleSets_PowerOff",
                 "VirtualMachineScaleSets_Deallocate", "VirtualMachineScaleSets_DeleteInstances",
                 "VirtualMachineScaleSets_Redeploy", "VirtualMachineScaleSets_PerformMaintenance",
                 "VirtualMachineScaleSets_Delete"}

# Azure Resource Manager: kind -> (bucket size, refill per second); global = 15 x, across principals.
ARM_BUCKETS = {"reads": (250, 25), "writes": (200, 10), "deletes": (200, 10)}
ARM_GLOBAL_FACTOR = 15

COMPUTE_MESSAGE = "The server rejected the request because too many requests have been received for this subscription."


# --- bucket arithmetic (pure) --------------------------------------------------------------------

def refilled(tokens, stamp, now, capacity, rate):
    """Tokens in a bucket at `now` that held `tokens` at `stamp` and gains `rate` per second."""
    return min(float(capacity), tokens + max(now - stamp, 0.0) * rate)


def wait_for(tokens, need, rate):
    """Seconds until a bucket holding `tokens` has `need` (0 when it already has)."""
    return 0.0 if tokens >= need - 1e-9 else (need - tokens) / rate     # float dust is not a missing token


class Bucket:
    """A token bucket: `capacity` tokens, refilled at `rate` per (real) second, full when created."""

    def __init__(self, capacity, rate, now):
        self.capacity, self.rate = float(capacity), float(rate)
        self.tokens, self.stamp = float(capacity), now
        self.taken = 0          # requests served since creation (for the 429 detail)

    def level(self, now):
        self.tokens, self.stamp = refilled(self.tokens, self.stamp, now, self.capacity, self.rate), now
        return self.tokens

    def retune(self, capacity, rate):
        """Adopt new limits (the time scale changed) keeping the tokens already there."""
        self.capacity, self.rate = float(capacity), float(rate)
        self.tokens = min(self.tokens, self.capacity)

    def need(self, charge):
        return min(float(charge), self.capacity)

    def wait(self, now, charge):
        return wait_for(self.level(now), self.need(charge), self.rate)

    def take(self, now, charge):
        self.tokens = self.level(now) - self.need(charge)
        self.taken += 1


# --- which buckets a request uses ----------------------------------------------------------------

Charge = namedtuple("Charge", "policies resource_id instances")


def arm_kind(method):
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method, "writes")


def resource_of(req):
    """The id of the resource a request addresses: the path up to the route's last {name} parameter."""
    template = req.route.template if req.route is not None else ""
    segments = template.strip("/").split("/")
    last = max((i for i, s in enumerate(segments) if s.startswith("{")), default=-1)
    path = req.path.strip("/").split("/")
    return "/" + "/".join(path[:last + 1]) if last >= 0 else None


def _top_resource(path):
    """The id of the Compute resource a path addresses or lives under (a scale set for its instances, a
    gallery for its images and versions); None for a collection (no name after the type)."""
    parts = path.strip("/").split("/")
    lower = [part.lower() for part in parts]
    if "microsoft.compute" not in lower:
        return None
    at = lower.index("microsoft.compute")
    return "/" + "/".join(parts[:at + 3]) if len(parts) >= at + 3 else None


def region_of(ctx, req):
    """The region whose Compute buckets a request is charged to (see the module's docstring)."""
    if req.params.get("location"):
        return normalize_location(req.params["location"])
    top = _top_resource(req.path)
    doc = ctx.store.get(top) if top else None
    where = (doc or {}).get("location") or (req.body.get("location") if isinstance(req.body, dict) else None)
    if not where:
        where = ctx.config.get("default_location")      # the ARM front door's own region
    return normalize_location(where) if where else None


def classify(ctx, req):
    """The Compute policies a request is charged to (a Charge), or None when no Compute policy applies."""
    op_id = req.operation_id or ""
    template = (req.route.template if req.route is not None else "").lower()
    rid = resource_of(req)
    if "/operations/{operationid}" in template or "/capsoperations/{operationid}" in template:
        if (req.params.get("namespace") or "microsoft.compute").lower() != "microsoft.compute":
            return None
        return Charge(("GetOperationStatus",) if "/capsoperations/" in template else ("GetOperation",), rid, 1)
    if op_id not in OPERATIONS:
        return None
    instances = 1
    if op_id in ("VirtualMachineScaleSets_CreateOrUpdate", "VirtualMachineScaleSets_Update"):
        instances = _capacity_change(ctx.store.get(rid), req.body)
    elif op_id == "VirtualMachines_CreateOrUpdate" and ctx.store.exists(rid):
        return Charge(("UpdateVM",), rid, 1)
    elif op_id in BATCH_ACTIONS:
        instances = _instances_named(ctx, rid, req.body)
    policies = OPERATIONS[op_id]
    if not instances:   # a request that names no VM (deleting an emptied set) is no batched VM request [P]
        policies = tuple(p for p in policies if p != _BATCHED)
    return Charge(policies, rid, max(instances, 1))


def _capacity_change(current, body):
    """Instances a create / update adds or removes (at least 1)."""
    wanted = ((body or {}).get("sku") or {}).get("capacity") if isinstance(body, dict) else None
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        return 1
    now = int(((current or {}).get("sku") or {}).get("capacity") or 0)
    return max(abs(wanted - now), 1)


def _instances_named(ctx, vmss_id, body):
    """Instances a batch action names: its instanceIds, else every instance of the set (may be 0)."""
    ids = body.get("instanceIds") if isinstance(body, dict) else None
    if ids is not None:
        return max(len(ids), 1)
    doc = ctx.store.get(vmss_id) if vmss_id else None
    if doc is None:
        return 1        # an unknown set: the handler answers 404, charged as one request
    return int(((doc or {}).get("sku") or {}).get("capacity") or 0)


# --- state ---------------------------------------------------------------------------------------

def _buckets(ctx):
    """In-memory buckets of this emulator (never in state.db: a restart refills them)."""
    buckets = getattr(ctx, "_throttle_buckets", None)
    if buckets is None:
        buckets = ctx._throttle_buckets = {}
    return buckets


def _bucket(ctx, key, capacity, rate, now):
    buckets = _buckets(ctx)
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = Bucket(capacity, rate, now)
    elif bucket.capacity != capacity or bucket.rate != rate:
        bucket.level(now)
        bucket.retune(capacity, rate)
    return bucket


def compute_buckets(ctx, charge, subscription, region, now):
    """[(label, bucket, tokens to take, window)] of a Compute request in `region`, in the order Azure lists them."""
    budget_scale = float(ctx.config.get("throttle_scale", 1.0) or 1.0)
    out = []
    for name in charge.policies:
        policy = POLICIES[name]
        tokens = charge.instances if policy.per_vm else 1
        for window in policy.windows:
            label = policy.label(window)
            capacity = max(1.0, round(window.budget * budget_scale))
            seconds = window.seconds * ctx.clock.time_scale
            bucket = _bucket(ctx, ("compute", label, subscription.lower(), region), capacity, capacity / seconds, now)
            out.append((label, bucket, tokens, seconds))
    return out


def arm_buckets(ctx, kind, subscription, principal, now):
    """[(header, bucket)] of ARM's per-principal and global buckets for this kind of request."""
    size, per_second = ARM_BUCKETS[kind]
    second = ctx.clock.time_scale
    sub = subscription.lower()
    mine = _bucket(ctx, ("arm", kind, sub, principal), size, per_second / second, now)
    every = _bucket(ctx, ("arm", kind, sub, "*"), size * ARM_GLOBAL_FACTOR,
                    per_second * ARM_GLOBAL_FACTOR / second, now)
    return [(f"x-ms-ratelimit-remaining-subscription-{kind}", mine),
            (f"x-ms-ratelimit-remaining-subscription-global-{kind}", every)]


# --- the pipeline hook ---------------------------------------------------------------------------

def enabled(ctx):
    return bool(ctx.config.get("throttling", True))


def throttle(ctx, req):
    """Charge the request to its buckets or raise 429; leaves the rate-limit headers in
    `req.response_headers`."""
    req.response_headers = {}
    if not enabled(ctx):
        return
    now = ctx.clock.now()
    subscription = (req.params.get("subscriptionId") or ctx.subscription_id)
    principal = str((req.principal or {}).get("object_id") or (req.principal or {}).get("name") or "anonymous")
    kind = arm_kind(req.method)
    arm = arm_buckets(ctx, kind, subscription, principal, now)
    _refuse_arm(arm, kind, subscription, principal, now)
    for _, bucket in arm:
        bucket.take(now, 1)
    headers = {name: str(int(bucket.level(now))) for name, bucket in arm}
    charge = classify(ctx, req)
    if charge is not None:
        compute = compute_buckets(ctx, charge, subscription, region_of(ctx, req), now)
        _refuse_compute(ctx, compute, charge, now, headers)
        for _, bucket, tokens, _ in compute:
            bucket.take(now, tokens)
        headers.update(_compute_headers(compute, charge))
    req.response_headers = headers


def _refuse_arm(arm, kind, subscription, principal, now):
    wait = max(bucket.wait(now, 1) for _, bucket in arm)
    if wait <= 0:
        return
    headers = retry_after(wait)
    headers.update({name: str(int(bucket.level(now))) for name, bucket in arm})
    raise ArmError(429, "SubscriptionRequestsThrottled",
                   f"Number of '{kind[:-1]}' requests for subscription '{subscription}' actor '{principal}' "
                   f"exceeded. Please try again after '{max(1, math.ceil(wait))}' seconds after additional "
                   "tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
                   headers=headers)


def _refuse_compute(ctx, compute, charge, now, headers):
    waits = [(bucket.wait(now, tokens), label, bucket, seconds) for label, bucket, tokens, seconds in compute]
    wait, label, bucket, seconds = max(waits, key=lambda w: w[0])
    if wait <= 0:
        return
    out = dict(headers)
    out.update(retry_after(wait))
    out.update(_compute_headers(compute, charge))
    detail = {"operationGroup": label, "startTime": ctx.clock.iso(now - seconds),
              "endTime": ctx.clock.iso(now + wait), "allowedRequestCount": int(bucket.capacity),
              "measuredRequestCount": bucket.taken + 1}
    raise ArmError(429, "OperationNotAllowed", COMPUTE_MESSAGE,
                   details=[{"code": "TooManyRequests", "target": label, "message": json.dumps(detail)}],
                   headers=out)


def _compute_headers(compute, charge):
    remaining = ",".join(f"Microsoft.Compute/{label};{int(bucket.tokens)}" for label, bucket, _, _ in compute)
    return {"x-ms-ratelimit-remaining-resource": remaining, "x-ms-request-charge": str(charge.instances)}
