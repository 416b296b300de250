"""Microsoft.Resources resource groups (enough for scale sets and their neighbours to live in)."""
from emulator.arm import ArmError, Response, check_etag, created, ok, page, resource_group_id
from emulator.server import route

_RG = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
_TYPE = "Microsoft.Resources/resourceGroups"


def _check_subscription(ctx, req):
    if req.params["subscriptionId"].lower() != ctx.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{req.params['subscriptionId']}' could not be found.")


@route("PUT", _RG, operation_id="ResourceGroups_CreateOrUpdate")
def put_resource_group(ctx, req):
    _check_subscription(ctx, req)
    body = req.body or {}
    if not isinstance(body.get("location"), str) or not body["location"]:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.", target="location")
    rid = resource_group_id(ctx.subscription_id, req.params["resourceGroupName"])
    current = ctx.store.get(rid)
    check_etag(req, current)
    if current and current["location"].lower() != body["location"].lower():
        raise ArmError(409, "InvalidResourceGroupLocation",
                       f"Invalid resource group location '{body['location']}'. The Resource group already exists in "
                       f"location '{current['location']}' in resource group '{current['name']}'.")
    doc = {"id": rid, "name": current["name"] if current else req.params["resourceGroupName"], "type": _TYPE,
           "location": body["location"].lower().replace(" ", ""), "tags": body.get("tags", {}),
           "properties": {"provisioningState": "Succeeded"}}
    if body.get("managedBy"):
        doc["managedBy"] = body["managedBy"]
    ctx.store.put(rid, doc, _TYPE)
    return ok(doc) if current else created(doc)


@route("GET", _RG, operation_id="ResourceGroups_Get")
def get_resource_group(ctx, req):
    _check_subscription(ctx, req)
    doc = ctx.store.get(resource_group_id(ctx.subscription_id, req.params["resourceGroupName"]))
    if doc is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{req.params['resourceGroupName']}' could not be found.")
    return ok(doc)


@route("HEAD", _RG, operation_id="ResourceGroups_CheckExistence")
def head_resource_group(ctx, req):
    exists = ctx.store.exists(resource_group_id(ctx.subscription_id, req.params["resourceGroupName"]))
    return Response(204 if exists else 404)


@route("GET", "/subscriptions/{subscriptionId}/resourcegroups", operation_id="ResourceGroups_List")
def list_resource_groups(ctx, req):
    _check_subscription(ctx, req)
    items = ctx.store.list(_TYPE, f"/subscriptions/{ctx.subscription_id}")
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("DELETE", _RG, operation_id="ResourceGroups_Delete")
def delete_resource_group(ctx, req):
    """Deletes the group and everything in it (synchronously: nothing we model needs a long delete here)."""
    _check_subscription(ctx, req)
    rid = resource_group_id(ctx.subscription_id, req.params["resourceGroupName"])
    if not ctx.store.exists(rid):
        return Response(204)
    for hook in ctx.delete_hooks:
        hook(ctx, rid)
    ctx.store.delete_tree(rid)
    return ok(None)


@route("GET", _RG + "/resources", operation_id="Resources_ListByResourceGroup")
def list_resources(ctx, req):
    """The resources in a group, as GenericResourceExpanded (id, name, type, location, tags; no properties).
    Only top-level resources here: ARM also lists some tracked nested ones (gallery image definitions and
    versions), never proxy children (subnets, scale-set instances)."""
    _check_subscription(ctx, req)
    rid = resource_group_id(ctx.subscription_id, req.params["resourceGroupName"])
    if not ctx.store.exists(rid):
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{req.params['resourceGroupName']}' could not be found.")
    items = [{key: doc[key] for key in ("id", "name", "type", "kind", "location", "tags", "sku", "identity", "managedBy")
              if key in doc}
             for doc in ctx.store.list(prefix=rid + "/providers")
             if doc["id"][len(rid):].count("/") == 4]   # /providers/<namespace>/<type>/<name>
    return ok(page(req, items, ctx.base_url, ctx.page_size))
