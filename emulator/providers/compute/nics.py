"""Network interfaces of scale-set instances, in Microsoft.Network's NetworkInterface shape.

Azure creates one NIC per `networkInterfaceConfigurations` entry of the model, for every instance:

* Uniform: the NICs belong to the scale set
  (`.../virtualMachineScaleSets/{set}/virtualMachines/{id}/networkInterfaces/{nic}`) and are read with the
  Network API's scale-set calls, served here (azure-mgmt-network sends api-version 2018-10-01 for them):
  NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces (every NIC of the set, paged),
  NetworkInterfaces_ListVirtualMachineScaleSetVMNetworkInterfaces and
  NetworkInterfaces_GetVirtualMachineScaleSetNetworkInterface. Azure answers them for Uniform sets only.
* Flexible: ordinary `Microsoft.Network/networkInterfaces/{vm}-{nic}` resources of the set's resource group,
  served by network.py (NetworkInterfaces_List / _Get) through `ctx.nic_sources` (registered in hooks.py).

An IP configuration in an inbound NAT pool (Uniform) lists the rule Azure generated for the instance,
`loadBalancerInboundNatRules` (network.py renders the rules on the load balancer).
The instance's private IP (allocated from the subnet when it was created) is the address of the primary IP
configuration of the primary NIC; the emulator allocates one address per instance, so other IP
configurations carry none. A NIC renders the model the instance runs, not the set's latest.
No Microsoft.Network spec is in ../shared/azure-specs: the shape follows the public REST reference
(networkInterface.json / vmssNetworkInterface.json), and these operations are not sent to oav.
"""
import uuid

from emulator.arm import ArmError, ok, page
from emulator.providers.compute import instances as inst
from emulator.providers.compute import model as m
from emulator.providers.compute.handlers import RG, scale_set_of
from emulator.providers.network import nat_rule_name
from emulator.server import route

NIC_TYPE = "Microsoft.Network/networkInterfaces"
_NAMESPACE = uuid.UUID("0b5c3f2e-6d1a-4e8f-9a7b-3c2d1e0f4a5b")


def _primary(items):
    """The item flagged primary, else the first (Azure requires the flag once there are several)."""
    return next((i for i in items if (i.get("properties") or {}).get("primary")), items[0] if items else None)


def nic_configurations(vm_profile):
    return ((vm_profile or {}).get("networkProfile") or {}).get("networkInterfaceConfigurations") or []


def flexible_nic_id(vmss_doc, view, nic_name):
    """Flexible NICs live in the scale set's resource group, named after their VM."""
    rg = vmss_doc["id"].split("/providers/")[0]
    return f"{rg}/providers/Microsoft.Network/networkInterfaces/{view['name']}-{nic_name}"


def nic_id(vmss_doc, view, nic_name):
    if view["mode"] == "Flexible":
        return flexible_nic_id(vmss_doc, view, nic_name)
    return f"{vmss_doc['id']}/virtualMachines/{view['instanceId']}/networkInterfaces/{nic_name}"


def _mac(seed):
    digest = uuid.uuid5(_NAMESPACE, seed).hex[:10].upper()
    return "-".join(["00"] + [digest[i:i + 2] for i in range(0, 10, 2)])


def nat_rule_ids(ipc_props, view):
    """The load-balancer rules Azure generates for an instance from the model's inbound NAT pools
    (`{pool}.{instanceId}`, network.py): a NIC shows rules, never pools. Uniform only (Flexible has no pools)."""
    if view["mode"] == "Flexible":
        return []
    out = []
    for ref in ipc_props.get("loadBalancerInboundNatPools") or []:
        lb_id, _, pool = str(ref.get("id") or "").rpartition("/inboundNatPools/")
        if lb_id and pool:
            out.append(f"{lb_id}/inboundNatRules/{nat_rule_name(pool, view['instanceId'])}")
    return out


