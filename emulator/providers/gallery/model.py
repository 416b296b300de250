"""Pure rules of Azure Compute Gallery: names, defaults, immutable properties, replication state, "latest".

Nothing here touches the store or the clock: callers pass documents and `now` in, and get values or
ArmErrors out, so every rule can be tested without a running emulator.

Error codes and messages are Azure's, as observed in public reports:
  * InvalidParameter on galleryImageVersionName      Azure/az-hop#707, Azure/azure-rest-api-specs#10707
  * 409 PropertyChangeNotAllowed "Changing property 'galleryImage.properties.eula' is not allowed."
                                                     Azure/azure-sdk-for-java#28842
  * 409 CannotDeleteResource "Cannot delete resource while nested resources exist. ..."
                                                     jenkins-infra/azure#1544
  * 404 GalleryImageNotFound "The gallery image ... is not available in ... region. ..."
                                                     pulumi/pulumi-aws#5129,
                                                     confidential-containers/cloud-api-adaptor#1709
  * 400 InvalidParameter "In region ..., the following list of Shared Image Gallery images ... were not found"
                                                     Azure/bicep-registry-modules#462 ("latest" with nothing eligible)
  * LRO error CrpPirReplicationJobsNotCompleted      azure-sdk-for-java gallery tests (code); message wording
                                                     from Azure/azure-cli#15539
"""
import re

from emulator.arm import ArmError

GALLERY = "Microsoft.Compute/galleries"
IMAGE = "Microsoft.Compute/galleries/images"
VERSION = "Microsoft.Compute/galleries/images/versions"

INT32_MAX = 2147483647
_VERSION_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_DEFINITION_ID = re.compile(
    r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+/images/[^/]+)"
    r"(?:/versions/([^/]+))?/?$", re.I)

# Image definition properties Azure refuses to change once set (409 PropertyChangeNotAllowed).
IMMUTABLE_IMAGE_PROPERTIES = ("osType", "osState", "hyperVGeneration", "architecture", "eula", "purchasePlan")
IMMUTABLE_IDENTIFIER = ("publisher", "offer", "sku")
IMAGE_DEFAULTS = {"hyperVGeneration": "V1", "architecture": "x64"}

DEFAULT_STORAGE_ACCOUNT_TYPE = "Standard_LRS"
REPLICATION_FAILED_DETAIL = "Failed with internal server error."


# --- names and ids -------------------------------------------------------------------------------

def parse_version(name):
    """(major, minor, patch) for a valid MAJOR.MINOR.PATCH name (each an int32), else None."""
    m = _VERSION_NAME.match(name or "")
    if not m:
        return None
    parts = tuple(int(p) for p in m.groups())
    return parts if all(p <= INT32_MAX for p in parts) else None


def check_version_name(name):
    if parse_version(name) is None:
        raise ArmError(400, "InvalidParameter",
                       "The image version name is invalid. The image version name should follow "
                       "Major(int).Minor(int).Patch(int) format, where int is between 0 and 2,147,483,647 "
                       "(inclusive). For e.g: 1.0.0, 2018.12.1 etc", target="galleryImageVersionName")


def split_image_id(image_id):
    """(definition id, version name or None) for a gallery image (version) id, else None."""
    m = _DEFINITION_ID.match(image_id or "")
    return (m.group(1), m.group(2)) if m else None


def norm_region(name):
    """'West Europe' -> 'westeurope': how ARM compares locations."""
    return (name or "").replace(" ", "").lower()


