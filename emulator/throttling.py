"""Request throttling: Azure Resource Manager's per-principal token buckets and Microsoft.Compute's
per-resource and per-subscription token buckets, on scaled time.

Called by the pipeline as `throttle(ctx, req)` inside the state lock, after authentication and routing.
A request that finds a bucket empty gets 429 with `Retry-After` (whole seconds, at least 1) and
`retry-after-ms` (what azure-core honours first), both the scaled time until enough tokens are back.
Otherwise the tokens are taken and the answer's rate-limit headers are left in `req.response_headers`
for `apply_headers(req, response)` to add (every answer, errors included).

On when `ctx.config["throttling"]` is true (the default); off with `--no-throttling` or
`PATCH /_emulator/config {"throttling": false}`. Buckets live in memory only: a restart refills them
(as if the emulator had been idle for long enough), nothing of them is in state.db.

Azure Resource Manager (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
"Regional throttling and token bucket algorithm", 2024): per subscription, per principal and per kind

    | kind   | bucket size | refill per second | global (all principals, 15x) |
    | reads  | 250         | 25                | 3750 / 375                   |
    | writes | 200         | 10                | 3000 / 150                   |
    | deletes| 200         | 10                | 3000 / 150                   |

Headers `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` and
`x-ms-ratelimit-remaining-subscription-global-{reads,writes,deletes}` carry the tokens left. A throttled
request gets 429 SubscriptionRequestsThrottled.

Microsoft.Compute (learn.microsoft.com/azure/virtual-machines/compute-throttling-limits, 2024): a token
bucket per policy per resource and per subscription (per region; the emulator has one region that
matters). Refill and capacity are per minute; the minute is scaled by time_scale.

    policy (header base name)  resource       subscription    operations
                               refill/capacity refill/capacity
    PutVMScaleSet              4 / 12         125 / 375       VMSS create (PUT of a new set)
    VMScaleSetActions          4 / 12         500 / 1500      VMSS update (PUT of an existing set, PATCH),
                                                              setOrchestrationServiceState, extensions,
                                                              rolling upgrade start/cancel
    VMScaleSetActions          -              500 / 1500      VMSS start, restart, reimage(all), redeploy,
                                                              performMaintenance, manualupgrade (1)
    DeleteVMScaleSet           4 / 12         175 / 525       VMSS delete, deallocate
    DeleteVMScaleSet           -              175 / 525       VMSS power off, delete instances (1)
    GetVMScaleSet              12 / 36        800 / 2400      VMSS get, list skus, OS upgrade history,
                                                              rolling upgrade get latest
    HighCostGetVMScaleSet      10 / 30        360 / 1080      VMSS instance view, VMSS VMs list (2)
    HighCostGetVMScaleSet      -              360 / 1080      VMSS list, list all, list by location
    UpdateVMScaleSetVM         4 / 12         500 / 1500      VMSS VM start, restart, reimage(all), update
    DeleteVMScaleSetVM         4 / 12         500 / 1500      VMSS VM delete, power off, deallocate
    GetVMScaleSetVM            12 / 36        2000 / 6000     VMSS VM get, instance view
    PutVM, UpdateVM, DeleteVM  4 / 12         500 / 1500      VM create / update and actions / delete
    LowCostGet                 12 / 36        8000 / 24000    VM get, instance view
    HighCostGet                -              300 / 900       VM list, list all, list by location
    GetOperation               15 / 45        5000 / 15000    status of Compute async operations (LRO polls)

(1) not in Microsoft's table; placed with their siblings (restart / power off). (2) the table omits
VMSS VMs list; it is charged like the scale set's instance view, on the scale set.

Batch requests charge more than one token (`x-ms-request-charge`, "Batch requests, such as for scaling a
virtual machine scale set, can charge multiple counts", .../troubleshooting-throttling-errors): an
action with `instanceIds` charges their number (all instances when omitted), a capacity change the
number of instances added or removed. The batch charge is taken from the subscription bucket; the
resource bucket is charged 1 (its capacity of 12 could never pay for a 20-instance upgrade).
A charge larger than a bucket's capacity is capped at the capacity.

Header `x-ms-ratelimit-remaining-resource: Microsoft.Compute/<Policy>Resource;<n>,
Microsoft.Compute/<Policy>SubscriptionMaximum;<n>` (the tokens left, rounded down). A throttled
request gets Compute's 429 OperationNotAllowed "The server rejected the request because too many
requests have been received for this subscription." with a detail naming the policy (code
TooManyRequests, target the policy, message the JSON {operationGroup, startTime, endTime,
allowedRequestCount, measuredRequestCount}), as in .../troubleshooting-throttling-errors.

Refill is continuous (fractional tokens) rather than Microsoft's once-a-minute top-up: the same
average rate, and a Retry-After that does not depend on where in the minute a client is.
"""
import json
import math
from collections import namedtuple

