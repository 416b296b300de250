# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an instance runs and whether an operation runs on it, judged from what it reports. Pure (the rollout
planner imports it), so it imports nothing that does I/O.

One image comparator for the whole collection: runs_image. An image reference is a dict in either spelling,
the option's snake_case (``shared_gallery_image_id``, ``exact_version``) or Azure's camelCase.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

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
