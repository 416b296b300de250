"""Scale-set instances: one store row each, operations over scaled time, failures, health.

An instance row is an internal record (not an ARM document; `views.py` renders those):

    id, name, instanceId, vmss, mode, location, zone, fd, ud, seq, created, timeCreated, vmId,
    computerName, subnet, ip, priority, model (content hash), generation, exactVersion, provisioningState,
    power, since (when it last booted: the health grace period starts there), protection, error,
    surplus (an overprovisioned extra, dropped when its create ends), etag,
    op: {kind, started, ends, arm, model?, generation?, exactVersion?, error?} while an operation runs.

Model generations. Azure tracks which model *version* an instance runs, not its content: every write that
changes the model (or re-sends osDisk, azure-rest-api-specs#22552) starts a new generation, and an
instance is on the latest model iff it runs the current one, so a revert leaves untouched instances
outdated. `model` (a content hash, the key of the per-set model store) says what an instance runs;
`generation` (1, 2, ...) says which version of the set's model that was. The control-API setting
`latest_model` picks the rule `on_latest` applies: "generation" (default, Azure) or "content" (equal
content counts as latest, the emulator's former belief).

Nothing polls: `effective(record, now)` is what the record says at `now` (an operation whose end has
passed counts as done), and a timer per ARM operation writes the outcome down and answers the LRO.
"""
import random
import uuid

from emulator.app import timer
from emulator.providers.compute import health as h
from emulator.providers.compute import model as m
from emulator.providers.compute import placement

UNIFORM_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
VM_TYPE = "Microsoft.Compute/virtualMachines"

# kind -> (duration name, provisioningState while running, power while running, power after)
KINDS = {
    "create": ("instance_create", "Creating", "starting", "running"),
    "upgrade": ("instance_upgrade", "Updating", "running", "running"),
    "reimage": ("instance_reimage", "Updating", "starting", "running"),
    "restart": ("instance_restart", "Updating", "starting", "running"),
    "start": ("instance_start", "Updating", "starting", "running"),
    "deallocate": ("instance_deallocate", "Updating", "deallocating", "deallocated"),
    "poweroff": ("instance_power_off", "Updating", "stopping", "stopped"),
    "delete": ("instance_delete", "Deleting", None, None),
}
BOOTS = {"create", "upgrade", "reimage", "restart", "start"}     # the guest (re)starts: health grace again
PROVISIONS = {"create", "upgrade", "reimage"}                     # extensions run: instance_failures apply
LATEST_MODES = ("generation", "content")
MODEL_LIMIT = 10         # "...has reached its limit of 10 models that may be referenced by one or more VMs..."
PREEMPTED = {"code": "OperationPreempted", "message": "Operation execution has been preempted by a more recent "
                                                      "operation."}

# Called as hook(ctx, vmss_id, op_id) after a PUT / PATCH of a scale set in Rolling mode, model changed or
# not (Azure then checks every instance against the latest model); op_id is that write's ARM operation,
# which the hook may `hold` open (the rolling-upgrade engine, rolling.py, registers itself here).
MODEL_CHANGE_HOOKS = []


# --- keys and per-set state ---------------------------------------------------------------------

def _key(kind, rid):
    return f"compute:{kind}:{rid.lower()}"


def load_state(ctx, vmss_id):
    return ctx.store.kv_get(_key("vmss", vmss_id)) or {}


def save_state(ctx, vmss_id, state):
    ctx.store.kv_set(_key("vmss", vmss_id), state)


def forget_scale_set(ctx, vmss_id):
    for kind in ("vmss", "models", "rolling", "repairs"):
        ctx.store.kv_delete(_key(kind, vmss_id))
    for key in ctx.store.kv_keys(_op_key("")):          # operations held open for the set (see hold)
        record = ctx.store.kv_get(key) or {}
        if record.get("held") and (record.get("vmss") or "").lower() == vmss_id.lower():
            ctx.store.kv_delete(key)
            ctx.ops.finish(key[len(_op_key("")):], "Canceled", error=PREEMPTED)


def models(ctx, vmss_id):
    return ctx.store.kv_get(_key("models", vmss_id)) or {}


def save_model(ctx, vmss_id, model):
    """Remember a model (instances refer to it by hash); returns the hash."""
    digest = m.model_hash(model)
    known = models(ctx, vmss_id)
    if digest not in known:
        known[digest] = model
        ctx.store.kv_set(_key("models", vmss_id), known)
    return digest


def get_model(ctx, vmss_id, digest):
    return models(ctx, vmss_id).get(digest)


