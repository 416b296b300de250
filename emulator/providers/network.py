"""Microsoft.Network, just enough for scale sets to live in: virtual networks + subnets, public IP addresses,
load balancers (frontends, backend pools, probes, rules, inbound NAT pools and rules), and the network interfaces
of Flexible scale-set instances (read-only: compute owns them and renders them through `ctx.nic_sources`; the NICs
of Uniform sets are served under the scale set, compute/nics.py).

No spec files for Microsoft.Network are in ../shared/azure-specs, so requests are checked by the rules
below (the ones Azure applies to the fields we model). Writes complete synchronously with
provisioningState Succeeded, which the SDK's poller accepts without polling.

Inbound NAT (how an operator reaches one instance, loadBalancer.json): a Uniform scale set's IP configuration
names `inboundNatPools`; Azure then shows one generated rule per instance in the load balancer's `inboundNatRules`,
named `{pool}.{instanceId}`, frontend port `frontendPortRangeStart + instanceId` (the "50000 + n -> 22" of the
quickstarts), `backendIPConfiguration` the instance NIC's IP configuration, and the NIC's IP configuration lists
it in `loadBalancerInboundNatRules` (compute/nics.py). Rules written on the load balancer are kept as given.

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
PIP = "Microsoft.Network/publicIPAddresses"
# Addresses handed out to public IPs (documentation range: no real host answers there).
PUBLIC_RANGE = ipaddress.ip_network("203.0.113.0/24")
LB_CHILDREN = {  # property name -> child type segment
    "frontendIPConfigurations": "frontendIPConfigurations",
    "backendAddressPools": "backendAddressPools",
    "probes": "probes",
    "loadBalancingRules": "loadBalancingRules",
    "inboundNatPools": "inboundNatPools",
    "inboundNatRules": "inboundNatRules",
}
# Read-only properties of a child (loadBalancer.json): computed on read, ignored when a client echoes them.
LB_CHILD_READ_ONLY = ("provisioningState", "backendIPConfigurations", "loadBalancingRules", "inboundNatRules",
                      "inboundNatPools", "outboundRule", "outboundRules", "backendIPConfiguration")


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


def _prepare(ctx, req, rid, located=True):
    """(current doc, body) of a PUT, after the checks every PUT has (a top-level resource needs a location)."""
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    current = ctx.store.get(rid)
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    if located and not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    return current, body


def _listed(ctx, req, rtype, read):
    """The resource group's resources of one type, each as ``read(ctx, id)`` renders it, paged."""
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    items = [read(ctx, doc["id"]) for doc in ctx.store.list(rtype, _base_id(ctx, req))]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


def _found(ctx, req, doc, kind, name):
    """The doc, else Azure's 404 (after the 404 of a missing resource group)."""
    if doc is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise _not_found(kind, req, name=name)
    return doc


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
    return _listed(ctx, req, VNET, _read_vnet)


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
    current, body = _prepare(ctx, req, rid, located=False)
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
    for frontend in out["frontendIPConfigurations"]:
        public_ip = (frontend["properties"].get("publicIPAddress") or {}).get("id")
        if public_ip:
            require_reference(ctx, public_ip, lb_id)
            frontend["properties"]["publicIPAddress"] = {"id": public_ip}
    # A client that echoes a GET sends back the rules Azure generated from the NAT pools: not its own rules.
    pools = {p["name"].lower() for p in out["inboundNatPools"]}
    out["inboundNatRules"] = [r for r in out["inboundNatRules"] if not _generated_name(r["name"], pools)]
    for nat in out["inboundNatPools"] + out["inboundNatRules"]:
        _check_nat(nat)
    for rule in out["loadBalancingRules"] + out["inboundNatPools"] + out["inboundNatRules"]:
        for ref in ("frontendIPConfiguration", "backendAddressPool", "probe"):
            ref_id = (rule["properties"].get(ref) or {}).get("id")
            if ref_id and ref_id.lower() not in known:
                raise ArmError(400, "InvalidResourceReference",
                               f"Resource {ref_id} referenced by resource {lb_id} was not found.")
    return out


def _generated_name(name, pools):
    pool, _, index = str(name).rpartition(".")
    return pool.lower() in pools and index.isdigit()


