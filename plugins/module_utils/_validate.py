# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option values checked by Azure's rules before any request: one walk over the argument spec, driven by tables.

``option_errors(spec, params, raw, names)`` returns one sentence per bad value (never quoting secrets):

- numbers: every int/float option at any depth is finite and within ``NUMBER_RULES`` (by option name);
- YAML booleans where text goes (``name: no`` reaching the module as ``"False"``), read from the raw arguments;
- names by Azure's naming rules (``NAME_RULES``; which kind of resource an option names: ``OPTION_NAMES`` plus
  the module's own ``names``), tags by Azure's tag rules, image references (``image``) by their accepted shapes.

VM sizes are checked for shape only: whether a size exists in the region is Azure's answer to the write (400
``InvalidParameter``/``SkuNotAvailable``, nothing changed), not worth a ``vmSizes`` listing on every run.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Tuple

# (least, most, least excluded): the bounds of each numeric option, by its name at any depth.
POSITIVE = (0, None, True)
NON_NEGATIVE = (0, None, False)
AT_LEAST_ONE = (1, None, False)
PERCENT = (0, 100, False)
NUMBER_RULES: Dict[str, Tuple[Optional[float], Optional[float], bool]] = {
    "wait_timeout": POSITIVE, "wait_sleep": POSITIVE, "health_timeout": POSITIVE,
    "interval_in_seconds": POSITIVE, "number_of_probes": AT_LEAST_ONE,
    "canary": NON_NEGATIVE, "canary_soak": NON_NEGATIVE, "pause_between_batches": NON_NEGATIVE, "soak": NON_NEGATIVE,
    "batch_size": AT_LEAST_ONE, "max_batches": AT_LEAST_ONE,
    "capacity": NON_NEGATIVE, "blue_capacity": NON_NEGATIVE, "minimum": NON_NEGATIVE, "maximum": NON_NEGATIVE,
    "default": NON_NEGATIVE, "value": NON_NEGATIVE, "grace_period": NON_NEGATIVE,
    "platform_fault_domain_count": AT_LEAST_ONE, "base_regular_priority_count": NON_NEGATIVE,
    "os_disk_size_gb": NON_NEGATIVE, "build_timeout_in_minutes": (0, 960, False), "update_limit": NON_NEGATIVE,
    "major": NON_NEGATIVE, "port": (1, 65535, False), "hours": (0, 23, False), "minutes": (0, 59, False),
    "max_price": (-1, None, False),  # -1: no cap (Azure's convention for Spot)
    "regular_priority_percentage_above_base": PERCENT, "max_batch_instance_percent": PERCENT,
    "max_unhealthy_instance_percent": PERCENT, "max_unhealthy_upgraded_instance_percent": PERCENT,
}

# Azure's naming rules (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules; scale sets:
# the characters that page forbids for virtualMachineScaleSets, # as it says breaks ARM URLs):
# (longest, pattern, what the pattern says in words).
NAME_RULES: Dict[str, Tuple[int, str, str]] = {
    "resource_group": (90, r"[-\w.()]*[-\w()]",
                       "letters, digits, underscores, hyphens, periods and parentheses, not ending in a period"),
    "scale_set": (64, r'(?!_)[^\\/"\[\]:|<>+=;,?*@&#\s\x00-\x1f]*[^\\/"\[\]:|<>+=;,?*@&#\s\x00-\x1f.-]',
                  "none of \\ / \" [ ] : | < > + = ; , ? * @ & # or spaces, not starting with an underscore nor "
                  "ending in a period or hyphen"),
    "gallery": (80, r"[A-Za-z0-9](?:[A-Za-z0-9_.]*[A-Za-z0-9])?",
                "letters, digits, underscores and periods, starting and ending with a letter or digit"),
    "gallery_image": (80, r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?",
                      "letters, digits, underscores, hyphens and periods, starting and ending with a letter or digit"),
    "user_assigned_identity": (128, r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}",
                               "letters, digits, underscores and hyphens, starting with a letter or digit, at least 3"),
}
# Left to the modules that own them, with Azure's limits in their words: gallery image version names and replica
# counts (_gallery), the rolling upgrade policy's 5-100 batch percent (_scale_set_model).
# What the top-level options of every module name; a module adds its own ``name`` (``AzureModule(names=...)``).
OPTION_NAMES = {"resource_group": "resource_group", "scale_set": "scale_set", "green_name": "scale_set",
                "gallery_name": "gallery", "gallery_image_name": "gallery_image"}

