# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration harness's scheduler (tests/integration/schedule.py): which test a worker queues next."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.schedule import pick  # noqa: E402  pylint: disable=wrong-import-position

WALLS = {"site": 500.0, "fleet": 250.0, "bake": 40.0, "info": 5.0, "ping": 2.0}


def test_a_free_worker_takes_the_longest_test():
    assert pick(list(WALLS), WALLS.get, {"w0": 0.0, "w1": 0.0}, "w0") == "site"


def test_a_worker_busy_with_a_long_test_queues_a_short_one_behind_it():
    # w0 is busy until 260, w1 is free: the replay gives fleet (to 250) and bake (to 290) to w1, then info to w0
    assert pick(["fleet", "bake", "info", "ping"], WALLS.get, {"w0": 260.0, "w1": 0.0}, "w0") == "info"
    assert pick(["fleet", "bake", "info", "ping"], WALLS.get, {"w0": 260.0, "w1": 0.0}, "w1") == "fleet"


def test_the_shortest_test_when_the_replay_gives_the_worker_none():
    assert pick(["fleet", "bake"], WALLS.get, {"w0": 500.0, "w1": 0.0, "w2": 0.0}, "w0") == "bake"
