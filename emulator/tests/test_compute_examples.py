"""Every x-ms-example request of the compute operations served here is accepted.

Examples are documentation: their placeholders ({vmss-name}), instance ids ("aaaa...") and references
(the generated ones point subnets at disks) are mapped onto resources this test creates first, so what is
checked is that the emulator accepts each example's request shape, as Azure does for a valid request.
"""
import json
import re
from urllib.parse import quote

import pytest

from compute_support import body, wait_until
from emulator.specs import SpecIndex

SPECS = SpecIndex.load()
pytestmark = pytest.mark.skipif(not SPECS.available, reason="Azure specs not found")

OPERATIONS = [
    "VirtualMachineScaleSets_CreateOrUpdate", "VirtualMachineScaleSets_Update", "VirtualMachineScaleSets_Get",
    "VirtualMachineScaleSets_List", "VirtualMachineScaleSets_GetInstanceView", "VirtualMachineScaleSets_ListSkus",
    "VirtualMachineScaleSets_GetOSUpgradeHistory", "VirtualMachineScaleSets_Restart",
    "VirtualMachineScaleSets_Reimage", "VirtualMachineScaleSets_UpdateInstances",
    "VirtualMachineScaleSets_Deallocate", "VirtualMachineScaleSets_DeleteInstances",
    "VirtualMachineScaleSetVMs_List", "VirtualMachineScaleSetVMs_Get", "VirtualMachineScaleSetVMs_GetInstanceView",
    "VirtualMachineScaleSetVMs_Update", "VirtualMachineScaleSetVMs_Restart", "VirtualMachineScaleSetVMs_Reimage",
    "VirtualMachineScaleSetVMs_Delete", "VirtualMachines_Get", "VirtualMachines_InstanceView",
    "VirtualMachineScaleSetExtensions_List", "VirtualMachineScaleSetExtensions_Get",
    "VirtualMachineScaleSetExtensions_CreateOrUpdate", "VirtualMachineScaleSetExtensions_Update",
    "VirtualMachineScaleSetExtensions_Delete", "VirtualMachineScaleSets_Delete",
]
RG = "examples"


class World:
    """What the examples are mapped onto: a vnet, a load balancer, a Uniform and a Flexible set."""

    def __init__(self, emu):
        self.emu = emu
        emu.rg(RG)
        net = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network"
        self.subnet = net + "/virtualNetworks/vnet/subnets/app"
        self.pool = net + "/loadBalancers/lb/backendAddressPools/pool"
        self.probe = net + "/loadBalancers/lb/probes/probe"
        put = [(net + "/virtualNetworks/vnet", {"location": emu.location, "properties": {
                   "addressSpace": {"addressPrefixes": ["10.0.0.0/8"]},
                   "subnets": [{"name": "app", "properties": {"addressPrefix": "10.1.0.0/16"}}]}}),
               (net + "/loadBalancers/lb", {"location": emu.location, "properties": {
                   "backendAddressPools": [{"name": "pool"}],
                   "probes": [{"name": "probe", "properties": {"protocol": "Tcp", "port": 80}}]}})]
        for path, doc in put:
            status, answer, _ = emu.arm("PUT", path, doc, api_version="2024-05-01")
            assert status in (200, 201), answer
        self.counter = 0

    def scale_set(self, mode=None):
        """A fresh, settled scale set (Uniform with instance "0", or Flexible) to run one example on."""
        self.counter += 1
        name = f"target{self.counter}"
        compute = self.emu.compute()
        compute.virtual_machine_scale_sets.begin_create_or_update(
            RG, name, body(self.emu, 2, mode=mode, health=True, subnet=self.subnet,
                           **({} if mode else {"overprovision": False}))).result()
        return name

    def rewrite(self, value):
        """Point network references at resources that exist; drop placeholders."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "subnet" and isinstance(item, dict):
                    out[key] = {"id": self.subnet}
                elif key == "healthProbe" and isinstance(item, dict):
                    out[key] = {"id": self.probe}
                elif key == "loadBalancerBackendAddressPools" and isinstance(item, list):
                    out[key] = [{"id": self.pool}]
                elif key == "sku" and isinstance(item, dict) and item.get("name") == "DSv3-Type1":
                    out[key] = dict(item, name="Standard_D2s_v3")   # a dedicated-host sku in a generated example
                elif key == "imageReference" and isinstance(item, dict):   # generated examples' "aaaa" ids
                    out[key] = {k: v for k, v in item.items() if not re.fullmatch(r"a+", str(v))}
                elif key == "adminPassword":        # "{your-password}": one Azure's rules accept
                    out[key] = "Exampl3-passw0rd!"
                else:
                    out[key] = self.rewrite(item)
            return out
        if isinstance(value, list):
            return [self.rewrite(v) for v in value]
        return value


def substitute(emu, example):
    text = json.dumps(example).replace("{subscription-id}", emu.subscription_id)
    return json.loads(re.sub(r"\{([A-Za-z0-9_-]+)\}", r"\1", text))


def run(world, op_id, example):
    """Send one example's request; returns (status, body)."""
    emu = world.emu
    op = SPECS.operation(op_id)
    params = substitute(emu, example.parameters)
    names = {"subscriptionId": emu.subscription_id, "resourceGroupName": RG}
    flexible_ops = op_id.startswith("VirtualMachines_")
    needs_set = any(k in op.path_template for k in ("{vmScaleSetName}", "{virtualMachineScaleSetName}", "{vmName}"))
    if op_id == "VirtualMachineScaleSets_CreateOrUpdate":
        world.counter += 1
        names["vmScaleSetName"] = f"example{world.counter}"
    elif needs_set:
        name = world.scale_set("Flexible" if flexible_ops else None)
        names["vmScaleSetName"] = names["virtualMachineScaleSetName"] = name
        names["instanceId"] = "0"
        names["vmssExtensionName"] = "health"
        if flexible_ops:
            vm = next(iter(emu.compute().virtual_machines.list(RG)))
            names["vmName"] = vm.name
    path = re.sub(r"\{([^}]+)\}", lambda m: quote(names[m.group(1)], safe=""), op.path_template)
    query = {k: v for k, v in params.items()
             if k not in names and k != "api-version" and not isinstance(v, (dict, list)) and k != op_id}
    body_value = world.rewrite(substitute(emu, example.body)) if example.body is not None else None
    if isinstance(body_value, dict) and isinstance(body_value.get("instanceIds"), list):
        body_value["instanceIds"] = ["0"] if body_value["instanceIds"] else []
    raw_query = "&".join(f"{quote(k)}={quote(str(v).lower() if isinstance(v, bool) else str(v))}"
                         for k, v in query.items())
    status, answer, _ = emu.arm(op.method, path, body_value, api_version=params.get("api-version", "2024-07-01"),
                                raw_query=raw_query or None)
    return status, answer


@pytest.mark.parametrize("op_id", OPERATIONS)
def test_examples_are_accepted(clean, op_id):
    world = World(clean)
    examples = SPECS.examples(op_id)
    assert examples, f"no examples found for {op_id}"
    failures = []
    for example in examples:
        status, answer = run(world, op_id, example)
        if status >= 300:
            failures.append((example.title, status, answer))
    assert not failures, json.dumps(failures, indent=1)[:4000]
    wait_until(lambda: True)
