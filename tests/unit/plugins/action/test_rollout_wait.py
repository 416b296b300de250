# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.vmss.rollout_wait on a fake clock: the job's result as soon as a poll sees it ended, a heartbeat line at
most once per heartbeat_seconds (none made up after a slow poll), a timeout, bad options refused before polling."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.fleetops.vmss.plugins.action import rollout_wait
from ansible_collections.fleetops.vmss.plugins.module_utils import _batch_gate as batch_gate

JOB_RESULT = {"started": 1, "finished": 1, "ansible_job_id": "j1", "changed": True, "status": "in_progress",
              "invocation": {"module_args": {}}}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds


@pytest.fixture
def harness(monkeypatch):
    """An ActionModule whose job ends ``ends_after`` fake seconds after the wait starts; each status read costs
    ``poll_cost`` fake seconds (a process started on the host; a function of the time waited)."""
    clock, lines, polls = Clock(), [], []
    monkeypatch.setattr(rollout_wait.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(rollout_wait.time, "sleep", clock.sleep)
    monkeypatch.setattr(rollout_wait.display, "display", lambda msg, *args, **kwargs: lines.append((clock.now, msg)))
    monkeypatch.setattr(rollout_wait.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})

    def make(args, ends_after=0.0, poll_cost=0.0, status=None):
        action = rollout_wait.ActionModule.__new__(rollout_wait.ActionModule)
        action._task = SimpleNamespace(args=args)
        action._connection = SimpleNamespace(_shell=SimpleNamespace(get_option=lambda name: "/home/op/.ansible_async"))
        action.get_shell_option = lambda name, default=None: "/home/op/.ansible_async"
        action._remote_expand_user = lambda path: path
        started = clock.now

        def execute_module(module_name, task_vars, module_args):
            assert module_name == "ansible.legacy.async_status"
            assert module_args == {"jid": args["jid"], "_async_dir": "/home/op/.ansible_async"}
            clock.now += poll_cost(clock.now - started) if callable(poll_cost) else poll_cost
            polls.append(clock.now - started)
            if status is not None:
                return dict(status)
            if clock.now - started >= ends_after:
                return dict(JOB_RESULT)
            return {"started": 1, "finished": 0, "ansible_job_id": args["jid"]}

        action._execute_module = execute_module
        return action

    return SimpleNamespace(clock=clock, lines=lines, polls=polls, make=make)


def test_returns_the_jobs_result_within_a_poll_of_its_end_with_one_heartbeat_per_interval(harness):
    action = harness.make({"jid": "j1", "msg": "Running batch 2 of 4 on rg/api", "heartbeat_seconds": 60,
                           "poll_seconds": 2}, ends_after=185.5, poll_cost=0.4)
    start = harness.clock.now

    result = action.run(task_vars={"inventory_hostname": "localhost"})

    assert result["finished"] is True and result["changed"] is True and result["status"] == "in_progress"
    assert "invocation" not in result
    waited = harness.clock.now - start
    assert 185.5 <= waited <= 185.5 + 2 + 0.4   # seen at the first poll after the end, not at a heartbeat
    assert [msg for _at, msg in harness.lines] == [
        "[localhost]: Running batch 2 of 4 on rg/api (%s)" % waited for waited in ("60 s", "2 min", "3 min")]
    times = [at - start for at, _msg in harness.lines]
    assert all(later - earlier >= 60 for earlier, later in zip(times, times[1:])), times
    assert times[0] >= 60


def test_a_slow_poll_does_not_bunch_heartbeats(harness):
    """A status read that takes several intervals (a loaded host) is followed by one line, not one per interval
    missed."""
    action = harness.make({"jid": "j1", "heartbeat_seconds": 10, "poll_seconds": 1}, ends_after=100,
                          poll_cost=lambda waited: 35 if 12 <= waited < 13 else 0.1)

    action.run(task_vars={})

    times = [at for at, _msg in harness.lines]
    assert len(times) == len(set(times)) and all(b - a >= 10 for a, b in zip(times, times[1:])), times
    assert all(msg.startswith("Still running (") for _at, msg in harness.lines)


def test_no_heartbeat_when_heartbeat_seconds_is_0_and_a_short_job_prints_none(harness):
    harness.make({"jid": "j1", "heartbeat_seconds": 0, "poll_seconds": 2}, ends_after=500).run(task_vars={})
    harness.make({"jid": "j1", "heartbeat_seconds": 60, "poll_seconds": 2}, ends_after=59).run(task_vars={})
    assert harness.lines == []


