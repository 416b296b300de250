# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which test an xdist worker runs next, from each test's expected wall time (durations.json).

An xdist worker holds the test it runs and the one it runs next (it needs the next one to finish the first), so
the next test is committed to a worker when the worker starts the one before it. xdist's load scheduler hands
out tests in collection order: a long test queued behind another long one kept a worker busy minutes after the
others had finished. Here each choice replays longest-processing-time-first over what is left: every pending
test, longest first, goes to the worker that would be free first (its running and queued tests' expected ends);
the worker asking gets the first test that replay gives it (a worker busy with a long test gets a shorter one).
Expected walls come from a run's CPU report (tools/integration_durations.py refreshes durations.json); a test
without one counts as the median.
"""

from __future__ import annotations

import heapq
import json
import statistics
import time
from pathlib import Path

from xdist.scheduler import LoadScheduling

DURATIONS = Path(__file__).resolve().parent / "durations.json"


def load_durations(path=DURATIONS):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def pick(pending, expected, free_at, node):
    """The test ``node`` should queue: a replay of longest-first over ``pending`` on workers free at ``free_at``
    ({worker: time}); the shortest pending test when the replay gives ``node`` none."""
    heap = [(when, order, worker) for order, (worker, when) in enumerate(free_at.items())]
    heapq.heapify(heap)
    for test in sorted(pending, key=lambda test: -expected(test)):
        when, order, worker = heapq.heappop(heap)
        if worker == node:
            return test
        heapq.heappush(heap, (when + expected(test), order, worker))
    return min(pending, key=expected)


class LongestFirstScheduling(LoadScheduling):
    """xdist's load scheduling with one test queued per worker, chosen by ``pick``."""

    def __init__(self, config, log=None, durations=None):
        super().__init__(config, log)
        self.durations = load_durations() if durations is None else durations
        self.default = statistics.median(self.durations.values()) if self.durations else 1.0
        self.started = {}  # worker -> when its running test started

    def expected(self, index):
        return self.durations.get(self.collection[index], self.default)

    def free_at(self, now):
        """When each worker would have run its running and queued tests."""
        free = {}
        for node, queue in self.node2pending.items():
            running_end = self.started.get(node, now) + (self.expected(queue[0]) if queue else 0.0)
            free[node] = max(now, running_end) + sum(self.expected(index) for index in queue[1:])
        return free

    def send_one(self, node, now):
        index = pick(self.pending, self.expected, self.free_at(now), node)
        self.pending.remove(index)
        self.node2pending[node].append(index)
        node.send_runtest_some([index])

    def schedule(self):
        if self.collection is not None or not self._check_nodes_have_same_collection():
            super().schedule()
            return
        self.collection = next(iter(self.node2collection.values()))
        self.pending[:] = range(len(self.collection))
        now = time.monotonic()
        for _round in range(2):  # a worker starts when it holds two tests
            for node in self.nodes:
                if self.pending:
                    self.started[node] = now
                    self.send_one(node, now)
        if not self.pending:
            for node in self.nodes:
                node.shutdown()

    def mark_test_complete(self, node, item_index, duration=0):
        self.started[node] = time.monotonic()  # its queued test starts now
        super().mark_test_complete(node, item_index, duration)

    def check_schedule(self, node, duration=0):
        if node.shutting_down:
            return
        if not self.pending:
            node.shutdown()
        elif len(self.node2pending[node]) < 2:
            self.send_one(node, time.monotonic())
