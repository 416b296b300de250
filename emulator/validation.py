"""What Azure refuses before anything is written: names, tags, locations, admin passwords, resource ids,
image references and VM sizes, with the codes and messages Azure sends (sources in README.md,
"Refused input"). Pure functions raising ArmError; `check_request` runs in the pipeline for every ARM
PUT/PATCH, the scale-set checks run from the Compute provider.
"""
import re

from emulator.arm import ArmError

# Public Azure regions (ARM's list in LocationNotAvailableForResourceGroup answers, 2024, plus newer ones).
REGIONS = (
    "eastus", "eastus2", "southcentralus", "westus2", "westus3", "australiaeast", "southeastasia", "northeurope",
    "swedencentral", "uksouth", "westeurope", "centralus", "southafricanorth", "centralindia", "eastasia",
    "japaneast", "koreacentral", "canadacentral", "francecentral", "germanywestcentral", "italynorth",
    "norwayeast", "polandcentral", "spaincentral", "switzerlandnorth", "mexicocentral", "uaenorth",
    "brazilsouth", "israelcentral", "qatarcentral", "centralusstage", "northcentralus", "westus",
    "jioindiawest", "westcentralus", "southafricawest", "australiacentral", "australiacentral2",
    "australiasoutheast", "japanwest", "jioindiacentral", "koreasouth", "southindia", "westindia",
    "canadaeast", "francesouth", "germanynorth", "norwaywest", "switzerlandwest", "ukwest", "uaecentral",
    "brazilsoutheast", "newzealandnorth", "indonesiacentral", "malaysiawest", "chilecentral", "austriaeast",
    "belgiumcentral", "denmarkeast", "centraluseuap", "eastus2euap")


# Global resources (e.g. action groups) take location 'global'; these never do.
_REGIONAL_ONLY = ("microsoft.compute/", "microsoft.resources/")


def normalize_location(value):
    """'West Europe' -> 'westeurope' (ARM accepts display names and names alike)."""
    return str(value).replace(" ", "").lower()


def check_location(location, resource_type):
    where = normalize_location(location)
    if where in REGIONS or (where == "global" and not resource_type.lower().startswith(_REGIONAL_ONLY)):
        return
    regions = ",".join(REGIONS)
    if resource_type.lower() == "microsoft.resources/resourcegroups":
        raise ArmError(400, "LocationNotAvailableForResourceGroup",
                       f"The provided location '{location}' is not available for resource group. List of available "
                       f"regions is '{regions}'.")
    raise ArmError(400, "LocationNotAvailableForResourceType",
                   f"The provided location '{location}' is not available for resource type '{resource_type}'. "
                   f"List of available regions for the resource type is '{regions}'.")


# --- tags (ARM, every resource type) --------------------------------------------------------------

TAG_NAME_MAX, TAG_VALUE_MAX, TAGS_MAX = 512, 256, 50
_TAG_NAME_BAD = re.compile(r"[<>%&\\?/\x00-\x1f\x7f]")


def check_tags(tags):
    if not isinstance(tags, dict):
        return
    if len(tags) > TAGS_MAX:
        raise ArmError(400, "InvalidTagCount", f"The number of tags ({len(tags)}) exceeds the maximum of "
                                                f"{TAGS_MAX} tags per resource.", target="tags")
    bad = [name for name in tags if _TAG_NAME_BAD.search(name)]
    if bad:
        raise ArmError(400, "InvalidTagNameCharacters",
                       f"The tag names '{', '.join(bad)}' have reserved characters '<,>,%,&,\\,?,/' or control "
                       "characters.")
    long_names = [name for name in tags if len(name) > TAG_NAME_MAX]
    if long_names:
        raise ArmError(400, "InvalidTagNameLength",
                       f"Tag key too large. Following tag name '{', '.join(long_names)}' exceeded the maximum length. "
                       f"Maximum allowed length for tag name - '{TAG_NAME_MAX}' characters.")
    long_values = [str(v) for v in tags.values() if v is not None and len(str(v)) > TAG_VALUE_MAX]
    if long_values:
        raise ArmError(400, "InvalidTagValueLength",
                       f"Tag value too large. Following tag value '{', '.join(long_values)}' exceeded the maximum "
                       f"length. Maximum allowed length for tag value - '{TAG_VALUE_MAX}' characters.")


# --- resource names -------------------------------------------------------------------------------

