# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an instance runs and whether an operation runs on it, judged from what it reports. Pure (the rollout
planner imports it), so it imports nothing that does I/O.

One image comparator for the whole collection: runs_image. An image reference is a dict in either spelling,
the option's snake_case (``shared_gallery_image_id``, ``exact_version``) or Azure's camelCase. One extension
comparator too: same_extension (a model extension against a VM's extension resource) and runs_extensions (an
instance's reported extensions against a rollout's extension definitions).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ._names import to_snake

# provisioningState values of an instance an operation is running on.
BUSY_STATES = ("creating", "updating", "deleting", "migrating")

_ID_KEYS = ("id", "shared_gallery_image_id", "community_gallery_image_id")
_LATEST = "latest"


def folded(value: Any) -> str:
    """A name or id as Azure compares it: case-insensitive, without surrounding blanks or a trailing slash."""
    return str(value or "").strip().rstrip("/").lower()


def _snake_keys(image: Optional[Dict]) -> Dict:
    return {to_snake(key): value for key, value in (image or {}).items()}


def _image_id(image: Dict) -> str:
    """The image's ARM id, lower case; a gallery ``.../versions/latest`` is the image definition (latest)."""
    text = next((folded(image.get(key)) for key in _ID_KEYS if image.get(key)), "")
    return text[:-len("/versions/" + _LATEST)] if text.endswith("/versions/" + _LATEST) else text


def runs_image(have: Optional[Dict], want: Optional[Dict]) -> Optional[bool]:
    """Whether an instance reporting the image reference ``have`` runs the image ``want``; None when it
    reports none.

    Ids (gallery image versions or definitions, managed images, shared or community gallery ids) compare
    case-insensitively. An instance on a gallery image definition ("latest") runs version V of it when its
    ``exact_version`` is V; marketplace references compare publisher, offer and sku case-insensitively and the
    version, where ``latest`` with ``exact_version`` V runs V. The other way round, "latest" is not known here
    (it moves with every new version): only an instance that references "latest" itself runs it.
    """
    if not have:
        return None
    have, want = _snake_keys(have), _snake_keys(want)
    have_id, want_id = _image_id(have), _image_id(want)
    exact = folded(have.get("exact_version"))
    if want_id or have_id:
        if have_id == want_id:
            return True
        definition, separator, version = want_id.rpartition("/versions/")
        return bool(separator and exact and have_id == definition and exact == version)
    if any(folded(have.get(key)) != folded(want.get(key)) for key in ("publisher", "offer", "sku")):
        return False
    have_version, want_version = folded(have.get("version")) or _LATEST, folded(want.get("version")) or _LATEST
    return have_version == want_version or (have_version == _LATEST and want_version == exact)


def same_image(have: Optional[Dict], want: Optional[Dict]) -> bool:
    """runs_image as a yes or no: a reference that names nothing is the same only as another that names nothing."""
    if not have or not want:
        return not have and not want
    return runs_image(have, want) is True


# ---------------------------------------------------------------------------------------------
# extensions: a model extension against what a VM reports in its ``resources``

def _handler_version(version: Any, auto_upgrade_minor: bool) -> tuple:
    """``typeHandlerVersion`` as (major, minor), or (major,) when Azure may move the minor version itself."""
    parts = [part.strip() for part in str(version or "").split(".")] + ["0"]
    major, minor = (parts[0] or "0").lstrip("0") or "0", (parts[1] or "0").lstrip("0") or "0"
    return (major,) if auto_upgrade_minor else (major, minor)


def same_extension(want: Dict[str, Any], have: Dict[str, Any], keys: Optional[Iterable[str]] = None) -> bool:
    """A model extension (REST, camelCase) against a VM's extension resource: publisher, type, handler version
    (major.minor; major only with autoUpgradeMinorVersion) and public settings - or, with ``keys``, those of
    them (and forceUpdateTag) ``want`` names. Protected settings are never compared: Azure never returns them."""
    want_props, have_props = want.get("properties") or {}, have.get("properties") or {}
    # Azure may move the minor version itself when the model allows it (a definition that does not say: the VM's)
    auto = bool(want_props["autoUpgradeMinorVersion"] if "autoUpgradeMinorVersion" in want_props
                else keys is not None and have_props.get("autoUpgradeMinorVersion"))
    keys = ("publisher", "type", "typeHandlerVersion", "settings") if keys is None else tuple(keys)
    for key in keys:
        if key in ("publisher", "type", "forceUpdateTag"):
            same = folded(want_props.get(key)) == folded(have_props.get(key))
        elif key == "typeHandlerVersion":
            same = (_handler_version(want_props.get(key), auto) == _handler_version(have_props.get(key), auto))
        elif key == "settings":
            same = (want_props.get(key) or {}) == (have_props.get(key) or {})
        else:
            continue
        if not same:
            return False
    return True


def extension_named(resources: Iterable[Dict[str, Any]], name: str) -> Optional[Dict[str, Any]]:
    """The extension resource called ``name`` (case-insensitive; a resource's name may be ``vm/name``)."""
    return next((ext for ext in resources or [] if folded(str(ext.get("name") or "").rsplit("/", 1)[-1])
                 == folded(name)), None)


# The option fields (snake_case) an instance reports for an extension, as Azure's camelCase.
REPORTED_EXTENSION_FIELDS = {"publisher": "publisher", "type": "type", "type_handler_version": "typeHandlerVersion",
                             "settings": "settings", "force_update_tag": "forceUpdateTag",
                             "auto_upgrade_minor_version": "autoUpgradeMinorVersion"}


def reported_extensions(resources: Optional[Iterable[Dict[str, Any]]]) -> Optional[List[Dict[str, Any]]]:
    """A VM's extension resources (REST) as it reports them, in the option shape (name, publisher, type,
    type_handler_version, auto_upgrade_minor_version, force_update_tag, settings, provisioning_state); None
    when the VM reports no ``resources`` at all."""
    if resources is None:
        return None
    out = []
    for ext in resources:
        props = ext.get("properties") or {}
        item = {"name": str(ext.get("name") or "").rsplit("/", 1)[-1]}
        item.update({snake: props.get(camel) for snake, camel in REPORTED_EXTENSION_FIELDS.items()})
        item["provisioning_state"] = props.get("provisioningState")
        out.append(item)
    return out


def runs_extensions(have: Optional[List[Dict[str, Any]]], want: Iterable[Dict[str, Any]]) -> Optional[bool]:
    """Whether an instance reporting the extensions ``have`` (reported_extensions) runs the extension
    definitions ``want`` (option shape: ``name`` and the fields that matter, or ``{"name", "absent": true}`` for
    an extension the model does not have); None when the instance reports none at all (then it says nothing)."""
    if have is None:
        return None
    for option in want:
        found = extension_named(have, option["name"])
        if option.get("absent"):
            if found is not None:
                return False
            continue
        if found is None or not same_extension(_as_rest(option), _as_rest(found), keys=_as_rest(option)["properties"]):
            return False
    return True


def _as_rest(option: Dict[str, Any]) -> Dict[str, Any]:
    return {"properties": {camel: option[snake] for snake, camel in REPORTED_EXTENSION_FIELDS.items()
                           if option.get(snake) is not None}}
