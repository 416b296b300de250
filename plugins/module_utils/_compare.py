# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired vs current, the way Azure means it. Pure functions, no I/O, no Ansible.

Both sides are *option-shaped* dicts (the module's snake_case options), the desired one holding only
what the user set. ``compare`` walks the desired side only: an option the user did not set is never
compared. Values are normalised by the kind a ``rules`` table gives each path:

========== ===================================================================================
kind       equal when
========== ===================================================================================
``enum``   case-insensitively equal (``rolling`` == ``Rolling``)
``duration`` the same number of seconds (``PT5M`` == ``PT05M`` == ``PT300S`` == ``300``)
``id``     case-insensitively equal ARM ids, trailing ``/`` ignored
``location`` the same Azure region (``West Europe`` == ``westeurope``)
``ids``    the same set of ARM ids, case-insensitively, in any order
``set``    the same set of strings, in any order, surrounding blanks ignored (zones, SSH keys)
``enum_list`` the same list of enums, in order, case-insensitively (scale-in rules)
``exact``  ``==`` (extension settings: Azure stores them as given)
``map``    a dict of the user's keys (tags): each key the user set is compared with ``==``;
           keys only in the current dict are left alone
``map_exact`` the whole dict ``==`` (tags with purge): extra current keys are differences too
``named``  a list of dicts matched by ``name`` (case-insensitively); each desired item is
           compared with its namesake, items the user did not list are left alone
``skip``   never compared (secrets: Azure never returns them)
========== ===================================================================================

Paths are tuples: ``("upgrade_policy", "mode")``; an item of a named list is ``Item("health")``.
Rule keys are the dotted path with ``[]`` for a named item: ``"extensions[].settings"``.
Without a rule, dicts are walked key by key and other values compared with ``==``.

``DifferenceTracker`` collects ``(path, before, after)`` and renders ``before`` / ``after`` dicts
that hold only what differs, in the option shape (named items as ``{"name": ..., ...}`` list
entries), so one tracker feeds both ``changed`` and Ansible's ``diff``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE)


class Item(str):
    """A path element naming one item of a named list (its ``name``)."""

    __slots__ = ()

    def __repr__(self):
        return "Item(%s)" % str.__repr__(self)


PathElement = Union[str, Item]
Path = Tuple[PathElement, ...]


def duration_seconds(value: Any) -> Optional[float]:
    """ISO 8601 duration (``PT1H30M``, ``P1D``, ``PT05M``) or a number of seconds -> seconds; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return float(text)
    match = _DURATION.match(text)
    if not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        return None
    parts = {key: float(number) for key, number in match.groupdict().items() if number is not None}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def normalise(value: Any, kind: Optional[str]) -> Any:
    """The value in the form two equal values share, for the kinds that need one."""
    if value is None:
        return None
    if kind == "enum":
        return value.lower() if isinstance(value, str) else value
    if kind == "duration":
        seconds = duration_seconds(value)
        return seconds if seconds is not None else value
    if kind == "id":
        return str(value).rstrip("/").lower()
    if kind == "location":
        return "".join(str(value).split()).lower()
    if kind == "ids":
        return frozenset(str(item).rstrip("/").lower() for item in value or [])
    if kind == "set":
        return frozenset(" ".join(str(item).split()) for item in value or [])
    if kind == "enum_list":
        return [item.lower() if isinstance(item, str) else item for item in value or []]
    return value


def equal(desired: Any, current: Any, kind: Optional[str] = None) -> bool:
    """Whether Azure would see ``current`` as already being ``desired``."""
    if kind == "skip":
        return True
    if kind in ("ids", "set", "enum_list") and current is None:
        return not desired
    return normalise(desired, kind) == normalise(current, kind)


def rule_key(path: Path) -> str:
    parts: List[str] = []
    for element in path:
        if isinstance(element, Item):
            parts[-1] += "[]"
        else:
            parts.append(element)
    return ".".join(parts)


def display_path(path: Path) -> str:
    """``upgrade_policy.mode``, ``extensions[health].settings``, ``tags.CostCenter``."""
    out = ""
    for element in path:
        if isinstance(element, Item):
            out += "[%s]" % element
        else:
            out += ("." if out else "") + element
    return out


def find_named(items: Any, name: str) -> Optional[Dict[str, Any]]:
    """The dict of ``items`` whose ``name`` is ``name``, case-insensitively (Azure's names are)."""
    for item in items or []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == str(name).lower():
            return item
    return None


class DifferenceTracker:
    """Differences between desired and current, for ``changed`` and ``diff`` at once."""

    def __init__(self) -> None:
        self._differences: List[Tuple[Path, Any, Any]] = []

    def add(self, path: Path, before: Any, after: Any) -> None:
        self._differences.append((tuple(path), before, after))

    @property
    def changed(self) -> bool:
        return bool(self._differences)

    def __bool__(self) -> bool:
        return self.changed

    def __len__(self) -> int:
        return len(self._differences)

    @property
    def differences(self) -> List[Tuple[Path, Any, Any]]:
        return list(self._differences)

    @property
    def paths(self) -> List[Path]:
        return [path for path, _before, _after in self._differences]

    def display_paths(self) -> List[str]:
        return [display_path(path) for path in self.paths]

    def touches(self, *prefix: PathElement) -> bool:
        """Whether any difference lies at or under ``prefix``."""
        return any(path[:len(prefix)] == tuple(prefix) for path in self.paths)

    def before(self) -> Dict[str, Any]:
        return _render((path, before) for path, before, _after in self._differences)

    def after(self) -> Dict[str, Any]:
        return _render((path, after) for path, _before, after in self._differences)

    def diff(self) -> Dict[str, Dict[str, Any]]:
        return {"before": self.before(), "after": self.after()}


def _render(entries) -> Dict[str, Any]:
    root: Dict[str, Any] = {}
    for path, value in entries:
        _place(root, list(path), value)
    return root


def _place(node: Dict[str, Any], path: List[PathElement], value: Any) -> None:
    head = path[0]
    rest = path[1:]
    if rest and isinstance(rest[0], Item):
        items = node.get(head)
        if items is None:  # absent, or emptied (None) by an item placed before
            items = node[head] = []
        item = find_named(items, rest[0])
        if item is None:
            item = {"name": str(rest[0])}
            items.append(item)
        if len(rest) == 1:
            if isinstance(value, dict):
                item.update({key: val for key, val in value.items() if key != "name"})
            elif value is None and len(item) == 1:
                items.remove(item)
                if not items:
                    node[head] = None
        else:
            _place(item, rest[1:], value)
        return
    if not rest:
        node[head] = value
        return
    child = node.get(head)
    if not isinstance(child, dict):
        child = node[head] = {}
    _place(child, rest, value)


def compare(desired: Mapping[str, Any], current: Optional[Mapping[str, Any]], rules: Mapping[str, str],
            tracker: Optional[DifferenceTracker] = None, path: Path = ()) -> DifferenceTracker:
    """Record in ``tracker`` every desired value that ``current`` does not already have."""
    tracker = tracker if tracker is not None else DifferenceTracker()
    current = current or {}
    for key, want in desired.items():
        if want is None:
            continue
        here = path + (key,)
        _compare_value(want, current.get(key) if isinstance(current, Mapping) else None, rules, tracker, here)
    return tracker


def _compare_value(want: Any, have: Any, rules: Mapping[str, str], tracker: DifferenceTracker, path: Path) -> None:
    kind = rules.get(rule_key(path))
    if kind == "skip":
        return
    if kind == "named":
        for item in want or []:
            name = item.get("name")
            found = find_named(have, name)
            item_path = path + (Item(name),)
            if found is None:
                tracker.add(item_path, None, {k: v for k, v in item.items() if v is not None
                                              and rules.get(rule_key(item_path + (k,))) != "skip"})
                continue
            compare({k: v for k, v in item.items() if k != "name"}, found, rules, tracker, item_path)
        return
    if kind == "map":
        have = have if isinstance(have, Mapping) else {}
        for key, value in (want or {}).items():
            if key not in have or have[key] != value:
                tracker.add(path + (key,), have.get(key), value)
        return
    if kind == "map_exact":
        if dict(want or {}) != dict(have or {}):
            tracker.add(path, dict(have) if have is not None else None, dict(want or {}))
        return
    if kind is None and isinstance(want, Mapping):
        compare(want, have if isinstance(have, Mapping) else {}, rules, tracker, path)
        return
    if not equal(want, have, kind):
        tracker.add(path, have, want)


def get_path(obj: Any, path: Path, default: Any = None) -> Any:
    """The value at ``path`` of an option-shaped dict (named items looked up by name)."""
    node = obj
    for element in path:
        if isinstance(element, Item):
            node = find_named(node, element)
        elif isinstance(node, Mapping):
            node = node.get(element)
        else:
            return default
        if node is None:
            return default
    return node


def prune(obj: Any) -> Any:
    """``obj`` without None values (nor dicts left empty by removing them): what the user set."""
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            value = prune(value)
            if value is None or (isinstance(value, dict) and not value and isinstance(obj[key], Mapping)
                                 and _all_none(obj[key])):
                continue
            out[key] = value
        return out
    if isinstance(obj, list):
        return [prune(item) for item in obj]
    return obj


def _all_none(obj: Mapping[str, Any]) -> bool:
    """A sub-dict of options none of which is set (``{}`` given on purpose, like ``tags: {}``, is kept)."""
    return bool(obj) and all(value is None or (isinstance(value, Mapping) and _all_none(value)) for value in obj.values())
