"""Managed identities and Azure RBAC data: Microsoft.ManagedIdentity userAssignedIdentities and
Microsoft.Authorization roleAssignments / roleDefinitions.

No spec files exist for these namespaces in ../shared/azure-specs, so requests are checked by the
rules below, written from the public REST reference (MSI 2024-11-30, Authorization 2022-04-01) and
the errors Azure is reported to answer:
  * 400 InvalidRoleAssignmentId, 409 RoleAssignmentExists, 404 RoleAssignmentNotFound,
    400 RoleAssignmentUpdateNotPermitted ("Tenant ID, application ID, principal ID, and scope are
    not allowed to be updated.", seen in ARM deployment errors), 400 RoleDefinitionDoesNotExist,
    409 RoleDefinitionWithSameNameExists;
  * 400 PrincipalNotFound with the replication-delay advice, answered for an unknown principal, and
    for a just-created identity while Entra ID has not replicated it yet, unless the request sets
    principalType (Azure-Samples/azure-search-openai-demo#9, Azure/avdaccelerator#76).

Other providers use `identity(ctx, id)` and `has_permission(ctx, principal_id, action, scope)`
(Image Builder checks its identity can write the gallery version it distributes).
"""
import functools
import re
import uuid

from emulator.arm import ArmError, Response, check_etag, not_found, ok, page
from emulator.identity import BUILTIN_ROLES as ENTRA_ROLES
from emulator.server import route

MSI = "Microsoft.ManagedIdentity/userAssignedIdentities"
ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
DEFINITION = "Microsoft.Authorization/roleDefinitions"

# Realistic seconds before Entra ID has replicated a new identity's service principal everywhere.

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_AUTH_PATH = re.compile(r"^(.*?)/providers/Microsoft\.Authorization/(roleAssignments|roleDefinitions)(?:/([^/]+))?/?$",
                        re.I)
BUILTIN_DATE = "2015-02-02T21:55:09.8806423Z"


def _role(name, description, actions, not_actions=()):
    return {"roleName": name, "description": description, "actions": list(actions), "notActions": list(not_actions)}


# The built-in roles the bake pipeline needs, with their real ids and permissions (`az role definition list`).
BUILTIN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcf635": _role(
        "Owner", "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        ENTRA_ROLES["owner"][0]),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": _role(
        "Contributor", "Grants full access to manage all resources, but does not allow you to assign roles in Azure "
        "RBAC, manage assignments in Azure Blueprints, or share image galleries.", *ENTRA_ROLES["contributor"]),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": _role(
        "Reader", "View all resources, but does not allow you to make any changes.", ENTRA_ROLES["reader"][0]),
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": _role(
        "Virtual Machine Contributor", "Create and manage virtual machines, manage disks, install and run software, "
        "reset password of the root user of the virtual machine using VM extensions, and manage local user accounts "
        "using VM extensions. This role does not grant you management access to the virtual network or storage "
        "account the virtual machines are connected to. This role does not allow you to assign roles in Azure RBAC.",
        ["Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*", "Microsoft.Compute/locations/*",
         "Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/virtualMachineScaleSets/*",
         "Microsoft.Compute/cloudServices/*", "Microsoft.Compute/disks/write", "Microsoft.Compute/disks/read",
         "Microsoft.Compute/disks/delete", "Microsoft.DevTestLab/schedules/*", "Microsoft.Insights/alertRules/*",
         "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
         "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
         "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
         "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
         "Microsoft.Network/loadBalancers/probes/join/action", "Microsoft.Network/loadBalancers/read",
         "Microsoft.Network/locations/*", "Microsoft.Network/networkInterfaces/*",
         "Microsoft.Network/networkSecurityGroups/join/action", "Microsoft.Network/networkSecurityGroups/read",
         "Microsoft.Network/publicIPAddresses/join/action", "Microsoft.Network/publicIPAddresses/read",
         "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action",
         "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
         "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Storage/storageAccounts/listKeys/action",
         "Microsoft.Storage/storageAccounts/read", "Microsoft.Support/*"]),
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": _role(
        "User Access Administrator", "Lets you manage user access to Azure resources.",
        ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"]),
    "f1a07417-d97a-45cb-824c-7a7467783830": _role(
        "Managed Identity Operator", "Read and Assign User Assigned Identity",
        ["Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
         "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", "Microsoft.Authorization/*/read",
         "Microsoft.Insights/alertRules/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
         "Microsoft.Resources/deployments/*", "Microsoft.Support/*"]),
}


# --- pure helpers --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=512)
def _pattern(pattern):
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.I)


