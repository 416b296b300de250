"""Microsoft.Network, just enough for scale sets to live in: virtual networks + subnets, load balancers,
and the network interfaces of Flexible scale-set instances (read-only: compute owns them and renders them
through `ctx.nic_sources`; the NICs of Uniform sets are served under the scale set, compute/nics.py).

No spec files for Microsoft.Network are in ../shared/azure-specs, so requests are checked by the rules
below (the ones Azure applies to the fields we model). Writes complete synchronously with
provisioningState Succeeded, which the SDK's poller accepts without polling.

Sub-resources (subnets, backend pools, probes, frontend IP configurations, rules) are also stored at
their own ids, so other providers resolve references with `ctx.store.get(id)` / `require_reference`.
"""
import ipaddress
import uuid

from emulator.arm import ArmError, Response, check_etag, created, new_etag, ok, page
from emulator.server import route

_NS = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
LB = "Microsoft.Network/loadBalancers"
LB_CHILDREN = {  # property name -> child type segment
    "frontendIPConfigurations": "frontendIPConfigurations",
    "backendAddressPools": "backendAddressPools",
    "probes": "probes",
    "loadBalancingRules": "loadBalancingRules",
}
# Read-only properties of a child (loadBalancer.json): computed on read, ignored when a client echoes them.
LB_CHILD_READ_ONLY = ("provisioningState", "backendIPConfigurations", "loadBalancingRules", "inboundNatRules",
                      "outboundRule", "outboundRules")


def require_reference(ctx, ref_id, referenced_by):
    """The referenced sub-resource's doc, or Azure's 400 InvalidResourceReference."""
    doc = ctx.store.get(ref_id) if isinstance(ref_id, str) else None
    if doc is None:
        raise ArmError(400, "InvalidResourceReference",
                       f"Resource {ref_id} referenced by resource {referenced_by} was not found. Please make sure "
                       "that the referenced resource exists, and that both resources are in the same region.")
    return doc


def subnet_prefix(ctx, subnet_id):
    doc = ctx.store.get(subnet_id)
    return doc["properties"].get("addressPrefix") if doc else None


def _base_id(ctx, req):
    p = req.params
    return (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
            "/providers/Microsoft.Network")


def _prepare(ctx, req, rid):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    current = ctx.store.get(rid)
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    return current, body


def _network(prefix, target):
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except (ValueError, TypeError):
        raise ArmError(400, "InvalidAddressPrefixFormat", f"Address prefix {prefix!r} has an invalid format.",
                       target=target)


# --- virtual networks and subnets ---------------------------------------------------------------

def _subnet_doc(vnet_id, name, props, spaces):
    prefix = props.get("addressPrefix")
    if not prefix:
        raise ArmError(400, "InvalidRequestFormat", f"Subnet {name} needs properties.addressPrefix.",
                       target="properties.subnets.properties.addressPrefix")
    net = _network(prefix, "properties.subnets.properties.addressPrefix")
    if not any(net.subnet_of(space) for space in spaces if space.version == net.version):
        raise ArmError(400, "NetcfgSubnetRangeOutsideVnet",
                       f"Subnet '{name}' is not valid because its IP address range is outside the IP address "
                       "range of virtual network.")
    out = {"id": f"{vnet_id}/subnets/{name}", "name": name, "type": SUBNET, "etag": new_etag(),
           "properties": dict(props, provisioningState="Succeeded")}
    return out


def _store_vnet(ctx, vnet):
    """Store the vnet and each subnet at its own id (the vnet's copy is rebuilt on read)."""
    for subnet in vnet["properties"].get("subnets", []):
        ctx.store.put(subnet["id"], subnet, SUBNET)
    stored = dict(vnet, properties={k: v for k, v in vnet["properties"].items() if k != "subnets"})
    ctx.store.put(vnet["id"], stored, VNET)


def _read_vnet(ctx, vnet_id):
    vnet = ctx.store.get(vnet_id)
    if vnet is None:
        return None
    vnet["properties"]["subnets"] = ctx.store.list(SUBNET, vnet_id)
    return vnet


@route("PUT", _NS + "/virtualNetworks/{virtualNetworkName}", operation_id="VirtualNetworks_CreateOrUpdate")
def put_vnet(ctx, req):
    rid = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}"
    current, body = _prepare(ctx, req, rid)
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    props = body.get("properties") or {}
    prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
    if not prefixes:
        raise ArmError(400, "InvalidRequestFormat", "properties.addressSpace.addressPrefixes is required.",
                       target="properties.addressSpace.addressPrefixes")
    spaces = [_network(p, "properties.addressSpace.addressPrefixes") for p in prefixes]
    subnets = [_subnet_doc(rid, s.get("name"), s.get("properties") or {}, spaces) for s in props.get("subnets", [])]
    vnet = {"id": rid, "name": req.params["virtualNetworkName"], "type": VNET, "location": body["location"],
            "tags": body.get("tags", {}), "etag": new_etag(),
            "properties": {"provisioningState": "Succeeded",
                           "resourceGuid": (current or {}).get("properties", {}).get("resourceGuid", str(uuid.uuid4())),
                           "addressSpace": {"addressPrefixes": prefixes}, "subnets": subnets}}
    for stale in ctx.store.ids(SUBNET, rid):
        if stale.rsplit("/", 1)[1].lower() not in {s["name"].lower() for s in subnets}:
            ctx.store.delete(stale)
    _store_vnet(ctx, vnet)
    return ok(vnet) if current else created(vnet)