def _port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _check_nat(nat):
    """What the spec requires of an inbound NAT pool (InboundNatPoolPropertiesFormat: protocol, the frontend port
    range and the backend port; the frontend is optional) and checks of a rule's fields when given."""
    p, name = nat["properties"], nat["name"]
    pool = nat["type"].endswith("inboundNatPools")
    kind = "inboundNatPools" if pool else "inboundNatRules"
    if (pool or "protocol" in p) and p.get("protocol") not in ("Tcp", "Udp", "All"):
        raise ArmError(400, "InvalidRequestFormat", f"{kind} {name}: protocol must be Tcp, Udp or All.",
                       target=f"properties.{kind}.properties.protocol")
    ranged = ("frontendPortRangeStart", "frontendPortRangeEnd", "backendPort")
    for field in (ranged if pool else ("frontendPort", "backendPort") + ranged[:2]):
        if (pool or field in p) and not _port(p.get(field)):
            raise ArmError(400, "InvalidRequestFormat", f"{kind} {name}: {field} must be 1-65535.",
                           target=f"properties.{kind}.properties.{field}")
    if _port(p.get("frontendPortRangeStart")) and _port(p.get("frontendPortRangeEnd")) \
            and p["frontendPortRangeStart"] > p["frontendPortRangeEnd"]:
        raise ArmError(400, "InvalidRequestFormat",
                       f"{kind} {name}: frontendPortRangeStart is greater than frontendPortRangeEnd.",
                       target=f"properties.{kind}.properties.frontendPortRangeStart")
    p.setdefault("idleTimeoutInMinutes", 4)
    p.setdefault("enableFloatingIP", False)
    p.setdefault("enableTcpReset", False)


