"""Scale-set operations: create/update (PUT, PATCH), delete, and the actions on instances.

Every write is validated completely before anything is stored. A write that would touch a scale set or
instances with an operation still running is refused with 409 Conflict, as Compute does.
"""
import uuid

from emulator.arm import ArmError, Response, check_etag
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute import placement

CONFLICT = ("The request failed due to conflict with a concurrent request. To resolve it, please refer to "
            "https://aka.ms/activitylog to get more details on the conflicting requests.")

# Scale-set action path segment -> instance operation kind.
ACTIONS = {"manualupgrade": "upgrade", "reimage": "reimage", "reimageall": "reimage", "restart": "restart",
           "deallocate": "deallocate", "start": "start", "poweroff": "poweroff", "delete": "delete"}


def scale_set_id(sub, rg, name):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def not_found(rg, name):
    return ArmError(404, "ResourceNotFound",
                    f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group '{rg}' "
                    "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def check_subscription(ctx, sub):
    if sub.lower() != ctx.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def require(ctx, sub, rg, name):
    check_subscription(ctx, sub)
    doc = ctx.store.get(scale_set_id(sub, rg, name))
    if doc is None:
        ctx.require_resource_group(sub, rg)
        raise not_found(rg, name)
    return doc


def members(views):
    """Instances that count toward capacity: not being deleted, not an overprovisioned extra."""
    return [v for v in views if not v.get("surplus") and (v.get("op") or {}).get("kind") != "delete"]


def protected_from_actions(view):
    return bool((view.get("protection") or {}).get("protectFromScaleSetActions"))


def conflict():
    return ArmError(409, "Conflict", CONFLICT)


def refuse_if_busy(ctx, doc, views=(), now=None):
    """409 when the scale set (or one of `views`) has an operation in flight; 409 while it is deleted."""
    now = ctx.clock.now() if now is None else now
    if m.props(doc).get("provisioningState") == "Deleting":
        raise ArmError(409, "OperationNotAllowed",
                       f"The operation is not allowed because Virtual Machine Scale Set '{doc['name']}' is being "
                       "deleted.")
    op = inst.load_state(ctx, doc["id"]).get("op")
    if op and now < op["ends"]:
        raise conflict()
    if any(inst.busy(v, now) for v in views):
        raise conflict()


# --- references (network, and gallery images through resolve_version) ---------------------------

def _references(vm_profile):
    net = (vm_profile or {}).get("networkProfile") or {}
    if (net.get("healthProbe") or {}).get("id"):
        yield net["healthProbe"]["id"]
    for nic in net.get("networkInterfaceConfigurations") or []:
        for ipc in (nic.get("properties") or {}).get("ipConfigurations") or []:
            p = ipc.get("properties") or {}
            if (p.get("subnet") or {}).get("id"):
                yield p["subnet"]["id"]
            for pool in p.get("loadBalancerBackendAddressPools") or []:
                if pool.get("id"):
                    yield pool["id"]


def check_references(ctx, doc):
    """What the model points at must exist: 400 InvalidResourceReference for a missing subnet / backend
    pool / probe (inbound NAT pools and application gateways are not modelled, so not checked), and the
    gallery's own error for an image not available in the region (only for galleries the emulator holds).
    """
    ref = m.image_reference(m.profile(doc))
    api = inst.gallery_api(ctx, ref)
    if api is not None:
        api.resolve_gallery_image(ctx, ref["id"], doc["location"])
    try:
        from emulator.providers import network
    except ImportError:
        return
    for ref_id in _references(m.profile(doc)):
        network.require_reference(ctx, ref_id, doc["id"])


# --- create / update ----------------------------------------------------------------------------

def _identity(current, identity, tenant_id):
    if not identity:
        return identity
    out = dict(identity)
    old = (current or {}).get("identity") or {}
    if "SystemAssigned" in (out.get("type") or ""):
        out["principalId"] = old.get("principalId") or str(uuid.uuid4())
        out["tenantId"] = tenant_id
    users = out.get("userAssignedIdentities")
    if isinstance(users, dict):
        old_users = {k.lower(): v for k, v in (old.get("userAssignedIdentities") or {}).items()}
        out["userAssignedIdentities"] = {
            k: old_users.get(k.lower()) or {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
            for k in users}
    return out


def _compose(ctx, rid, name, current, desired, clean_profile, model_changed, now):
    """The stored document: the desired one plus what Azure adds (ids, uniqueId, times, state, etag)."""
    doc = {"name": current["name"] if current else name, "id": current["id"] if current else rid,
           "type": m.VMSS_TYPE}
    doc.update({k: v for k, v in desired.items() if k != "properties"})
    if not doc.get("zones"):
        doc.pop("zones", None)
    if doc.get("identity"):
        doc["identity"] = _identity(current, doc["identity"], ctx.tenant_id)
    props = dict(desired["properties"])
    cur_props = m.props(current) if current else {}
    if clean_profile is not None:
        clean_profile = dict(clean_profile)
        old_time = (cur_props.get("virtualMachineProfile") or {}).get("timeCreated")
        clean_profile["timeCreated"] = old_time if (old_time and not model_changed) else ctx.clock.iso(now)
        props["virtualMachineProfile"] = clean_profile
    props["provisioningState"] = "Updating" if current else "Creating"
    props["uniqueId"] = cur_props.get("uniqueId") or str(uuid.uuid4())
    props["timeCreated"] = cur_props.get("timeCreated") or ctx.clock.iso(now)
    doc["properties"] = props
    doc["etag"] = m.next_etag(current or {})
    return doc


def _sends_os_disk(body):
    vm = (((body or {}).get("properties") or {}).get("virtualMachineProfile") or {})
    return (vm.get("storageProfile") or {}).get("osDisk") is not None


def refuse_model_limit(ctx, name, desired, referenced):
    """409 when a new model generation would make more than MODEL_LIMIT generations referenced (by
    instances, plus the new one). Uniform only (the limit's report names Uniform sets), generation mode
    only: with content-compared models there are no generations to count."""
    if inst.latest_mode(ctx) != "generation" or m.mode_of(desired) == "Flexible":
        return
    if len(referenced) + 1 > inst.MODEL_LIMIT:
        raise ArmError(409, "OperationNotAllowed",
                       f"Virtual Machine Scale Set '{name}' has reached its limit of {inst.MODEL_LIMIT} models that "
                       "may be referenced by one or more VMs belonging to the Virtual Machine Scale Set. Upgrade "
                       "the VMs to the latest model of the Virtual Machine Scale Set before trying again.")


def create_or_update(ctx, req, patch=False):
    p = req.params
    check_subscription(ctx, p["subscriptionId"])
    ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
    rid = scale_set_id(p["subscriptionId"], p["resourceGroupName"], p["vmScaleSetName"])
    current = ctx.store.get(rid)
    if patch and current is None:
        raise not_found(p["resourceGroupName"], p["vmScaleSetName"])
    check_etag(req, current)
    now = ctx.clock.now()

    desired = m.desired_from_patch(current, req.body) if patch else m.desired_from_put(current, req.body)
    m.apply_defaults(desired)
    m.validate(desired, current)
    desired["id"] = rid
    check_references(ctx, desired)

    state = inst.load_state(ctx, rid) if current else {"next_id": 0, "seed": uuid.uuid4().hex, "secrets": {}}
    clean_profile, new_digests = m.strip_secrets(m.profile(desired))
    digests = m.merge_secret_digests(state.get("secrets"), new_digests, clean_profile)
    desired["properties"]["virtualMachineProfile"] = clean_profile
    model = m.model_of(desired, digests)
    new_hash = m.model_hash(model)
    content_changed = new_hash != state.get("model")
    # Azure versions the model: any change, and osDisk sent even unchanged (#22552), starts a generation
    new_generation = current is None or content_changed or _sends_os_disk(req.body)
    model_changed = new_generation if inst.latest_mode(ctx) == "generation" else content_changed

    views = members(inst.list_instances(ctx, rid, now)) if current else []
    target = m.capacity_of(desired)
    removals = placement.select_scale_in(views, len(views) - target,
                                         (m.props(desired).get("scaleInPolicy") or {}).get("rules"))
    mode = (m.props(desired).get("upgradePolicy") or {}).get("mode")
    removed = {v["instanceId"] for v in removals}
    upgrades = [v for v in views if current and model_changed and mode == "Automatic"
                and v["instanceId"] not in removed and not protected_from_actions(v)]
    if current:
        refuse_if_busy(ctx, current, removals + upgrades, now)
    kept = inst.referenced_generations(views, excluded=removed | {v["instanceId"] for v in upgrades})
    if current and new_generation:
        refuse_model_limit(ctx, current["name"], desired, kept)
    adds = max(target - len(views), 0)
    if adds:
        inst.check_addresses(ctx, model, adds + (placement.overprovision_extra(adds)
                                                  if m.props(desired).get("overprovision") else 0))

    # --- nothing above wrote anything; from here on we do
    doc = _compose(ctx, rid, p["vmScaleSetName"], current, desired, clean_profile, model_changed, now)
    state["secrets"] = digests
    if new_generation:
        inst.start_generation(state, new_hash, kept)
    inst.save_state(ctx, rid, state)
    inst.save_model(ctx, rid, model)
    ctx.store.put(rid, doc, m.VMSS_TYPE)
    op = inst.begin(ctx, doc, "update" if current else "create")
    ends = [now + ctx.duration("scale_set_update")]
    if adds:
        ends += inst.create_instances(ctx, doc, adds, arm_op=op["id"], now=now,
                                      overprovision=bool(m.props(doc).get("overprovision"))).values()
    if removals:
        ends += inst.start_operation(ctx, rid, [v["instanceId"] for v in removals], "delete",
                                     arm_op=op["id"], now=now).values()
    if upgrades:
        ends += inst.start_operation(ctx, rid, [v["instanceId"] for v in upgrades], "upgrade",
                                     arm_op=op["id"], now=now).values()
    state = inst.load_state(ctx, rid)
    state["op"] = {"id": op["id"], "ends": max(ends)}
    inst.save_state(ctx, rid, state)
    inst.track(ctx, op, max(ends), then="settled")
    if current and mode == "Rolling":          # even unchanged: Azure then rolls instances not yet on the model
        for hook in inst.MODEL_CHANGE_HOOKS:
            hook(ctx, rid, op["id"])
    return Response(200 if current else 201, m.render(doc), ctx.ops.lro_headers(op, location_header=False))


# --- delete -------------------------------------------------------------------------------------

def delete(ctx, req):
    p = req.params
    check_subscription(ctx, p["subscriptionId"])
    rid = scale_set_id(p["subscriptionId"], p["resourceGroupName"], p["vmScaleSetName"])
    doc = ctx.store.get(rid)
    if doc is None:
        return Response(204)
    state = inst.load_state(ctx, rid)
    if m.props(doc).get("provisioningState") == "Deleting" and state.get("delete_op"):
        op = ctx.ops.get(state["delete_op"])
        return Response(202, None, ctx.ops.lro_headers(op))
    now = ctx.clock.now()
    running = state.get("op")
    if running and now < running["ends"]:      # a delete preempts the create/update in flight
        ctx.ops.finish(running["id"], "Canceled", error=inst.PREEMPTED)
    doc["properties"]["provisioningState"] = "Deleting"
    ctx.store.put(rid, doc, m.VMSS_TYPE)
    op = inst.begin(ctx, doc, "delete")
    ids = [v["instanceId"] for v in inst.list_instances(ctx, rid, now)]
    ends = [now + ctx.duration("scale_set_delete")]
    ends += inst.start_operation(ctx, rid, ids, "delete", arm_op=op["id"], now=now).values()
    state.update(op={"id": op["id"], "ends": max(ends)}, delete_op=op["id"])
    inst.save_state(ctx, rid, state)
    inst.track(ctx, op, max(ends), then="deleted")
    return Response(202, None, ctx.ops.lro_headers(op))


# --- actions on instances -----------------------------------------------------------------------

def _unknown_instance(instance_id):
    return ArmError(400, "InvalidParameter", f"The provided instanceId {instance_id} is not an active Virtual "
                                             "Machine Scale Set VM instanceId.", target="instanceIds")


def targets(ctx, doc, instance_ids, scale_set_action, now):
    """The instances an action applies to. A scale-set action without ids means every instance not
    protected from scale-set actions; naming a protected one is refused."""
    views = members(inst.list_instances(ctx, doc["id"], now))
    if instance_ids is None:
        return [v for v in views if not (scale_set_action and protected_from_actions(v))]
    by_id = {str(v["instanceId"]).lower(): v for v in views}
    chosen = []
    for iid in dict.fromkeys(str(i) for i in instance_ids):
        view = by_id.get(iid.lower())
        if view is None:
            raise _unknown_instance(iid)
        if scale_set_action and protected_from_actions(view):
            raise ArmError(409, "OperationNotAllowed",
                           f"The operation cannot be performed on instance {iid} because it is protected from "
                           "scale set actions (protectionPolicy.protectFromScaleSetActions).")
        chosen.append(view)
    return chosen


def run_action(ctx, doc, kind, instance_ids, scale_set_action=True, kind_name=None):
    """Start `kind` on instances under one ARM operation; 202 with the LRO headers."""
    now = ctx.clock.now()
    chosen = targets(ctx, doc, instance_ids, scale_set_action, now)
    refuse_if_busy(ctx, doc, chosen, now)
    op = inst.begin(ctx, doc, kind_name or kind)
    ends = inst.start_operation(ctx, doc["id"], [v["instanceId"] for v in chosen], kind,
                                arm_op=op["id"], now=now)
    if kind == "delete" and chosen:
        doc["sku"]["capacity"] = max(m.capacity_of(doc) - len(chosen), 0)
        doc["etag"] = m.next_etag(doc)
        ctx.store.put(doc["id"], doc, m.VMSS_TYPE)
    inst.track(ctx, op, max(ends.values(), default=now))
    return Response(202, None, ctx.ops.lro_headers(op))


def instance_ids_of(body):
    if not isinstance(body, dict):
        return None
    ids = body.get("instanceIds")
    return None if ids is None else [str(i) for i in ids]
