"""Azure Compute Gallery: galleries, image definitions, image versions and their replication.

The API other providers use (all take the emulator `ctx`, none answer HTTP):

    resolve_gallery_image(ctx, image_id, region) -> (version_doc, version_name)
        What a VM or scale set instance created in `region` from `image_id` boots: the version
        itself, or for a definition id (optionally '/versions/latest') the version Azure calls
        "latest" there. Raises Azure's ArmError when there is none (see model.py for the codes).
    image_definition(ctx, image_id) -> definition doc or None
    publish_version(ctx, version_id, location, properties, watcher=None) -> version doc
        Create a version as a client PUT would (Image Builder distributes through this);
        `watcher` = {"timer": name, "payload": {...}} fires once the version has settled.
    version_outcome(ctx, version_id) -> (provisioningState, error dict or None)
"""
from emulator.arm import ArmError, ok
from emulator.providers.gallery import engine, model, routes
from emulator.server import route

__all__ = ["resolve_gallery_image", "image_definition", "publish_version", "version_outcome", "version_names"]


def resolve_gallery_image(ctx, image_id, region):
    parts = model.split_image_id(image_id)
    if parts is None:
        raise model.not_available_error(image_id, region)
    definition_id, version = parts
    if version is None or version.lower() == "latest":
        if ctx.store.get(definition_id) is None:
            raise model.not_available_error(image_id, region)
        best = model.pick_latest(ctx.store.list(model.VERSION, definition_id), region)
        if best is None:
            raise model.no_latest_error(definition_id, region)
        return engine.public(best), best["name"]
    doc = ctx.store.get(f"{definition_id}/versions/{version}")
    if doc is None or not model.available_in(doc, region):
        raise model.not_available_error(image_id, region)
    return engine.public(doc), doc["name"]


def image_definition(ctx, image_id):
    parts = model.split_image_id(image_id)
    return engine.public(ctx.store.get(parts[0])) if parts else None


def version_names(ctx, definition_id):
    return [d["name"] for d in ctx.store.list(model.VERSION, definition_id)]


def publish_version(ctx, version_id, location, properties, watcher=None):
    definition_id, name = model.split_image_id(version_id)
    if ctx.store.get(definition_id) is None:
        raise ArmError(404, "ParentResourceNotFound",
                       "Can not perform requested operation on nested resource. Parent resource "
                       f"'{definition_id.split('/galleries/', 1)[1].replace('/images/', '/')}' not found.")
    model.check_version_name(name)
    doc, _op = routes.write_version(ctx, version_id, name, model.norm_region(location), properties,
                                    ctx.store.get(version_id), watcher)
    return engine.public(doc)


@route("GET", "/_emulator/galleries/resolve", control=True)
def resolve_control(ctx, req):
    """?imageId=...&region=...: what resolve_gallery_image answers (tests and the demo ask the running server)."""
    version, name = resolve_gallery_image(ctx, req.query.get("imageid", ""), req.query.get("region", ""))
    return ok({"id": version["id"], "name": name})


def version_outcome(ctx, version_id):
    doc = ctx.store.get(version_id)
    if doc is None:
        return None, {"code": "NotFound", "message": f"The gallery image version '{version_id}' was deleted."}
    state = doc["properties"]["provisioningState"]
    error = model.replication_error(doc.get("_replication", {})) if state == "Failed" else None
    return state, error
