# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.vmss.rollback_point: the rollout role reads the rollback point with the module's own decoder."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.filter.rollback_point import FilterModule, rollback_point
from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as planner

BEFORE = {"image": {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/golden/images/"
                          "payments-api/versions/1.0.0"}}
TARGET = {"image": {"id": BEFORE["image"]["id"].replace("1.0.0", "1.1.0")}}


@pytest.mark.parametrize("state", ["rolling", "rolling_back"])
def test_decodes_what_the_module_writes(state):
    marker = planner.new_marker(BEFORE, TARGET, "2026-12-06T12:00:00.000Z", state=state)
    tags = dict(planner.encode_marker(marker), team="payments")
    assert rollback_point(tags) == marker


def test_a_marker_split_over_several_tags():
    long_before = {"image": {"id": BEFORE["image"]["id"] + "x" * 300}}
    marker = planner.new_marker(long_before, TARGET, "2026-12-06T12:00:00.000Z", state="rolling_back")
    tags = planner.encode_marker(marker)
    assert len(tags) > 1
    assert rollback_point(tags)["state"] == "rolling_back"


@pytest.mark.parametrize("tags", [None, {}, {"team": "payments"}])
def test_no_rollback_point(tags):
    assert rollback_point(tags) is None


def test_a_tag_the_module_did_not_write_fails_with_the_module_message():
    with pytest.raises(AnsibleFilterError, match="tag fleetops.rollout is not a rollback point this module wrote"):
        rollback_point({"fleetops.rollout": "{truncated"})
    with pytest.raises(AnsibleFilterError, match="expects a scale set's tags"):
        rollback_point(["fleetops.rollout"])


def test_registered_under_its_name():
    assert FilterModule().filters() == {"rollback_point": rollback_point}