def test_timeout_fails_with_the_message_and_time_waited(harness):
    result = harness.make({"jid": "j1", "msg": "Running canary 1 of 3", "heartbeat_seconds": 0, "poll_seconds": 5,
                           "timeout": 30}, ends_after=10 ** 6).run(task_vars={})
    assert result["failed"] is True and result["finished"] is False
    assert result["msg"] == "Running canary 1 of 3: no result after 30 s"
    assert max(harness.polls) < 40


def test_a_job_that_cannot_be_found_is_returned_failed_at_once(harness):
    missing = {"failed": True, "msg": "could not find job", "ansible_job_id": "j9", "started": True, "finished": True}
    result = harness.make({"jid": "j9"}, status=missing).run(task_vars={})
    assert result["failed"] is True and result["msg"] == "could not find job" and len(harness.polls) == 1


@pytest.mark.parametrize("args, message", [
    ({"jid": "j1", "poll_seconds": -1}, "poll_seconds must be 0 or more, got -1.0"),
    ({"jid": "j1", "heartbeat_seconds": "soon"}, "heartbeat_seconds"),
])
def test_bad_options_fail_clearly_before_any_poll(harness, args, message):
    try:
        result = harness.make(args).run(task_vars={})
    except AnsibleActionFail as error:   # the argument spec's own check, shown by Ansible as the task's failure
        result = {"failed": True, "msg": str(error)}
    assert result["failed"] is True and message in result["msg"]
    assert harness.polls == []


@pytest.mark.parametrize("content, ended", [
    ('{"started": 1, "finished": 0, "ansible_job_id": "j1"}', False),
    ('{"started": 1, "finished": 1, "ansible_job_id": "j1", "changed": true}', True),
    ('{"changed": true, "status": "succeeded"}', True),   # the module's own result, as async_wrapper writes it
    ("", False),                                           # not written yet: running, as async_status says
    ('{"started": 1, "fini', False),
    ("[1, 2]", None),                                      # not async_wrapper's: async_status is asked
    (None, None),                                          # no such file: async_status says "could not find job"
])
def test_job_ended_reads_the_status_file_as_async_status_does(tmp_path, content, ended):
    path = tmp_path / "j1"
    if content is not None:
        path.write_text(content)
    assert rollout_wait.job_ended(str(path)) is ended


def test_on_a_local_connection_the_status_file_is_read_and_async_status_run_once_for_the_result(harness, tmp_path, monkeypatch):
    """Polls read the job's file on the controller (no process each), every 0.25 s whatever poll_seconds says (the
    end seen within a quarter second); async_status only returns the result."""
    job = tmp_path / "j1"
    job.write_text('{"started": 1, "finished": 0, "ansible_job_id": "j1"}')
    action = harness.make({"jid": "j1", "heartbeat_seconds": 0, "poll_seconds": 2})
    action._connection = SimpleNamespace(transport="local")
    action.get_shell_option = lambda name, default=None: str(tmp_path)
    start = harness.clock.now
    sleeps = []

    def sleep(seconds):
        harness.clock.now += seconds
        sleeps.append(seconds)
        if harness.clock.now - start >= 41:
            job.write_text(json.dumps(JOB_RESULT))

    monkeypatch.setattr(rollout_wait.time, "sleep", sleep)
    calls = []
    action._execute_module = lambda module_name, task_vars, module_args: calls.append(module_args) or dict(JOB_RESULT)

    result = action.run(task_vars={})

    assert result["finished"] is True and result["status"] == "in_progress"
    assert calls == [{"jid": "j1", "_async_dir": str(tmp_path)}]   # once, after the file said it ended
    assert sleeps == [rollout_wait.LOCAL_POLL_SECONDS] * 164 and 41 <= harness.clock.now - start <= 41.25


def test_a_status_file_it_cannot_read_is_left_to_async_status(harness, tmp_path):
    """A local connection whose job file is not where this process can read it (another user's home with become):
    every poll asks async_status, as on a remote host."""
    action = harness.make({"jid": "j1", "heartbeat_seconds": 0, "poll_seconds": 2}, ends_after=9)
    action._connection = SimpleNamespace(transport="local")
    action.get_shell_option = lambda name, default=None: str(tmp_path / "elsewhere")
    original = action._execute_module
    action._execute_module = lambda module_name, task_vars, module_args: original(
        module_name, task_vars, dict(module_args, _async_dir="/home/op/.ansible_async"))

    result = action.run(task_vars={})

    assert result["finished"] is True and len(harness.polls) == 6   # 0, 2, 4, 6, 8, 10 s