# Compute's entity-name rule as its errors print it (.NET syntax; galleries: Compute Gallery
# troubleshooting doc), and the same rule for Python's re.
_ENTITY_80 = (r"^[^_\W][\w-._]{0,79}(?<![-.])$", r"^[^_\W][\w\-._]{0,79}(?<![-.])$")
# learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftcompute:
# scale sets 1-64, alphanumerics, underscores, periods and hyphens; start alphanumeric; end alphanumeric or '_'.
_ENTITY_64 = (r"^[^_\W][\w-._]{0,63}(?<![-.])$", r"^[^_\W][\w\-._]{0,63}(?<![-.])$")
# resource type (lower case) -> (the rule as Azure prints it, the rule as Python matches it)
NAME_RULES = {
    "microsoft.compute/virtualmachinescalesets": _ENTITY_64,
    "microsoft.compute/virtualmachines": _ENTITY_64,
    "microsoft.compute/galleries": _ENTITY_80,
    "microsoft.compute/galleries/images": _ENTITY_80,
}   # image version names (Major.Minor.Patch) are the gallery provider's check (gallery/model.py)
_RG_NAME = re.compile(r"^[-\w.()]{1,90}$")


def check_name(resource_type, param, name):
    """Refuse a name its resource type does not allow (only the types in NAME_RULES, and resource groups)."""
    rtype = resource_type.lower()
    if rtype == "microsoft.resources/resourcegroups":
        if not _RG_NAME.match(name) or name.endswith("."):
            bad = "".join(dict.fromkeys(c for c in name if not re.match(r"[-\w.()]", c)))
            raise ArmError(400, "InvalidResourceGroup",
                           f"The provided resource group name '{_printable(name)}' has these invalid characters: "
                           f"'{_printable(bad) or '.'}'. The name can only be a letter, digit, '-', '.', '(', ')' or "
                           "'_'. See https://aka.ms/ResourceGroupNamingRestrictions for more information.")
        return
    rule = NAME_RULES.get(rtype)
    if rule is None:
        return
    matched = re.match(rule[1], name, re.ASCII)
    if not matched:
        raise ArmError(400, "InvalidParameter",
                       f"The entity name '{param}' is invalid according to its validation rule: {rule[0]}.",
                       target=param)


def _printable(text):
    """A name echoed in a message, control characters escaped (ARM never echoes raw NULs)."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


# --- the pipeline's checks ------------------------------------------------------------------------

def resource_type_of(path):
    """'/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y' ->
    'Microsoft.Compute/galleries/images'; a resource group path -> 'Microsoft.Resources/resourceGroups'."""
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return "Microsoft.Resources/resourceGroups" if len(parts) == 4 else None
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[at + 1:]
    if len(rest) < 3:
        return None
    return "/".join([rest[0]] + rest[1::2])


def check_request(req):
    """ARM's own checks on a PUT/PATCH of a resource: its name (PUT), location and tags."""
    if req.method not in ("PUT", "PATCH"):
        return
    rtype = resource_type_of(req.path)
    if rtype is None:
        return
    if req.method == "PUT" and req.params:
        param, name = list(req.params.items())[-1]
        check_name(rtype, param, name)
    body = req.body if isinstance(req.body, dict) else {}
    if isinstance(body.get("location"), str) and body["location"]:
        check_location(body["location"], rtype)
    check_tags(body.get("tags"))


# --- admin passwords ------------------------------------------------------------------------------

_PASSWORD_RULES = (r"[A-Z]", r"[a-z]", r"[0-9]", r"[^A-Za-z0-9\x00-\x1f\x7f]")


def check_password(password, windows, target="adminPassword"):
    """Length and 3 of 4 character classes, no control characters; the password is never echoed."""
    low, high = (8, 123) if windows else (6, 72)
    text = password if isinstance(password, str) else ""
    classes = sum(bool(re.search(rule, text)) for rule in _PASSWORD_RULES)
    if low <= len(text) <= high and classes >= 3 and not re.search(r"[\x00-\x1f\x7f]", text):
        return
    raise ArmError(400, "InvalidParameter",
                   f"The supplied password must be between {low}-{high} characters long and must satisfy at least 3 "
                   "of password complexity requirements from the following:\r\n1) Contains an uppercase character"
                   "\r\n2) Contains a lowercase character\r\n3) Contains a numeric digit\r\n4) Contains a special "
                   "character\r\n5) Control characters are not allowed", target=target)


# --- resource ids and image references ------------------------------------------------------------

_SEGMENT = r"[^/\x00-\x1f\x7f]+"
_ARM_ID = re.compile(rf"^(?:/subscriptions/{_SEGMENT}(?:/resourceGroups/{_SEGMENT})?)?/providers/{_SEGMENT}"
                     rf"(?:/{_SEGMENT}/{_SEGMENT})+/?$", re.I)
# Images shared outside ARM ids: direct shared galleries and community galleries.
_SHARED_ID = re.compile(rf"^/(?:SharedGalleries|CommunityGalleries)/{_SEGMENT}/Images/{_SEGMENT}"
                        rf"(?:/Versions/{_SEGMENT})?$", re.I)
_IMAGE_TYPES = ("microsoft.compute/galleries/images", "microsoft.compute/galleries/images/versions",
                "microsoft.compute/images")
