# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure VM Image Builder templates, the way image_template and image_build see them. Pure functions.

What Azure allows, and so what these functions enforce before anything is sent:

* A template's source, customizers, build timeout and location cannot be changed once submitted
  (Image Builder answers 409 "Update/Upgrade of image templates is currently not supported"); its tags,
  identity, distribution targets and build VM profile can (ImageTemplateUpdateParameters, PATCH).
* Image Builder runs as exactly one user-assigned managed identity.
* Shell and PowerShell customizers take exactly one of ``scriptUri`` or ``inline``; File customizers a
  ``sourceUri`` and a ``destination``; each distributor a unique ``runOutputName`` (``[A-Za-z0-9-_.]{1,64}``).
* ``buildTimeoutInMinutes`` is 0 (Azure's default, 4 hours) to 960.
* No template can be changed or deleted while it builds (409 OperationNotAllowed ... runState: 'running').
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any, Dict, List, Optional

from ._common import resource_result, snake
from ._compare import DifferenceTracker, compare, prune
from ._gallery import replica_count_error, split_version_id, version_name_error
from ._regions import region_key
from ._rest import camel, iso_datetime, tags_rule, tags_to_send

SOURCE_FIELDS = {
    "PlatformImage": ("publisher", "offer", "sku", "version"),
    "ManagedImage": ("image_id",),
    "SharedImageVersion": ("image_version_id",),
}
CUSTOMIZER_FIELDS = {
    "Shell": ("name", "script_uri", "sha256_checksum", "inline"),
    "PowerShell": ("name", "script_uri", "sha256_checksum", "inline", "run_elevated", "run_as_system",
                   "valid_exit_codes"),
    "File": ("name", "source_uri", "sha256_checksum", "destination"),
    "WindowsRestart": ("name", "restart_command", "restart_check_command", "restart_timeout"),
    "WindowsUpdate": ("name", "search_criteria", "filters", "update_limit"),
}
DISTRIBUTOR_FIELDS = {
    "SharedImage": ("run_output_name", "artifact_tags", "gallery_image_id", "target_regions", "versioning",
                    "exclude_from_latest", "replication_mode"),
    "ManagedImage": ("run_output_name", "artifact_tags", "image_id", "location"),
    "VHD": ("run_output_name", "artifact_tags", "uri"),
}
# What a PATCH may change (ImageTemplateUpdateParameters); anything else needs a new template.
UPDATABLE = ("tags", "identity", "distribute", "vm_profile")
TEMPLATE_KEYS = ("location", "identity", "source", "customize", "distribute", "vm_profile", "build_timeout_in_minutes",
                 "tags")
MAX_BUILD_TIMEOUT = 960
DEFAULT_BUILD_TIMEOUT = 240  # minutes, when buildTimeoutInMinutes is 0 or absent
RUN_ENDED = ("Succeeded", "PartiallySucceeded", "Failed", "Canceled")
_RUN_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9-_.]{1,64}$")


# ---------------------------------------------------------------------------------------------
# desired and current

def desired_template(params: Dict[str, Any]) -> Dict[str, Any]:
    desired = prune({key: copy.deepcopy(params.get(key)) for key in TEMPLATE_KEYS})
    if "location" in desired:
        desired["location"] = region_key(desired["location"])
    for distributor in desired.get("distribute") or []:
        for region in distributor.get("target_regions") or []:
            region["name"] = region_key(region.get("name"))
        if distributor.get("location"):
            distributor["location"] = region_key(distributor["location"])
    return desired