# Region display names (Subscriptions - List Locations `displayName`, as recorded from Azure). GalleryRP answers
# targetRegions[].name and replicationStatus.summary[].region with these whatever the request spelled ("eastus2"
# comes back "East US 2": Azure/azure-cli test_gallery_e2e.yaml recording; spec example
# GalleryImageVersion_Get_WithReplicationStatus.json); a resource's own `location` stays the region key.
REGION_DISPLAY_NAMES = {norm_region(name): name for name in (
    "Australia Central", "Australia Central 2", "Australia East", "Australia Southeast", "Austria East",
    "Belgium Central", "Brazil South", "Brazil Southeast", "Canada Central", "Canada East", "Central India",
    "Central US", "Central US EUAP", "Chile Central", "Denmark East", "East Asia", "East US", "East US 2",
    "East US 2 EUAP", "France Central", "France South", "Germany North", "Germany West Central",
    "Indonesia Central", "Israel Central", "Italy North", "Japan East", "Japan West", "Jio India Central",
    "Jio India West", "Korea Central", "Korea South", "Malaysia West", "Mexico Central", "New Zealand North",
    "North Central US", "North Europe", "Norway East", "Norway West", "Poland Central", "Qatar Central",
    "South Africa North", "South Africa West", "South Central US", "Southeast Asia", "South India",
    "Spain Central", "Sweden Central", "Sweden South", "Switzerland North", "Switzerland West", "UAE Central",
    "UAE North", "UK South", "UK West", "West Central US", "West Europe", "West India", "West US", "West US 2",
    "West US 3")}


def display_region(name):
    """'eastus2' or 'East US 2' -> 'East US 2'; a region not in the table comes back as given."""
    return REGION_DISPLAY_NAMES.get(norm_region(name), name)


# --- image definitions ---------------------------------------------------------------------------

def image_properties(props, current=None):
    """Definition properties with Azure's defaults, after checking immutable ones against `current`."""
    out = dict(props)
    for key, default in IMAGE_DEFAULTS.items():
        out.setdefault(key, (current or {}).get(key, default))
    if current is not None:
        _check_image_immutables(out, current)
    out.pop("allowUpdateImage", None)   # a request flag, never echoed
    return out


def _check_image_immutables(new, current):
    for key in IMMUTABLE_IMAGE_PROPERTIES:
        if key in current and key in new and _differs(new[key], current[key]):
            raise _property_change(f"galleryImage.properties.{key}")
    old_id, new_id = current.get("identifier") or {}, new.get("identifier") or {}
    for key in IMMUTABLE_IDENTIFIER:
        if key in new_id and _differs(new_id[key], old_id.get(key)):
            raise _property_change(f"galleryImage.properties.identifier.{key}")
    if "features" in new and not new.get("allowUpdateImage") and \
            _feature_set(new["features"]) != _feature_set(current.get("features")):
        # Features may only change with allowUpdateImage: true (spec: GalleryImageProperties.allowUpdateImage).
        raise _property_change("galleryImage.properties.features")


def _differs(a, b):
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() != b.lower()
    return a != b


def _feature_set(features):
    return {(str(f.get("name", "")).lower(), str(f.get("value", "")).lower()) for f in features or []}


def _property_change(target):
    return ArmError(409, "PropertyChangeNotAllowed", f"Changing property '{target}' is not allowed.", target=target)


def nested_resources_error(child_ids):
    """409 CannotDeleteResource naming (up to five of) the children that block a delete."""
    shown = ", ".join(_provider_relative(i) for i in child_ids[:5])
    return ArmError(409, "CannotDeleteResource",
                    f"Cannot delete resource while nested resources exist. Some existing nested resource IDs "
                    f"include: '{shown}'. Please delete all nested resources before deleting this resource.")


def _provider_relative(rid):
    lower = rid.lower()
    i = lower.find("/providers/")
    return rid[i + len("/providers/"):] if i >= 0 else rid


# --- image versions: request rules ---------------------------------------------------------------

def check_storage_profile(storage):
    """A version needs a source: storageProfile.source (image, VM, version, community image) or disk images."""
    storage = storage or {}
    source = storage.get("source") or {}
    has_source = any(source.get(k) for k in ("id", "virtualMachineId", "communityGalleryImageId"))
    disks = [storage.get("osDiskImage")] + list(storage.get("dataDiskImages") or [])
    disk_sources = [(d or {}).get("source") or {} for d in disks if d]
    if not has_source and not any(s.get("id") or s.get("uri") for s in disk_sources):
        raise ArmError(400, "InvalidParameter",
                       "The parameter 'galleryImageVersion.properties.storageProfile' must contain a source: "
                       "source.id, osDiskImage.source or dataDiskImages[].source.",
                       target="galleryImageVersion.properties.storageProfile")
    for disk_source in disk_sources:
        if disk_source.get("uri") and not disk_source.get("storageAccountId"):
            # A VHD source is read from a storage account the caller names (spec: GalleryDiskImageSource).
            raise ArmError(400, "InvalidParameter",
                           "The parameter 'storageAccountId' is required when a VHD uri is used as the source.",
                           target="galleryImageVersion.properties.storageProfile.osDiskImage.source.storageAccountId")


