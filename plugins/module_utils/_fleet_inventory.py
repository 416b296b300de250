# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale sets as inventory hosts (``host_type: scale_set`` of the ``fleetops.vmss.instances`` plugin): one host
per scale set, across subscriptions and resource groups, for fleet rollouts (playbooks/fleet_rollout.yml).

Reads (the cost the plugin documents): per subscription, one paged list of its scale sets (or one GET per set
named, one list per resource group named without a set); per scale set, one paged list of its instances with
their instance views, from which the health summary and the versions the instances run are counted. No
network interfaces: a scale-set host has no address of its own.

Everything but ``read`` is a pure function of REST dicts, unit-tested without Azure.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Dict, Iterable, List, Tuple

from . import _instances as instances
from . import _inventory as listing
from ._common import snake

NO_HEALTH = "None"  # instances without an Application Health state (no extension, or no instance view yet)


def for_subscription(factory, subscription_id: str):
    """The client factory ``factory`` for another subscription: same credential, cloud, settings and request
    counter, its own clients."""
    if not subscription_id or subscription_id == factory.subscription_id:
        return factory
    other = copy.copy(factory)
    other.subscription_id = subscription_id
    other._clients = {}  # pylint: disable=protected-access
    return other


def subscription_of(resource_id: str) -> str:
    parts = str(resource_id or "").strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def scale_set_vars(scale_set: Dict[str, Any], vms: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """One scale-set host's variables from the scale set and its instances (REST dicts). Pure.

    ``image_version`` is the version the model runs (the gallery version id's last segment, or a pinned
    version; ``latest`` or None when the model follows the image definition's latest); ``instance_image_versions``
    counts the versions the instances run (Azure's resolved ``exactVersion`` first), so that a fleet run knows a
    set is finished without another read; ``health_summary`` counts instances per Application Health state."""
    props = scale_set.get("properties") or {}
    profile = props.get("virtualMachineProfile") or {}
    image = (profile.get("storageProfile") or {}).get("imageReference")
    group, name = listing.split_id(scale_set.get("id"))
    health: Counter = Counter()
    versions: Counter = Counter()
    not_latest = count = 0
    for vm in vms:
        count += 1
        summary = instances.summary(vm, scale_set)
        health[summary["health_state"] or NO_HEALTH] += 1
        versions[str(listing.image_version(summary["image"]) or NO_HEALTH)] += 1
        not_latest += summary["latest_model_applied"] is False
    snake_image = snake(image) if image else None
    return {
        "scale_set": name,  # not "name" nor "tags": reserved names that Ansible warns about in every play
        "scale_set_id": scale_set.get("id"),
        "resource_group": group,
        "subscription_id": subscription_of(scale_set.get("id")),
        "location": scale_set.get("location"),
        "zones": list(scale_set.get("zones") or []),
        "scale_set_tags": dict(scale_set.get("tags") or {}),
        "vm_size": (scale_set.get("sku") or {}).get("name"),
        "capacity": (scale_set.get("sku") or {}).get("capacity"),
        "orchestration_mode": props.get("orchestrationMode") or "Uniform",
        "upgrade_mode": (props.get("upgradePolicy") or {}).get("mode") or "Manual",
        "provisioning_state": props.get("provisioningState"),
        "image": snake_image,
        "image_version": listing.image_version(snake_image),
        "instance_count": count,
        "instance_image_versions": dict(sorted(versions.items())),
        "instances_not_on_latest_model": not_latest,
        "health_summary": dict(sorted(health.items())),
    }


def host_names(hosts: List[Dict[str, Any]]) -> List[Tuple[str, Dict[str, Any]]]:
    """(host name, variables): the scale set's name, or ``<resource group>/<name>`` when two selected sets share
    a name, or ``<subscription>/<resource group>/<name>`` when those clash too (same group name in two
    subscriptions). Names are compared case-insensitively, as Azure compares them."""
    def qualified(variables, depth):
        parts = [variables["subscription_id"], variables["resource_group"], variables["scale_set"]]
        return "/".join(parts[3 - depth:])

    def counts(depth):
        return Counter(qualified(variables, depth).lower() for variables in hosts)

    by_name, by_group = counts(1), counts(2)
    named = []
    for variables in hosts:
        depth = 1 if by_name[variables["scale_set"].lower()] == 1 else (
            2 if by_group[qualified(variables, 2).lower()] == 1 else 3)
        named.append((qualified(variables, depth), variables))
    return named


def read(factory, subscriptions: List[str], wanted, ignore_not_found, on_error) -> Tuple[List[Dict[str, Any]], List[str]]:
    """(scale-set host variables of every subscription, what was asked for but is not there).

    ``subscriptions`` empty means the factory's own; ``wanted`` is the plugin's ``scale_sets`` option (applied
    in each subscription); ``on_error(action, what)`` is a context manager turning an SDK error into the
    caller's failure."""
    hosts, missing = [], []
    for subscription_id in subscriptions or [factory.subscription_id]:
        compute = for_subscription(factory, subscription_id).client("compute")
        with on_error("list", "the scale sets of subscription %s" % subscription_id):
            found, absent = listing.scale_sets(compute, wanted, ignore_not_found)
        missing.extend("%s in subscription %s" % (what, subscription_id) for what in absent)
        for scale_set in found:
            group, name = listing.split_id(scale_set.get("id"))
            with on_error("list the instances of", "scale set %s/%s" % (group, name)):
                hosts.append(scale_set_vars(scale_set, instances.iter_instances(compute, group, name, scale_set)))
    return hosts, missing