# --- gate: a fleetops.vmss.rollout call with a batch_gate (module_utils/_batch_gate.py)

STEP_RESULT = {"changed": True, "status": "in_progress", "batches": [{"number": 2, "index": 0}], "batches_total": 4}


@pytest.fixture
def gated(harness, tmp_path, monkeypatch):
    """A local job (its status file in tmp_path/async) with a gate (tmp_path/gate); ``events`` maps a fake second
    (from the wait's start) to what happens then: "step" (the step waited for is published), "end" (the job ends)."""
    async_dir, gate = tmp_path / "async", tmp_path / "gate"
    async_dir.mkdir()
    gate.mkdir()
    job = async_dir / "j1"
    job.write_text('{"started": 1, "finished": 0, "ansible_job_id": "j1"}')
    calls = []

    def make(args, events, step=2):
        action = harness.make(dict({"jid": "j1", "heartbeat_seconds": 0, "gate": str(gate)}, **args))
        action._connection = SimpleNamespace(transport="local")
        action.get_shell_option = lambda name, default=None: str(async_dir)
        action._execute_module = lambda module_name, task_vars, module_args: calls.append(module_args) or dict(JOB_RESULT)
        start = harness.clock.now

        def sleep(seconds):
            harness.clock.now += seconds
            for at, event in list(events.items()):
                if harness.clock.now - start >= at:
                    del events[at]
                    if event == "step":
                        batch_gate.write_whole(batch_gate.step_path(str(gate), step), json.dumps(STEP_RESULT))
                    else:
                        job.write_text(json.dumps(JOB_RESULT))

        monkeypatch.setattr(rollout_wait.time, "sleep", sleep)
        return action

    return SimpleNamespace(make=make, gate=str(gate), calls=calls, clock=harness.clock)


def test_go_is_said_for_the_previous_step_and_the_published_step_returned_as_soon_as_it_appears(gated):
    action = gated.make({"step": 2, "say": "go"}, {30: "step"})
    start = gated.clock.now

    result = action.run(task_vars={})

    assert batch_gate.heard(gated.gate, 1) == "go"
    assert result == dict(STEP_RESULT, finished=False, ansible_job_id="j1", gate_step=2)
    assert 30 <= gated.clock.now - start <= 30 + rollout_wait.GATE_POLL_SECONDS + 1e-9
    assert gated.calls == []   # no async_status: the job runs on, waiting at its gate


def test_a_job_that_ends_instead_of_publishing_the_step_returns_its_result(gated):
    """The last batch (or a failure) ends the call: its result, read by async_status, as without a gate."""
    result = gated.make({"step": 3}, {12: "end"}).run(task_vars={})

    assert result["finished"] is True and "gate_step" not in result and result["status"] == "in_progress"
    assert len(gated.calls) == 1 and batch_gate.heard(gated.gate, 2) is None   # no word said


def test_go_alone_returns_at_once(gated):
    result = gated.make({"step": 4, "say": "go", "wait": False}, {}).run(task_vars={})

    assert result["finished"] is False and result["changed"] is False and gated.calls == []
    assert batch_gate.heard(gated.gate, 3) == "go"


def test_stop_waits_for_the_jobs_end_not_for_a_step(gated):
    action = gated.make({"step": 3, "say": "stop"}, {1: "step", 5: "end"}, step=3)
    start = gated.clock.now

    result = action.run(task_vars={})

    assert batch_gate.heard(gated.gate, 2) == "stop"
    assert result["finished"] is True and "gate_step" not in result and gated.clock.now - start >= 5


@pytest.mark.parametrize("args, transport, message", [
    ({"step": 2, "say": "go"}, "ssh", "gate needs a local connection"),
    ({"step": 1, "say": "go"}, "local", "say needs step 2 or more"),
    ({"step": 0}, "local", "step must be 1 or more"),
])
def test_gate_options_it_cannot_honour_fail_before_any_word_or_poll(gated, args, transport, message):
    action = gated.make(args, {})
    action._connection = SimpleNamespace(transport=transport)

    result = action.run(task_vars={})

    assert result["failed"] is True and message in result["msg"]
    assert os.listdir(gated.gate) == [] and gated.calls == []
