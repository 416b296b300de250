"""Microsoft.Compute galleries, image definitions and image versions (GalleryRP 2024-03-03 contract).

Every write is a long-running operation with the capsOperations headers GalleryRP returns:
PUT answers 201 (Creating) or 200 (Updating), PATCH 200 (Updating), each with Azure-AsyncOperation only;
DELETE 202 (Deleting) with Azure-AsyncOperation and Location (engine.lro_headers). Target regions come back
as display names ("East US 2"), whatever the request spelled (model.display_region).
"""
from emulator.arm import ArmError, Response, check_etag, merge_patch, not_found, ok, page
from emulator.providers.gallery import engine, model
from emulator.providers.gallery.engine import public
from emulator.server import route

_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
_GALLERIES = _RG + "/providers/Microsoft.Compute/galleries"
_GALLERY = _GALLERIES + "/{galleryName}"
_IMAGES = _GALLERY + "/images"
_IMAGE = _IMAGES + "/{galleryImageName}"
_VERSIONS = _IMAGE + "/versions"
_VERSION = _VERSIONS + "/{galleryImageVersionName}"


# --- ids and lookups -----------------------------------------------------------------------------

def _ids(req):
    """(gallery id, image id, version id) as the request spells them (None where not in the path)."""
    p = req.params
    gallery = (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
               f"/providers/Microsoft.Compute/galleries/{p['galleryName']}")
    image = f"{gallery}/images/{p['galleryImageName']}" if "galleryImageName" in p else None
    version = f"{image}/versions/{p['galleryImageVersionName']}" if "galleryImageVersionName" in p else None
    return gallery, image, version


def _rg(req):
    return req.params["resourceGroupName"]


def _require_rg(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], _rg(req))


def _existing(ctx, req, rid, kind_path):
    """The stored document, or ARM's 404 (resource group first, as ARM checks it first)."""
    doc = ctx.store.get(rid)
    if doc is None:
        _require_rg(ctx, req)
        raise not_found(kind_path, rid.split("/galleries/", 1)[1], _rg(req))
    return doc


def _parent(ctx, req, parent_id):
    """The parent of a nested resource being written, or ARM's 404 ParentResourceNotFound."""
    _require_rg(ctx, req)
    doc = ctx.store.get(parent_id)
    if doc is None:
        name = parent_id.split("/galleries/", 1)[1].replace("/images/", "/")
        raise ArmError(404, "ParentResourceNotFound",
                       f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")
    return doc


def _body(req):
    return req.body if isinstance(req.body, dict) else {}


def _location(body, current):
    """The resource's location: required on create, and a resource never moves."""
    location = body.get("location")
    if current is None:
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                           target="location")
        return model.norm_region(location)
    if location and model.norm_region(location) != model.norm_region(current["location"]):
        raise ArmError(400, "InvalidResourceLocation",
                       f"The resource '{current['name']}' already exists in location '{current['location']}' in "
                       f"resource group '{current['id'].split('/')[4]}'. A resource with the same name cannot be "
                       f"created in location '{location}'. Please select a new resource name.")
    return current["location"]


def _written(ctx, doc, created):
    """The answer to a write: the document, with the headers of the operation it started."""
    op = engine.start_op(ctx, doc, "create" if created else "update")
    ctx.store.put(doc["id"], doc)
    return Response(201 if created else 200, public(doc), engine.lro_headers(ctx, op))


def _deleting(ctx, doc, duration_name):
    op = engine.delete_later(ctx, doc, duration_name)
    return Response(202, None, engine.lro_headers(ctx, op, location_header=True))


def _list(ctx, req, rtype, prefix, render=public):
    items = [render(d) for d in ctx.store.list(rtype, prefix)]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


# --- galleries -----------------------------------------------------------------------------------

def _with_tags(doc, body):
    """A PUT's tags; Azure answers a gallery, image or version PUT without tags with no `tags` key
    (sdkpy_galleries#01, #04, #07)."""
    if body.get("tags") is not None:
        doc["tags"] = body["tags"]
    return doc


def _gallery_doc(ctx, gallery_id, name, body, current):
    location = _location(body, current)
    props = dict(body.get("properties") or {})
    props["identifier"] = {"uniqueName": f"{ctx.subscription_id}-{name.upper()}"}
    props.pop("sharingStatus", None)
    props.setdefault("softDeletePolicy", {"isSoftDeleteEnabled": False})      # (sdkpy_galleries#01)
    doc = _with_tags({"id": gallery_id, "name": name, "type": model.GALLERY, "location": location,
                      "properties": props}, body)
    if body.get("identity"):
        doc["identity"] = body["identity"]
    for key in ("_gen", "_ops"):
        if current and key in current:
            doc[key] = current[key]
    return doc


@route("PUT", _GALLERY, operation_id="Galleries_CreateOrUpdate")
def put_gallery(ctx, req):
    gallery_id, _, _ = _ids(req)
    _require_rg(ctx, req)
    current = ctx.store.get(gallery_id)
    check_etag(req, current)
    name = current["name"] if current else req.params["galleryName"]
    doc = _gallery_doc(ctx, current["id"] if current else gallery_id, name, _body(req), current)
    engine.provision_later(ctx, doc, "Updating" if current else "Creating", model.GALLERY)
    return _written(ctx, doc, created=current is None)