from emulator.arm import ArmError

# --- policies ------------------------------------------------------------------------------------

Policy = namedtuple("Policy", "name resource_refill resource_capacity subscription_refill subscription_capacity")

POLICIES = {p.name: p for p in (
    Policy("PutVMScaleSet", 4, 12, 125, 375),
    Policy("VMScaleSetActions", 4, 12, 500, 1500),
    Policy("DeleteVMScaleSet", 4, 12, 175, 525),
    Policy("GetVMScaleSet", 12, 36, 800, 2400),
    Policy("HighCostGetVMScaleSet", 10, 30, 360, 1080),
    Policy("UpdateVMScaleSetVM", 4, 12, 500, 1500),
    Policy("DeleteVMScaleSetVM", 4, 12, 500, 1500),
    Policy("GetVMScaleSetVM", 12, 36, 2000, 6000),
    Policy("PutVM", 4, 12, 500, 1500),
    Policy("UpdateVM", 4, 12, 500, 1500),
    Policy("DeleteVM", 4, 12, 500, 1500),
    Policy("LowCostGet", 12, 36, 8000, 24000),
    Policy("HighCostGet", None, None, 300, 900),
    Policy("GetOperation", 15, 45, 5000, 15000),
)}

SUB_ONLY = "subscription"
BOTH = "resource+subscription"

# operation id -> (policy, scope). VMSS create-or-update and VM create-or-update depend on whether the
# resource exists (see `classify`).
OPERATIONS = {
    "VirtualMachineScaleSets_Update": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSets_SetOrchestrationServiceState": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSets_ConvertToSinglePlacementGroup": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSets_ForceRecoveryServiceFabricPlatformUpdateDomainWalk": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetRollingUpgrades_Cancel": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetExtensions_CreateOrUpdate": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetExtensions_Update": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSetExtensions_Delete": ("VMScaleSetActions", BOTH),
    "VirtualMachineScaleSets_Start": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_Restart": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_Redeploy": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_PerformMaintenance": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_Reimage": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_ReimageAll": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_UpdateInstances": ("VMScaleSetActions", SUB_ONLY),
    "VirtualMachineScaleSets_Delete": ("DeleteVMScaleSet", BOTH),
    "VirtualMachineScaleSets_Deallocate": ("DeleteVMScaleSet", BOTH),
    "VirtualMachineScaleSets_PowerOff": ("DeleteVMScaleSet", SUB_ONLY),
    "VirtualMachineScaleSets_DeleteInstances": ("DeleteVMScaleSet", SUB_ONLY),
    "VirtualMachineScaleSets_Get": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSets_ListSkus": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSets_GetOSUpgradeHistory": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSetRollingUpgrades_GetLatest": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSetExtensions_Get": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSetExtensions_List": ("GetVMScaleSet", BOTH),
    "VirtualMachineScaleSets_GetInstanceView": ("HighCostGetVMScaleSet", BOTH),
    "VirtualMachineScaleSetVMs_List": ("HighCostGetVMScaleSet", BOTH),
    "VirtualMachineScaleSets_List": ("HighCostGetVMScaleSet", SUB_ONLY),
    "VirtualMachineScaleSets_ListAll": ("HighCostGetVMScaleSet", SUB_ONLY),
    "VirtualMachineScaleSets_ListByLocation": ("HighCostGetVMScaleSet", SUB_ONLY),
    "VirtualMachineScaleSetVMs_Start": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Restart": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Reimage": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_ReimageAll": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Update": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_SimulateEviction": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMExtensions_CreateOrUpdate": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMExtensions_Update": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMRunCommands_CreateOrUpdate": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMRunCommands_Update": ("UpdateVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Delete": ("DeleteVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_PowerOff": ("DeleteVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Deallocate": ("DeleteVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMExtensions_Delete": ("DeleteVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMRunCommands_Delete": ("DeleteVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_Get": ("GetVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_GetInstanceView": ("GetVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMExtensions_Get": ("GetVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMRunCommands_Get": ("GetVMScaleSetVM", BOTH),
    "VirtualMachineScaleSetVMs_RetrieveBootDiagnosticsData": ("GetVMScaleSetVM", BOTH),
    "VirtualMachines_Update": ("UpdateVM", BOTH),
    "VirtualMachines_Start": ("UpdateVM", BOTH),
    "VirtualMachines_Restart": ("UpdateVM", BOTH),
    "VirtualMachines_PowerOff": ("UpdateVM", BOTH),
    "VirtualMachines_Reimage": ("UpdateVM", BOTH),
    "VirtualMachines_Redeploy": ("UpdateVM", BOTH),
    "VirtualMachines_Reapply": ("UpdateVM", BOTH),
    "VirtualMachines_Delete": ("DeleteVM", BOTH),
    "VirtualMachines_Deallocate": ("DeleteVM", BOTH),
    "VirtualMachines_SimulateEviction": ("DeleteVM", BOTH),
    "VirtualMachines_Get": ("LowCostGet", BOTH),
    "VirtualMachines_InstanceView": ("LowCostGet", BOTH),
    "VirtualMachines_List": ("HighCostGet", SUB_ONLY),
    "VirtualMachines_ListAll": ("HighCostGet", SUB_ONLY),
    "VirtualMachines_ListByLocation": ("HighCostGet", SUB_ONLY),
}

