# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option names <-> REST names, one word table both ways. Pure.

Options are the snake_case of REST names (``osDiskSizeGB`` <-> ``os_disk_size_gb``); the keys of user-owned
maps (tags) are never renamed.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

# Words that REST spells in capitals when they are not the first word of a name.
CAMEL_WORDS = {"os": "OS", "gb": "GB", "ip": "IP"}
# Maps whose keys are the user's (never renamed either way).
VERBATIM = frozenset(("tags", "artifact_tags", "managed_resource_tags"))

_SPECIAL_WORDS = (("MBps", "Mbps"), ("VMs", "Vms"))
_ACRONYM_BOUNDARY = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")


def to_snake(name: str) -> str:
    """camelCase REST name to snake_case: osDiskSizeGB -> os_disk_size_gb, enableIPForwarding -> enable_ip_forwarding,
    doNotRunExtensionsOnOverprovisionedVMs -> do_not_run_extensions_on_overprovisioned_vms."""
    for word, replacement in _SPECIAL_WORDS:
        name = name.replace(word, replacement)
    return _WORD_BOUNDARY.sub(r"\1_\2", _ACRONYM_BOUNDARY.sub(r"\1_\2", name)).lower()


def to_camel(name: str) -> str:
    """snake_case option -> camelCase REST name: os_disk_size_gb -> osDiskSizeGB, hyper_v_generation -> hyperVGeneration,
    automatic_os_upgrade_policy -> automaticOSUpgradePolicy."""
    first, *rest = name.split("_")
    return first + "".join(CAMEL_WORDS.get(word, word[:1].upper() + word[1:]) for word in rest)


def camel(obj: Any) -> Any:
    """An option-shaped (pruned) structure as a REST structure, keys camelCased at every level."""
    if isinstance(obj, Mapping):
        return {to_camel(key): (dict(value) if key in VERBATIM and isinstance(value, Mapping) else camel(value))
                for key, value in obj.items()}
    if isinstance(obj, list):
        return [camel(item) for item in obj]
    return obj