def permits(permissions, action):
    """Whether any permission block allows `action`: an action matches and no notAction of that block does."""
    return any(any(_pattern(p).fullmatch(action) for p in block.get("actions", []))
               and not any(_pattern(p).fullmatch(action) for p in block.get("notActions", []))
               for block in permissions)


def scope_covers(scope, target):
    """Whether an assignment at `scope` applies to `target` (same scope or one below it)."""
    scope, target = scope.rstrip("/").lower(), target.rstrip("/").lower()
    return scope == "" or target == scope or target.startswith(scope + "/")


def split_auth_path(path):
    """(scope, 'roleAssignments'|'roleDefinitions', name or None) of an authorization URL path."""
    m = _AUTH_PATH.match(path)
    return (m.group(1) or "/", m.group(2), m.group(3)) if m else (None, None, None)


def parse_filter(text):
    """{'atScope': bool, 'principalId': id|None, 'assignedTo': id|None, 'roleName': str|None, 'type': str|None}."""
    text = text or ""
    out = {"atScope": bool(re.search(r"atScope\(\)", text, re.I))}
    for key, pattern in (("principalId", r"principalId\s+eq\s+'?([0-9a-fA-F-]{32,36})'?"),
                         ("assignedTo", r"assignedTo\('([^']+)'\)"),
                         ("roleName", r"roleName\s+eq\s+'([^']*)'"),
                         ("type", r"type\s+eq\s+'([^']*)'")):
        m = re.search(pattern, text, re.I)
        out[key] = m.group(1) if m else None
    return out


def guid_of(role_definition_id):
    tail = (role_definition_id or "").rstrip("/").rsplit("/", 1)[-1]
    return tail.lower() if _GUID.match(tail) else None


def _subscription_of(scope):
    parts = scope.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else None


# --- managed identities --------------------------------------------------------------------------

_MSI_BASE = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ManagedIdentity"
_MSI = _MSI_BASE + "/userAssignedIdentities/{resourceName}"


def _public(doc):
    return {k: v for k, v in doc.items() if not k.startswith("_")} if doc else doc


def identity(ctx, identity_id):
    """The user-assigned identity document (public shape) or None."""
    return _public(ctx.store.get(identity_id or ""))


def _msi_id(req):
    p = req.params
    return f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}" \
           f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{p['resourceName']}"


def _msi_not_found(req):
    return not_found(MSI, req.params["resourceName"], req.params["resourceGroupName"])