# Scale-set actions whose body lists instanceIds (charged per instance).
BATCH_ACTIONS = {"VirtualMachineScaleSets_UpdateInstances", "VirtualMachineScaleSets_Reimage",
                 "VirtualMachineScaleSets_ReimageAll", "VirtualMachineScaleSets_Restart",
                 "VirtualMachineScaleSets_Start", "VirtualMachineScaleSets_PowerOff",
                 "VirtualMachineScaleSets_Deallocate", "VirtualMachineScaleSets_DeleteInstances",
                 "VirtualMachineScaleSets_Redeploy", "VirtualMachineScaleSets_PerformMaintenance"}

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


def retry_headers(seconds):
    """Retry-After in whole seconds (at least 1) and the precise retry-after-ms."""
    return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, math.ceil(seconds * 1000)))}


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

Charge = namedtuple("Charge", "policy resource_id charge scope")


def arm_kind(method):
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method, "writes")


def resource_of(req):
    """The id of the resource a request addresses: the path up to the route's last {name} parameter."""
    template = req.route.template if req.route is not None else ""
    segments = template.strip("/").split("/")
    last = max((i for i, s in enumerate(segments) if s.startswith("{")), default=-1)
    path = req.path.strip("/").split("/")
    return "/" + "/".join(path[:last + 1]) if last >= 0 else None


def classify(ctx, req):
    """The Compute policy a request falls under (a Charge), or None when no Compute policy applies."""
    op_id = req.operation_id or ""
    template = (req.route.template if req.route is not None else "").lower()
    if "/operations/{operationid}" in template or "/operationresults/{operationid}" in template:
        if (req.params.get("namespace") or "").lower() != "microsoft.compute":
            return None
        return Charge("GetOperation", resource_of(req), 1, BOTH)
    rid = resource_of(req)
    if op_id == "VirtualMachineScaleSets_CreateOrUpdate":
        current = ctx.store.get(rid)
        policy = "VMScaleSetActions" if current else "PutVMScaleSet"
        return Charge(policy, rid, _capacity_change(current, req.body), BOTH)
    if op_id == "VirtualMachines_CreateOrUpdate":
        return Charge("UpdateVM" if ctx.store.exists(rid) else "PutVM", rid, 1, BOTH)
    if op_id not in OPERATIONS:
        return None
    policy, scope = OPERATIONS[op_id]
    charge = 1
    if op_id == "VirtualMachineScaleSets_Update":
        charge = _capacity_change(ctx.store.get(rid), req.body)
    elif op_id in BATCH_ACTIONS:
        charge = _instances_named(ctx, rid, req.body)
    return Charge(policy, rid, charge, scope)