def scale_set_doc(ctx, vmss_id):
    return ctx.store.get(vmss_id)


# --- reading instances --------------------------------------------------------------------------

def rows(ctx, vmss_doc):
    """Raw instance records of a scale set, in creation order."""
    vmss_id = vmss_doc["id"]
    if m.mode_of(vmss_doc) == "Flexible":
        rg_prefix = vmss_id.split("/providers/")[0] + "/providers/Microsoft.Compute/virtualMachines"
        return [r for r in ctx.store.list(VM_TYPE, rg_prefix) if (r.get("vmss") or "").lower() == vmss_id.lower()]
    return ctx.store.list(UNIFORM_VM_TYPE, vmss_id + "/virtualMachines")


def effective(rec, now):
    """What a record says at `now`: a finished operation applied, or None once the instance is gone."""
    op = rec.get("op")
    if not op:
        return rec
    _, running_state, running_power, final_power = KINDS[op["kind"]]
    view = dict(rec)
    if now < op["ends"]:
        view["provisioningState"] = running_state
        if running_power:
            view["power"] = running_power
        return view
    if op["kind"] == "delete" or rec.get("surplus"):
        return None
    view["op"] = None
    view["provisioningState"] = "Failed" if op.get("error") else "Succeeded"
    view["error"] = op.get("error")
    view["power"] = final_power
    if op.get("model"):
        view["model"] = op["model"]
        view["generation"] = op.get("generation", 0)
    if "exactVersion" in op:
        view["exactVersion"] = op["exactVersion"]
    if op["kind"] in BOOTS:
        view["since"] = op["ends"]
    return view


def busy(view, now):
    op = view.get("op")
    return bool(op) and now < op["ends"]


def list_instances(ctx, vmss_id, now=None):
    """The live instances of a scale set as they are at `now` (records with any operation applied)."""
    doc = scale_set_doc(ctx, vmss_id)
    if doc is None:
        return []
    now = ctx.clock.now() if now is None else now
    return [v for v in (effective(r, now) for r in rows(ctx, doc)) if v is not None]


def get_instance(ctx, vmss_id, instance_id, now=None):
    doc = scale_set_doc(ctx, vmss_id)
    rec = ctx.store.get(record_id(doc, instance_id)) if doc else None
    if rec is None or (rec.get("vmss") or "").lower() != vmss_id.lower():
        return None
    return effective(rec, ctx.clock.now() if now is None else now)


# --- model generations ---------------------------------------------------------------------------

def latest_mode(ctx):
    return ctx.config.get("latest_model") or "generation"


def on_latest(ctx, state, model_hash, generation):
    """Whether an instance running (`model_hash`, `generation`) is on the set's latest model."""
    if latest_mode(ctx) == "content":
        return model_hash == state.get("model")
    return (generation or 0) == state.get("generation", 0)


def latest_model_applied(ctx, vmss_id, view, state=None):
    state = load_state(ctx, vmss_id) if state is None else state
    return on_latest(ctx, state, view.get("model"), view.get("generation"))


def generation_of(state, model_hash):
    """The generation an instance moved to `model_hash` runs: the current one for the current model, else
    the newest remembered generation with that content (0, never latest, when none is remembered)."""
    if model_hash is None or model_hash == state.get("model"):
        return state.get("generation", 0)
    known = [int(g) for g, digest in (state.get("generations") or {}).items() if digest == model_hash]
    return max(known, default=0)


def referenced_generations(views, excluded=()):
    """Generations live instances refer to: what they run, and what a running upgrade moves them to."""
    out = set()
    for view in views:
        if view["instanceId"] not in excluded:
            out.add(view.get("generation", 0))
            if (view.get("op") or {}).get("generation") is not None:
                out.add(view["op"]["generation"])
    return out


def start_generation(state, model_hash, keep):
    """Make `model_hash` the current model as a new generation; remember the content of the generations
    in `keep` (those instances still refer to) and of the new one."""
    new = state.get("generation", 0) + 1
    known = {g: d for g, d in (state.get("generations") or {}).items() if int(g) in keep}
    known[str(new)] = model_hash
    state.update(model=model_hash, generation=new, generations=known)
    return new


def versions_of(model, exact_version):
    """Strings an `image_version` rule matcher may equal for an instance running `model`."""
    ref = m.image_reference((model or {}).get("profile"))
    gallery = m.gallery_image(ref)
    return [ref.get("version"), exact_version, ref.get("id"), gallery[1] if gallery else None]


