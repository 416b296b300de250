"""Microsoft.Compute VM sizes of a region (`vmSizes`): what a client asks before naming a size; the table
is emulator/validation.py's, the one scale-set writes are checked against."""
import re

from emulator import validation
from emulator.arm import ok
from emulator.providers.compute.scalesets import check_subscription
from emulator.server import route


def _size_document(name):
    """Name, cores (the size's number; A0 and B1* have one) and memory at the family's ratio: figures a
    client can sort by, not a catalogue (the emulator does not model capacity per core)."""
    number = re.search(r"_[A-Z]+?(\d+)", name)
    cores = max(int(number.group(1)) if number else 1, 1)
    per_core = {"E": 8192, "A": 1792, "B": 2048}.get(name.split("_")[1][0], 4096)
    return {"name": name, "numberOfCores": cores, "osDiskSizeInMB": 1047552, "resourceDiskSizeInMB": cores * 8192,
            "memoryInMB": cores * per_core, "maxDataDiskCount": min(cores * 2, 64)}


@route("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/vmSizes",
       operation_id="VirtualMachineSizes_List")
def list_vm_sizes(ctx, req):
    check_subscription(ctx, req.params["subscriptionId"])
    validation.check_location(req.params["location"], "Microsoft.Compute/virtualMachines")
    return ok({"value": [_size_document(n) for n in validation.sizes_in(req.params["location"])]})
