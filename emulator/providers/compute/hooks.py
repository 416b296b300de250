"""What compute tells the rest of the emulator: subnets in use, load-balancer pool members, the NICs of
Flexible instances, and the cleanup a resource-group delete needs.

Registered on every Emulator as it is built (`app.on_start`).
"""
from emulator.app import on_start
from emulator.providers.compute import instances
from emulator.providers.compute import model as m
from emulator.providers.compute.nics import flexible_nics, nic_id


@on_start
def register(ctx):
    ctx.subnet_users.append(subnet_user)
    ctx.pool_members.append(pool_members)
    ctx.nat_pool_members.append(nat_pool_members)
    ctx.delete_hooks.append(on_resource_group_delete)
    ctx.nic_sources.append(flexible_nics)


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


def _members(ctx, ref_id, key):
    """(set doc, instance view, NIC config name, IP config name) of the instances whose model (the one each runs)
    puts an IP configuration in the pool `ref_id` under `key`."""
    wanted = ref_id.lower()
    for doc in ctx.store.list(m.VMSS_TYPE):
        known = instances.models(ctx, doc["id"])
        configs = {}                              # model hash -> [(nic, ipc)] of that model in the pool
        for view in instances.list_instances(ctx, doc["id"]):
            if view.get("surplus"):
                continue
            digest = view.get("model")
            if digest not in configs:
                configs[digest] = [(nic, ipc) for nic, ipc, p in _ip_configs((known.get(digest) or {}).get("profile"))
                                   if any((ref.get("id") or "").lower() == wanted for ref in p.get(key) or [])]
            for nic, ipc in configs[digest]:
                yield doc, view, nic, ipc


def nat_pool_members(ctx, nat_pool_id):
    """(instance id, IP configuration id) of the Uniform instances in an inbound NAT pool, by the model each runs."""
    return [(view["instanceId"], nic_id(doc, view, nic) + f"/ipConfigurations/{ipc}")
            for doc, view, nic, ipc in _members(ctx, nat_pool_id, "loadBalancerInboundNatPools")
            if m.mode_of(doc) != "Flexible"]


def pool_members(ctx, pool_id):
    """IP configuration ids of scale-set instances in a load balancer backend pool.

    An instance is in the pools of the model it runs, not of the scale set's current model: a model
    that drops (or adds) a pool changes nothing on the load balancer until the instance is upgraded onto
    it (Uniform: manualUpgrade / a rolling or automatic upgrade; Flexible: new VMs and upgraded ones), as
    Azure's NIC-level configuration works. Instances being created count (their NIC exists), the ones
    being deleted still count until the delete ends; overprovisioned extras do not.
    """
    return [nic_id(doc, view, nic) + f"/ipConfigurations/{ipc}"
            for doc, view, nic, ipc in _members(ctx, pool_id, "loadBalancerBackendAddressPools")]


def on_resource_group_delete(ctx, rg_id):
    """The group's rows go with delete_tree; our per-set state in kv goes here."""
    for doc in ctx.store.list(m.VMSS_TYPE, rg_id):
        instances.forget_scale_set(ctx, doc["id"])
