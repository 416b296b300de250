"""virtualMachineScaleSets/{name}/extensions: a child-resource view of the model's extensionProfile.

Writes are a PATCH of the scale set's extension list through the same path as a client PATCH, so the model
hash, kept protectedSettings, Automatic upgrades and 409 conflicts behave the same way.
"""
import copy

from emulator.arm import ArmError, Response, ok, page
from emulator.providers.compute import handlers
from emulator.providers.compute import model as m
from emulator.providers.compute import scalesets as sets
from emulator.server import CaseInsensitiveDict, route

EXTENSIONS = handlers.VMSS + "/extensions"
EXTENSION = EXTENSIONS + "/{vmssExtensionName}"
TYPE = "Microsoft.Compute/virtualMachineScaleSets/extensions"


def render(doc, ext):
    props = {k: copy.deepcopy(v) for k, v in (ext.get("properties") or {}).items() if k != "protectedSettings"}
    state = m.props(doc).get("provisioningState", "Succeeded")
    props["provisioningState"] = state if state in ("Creating", "Updating", "Deleting", "Failed") else "Succeeded"
    return {"name": ext.get("name"), "id": f"{doc['id']}/extensions/{ext.get('name')}", "type": TYPE,
            "properties": props}


def _find(doc, name):
    return next((e for e in m.extensions_of(m.profile(doc)) if (e.get("name") or "").lower() == name.lower()), None)


def _not_found(doc, name):
    return ArmError(404, "NotFound", f"Extension '{name}' was not found on Virtual Machine Scale Set '{doc['name']}'.")


class _PatchOfScaleSet:
    """The request compute's PATCH path reads, carrying a new extension list."""

    def __init__(self, req, extensions):
        self.method = "PATCH"
        self.params = req.params
        self.headers = CaseInsensitiveDict([])
        self.query = {}
        self.path = req.path
        self.body = {"properties": {"virtualMachineProfile": {"extensionProfile": {"extensions": extensions}}}}


def _write(ctx, req, doc, extensions, name, status):
    answer = sets.create_or_update(ctx, _PatchOfScaleSet(req, extensions), patch=True)
    updated = ctx.store.get(doc["id"])
    ext = _find(updated, name)
    return Response(status, render(updated, ext) if ext else None, answer.headers)


@route("GET", EXTENSIONS, operation_id="VirtualMachineScaleSetExtensions_List")
def list_extensions(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    items = [render(doc, e) for e in m.extensions_of(m.profile(doc))]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("GET", EXTENSION, operation_id="VirtualMachineScaleSetExtensions_Get")
def get_extension(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    ext = _find(doc, req.params["vmssExtensionName"])
    if ext is None:
        raise _not_found(doc, req.params["vmssExtensionName"])
    return ok(render(doc, ext))


@route("PUT", EXTENSION, operation_id="VirtualMachineScaleSetExtensions_CreateOrUpdate")
def put_extension(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    name = req.params["vmssExtensionName"]
    body = req.body if isinstance(req.body, dict) else {}
    if not m.profile(doc):
        raise m.missing("virtualMachineProfile")
    new = {"name": name, "properties": copy.deepcopy(body.get("properties") or {})}
    others = [e for e in m.extensions_of(m.profile(doc)) if (e.get("name") or "").lower() != name.lower()]
    existed = _find(doc, name) is not None
    return _write(ctx, req, doc, others + [new], name, 200 if existed else 201)


@route("PATCH", EXTENSION, operation_id="VirtualMachineScaleSetExtensions_Update")
def patch_extension(ctx, req):
    from emulator.arm import merge_patch
    doc = handlers.scale_set_of(ctx, req)
    name = req.params["vmssExtensionName"]
    current = _find(doc, name)
    if current is None:
        raise _not_found(doc, name)
    body = req.body if isinstance(req.body, dict) else {}
    merged = {"name": current["name"],
              "properties": merge_patch(current.get("properties") or {}, body.get("properties") or {})}
    extensions = [merged if e is current else e for e in m.extensions_of(m.profile(doc))]
    return _write(ctx, req, doc, extensions, name, 200)


@route("DELETE", EXTENSION, operation_id="VirtualMachineScaleSetExtensions_Delete")
def delete_extension(ctx, req):
    doc = handlers.scale_set_of(ctx, req)
    name = req.params["vmssExtensionName"]
    if _find(doc, name) is None:
        return Response(204)
    extensions = [e for e in m.extensions_of(m.profile(doc)) if (e.get("name") or "").lower() != name.lower()]
    answer = sets.create_or_update(ctx, _PatchOfScaleSet(req, extensions), patch=True)
    headers = dict(answer.headers)
    headers["Location"] = headers.get("Azure-AsyncOperation", "").replace("?", "?monitor=true&", 1)
    return Response(202, None, headers)