@route("GET", _NS + "/virtualNetworks/{virtualNetworkName}", operation_id="VirtualNetworks_Get")
def get_vnet(ctx, req):
    rid = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}"
    vnet = _read_vnet(ctx, rid)
    if vnet is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _not_found("virtualNetworks", req)
    return ok(vnet)


@route("GET", _NS + "/virtualNetworks", operation_id="VirtualNetworks_List")
def list_vnets(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    items = [_read_vnet(ctx, v["id"]) for v in ctx.store.list(VNET, _base_id(ctx, req))]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("DELETE", _NS + "/virtualNetworks/{virtualNetworkName}", operation_id="VirtualNetworks_Delete")
def delete_vnet(ctx, req):
    rid = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}"
    if not ctx.store.exists(rid):
        return Response(204)
    for subnet_id in ctx.store.ids(SUBNET, rid):
        _refuse_if_in_use(ctx, subnet_id)
    ctx.store.delete_tree(rid)
    return ok(None)


@route("PUT", _NS + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", operation_id="Subnets_CreateOrUpdate")
def put_subnet(ctx, req):
    vnet_id = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}"
    vnet = ctx.store.get(vnet_id)
    if vnet is None:
        raise _not_found("virtualNetworks", req, name=req.params["virtualNetworkName"])
    rid = f"{vnet_id}/subnets/{req.params['subnetName']}"
    current, body = _prepare(ctx, req, rid)
    spaces = [_network(p, "addressSpace") for p in vnet["properties"]["addressSpace"]["addressPrefixes"]]
    subnet = _subnet_doc(vnet_id, req.params["subnetName"], body.get("properties") or {}, spaces)
    ctx.store.put(rid, subnet, SUBNET)
    return ok(subnet) if current else created(subnet)


@route("GET", _NS + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", operation_id="Subnets_Get")
def get_subnet(ctx, req):
    rid = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}/subnets/{req.params['subnetName']}"
    doc = ctx.store.get(rid)
    if doc is None:
        raise _not_found("virtualNetworks/subnets", req, name=req.params["subnetName"])
    return ok(doc)


