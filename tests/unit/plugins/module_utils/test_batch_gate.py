# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch gate (module_utils/_batch_gate.py): steps published whole, the word waited for (go, stop, the
rollout's time up, the controller gone, the lease's hooks run meanwhile), and a gated run's steps cut to exactly
what separate max_batches calls return (against the scale set simulated in memory)."""

from __future__ import annotations

import os

import pytest
from fake_scale_set import IMAGE, FakeScaleSet

from ansible_collections.fleetops.vmss.plugins.module_utils import _batch_gate as batch_gate
from ansible_collections.fleetops.vmss.plugins.module_utils._rollout_run import Rollout
from ansible_collections.fleetops.vmss.plugins.modules.rollout import number_batches

from test_rollout_run import params


class Clock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []
        self.then = []   # (at, action): done once the clock reaches at

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        for at, action in list(self.then):
            if self.now >= at:
                self.then.remove((at, action))
                action()


def gate_on(tmp_path, clock, alive=lambda: True, remaining=60.0, hooks=None):
    return batch_gate.Gate(str(tmp_path / "gate"), alive, lambda: remaining, clock=clock.monotonic,
                           sleeper=clock.sleep, hooks=hooks or (lambda: None))


def test_words_and_steps_are_written_whole_and_read_back(tmp_path):
    gate = gate_on(tmp_path, Clock())
    directory = gate.directory
    assert batch_gate.published(directory, 1) is None and batch_gate.heard(directory, 1) is None

    gate.publish(1, {"status": "in_progress", "batches": [{"number": 1}]})
    batch_gate.say(directory, 1, "go")

    assert batch_gate.published(directory, 1) == {"status": "in_progress", "batches": [{"number": 1}]}
    assert batch_gate.heard(directory, 1) == "go" and batch_gate.heard(directory, 2) is None
    assert sorted(os.listdir(directory)) == ["step-1.json", "word-1"]   # no temporary file left
    with pytest.raises(ValueError):
        batch_gate.say(directory, 2, "maybe")
    (tmp_path / "gate" / "word-3").write_text("maybe")
    assert batch_gate.heard(directory, 3) is None   # not a word: still waiting

    gate.remove()
    assert not os.path.exists(directory)


def test_go_said_while_waiting_is_heard_within_a_poll_and_the_lease_hooks_run_meanwhile(tmp_path):
    clock, hooks = Clock(), []
    gate = gate_on(tmp_path, clock, hooks=lambda: hooks.append(clock.now))
    clock.then.append((103.0, lambda: batch_gate.say(gate.directory, 1, "go")))

    assert gate.wait(1) is True and gate.why is None
    assert 103.0 <= clock.now <= 103.0 + batch_gate.POLL_SECONDS + 1e-9
    assert len(hooks) == 2   # about once a second (the lease renews there when due), not at every poll


def test_a_word_said_before_the_wait_goes_on_at_once(tmp_path):
    clock = Clock()
    gate = gate_on(tmp_path, clock)
    batch_gate.say(gate.directory, 2, "go")
    assert gate.wait(2) is True and clock.sleeps == []


def test_stop_ends_the_wait_without_go(tmp_path):
    clock = Clock()
    gate = gate_on(tmp_path, clock)
    clock.then.append((100.5, lambda: batch_gate.say(gate.directory, 1, "stop")))
    assert gate.wait(1) is False and gate.why == "stop"


def test_the_wait_is_bounded_by_the_rollouts_time(tmp_path):
    clock = Clock()
    gate = gate_on(tmp_path, clock, remaining=7.0)
    assert gate.wait(1) is False and gate.why == "timeout"
    assert 107.0 <= clock.now <= 107.0 + batch_gate.POLL_SECONDS


def test_a_controller_gone_ends_the_wait_before_the_lease_hooks_see_it(tmp_path):
    """The lease's hook would stop the run as interrupted: the gate ends it as stop does instead (a call ending at
    max_batches), so a killed ansible-playbook leaves no module waiting."""
    clock, hooks, alive = Clock(), [], [True]
    gate = gate_on(tmp_path, clock, alive=lambda: alive[0], hooks=lambda: hooks.append(clock.now), remaining=600)
    clock.then.append((102.5, lambda: alive.__setitem__(0, False)))

    assert gate.wait(1) is False and gate.why == "gone"
    assert clock.now < 104.1 and all(at < 102.5 for at in hooks)


def gated_run(fake, gate_words, **overrides):
    """The module's story with a batch_gate (plugins/modules/rollout.py open_gate), the gate replaced by
    ``gate_words`` (the word after each step): returns the steps published and the call's last result."""
    rollout = Rollout(None, params(**overrides), None)
    rollout.azure = fake
    steps, published, words = batch_gate.Steps(rollout.result), [], list(gate_words)

    def between():
        result = dict(number_batches(rollout.finish(), rollout.first_number), arm_requests=0)
        step = steps.view(result, rollout.estimate_from)
        published.append(dict(step, status="in_progress"))
        steps.mark(result)
        return words.pop(0) == "go"

    rollout.between = between
    rollout.read()
    assert rollout.compare({"image": dict(IMAGE, version="1.1.0")}) == [] and rollout.plan() is None
    rollout.change_model()
    rollout.run_batches()
    last = steps.view(dict(number_batches(rollout.finish(), rollout.first_number), arm_requests=0),
                      rollout.estimate_from)
    return published, last