def template_options(resource: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A template (REST dict) as options. Read-only fields (exactVersion, provisioning state, runs) left out."""
    if not resource:
        return {}
    props = resource.get("properties") or {}
    identities = list(((resource.get("identity") or {}).get("userAssignedIdentities") or {}).keys())
    source = {key: value for key, value in snake(props.get("source") or {}).items() if key != "exact_version"}
    distribute = []
    for item in props.get("distribute") or []:
        option = snake({key: value for key, value in item.items() if key != "artifactTags"})
        if "artifactTags" in item:
            option["artifact_tags"] = dict(item["artifactTags"] or {})
        for region in option.get("target_regions") or []:
            region["name"] = region_key(region.get("name"))
        if option.get("location"):
            option["location"] = region_key(option["location"])
        distribute.append(option)
    return {
        "location": resource.get("location"),
        "identity": identities[0] if identities else None,
        "source": source,
        "customize": snake(props.get("customize") or []),
        "distribute": distribute,
        "vm_profile": snake(props.get("vmProfile") or {}),
        "build_timeout_in_minutes": props.get("buildTimeoutInMinutes") or 0,
        "tags": resource.get("tags") or {},
    }


def template_rules(purge_tags: bool) -> Dict[str, str]:
    return {"location": "location", "identity": "id", "source.type": "enum", "source.image_id": "id",
            "source.image_version_id": "id", "vm_profile.user_assigned_identities": "ids",
            "vm_profile.vnet_config.subnet_id": "id", "tags": tags_rule(purge_tags)}


ITEM_RULES = {"type": "enum", "gallery_image_id": "id", "image_id": "id", "target_regions": "named",
              "target_regions[].storage_account_type": "enum", "artifact_tags": "map", "location": "location",
              "replication_mode": "enum", "versioning.scheme": "enum"}


def template_differences(desired: Dict[str, Any], resource: Optional[Dict[str, Any]],
                         purge_tags: bool) -> DifferenceTracker:
    """What differs. Customizers and distributors are compared in order, each on the fields set; a list that
    differs is one difference (the whole list before and after), as a template takes it whole."""
    current = template_options(resource) if resource else {}
    rules = template_rules(purge_tags)
    if resource is None:
        rules["tags"] = "map"
    tracker = compare({key: value for key, value in desired.items() if key not in ("customize", "distribute")},
                      current, rules)
    for key in ("customize", "distribute"):
        if key not in desired:
            continue
        have = current.get(key) or []
        want = desired[key]
        same = len(want) == len(have) and not any(
            compare(item, have[index], ITEM_RULES) for index, item in enumerate(want))
        if not same:
            tracker.add((key,), have if resource else None, want)
    return tracker


def needs_new_template(tracker: DifferenceTracker) -> List[str]:
    """The differences a PATCH cannot make (they need the template deleted and created again)."""
    return [path for path in tracker.display_paths() if path.split(".")[0].split("[")[0] not in UPDATABLE]


# ---------------------------------------------------------------------------------------------
# Azure's rules on the options (no I/O)

def template_errors(desired: Dict[str, Any], creating: bool) -> List[str]:
    errors: List[str] = []
    if creating:
        missing = [key for key in ("identity", "source", "distribute") if not desired.get(key)]
        if missing:
            errors.append("To create an image template, set %s." % ", ".join(missing))
    errors += _source_errors(desired.get("source"))
    for index, customizer in enumerate(desired.get("customize") or []):
        errors += _customizer_errors(index, customizer)
    names = set()
    for index, distributor in enumerate(desired.get("distribute") or []):
        errors += _distributor_errors(index, distributor)
        name = str(distributor.get("run_output_name") or "").lower()
        if name in names:
            errors.append("distribute[%s].run_output_name %r is used twice: each distributor needs its own."
                          % (index, distributor.get("run_output_name")))
        names.add(name)
    timeout = desired.get("build_timeout_in_minutes")
    if timeout is not None and not 0 <= timeout <= MAX_BUILD_TIMEOUT:
        errors.append("build_timeout_in_minutes must be from 0 (Azure's default, %s) to %s, not %s."
                      % (DEFAULT_BUILD_TIMEOUT, MAX_BUILD_TIMEOUT, timeout))
    return errors


def _extra_fields(where: str, item: Dict[str, Any], kind: str, allowed) -> List[str]:
    extra = sorted(key for key in item if key not in allowed and key != "type")
    if extra:
        verb = "is" if len(extra) == 1 else "are"
        return ["%s: %s %s not used by a %s (it takes %s)." % (where, ", ".join(extra), verb, kind, ", ".join(allowed))]
    return []


def _source_errors(source: Optional[Dict[str, Any]]) -> List[str]:
    if not source:
        return []
    kind = source.get("type")
    errors = _extra_fields("source", source, kind, SOURCE_FIELDS[kind])
    if kind == "PlatformImage":
        missing = [key for key in ("publisher", "offer", "sku") if not source.get(key)]
        if missing:
            errors.append("source: a PlatformImage needs %s." % ", ".join(missing))
    elif kind == "ManagedImage" and not source.get("image_id"):
        errors.append("source: a ManagedImage needs image_id.")
    elif kind == "SharedImageVersion":
        parts = split_version_id(source.get("image_version_id"))
        if parts is None:
            errors.append("source: a SharedImageVersion needs image_version_id, the id of a gallery image version "
                          "(or of an image definition, for its latest version).")
        elif parts["version"] and parts["version"].lower() != "latest":
            errors += [error for error in [version_name_error(parts["version"], "source.image_version_id's version")]
                       if error]
    return errors


def _customizer_errors(index: int, customizer: Dict[str, Any]) -> List[str]:
    where = "customize[%s]%s" % (index, " (%s)" % customizer["name"] if customizer.get("name") else "")
    kind = customizer.get("type")
    errors = _extra_fields(where, customizer, kind, CUSTOMIZER_FIELDS[kind])
    if kind in ("Shell", "PowerShell") and bool(customizer.get("script_uri")) == bool(customizer.get("inline")):
        errors.append("%s: a %s customizer takes exactly one of script_uri or inline." % (where, kind))
    if kind == "File":
        missing = [key for key in ("source_uri", "destination") if not customizer.get(key)]
        if missing:
            errors.append("%s: a File customizer needs %s." % (where, " and ".join(missing)))
    return errors


def _distributor_errors(index: int, distributor: Dict[str, Any]) -> List[str]:
    where = "distribute[%s]" % index
    kind = distributor.get("type")
    errors = _extra_fields(where, distributor, kind, DISTRIBUTOR_FIELDS[kind])
    name = distributor.get("run_output_name")
    if not name or not _RUN_OUTPUT_NAME.match(name):
        errors.append("%s.run_output_name %r must be 1 to 64 letters, digits, '-', '_' or '.'." % (where, name))
    if kind == "SharedImage":
        parts = split_version_id(distributor.get("gallery_image_id"))
        if parts is None:
            errors.append("%s.gallery_image_id must be the id of a gallery image definition (or of a version of it)."
                          % where)
        elif parts["version"]:
            errors += [error for error in [version_name_error(parts["version"], "%s.gallery_image_id's version" % where)]
                       if error]
            if distributor.get("versioning"):
                errors.append("%s: versioning cannot be set when gallery_image_id names a version." % where)
        seen = set()
        for region in distributor.get("target_regions") or []:
            if region["name"] in seen:
                errors.append("%s.target_regions lists %s more than once." % (where, region["name"]))
            seen.add(region["name"])
            error = replica_count_error(region.get("replica_count"),
                                        "%s.target_regions[%s].replica_count" % (where, region["name"]))
            if error:
                errors.append(error)
    elif kind == "ManagedImage":
        missing = [key for key in ("image_id", "location") if not distributor.get(key)]
        if missing:
            errors.append("%s: a ManagedImage distributor needs %s." % (where, " and ".join(missing)))
    return errors


def regions_of(desired: Dict[str, Any]) -> List[str]:
    """Every region the options name (template location, distribution target regions and locations)."""
    names = [desired.get("location")]
    for distributor in desired.get("distribute") or []:
        names += [region["name"] for region in distributor.get("target_regions") or []]
        names.append(distributor.get("location"))
    return [name for name in names if name]


def shared_image_targets(desired: Dict[str, Any]) -> List[Dict[str, Optional[str]]]:
    """split_version_id of each SharedImage distributor's gallery_image_id (the definitions written into)."""
    return [split_version_id(d["gallery_image_id"]) for d in desired.get("distribute") or []
            if d.get("type") == "SharedImage" and split_version_id(d.get("gallery_image_id"))]


# ---------------------------------------------------------------------------------------------
# bodies

def identity_body(identity_id: str) -> Dict[str, Any]:
    return {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}}