@route("PUT", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_CreateOrUpdate")
def put_lb(ctx, req):
    rid = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    current, body = _prepare(ctx, req, rid)
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
    props = lb["properties"]
    props["inboundNatRules"] = [r for r in props.get("inboundNatRules", [])
                                if not _generated_name(r["name"], {p["name"].lower() for p in
                                                                   props.get("inboundNatPools", [])})]
    for nat_pool in props.get("inboundNatPools", []):
        props["inboundNatRules"].extend(generated_nat_rules(ctx, lb_id, nat_pool))
    return lb


def nat_rule_name(nat_pool_name, instance_id):
    return f"{nat_pool_name}.{instance_id}"


def generated_nat_rules(ctx, lb_id, nat_pool):
    """The rules Azure shows for the instances in an inbound NAT pool: one per instance, its frontend port
    frontendPortRangeStart + instance id. (Azure refuses a scale-out past the range's end; not modelled.)"""
    p = nat_pool["properties"]
    out = []
    for instance_id, ipc_id in [m for hook in ctx.nat_pool_members for m in hook(ctx, nat_pool["id"])]:
        port = p["frontendPortRangeStart"] + int(instance_id)
        name = nat_rule_name(nat_pool["name"], instance_id)
        out.append({"id": f"{lb_id}/inboundNatRules/{name}", "name": name, "etag": nat_pool.get("etag"),
                    "type": f"{LB}/inboundNatRules",
                    "properties": {"provisioningState": "Succeeded",
                                   "frontendIPConfiguration": p.get("frontendIPConfiguration"),
                                   "backendIPConfiguration": {"id": ipc_id}, "protocol": p["protocol"],
                                   "frontendPort": port, "backendPort": p["backendPort"],
                                   "idleTimeoutInMinutes": p.get("idleTimeoutInMinutes", 4),
                                   "enableFloatingIP": p.get("enableFloatingIP", False),
                                   "enableTcpReset": p.get("enableTcpReset", False)}})
        if not p.get("frontendIPConfiguration"):
            del out[-1]["properties"]["frontendIPConfiguration"]
    return out


def _with_members(ctx, pool):
    """A backend pool with its read-only backendIPConfigurations: the NIC IP configurations of the
    instances in it now (see compute's pool_members); the property is absent when the pool is empty."""
    members = [ip for hook in ctx.pool_members for ip in hook(ctx, pool["id"])]
    pool["properties"].pop("backendIPConfigurations", None)
    if members:
        pool["properties"]["backendIPConfigurations"] = [{"id": m} for m in members]
    return pool


def _lb_of(ctx, req):
    """The load balancer the request names, rendered (pool members, NAT rules), or its 404."""
    name = req.params["loadBalancerName"]
    return _found(ctx, req, _read_lb(ctx, f"{_base_id(ctx, req)}/loadBalancers/{name}"), "loadBalancers", name)


@route("GET", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_Get")
def get_lb(ctx, req):
    return ok(_lb_of(ctx, req))


@route("GET", _NS + "/loadBalancers", operation_id="LoadBalancers_List")
def list_lbs(ctx, req):
    return _listed(ctx, req, LB, _read_lb)


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
    lb = _lb_of(ctx, req)
    return ok(page(req, lb["properties"].get("backendAddressPools", []), ctx.base_url, ctx.page_size))


@route("POST", _NS + "/loadBalancers/{loadBalancerName}/backendAddressPools/{backendPoolName}"
       "/queryInboundNatRulePortMapping", operation_id="LoadBalancers_ListInboundNatRulePortMappings")
def query_port_mappings(ctx, req):
    """The frontend ports of one backend address under the load balancer's inbound NAT rules for this pool
    (the "V2" rules, Flexible's way): the k-th member of the pool gets frontendPortRangeStart + k. Azure keeps a
    member's port while it stays; here the order is the pool's (instances in creation order)."""
    lb_id = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    pool = _found(ctx, req, ctx.store.get(f"{lb_id}/backendAddressPools/{req.params['backendPoolName']}"),
                  "loadBalancers/backendAddressPools", req.params["backendPoolName"])
    body = req.body if isinstance(req.body, dict) else {}
    ipc_id = (body.get("ipConfiguration") or {}).get("id")
    if not ipc_id:
        raise ArmError(400, "InvalidRequestFormat", "Give the backend address as ipConfiguration.id.",
                       target="ipConfiguration")
    members = [c["id"].lower() for c in _with_members(ctx, pool)["properties"].get("backendIPConfigurations") or []]
    if ipc_id.lower() not in members:
        raise ArmError(400, "BackendAddressNotFoundInBackendPool",
                       f"The backend address {ipc_id} is not in backend pool {pool['id']}.")
    index = members.index(ipc_id.lower())
    mappings = []
    for rule in ctx.store.list(f"{LB}/inboundNatRules", lb_id):
        p = rule["properties"]
        if (p.get("backendAddressPool") or {}).get("id", "").lower() == pool["id"].lower() \
                and p.get("frontendPortRangeStart"):
            mappings.append({"inboundNatRuleName": rule["name"], "protocol": p.get("protocol"),
                             "frontendPort": p["frontendPortRangeStart"] + index, "backendPort": p["backendPort"]})
    return ok({"inboundNatRulePortMappings": mappings})


@route("GET", _NS + "/loadBalancers/{loadBalancerName}/inboundNatRules", operation_id="InboundNatRules_List")
def list_nat_rules(ctx, req):
    return ok(page(req, _lb_of(ctx, req)["properties"]["inboundNatRules"], ctx.base_url, ctx.page_size))


@route("GET", _NS + "/loadBalancers/{loadBalancerName}/inboundNatRules/{inboundNatRuleName}",
       operation_id="InboundNatRules_Get")
def get_nat_rule(ctx, req):
    lb = _lb_of(ctx, req)
    wanted = req.params["inboundNatRuleName"].lower()
    for rule in lb["properties"]["inboundNatRules"]:
        if rule["name"].lower() == wanted:
            return ok(rule)
    raise _not_found("loadBalancers/inboundNatRules", req, name=req.params["inboundNatRuleName"])


@route("DELETE", _NS + "/loadBalancers/{loadBalancerName}", operation_id="LoadBalancers_Delete")
def delete_lb(ctx, req):
    rid = f"{_base_id(ctx, req)}/loadBalancers/{req.params['loadBalancerName']}"
    ctx.store.delete_tree(rid)
    return ok(None)


# --- public IP addresses ------------------------------------------------------------------------

def _allocate_public_ip(ctx):
    used = {d["properties"].get("ipAddress") for d in ctx.store.list(PIP)}
    for address in PUBLIC_RANGE.hosts():
        if str(address) not in used:
            return str(address)
    raise ArmError(400, "PublicIPCountLimitReached", "Cannot create more public IP addresses in this subscription.")


def _users_of_public_ip(ctx, pip_id):
    """The frontend IP configuration that uses the public IP (Azure's read-only ipConfiguration), or None."""
    for frontend in ctx.store.list(f"{LB}/frontendIPConfigurations"):
        if ((frontend["properties"].get("publicIPAddress") or {}).get("id") or "").lower() == pip_id.lower():
            return frontend["id"]
    return None


def _read_public_ip(ctx, pip_id):
    doc = ctx.store.get(pip_id)
    if doc is None:
        return None
    user = _users_of_public_ip(ctx, pip_id)
    doc["properties"].pop("ipConfiguration", None)
    if user:
        doc["properties"]["ipConfiguration"] = {"id": user}
    return doc


@route("PUT", _NS + "/publicIPAddresses/{publicIpAddressName}", operation_id="PublicIPAddresses_CreateOrUpdate")
def put_public_ip(ctx, req):
    rid = f"{_base_id(ctx, req)}/publicIPAddresses/{req.params['publicIpAddressName']}"
    current, body = _prepare(ctx, req, rid)
    read_only = ("ipAddress", "ipConfiguration", "provisioningState")
    props = {k: v for k, v in (body.get("properties") or {}).items() if k not in read_only}
    sku = body.get("sku") or {"name": "Standard", "tier": "Regional"}
    method = props.get("publicIPAllocationMethod") or ("Static" if sku.get("name") == "Standard" else "Dynamic")
    if sku.get("name") == "Standard" and method != "Static":
        raise ArmError(400, "StandardSkuPublicIPAddressesCannotBeDynamic",
                       "Standard sku publicIp addresses cannot be Dynamic; use Static.",
                       target="properties.publicIPAllocationMethod")
    kept = (current or {}).get("properties", {})
    props.update(publicIPAllocationMethod=method, provisioningState="Succeeded",
                 publicIPAddressVersion=props.get("publicIPAddressVersion") or "IPv4",
                 idleTimeoutInMinutes=props.get("idleTimeoutInMinutes") or 4,
                 ipAddress=kept.get("ipAddress") or _allocate_public_ip(ctx),
                 resourceGuid=kept.get("resourceGuid") or str(uuid.uuid4()))
    doc = {"id": rid, "name": req.params["publicIpAddressName"], "type": PIP, "location": body["location"],
           "tags": body.get("tags", {}), "etag": new_etag(), "sku": sku, "properties": props}
    if body.get("zones"):
        doc["zones"] = body["zones"]
    ctx.store.put(rid, doc, PIP)
    return ok(_read_public_ip(ctx, rid)) if current else created(_read_public_ip(ctx, rid))


@route("GET", _NS + "/publicIPAddresses/{publicIpAddressName}", operation_id="PublicIPAddresses_Get")
def get_public_ip(ctx, req):
    name = req.params["publicIpAddressName"]
    return ok(_found(ctx, req, _read_public_ip(ctx, f"{_base_id(ctx, req)}/publicIPAddresses/{name}"),
                     "publicIPAddresses", name))


@route("GET", _NS + "/publicIPAddresses", operation_id="PublicIPAddresses_List")
def list_public_ips(ctx, req):
    return _listed(ctx, req, PIP, _read_public_ip)


@route("DELETE", _NS + "/publicIPAddresses/{publicIpAddressName}", operation_id="PublicIPAddresses_Delete")
def delete_public_ip(ctx, req):
    rid = f"{_base_id(ctx, req)}/publicIPAddresses/{req.params['publicIpAddressName']}"
    if not ctx.store.exists(rid):
        return Response(204)
    user = _users_of_public_ip(ctx, rid)
    if user:
        raise ArmError(400, "PublicIPAddressInUse", f"Public IP address {rid} can not be deleted since it is still "
                                                    f"allocated to resource {user}.")
    ctx.store.delete(rid)
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