def call(fake, **overrides):
    """One call with max_batches (as the role made them before the gate), numbered as the module returns it."""
    rollout = Rollout(None, params(**overrides), None)
    rollout.azure = fake
    rollout.read()
    assert rollout.compare({"image": dict(IMAGE, version="1.1.0")}) == [] and rollout.plan() is None
    rollout.change_model()
    rollout.run_batches()
    return number_batches(rollout.finish(), rollout.first_number)


SAME = ("status", "changed", "model_changed", "batches_total", "image_before", "image_after", "halt", "rollback")


def comparable(result):
    """What a step and a call must agree on (times and request counts aside: those of the step are its own)."""
    out = {key: result[key] for key in SAME}
    out["batches"] = [(b["index"], b["number"], b["kind"], b["instance_ids"], b["outcome"]) for b in result["batches"]]
    out["plan"] = [(b["index"], b["number"], b["instance_ids"]) for b in result["plan"]["batches"]]
    out["estimated_seconds"] = result["plan"]["estimated_seconds"]
    summary = result["summary"]
    out["summary"] = {key: summary[key] for key in ("instances_total", "instances_upgraded", "batches_planned",
                                                    "batches_completed")}
    return out


def test_each_step_of_a_gated_run_is_what_a_max_batches_call_returns():
    published, last = gated_run(FakeScaleSet(count=5), ["go", "go"], max_batches=1, canary=1)
    separate = FakeScaleSet(count=5)
    calls = [call(separate, max_batches=1, canary=1) for _call in range(3)]

    assert [comparable(step) for step in published + [last]] == [comparable(result) for result in calls]
    assert [step["status"] for step in published + [last]] == ["in_progress", "in_progress", "succeeded"]
    assert [[b["number"] for b in step["batches"]] for step in published + [last]] == [[1], [2], [3]]
    # each step's summary starts where the previous one ended
    assert published[1]["summary"]["started_at"] == published[0]["summary"]["ended_at"]


def test_stop_ends_the_call_at_its_step_as_max_batches_does():
    fake = FakeScaleSet(count=5)
    published, last = gated_run(fake, ["go", "stop"], max_batches=1)

    assert [step["status"] for step in published] == ["in_progress", "in_progress"]
    assert last["status"] == "in_progress" and last["batches"] == [] and last["changed"] is False
    assert [b["number"] for b in last["plan"]["batches"]] == [3]   # what is left for the next call
    assert [call for call in fake.writes() if call[0] == "upgrade"] == [("upgrade", ["0", "1"]), ("upgrade", ["2", "3"])]
    # the next call (a re-run) resumes there
    resumed = call(fake)
    assert resumed["status"] == "succeeded" and [b["number"] for b in resumed["batches"]] == [3]


def test_the_gate_options_are_documented_as_specified():
    """validate-modules' check, for the options this gate adds (the rollout module's, rollout_wait's)."""
    import yaml   # pylint: disable=import-outside-toplevel

    from ansible_collections.fleetops.vmss.plugins.action import rollout_wait as action
    from ansible_collections.fleetops.vmss.plugins.modules import rollout, rollout_wait

    documented = yaml.safe_load(rollout.DOCUMENTATION)["options"]
    assert documented["batch_gate"]["type"] == rollout.ARGUMENT_SPEC["batch_gate"]["type"] == "path"
    documented = yaml.safe_load(rollout_wait.DOCUMENTATION)["options"]
    for name, spec in action.ARGUMENT_SPEC.items():
        assert (documented[name].get("type", "str"), documented[name].get("default"), documented[name].get("choices")) == (
            spec["type"], spec.get("default"), spec.get("choices")), name
    assert "gate_step" in yaml.safe_load(rollout_wait.RETURN) and yaml.safe_load(rollout_wait.EXAMPLES)