@route("PATCH", _GALLERY, operation_id="Galleries_Update")
def patch_gallery(ctx, req):
    gallery_id, _, _ = _ids(req)
    current = _existing(ctx, req, gallery_id, "Microsoft.Compute/galleries")
    body = _body(req)
    merged = merge_patch(public(current), {k: v for k, v in body.items() if k in ("tags", "properties", "identity")})
    doc = _gallery_doc(ctx, current["id"], current["name"], merged, current)
    engine.provision_later(ctx, doc, "Updating", model.GALLERY)
    return _written(ctx, doc, created=False)


@route("GET", _GALLERY, operation_id="Galleries_Get")
def get_gallery(ctx, req):
    gallery_id, _, _ = _ids(req)
    return ok(public(_existing(ctx, req, gallery_id, "Microsoft.Compute/galleries")))


@route("GET", _GALLERIES, operation_id="Galleries_ListByResourceGroup")
def list_galleries_rg(ctx, req):
    _require_rg(ctx, req)
    return _list(ctx, req, model.GALLERY, f"/subscriptions/{req.params['subscriptionId']}/resourceGroups/{_rg(req)}")


@route("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/galleries", operation_id="Galleries_List")
def list_galleries(ctx, req):
    return _list(ctx, req, model.GALLERY, f"/subscriptions/{req.params['subscriptionId']}")


@route("DELETE", _GALLERY, operation_id="Galleries_Delete")
def delete_gallery(ctx, req):
    gallery_id, _, _ = _ids(req)
    doc = ctx.store.get(gallery_id)
    if doc is None:
        return Response(204)
    images = ctx.store.ids(model.IMAGE, gallery_id)
    if images:
        raise model.nested_resources_error(images)
    return _deleting(ctx, doc, "gallery_delete")


# --- image definitions ---------------------------------------------------------------------------

def _image_doc(image_id, name, body, current, gallery):
    location = _location(body, current) if current else model.norm_region(body.get("location") or gallery["location"])
    props = model.image_properties(body.get("properties") or {}, current["properties"] if current else None)
    props.pop("provisioningState", None)
    doc = _with_tags({"id": image_id, "name": name, "type": model.IMAGE, "location": location,
                      "properties": props}, body)
    for key in ("_gen", "_ops"):
        if current and key in current:
            doc[key] = current[key]
    return doc


@route("PUT", _IMAGE, operation_id="GalleryImages_CreateOrUpdate")
def put_image(ctx, req):
    gallery_id, image_id, _ = _ids(req)
    gallery = _parent(ctx, req, gallery_id)
    current = ctx.store.get(image_id)
    check_etag(req, current)
    body = _body(req)
    if current is None:
        _location(body, None)
    doc = _image_doc(current["id"] if current else image_id, current["name"] if current else
                     req.params["galleryImageName"], body, current, gallery)
    engine.provision_later(ctx, doc, "Updating" if current else "Creating", model.IMAGE)
    return _written(ctx, doc, created=current is None)


@route("PATCH", _IMAGE, operation_id="GalleryImages_Update")
def patch_image(ctx, req):
    gallery_id, image_id, _ = _ids(req)
    current = _existing(ctx, req, image_id, "Microsoft.Compute/galleries")
    body = _body(req)
    patch = {k: v for k, v in body.items() if k in ("tags", "properties")}
    merged = merge_patch(public(current), patch)   # arrays (features) replace, as in any ARM PATCH
    doc = _image_doc(current["id"], current["name"], merged, current, ctx.store.get(gallery_id))
    engine.provision_later(ctx, doc, "Updating", model.IMAGE)
    return _written(ctx, doc, created=False)


@route("GET", _IMAGE, operation_id="GalleryImages_Get")
def get_image(ctx, req):
    _, image_id, _ = _ids(req)
    return ok(public(_existing(ctx, req, image_id, "Microsoft.Compute/galleries")))


@route("GET", _IMAGES, operation_id="GalleryImages_ListByGallery")
def list_images(ctx, req):
    gallery_id, _, _ = _ids(req)
    _existing(ctx, req, gallery_id, "Microsoft.Compute/galleries")
    return _list(ctx, req, model.IMAGE, gallery_id)


@route("DELETE", _IMAGE, operation_id="GalleryImages_Delete")
def delete_image(ctx, req):
    _, image_id, _ = _ids(req)
    doc = ctx.store.get(image_id)
    if doc is None:
        _require_rg(ctx, req)
        return Response(204)
    versions = ctx.store.ids(model.VERSION, image_id)
    if versions:
        raise model.nested_resources_error(versions)
    return _deleting(ctx, doc, "gallery_delete")


# --- image versions ------------------------------------------------------------------------------