TAG_OPTIONS = ("tags", "artifact_tags")
TAG_NAME_FORBIDDEN = set('<>%&\\?/')
MAX_TAGS = 50

# Image references a scale set takes: gallery image (version), managed image, shared / community gallery ids.
_SEGMENT = r"[^/\s]+"
_ARM = r"/subscriptions/%s/resourceGroups/%s/providers/Microsoft\.Compute/" % (_SEGMENT, _SEGMENT)
IMAGE_ID_PATTERNS = (
    _ARM + r"galleries/%s/images/%s(?:/versions/%s)?" % (_SEGMENT, _SEGMENT, _SEGMENT),
    _ARM + r"images/%s" % _SEGMENT,
    r"/SharedGalleries/%s/Images/%s(?:/Versions/%s)?" % (_SEGMENT, _SEGMENT, _SEGMENT),
    r"/CommunityGalleries/%s/Images/%s(?:/Versions/%s)?" % (_SEGMENT, _SEGMENT, _SEGMENT),
)
IMAGE_OPTIONS = ("image",)
MARKETPLACE_KEYS = ("publisher", "offer", "sku")
_MARKETPLACE_FIELD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MARKETPLACE_VERSION = re.compile(r"latest|\d{1,10}\.\d{1,10}\.\d{1,20}")
# A VM size's shape (Standard_D2s_v3, Standard_E4-2s_v3, Basic_A1): whether it exists is Azure's to say.
_VM_SIZE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def bad_number(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for the option ``name`` (NUMBER_RULES), or None."""
    return _bad_number(value, NUMBER_RULES.get(name))


def _bad_number(value: Any, rule: Optional[Tuple[Optional[float], Optional[float], bool]]) -> Optional[str]:
    """Why ``value`` is not acceptable, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if rule is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    least, most, exclusive = rule
    if least is not None and (value <= least if exclusive else value < least):
        if most is not None:
            return "must be between %s and %s" % (least, most)
        return "must be more than %s" % least if exclusive else "must be %s or more" % least
    if most is not None and value > most:
        return "must be between %s and %s" % (least, most)
    return None


def name_error(kind: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be the name of a ``kind`` (a NAME_RULES key), or None."""
    longest, pattern, words = NAME_RULES[kind]
    text = str(value)
    if not text or len(text) > longest or not re.fullmatch(pattern, text):
        return "is not a valid %s name: 1 to %d characters, %s" % (kind.replace("_", " "), longest, words)
    return None


def tag_errors(label: str, tags: Any) -> List[str]:
    """Azure's tag rules: at most 50, names up to 512 characters without ``<>%&\\?/``, values up to 256."""
    if not isinstance(tags, dict):
        return []
    errors = []
    if len(tags) > MAX_TAGS:
        errors.append("%s has %d tags; Azure allows at most %d." % (label, len(tags), MAX_TAGS))
    for key, value in tags.items():
        key = str(key)
        if not key.strip() or len(key) > 512 or TAG_NAME_FORBIDDEN.intersection(key):
            errors.append("%s: tag name %r is not valid: 1 to 512 characters, none of < > %% & \\ ? /."
                          % (label, key[:40]))
        if value is not None and not isinstance(value, (str, int, float)):
            errors.append("%s: the value of tag %r must be text, not %s." % (label, key[:40], type(value).__name__))
        elif value is not None and len(str(value)) > 256:
            errors.append("%s: the value of tag %r is longer than 256 characters." % (label, key[:40]))
    return errors


def image_errors(label: str, image: Any) -> List[str]:
    """An image option: an image id (text, or ``{id: ...}``) or a marketplace reference (publisher, offer, sku,
    optional version: ``latest`` or major.minor.patch). Nothing else, so a typo fails here, not at the rollout."""
    expected = ("%s must be an image id (a gallery image or image version id, a managed image id, a shared or "
                "community gallery image id) or a marketplace reference {publisher, offer, sku, version}" % label)
    if isinstance(image, str):
        image = {"id": image}
    if not isinstance(image, dict):
        return ["%s, not %s." % (expected, type(image).__name__)]
    given = {key: value for key, value in image.items() if value is not None}
    unknown = sorted(set(given) - set(MARKETPLACE_KEYS + ("version", "id")))
    if unknown:
        return ["%s; unknown keys: %s." % (expected, ", ".join(str(key)[:40] for key in unknown))]
    if "id" in given:
        if len(given) > 1:
            return ["%s: give either id or publisher, offer, sku and version, not both." % label]
        if not isinstance(given["id"], str) or not any(re.fullmatch(pattern, given["id"], re.IGNORECASE)
                                                       for pattern in IMAGE_ID_PATTERNS):
            return ["%s; %r is none of these." % (expected, str(given["id"])[:200])]
        return []
    missing = [key for key in MARKETPLACE_KEYS if key not in given]
    if missing:
        return ["%s; the marketplace reference lacks %s." % (expected, ", ".join(missing))]
    errors = ["%s.%s %r is not a marketplace name (letters, digits, '.', '_', '-')." % (label, key, given[key])
              for key in MARKETPLACE_KEYS
              if not isinstance(given[key], str) or not _MARKETPLACE_FIELD.fullmatch(given[key])]
    version = given.get("version", "latest")
    if not isinstance(version, str) or not _MARKETPLACE_VERSION.fullmatch(version):
        errors.append("%s.version must be latest or major.minor.patch, not %r." % (label, version))
    return errors


def _is_text_option(option: Dict[str, Any]) -> bool:
    return option.get("type", "str") == "str" and not option.get("no_log")


def option_errors(spec: Dict[str, Any], params: Dict[str, Any], raw: Any,
                  names: Optional[Dict[str, str]] = None, path: str = "") -> List[str]:
    """Every bad value in ``params`` (converted by Ansible) and ``raw`` (the arguments as the task gave them)."""
    errors: List[str] = []
    raw = raw if isinstance(raw, dict) else {}
    kinds = dict(OPTION_NAMES, **(names or {})) if not path else {}   # names are checked at the top level only
    for name, option in spec.items():
        value = params.get(name) if isinstance(params, dict) else None
        label = path + name
        given = next((raw[key] for key in [name] + list(option.get("aliases") or []) if key in raw), None)
        if isinstance(given, bool) and _is_text_option(option):
            errors.append("%s is a YAML boolean (%s) where text is expected; quote it (\"%s\") if it is meant as "
                          "text." % (label, str(given).lower(), "no" if given is False else "yes"))
            continue
        if value is None:
            continue
        kind = option.get("type", "str")
        items = value if kind == "list" and isinstance(value, list) else None
        if kind in ("int", "float") or (items is not None and option.get("elements") in ("int", "float")):
            for number in (items if items is not None else [value]):
                why = bad_number(name, number)
                if why:
                    errors.append("%s %s, not %s." % (label, why, number))
                    break
        if name in kinds and isinstance(value, str):
            why = name_error(kinds[name], value)
            if why:
                errors.append("%s %r %s." % (label, value[:100], why))
        if name in TAG_OPTIONS:
            errors.extend(tag_errors(label, value))
        if name in IMAGE_OPTIONS and not path:
            errors.extend(image_errors(label, value))
        if name == "sku" and isinstance(value, dict) and isinstance(value.get("name"), str) \
                and not _VM_SIZE.fullmatch(value["name"]):
            errors.append("%s.name %r is not a VM size name (such as Standard_D2s_v3)." % (label, value["name"][:80]))
        if option.get("options"):
            raw_value = given if option.get("type") != "list" else None
            if kind == "dict" and isinstance(value, dict):
                errors.extend(option_errors(option["options"], value, raw_value, None, label + "."))
            elif items is not None:
                raw_items = given if isinstance(given, list) else []
                for index, item in enumerate(items):
                    raw_item = raw_items[index] if index < len(raw_items) else None
                    errors.extend(option_errors(option["options"], item, raw_item, None,
                                                "%s[%d]." % (label, index)))
    return errors
