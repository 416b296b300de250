# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure Compute Gallery, the way the gallery, gallery_image and gallery_image_version modules see it.

Pure functions (no I/O, no Ansible) from options and REST dicts to option-shaped current state,
differences, Azure's rules, request bodies, replication summaries and "latest"; plus ``read_source``,
the one reader of an image version's source.

Rules written down here, with where they come from:

* Version names are ``MAJOR.MINOR.PATCH``, each an int32 (Azure's InvalidParameter on galleryImageVersionName).
* Replica counts are 1 to 100 ("a limit of 100 replicas per image version", Azure Compute Gallery limits).
* An image definition's OS type, OS state, Hyper-V generation, architecture and identifier cannot change
  (409 PropertyChangeNotAllowed); features change only with ``allowUpdateImage: true``.
* A version's source, storage account type and replication mode cannot change, nor a replicated
  region's storage account type; its own (the gallery's) region must be one of its target regions.
* "latest" in a region is the highest version (by number, not date) that is not excluded from latest,
  globally or for that region, and whose replication to that region has Completed.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Optional, Tuple

from ._compare import DifferenceTracker, Item, compare, prune
from ._errors import ignore_not_found
from ._regions import region_key
from ._ids import parse_id, resource_type
from ._rest import camel, iso_datetime, tags_rule, tags_to_send, to_camel

INT32_MAX = 2147483647
MIN_REPLICAS, MAX_REPLICAS = 1, 100
_VERSION_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")

SOURCE_KINDS = {
    "microsoft.compute/images": "managed image",
    "microsoft.compute/virtualmachines": "virtual machine",
    "microsoft.compute/snapshots": "snapshot",
    "microsoft.compute/disks": "managed disk",
    "microsoft.compute/galleries/images/versions": "gallery image version",
}

IMAGE_DEFAULTS = {"hyper_v_generation": "V1", "architecture": "x64"}
IMAGE_IMMUTABLE = ("location", "os_type", "os_state", "hyper_v_generation", "architecture", "identifier")
VERSION_DEFAULTS = {"replica_count": 1, "storage_account_type": "Standard_LRS", "replication_mode": "Full",
                    "exclude_from_latest": False}


# ---------------------------------------------------------------------------------------------
# names

def parse_version(name: Optional[str]) -> Optional[Tuple[int, int, int]]:
    """(major, minor, patch) of a valid version name, else None."""
    match = _VERSION_NAME.match(name or "")
    if not match:
        return None
    parts = tuple(int(part) for part in match.groups())
    return parts if all(part <= INT32_MAX for part in parts) else None  # type: ignore[return-value]


def version_name_error(name: Optional[str], what: str = "name") -> Optional[str]:
    if parse_version(name) is None:
        return ("%s %r is not a gallery image version name: use MAJOR.MINOR.PATCH, three whole numbers from 0 to "
                "2147483647 (1.0.0, 2026.3.1)." % (what, name))
    return None


def replica_count_error(value: Any, what: str) -> Optional[str]:
    if value is not None and not MIN_REPLICAS <= value <= MAX_REPLICAS:
        return "%s must be from %s to %s (Azure's limit is %s replicas), not %s." % (
            what, MIN_REPLICAS, MAX_REPLICAS, MAX_REPLICAS, value)
    return None


def gallery_image_id(subscription_id: str, resource_group: str, gallery: str, image: str,
                     version: Optional[str] = None) -> str:
    out = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/%s/images/%s"
           % (subscription_id, resource_group, gallery, image))
    return out + ("/versions/%s" % version if version else "")


def split_version_id(resource_id: Optional[str]) -> Optional[Dict[str, Optional[str]]]:
    """{resource_group, gallery, image, version (or None)} of a gallery image (version) id, else None."""
    parsed = parse_id(resource_id)
    types = [kind.lower() for kind in parsed.get("types", [])]
    if (parsed.get("namespace") or "").lower() != "microsoft.compute" or types[:2] != ["galleries", "images"]:
        return None
    names = parsed["names"]
    if len(names) < 2 or len(types) > 3 or (len(types) == 3 and (types[2] != "versions" or len(names) < 3)):
        return None
    return {"subscription": parsed["subscription"], "resource_group": parsed["resource_group"], "gallery": names[0],
            "image": names[1], "version": names[2] if len(names) > 2 else None}