def render_version(ctx, doc, expand=False):
    """A version as GET shows it; replicationStatus only with $expand=ReplicationStatus."""
    out = public(doc)
    if expand:
        out = dict(out, properties=dict(out["properties"], replicationStatus=model.replication_status(
            doc.get("_replication", {}), ctx.clock.now())))
    return out


def _check_version_source(ctx, storage, version_id):
    """A gallery image version used as the source must exist (other source kinds are not modeled)."""
    model.check_storage_profile(storage)
    source = model.source_id(storage)
    source_parts = model.split_image_id(source) if source else None
    if source_parts and source_parts[1] and ctx.store.get(source) is None:
        raise ArmError(404, "NotFound", f"The gallery image version '{source}' referenced by '{version_id}' "
                                        "was not found.", target="galleryImageVersion.properties.storageProfile")


def _version_props(ctx, location, props, current):
    """Properties of a new or updated version, checked against the current ones."""
    old = current["properties"] if current else None
    storage = model.merged_storage_profile(props.get("storageProfile"), old and old.get("storageProfile"))
    profile = model.publishing_profile(location, props.get("publishingProfile"),
                                       old and old["publishingProfile"])
    profile["publishedDate"] = old["publishingProfile"]["publishedDate"] if old else ctx.clock.iso()
    out = {k: v for k, v in props.items() if k not in ("replicationStatus", "provisioningState", "restore")}
    out.update(storageProfile=storage, publishingProfile=profile)
    out.setdefault("safetyProfile", {"allowDeletionOfReplicatedLocations": False})
    out["safetyProfile"] = dict({"reportedForPolicyViolation": False}, **out["safetyProfile"])
    model.check_home_region(location, profile)
    if old is not None:
        model.check_version_immutables(out, old)
    return out


def write_version(ctx, version_id, name, location, props, current, watcher=None):
    """Create or update a version and start replicating what is new; returns (doc, op)."""
    if current is None:
        _check_version_source(ctx, props.get("storageProfile"), version_id)
    new_props = _version_props(ctx, location, props, current)
    doc = dict(current or {}, id=version_id, name=name, type=model.VERSION, location=location,
               properties=dict(new_props, provisioningState="Updating" if current else "Creating"))
    if watcher:
        doc.setdefault("_watchers", []).append(watcher)
    targets = new_props["publishingProfile"]["targetRegions"]
    to_start, to_drop = model.plan_replication(doc.get("_replication", {}), targets)
    engine.drop_regions(doc, to_drop)
    engine.start_replication(ctx, doc, to_start)
    op = engine.start_op(ctx, doc, "update" if current else "create")
    ctx.store.put(version_id, doc, model.VERSION)
    if not to_start:
        engine.settle_later(ctx, doc)
    return doc, op


@route("PUT", _VERSION, operation_id="GalleryImageVersions_CreateOrUpdate")
def put_version(ctx, req):
    _, image_id, version_id = _ids(req)
    _parent(ctx, req, image_id)
    model.check_version_name(req.params["galleryImageVersionName"])
    current = ctx.store.get(version_id)
    check_etag(req, current)
    body = _body(req)
    location = _location(body, current)
    doc, op = write_version(ctx, current["id"] if current else version_id, current["name"] if current else
                            req.params["galleryImageVersionName"], location, body.get("properties") or {}, current)
    doc.pop("tags", None)
    _with_tags(doc, body)
    ctx.store.put(doc["id"], doc)
    return Response(200 if current else 201, render_version(ctx, doc), engine.lro_headers(ctx, op))


@route("PATCH", _VERSION, operation_id="GalleryImageVersions_Update")
def patch_version(ctx, req):
    _, _, version_id = _ids(req)
    current = _existing(ctx, req, version_id, "Microsoft.Compute/galleries")
    body = _body(req)
    props = merge_patch(public(current)["properties"], body.get("properties") or {})
    doc, op = write_version(ctx, current["id"], current["name"], current["location"], props, current)
    if "tags" in body:
        doc["tags"] = body["tags"]
        ctx.store.put(doc["id"], doc)
    return Response(200, render_version(ctx, doc), engine.lro_headers(ctx, op))


@route("GET", _VERSION, operation_id="GalleryImageVersions_Get")
def get_version(ctx, req):
    _, _, version_id = _ids(req)
    doc = _existing(ctx, req, version_id, "Microsoft.Compute/galleries")
    expand = "replicationstatus" in req.query.get("$expand", "").lower()
    return ok(render_version(ctx, doc, expand))


@route("GET", _VERSIONS, operation_id="GalleryImageVersions_ListByGalleryImage")
def list_versions(ctx, req):
    _, image_id, _ = _ids(req)
    _existing(ctx, req, image_id, "Microsoft.Compute/galleries")
    return _list(ctx, req, model.VERSION, image_id, lambda d: render_version(ctx, d))


@route("DELETE", _VERSION, operation_id="GalleryImageVersions_Delete")
def delete_version(ctx, req):
    _, _, version_id = _ids(req)
    doc = ctx.store.get(version_id)
    if doc is None:
        _require_rg(ctx, req)
        return Response(204)
    return _deleting(ctx, doc, "image_version_delete")

