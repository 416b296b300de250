# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch gate: one rollout call runs step after step (``max_batches`` batches each), and the caller decides
each next step, in files of a directory on the machine the module runs on (``batch_gate``).

After each step that leaves batches to run, the module publishes ``step-<n>.json``: the result a call with
``max_batches`` would have returned then (status ``in_progress``, that step's batches only), then waits for
``word-<n>``: ``go`` (run the next step) or ``stop`` (end the call as one ending at ``max_batches`` does). Both
files are written whole (a temporary file renamed), so a reader never sees half of one. The last step ends the
call as before: its result is the call's, cut to that step. The rollout role's ``fleetops.vmss.rollout_wait``
says the word and reads the steps (this file is its reference too): one module process per rollout instead of
one per batch (AnsiballZ, the SDK imports and the credential, ~1 CPU-s each, paid once).

While it waits, the module's wait hooks run (the lease renews when due) and it watches its controller: a killed
``ansible-playbook`` ends the call as ``stop`` does, so nothing is left running. The wait is bounded by the
rollout's ``wait_timeout``; then the call ends as ``stop`` does too (status ``in_progress``, a re-run resumes).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from typing import Any, Callable, Dict, Optional

from . import _waiter

WORDS = ("go", "stop")
POLL_SECONDS = 0.05   # a stat of a local file: the next batch starts within this of the word


def step_path(directory: str, step: int) -> str:
    return os.path.join(directory, "step-%d.json" % step)


def word_path(directory: str, step: int) -> str:
    return os.path.join(directory, "word-%d" % step)


def write_whole(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory, renamed over it."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def say(directory: str, step: int, word: str) -> None:
    """The caller's word after step ``step``: ``go`` or ``stop``."""
    if word not in WORDS:
        raise ValueError("the word is go or stop, not %r" % (word,))
    write_whole(word_path(directory, step), word)


def heard(directory: str, step: int) -> Optional[str]:
    """The word said after step ``step``, None while there is none."""
    try:
        with open(word_path(directory, step), encoding="utf-8") as handle:
            word = handle.read().strip()
    except OSError:
        return None
    return word if word in WORDS else None


def published(directory: str, step: int) -> Optional[Dict[str, Any]]:
    """Step ``step``'s result as the module published it, None while it has not."""
    try:
        with open(step_path(directory, step), encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


class Steps:
    """Cuts the run's result into the result each step would have had as a call of its own with ``max_batches``:
    its batches (numbered rollout-wide, indexed from the step's first), the plan from its first batch on, its
    summary's counts and times, its requests. ``mark()`` after each step published."""

    COUNTS = ("instances_upgraded", "batches_completed")

    def __init__(self, result: Dict[str, Any]):
        self.step = 1
        self.first = 1                     # the number of this step's first batch (from the second step on)
        self.batches = 0                   # the run's batch records before this step
        self.counts = {key: 0 for key in self.COUNTS}
        self.requests = {"total": 0, "writes": 0, "reads": 0}
        self.started_at = result["summary"]["started_at"]
        self.duration = 0.0

    def view(self, result: Dict[str, Any], estimate: Optional[Callable[[int], float]] = None) -> Dict[str, Any]:
        """The step's result from the run's (finished and numbered: summary ended_at and arm_requests set).
        ``estimate(number)``: the plan's estimate from batch ``number`` on."""
        step = copy.deepcopy(result)
        if self.step == 1:
            return step
        shift = self.first - (self._first_number(result) or self.first)
        step["batches"] = [dict(batch, index=batch["index"] - shift) for batch in result["batches"][self.batches:]]
        plan = step.get("plan") or {}
        plan["batches"] = [dict(item, index=item["index"] - shift) for item in plan.get("batches") or []
                           if item.get("number", 0) >= self.first]
        if estimate is not None:
            plan["estimated_seconds"] = float(estimate(self.first))
        if (step.get("halt") or {}).get("batch_index") is not None:
            step["halt"]["batch_index"] -= shift
        summary = step["summary"]
        for key in self.COUNTS:
            summary[key] -= self.counts[key]
        summary["batches_planned"] = len(plan["batches"])
        summary["arm_requests"] = {key: summary["arm_requests"][key] - self.requests[key] for key in self.requests}
        summary["started_at"] = self.started_at
        if summary.get("duration_seconds") is not None:
            summary["duration_seconds"] = round(summary["duration_seconds"] - self.duration, 3)
        step["arm_requests"] = summary["arm_requests"]["total"]
        # changed: what this step wrote (a run's first step had the model change)
        step.update(changed=bool(result.get("changed")) and (summary["arm_requests"]["writes"] > 0
                                                             or summary["instances_upgraded"] > 0), model_changed=False)
        return step

    @staticmethod
    def _first_number(result: Dict[str, Any]) -> Optional[int]:
        """The number of the run's batch index 0."""
        for item in (result.get("plan") or {}).get("batches") or result.get("batches") or []:
            if "number" in item:
                return item["number"] - item["index"]
        return None

    def mark(self, result: Dict[str, Any]) -> None:
        """Step published: the next one starts after the run's batches so far."""
        summary = result["summary"]
        self.step += 1
        self.batches = len(result["batches"])
        self.first = max(batch["number"] for batch in result["batches"]) + 1   # a step runs a batch at least
        self.counts = {key: summary[key] for key in self.COUNTS}
        self.requests = dict(summary["arm_requests"])
        self.started_at = summary["ended_at"]
        self.duration = summary.get("duration_seconds") or 0.0


class Gate:
    """The module's side: publish a step, wait for the word.

    ``alive()``: whether the controller is still there (_lease.Controller.alive); ``remaining()``: the seconds the
    rollout may still take (its wait_timeout's deadline)."""

    def __init__(self, directory: str, alive: Callable[[], bool], remaining: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic, sleeper: Callable[[float], None] = time.sleep,
                 hooks: Callable[[], None] = _waiter.run_hooks):
        self.directory = directory
        self.alive, self.remaining = alive, remaining
        self.clock, self.sleeper, self.hooks = clock, sleeper, hooks
        self.why = None   # why the last wait ended without go: stop, timeout, gone
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def publish(self, step: int, result: Dict[str, Any]) -> None:
        write_whole(step_path(self.directory, step), json.dumps(result, sort_keys=True, default=str))

    def wait(self, step: int) -> bool:
        """True on ``go`` after step ``step``; False on ``stop``, when the controller is gone or when the rollout's
        time is up (``why`` says which)."""
        end = self.clock() + max(self.remaining(), 0.0)
        hook_at = self.clock() + _waiter.HOOK_SECONDS
        while True:
            word = heard(self.directory, step)
            if word is not None:
                self.why = None if word == "go" else word
                return word == "go"
            now = self.clock()
            if now >= hook_at:
                if not self.alive():   # before the hooks: the lease's own check would stop the run as interrupted
                    self.why = "gone"
                    return False
                self.hooks()
                hook_at = now + _waiter.HOOK_SECONDS
            if now >= end:
                self.why = "timeout"
                return False
            self.sleeper(min(POLL_SECONDS, max(end - now, 0.0)))

    def remove(self) -> None:
        """The call's files, at its exit (the directory too when nothing else is in it)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if name.startswith(("step-", "word-")):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass
        try:
            os.rmdir(self.directory)
        except OSError:
            pass
