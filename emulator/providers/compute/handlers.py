"""Microsoft.Compute/virtualMachineScaleSets and their Uniform VMs: the ARM routes (thin: parse, call
scalesets / instances, render with views)."""
from emulator.arm import ArmError, Response, check_etag, ok, page
from emulator.providers import features
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute import scalesets as sets
from emulator.providers.compute import views
from emulator.server import route

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
VMSS = RG + "/virtualMachineScaleSets/{vmScaleSetName}"
VMSS_VM = VMSS + "/virtualMachines/{instanceId}"


class Lazy:
    """A list whose items are rendered only when a page slices them (1000 instances, pages of 100)."""

    def __init__(self, items, render):
        self.items, self.render = items, render

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.render(item) for item in self.items[index]]
        return self.render(self.items[index])


def expands(req):
    """Lower-cased $expand values (comma separated), with $select=instanceView read the same way."""
    words = set()
    for key in ("$expand", "$select"):
        for word in (req.query.get(key) or "").split(","):
            words.add(word.strip().split("/")[0].lower())
    return words


class Renderer:
    """Renders instances of one scale set for one request (models and rules read once)."""

    def __init__(self, ctx, doc, now=None):
        self.ctx, self.doc = ctx, doc
        self.now = ctx.clock.now() if now is None else now
        self.now_iso = ctx.clock.iso(self.now)
        self.models = inst.models(ctx, doc["id"])
        self.state = inst.load_state(ctx, doc["id"])
        self.rules = ctx.store.kv_get("health_rules", [])

    def model(self, view):
        return self.models.get(view.get("model"))

    def health(self, view):
        return inst.health_of(self.ctx, view, self.now, self.doc, self.model(view) or {}, self.rules)

    def instance_view(self, view):
        return views.instance_view(self.doc, view, self.model(view), self.health(view), self.now_iso)

    def document(self, view, expand=()):
        body = self.instance_view(view) if "instanceview" in expand else None
        user_data = "userdata" in expand
        if view["mode"] == "Flexible":
            return views.flexible_vm(self.doc, view, self.model(view), body, user_data)
        return views.vmss_vm(self.doc, view, self.model(view),
                             inst.latest_model_applied(self.ctx, self.doc["id"], view, self.state), body, user_data)


def scale_set_of(ctx, req):
    p = req.params
    return sets.require(ctx, p["subscriptionId"], p["resourceGroupName"],
                        p.get("vmScaleSetName") or p.get("virtualMachineScaleSetName"))


def _uniform_only(doc, operation):
    """Azure's refusal of a Uniform-only operation on a Flexible set (400 BadRequest, as reported for
    VirtualMachineScaleSets.virtualMachines.GET; the same message for instanceView.GET)."""
    if m.mode_of(doc) == "Flexible":
        raise ArmError(400, "BadRequest", f"Operation '{operation}' is not allowed on Virtual Machine Scale Set "
                                          f"'{doc['name']}'.")


IMAGE_UPGRADE_FEATURE = "ImageReferenceUpgradeForVmoVMs"


def _image_key(model):
    ref = m.image_reference((model or {}).get("profile"))
    return {k: str(v).lower() for k, v in ref.items() if k != "exactVersion"}


def _require_image_upgrade_feature(ctx, doc, instance_ids):
    """Manual upgrade of Flexible VMs onto another image reference is a preview behind a subscription
    feature; upgrades that keep each VM's image reference (size, extensions) need nothing. Read-only."""
    models = inst.models(ctx, doc["id"])
    target = _image_key(models.get(inst.load_state(ctx, doc["id"]).get("model")))
    chosen = sets.targets(ctx, doc, instance_ids, True, ctx.clock.now())
    if all(_image_key(models.get(v.get("model"))) == target for v in chosen):
        return
    subscription = doc["id"].split("/")[2]
    if not features.registered(ctx, subscription, "Microsoft.Compute", IMAGE_UPGRADE_FEATURE):
        raise ArmError(400, "OperationNotAllowed",
                       f"Changing the image reference of Virtual Machines of Virtual Machine Scale Set "
                       f"'{doc['name']}' (Flexible orchestration) through manual upgrade is a preview: subscription "
                       f"'{subscription}' is not registered for feature 'Microsoft.Compute/{IMAGE_UPGRADE_FEATURE}'. "
                       f"Register it with 'az feature register --namespace Microsoft.Compute --name "
                       f"{IMAGE_UPGRADE_FEATURE}' and retry once its state is Registered.")


def _instance(ctx, doc, instance_id, now=None):
    view = inst.get_instance(ctx, doc["id"], instance_id, now)
    if view is None:
        raise ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    return view


# --- scale sets ---------------------------------------------------------------------------------

@route("PUT", VMSS, operation_id="VirtualMachineScaleSets_CreateOrUpdate")
def put_scale_set(ctx, req):
    return sets.create_or_update(ctx, req)