def nic_documents(vmss_doc, view, vm_profile):
    """The NetworkInterface documents of one instance (pure)."""
    configs = nic_configurations(vm_profile)
    primary_nic = _primary(configs)
    out = []
    for config in configs:
        props = config.get("properties") or {}
        rid = nic_id(vmss_doc, view, config.get("name"))
        ipcs = props.get("ipConfigurations") or []
        primary_ipc = _primary(ipcs)
        ip_configurations = []
        for ipc in ipcs:
            ipc_props = ipc.get("properties") or {}
            body = {"provisioningState": "Succeeded", "privateIPAllocationMethod": "Dynamic",
                    "privateIPAddressVersion": ipc_props.get("privateIPAddressVersion") or "IPv4",
                    "primary": ipc is primary_ipc}
            if (ipc_props.get("subnet") or {}).get("id"):
                body["subnet"] = {"id": ipc_props["subnet"]["id"]}
            if config is primary_nic and ipc is primary_ipc and view.get("ip"):
                body["privateIPAddress"] = view["ip"]
            for key in ("loadBalancerBackendAddressPools", "applicationGatewayBackendAddressPools",
                        "applicationSecurityGroups"):
                if ipc_props.get(key):
                    body[key] = [{"id": ref.get("id")} for ref in ipc_props[key]]
            nat_rules = nat_rule_ids(ipc_props, view)
            if nat_rules:
                body["loadBalancerInboundNatRules"] = [{"id": rule} for rule in nat_rules]
            ip_configurations.append({"name": ipc.get("name"), "id": f"{rid}/ipConfigurations/{ipc.get('name')}",
                                      "etag": f'W/"{view.get("etag", 1)}"', "properties": body})
        nic_props = {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid5(_NAMESPACE, rid.lower() + view["vmId"])),
            "ipConfigurations": ip_configurations,
            "dnsSettings": {"dnsServers": list((props.get("dnsSettings") or {}).get("dnsServers") or []),
                            "appliedDnsServers": []},
            "macAddress": _mac(rid.lower() + view["vmId"]),
            "enableAcceleratedNetworking": bool(props.get("enableAcceleratedNetworking")),
            "enableIPForwarding": bool(props.get("enableIPForwarding")),
            "primary": config is primary_nic,
            "virtualMachine": {"id": view["id"]},
        }
        if (props.get("networkSecurityGroup") or {}).get("id"):
            nic_props["networkSecurityGroup"] = {"id": props["networkSecurityGroup"]["id"]}
        doc = {"name": rid.rsplit("/", 1)[1], "id": rid, "type": NIC_TYPE, "location": view["location"],
               "etag": f'W/"{view.get("etag", 1)}"', "properties": nic_props}
        if view["mode"] == "Flexible" and vmss_doc.get("tags"):
            doc["tags"] = dict(vmss_doc["tags"])
        out.append(doc)
    return out


def instance_nics(ctx, vmss_doc, views):
    """NIC documents of the given instances of one scale set."""
    models = inst.models(ctx, vmss_doc["id"])
    return [nic for view in views
            for nic in nic_documents(vmss_doc, view, (models.get(view.get("model")) or {}).get("profile"))]


def flexible_nics(ctx, resource_group_id):
    """Every NIC of the Flexible scale sets of a resource group (a `ctx.nic_sources` hook)."""
    out = []
    for doc in ctx.store.list(m.VMSS_TYPE, resource_group_id + "/"):
        if m.mode_of(doc) == "Flexible":
            out.extend(instance_nics(ctx, doc, inst.list_instances(ctx, doc["id"])))
    return out


def _uniform_set(ctx, req):
    doc = scale_set_of(ctx, req)
    if m.mode_of(doc) == "Flexible":
        raise ArmError(400, "BadRequest", f"Operation 'VirtualMachineScaleSets.networkInterfaces.GET' is not allowed "
                                          f"on Virtual Machine Scale Set '{doc['name']}'.")
    return doc


def _instance(ctx, doc, instance_id):
    view = inst.get_instance(ctx, doc["id"], instance_id)
    if view is None:
        raise ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    return view


@route("GET", RG + "/virtualMachineScaleSets/{virtualMachineScaleSetName}/networkInterfaces",
       operation_id="NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces")
def list_scale_set_nics(ctx, req):
    doc = _uniform_set(ctx, req)
    return ok(page(req, instance_nics(ctx, doc, inst.list_instances(ctx, doc["id"])), ctx.base_url, ctx.page_size))


@route("GET", RG + "/virtualMachineScaleSets/{virtualMachineScaleSetName}/virtualMachines/{virtualmachineIndex}"
       "/networkInterfaces", operation_id="NetworkInterfaces_ListVirtualMachineScaleSetVMNetworkInterfaces")
def list_instance_nics(ctx, req):
    doc = _uniform_set(ctx, req)
    view = _instance(ctx, doc, req.params["virtualmachineIndex"])
    return ok(page(req, instance_nics(ctx, doc, [view]), ctx.base_url, ctx.page_size))


@route("GET", RG + "/virtualMachineScaleSets/{virtualMachineScaleSetName}/virtualMachines/{virtualmachineIndex}"
       "/networkInterfaces/{networkInterfaceName}",
       operation_id="NetworkInterfaces_GetVirtualMachineScaleSetNetworkInterface")
def get_instance_nic(ctx, req):
    doc = _uniform_set(ctx, req)
    view = _instance(ctx, doc, req.params["virtualmachineIndex"])
    wanted = req.params["networkInterfaceName"].lower()
    for nic in instance_nics(ctx, doc, [view]):
        if nic["name"].lower() == wanted:
            return ok(nic)
    raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Network/networkInterfaces/"
                                            f"{req.params['networkInterfaceName']}' under resource group "
                                            f"'{req.params['resourceGroupName']}' was not found.")