def create_body(desired: Dict[str, Any], location: str) -> Dict[str, Any]:
    props = {key: desired[key] for key in ("source", "customize", "distribute", "vm_profile", "build_timeout_in_minutes")
             if key in desired}
    body: Dict[str, Any] = {"location": location, "identity": identity_body(desired["identity"]),
                            "properties": camel(props)}
    if "tags" in desired:
        body["tags"] = dict(desired["tags"])
    return body


def update_body(tracker: DifferenceTracker, desired: Dict[str, Any], resource: Dict[str, Any],
                purge_tags: bool) -> Dict[str, Any]:
    """PATCH of what may change: tags, identity, distribution (each desired distributor merged over the current
    one at its position), build VM profile (merged over the current one)."""
    body: Dict[str, Any] = {}
    props = resource.get("properties") or {}
    if tracker.touches("tags"):
        body["tags"] = tags_to_send(desired.get("tags"), resource.get("tags"), purge_tags)
    if tracker.touches("identity"):
        body["identity"] = identity_body(desired["identity"])
    update: Dict[str, Any] = {}
    if tracker.touches("distribute"):
        current = props.get("distribute") or []
        wanted = camel(desired["distribute"])
        if len(current) == len(wanted):
            wanted = [dict(have, **want) for have, want in zip(current, wanted)]
        update["distribute"] = wanted
    if tracker.touches("vm_profile"):
        update["vmProfile"] = dict(props.get("vmProfile") or {}, **camel(desired["vm_profile"]))
    if update:
        body["properties"] = update
    return body


