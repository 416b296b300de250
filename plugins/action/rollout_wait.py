# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for a background (async) task on the controller: poll its job every few seconds, print a heartbeat line at
most once per heartbeat_seconds, return the job's result as soon as it ends - or, for a fleetops.vmss.rollout call
with a batch_gate (gate), as soon as it published the step waited for, after saying the word for the step before
(module_utils/_batch_gate.py). Documentation: modules/rollout_wait.py."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.fleetops.vmss.plugins.module_utils import _batch_gate as batch_gate

display = Display()

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "msg": {"type": "str", "default": "Still running"},
    "heartbeat_seconds": {"type": "float", "default": 60},
    "poll_seconds": {"type": "float", "default": 2},
    "timeout": {"type": "float", "default": 0},
    "gate": {"type": "path"},
    "step": {"type": "int", "default": 1},
    "say": {"type": "str", "choices": list(batch_gate.WORDS)},
    "wait": {"type": "bool", "default": True},
}


# A poll that reads the job's file on a local connection (not async_status) costs next to nothing: done this often
# at most, whatever poll_seconds says, so that the next batch starts within a quarter second of the job's end (the
# sets of a fleet wave, in lockstep, each wait for the last one to see its job end).
LOCAL_POLL_SECONDS = 0.25
# While a gated rollout's step is awaited (a file that appears when the step ends): the next step's word is said
# within this of its end, by every set of the wave.
GATE_POLL_SECONDS = 0.1


def elapsed_text(seconds: float) -> str:
    """12 s, 3 min, 1 h 05 min: the time a job has run, as the heartbeat says it."""
    seconds = int(seconds)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min" % (seconds // 60)
    return "%d h %02d min" % (seconds // 3600, seconds % 3600 // 60)


def job_ended(path: str):
    """Whether the job's status file, read here, says the job ended: True, False, or None when this process cannot
    tell (no such file, not readable here, not async_wrapper's JSON): async_status is asked then. The file is read
    as async_status reads it: not parsed yet means running, a result without "started" is the module's own."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return None
    return "started" not in data or bool(data.get("finished"))


def gate_problem(local: bool, step: int, word) -> str:
    """Why gate, step and say cannot be honoured ("" when they can)."""
    if not local:
        return "gate needs a local connection: the job's steps and the words are files on the controller"
    if step < 1:
        return "step must be 1 or more, got %s" % step
    if word and step == 1:
        return "say needs step 2 or more: the word is said to the step before step"
    return ""


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        for name in ("heartbeat_seconds", "poll_seconds", "timeout"):
            if args[name] < 0:
                return dict(result, failed=True, msg="%s must be 0 or more, got %s" % (name, args[name]))
        heartbeat, poll = args["heartbeat_seconds"], max(args["poll_seconds"], 0.1)
        local = getattr(self._connection, "transport", "") == "local"
        gate, step = args["gate"], args["step"]
        if gate:   # the job's fleetops.vmss.rollout batch_gate: its steps and our words, files on this machine
            problem = gate_problem(local, step, args["say"])
            if problem:
                return dict(result, failed=True, msg=problem)
            if args["say"]:
                batch_gate.say(gate, step - 1, args["say"])
            if not args["wait"]:
                return dict(result, changed=False, finished=False, ansible_job_id=args["jid"])
        # the step waited for: none after a stop (the job's end is)
        wanted = step if gate and args["say"] != "stop" else None
        # where async_status looks: the shell's async_dir (ansible_async_dir), as the job was started with
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        # On a local connection the job's status file is on this machine: a poll reads it (no process started; an
        # async_status poll costs about 0.3 CPU-s), and async_status is run once, for the result, when it says ended.
        local_file = os.path.join(async_dir, args["jid"]) if local else ""
        host = (task_vars or {}).get("inventory_hostname", "")
        started = time.monotonic()
        next_heartbeat = started + heartbeat if heartbeat else None
        while True:
            step_result = batch_gate.published(gate, wanted) if wanted else None
            if step_result is not None:   # the job waits at the gate: its step's result, as if a call had ended
                return merge_hash(result, dict(step_result, finished=False, ansible_job_id=args["jid"], gate_step=wanted))
            ended = job_ended(local_file) if local_file else None
            if ended is not False:
                status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                              module_args={"jid": args["jid"], "_async_dir": async_dir})
                if status.get("finished") or status.get("failed"):
                    break   # the job's own result (a failed job included), or async_status's "could not find job"
            now = time.monotonic()
            if args["timeout"] and now - started >= args["timeout"]:
                return dict(result, failed=True, finished=False, ansible_job_id=args["jid"],
                            msg="%s: no result after %s" % (args["msg"], elapsed_text(now - started)))
            if next_heartbeat is not None and now >= next_heartbeat:
                display.display("%s%s (%s)" % ("[%s]: " % host if host else "", args["msg"], elapsed_text(now - started)))
                next_heartbeat = now + heartbeat   # from the line printed: never two within an interval
            # a file read, not async_status (at the gate's pace while a step is awaited)
            interval = min(poll, GATE_POLL_SECONDS if wanted else LOCAL_POLL_SECONDS) if ended is False else poll
            time.sleep(interval if next_heartbeat is None else max(0.0, min(interval, next_heartbeat - now)))
        status.pop("invocation", None)
        status["finished"] = bool(status.get("finished"))
        status["started"] = bool(status.get("started", True))
        return merge_hash(result, status)
