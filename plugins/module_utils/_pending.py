# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations the long-running workflows (rollout, its rollback, blue/green) start and do not block on.

Azure answers the first InProgress poll of a scale-set operation with a Retry-After of 35-61 s, so a poller
learns that an operation ended up to that long after it did. The runs judge "done" from what they list
instead (each instance's provisioning state, the model it runs, its health) and leave the pollers polling in
the SDK's threads: ``Operations`` keeps them, reads each outcome as soon as its operation has ended (a
failure raises then, as a blocking wait would have), and all of them before a verdict; ``watch_started`` is
the one wait on a list for operations just started; ``start_after_write`` the one start of an action right
after our own write.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Tuple

from ._waiter import run_hooks

# how long the first action on a scale set after our own PATCH (not waited for through its poller) asks again on 409
CONFLICT_SECONDS = 120.0


class Operations:
    """Started operations whose outcome is not read yet: (poller, end), ``end(poller)`` reading the outcome
    (and raising the failure the caller makes of it)."""

    def __init__(self):
        self.pending: List[Tuple[Any, Callable[[Any], Any]]] = []

    def add(self, pollers: List[Any], end: Callable[[Any], Any]) -> None:
        self.pending.extend((poller, end) for poller in pollers)

    def running(self, pollers: List[Any]) -> bool:
        """Whether the outcome of one of ``pollers`` is still to be read."""
        return any(poller in pollers for poller, _end in self.pending)

    def check(self, wait: bool = False) -> None:
        """Read the outcome of every operation that has ended (of all, each waited for, when ``wait``): the
        first failure raises; the rest poll on."""
        for entry in list(self.pending):
            if wait or entry[0].done():
                self.pending.remove(entry)
                entry[1](entry[0])

    def drop(self) -> None:
        """Forget the operations still polled (a verdict has been reached without them)."""
        self.pending = []


def watch_started(client, operations: Operations, pollers: List[Any], done: Callable[[Any], bool],
                  observe: Callable[[], Any], what: str, expected_at=None) -> Tuple[Any, bool]:
    """``client.watch`` of ``observe()`` until ``done(observed)`` holds, or every operation of ``pollers`` has
    ended (an operation that ended without its work seen: the next gate judges what it did); at every look the
    ended operations' outcomes are read (operations.check), so a failed one raises at once. An observation of
    None is not done (a look that stopped early). Returns (the last observation, whether the time ran out)."""
    def check(observed):
        operations.check()
        if observed is None:
            return False
        return done(observed) or not operations.running(pollers)

    _verdict, observed, timed_out = client.watch(check, observe=observe, expected_at=expected_at, what=what)
    return observed, timed_out


def start_after_write(start: Callable[[], Any], wait_sleep: float, deadline, after_write: bool = True) -> Any:
    """``start()``'s answer. Right after our own PATCH of the set (``after_write``), judged applied from a GET and
    not from its poller, Azure's operation may still hold the set a moment and refuse the action (409
    OperationNotAllowed, "another operation is in progress"): asked again every wait_sleep for CONFLICT_SECONDS,
    never a verdict; then (or with ``after_write`` False, or the deadline passed) the 409 is raised as any error is."""
    end = time.monotonic() + CONFLICT_SECONDS
    while True:
        try:
            return start()
        except Exception as exc:  # pylint: disable=broad-except
            status = getattr(exc, "status_code", None) or (getattr(exc, "details", None) or {}).get("status")
            if not after_write or status != 409 or time.monotonic() > end or deadline.expired:
                raise
        run_hooks()
        time.sleep(max(0.0, min(wait_sleep, deadline.remaining())))