# ---------------------------------------------------------------------------------------------
# runs

def _instant(value: Any) -> Optional[datetime]:
    """A real instant from an ISO date-time, else None (Go's zero time 0001-01-01 included)."""
    try:
        parsed = datetime.fromisoformat(str(iso_datetime(value)).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.year > 1 else None


def run_status(run: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A build's status (snake_case) as modules return it: ``end_time`` only once it has ended, and
    ``duration_seconds`` (start to end) once it has.

    While a build runs Azure reports ``endTime: 0001-01-01T00:00:00Z`` (Go's zero time; recorded in
    Azure/azure-cli test_image_builder_cancel.yaml): neither that nor any end time counts until ``run_state``
    says the build ended.
    """
    if not run:
        return None
    out = dict(run)
    start, end = _instant(out.get("start_time")), _instant(out.get("end_time"))
    if out.get("run_state") not in RUN_ENDED or str(out.get("end_time") or "").startswith("0001-"):
        out["end_time"] = None
    ended = out.get("run_state") in RUN_ENDED and start is not None and end is not None and end >= start
    out["duration_seconds"] = int((end - start).total_seconds()) if ended else None
    return out


def last_run(resource: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    status = ((resource or {}).get("properties") or {}).get("lastRunStatus")
    return run_status(snake(status)) if status else None


def template_result(resource: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A template as modules return it (``last_run_status`` as ``run_status`` gives it)."""
    if not resource:
        return None
    result = resource_result(resource)
    if result.get("last_run_status"):
        result["last_run_status"] = run_status(result["last_run_status"])
    return result


def run_state(resource: Optional[Dict[str, Any]]) -> Optional[str]:
    return (last_run(resource) or {}).get("run_state")


def is_running(resource: Optional[Dict[str, Any]]) -> bool:
    return run_state(resource) in ("Running", "Canceling")


def build_timeout_seconds(resource: Optional[Dict[str, Any]]) -> int:
    minutes = ((resource or {}).get("properties") or {}).get("buildTimeoutInMinutes") or DEFAULT_BUILD_TIMEOUT
    return int(minutes) * 60


def describe_run(resource: Optional[Dict[str, Any]]) -> str:
    """``Running (Customizing) since 2026-05-01T10:00:00Z`` / ``Failed at ...: message`` / ``never run``."""
    run = last_run(resource)
    if not run:
        return "never run"
    state = run.get("run_state") or "Unknown"
    if state in RUN_ENDED:
        text = "%s at %s" % (state, run.get("end_time") or "?")
        if run.get("duration_seconds") is not None:
            text += " after %s" % _span(run["duration_seconds"])
        return text + (": %s" % run["message"] if run.get("message") and state != "Succeeded" else "")
    sub_state = run.get("run_sub_state")
    return "%s%s since %s" % (state, " (%s)" % sub_state if sub_state else "", run.get("start_time") or "?")


def _span(seconds: int) -> str:
    """``21m07s``, ``1h02m03s``, ``45s``."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%02dm%02ds" % (hours, minutes, secs)
    return "%dm%02ds" % (minutes, secs) if minutes else "%ds" % secs


def provisioning_problem(resource: Optional[Dict[str, Any]]) -> Optional[str]:
    props = (resource or {}).get("properties") or {}
    if props.get("provisioningState") != "Failed":
        return None
    error = props.get("provisioningError") or {}
    return "%s: %s" % (error.get("provisioningErrorCode") or "ProvisioningFailed", error.get("message") or "no message")
