# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations the long-running workflows (rollout, its rollback, blue/green) start and do not block on.

Azure answers the first InProgress poll of a scale-set operation with a Retry-After of 35-61 s, so a poller
learns that an operation ended up to that long after it did. The runs judge "done" from what they list
instead (each instance's provisioning state, the model it runs, its health) and leave the pollers polling in
the SDK's threads: ``Operations`` keeps them, reads each outcome as soon as its operation has ended (a
failure raises then, as a blocking wait would have), and all of them before a verdict; ``watch_started`` is
the one wait on a list for operations just started.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple


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