def source_id(storage):
    """The single resource id a version was made from (image, VM, snapshot, version), or None."""
    storage = storage or {}
    source = storage.get("source") or {}
    return source.get("id") or source.get("virtualMachineId") or \
        ((storage.get("osDiskImage") or {}).get("source") or {}).get("id")


def publishing_profile(location, profile, current=None):
    """The publishing profile as Azure returns it: every default filled in, per region too.

    On an update (`current` given) the properties that cannot change are inherited when the request
    leaves them out, so a PUT that omits them is not mistaken for an attempt to change them.
    """
    profile = dict(profile or {})
    current = current or {}
    old_regions = {norm_region(r["name"]): r for r in current.get("targetRegions", [])}
    replicas = profile.get("replicaCount") or 1
    storage_type = profile.get("storageAccountType") or current.get("storageAccountType") \
        or DEFAULT_STORAGE_ACCOUNT_TYPE
    regions = profile.get("targetRegions") or current.get("targetRegions") or [{"name": location}]

    def region_type(region):
        old = old_regions.get(norm_region(region["name"])) or {}
        return region.get("storageAccountType") or old.get("storageAccountType") or storage_type

    profile.update(
        replicaCount=replicas,
        storageAccountType=storage_type,
        excludeFromLatest=bool(profile.get("excludeFromLatest", False)),
        targetRegions=[dict(region, name=display_region(region["name"]),
                            regionalReplicaCount=region.get("regionalReplicaCount") or replicas,
                            storageAccountType=region_type(region))
                       for region in regions])
    # replicationMode (default Full) and a region's excludeFromLatest are answered only when set
    # (sdkpy_galleries#07, 2021; cli_image_version_end_of_life_date#02, 2025)
    mode = profile.get("replicationMode") or current.get("replicationMode")
    if mode:
        profile["replicationMode"] = mode
    return profile


def check_home_region(location, profile):
    """The version's own region must be a target ("The home location ... must be included", az sig docs)."""
    if norm_region(location) not in {norm_region(r["name"]) for r in profile["targetRegions"]}:
        raise ArmError(400, "InvalidParameter",
                       f"The target regions of the gallery image version must include its location '{location}'.",
                       target="galleryImageVersion.properties.publishingProfile.targetRegions")


def check_version_immutables(new_props, current_props):
    """Source, storage account type and replication mode are fixed once a version exists."""
    new_source, old_source = source_id(new_props.get("storageProfile")), source_id(current_props.get("storageProfile"))
    if new_source and old_source and new_source.lower() != old_source.lower():
        raise _property_change("galleryImageVersion.properties.storageProfile.source.id")
    new_pp, old_pp = new_props["publishingProfile"], current_props["publishingProfile"]
    for key, default in (("storageAccountType", None), ("replicationMode", "Full")):
        if (new_pp.get(key) or default) != (old_pp.get(key) or default):
            raise _property_change(f"galleryImageVersion.properties.publishingProfile.{key}")
    old_regions = {norm_region(r["name"]): r for r in old_pp["targetRegions"]}
    for region in new_pp["targetRegions"]:
        old = old_regions.get(norm_region(region["name"]))
        if old and old.get("storageAccountType") != region.get("storageAccountType"):
            raise _property_change("galleryImageVersion.properties.publishingProfile.targetRegions.storageAccountType")


def merged_storage_profile(new, current):
    """An update may send storageProfile: {} (spec example Update_WithoutSourceId): keep what exists."""
    if not new or not source_id(new):
        return current
    return new


# --- replication state ---------------------------------------------------------------------------
# A version's replication is kept as {region key: entry}, entry = {region, state, start, end, details,
# gen, progress?}; `start`/`end` are epoch seconds of the (scaled) replication window.