def source_kind(resource_id: Optional[str]) -> Optional[str]:
    """What an image version's source id names ("managed image", "virtual machine", ...), None if none of those."""
    return SOURCE_KINDS.get(resource_type(resource_id) or "")


# ---------------------------------------------------------------------------------------------
# galleries

def gallery_options(resource: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not resource:
        return {}
    props = resource.get("properties") or {}
    return {"location": resource.get("location"), "description": props.get("description"),
            "tags": resource.get("tags") or {}}


def gallery_rules(purge_tags: bool) -> Dict[str, str]:
    return {"location": "location", "tags": tags_rule(purge_tags)}


def gallery_create_body(desired: Dict[str, Any], location: str) -> Dict[str, Any]:
    body: Dict[str, Any] = {"location": location, "properties": {}}
    if "tags" in desired:
        body["tags"] = dict(desired["tags"])
    if "description" in desired:
        body["properties"]["description"] = desired["description"]
    return body


def gallery_update_body(tracker: DifferenceTracker, desired: Dict[str, Any], resource: Dict[str, Any],
                        purge_tags: bool) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if tracker.touches("description"):
        body["properties"] = {"description": desired["description"]}
    if tracker.touches("tags"):
        body["tags"] = tags_to_send(desired.get("tags"), resource.get("tags"), purge_tags)
    return body


# ---------------------------------------------------------------------------------------------
# image definitions

def image_options(resource: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """An image definition as options (Azure's defaults filled in where it leaves them out)."""
    if not resource:
        return {}
    props = resource.get("properties") or {}
    identifier = props.get("identifier") or {}
    return {
        "location": resource.get("location"),
        "os_type": props.get("osType"),
        "os_state": props.get("osState"),
        "hyper_v_generation": props.get("hyperVGeneration") or IMAGE_DEFAULTS["hyper_v_generation"],
        "architecture": props.get("architecture") or IMAGE_DEFAULTS["architecture"],
        "identifier": {"publisher": identifier.get("publisher"), "offer": identifier.get("offer"),
                       "sku": identifier.get("sku")},
        "features": [{"name": feature.get("name"), "value": feature.get("value")}
                     for feature in props.get("features") or []],
        "description": props.get("description"),
        "end_of_life_date": iso_datetime(props.get("endOfLifeDate")),
        "tags": resource.get("tags") or {},
    }


def image_rules(purge_tags: bool) -> Dict[str, str]:
    return {"location": "location", "os_type": "enum", "os_state": "enum", "hyper_v_generation": "enum",
            "architecture": "enum", "identifier.publisher": "enum", "identifier.offer": "enum",
            "identifier.sku": "enum", "features": "named", "features[].value": "enum", "tags": tags_rule(purge_tags)}


def desired_image(params: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("location", "os_type", "os_state", "hyper_v_generation", "architecture", "identifier", "features",
            "description", "end_of_life_date", "tags")
    desired = prune({key: copy.deepcopy(params.get(key)) for key in keys})
    if "end_of_life_date" in desired:
        desired["end_of_life_date"] = iso_datetime(desired["end_of_life_date"])
    if "location" in desired:
        desired["location"] = region_key(desired["location"])
    return desired


def image_errors(desired: Dict[str, Any], creating: bool) -> List[str]:
    errors = []
    if creating:
        missing = [key for key in ("os_type", "os_state") if key not in desired]
        identifier = desired.get("identifier") or {}
        missing += ["identifier.%s" % key for key in ("publisher", "offer", "sku") if not identifier.get(key)]
        if missing:
            errors.append("To create an image definition, set %s." % ", ".join(missing))
    names = [region_key(feature.get("name")) for feature in desired.get("features") or []]
    if len(names) != len(set(names)):
        errors.append("features lists a feature name more than once.")
    if desired.get("end_of_life_date") and not _is_iso(desired["end_of_life_date"]):
        errors.append("end_of_life_date %r is not an ISO 8601 date or date-time." % desired["end_of_life_date"])
    return errors


def immutable_errors(tracker: DifferenceTracker, immutable: Tuple[str, ...], what: str,
                     advice: str) -> List[str]:
    """One sentence per difference Azure would refuse (409 PropertyChangeNotAllowed), before anything is sent."""
    errors = []
    for path, before, after in tracker.differences:
        if path[0] in immutable:
            errors.append("%s cannot be changed (%s -> %s): %s." % (_display(path), before, after, advice))
    return errors


def _display(path) -> str:
    out = ""
    for element in path:
        out += ("[%s]" % element) if isinstance(element, Item) else (("." if out else "") + element)
    return out


def _merged_named(current: List[Dict[str, Any]], desired: List[Dict[str, Any]], key=lambda name: str(name).lower(),
                  purge: bool = False) -> List[Dict[str, Any]]:
    """``current`` REST items with the desired (REST) items merged in by name; new ones appended."""
    wanted = {key(item["name"]): item for item in desired}
    out = []
    for item in current:
        name = key(item.get("name"))
        if name in wanted:
            out.append(dict(item, **{k: v for k, v in wanted.pop(name).items() if k != "name"}))
        elif not purge:
            out.append(dict(item))
    out.extend(wanted.values())
    return out


def image_create_body(desired: Dict[str, Any], location: str) -> Dict[str, Any]:
    props = {key: desired[key] for key in ("os_type", "os_state", "hyper_v_generation", "architecture", "identifier",
                                           "features", "description", "end_of_life_date") if key in desired}
    body: Dict[str, Any] = {"location": location, "properties": camel(props)}
    if "tags" in desired:
        body["tags"] = dict(desired["tags"])
    return body


def image_update_body(tracker: DifferenceTracker, desired: Dict[str, Any], resource: Dict[str, Any],
                      purge_tags: bool) -> Dict[str, Any]:
    """PATCH: what differs, plus the three properties the contract requires in every body (unchanged)."""
    current_props = resource.get("properties") or {}
    props = {key: current_props.get(key) for key in ("osType", "osState", "identifier") if current_props.get(key)}
    for key in ("description", "end_of_life_date"):
        if tracker.touches(key):
            props[to_camel(key)] = desired[key]
    if tracker.touches("features"):
        props["features"] = _merged_named(current_props.get("features") or [], camel(desired["features"]))
        props["allowUpdateImage"] = True
    body: Dict[str, Any] = {"properties": props}
    if tracker.touches("tags"):
        body["tags"] = tags_to_send(desired.get("tags"), resource.get("tags"), purge_tags)
    return body


# ---------------------------------------------------------------------------------------------
# image versions: options, rules, bodies

def source_option(storage: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A version's storageProfile as the ``source`` option: {id} or {uri, storage_account_id}."""
    storage = storage or {}
    source = storage.get("source") or {}
    disk = (storage.get("osDiskImage") or {}).get("source") or {}
    if source.get("id") or source.get("virtualMachineId"):
        return {"id": source.get("id") or source.get("virtualMachineId")}
    if disk.get("id"):
        return {"id": disk["id"]}
    if disk.get("uri"):
        return {"uri": disk["uri"], "storage_account_id": disk.get("storageAccountId")}
    return {}


def version_options(resource: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A version as options; region names as region keys; Azure's defaults where it leaves values out."""
    if not resource:
        return {}
    props = resource.get("properties") or {}
    profile = props.get("publishingProfile") or {}
    replicas = profile.get("replicaCount") or VERSION_DEFAULTS["replica_count"]
    storage = profile.get("storageAccountType") or VERSION_DEFAULTS["storage_account_type"]
    regions = [{"name": region_key(region.get("name")),
                "regional_replica_count": region.get("regionalReplicaCount") or replicas,
                "storage_account_type": region.get("storageAccountType") or storage,
                "exclude_from_latest": bool(region.get("excludeFromLatest"))}
               for region in profile.get("targetRegions") or []]
    return {
        "source": source_option(props.get("storageProfile")),
        "target_regions": regions,
        "replica_count": replicas,
        "exclude_from_latest": bool(profile.get("excludeFromLatest")),
        "end_of_life_date": iso_datetime(profile.get("endOfLifeDate")),
        "storage_account_type": storage,
        "replication_mode": profile.get("replicationMode") or VERSION_DEFAULTS["replication_mode"],
        "tags": resource.get("tags") or {},
    }


VERSION_KEYS = ("source", "target_regions", "replica_count", "exclude_from_latest", "end_of_life_date",
                "storage_account_type", "replication_mode", "tags")


def desired_version(params: Dict[str, Any]) -> Dict[str, Any]:
    desired = prune({key: copy.deepcopy(params.get(key)) for key in VERSION_KEYS})
    for region in desired.get("target_regions") or []:
        region["name"] = region_key(region.get("name"))
    if "end_of_life_date" in desired:
        desired["end_of_life_date"] = iso_datetime(desired["end_of_life_date"])
    if desired.get("source") == {}:
        del desired["source"]
    return desired


def version_rules(purge_tags: bool) -> Dict[str, str]:
    return {"source.id": "id", "source.storage_account_id": "id", "target_regions": "named",
            "target_regions[].storage_account_type": "enum", "storage_account_type": "enum",
            "replication_mode": "enum", "tags": tags_rule(purge_tags)}


def version_errors(name: str, desired: Dict[str, Any]) -> List[str]:
    """Input errors of a version (no I/O): name, replica counts, regions listed twice, the source's shape."""
    errors = [error for error in [version_name_error(name)] if error]
    errors += [error for error in [replica_count_error(desired.get("replica_count"), "replica_count")] if error]
    seen = set()
    for region in desired.get("target_regions") or []:
        if not region.get("name"):
            errors.append("Every target_regions entry needs a name.")
            continue
        if region["name"] in seen:
            errors.append("target_regions lists %s more than once." % region["name"])
        seen.add(region["name"])
        error = replica_count_error(region.get("regional_replica_count"),
                                    "target_regions[%s].regional_replica_count" % region["name"])
        if error:
            errors.append(error)
    source = desired.get("source")
    if source is not None:
        if bool(source.get("id")) == bool(source.get("uri")):
            errors.append("source needs exactly one of id (a managed image, virtual machine, snapshot, managed disk or "
                          "gallery image version) or uri (a VHD, with storage_account_id).")
        elif source.get("uri") and not source.get("storage_account_id"):
            errors.append("source.uri (a VHD) needs source.storage_account_id, the storage account that holds it.")
        elif source.get("id") and source_kind(source["id"]) is None:
            errors.append("source.id %r is not the id of a managed image, virtual machine, snapshot, managed disk or "
                          "gallery image version." % source["id"])
    if desired.get("end_of_life_date") and not _is_iso(desired["end_of_life_date"]):
        errors.append("end_of_life_date %r is not an ISO 8601 date or date-time." % desired["end_of_life_date"])
    return errors


def _is_iso(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", value))


def version_differences(desired: Dict[str, Any], resource: Optional[Dict[str, Any]], purge_target_regions: bool,
                        purge_tags: bool) -> DifferenceTracker:
    """What would change; with purge_target_regions, current regions left out of target_regions too.

    A desired region whose replication Failed counts as a difference (``replication``): writing the
    targets again retries it, as Azure's CrpPirReplicationJobsNotCompleted message advises.
    """
    current = version_options(resource) if resource else {}
    rules = version_rules(purge_tags)
    if resource is None:
        rules["tags"] = "map"
    tracker = compare(desired, current, rules)
    if resource is None:
        return tracker
    wanted = {region["name"] for region in desired.get("target_regions") or []}
    if purge_target_regions and "target_regions" in desired:
        for region in current["target_regions"]:
            if region["name"] not in wanted:
                tracker.add(("target_regions", Item(region["name"])), {k: v for k, v in region.items() if k != "name"},
                            None)
    for entry in replication(resource):
        key = region_key(entry["region"])
        if entry["state"] == "Failed" and (key in wanted or "target_regions" not in desired):
            tracker.add(("target_regions", Item(key), "replication"), "Failed", "retry")
    return tracker


def version_immutable_errors(tracker: DifferenceTracker, resource: Dict[str, Any], what: str) -> List[str]:
    advice = "Azure does not allow it; publish a new version instead"
    errors = immutable_errors(tracker, ("source", "storage_account_type", "replication_mode"), what, advice)
    existing = {region["name"] for region in version_options(resource)["target_regions"]}
    for path, before, after in tracker.differences:
        if path[0] == "target_regions" and len(path) == 3 and path[2] == "storage_account_type" and path[1] in existing:
            errors.append("target_regions[%s].storage_account_type cannot be changed once the region is replicated "
                          "(%s -> %s): %s." % (path[1], before, after, advice))
    return errors


def missing_home_region(desired: Dict[str, Any], location: str) -> Optional[str]:
    regions = [region["name"] for region in desired.get("target_regions") or []]
    if regions and region_key(location) not in regions:
        return ("target_regions must include %s, the region of the gallery: Azure keeps every version there "
                "(list it, with the replica count you want there)." % region_key(location))
    return None


def storage_profile(source: Dict[str, Any]) -> Dict[str, Any]:
    """storageProfile of a new version: source.id (managed image, gallery image version), source.virtualMachineId,
    or osDiskImage.source (snapshot or disk id; VHD uri with its storage account)."""
    if source.get("uri"):
        return {"osDiskImage": {"source": {"uri": source["uri"], "storageAccountId": source["storage_account_id"]}}}
    kind = source_kind(source["id"])
    if kind == "virtual machine":
        return {"source": {"virtualMachineId": source["id"]}}
    if kind in ("snapshot", "managed disk"):
        return {"osDiskImage": {"source": {"id": source["id"]}}}
    return {"source": {"id": source["id"]}}


def _profile(desired: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("replica_count", "exclude_from_latest", "end_of_life_date", "storage_account_type", "replication_mode")
    profile = camel({key: desired[key] for key in keys if key in desired})
    if "target_regions" in desired:
        profile["targetRegions"] = camel(desired["target_regions"])
    return profile


def version_create_body(desired: Dict[str, Any], location: str) -> Dict[str, Any]:
    body: Dict[str, Any] = {"location": location, "properties": {"storageProfile": storage_profile(desired["source"]),
                                                                 "publishingProfile": _profile(desired)}}
    if "tags" in desired:
        body["tags"] = dict(desired["tags"])
    return body


def version_update_body(tracker: DifferenceTracker, desired: Dict[str, Any], resource: Dict[str, Any],
                        purge_target_regions: bool, purge_tags: bool) -> Dict[str, Any]:
    """PATCH: the publishing profile fields that differ, and always the whole target region list (ARM replaces
    arrays): the current regions as Azure returned them, desired fields merged in, new regions appended.
    Azure replicates only the regions that are new (or failed); ``storageProfile: {}`` keeps the source."""
    current = ((resource.get("properties") or {}).get("publishingProfile") or {})
    profile = {to_camel(key): desired[key] for key in ("replica_count", "exclude_from_latest", "end_of_life_date")
               if tracker.touches(key)}
    profile["targetRegions"] = _merged_named(current.get("targetRegions") or [],
                                             camel(desired.get("target_regions") or []), key=region_key,
                                             purge=purge_target_regions and "target_regions" in desired)
    body: Dict[str, Any] = {"properties": {"publishingProfile": profile, "storageProfile": {}}}
    if tracker.touches("tags"):
        body["tags"] = tags_to_send(desired.get("tags"), resource.get("tags"), purge_tags)
    return body


def with_region_keys(resource: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A version as modules return it: every region name as a region key.

    Azure answers ``targetRegions[].name`` and ``replicationStatus.summary[].region`` with display names
    ("East US 2") whatever the request spelled; results show one spelling (``eastus2``), the one the
    options, diffs and ``latest_for_region`` use, so a playbook can compare what it set with what it reads.
    """
    if not resource:
        return resource
    out = copy.deepcopy(resource)
    props = out.get("properties") or {}
    for region in (props.get("publishingProfile") or {}).get("targetRegions") or []:
        region["name"] = region_key(region.get("name"))
    for entry in (props.get("replicationStatus") or {}).get("summary") or []:
        entry["region"] = region_key(entry.get("region"))
    if out.get("location"):
        out["location"] = region_key(out["location"])
    return out


# ---------------------------------------------------------------------------------------------
# replication and "latest"

def replication(resource: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """[{region, state, progress, details}] from a version read with $expand=ReplicationStatus."""
    status = ((resource or {}).get("properties") or {}).get("replicationStatus") or {}
    return [{"region": entry.get("region"), "state": entry.get("state"), "progress": entry.get("progress"),
             "details": entry.get("details") or ""} for entry in status.get("summary") or []]


def aggregated_state(resource: Optional[Dict[str, Any]]) -> Optional[str]:
    return (((resource or {}).get("properties") or {}).get("replicationStatus") or {}).get("aggregatedState")


def replication_settled(resource: Optional[Dict[str, Any]]) -> bool:
    """No target region is still replicating (each Completed or Failed), and the version is not being written."""
    entries = replication(resource)
    state = ((resource or {}).get("properties") or {}).get("provisioningState")
    return bool(entries) and all(entry["state"] in ("Completed", "Failed") for entry in entries) \
        and state not in ("Creating", "Updating")


def describe_replication(resource: Optional[Dict[str, Any]]) -> str:
    """``westeurope Completed (100%), northeurope Replicating (40%)``."""
    parts = []
    for entry in replication(resource):
        text = "%s %s (%s%%)" % (region_key(entry["region"]), entry["state"], entry["progress"]
                                 if entry["progress"] is not None else "?")
        if entry["state"] == "Failed" and entry["details"]:
            text += ": %s" % entry["details"]
        parts.append(text)
    return ", ".join(parts) or "no replication status"


def failed_regions(resource: Optional[Dict[str, Any]]) -> List[str]:
    return [region_key(entry["region"]) for entry in replication(resource) if entry["state"] == "Failed"]


def eligible_for_latest(resource: Dict[str, Any], region: str) -> bool:
    props = resource.get("properties") or {}
    profile = props.get("publishingProfile") or {}
    if profile.get("excludeFromLatest") or props.get("provisioningState") == "Deleting":
        return False
    key = region_key(region)
    target = next((r for r in profile.get("targetRegions") or [] if region_key(r.get("name")) == key), None)
    if target is None or target.get("excludeFromLatest"):
        return False
    return any(region_key(entry["region"]) == key and entry["state"] == "Completed" for entry in replication(resource))


def latest_for_region(versions: List[Dict[str, Any]], region: str) -> Optional[Dict[str, Any]]:
    """The version Azure resolves ``latest`` to in ``region`` (versions read with replication status), or None."""
    eligible = [version for version in versions if parse_version(version.get("name")) and
                eligible_for_latest(version, region)]
    return max(eligible, key=lambda version: parse_version(version["name"]), default=None)


def read_versions(operations, resource_group: str, gallery: str, image: str,
                  name: Optional[str] = None) -> List[Dict[str, Any]]:
    """The versions asked for (all of the image when ``name`` is None), each read with its replication status
    (``[]`` when absent), sorted by version; ``operations`` is the client's ``gallery_image_versions``."""
    if name:
        names = [name]
    else:
        listed = ignore_not_found(lambda: list(operations.list_by_gallery_image(resource_group, gallery, image)),
                                  default=[])
        names = [_as_dict(item)["name"] for item in listed]
    found = [ignore_not_found(lambda n=n: operations.get(resource_group, gallery, image, n, expand="ReplicationStatus"))
             for n in names]
    return sort_versions([_as_dict(item) for item in found if item is not None])


def sort_versions(versions: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """By version number (names Azure would not accept last, by name)."""
    return sorted(versions, key=lambda version: (parse_version(version.get("name")) is None,
                                                 parse_version(version.get("name")) or (0, 0, 0),
                                                 version.get("name") or ""))


# ---------------------------------------------------------------------------------------------
# the source of a version (one or two reads)

def read_source(compute, source_id: str) -> Tuple[bool, Optional[str]]:
    """(exists, OS type or None) of an image version's source; raises the SDK's error for anything but 404.

    Managed image and virtual machine: storageProfile.osDisk.osType; snapshot and disk: osType; gallery image
    version: its image definition's osType.
    """
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import ResourceNotFoundError

    kind = source_kind(source_id)
    parsed = parse_id(source_id)
    rg, names = parsed.get("resource_group"), parsed.get("names") or []
    try:
        if kind == "gallery image version":
            compute.gallery_image_versions.get(rg, names[0], names[1], names[2])
            found = _as_dict(compute.gallery_images.get(rg, names[0], names[1]))
            return True, (found.get("properties") or {}).get("osType")
        if kind == "managed image":
            found = _as_dict(compute.images.get(rg, names[0]))
        elif kind == "virtual machine":
            found = _as_dict(compute.virtual_machines.get(rg, names[0]))
        elif kind == "snapshot":
            found = _as_dict(compute.snapshots.get(rg, names[0]))
            return True, (found.get("properties") or {}).get("osType")
        elif kind == "managed disk":
            found = _as_dict(compute.disks.get(rg, names[0]))
            return True, (found.get("properties") or {}).get("osType")
        else:
            return True, None
    except ResourceNotFoundError:
        return False, None
    os_disk = ((found.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}
    return True, os_disk.get("osType")


def _as_dict(model: Any) -> Dict[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model or {})
