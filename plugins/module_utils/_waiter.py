# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One waiter with a deadline, for what the SDK's pollers do not cover.

(Instances reaching a health state, a gallery replica appearing in a region, ...)
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, List

# Called between two checks of every wait: a module's lease (_lease) renews itself there and notices a
# controller that is gone. Empty unless a module holds a lease.
WAIT_HOOKS: List[Callable[[], None]] = []
HOOK_SECONDS = 1.0   # how often a poller wait calls them


def run_hooks() -> None:
    for hook in list(WAIT_HOOKS):
        hook()


class WaitTimeout(Exception):
    """The deadline passed before the condition held; ``last`` is the final check's value."""

    def __init__(self, message: str, last: Any = None):
        super().__init__(message)
        self.last = last


def wait_until(check: Callable[[], Any], timeout: float, sleep: float,
               clock: Callable[[], float] = time.monotonic,
               sleeper: Callable[[float], None] = time.sleep,
               what: str = "condition") -> Any:
    """Call ``check()`` until it returns a truthy value and return that value.

    Checks at once, then every ``sleep`` seconds (never sleeping past the deadline); raises
    WaitTimeout once ``timeout`` seconds have passed. Bounded twice over: by the clock, and by
    the number of checks that fit in the timeout, so a stalled clock cannot spin it forever.
    """
    if sleep <= 0:
        raise ValueError("sleep must be positive")
    deadline = clock() + max(timeout, 0)
    result = check()
    for _attempt in range(int(math.ceil(max(timeout, 0) / sleep))):
        remaining = deadline - clock()
        if result or remaining <= 0:
            break
        run_hooks()
        sleeper(min(sleep, remaining))
        result = check()
    if not result:
        raise WaitTimeout("%s not reached within %s seconds" % (what, timeout), last=result)
    return result


class Deadline:
    """One time budget for a whole module run: every wait takes what is ``remaining()``."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic):
        self.timeout = max(float(timeout), 0.0)
        self._clock = clock
        self._end = clock() + self.timeout

    def remaining(self) -> float:
        return max(self._end - self._clock(), 0.0)

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


def poller_result(poller: Any, deadline: Deadline, what: str = "operation") -> Any:
    """The result of an azure-core LROPoller, or WaitTimeout once the deadline has passed.

    The poller polls in its own thread (honouring Retry-After); this waits for it at most the time
    left. A failed operation raises the SDK's error (HttpResponseError with the ARM error envelope).
    """
    result = poller.result(timeout=deadline.remaining() if not WAIT_HOOKS else min(HOOK_SECONDS, deadline.remaining()))
    while WAIT_HOOKS and not poller.done() and not deadline.expired:
        run_hooks()
        result = poller.result(timeout=min(HOOK_SECONDS, deadline.remaining()))
    if not poller.done():
        raise WaitTimeout("%s not finished within %s seconds" % (what, int(deadline.timeout)), last=poller.status())
    return result