# Marketplace names: what publishers, offers and skus are made of (no paths, no spaces).
_MARKETPLACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MARKETPLACE_VERSION = re.compile(r"^(?:latest|[0-9]+\.[0-9]+\.[0-9]+)$", re.I)


def check_resource_id(value, path):
    """ARM's LinkedInvalidPropertyId for an id that is not a fully qualified resource id."""
    if isinstance(value, str) and _ARM_ID.match(value):
        return
    raise ArmError(400, "LinkedInvalidPropertyId",
                   f"Property id '{_printable(str(value))}' at path '{path}' is invalid. Expect fully qualified "
                   "resource Id that start with '/subscriptions/{subscriptionId}' or "
                   "'/providers/{resourceProviderNamespace}/'.")


def check_image_reference(ref, path="properties.virtualMachineProfile.storageProfile.imageReference"):
    """An image reference is an image id (gallery image or version, managed image, shared or community
    gallery) or a complete marketplace reference (publisher, offer, sku, version)."""
    if not isinstance(ref, dict) or not ref:
        return
    for key in ("sharedGalleryImageId", "communityGalleryImageId"):
        if ref.get(key):
            if not _SHARED_ID.match(str(ref[key])):
                raise ArmError(400, "InvalidParameter", f"The value of parameter imageReference.{key} is invalid.",
                               target=f"imageReference.{key}")
            return
    if ref.get("id") is not None:
        check_resource_id(ref["id"], path + ".id")
        if resource_type_of(ref["id"]).lower() not in _IMAGE_TYPES:
            raise ArmError(400, "InvalidParameter", "The value of parameter imageReference.id is invalid.",
                           target="imageReference.id")
        return
    for key in ("publisher", "offer", "sku"):
        if not isinstance(ref.get(key), str) or not _MARKETPLACE.match(ref[key]):
            raise ArmError(400, "InvalidParameter", f"The value of parameter imageReference.{key} is invalid.",
                           target=f"imageReference.{key}")
    version = ref.get("version", "latest")
    if not isinstance(version, str) or not _MARKETPLACE_VERSION.match(version):
        raise ArmError(400, "InvalidParameter", "The value of parameter imageReference.version is invalid.",
                       target="imageReference.version")


# --- VM sizes -------------------------------------------------------------------------------------

def _family(template, counts):
    return [template.format(n) for n in counts]


# Sizes of the families a scale set is likely to use (learn.microsoft.com/azure/virtual-machines/sizes),
# every size the project's tests, fixtures and playbooks use among them. The same in every region here.
VM_SIZES = tuple(
    ["Standard_A0", "Standard_A1", "Standard_A2", "Standard_A3", "Standard_A4",
     "Standard_A1_v2", "Standard_A2_v2", "Standard_A4_v2", "Standard_A8_v2", "Standard_A2m_v2", "Standard_A4m_v2",
     "Standard_A8m_v2", "Basic_A0", "Basic_A1", "Basic_A2"]
    + _family("Standard_B{}", ("1ls", "1s", "1ms", "2s", "2ms", "4ms", "8ms", "12ms", "16ms", "20ms"))
    + _family("Standard_D{}_v2", (1, 2, 3, 4, 5, 11, 12, 13, 14, 15))
    + _family("Standard_DS{}_v2", (1, 2, 3, 4, 5, 11, 12, 13, 14, 15))
    + _family("Standard_F{}s_v2", (2, 4, 8, 16, 32, 48, 64, 72))
    + [f"Standard_{kind}{n}{suffix}" for kind in ("D", "E") for n in (2, 4, 8, 16, 32, 48, 64)
       for suffix in ("_v3", "s_v3", "_v4", "s_v4", "ds_v4", "_v5", "s_v5", "ds_v5", "as_v5", "ads_v5")]
    + _family("Standard_D{}s_v6", (2, 4, 8, 16, 32, 48, 64, 96))
    + _family("Standard_D{}ps_v5", (2, 4, 8, 16, 32, 48, 64))
    + [f"Standard_DC{n}{kind}_v5" for kind in ("as", "ads", "es", "eds") for n in (2, 4, 8, 16, 32, 48, 64, 96)]
    + _family("Standard_NC{}as_T4_v3", (4, 8, 16, 64)))
_SIZES_LOWER = {size.lower(): size for size in VM_SIZES}


def sizes_in(location):  # pylint: disable=unused-argument
    """The VM sizes of a region (every modelled region offers the whole table)."""
    return VM_SIZES


def check_vm_size(size, location, target="sku.name"):
    if isinstance(size, str) and size.lower() in _SIZES_LOWER:
        return
    raise ArmError(400, "InvalidParameter",
                   f"The requested VM size {size} is not available in the current region. The sizes available in the "
                   f"current region are: {','.join(sizes_in(location))}.\r\nFind out more on the available VM sizes "
                   "in each region at https://aka.ms/azure-regions.", target=target)