def health_of(ctx, view, now, vmss_doc=None, model=None, rules=None):
    """Application Health state of an instance view (see health.py), or None when there is no signal."""
    if view is None or busy(view, now) or view.get("power") != "running":
        return None
    vmss_doc = vmss_doc or scale_set_doc(ctx, view["vmss"])
    model = model if model is not None else get_model(ctx, view["vmss"], view.get("model"))
    ext = m.health_extension((model or {}).get("profile"))
    return h.evaluate(extension=ext, running_since=view.get("since"), now=now,
                      rules=ctx.store.kv_get("health_rules", []) if rules is None else rules,
                      vmss_name=vmss_doc["name"], vmss_id=vmss_doc["id"], instance_id=view["instanceId"],
                      versions=versions_of(model, view.get("exactVersion")), scaled=ctx.clock.scaled, model=model)


# --- writing ------------------------------------------------------------------------------------

def _put(ctx, rec):
    ctx.store.put(rec["id"], rec, VM_TYPE if rec["mode"] == "Flexible" else UNIFORM_VM_TYPE)


def _bump(rec):
    rec["etag"] = int(rec.get("etag", 0)) + 1


def settle(ctx, vmss_id, now=None):
    """Write down every finished operation of a scale set's instances (drop deleted ones)."""
    doc = scale_set_doc(ctx, vmss_id)
    if doc is None:
        return
    now = ctx.clock.now() if now is None else now
    for rec in rows(ctx, doc):
        op = rec.get("op")
        if not op or now < op["ends"]:
            continue
        view = effective(rec, now)
        if view is None:
            ctx.store.delete(rec["id"])
        else:
            _bump(view)
            _put(ctx, view)


def set_protection(ctx, vmss_id, instance_id, protection):
    rec = _raw(ctx, vmss_id, instance_id)
    rec["protection"] = {k: bool(v) for k, v in (protection or {}).items()
                         if k in ("protectFromScaleIn", "protectFromScaleSetActions")} or None
    _bump(rec)
    _put(ctx, rec)
    return rec


def set_model_applied(ctx, vmss_id, instance_ids, model_hash=None):
    """Mark instances as running a model (the current one by default) at once, without an operation."""
    state = load_state(ctx, vmss_id)
    digest = model_hash or state["model"]
    model = get_model(ctx, vmss_id, digest)
    for iid in instance_ids:
        rec = _raw(ctx, vmss_id, iid)
        rec["model"] = digest
        rec["generation"] = generation_of(state, digest)
        rec["exactVersion"] = resolve_version(ctx, scale_set_doc(ctx, vmss_id), model)
        _bump(rec)
        _put(ctx, rec)


def record_id(vmss_doc, instance_id):
    """Where an instance's row lives: under the set (Uniform) or as a VM of the group (Flexible)."""
    if m.mode_of(vmss_doc) == "Flexible":
        return vmss_doc["id"].split("/providers/")[0] + f"/providers/Microsoft.Compute/virtualMachines/{instance_id}"
    return f"{vmss_doc['id']}/virtualMachines/{instance_id}"


def _raw(ctx, vmss_id, instance_id):
    rec = ctx.store.get(record_id(scale_set_doc(ctx, vmss_id), instance_id))
    if rec is None or (rec.get("vmss") or "").lower() != vmss_id.lower():
        raise KeyError(instance_id)
    return rec


# --- failures (control API) ---------------------------------------------------------------------

def failure_for(rules, vmss_doc, instance_id, kind, versions, model=None):
    """The error a matching `instance_failures` rule injects into this instance's operation, or None."""
    found = None
    for rule in rules or []:
        match = dict(rule.get("match") or {})
        kinds = match.pop("kinds", None) or match.pop("operations", None)
        if kinds and kind not in kinds:
            continue
        if h.rule_matches(match, vmss_doc["name"], vmss_doc["id"], instance_id, versions, model):
            found = rule
    if found is None:
        return None
    code = found.get("code") or "VMExtensionProvisioningError"
    message = found.get("message") or (f"VM has reported a failure when processing extension "
                                       f"'{found.get('extension', 'extension')}'. Error message: \"Enable failed\".")
    return {"code": code, "message": message}


# --- image versions -----------------------------------------------------------------------------

def gallery_api(ctx, image_ref):
    """The gallery provider, when it holds the gallery `image_ref` points into; else None (a gallery we do
    not model: the reference is taken as given)."""
    gallery = m.gallery_image(image_ref)
    if gallery is None or ctx.store.get(gallery[0].rsplit("/images/", 1)[0]) is None:
        return None
    try:
        from emulator.providers import gallery as api
    except ImportError:
        return None
    return api


