"""Where instances go and which ones leave: zones, fault/update domains, scale-in, IPs, names. Pure.

Instances are plain dicts here; only these keys are read: `zone`, `fd`, `ud`, `created` (epoch),
`seq` (creation order), `instanceId`, `protection` ({protectFromScaleIn, protectFromScaleSetActions}).
"""
import ipaddress
import random
import string
from collections import Counter, defaultdict

DEFAULT_PREFIX = "10.0.0.0/24"
_AZURE_RESERVED_LOW = 4      # x.0 network, x.1 gateway, x.2-x.3 Azure DNS
_AZURE_RESERVED_HIGH = 1     # broadcast


def assign_domains(existing, count, zones, fault_domains, update_domains):
    """(zone, fd, ud) for `count` new instances, each time the least-loaded choice.

    Zones are balanced round-robin (ties go to the first zone listed); within a zone the emptiest fault
    domain; update domains are balanced per zone. platformFaultDomainCount 1 is Azure's "max spreading",
    which shows every instance in fault domain 0.
    """
    zone_list = [str(z) for z in zones] or [None]
    per_zone = Counter(i.get("zone") for i in existing)
    per_fd = Counter((i.get("zone"), i.get("fd", 0)) for i in existing)
    per_ud = Counter((i.get("zone"), i.get("ud", 0)) for i in existing)
    out = []
    for _ in range(count):
        zone = min(zone_list, key=lambda z: (per_zone[z], zone_list.index(z)))
        fd = min(range(max(fault_domains, 1)), key=lambda f: (per_fd[(zone, f)], f))
        ud = min(range(max(update_domains, 1)), key=lambda u: (per_ud[(zone, u)], u))
        per_zone[zone] += 1
        per_fd[(zone, fd)] += 1
        per_ud[(zone, ud)] += 1
        out.append((zone, fd, ud))
    return out


def is_protected_from_scale_in(inst):
    p = inst.get("protection") or {}
    return bool(p.get("protectFromScaleIn") or p.get("protectFromScaleSetActions"))


def select_scale_in(instances, count, rules=None, rng=None):
    """The instances a scale-in by `count` removes, per scaleInPolicy.rules[0].

    Default: balance zones, then fault domains within the zone, then the newest unprotected VM there.
    OldestVM / NewestVM: balance zones, then the oldest / newest unprotected VM of the zone.
    Protected instances still count for balance but are never chosen; fewer than `count` may come back.
    Ties between equally loaded zones / fault domains go to the highest one, or to `rng` when given.
    """
    rule = (rules or ["Default"])[0]
    random_rank = defaultdict(rng.random) if rng else None

    def tie(key, default):
        return random_rank[key] if random_rank is not None else default
    zone_count = Counter(i.get("zone") for i in instances)
    fd_count = Counter((i.get("zone"), i.get("fd", 0)) for i in instances)
    # Candidates per (zone, fd), newest last, so pop() gives the newest and pop(0) the oldest.
    buckets = defaultdict(list)
    for inst in sorted(instances, key=_age_key):
        if not is_protected_from_scale_in(inst):
            buckets[(inst.get("zone"), inst.get("fd", 0))].append(inst)
    chosen = []
    while len(chosen) < count:
        zones = {z for (z, _), b in buckets.items() if b}
        if not zones:
            break
        zone = max(zones, key=lambda z: (zone_count[z], tie(str(z), str(z))))
        keys = [k for k, b in buckets.items() if b and k[0] == zone]
        if rule == "Default":
            key = max(keys, key=lambda k: (fd_count[k], tie(k, k[1])))
            inst = buckets[key].pop()
        else:
            pick = min if rule == "OldestVM" else max
            key = pick(keys, key=lambda k: _age_key(buckets[k][0] if rule == "OldestVM" else buckets[k][-1]))
            inst = buckets[key].pop(0) if rule == "OldestVM" else buckets[key].pop()
        zone_count[zone] -= 1
        fd_count[key] -= 1
        chosen.append(inst)
    return chosen


def _age_key(inst):
    return (inst.get("created", 0), inst.get("seq", 0))


def overprovision_extra(count):
    """How many extra VMs Azure creates (and then deletes) when overprovisioning `count` new ones."""
    if count <= 0:
        return 0
    return max(2, -(-count // 5))   # at least 2, else 20 %


def pick_overprovisioned(existing, created, extra, seed):
    """Instance ids of the surplus among `created`: the ones that "finished last" (a seeded random order,
    so kept ids are not contiguous), chosen like a scale-in so zones and fault domains stay balanced."""
    if not extra:
        return set()
    rng = random.Random(seed)
    pool = [dict(i, protection={"protectFromScaleIn": True}) for i in existing]
    pool += [dict(c, created=rng.random(), seq=0, protection=None) for c in created]
    return {i["instanceId"] for i in select_scale_in(pool, extra, ["Default"], rng)}


# --- addresses ----------------------------------------------------------------------------------

def allocate_ips(prefix, used, count):
    """The `count` lowest free addresses of the subnet, skipping the ones Azure reserves; None if full."""
    net = ipaddress.ip_network(prefix or DEFAULT_PREFIX, strict=False)
    used = set(used)
    first = int(net.network_address) + _AZURE_RESERVED_LOW
    last = int(net.broadcast_address) - _AZURE_RESERVED_HIGH
    out = []
    value = first
    while len(out) < count and value <= last:
        address = str(ipaddress.ip_address(value))
        if address not in used:
            out.append(address)
        value += 1
    return out if len(out) == count else None


# --- names --------------------------------------------------------------------------------------

def uniform_computer_name(prefix, instance_id):
    """Uniform computer names: prefix + the instance id in base 36, six characters."""
    digits = string.digits + string.ascii_lowercase
    n, out = int(instance_id), ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            break
    return f"{prefix}{out.rjust(6, '0')}"


def flexible_vm_name(vmss_name, rng):
    """Flexible VM names: '<scale set>_<8 hex>'."""
    return f"{vmss_name}_{rng.getrandbits(32):08x}"


def flexible_computer_name(prefix, rng):
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "".join(rng.choice(alphabet) for _ in range(6))