@route("PATCH", VMSS, operation_id="VirtualMachineScaleSets_Update")
def patch_scale_set(ctx, req):
    return sets.create_or_update(ctx, req, patch=True)


@route("GET", VMSS, operation_id="VirtualMachineScaleSets_Get")
def get_scale_set(ctx, req):
    return ok(m.render(scale_set_of(ctx, req), req.query.get("$expand")))


@route("DELETE", VMSS, operation_id="VirtualMachineScaleSets_Delete")
def delete_scale_set(ctx, req):
    return sets.delete(ctx, req)


@route("GET", RG + "/virtualMachineScaleSets", operation_id="VirtualMachineScaleSets_List")
def list_scale_sets(ctx, req):
    p = req.params
    sets.check_subscription(ctx, p["subscriptionId"])
    ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
    items = ctx.store.list(m.VMSS_TYPE, f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}")
    return ok(page(req, [m.render(d) for d in items], ctx.base_url, ctx.page_size))


@route("GET", SUB + "/providers/Microsoft.Compute/virtualMachineScaleSets",
       operation_id="VirtualMachineScaleSets_ListAll")
def list_all_scale_sets(ctx, req):
    sets.check_subscription(ctx, req.params["subscriptionId"])
    items = ctx.store.list(m.VMSS_TYPE, f"/subscriptions/{req.params['subscriptionId']}")
    return ok(page(req, [m.render(d) for d in items], ctx.base_url, ctx.page_size))


@route("GET", SUB + "/providers/Microsoft.Compute/locations/{location}/virtualMachineScaleSets",
       operation_id="VirtualMachineScaleSets_ListByLocation")
def list_scale_sets_by_location(ctx, req):
    sets.check_subscription(ctx, req.params["subscriptionId"])
    where = req.params["location"].replace(" ", "").lower()
    items = [m.render(d) for d in ctx.store.list(m.VMSS_TYPE, f"/subscriptions/{req.params['subscriptionId']}")
             if d["location"].replace(" ", "").lower() == where]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("GET", VMSS + "/instanceView", operation_id="VirtualMachineScaleSets_GetInstanceView")
def get_scale_set_instance_view(ctx, req):
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.instanceView.GET")
    now = ctx.clock.now()
    live = inst.list_instances(ctx, doc["id"], now)
    return ok(views.scale_set_instance_view(doc, live, inst.models(ctx, doc["id"]),
                                            inst.load_state(ctx, doc["id"]).get("orchestration"),
                                            ctx.clock.iso(now)))


@route("GET", VMSS + "/skus", operation_id="VirtualMachineScaleSets_ListSkus")
def list_skus(ctx, req):
    doc = scale_set_of(ctx, req)
    names = [(doc.get("sku") or {}).get("name") or "Standard_D2s_v3"]
    names += [n for n in ("Standard_D2s_v3", "Standard_D4s_v3", "Standard_B2s") if n not in names]
    items = [{"resourceType": m.VMSS_TYPE, "sku": {"name": n, "tier": "Standard"},
              "capacity": {"minimum": 0, "maximum": m.MAX_CAPACITY, "defaultCapacity": 1,
                           "scaleType": "Automatic"}} for n in names]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


def _action(segment, operation_id, body_key="instanceIds"):
    kind = sets.ACTIONS[segment]

    @route("POST", VMSS + "/" + segment, operation_id=operation_id)
    def scale_set_action(ctx, req):
        doc = scale_set_of(ctx, req)
        ids = sets.instance_ids_of(req.body)
        if segment == "manualupgrade" and m.mode_of(doc) == "Flexible":
            _require_image_upgrade_feature(ctx, doc, ids)
        return sets.run_action(ctx, doc, kind, ids, kind_name=segment)
    return scale_set_action


for _segment, _op in (("manualupgrade", "VirtualMachineScaleSets_UpdateInstances"),
                      ("reimage", "VirtualMachineScaleSets_Reimage"),
                      ("reimageall", "VirtualMachineScaleSets_ReimageAll"),
                      ("restart", "VirtualMachineScaleSets_Restart"),
                      ("deallocate", "VirtualMachineScaleSets_Deallocate"),
                      ("start", "VirtualMachineScaleSets_Start"),
                      ("poweroff", "VirtualMachineScaleSets_PowerOff"),
                      ("delete", "VirtualMachineScaleSets_DeleteInstances")):
    _action(_segment, _op)


@route("POST", VMSS + "/setOrchestrationServiceState",
       operation_id="VirtualMachineScaleSets_SetOrchestrationServiceState")
