# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of one long-running run (rollout, blue/green swap, rolling upgrade), in the shape of the rollout
report: batches (blue/green's phases), the halt, the rollback, the summary, the ARM requests each part sent, and
every timestamp written one way (``now``).
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Dict, Optional, Tuple


def now() -> str:
    """ISO-8601 UTC with milliseconds (batches can be shorter than a second on the emulator)."""
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def empty_summary(started_at: Optional[str] = None) -> Dict[str, Any]:
    """The summary keys of the report, zero until the run counts them."""
    return {"instances_total": 0, "instances_upgraded": 0, "instances_skipped": 0, "batches_planned": 0,
            "batches_completed": 0, "started_at": started_at or now(), "ended_at": None, "duration_seconds": None,
            "arm_requests": {"total": 0, "writes": 0, "reads": 0}}


class RunRecord:
    """Times and request counts of one run; makes its batch, halt and rollback records.

    ``counter``: the RequestCounter of the run's clients (``total``, ``writes``), None when nothing counts."""

    def __init__(self, counter, clock: Callable[[], float] = time.monotonic):
        self.counter = counter
        self._clock = clock
        self.started = clock()
        self.started_at = now()
        self._opened: Dict[int, Tuple[int, int]] = {}   # id(batch record) -> requests when it opened

    def requests(self, since: Optional[Tuple[int, int]] = None):
        """(total, writes) now, or {"total", "writes", "reads"} since an earlier (total, writes)."""
        counter = self.counter
        total, writes = (counter.total, counter.writes) if counter is not None else (0, 0)
        if since is None:
            return total, writes
        total, writes = total - since[0], writes - since[1]
        return {"total": total, "writes": writes, "reads": total - writes}

    def batch(self, index: int, kind: str, instance_ids=(), **fields: Any) -> Dict[str, Any]:
        """A batch (or phase) record, open from now; ``fields`` add or override its defaults."""
        record = dict({"index": index, "kind": kind, "instance_ids": list(instance_ids), "started_at": now(),
                       "ended_at": None, "outcome": None, "health": {}, "unhealthy_upgraded_percent": 0.0,
                       "unhealthy_set_percent": 0.0, "arm_requests": None}, **fields)
        self._opened[id(record)] = self.requests()
        return record

    def close(self, record: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
        """Ends a batch record now: its ``arm_requests`` are the requests sent since it opened."""
        record.update(fields, ended_at=now(), arm_requests=self.requests(since=self._opened.pop(id(record), (0, 0))))
        return record

    @staticmethod
    def halt(batch_index: Optional[int], code: Optional[str], reason: str, **fields: Any) -> Dict[str, Any]:
        return dict({"at": now(), "batch_index": batch_index, "reason": reason, "code": code}, **fields)

    @staticmethod
    def rollback(outcome: Optional[str] = None) -> Dict[str, Any]:
        return {"started_at": now(), "ended_at": None, "instance_ids": [], "outcome": outcome, "health": {}}

    def summary(self) -> Dict[str, Any]:
        return empty_summary(self.started_at)

    def finish(self, summary: Dict[str, Any]) -> Dict[str, Any]:
        """The summary's end: ended_at, duration_seconds and every request the run sent."""
        summary.update(ended_at=now(), duration_seconds=round(self._clock() - self.started, 3),
                       arm_requests=self.requests(since=(0, 0)))
        return summary