def _capacity_change(current, body):
    """Instances a create / update adds or removes (at least 1)."""
    wanted = ((body or {}).get("sku") or {}).get("capacity") if isinstance(body, dict) else None
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        return 1
    now = int(((current or {}).get("sku") or {}).get("capacity") or 0)
    return max(abs(wanted - now), 1)


def _instances_named(ctx, vmss_id, body):
    ids = body.get("instanceIds") if isinstance(body, dict) else None
    if ids is not None:
        return max(len(ids), 1)
    doc = ctx.store.get(vmss_id) if vmss_id else None
    return max(int(((doc or {}).get("sku") or {}).get("capacity") or 0), 1)


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


def compute_buckets(ctx, charge, subscription, now):
    """[(label, bucket, tokens to take)] of a Compute request."""
    policy = POLICIES[charge.policy]
    minute = 60.0 * ctx.clock.time_scale
    out = []
    if charge.scope == BOTH and policy.resource_capacity and charge.resource_id:
        key = ("compute", policy.name, "resource", charge.resource_id.lower())
        out.append((f"{policy.name}Resource",
                    _bucket(ctx, key, policy.resource_capacity, policy.resource_refill / minute, now), 1))
    key = ("compute", policy.name, "subscription", subscription.lower())
    out.append((f"{policy.name}SubscriptionMaximum",
                _bucket(ctx, key, policy.subscription_capacity, policy.subscription_refill / minute, now),
                charge.charge))
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
        compute = compute_buckets(ctx, charge, subscription, now)
        _refuse_compute(ctx, compute, charge, now, headers)
        for _, bucket, tokens in compute:
            bucket.take(now, tokens)
        headers.update(_compute_headers(compute, charge, now))
    req.response_headers = headers


def _refuse_arm(arm, kind, subscription, principal, now):
    wait = max(bucket.wait(now, 1) for _, bucket in arm)
    if wait <= 0:
        return
    headers = retry_headers(wait)
    headers.update({name: str(int(bucket.level(now))) for name, bucket in arm})
    raise ArmError(429, "SubscriptionRequestsThrottled",
                   f"Number of '{kind[:-1]}' requests for subscription '{subscription}' actor '{principal}' "
                   f"exceeded. Please try again after '{headers['Retry-After']}' seconds after additional tokens "
                   "are available. Refer to https://aka.ms/arm-throttling for additional information.",
                   headers=headers)


def _refuse_compute(ctx, compute, charge, now, headers):
    waits = [(bucket.wait(now, tokens), label, bucket) for label, bucket, tokens in compute]
    wait, label, bucket = max(waits, key=lambda w: w[0])
    if wait <= 0:
        return
    out = dict(headers)
    out.update(retry_headers(wait))
    out.update(_compute_headers(compute, charge, now))
    start = ctx.clock.iso(now - 60.0 * ctx.clock.time_scale)
    detail = {"operationGroup": label, "startTime": start, "endTime": ctx.clock.iso(now + wait),
              "allowedRequestCount": int(bucket.capacity), "measuredRequestCount": bucket.taken + 1}
    raise ArmError(429, "OperationNotAllowed", COMPUTE_MESSAGE,
                   details=[{"code": "TooManyRequests", "target": label, "message": json.dumps(detail)}],
                   headers=out)


def _compute_headers(compute, charge, now):
    remaining = ",".join(f"Microsoft.Compute/{label};{int(bucket.level(now))}" for label, bucket, _ in compute)
    return {"x-ms-ratelimit-remaining-resource": remaining, "x-ms-request-charge": str(charge.charge)}


