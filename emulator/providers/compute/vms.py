"""Microsoft.Compute/virtualMachines created by Flexible scale sets: real VM resources whose
properties.virtualMachineScaleSet.id names their set. Standalone VMs are not modelled."""
from emulator.arm import ArmError, Response, ok, page
from emulator.providers.compute import instances as inst
from emulator.providers.compute import scalesets as sets
from emulator.providers.compute.handlers import RG, SUB, Lazy, Renderer, expands
from emulator.server import route

VM = RG + "/virtualMachines/{vmName}"


def _vm_id(p):
    return (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
            f"/providers/Microsoft.Compute/virtualMachines/{p['vmName']}")


def _find(ctx, req):
    """(scale set doc, instance view) of a VM, or 404 as Compute answers it."""
    p = req.params
    sets.check_subscription(ctx, p["subscriptionId"])
    rec = ctx.store.get(_vm_id(p))
    doc = ctx.store.get(rec["vmss"]) if rec else None
    view = inst.get_instance(ctx, rec["vmss"], rec["instanceId"]) if doc else None
    if view is None:
        ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        raise ArmError(404, "ResourceNotFound",
                       f"The Resource 'Microsoft.Compute/virtualMachines/{p['vmName']}' under resource group "
                       f"'{p['resourceGroupName']}' was not found. For more details please go to "
                       "https://aka.ms/ARMResourceNotFoundFix")
    return doc, view


def _documents(ctx, recs, wanted):
    """Render VM records of possibly many scale sets (one Renderer per set)."""
    renderers, out = {}, []
    for rec in recs:
        key = rec["vmss"].lower()
        if key not in renderers:
            doc = ctx.store.get(rec["vmss"])
            renderers[key] = Renderer(ctx, doc) if doc else None
        renderer = renderers[key]
        view = inst.effective(rec, renderer.now) if renderer else None
        if view is not None:
            out.append((renderer, view))
    return Lazy(out, lambda pair: pair[0].document(pair[1], wanted))


@route("GET", VM, operation_id="VirtualMachines_Get")
def get_vm(ctx, req):
    doc, view = _find(ctx, req)
    return ok(Renderer(ctx, doc).document(view, expands(req)))


@route("GET", VM + "/instanceView", operation_id="VirtualMachines_InstanceView")
def get_vm_instance_view(ctx, req):
    doc, view = _find(ctx, req)
    return ok(Renderer(ctx, doc).instance_view(view))


@route("GET", RG + "/virtualMachines", operation_id="VirtualMachines_List")
def list_vms(ctx, req):
    p = req.params
    sets.check_subscription(ctx, p["subscriptionId"])
    ctx.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
    recs = ctx.store.list(inst.VM_TYPE, f"/subscriptions/{p['subscriptionId']}/resourceGroups/"
                                        f"{p['resourceGroupName']}/providers/Microsoft.Compute/virtualMachines")
    return ok(page(req, _documents(ctx, recs, expands(req)), ctx.base_url, ctx.page_size))


@route("GET", SUB + "/providers/Microsoft.Compute/virtualMachines", operation_id="VirtualMachines_ListAll")
def list_all_vms(ctx, req):
    sets.check_subscription(ctx, req.params["subscriptionId"])
    recs = ctx.store.list(inst.VM_TYPE, f"/subscriptions/{req.params['subscriptionId']}")
    return ok(page(req, _documents(ctx, recs, expands(req)), ctx.base_url, ctx.page_size))


@route("DELETE", VM, operation_id="VirtualMachines_Delete")
def delete_vm(ctx, req):
    """Deleting a Flexible VM removes it from its set (capacity goes down by one, as in Azure)."""
    try:
        doc, view = _find(ctx, req)
    except ArmError as err:
        if err.status == 404 and err.code == "ResourceNotFound":
            return Response(204)
        raise
    return sets.run_action(ctx, doc, "delete", [view["instanceId"]], scale_set_action=False)


def _vm_action(segment, kind, operation_id):
    @route("POST", VM + "/" + segment, operation_id=operation_id)
    def vm_action(ctx, req):
        doc, view = _find(ctx, req)
        return sets.run_action(ctx, doc, kind, [view["instanceId"]], scale_set_action=False)
    return vm_action


for _segment, _kind, _op in (("restart", "restart", "VirtualMachines_Restart"),
                             ("start", "start", "VirtualMachines_Start"),
                             ("powerOff", "poweroff", "VirtualMachines_PowerOff"),
                             ("deallocate", "deallocate", "VirtualMachines_Deallocate"),
                             ("reimage", "reimage", "VirtualMachines_Reimage")):
    _vm_action(_segment, _kind, _op)