@route("DELETE", _NS + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", operation_id="Subnets_Delete")
def delete_subnet(ctx, req):
    rid = f"{_base_id(ctx, req)}/virtualNetworks/{req.params['virtualNetworkName']}/subnets/{req.params['subnetName']}"
    if ctx.store.exists(rid):
        _refuse_if_in_use(ctx, rid)
        ctx.store.delete(rid)
    return ok(None)


def _refuse_if_in_use(ctx, subnet_id):
    for hook in ctx.subnet_users:
        user = hook(ctx, subnet_id)
        if user:
            raise ArmError(400, "InUseSubnetCannotBeDeleted",
                           f"Subnet {subnet_id.rsplit('/', 1)[1]} is in use by {user} and cannot be deleted.")


# --- load balancers -----------------------------------------------------------------------------

def _lb_children(ctx, lb_id, props):
    """Give each child its id/etag/type and check references between them."""
    out = {}
    for prop, segment in LB_CHILDREN.items():
        out[prop] = []
        for child in props.get(prop, []) or []:
            name = child.get("name")
            if not name:
                raise ArmError(400, "InvalidRequestFormat", f"Every item of properties.{prop} needs a name.",
                               target=f"properties.{prop}.name")
            props_in = {k: v for k, v in (child.get("properties") or {}).items() if k not in LB_CHILD_READ_ONLY}
            out[prop].append({"id": f"{lb_id}/{segment}/{name}", "name": name, "etag": new_etag(),
                              "type": f"{LB}/{segment}",
                              "properties": dict(props_in, provisioningState="Succeeded")})
    known = {c["id"].lower() for children in out.values() for c in children}
    for frontend in out["frontendIPConfigurations"]:
        subnet = (frontend["properties"].get("subnet") or {}).get("id")
        if subnet:
            require_reference(ctx, subnet, lb_id)
    for probe in out["probes"]:
        p = probe["properties"]
        if p.get("protocol") not in ("Http", "Https", "Tcp"):
            raise ArmError(400, "InvalidRequestFormat", "A probe's protocol must be Http, Https or Tcp.",
                           target="properties.probes.properties.protocol")
        if not isinstance(p.get("port"), int) or not 1 <= p["port"] <= 65535:
            raise ArmError(400, "InvalidRequestFormat", "A probe's port must be 1-65535.",
                           target="properties.probes.properties.port")
        if p["protocol"] != "Tcp" and not p.get("requestPath"):
            raise ArmError(400, "ProbeRequestPathRequired", f"Probe {probe['name']} needs a requestPath for {p['protocol']}.")
    for rule in out["loadBalancingRules"]:
        for ref in ("frontendIPConfiguration", "backendAddressPool", "probe"):
            ref_id = (rule["properties"].get(ref) or {}).get("id")
            if ref_id and ref_id.lower() not in known:
                raise ArmError(400, "InvalidResourceReference",
                               f"Resource {ref_id} referenced by resource {lb_id} was not found.")
    return out


@route("PUT", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_CreateOrUpdate")
def put_lb(ctx, req):
    rid = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    current, body = _prepare(ctx, req, rid)
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    props = body.get("properties") or {}
    children = _lb_children(ctx, rid, props)
    lb = {"id": rid, "name": req.params["loadBalancerName"], "type": LB, "location": body["location"],
          "tags": body.get("tags", {}), "etag": new_etag(), "sku": body.get("sku") or {"name": "Standard"},
          "properties": dict(props, provisioningState="Succeeded", **children)}
    for stale in _child_ids(ctx, rid):
        ctx.store.delete(stale)
    for kids in children.values():
        for child in kids:
            ctx.store.put(child["id"], child, child["type"])
    ctx.store.put(rid, lb, LB)
    return ok(_read_lb(ctx, rid)) if current else created(_read_lb(ctx, rid))


def _child_ids(ctx, lb_id):
    return [i for segment in LB_CHILDREN.values() for i in ctx.store.ids(f"{LB}/{segment}", lb_id)]


def _read_lb(ctx, lb_id):
    lb = ctx.store.get(lb_id)
    if lb is None:
        return None
    for pool in lb["properties"].get("backendAddressPools", []):
        _with_members(ctx, pool)
    return lb


def _with_members(ctx, pool):
    """A backend pool with its read-only backendIPConfigurations: the NIC IP configurations of the
    instances in it now (see compute's pool_members); the property is absent when the pool is empty."""
    members = [ip for hook in ctx.pool_members for ip in hook(ctx, pool["id"])]
    pool["properties"].pop("backendIPConfigurations", None)
    if members:
        pool["properties"]["backendIPConfigurations"] = [{"id": m} for m in members]
    return pool


@route("GET", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_Get")
def get_lb(ctx, req):
    lb = _read_lb(ctx, f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}")
    if lb is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _not_found("loadBalancers", req)
    return ok(lb)


@route("GET", _NS + "/loadBalancers", operation_id="LoadBalancers_List")
def list_lbs(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    items = [_read_lb(ctx, lb["id"]) for lb in ctx.store.list(LB, _base_id(ctx, req))]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("GET", _NS + "/loadBalancers/{loadBalancerName}/backendAddressPools/{backendAddressPoolName}",
       operation_id="LoadBalancerBackendAddressPools_Get")
def get_backend_pool(ctx, req):
    lb_id = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    pool = ctx.store.get(f"{lb_id}/backendAddressPools/{req.params['backendAddressPoolName']}")
    if pool is None:
        if not ctx.store.exists(lb_id):
            ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
            raise _not_found("loadBalancers", req, name=req.params["loadBalancerName"])
        raise _not_found("loadBalancers/backendAddressPools", req, name=req.params["backendAddressPoolName"])
    return ok(_with_members(ctx, pool))


@route("GET", _NS + "/loadBalancers/{loadBalancerName}/backendAddressPools",
       operation_id="LoadBalancerBackendAddressPools_List")
def list_backend_pools(ctx, req):
    lb = _read_lb(ctx, f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}")
    if lb is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _not_found("loadBalancers", req, name=req.params["loadBalancerName"])
    return ok(page(req, lb["properties"].get("backendAddressPools", []), ctx.base_url, ctx.page_size))


@route("DELETE", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_Delete")
def delete_lb(ctx, req):
    rid = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    ctx.store.delete_tree(rid)
    return ok(None)


# --- network interfaces (read-only) --------------------------------------------------------------

def _nics(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    rg_id = f"/subscriptions/{req.params['subscriptionId']}/resourceGroups/{req.params['resourceGroupName']}"
    return [nic for source in ctx.nic_sources for nic in source(ctx, rg_id)]


@route("GET", _NS + "/networkInterfaces", operation_id="NetworkInterfaces_List")
def list_nics(ctx, req):
    return ok(page(req, _nics(ctx, req), ctx.base_url, ctx.page_size))


@route("GET", _NS + "/networkInterfaces/{networkInterfaceName}", operation_id="NetworkInterfaces_Get")
def get_nic(ctx, req):
    wanted = req.params["networkInterfaceName"].lower()
    for nic in _nics(ctx, req):
        if nic["name"].lower() == wanted:
            return ok(nic)
    raise _not_found("networkInterfaces", req)


def _not_found(kind, req, name=None):
    name = name or next(v for k, v in req.params.items() if k.endswith("Name") and k != "resourceGroupName")
    return ArmError(404, "ResourceNotFound",
                    f"The Resource 'Microsoft.Network/{kind}/{name}' under resource group "
                    f"'{req.params['resourceGroupName']}' was not found.")