def resolve_version(ctx, vmss_doc, model):
    """The exact version an instance gets. A gallery image without version (or 'latest') floats to what
    the gallery calls latest in the scale set's region (newest replicated there, not excluded)."""
    from emulator.arm import ArmError
    ref = m.image_reference((model or {}).get("profile"))
    gallery = m.gallery_image(ref)
    if gallery is None:
        version = ref.get("version")
        return version if version and version != "latest" else None
    api = gallery_api(ctx, ref)
    if api is None:
        return gallery[1] if gallery[1] and gallery[1].lower() != "latest" else None
    try:
        return api.resolve_gallery_image(ctx, ref["id"], vmss_doc["location"])[1]
    except ArmError:
        return None


# --- operations ---------------------------------------------------------------------------------

def start_operation(ctx, vmss_id, instance_ids, kind, *, arm_op=None, model_hash=None, exact_version=None,
                    generation=None, now=None):
    """Start `kind` (create is separate) on instances; returns {instanceId: epoch when it ends}.

    No conflict checks here (handlers do them); a running operation on an instance is replaced.
    `model_hash` (upgrade only) picks the model to move to — the current one by default, an older one to
    roll back (with the `generation` the instance ran, else `generation_of` that model); `exact_version`
    (upgrade / reimage) pins the image version instead of resolving it (an OS rollback). `arm_op` ties the
    instances to an ARM operation that `track()` answers when they are done.
    """
    now = ctx.clock.now() if now is None else now
    doc = scale_set_doc(ctx, vmss_id)
    state = load_state(ctx, vmss_id)
    ends = now + ctx.duration(KINDS[kind][0])
    wanted = {str(i).lower() for i in instance_ids}
    rules = ctx.store.kv_get("instance_failures", [])
    known = models(ctx, vmss_id)
    out = {}
    for rec in rows(ctx, doc):
        if str(rec["instanceId"]).lower() not in wanted:
            continue
        view = effective(rec, now)
        if view is None:
            continue
        op = {"kind": kind, "started": now, "ends": ends, "arm": arm_op}
        target = view.get("model")
        if kind == "upgrade":
            target = op["model"] = model_hash or state["model"]
            op["generation"] = generation if generation is not None else generation_of(state, target)
        if kind in ("upgrade", "reimage"):
            op["exactVersion"] = exact_version or resolve_version(ctx, doc, known.get(target))
        if kind in PROVISIONS:
            error = failure_for(rules, doc, view["instanceId"], kind,
                                versions_of(known.get(target), op.get("exactVersion", view.get("exactVersion"))),
                                known.get(target))
            if error:
                op["error"] = error
                _note_failure(ctx, arm_op, view["instanceId"], error)
        view = dict(view, op=op)
        _bump(view)
        _put(ctx, view)
        out[view["instanceId"]] = ends
    return out


