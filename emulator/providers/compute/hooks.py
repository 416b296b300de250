"""What compute tells the rest of the emulator: subnets in use, load-balancer pool members, and the
cleanup a resource-group delete needs.

Registered on every Emulator as it is built (`app.on_start`).
"""
from emulator.app import on_start
from emulator.providers.compute import instances
from emulator.providers.compute import model as m


@on_start
def register(ctx):
    ctx.subnet_users.append(subnet_user)
    ctx.pool_members.append(pool_members)
    ctx.delete_hooks.append(on_resource_group_delete)


def _ip_configs(vm_profile):
    for nic in ((vm_profile or {}).get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in (nic.get("properties") or {}).get("ipConfigurations") or []:
            yield nic.get("name"), ipc.get("name"), ipc.get("properties") or {}


def subnet_user(ctx, subnet_id):
    """The name of a scale set whose model uses the subnet, or None."""
    for doc in ctx.store.list(m.VMSS_TYPE):
        for _, _, p in _ip_configs(m.profile(doc)):
            if ((p.get("subnet") or {}).get("id") or "").lower() == subnet_id.lower():
                return doc["id"]
    return None


def pool_members(ctx, pool_id):
    """IP configuration ids of scale-set instances in a load balancer backend pool."""
    out = []
    for doc in ctx.store.list(m.VMSS_TYPE):
        configs = [(nic, ipc) for nic, ipc, p in _ip_configs(m.profile(doc))
                   if any((ref.get("id") or "").lower() == pool_id.lower()
                          for ref in p.get("loadBalancerBackendAddressPools") or [])]
        if not configs:
            continue
        for view in instances.list_instances(ctx, doc["id"]):
            for nic, ipc in configs:
                out.append(nic_id(doc, view, nic) + f"/ipConfigurations/{ipc}")
    return out


def nic_id(vmss_doc, view, nic_name):
    """The id of an instance's NIC (Uniform NICs live under the scale set, Flexible ones in the group)."""
    if view["mode"] == "Flexible":
        rg = vmss_doc["id"].split("/providers/")[0]
        return f"{rg}/providers/Microsoft.Network/networkInterfaces/{view['name']}-{nic_name}"
    return f"{vmss_doc['id']}/virtualMachines/{view['instanceId']}/networkInterfaces/{nic_name}"


def on_resource_group_delete(ctx, rg_id):
    """The group's rows go with delete_tree; our per-set state in kv goes here."""
    for doc in ctx.store.list(m.VMSS_TYPE, rg_id):
        instances.forget_scale_set(ctx, doc["id"])