def set_orchestration_service_state(ctx, req):
    """Suspend / Resume automatic repairs (kept for the repairs engine; shown in the instance view)."""
    doc = scale_set_of(ctx, req)
    body = req.body or {}
    if body.get("serviceName") != "AutomaticRepairs" or body.get("action") not in ("Suspend", "Resume"):
        raise ArmError(400, "InvalidParameter", "serviceName must be AutomaticRepairs and action Suspend or Resume.",
                       target="parameters")
    if not (m.props(doc).get("automaticRepairsPolicy") or {}).get("enabled"):
        raise ArmError(409, "OperationNotAllowed", "Automatic repairs are not enabled on this scale set.")
    state = inst.load_state(ctx, doc["id"])
    state.setdefault("orchestration", {})["AutomaticRepairs"] = \
        "Suspended" if body["action"] == "Suspend" else "Running"
    inst.save_state(ctx, doc["id"], state)
    op = inst.begin(ctx, doc, "setOrchestrationServiceState")
    inst.track(ctx, op, ctx.clock.now())
    return Response(202, None, ctx.ops.lro_headers(op))


# --- Uniform VMs --------------------------------------------------------------------------------

@route("GET", RG + "/virtualMachineScaleSets/{virtualMachineScaleSetName}/virtualMachines",
       operation_id="VirtualMachineScaleSetVMs_List")
def list_vms(ctx, req):
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.virtualMachines.GET")
    renderer = Renderer(ctx, doc)
    live = inst.list_instances(ctx, doc["id"], renderer.now)
    wanted = expands(req)
    return ok(page(req, Lazy(live, lambda v: renderer.document(v, wanted)), ctx.base_url, ctx.page_size))


@route("GET", VMSS_VM, operation_id="VirtualMachineScaleSetVMs_Get")
def get_vm(ctx, req):
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.virtualMachines.GET")
    renderer = Renderer(ctx, doc)
    return ok(renderer.document(_instance(ctx, doc, req.params["instanceId"], renderer.now), expands(req)))


@route("GET", VMSS_VM + "/instanceView", operation_id="VirtualMachineScaleSetVMs_GetInstanceView")
def get_vm_instance_view(ctx, req):
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.virtualMachines.instanceView.GET")
    renderer = Renderer(ctx, doc)
    return ok(renderer.instance_view(_instance(ctx, doc, req.params["instanceId"], renderer.now)))


@route("PUT", VMSS_VM, operation_id="VirtualMachineScaleSetVMs_Update")
def put_vm(ctx, req):
    """Only the protection policy is modelled per instance; the rest of a VM's model is the set's."""
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.virtualMachines.PUT")
    now = ctx.clock.now()
    view = _instance(ctx, doc, req.params["instanceId"], now)
    renderer = Renderer(ctx, doc, now)
    check_etag(req, {"etag": renderer.document(view)["etag"]})
    sets.refuse_if_busy(ctx, doc, [view], now)
    body = req.body if isinstance(req.body, dict) else {}
    protection = (body.get("properties") or {}).get("protectionPolicy")
    if protection is not None:
        inst.set_protection(ctx, doc["id"], view["instanceId"], protection)
    op = inst.begin(ctx, doc, "updateVM", resource_id=view["id"])
    inst.track(ctx, op, now)
    view = _instance(ctx, doc, view["instanceId"], now)
    return ok(renderer.document(view), ctx.ops.lro_headers(op, location_header=False))


@route("DELETE", VMSS_VM, operation_id="VirtualMachineScaleSetVMs_Delete")
def delete_vm(ctx, req):
    doc = scale_set_of(ctx, req)
    _uniform_only(doc, "VirtualMachineScaleSets.virtualMachines.DELETE")
    if inst.get_instance(ctx, doc["id"], req.params["instanceId"]) is None:
        return Response(204)
    return sets.run_action(ctx, doc, "delete", [req.params["instanceId"]], scale_set_action=False)


def _vm_action(segment, kind, operation_id):
    @route("POST", VMSS_VM + "/" + segment, operation_id=operation_id)
    def vm_action(ctx, req):
        doc = scale_set_of(ctx, req)
        _uniform_only(doc, f"VirtualMachineScaleSets.virtualMachines.{segment}")
        _instance(ctx, doc, req.params["instanceId"])
        return sets.run_action(ctx, doc, kind, [req.params["instanceId"]], scale_set_action=False)
    return vm_action


for _segment, _kind, _op in (("reimage", "reimage", "VirtualMachineScaleSetVMs_Reimage"),
                             ("reimageall", "reimage", "VirtualMachineScaleSetVMs_ReimageAll"),
                             ("restart", "restart", "VirtualMachineScaleSetVMs_Restart"),
                             ("deallocate", "deallocate", "VirtualMachineScaleSetVMs_Deallocate"),
                             ("start", "start", "VirtualMachineScaleSetVMs_Start"),
                             ("powerOff", "poweroff", "VirtualMachineScaleSetVMs_PowerOff")):
    _vm_action(_segment, _kind, _op)