def create_instances(ctx, vmss_doc, count, *, arm_op=None, now=None, overprovision=False):
    """Create `count` instances of the current model (plus surplus ones when overprovisioning, dropped
    when the create ends); returns {instanceId: ends} of the ones that stay."""
    now = ctx.clock.now() if now is None else now
    vmss_id = vmss_doc["id"]
    state = load_state(ctx, vmss_id)
    model = get_model(ctx, vmss_id, state["model"])
    extra = placement.overprovision_extra(count) if overprovision else 0
    total = count + extra
    if total <= 0:
        return {}
    flexible = m.mode_of(vmss_doc) == "Flexible"
    live = list_instances(ctx, vmss_id, now)
    p = m.props(vmss_doc)
    spots = _priorities(vmss_doc, model, live, total)
    domains = placement.assign_domains(live, total, vmss_doc.get("zones") or [],
                                       p.get("platformFaultDomainCount", 1), 1 if flexible else m.UPDATE_DOMAINS)
    subnet, ips = _addresses(ctx, model, total)
    rng = random.Random(f"{state.get('seed')}:{state.get('next_id', 0)}")
    ends = now + ctx.duration("instance_create")
    exact = resolve_version(ctx, vmss_doc, model)
    rules = ctx.store.kv_get("instance_failures", [])
    prefix = ((model["profile"].get("osProfile") or {}).get("computerNamePrefix") or vmss_doc["name"])[:58]
    created = []
    for n in range(total):
        seq = state.get("next_id", 0)
        state["next_id"] = seq + 1
        if flexible:
            name = placement.flexible_vm_name(vmss_doc["name"], rng)
            instance_id, computer = name, placement.flexible_computer_name(prefix, rng)
        else:
            name, instance_id = f"{vmss_doc['name']}_{seq}", str(seq)
            computer = placement.uniform_computer_name(prefix, seq)
        rid = record_id(vmss_doc, instance_id)
        zone, fd, ud = domains[n]
        rec = {"id": rid, "name": name, "instanceId": instance_id, "vmss": vmss_id,
               "mode": "Flexible" if flexible else "Uniform", "location": vmss_doc["location"],
               "zone": zone, "fd": fd, "ud": ud, "seq": seq, "created": now, "timeCreated": ctx.clock.iso(now),
               "vmId": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "computerName": computer,
               "subnet": subnet, "ip": ips[n] if ips else None, "priority": spots[n],
               "model": state["model"], "generation": state.get("generation", 0), "exactVersion": exact,
               "provisioningState": "Creating", "power": "starting", "since": None, "protection": None,
               "error": None, "etag": 0,
               "op": {"kind": "create", "started": now, "ends": ends, "arm": arm_op}}
        created.append(rec)
    surplus = placement.pick_overprovisioned(live, created, extra, f"{state.get('seed')}:{state['next_id']}")
    out = {}
    for rec in created:
        rec["surplus"] = rec["instanceId"] in surplus
        if not rec["surplus"]:
            error = failure_for(rules, vmss_doc, rec["instanceId"], "create", versions_of(model, exact), model)
            if error:
                rec["op"]["error"] = error
                _note_failure(ctx, arm_op, rec["instanceId"], error)
            out[rec["instanceId"]] = ends
        _bump(rec)
        _put(ctx, rec)
    save_state(ctx, vmss_id, state)
    return out


def _priorities(vmss_doc, model, live, count):
    """Priority of each new VM: the profile's, or per priorityMixPolicy (Flexible) Regular first."""
    mix = m.props(vmss_doc).get("priorityMixPolicy")
    default = (model["profile"].get("priority") or "Regular")
    if not mix:
        return [default] * count
    regular = sum(1 for v in live if v.get("priority") != "Spot")
    total = len(live)
    out = []
    for _ in range(count):
        total += 1
        need = m.regular_needed(total, mix.get("baseRegularPriorityCount"),
                                mix.get("regularPriorityPercentageAboveBase"))
        if regular < need:
            regular += 1
            out.append("Regular")
        else:
            out.append("Spot")
    return out


