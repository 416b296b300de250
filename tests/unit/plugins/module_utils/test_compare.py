# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired vs current: normalisation, what is compared (only what the user set), before/after."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils._compare import (
    DifferenceTracker,
    Item,
    compare,
    display_path,
    duration_seconds,
    equal,
    get_path,
    prune,
)


@pytest.mark.parametrize("text, seconds", [
    ("PT5M", 300), ("PT05M", 300), ("PT300S", 300), ("pt5m", 300), ("PT0S", 0), ("PT1H30M", 5400),
    ("P1D", 86400), ("P1DT1S", 86401), ("PT0.5S", 0.5), ("300", 300), (300, 300), (" PT10M ", 600),
])
def test_iso8601_durations(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "5 minutes", "PT5X", "P1DT", None, True, [], "1H"])
def test_not_durations(text):
    assert duration_seconds(text) is None


@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=59))
def test_duration_spellings_agree(hours, minutes, seconds):
    total = hours * 3600 + minutes * 60 + seconds
    spelled = "PT%dH%02dM%02dS" % (hours, minutes, seconds)
    assert equal(spelled, "PT%dS" % total, "duration")
    assert equal(spelled, total, "duration")


@pytest.mark.parametrize("desired, current, kind, same", [
    ("Rolling", "rolling", "enum", True),
    ("Rolling", "Manual", "enum", False),
    ("/subscriptions/S/resourceGroups/RG/x", "/subscriptions/s/resourcegroups/rg/x/", "id", True),
    ("/subscriptions/s/x/a", "/subscriptions/s/x/b", "id", False),
    (["/A/p1", "/a/P2"], ["/a/p2", "/a/p1"], "ids", True),
    (["/a/p1"], ["/a/p1", "/a/p2"], "ids", False),
    (["1", "2"], ["2", "1"], "set", True),
    (["ssh-ed25519  AAAA key"], ["ssh-ed25519 AAAA key "], "set", True),
    ([], None, "set", True),
    (["OldestVM"], ["oldestvm"], "enum_list", True),
    (["OldestVM", "Default"], ["Default", "OldestVM"], "enum_list", False),
    ("West Europe", "westeurope", "location", True),
    ({"a": 1}, {"a": 1, "b": 2}, "exact", False),
    ("hunter2", None, "skip", True),
    (5, 5, None, True),
    (5, 6, None, False),
])
def test_equal(desired, current, kind, same):
    assert equal(desired, current, kind) is same


RULES = {"mode": "enum", "pause": "duration", "exts": "named", "exts[].settings": "exact",
         "exts[].secret": "skip", "tags": "map", "password": "skip"}


def test_only_what_the_user_set_is_compared():
    current = {"mode": "Rolling", "capacity": 7, "tags": {"owner": "other-team"}, "pause": "PT0S"}
    tracker = compare({"mode": "rolling", "pause": "PT00S", "tags": {}}, current, RULES)
    assert not tracker.changed and tracker.diff() == {"before": {}, "after": {}}


def test_differences_feed_changed_and_diff():
    current = {"mode": "Manual", "capacity": 2, "policy": {"a": 1, "b": 2}}
    tracker = compare({"mode": "Rolling", "capacity": 2, "policy": {"b": 3}}, current, RULES)
    assert tracker.changed and len(tracker) == 2
    assert tracker.display_paths() == ["mode", "policy.b"]
    assert tracker.before() == {"mode": "Manual", "policy": {"b": 2}}
    assert tracker.after() == {"mode": "Rolling", "policy": {"b": 3}}
    assert tracker.touches("policy") and tracker.touches("policy", "b") and not tracker.touches("capacity")


def test_none_means_not_set():
    tracker = compare({"mode": None, "policy": {"a": None}}, {"mode": "Manual", "policy": {"a": 1}}, RULES)
    assert not tracker


def test_tags_owned_by_others_are_left_alone():
    tracker = compare({"tags": {"team": "payments"}}, {"tags": {"team": "ops", "CostCenter": "42"}}, RULES)
    assert tracker.before() == {"tags": {"team": "ops"}} and tracker.after() == {"tags": {"team": "payments"}}


def test_tags_with_purge_compare_the_whole_dict():
    rules = dict(RULES, tags="map_exact")
    tracker = compare({"tags": {"team": "payments"}}, {"tags": {"team": "payments", "CostCenter": "42"}}, rules)
    assert tracker.diff() == {"before": {"tags": {"team": "payments", "CostCenter": "42"}},
                              "after": {"tags": {"team": "payments"}}}
    assert compare({"tags": {}}, {"tags": {"a": "b"}}, rules).changed
    assert not compare({"tags": {}}, {"tags": {}}, rules).changed


def test_named_lists_are_matched_by_name_and_others_kept():
    current = {"exts": [{"name": "Health", "settings": {"port": 80}, "type": "A"},
                        {"name": "agent", "settings": {"x": 1}}]}
    desired = {"exts": [{"name": "health", "settings": {"port": 8080}, "secret": {"k": "v"}},
                        {"name": "new", "type": "B", "secret": {"k": "v"}}]}
    tracker = compare(desired, current, RULES)
    assert tracker.display_paths() == ["exts[health].settings", "exts[new]"]
    assert tracker.before() == {"exts": [{"name": "health", "settings": {"port": 80}}]}
    assert tracker.after() == {"exts": [{"name": "health", "settings": {"port": 8080}}, {"name": "new", "type": "B"}]}
    assert "secret" not in str(tracker.diff())


def test_secrets_are_never_compared_nor_shown():
    tracker = compare({"password": "hunter2", "mode": "Rolling"}, {"mode": "Manual"}, RULES)
    assert tracker.display_paths() == ["mode"] and "hunter2" not in str(tracker.diff())


def test_tracker_add_and_render_nested_paths():
    tracker = DifferenceTracker()
    tracker.add(("a", "b", "c"), 1, 2)
    tracker.add(("a", "d"), None, "x")
    tracker.add(("exts", Item("one"), "settings"), {"p": 1}, {"p": 2})
    assert tracker.after() == {"a": {"b": {"c": 2}, "d": "x"}, "exts": [{"name": "one", "settings": {"p": 2}}]}
    assert display_path(("exts", Item("one"), "settings")) == "exts[one].settings"
    assert repr(Item("one")) == "Item('one')"


def test_get_path_and_prune():
    obj = {"a": {"b": [{"name": "X", "v": 1}]}}
    assert get_path(obj, ("a", "b", Item("x"), "v")) == 1
    assert get_path(obj, ("a", "missing", "v"), "default") == "default"
    assert prune({"a": None, "b": {"c": None}, "d": {}, "e": [1, None], "f": {"g": 0}}) == {
        "d": {}, "e": [1, None], "f": {"g": 0}}


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=5))
def test_comparing_with_itself_finds_nothing(tags):
    assert not compare({"tags": tags, "mode": "Rolling"}, {"tags": dict(tags), "mode": "ROLLING"}, RULES)