def plan_replication(replication, target_regions):
    """(regions to (re)start, region keys to drop) when a version's targets become `target_regions`.

    Only new regions and regions whose replication failed are replicated again: changing
    excludeFromLatest or a replica count leaves completed regions alone.
    """
    wanted = {norm_region(r["name"]): r["name"] for r in target_regions}
    start = [name for key, name in wanted.items()
             if key not in replication or replication[key]["state"] == "Failed"]
    drop = [key for key in replication if key not in wanted]
    return start, drop


def region_progress(entry, now):
    if entry["state"] == "Completed":
        return 100
    if entry["state"] == "Failed":
        return entry.get("progress", 0)
    span = max(entry["end"] - entry["start"], 1e-9)
    return max(0, min(99, int((now - entry["start"]) / span * 100)))


def aggregated_state(replication):
    states = {entry["state"] for entry in replication.values()}
    if not states:
        return "Unknown"
    if "Replicating" in states:
        return "InProgress"
    return "Failed" if "Failed" in states else "Completed"


def replication_status(replication, now):
    """properties.replicationStatus as $expand=ReplicationStatus shows it."""
    return {"aggregatedState": aggregated_state(replication),
            "summary": [{"region": e["region"], "state": e["state"], "details": e.get("details", ""),
                         "progress": region_progress(e, now)} for e in replication.values()]}


def replication_error(replication):
    """The async-operation error of a version whose replication failed somewhere."""
    failed = ", ".join(f"{{region:{norm_region(e['region'])}, detail:{e.get('details') or REPLICATION_FAILED_DETAIL}}}"
                       for e in replication.values() if e["state"] == "Failed")
    return {"code": "CrpPirReplicationJobsNotCompleted",
            "message": f"Gallery replication jobs failed in one or more regions. The failing regions' details are "
                       f"as follows: '{failed}'. If retry does not work, then please do an update by removing the "
                       "failed regions and update again by adding them back."}


# --- "latest" ------------------------------------------------------------------------------------

def available_in(version_doc, region):
    """Whether VMs in `region` can be created from this version: replicated there and not being deleted."""
    if version_doc["properties"].get("provisioningState") == "Deleting":
        return False
    entry = (version_doc.get("_replication") or {}).get(norm_region(region))
    return bool(entry) and entry["state"] == "Completed"


def eligible_for_latest(version_doc, region):
    """Azure's 'latest': not excluded globally nor for this region's target, and replicated to it."""
    profile = version_doc["properties"]["publishingProfile"]
    if profile.get("excludeFromLatest"):
        return False
    target = next((r for r in profile["targetRegions"] if norm_region(r["name"]) == norm_region(region)), None)
    return bool(target) and not target.get("excludeFromLatest") and available_in(version_doc, region)


def pick_latest(version_docs, region):
    """The highest MAJOR.MINOR.PATCH (numerically, not by publish date) eligible in `region`, or None."""
    eligible = [d for d in version_docs if parse_version(d["name"]) and eligible_for_latest(d, region)]
    return max(eligible, key=lambda d: parse_version(d["name"]), default=None)


def not_available_error(image_id, region):
    # Azure's message really is wrapped in escaped quotes (see the reports cited at the top).
    return ArmError(404, "GalleryImageNotFound",
                    f"\"The gallery image {image_id} is not available in {norm_region(region)} region. Please contact "
                    "image owner to replicate to this region, or change your requested region.\"",
                    target="imageReference")


def no_latest_error(definition_id, region):
    key = norm_region(region)
    return ArmError(400, "InvalidParameter",
                    f"In region {key}, the following list of Shared Image Gallery images referenced from the "
                    f"deployment template were not found: {definition_id}/versions/latest. Please check that at "
                    f"least one image has been replicated to {key} or that the 'exclude from latest' flag is set to "
                    "false. Please refer to https://docs.microsoft.com/en-us/azure/virtual-machines/windows/"
                    "shared-image-galleries for instructions on creating and deleting such images.",
                    target="imageReference")


def next_version(names, major=-1):
    """Image Builder's versioning scheme 'Latest': one patch above the highest version (of `major`)."""
    parsed = [p for p in (parse_version(n) for n in names) if p and (major < 0 or p[0] == major)]
    if not parsed:
        return f"{major}.0.0" if major >= 0 else "1.0.0"
    top = max(parsed)
    return f"{top[0]}.{top[1]}.{top[2] + 1}"