def primary_subnet(vm_profile):
    nics = ((vm_profile or {}).get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    nic = next((n for n in nics if (n.get("properties") or {}).get("primary")), nics[0] if nics else None)
    if not nic:
        return None
    ipcs = (nic.get("properties") or {}).get("ipConfigurations") or []
    ipc = next((i for i in ipcs if (i.get("properties") or {}).get("primary")), ipcs[0] if ipcs else None)
    return (((ipc or {}).get("properties") or {}).get("subnet") or {}).get("id")


class SubnetFull(Exception):
    pass


def check_addresses(ctx, model, count):
    """400 SubnetIsFull before any write when the subnet cannot take `count` more addresses."""
    from emulator.arm import ArmError
    try:
        _addresses(ctx, model, count)
    except SubnetFull as full:
        raise ArmError(400, "SubnetIsFull", str(full)) from None


def _addresses(ctx, model, count):
    """(subnet id, [private IPs]) from the subnet's prefix (10.0.0.0/24 when the subnet is unknown)."""
    subnet = primary_subnet(model["profile"])
    if subnet is None:
        return None, None
    doc = ctx.store.get(subnet)
    prefix = ((doc or {}).get("properties") or {}).get("addressPrefix") or placement.DEFAULT_PREFIX
    used = {r.get("ip") for r in ctx.store.list(UNIFORM_VM_TYPE) + ctx.store.list(VM_TYPE)
            if (r.get("subnet") or "").lower() == subnet.lower()}
    ips = placement.allocate_ips(prefix, used, count)
    if ips is None:
        raise SubnetFull(f"Subnet {subnet.rsplit('/', 1)[-1]} with address prefix {prefix} does not have enough "
                         f"capacity for {count} IP addresses.")
    return subnet.lower(), ips


# --- ARM operations answered when their instances are done ---------------------------------------

def _op_key(op_id):
    return f"compute:op:{op_id}"


def _note_failure(ctx, arm_op, instance_id, error):
    if not arm_op:
        return
    record = ctx.store.kv_get(_op_key(arm_op))
    if record is not None:
        record.setdefault("failures", []).append(dict(error, target=str(instance_id)))
        ctx.store.kv_set(_op_key(arm_op), record)


def begin(ctx, vmss_doc, kind, resource_id=None):
    """Start an ARM operation for a scale set (answered later by `track`); returns the op dict."""
    op = ctx.ops.start(vmss_doc["location"].replace(" ", "").lower(), resource_id or vmss_doc["id"], kind)
    ctx.store.kv_set(_op_key(op["id"]), {"vmss": vmss_doc["id"], "kind": kind, "failures": []})
    return op


def track(ctx, op, ends, then=None, **extra):
    """Answer `op` at `ends`: Failed with the first instance failure, else Succeeded; then run the
    follow-up named `then` (see FOLLOW_UPS)."""
    record = ctx.store.kv_get(_op_key(op["id"])) or {}
    record.update(ends=ends, then=then, **extra)
    ctx.store.kv_set(_op_key(op["id"]), record)
    ctx.schedule(max(ends - ctx.clock.now(), 0.0), "compute.op_done", {"op": op["id"]})


def op_record(ctx, op_id):
    return ctx.store.kv_get(_op_key(op_id))


def hold(ctx, op_id):
    """Keep a tracked operation open past its end: whoever holds it answers it with `release` (the
    rolling-upgrade engine holds the PUT that started an upgrade until the upgrade ends)."""
    record = ctx.store.kv_get(_op_key(op_id))
    if record is not None:
        record["held"] = True
        ctx.store.kv_set(_op_key(op_id), record)


def release(ctx, op_id, status=None, error=None):
    """Answer a held operation: `status` (Succeeded / Failed / Canceled) with `error`, or, without a
    status, as its instances went; now when its tracked end has passed, else at that end."""
    record = ctx.store.kv_get(_op_key(op_id))
    if record is None:
        return
    record.update(held=False, outcome={"status": status, "error": error})
    ctx.store.kv_set(_op_key(op_id), record)
    if record.get("due"):
        _op_done(ctx, {"op": op_id})


@timer("compute.op_done")
def _op_done(ctx, payload):
    op_id = payload["op"]
    record = ctx.store.kv_get(_op_key(op_id))
    if record is None:
        return
    if record.get("held"):
        record["due"] = True
        ctx.store.kv_set(_op_key(op_id), record)
        return
    ctx.store.kv_delete(_op_key(op_id))
    vmss_id = record["vmss"]
    doc = scale_set_doc(ctx, vmss_id)
    settle(ctx, vmss_id)
    if (doc is None or m.props(doc).get("provisioningState") == "Deleting") and record.get("then") != "deleted":
        ctx.ops.finish(op_id, "Canceled", error=PREEMPTED)
        return
    failures = record.get("failures") or []
    error = None
    if failures:
        first = failures[0]
        error = {"code": first["code"], "message": first["message"],
                 "details": [dict(f) for f in failures] if len(failures) > 1 else None}
        error = {k: v for k, v in error.items() if v is not None}
    outcome = record.get("outcome") or {}
    if outcome.get("status"):                  # a released hold decides (see release)
        error = outcome.get("error")
    status = outcome.get("status") or ("Failed" if error else "Succeeded")
    follow_up = FOLLOW_UPS.get(record.get("then"))
    if follow_up:
        follow_up(ctx, vmss_id, op_id, error if status == "Failed" else None)
    ctx.ops.finish(op_id, status, error=error)


def _scale_set_settled(ctx, vmss_id, op_id, error):
    doc = scale_set_doc(ctx, vmss_id)
    state = load_state(ctx, vmss_id)
    if (state.get("op") or {}).get("id") == op_id:
        state["op"] = None
        save_state(ctx, vmss_id, state)
    if doc is not None and m.props(doc).get("provisioningState") in ("Creating", "Updating"):
        doc["properties"]["provisioningState"] = "Failed" if error else "Succeeded"
        ctx.store.put(vmss_id, doc, m.VMSS_TYPE)


def _scale_set_deleted(ctx, vmss_id, op_id, error):
    doc = scale_set_doc(ctx, vmss_id)
    if doc is not None:
        for rec in rows(ctx, doc):
            ctx.store.delete(rec["id"])
        ctx.store.delete(vmss_id)
    forget_scale_set(ctx, vmss_id)


FOLLOW_UPS = {"settled": _scale_set_settled, "deleted": _scale_set_deleted}