@route("PUT", _MSI, operation_id="UserAssignedIdentities_CreateOrUpdate")
def put_identity(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    rid = _msi_id(req)
    current = ctx.store.get(rid)
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    location = (body.get("location") or "").replace(" ", "").lower()
    if not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    if current and current["location"] != location:
        raise ArmError(400, "InvalidResourceLocation",
                       f"The resource '{current['name']}' already exists in location '{current['location']}' in "
                       f"resource group '{req.params['resourceGroupName']}'. A resource with the same name cannot be "
                       f"created in location '{location}'. Please select a new resource name.")
    props = dict((current or {}).get("properties") or {
        "tenantId": ctx.tenant_id, "principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())})
    requested = (body.get("properties") or {}).get("isolationScope")
    props["isolationScope"] = requested or props.get("isolationScope", "None")
    doc = {"id": current["id"] if current else rid, "name": current["name"] if current else req.params["resourceName"],
           "type": MSI, "location": location, "tags": body.get("tags", {}), "properties": props,
           "_created": (current or {}).get("_created", ctx.clock.now())}
    ctx.store.put(doc["id"], doc, MSI)
    return Response(200 if current else 201, _public(doc))


@route("PATCH", _MSI, operation_id="UserAssignedIdentities_Update")
def patch_identity(ctx, req):
    doc = ctx.store.get(_msi_id(req))
    if doc is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _msi_not_found(req)
    body = req.body if isinstance(req.body, dict) else {}
    if "tags" in body:
        doc["tags"] = body["tags"] or {}
    ctx.store.put(doc["id"], doc)
    return ok(_public(doc))


@route("GET", _MSI, operation_id="UserAssignedIdentities_Get")
def get_identity(ctx, req):
    doc = ctx.store.get(_msi_id(req))
    if doc is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _msi_not_found(req)
    return ok(_public(doc))


@route("DELETE", _MSI, operation_id="UserAssignedIdentities_Delete")
def delete_identity(ctx, req):
    rid = _msi_id(req)
    if not ctx.store.exists(rid):
        return Response(204)
    ctx.store.delete(rid)   # its role assignments stay behind, orphaned, as in Azure
    return ok(None)


@route("GET", _MSI_BASE + "/userAssignedIdentities", operation_id="UserAssignedIdentities_ListByResourceGroup")
def list_identities_rg(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    prefix = f"/subscriptions/{req.params['subscriptionId']}/resourceGroups/{req.params['resourceGroupName']}"
    return ok(page(req, [_public(d) for d in ctx.store.list(MSI, prefix)], ctx.base_url, ctx.page_size))


@route("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
       operation_id="UserAssignedIdentities_ListBySubscription")
def list_identities(ctx, req):
    items = [_public(d) for d in ctx.store.list(MSI, f"/subscriptions/{req.params['subscriptionId']}")]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


# --- principals ----------------------------------------------------------------------------------

def _principal(ctx, principal_id):
    """(principalType, created epoch or None) of a known principal, else None."""
    pid = (principal_id or "").lower()
    for doc in ctx.store.list(MSI):
        if doc["properties"]["principalId"].lower() == pid:
            return "ServicePrincipal", doc.get("_created")
    if any(p.get("object_id", "").lower() == pid for p in ctx.principals()):
        return "ServicePrincipal", None
    return None


def _principal_not_found(ctx, principal_id):
    return ArmError(400, "PrincipalNotFound",
                    f"Principal {principal_id.replace('-', '')} does not exist in the directory {ctx.tenant_id}. "
                    "Check that you have the correct principal ID. If you are creating this principal and then "
                    "immediately assigning a role, this error might be related to a replication delay. In this "
                    "case, set the role assignment principalType property to a value, such as ServicePrincipal, "
                    "User, or Group.  See https://aka.ms/docs-principaltype")


def _principal_type(ctx, principal_id, requested_type):
    """The principalType to record; without one given, the directory must already know the principal."""
    known = _principal(ctx, principal_id)
    if requested_type:
        return requested_type
    if known is None:
        raise _principal_not_found(ctx, principal_id)
    kind, created = known
    delay = ctx.duration("principal_replication")
    if created is not None and ctx.clock.now() < created + delay:
        raise _principal_not_found(ctx, principal_id)
    return kind


# --- role definitions ----------------------------------------------------------------------------

def _definition_id(scope, guid):
    sub = _subscription_of(scope)
    prefix = f"/subscriptions/{sub}" if sub else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def _builtin_doc(scope, guid):
    role = BUILTIN_ROLES[guid]
    return {"id": _definition_id(scope, guid), "name": guid, "type": DEFINITION,
            "properties": {"roleName": role["roleName"], "type": "BuiltInRole", "description": role["description"],
                           "assignableScopes": ["/"],
                           "permissions": [{"actions": role["actions"], "notActions": role["notActions"],
                                            "dataActions": [], "notDataActions": []}],
                           "createdOn": BUILTIN_DATE, "updatedOn": BUILTIN_DATE, "createdBy": None, "updatedBy": None}}


def _custom_roles(ctx):
    return ctx.store.list(DEFINITION)


def role_definition(ctx, scope, guid):
    """A built-in or custom role definition by GUID, as seen from `scope`, or None."""
    guid = (guid or "").lower()
    if guid in BUILTIN_ROLES:
        return _builtin_doc(scope, guid)
    return next((d for d in _custom_roles(ctx) if d["name"].lower() == guid), None)


def _no_role_definition(guid, status):
    return ArmError(status, "RoleDefinitionDoesNotExist",
                    f"The specified role definition with ID '{guid}' does not exist.")


def _all_definitions(ctx, scope):
    return [_builtin_doc(scope, g) for g in BUILTIN_ROLES] + _custom_roles(ctx)


def has_permission(ctx, principal_id, action, scope):
    """Whether role assignments give `principal_id` the right to `action` on `scope` (or above it)."""
    pid = (principal_id or "").lower()
    for assignment in ctx.store.list(ASSIGNMENT):
        props = assignment["properties"]
        if props["principalId"].lower() != pid or not scope_covers(props["scope"], scope):
            continue
        definition = role_definition(ctx, props["scope"], guid_of(props["roleDefinitionId"]))
        if definition and permits(definition["properties"]["permissions"], action):
            return True
    return False


def _definition_routes(method, operation_id, action, with_name=True):
    """Register one handler for role definitions at every scope shape (tenant, subscription, group, resource)."""
    def register(fn):
        for scope in _SCOPES:
            suffix = "/providers/Microsoft.Authorization/roleDefinitions" + ("/{roleDefinitionId}" if with_name else "")
            route(method, scope + suffix, operation_id=operation_id, action=action)(fn)
        return fn
    return register


def _assignment_routes(method, action, operation_ids, with_name=True):
    def register(fn):
        for scope, operation_id in zip(_SCOPES[1:], operation_ids):
            suffix = "/providers/Microsoft.Authorization/roleAssignments" + \
                ("/{roleAssignmentName}" if with_name else "")
            route(method, scope + suffix, operation_id=operation_id, action=action)(fn)
        return fn
    return register


_RESOURCE = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{resourceProviderNamespace}"
_SCOPES = ("",
           "/subscriptions/{subscriptionId}",
           "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
           _RESOURCE + "/{type1}/{name1}",
           _RESOURCE + "/{type1}/{name1}/{type2}/{name2}",
           _RESOURCE + "/{type1}/{name1}/{type2}/{name2}/{type3}/{name3}")


@_definition_routes("GET", "RoleDefinitions_Get", "Microsoft.Authorization/roleDefinitions/read")
def get_role_definition(ctx, req):
    scope, _, guid = split_auth_path(req.path)
    doc = role_definition(ctx, scope, guid)
    if doc is None:
        raise _no_role_definition(guid, 404)
    return ok(doc)


@_definition_routes("GET", "RoleDefinitions_List", "Microsoft.Authorization/roleDefinitions/read", with_name=False)
def list_role_definitions(ctx, req):
    scope, _, _ = split_auth_path(req.path)
    wanted = parse_filter(req.query.get("$filter"))
    items = [d for d in _all_definitions(ctx, scope)
             if (wanted["roleName"] is None or d["properties"]["roleName"].lower() == wanted["roleName"].lower())
             and (wanted["type"] is None or d["properties"]["type"].lower() == wanted["type"].lower())]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@_definition_routes("PUT", "RoleDefinitions_CreateOrUpdate", "Microsoft.Authorization/roleDefinitions/write")
def put_role_definition(ctx, req):
    scope, _, guid = split_auth_path(req.path)
    if not _GUID.match(guid or "") or guid.lower() in BUILTIN_ROLES:
        raise ArmError(400, "InvalidRoleDefinitionId",
                       f"The role definition ID '{guid}' is not valid. The role definition ID must be a GUID that "
                       "names a custom role.")
    props = dict(((req.body or {}).get("properties")) or {})
    name = props.get("roleName")
    if not name:
        raise ArmError(400, "InvalidParameter", "Required parameter 'properties.roleName' is missing (null).",
                       target="properties.roleName")
    clash = next((d for d in _all_definitions(ctx, scope) if d["properties"]["roleName"].lower() == name.lower()
                  and d["name"].lower() != guid.lower()), None)
    if clash:
        raise ArmError(409, "RoleDefinitionWithSameNameExists",
                       "A custom role with the same name already exists in this directory. Use a different name.")
    rid = _definition_id(f"/subscriptions/{_subscription_of(scope) or ctx.subscription_id}", guid.lower())
    current = ctx.store.get(rid)
    now = ctx.clock.iso()
    props.update(type="CustomRole", assignableScopes=props.get("assignableScopes") or [scope],
                 permissions=[dict({"notActions": [], "dataActions": [], "notDataActions": []}, **p)
                              for p in props.get("permissions") or []],
                 createdOn=(current or {}).get("properties", {}).get("createdOn", now), updatedOn=now,
                 createdBy=req.principal["object_id"] if req.principal else None)
    doc = {"id": rid, "name": guid.lower(), "type": DEFINITION, "properties": props}
    ctx.store.put(rid, doc, DEFINITION)
    return Response(201, doc)


@_definition_routes("DELETE", "RoleDefinitions_Delete", "Microsoft.Authorization/roleDefinitions/delete")
def delete_role_definition(ctx, req):
    _, _, guid = split_auth_path(req.path)
    doc = next((d for d in _custom_roles(ctx) if d["name"].lower() == (guid or "").lower()), None)
    if doc is None:
        return Response(204)
    ctx.store.delete(doc["id"])
    return ok(doc)


# --- role assignments ----------------------------------------------------------------------------

_NAMESPACES_MODELED = ("microsoft.compute", "microsoft.network", "microsoft.managedidentity",
                       "microsoft.virtualmachineimages")


def _check_scope(ctx, scope):
    """The scope must exist: subscription, resource group, or a resource of a namespace the emulator models."""
    parts = scope.strip("/").split("/")
    if _subscription_of(scope) and _subscription_of(scope).lower() != ctx.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
    if len(parts) >= 4:
        ctx.require_resource_group(parts[1], parts[3])
    if len(parts) > 4 and parts[5].lower() in _NAMESPACES_MODELED and not ctx.store.exists(scope):
        raise not_found("/".join([parts[5]] + parts[6:-1:2]), "/".join(parts[7::2]), parts[3])


def _assignment_doc(ctx, req, scope, name, props, current):
    guid = guid_of(props.get("roleDefinitionId"))
    if guid is None or role_definition(ctx, scope, guid) is None:
        raise _no_role_definition(guid or props.get("roleDefinitionId"), 400)
    principal_type = _principal_type(ctx, props["principalId"], props.get("principalType"))
    now = ctx.clock.iso()
    caller = req.principal["object_id"] if req.principal else None
    return {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
            "type": ASSIGNMENT,
            "properties": {"roleDefinitionId": _definition_id(scope, guid), "principalId": props["principalId"],
                           "principalType": principal_type, "scope": scope,
                           "condition": props.get("condition"), "conditionVersion": props.get("conditionVersion"),
                           "createdOn": (current or {}).get("properties", {}).get("createdOn", now), "updatedOn": now,
                           "createdBy": (current or {}).get("properties", {}).get("createdBy", caller),
                           "updatedBy": caller, "delegatedManagedIdentityResourceId":
                               props.get("delegatedManagedIdentityResourceId"),
                           "description": props.get("description")}}


def _same_assignment(a, b):
    pa, pb = a["properties"], b["properties"]
    return (pa["principalId"].lower() == pb["principalId"].lower()
            and guid_of(pa["roleDefinitionId"]) == guid_of(pb["roleDefinitionId"])
            and pa["scope"].rstrip("/").lower() == pb["scope"].rstrip("/").lower())


@_assignment_routes("PUT", "Microsoft.Authorization/roleAssignments/write", ["RoleAssignments_Create"] * 5)
def put_role_assignment(ctx, req):
    scope, _, name = split_auth_path(req.path)
    if not _GUID.match(name or ""):
        raise ArmError(400, "InvalidRoleAssignmentId",
                       f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
    props = (req.body or {}).get("properties") or {}
    for key in ("roleDefinitionId", "principalId"):
        if not props.get(key):
            raise ArmError(400, "InvalidParameter", f"Required parameter 'properties.{key}' is missing (null).",
                           target=f"properties.{key}")
    _check_scope(ctx, scope)
    rid = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
    current = ctx.store.get(rid)
    doc = _assignment_doc(ctx, req, scope, name, props, current)
    if current is not None and not _same_assignment(current, doc):
        raise ArmError(400, "RoleAssignmentUpdateNotPermitted",
                       "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
    if current is None and any(_same_assignment(a, doc) for a in ctx.store.list(ASSIGNMENT)):
        raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    ctx.store.put(rid, doc, ASSIGNMENT)
    return Response(201, doc)


def _assignment(ctx, req):
    scope, _, name = split_auth_path(req.path)
    return ctx.store.get(f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"), name


@_assignment_routes("GET", "Microsoft.Authorization/roleAssignments/read", ["RoleAssignments_Get"] * 5)
def get_role_assignment(ctx, req):
    doc, name = _assignment(ctx, req)
    if doc is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
    return ok(doc)


@_assignment_routes("DELETE", "Microsoft.Authorization/roleAssignments/delete", ["RoleAssignments_Delete"] * 5)
def delete_role_assignment(ctx, req):
    doc, _ = _assignment(ctx, req)
    if doc is None:
        return Response(204)
    ctx.store.delete(doc["id"])
    return ok(doc)


def _listed(assignment, scope, wanted):
    """ARM's list semantics: at, above and below the scope; atScope()/assignedTo() keep at-or-above only."""
    props = assignment["properties"]
    above = scope_covers(props["scope"], scope)
    below = scope_covers(scope, props["scope"])
    principal = wanted["principalId"] or wanted["assignedTo"]
    if principal and props["principalId"].lower() != principal.lower():
        return False
    if wanted["atScope"] or wanted["assignedTo"]:
        return above
    return above or below


@_assignment_routes("GET", "Microsoft.Authorization/roleAssignments/read",
                    ["RoleAssignments_ListForSubscription", "RoleAssignments_ListForResourceGroup"]
                    + ["RoleAssignments_ListForResource"] * 3, with_name=False)
def list_role_assignments(ctx, req):
    scope, _, _ = split_auth_path(req.path)
    wanted = parse_filter(req.query.get("$filter"))
    items = [a for a in ctx.store.list(ASSIGNMENT) if _listed(a, scope, wanted)]
    return ok(page(req, items, ctx.base_url, ctx.page_size))
