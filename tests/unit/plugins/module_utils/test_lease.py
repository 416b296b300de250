# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_lease: the tag, who may take it, the controller chain, and a run's writes carrying it (fakes below the SDK's
scale-set operations)."""

from __future__ import annotations

import copy
import os
import subprocess
import time

import pytest
from azure.core.exceptions import HttpResponseError

from ansible_collections.fleetops.vmss.plugins.module_utils import _lease, _waiter

NOW = 1_796_000_000.0
ME = {"host": "ctl01", "controller": 100, "run": "aaaaaaaaaaaa", "pid": 101}


def lease(**changes):
    return dict({"host": "ctl02", "controller": 200, "run": "bbbbbbbbbbbb", "pid": 201, "operation": "rollout",
                 "expires": NOW + 60}, **changes)


def test_the_tag_reads_back_and_stays_within_azures_256_characters():
    value = _lease.encode(dict(ME, host="h" * 300), "blue_green", NOW)
    assert len(value) < 256 and value.startswith("owner=" + "h" * 63 + ":100:aaaaaaaaaaaa;pid=101;op=blue_green;")
    assert _lease.decode(value) == dict(ME, host="h" * 63, operation="blue_green", expires=NOW)


@pytest.mark.parametrize("junk", ["", "owner=x", "owner=h:1:r;pid=2;op=rollout;expires=tomorrow", None, 12,
                                  "owner=h:one:r;pid=2;op=rollout;expires=2026-12-06T15:00:00Z"])
def test_a_tag_that_is_not_a_lease_is_unreadable(junk):
    assert _lease.decode(junk) is None


@pytest.mark.parametrize("found, force, alive, verdict", [
    (None, False, (), "free"),
    ({"unreadable": True}, False, (), "unreadable"),
    (lease(run=ME["run"]), False, (), "mine"),
    (lease(expires=NOW - 1), False, (200, 201), "expired"),
    (lease(), True, (200, 201), "forced"),
    (lease(), False, (), "held"),                                   # another host: its pids say nothing here
    (lease(host="ctl01"), False, (200, 201), "held"),               # this host, its controller and module alive
    (lease(host="ctl01"), False, (201,), "stopping"),               # its controller killed, its module still up
    (lease(host="ctl01"), False, (200,), "orphaned"),               # its module gone
    # kept between two calls of a run (keep_lease): no module by design, held until it expires
    (lease(host="ctl01", pid=_lease.KEPT_PID), False, (200,), "held"),         # ... while its controller runs
    (lease(host="ctl01", pid=_lease.KEPT_PID), False, (), "orphaned"),         # its controller killed between calls
    (lease(pid=_lease.KEPT_PID), False, (), "held"),                           # another host: its pids say nothing
    (lease(host="ctl01", pid=_lease.KEPT_PID, run=ME["run"]), False, (), "mine"),   # the same run's next call
    (lease(host="ctl01", pid=_lease.KEPT_PID, expires=NOW - 1), False, (), "expired"),
    # kept from the start of a call (a run with lease_run): call is the module pid that wrote it
    (lease(host="ctl01", pid=_lease.KEPT_PID, call=201), False, (200, 201), "held"),
    (lease(host="ctl01", pid=_lease.KEPT_PID, call=201), False, (201,), "stopping"),   # controller killed mid-call
    (lease(host="ctl01", pid=_lease.KEPT_PID, call=201), False, (), "orphaned"),       # ... and that call ended
])
def test_who_may_take_the_lease(found, force, alive, verdict):
    assert _lease.judge(found, ME, NOW, force, lambda pid: pid in alive) == verdict


def test_the_refusal_names_the_holder_the_expiry_and_the_way_out():
    text = _lease.held_message("Scale set rg/api", lease(), NOW)
    assert text.startswith("Scale set rg/api is leased to another operation: a rollout run by ctl02 (controller pid "
                           "200, module pid 201, run bbbbbbbbbbbb), tag fleetops.lease, until ")
    assert "(in 60 s)" in text and "force_lease: true" in text and "Nothing was written" in text


def test_the_lease_lasts_a_few_wait_cycles_and_outlives_the_pause_between_batches():
    assert _lease.ttl_for({"wait_sleep": 10}) == _lease.TTL_MIN
    assert _lease.ttl_for({"wait_sleep": 100}) == 600
    assert _lease.ttl_for({"wait_sleep": 10, "pause_between_batches": 400}) == 800 + _lease.TTL_MIN


def test_the_controller_is_the_top_of_the_ansible_processes_above_the_module(monkeypatch):
    # module <- sh <- worker (forked from ansible-playbook) <- ansible-playbook <- bash
    table = {50: (40, ["/bin/sh", "-c", "python AnsiballZ_rollout.py"]), 40: (30, ["python", "/v/bin/ansible-playbook"]),
             30: (20, ["python", "/v/bin/ansible-playbook"]), 20: (1, ["bash"])}
    monkeypatch.setattr(_lease, "_proc", table.get)
    monkeypatch.setattr(_lease.os, "getppid", lambda: 50)
    controller = _lease.Controller()
    assert controller.pid == 30 and controller.chain == [(50, 40), (40, 30), (30, 20)] and controller.alive()
    del table[30]                                  # kill -9 of ansible-playbook: its worker is reparented
    table[40] = (1, table[40][1])
    assert not controller.alive()


def test_without_ansible_above_the_parent_alone_is_watched(monkeypatch):
    monkeypatch.setattr(_lease, "_proc", lambda pid: None)
    parent = {"pid": 77}
    monkeypatch.setattr(_lease.os, "getppid", lambda: parent["pid"])
    controller = _lease.Controller()
    assert controller.pid == 77 and controller.alive()
    parent["pid"] = 1
    assert not controller.alive()


# --- a run's writes --------------------------------------------------------------------------------------------

class Failed(Exception):
    pass


class Module:
    def __init__(self, check_mode=False, **params):
        self.params = dict({"wait_sleep": 0.01, "force_lease": False}, **params)
        self.check_mode = check_mode
        self.on_exit = []

    def fail_json(self, msg, **result):
        raise Failed(msg, result)


def precondition_failed():
    error = HttpResponseError(message="PreconditionFailed")
    error.status_code = 412
    return error


def conflict():
    error = HttpResponseError(message="Conflict: The request failed due to conflict with a concurrent request.")
    error.status_code = 409
    return error


class ScaleSets:
    """GET and tags PATCH of one scale set, If-Match honoured; records every PATCH body."""

    def __init__(self, tags=None):
        self.doc = {"name": "api", "etag": '"1"', "tags": dict(tags or {})}
        self.patches = []

    def get(self, _group, _name):
        return Doc(copy.deepcopy(self.doc))

    def begin_update(self, _group, _name, body, etag=None, **_kwargs):
        if etag is not None and etag != self.doc["etag"]:
            raise precondition_failed()
        self.patches.append(copy.deepcopy(body))
        self.doc.update(body, etag='"%d"' % (int(self.doc["etag"].strip('"')) + 1))
        return Poller(copy.deepcopy(self.doc))


class Doc(dict):
    def as_dict(self):
        return dict(self)


class Poller:
    def __init__(self, doc):
        self.doc = doc

    def result(self, timeout=None):   # pylint: disable=unused-argument
        return Doc(self.doc)

    def done(self):
        return True


class Compute:
    def __init__(self, tags=None):
        self.virtual_machine_scale_sets = ScaleSets(tags)


class Client:
    """The shape Lease.guard keeps in step: _scale_set_client.ScaleSetClient's resource, update and start (which
    its upgrade goes through)."""

    def __init__(self, compute):
        self.compute = compute
        self.resource = compute.virtual_machine_scale_sets.get("rg", "api").as_dict()
        self.upgraded = []

    def update(self, body, wait=True):   # pylint: disable=unused-argument
        self.resource = self.compute.virtual_machine_scale_sets.begin_update(
            "rg", "api", body, etag=self.resource["etag"]).result().as_dict()
        return self.resource

    def start(self, action, ids):
        self.upgraded.append(list(ids))
        return [(list(ids), "poller of %s" % action)]

    def upgrade(self, ids):
        self.start("upgrade", ids)


@pytest.fixture(autouse=True)
def no_hooks_left():
    yield
    _waiter.WAIT_HOOKS.clear()


def kept_by_first_call(compute, write=lambda client: client.update({"tags": {"team": "web", "fleetops.rollout": "{}"}})):
    """The first call of run role-run-1 (keep_lease): its deferred lease taken by its first ``write(client)``, it ends
    in_progress and keeps the lease for the run's next call. Returns its Lease and its result."""
    first = Module(keep_lease=True, lease_run="role-run-1")
    held = _lease.take(first, compute, "rollout", [("rg", "api")], {}, defer=True)
    client = Client(compute)
    held.guard(client)
    write(client)
    result = {"status": "in_progress"}
    first.on_exit[0](result)
    return held, result


def test_a_deferred_lease_rides_on_the_first_patch_and_leaves_with_the_last():
    compute = Compute({"team": "web"})
    module = Module()
    result = {}
    held = _lease.take(module, compute, "rollout", [("rg", "api")], result, defer=True)
    client = Client(compute)
    held.guard(client, last=_lease.removes_tag("fleetops.rollout"))
    assert compute.virtual_machine_scale_sets.patches == [] and result["lease"]["free"] is True   # nothing yet

    client.update({"tags": {"team": "web", "fleetops.rollout": "{}"}, "properties": {}})
    first = compute.virtual_machine_scale_sets.patches[-1]
    assert _lease.decode(first["tags"][_lease.TAG])["run"] == held.me["run"] and "properties" in first
    assert held.tick in _waiter.WAIT_HOOKS

    held.renew()   # between two of the run's writes: the client's ETag follows, its next PATCH is not refused
    client.update({"tags": {"team": "web"}})           # the rollback point removed: the lease goes with it
    assert compute.virtual_machine_scale_sets.patches[-1] == {"tags": {"team": "web"}}
    module.on_exit[0](result)
    assert len(compute.virtual_machine_scale_sets.patches) == 3 and result["lease"]["released"] is True


def test_a_first_upgrade_is_preceded_by_the_lease_and_the_exit_releases_it():
    compute = Compute({"fleetops.rollout": "{}"})
    module = Module()
    held = _lease.take(module, compute, "rollout", [("rg", "api")], {}, defer=True)
    client = Client(compute)
    held.guard(client)
    client.upgrade(["0", "1"])
    assert client.upgraded == [["0", "1"]] and _lease.TAG in compute.virtual_machine_scale_sets.doc["tags"]
    module.on_exit[0]({})
    assert compute.virtual_machine_scale_sets.doc["tags"] == {"fleetops.rollout": "{}"}
    assert held.tick not in _waiter.WAIT_HOOKS


def test_a_held_lease_refuses_before_any_write_and_check_mode_only_reports_it():
    other = _lease.encode(dict(ME, host="ctl02", run="bbbbbbbbbbbb"), "blue_green", NOW + 10**6)
    compute = Compute({_lease.TAG: other})
    with pytest.raises(Failed) as refused:
        _lease.take(Module(), compute, "rollout", [("rg", "api")])
    assert "a blue_green run by ctl02" in refused.value.args[0] and refused.value.args[1]["lease"]["free"] is False
    result = {}
    _lease.take(Module(check_mode=True), compute, "rollout", [("rg", "api")], result)
    assert result["lease"]["free"] is False and result["lease"]["owner"] == other
    assert compute.virtual_machine_scale_sets.patches == []


def test_an_expired_lease_is_taken_over_and_said_so():
    old = _lease.encode(dict(ME, host="ctl02", run="bbbbbbbbbbbb"), "rollout", NOW - 10**6)
    compute = Compute({_lease.TAG: old})
    result = {}
    _lease.take(Module(), compute, "rolling_upgrade", [("rg", "api")], result)
    assert result["lease"]["taken_over"] == [{"scale_set": "rg/api", "owner": old, "reason": "expired"}]
    assert "op=rolling_upgrade" in compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG]


def test_a_lease_taken_over_meanwhile_stops_the_run_at_its_next_renewal():
    compute = Compute()
    module = Module()
    held = _lease.take(module, compute, "blue_green", [("rg", "api")], {"status": None})
    compute.virtual_machine_scale_sets.begin_update("rg", "api", {"tags": {_lease.TAG: _lease.encode(
        dict(ME, run="cccccccccccc"), "rollout", NOW + 10**6)}})    # force_lease by another run
    held.renew_at = 0
    with pytest.raises(Failed) as stopped:
        held.tick()
    assert "interrupted: its lease on scale set rg/api was taken over" in stopped.value.args[0]
    assert stopped.value.args[1]["status"] == "interrupted"
    assert "cccccccccccc" in compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG]   # theirs, left alone


def test_a_rerun_waits_for_the_module_its_killed_controller_left_then_takes_the_lease(monkeypatch):
    import socket   # pylint: disable=import-outside-toplevel

    theirs = _lease.encode(dict(ME, host=socket.gethostname(), run="bbbbbbbbbbbb"), "rollout", NOW + 10**6)
    compute = Compute({_lease.TAG: theirs})
    monkeypatch.setattr(_lease, "pid_alive", lambda pid: pid == ME["pid"])   # its controller gone, its module up
    slept = []

    def module_stops(seconds):   # meanwhile that module notices, and releases its lease
        slept.append(seconds)
        compute.virtual_machine_scale_sets.begin_update("rg", "api", {"tags": {}})

    monkeypatch.setattr(_lease.time, "sleep", module_stops)
    result = {}
    _lease.take(Module(), compute, "rollout", [("rg", "api")], result)
    assert len(slept) == 1 and result["lease"]["taken_over"] == []
    assert "op=rollout" in compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG]


def test_a_rerun_also_waits_for_the_stopped_module_s_last_write_to_end(monkeypatch):
    """The stopped module's lease release is a PATCH whose operation runs on: Azure answers 409 Conflict to another
    write meanwhile, so the take-over waits for the scale set to leave Updating before it writes."""
    import socket   # pylint: disable=import-outside-toplevel

    theirs = _lease.encode(dict(ME, host=socket.gethostname(), run="bbbbbbbbbbbb"), "rollout", NOW + 10**6)
    compute = Compute({_lease.TAG: theirs})
    scale_sets = compute.virtual_machine_scale_sets
    monkeypatch.setattr(_lease, "pid_alive", lambda pid: pid == ME["pid"])
    writes_while_updating = []
    original = scale_sets.begin_update

    def update(group, name, body, **kwargs):
        if scale_sets.doc.get("provisioning_state") == "Updating":
            writes_while_updating.append(body)   # Azure: 409 Conflict, a concurrent request
        return original(group, name, body, **kwargs)

    scale_sets.begin_update = update
    slept = []

    def meanwhile(seconds):   # first the module releases its lease (Updating), then that operation ends
        slept.append(seconds)
        if len(slept) == 1:
            original("rg", "api", {"tags": {}, "provisioning_state": "Updating"})
        else:
            scale_sets.doc["provisioning_state"] = "Succeeded"

    monkeypatch.setattr(_lease.time, "sleep", meanwhile)
    _lease.take(Module(), compute, "rollout", [("rg", "api")], {})
    assert len(slept) == 2 and writes_while_updating == []
    assert "op=rollout" in scale_sets.doc["tags"][_lease.TAG]


def test_a_kept_lease_bridges_two_calls_of_one_run_and_the_last_call_releases_it():
    """keep_lease: the first call ends in_progress and keeps the lease; another run is refused before any write;
    the same run's next call takes it without a write of its own and releases it when the run ends."""
    compute = Compute({"team": "web"})
    scale_sets = compute.virtual_machine_scale_sets
    held, result = kept_by_first_call(compute)
    kept = _lease.decode(scale_sets.doc["tags"][_lease.TAG])
    assert kept["run"] == "role-run-1" and kept["pid"] == _lease.KEPT_PID and held.tick not in _waiter.WAIT_HOOKS
    assert result["lease"]["kept"] is True and result["lease"]["owner"] == scale_sets.doc["tags"][_lease.TAG]

    writes = len(scale_sets.patches)
    with pytest.raises(Failed) as refused:   # another run on this host: the kept lease's module is gone by design
        _lease.take(Module(keep_lease=True, lease_run="role-run-2"), compute, "rollout", [("rg", "api")], defer=True)
    assert ("(controller pid %s, module pid 0, run role-run-1 - kept by that run from one call to the next)"
            % held.me["controller"]) in refused.value.args[0]
    assert len(scale_sets.patches) == writes

    planned = Module(check_mode=True, keep_lease=True, lease_run="role-run-1")   # the run's plan: writes nothing
    _lease.take(planned, compute, "rollout", [("rg", "api")], {})
    planned.on_exit[0]({"status": "planned"})
    assert len(scale_sets.patches) == writes and _lease.TAG in scale_sets.doc["tags"]

    last = Module(keep_lease=True, lease_run="role-run-1")
    result = {}
    _lease.take(last, compute, "rollout", [("rg", "api")], result, defer=True)
    assert result["lease"]["taken_over"] == [] and len(scale_sets.patches) == writes
    result["status"] = "succeeded"
    last.on_exit[0](result)
    assert scale_sets.doc["tags"] == {"team": "web", "fleetops.rollout": "{}"} and result["lease"]["released"] is True


@pytest.mark.parametrize("result", [{"status": "succeeded"}, {"status": "in_progress", "failed": True}, {}])
def test_without_in_progress_the_lease_is_released_even_with_keep_lease(result):
    compute = Compute()
    module = Module(keep_lease=True, lease_run="role-run-1")
    _lease.take(module, compute, "rollout", [("rg", "api")], {})
    assert _lease.TAG in compute.virtual_machine_scale_sets.doc["tags"]
    module.on_exit[0](result)
    assert compute.virtual_machine_scale_sets.doc["tags"] == {} and "kept" not in result["lease"]


def test_in_progress_without_keep_lease_releases():
    compute = Compute()
    module = Module()
    _lease.take(module, compute, "rollout", [("rg", "api")], {})
    module.on_exit[0]({"status": "in_progress"})
    assert compute.virtual_machine_scale_sets.doc["tags"] == {}


@pytest.mark.parametrize("run", ["", "a:b", "run;pid=1", "x" * 41, "ünï"])
def test_a_lease_run_that_would_break_the_tag_is_refused_before_any_write(run):
    compute = Compute()
    with pytest.raises(Failed) as refused:
        _lease.take(Module(lease_run=run), compute, "rollout", [("rg", "api")])
    assert refused.value.args[0].startswith("Invalid options: lease_run") and compute.virtual_machine_scale_sets.patches == []


class Missing(ScaleSets):
    """A scale set that does not exist until the run creates it (blue/green's green)."""

    def __init__(self):
        super().__init__()
        self.doc, self.created = None, []

    def get(self, _group, _name):
        if self.doc is None:
            error = HttpResponseError(message="ResourceNotFound")
            error.status_code = 404
            raise error
        return super().get(_group, _name)


class Creator:
    def __init__(self, scale_sets):
        self.name, self.scale_sets = "api-green", scale_sets

    def create(self, body):
        self.scale_sets.created.append(copy.deepcopy(body))
        self.scale_sets.doc = dict(copy.deepcopy(body), name=self.name, etag='"1"')
        return Poller(self.scale_sets.doc)


def test_a_set_the_run_creates_carries_the_lease_in_its_put_and_loses_it_with_the_others():
    compute = Compute()
    compute.virtual_machine_scale_sets = Missing()
    module = Module()
    held = _lease.take(module, compute, "blue_green", [("rg", "api-green")], {})
    assert compute.virtual_machine_scale_sets.patches == []     # nothing to lease yet
    green = Creator(compute.virtual_machine_scale_sets)
    held.lease_creates(green)
    green.create({"tags": {"fleetops.blue_green.blue": "api"}, "location": "westeurope"})
    put = compute.virtual_machine_scale_sets.created[0]
    assert _lease.decode(put["tags"][_lease.TAG])["run"] == held.me["run"] and put["location"] == "westeurope"
    assert compute.virtual_machine_scale_sets.patches == [] and held.tick in _waiter.WAIT_HOOKS   # no extra write
    module.on_exit[0]({"status": "succeeded"})
    assert compute.virtual_machine_scale_sets.doc["tags"] == {"fleetops.blue_green.blue": "api"}


def test_every_wait_calls_the_hooks_between_its_checks():
    calls = []
    _waiter.WAIT_HOOKS.append(lambda: calls.append("hook"))
    checks = iter([False, False, True])
    _waiter.wait_until(lambda: calls.append("check") or next(checks), timeout=10, sleep=1, sleeper=lambda s: None)
    assert calls == ["check", "hook", "check", "hook", "check"]


def test_a_controller_named_by_the_caller_is_watched_by_its_pid():
    """lease_controller_pid (a role under async, detached from ansible-playbook): that process is the controller."""
    named = _lease.Controller(os.getpid())
    assert named.pid == os.getpid() and named.alive()
    gone = subprocess.Popen(["true"])   # pylint: disable=consider-using-with
    gone.wait()
    assert not _lease.Controller(gone.pid).alive()


def test_a_renewal_comes_right_after_an_accepted_action_not_just_before_the_next(monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(_lease.time, "monotonic", lambda: clock["now"])
    compute = Compute({"fleetops.rollout": "{}"})
    held = _lease.take(Module(), compute, "rollout", [("rg", "api")], {}, defer=True)
    client = Client(compute)
    held.guard(client)
    patches = compute.virtual_machine_scale_sets.patches
    client.upgrade(["0"])                       # the lease's own PATCH first: no renewal after it, it is fresh
    assert len(patches) == 1 and client.upgraded == [["0"]]
    assert held.renew_at == 1000.0 + 2 * held.ttl / 3   # the waits leave it to the next action
    clock["now"] += held.ttl / 3 - 1
    held.tick()
    client.upgrade(["1"])                       # less than a third of the lease's time passed: no renewal
    assert len(patches) == 1
    clock["now"] += 1
    client.upgrade(["2"])                       # a third passed: renewed at once, while the instances upgrade
    assert len(patches) == 2 and client.upgraded[-1] == ["2"] and held.written == clock["now"]
    renewed = held.info["expires"]
    clock["now"] += 2 * held.ttl / 3 - 1
    held.tick()                                 # a long batch: the waits keep the lease ...
    assert len(patches) == 2
    clock["now"] += 1
    held.tick()                                 # ... once two thirds of its time passed, before it runs out
    assert len(patches) == 3 and held.info["expires"] >= renewed


class Busy(ScaleSets):
    """The previous call's kept-lease PATCH (not waited for) still runs: Azure answers the next `busy` PATCHes 409."""

    def __init__(self, tags=None, busy=2):
        super().__init__(tags)
        self.busy, self.refused = busy, 0

    def begin_update(self, _group, _name, body, etag=None, **_kwargs):
        if self.busy:
            self.busy -= 1
            self.refused += 1
            raise conflict()
        return super().begin_update(_group, _name, body, etag=etag)


def test_the_next_call_s_first_upgrade_waits_for_the_kept_lease_s_patch_still_running():
    """A kept lease's PATCH is not waited for: the run's next call may find it still running, and the PATCH that
    takes the lease before its first upgrade meets 409 Conflict. Asked again (no verdict, no interruption: the bench
    fleet run halted by 'interrupted at batch 2 of 2 by a transient fault ... concurrent request')."""
    compute = Compute({"team": "web"})
    kept_by_first_call(compute)
    tags = compute.virtual_machine_scale_sets.doc["tags"]
    kept = _lease.decode(tags[_lease.TAG])   # close to its expiry: the next call takes it again with a PATCH
    tags[_lease.TAG] = _lease.encode(kept, "rollout", time.time() + 30)
    busy = Busy(tags)
    compute.virtual_machine_scale_sets = busy

    second = Module(keep_lease=True, lease_run="role-run-1")
    held = _lease.take(second, compute, "rollout", [("rg", "api")], {}, defer=True)
    client = Client(compute)
    held.guard(client)
    client.upgrade(["2", "3"])

    assert busy.refused == 2 and client.upgraded == [["2", "3"]]
    taken = _lease.decode(busy.doc["tags"][_lease.TAG])   # this call's, written once, in its kept form
    assert taken["pid"] == _lease.KEPT_PID and taken["call"] == os.getpid() and taken["expires"] > time.time() + 60
    assert len(busy.patches) == 1


class Refusing(Client):
    """Azure refuses the first ``refused`` actions, 409: the previous call's PATCH keeping the lease still runs."""

    def __init__(self, compute, refused=1):
        super().__init__(compute)
        self.refused = refused

    def start(self, action, ids, *args, **kwargs):
        if self.refused:
            self.refused -= 1
            raise conflict()
        return super().start(action, ids, *args, **kwargs)


def test_the_run_s_next_call_adopts_a_fresh_kept_lease_without_writing_and_keeps_it_without_writing():
    """A batch's call finds the lease its run kept, most of its time to run: no tags PATCH before its upgrade (which
    Azure would hold back until that PATCH ends) and none at its exit; close to its expiry, it is renewed."""
    compute = Compute({"team": "web"})
    scale_sets = compute.virtual_machine_scale_sets
    kept_by_first_call(compute, lambda client: client.upgrade(["0"]))
    kept_value, writes = scale_sets.doc["tags"][_lease.TAG], len(scale_sets.patches)
    assert writes == 1   # taken before the first upgrade in its kept form: nothing written at the exit

    second = Module(keep_lease=True, lease_run="role-run-1")
    result = {}
    held = _lease.take(second, compute, "rollout", [("rg", "api")], result, defer=True)
    client = Refusing(compute)   # the keeping PATCH still runs: the upgrade is asked again, not judged
    held.guard(client)
    client.upgrade(["1"])
    assert client.upgraded == [["1"]] and client.refused == 0
    assert len(scale_sets.patches) == writes and result["lease"]["owner"] == kept_value
    assert held.tick in _waiter.WAIT_HOOKS   # the controller is still watched
    result["status"] = "in_progress"
    second.on_exit[0](result)
    assert len(scale_sets.patches) == writes and result["lease"]["kept"] is True
    assert scale_sets.doc["tags"][_lease.TAG] == kept_value

    other = Module(keep_lease=True, lease_run="role-run-2")   # still held against every other run
    with pytest.raises(Failed):
        _lease.take(other, compute, "rollout", [("rg", "api")], defer=True)

    tags = scale_sets.doc["tags"]   # under a sixth of its time left: the next call writes the lease first
    tags[_lease.TAG] = _lease.encode(_lease.decode(kept_value), "rollout", time.time() + held.ttl / 6 - 5)
    third = Module(keep_lease=True, lease_run="role-run-1")
    held = _lease.take(third, compute, "rollout", [("rg", "api")], {}, defer=True)
    client = Client(compute)
    held.guard(client)
    client.upgrade(["2"])
    assert len(scale_sets.patches) == writes + 1
    assert _lease.decode(scale_sets.doc["tags"][_lease.TAG])["pid"] == _lease.KEPT_PID   # in its kept form ...
    third.on_exit[0]({"status": "in_progress"})   # ... and fresh: kept as it is, no write
    assert len(scale_sets.patches) == writes + 1


def _raise_or_return(answer):
    if isinstance(answer, Exception):
        raise answer
    return answer


def test_a_409_is_asked_again_every_wait_sleep_until_conflict_seconds_have_passed_then_raised(monkeypatch):
    """The one 409 loop (a lease write, the retake before an action, an action): bounded by CONFLICT_SECONDS, the
    409 itself raised then (a transient fault for the caller, never a verdict); any other error raised at once."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(_lease.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(_lease.time, "sleep", lambda seconds: clock.update(now=clock["now"] + seconds))
    held = _lease.take(Module(wait_sleep=7), Compute(), "rollout", [("rg", "api")], {}, defer=True)
    asked = []

    def busy():
        asked.append(clock["now"])
        raise conflict()

    with pytest.raises(HttpResponseError) as refused:
        held._until_not_conflict(busy)   # pylint: disable=protected-access
    assert refused.value.status_code == 409
    assert asked == [1000.0 + 7 * n for n in range(10)]   # the last at 1063: asked until 60 s had passed
    assert asked[-2] <= 1000.0 + _lease.CONFLICT_SECONDS < asked[-1] <= 1000.0 + _lease.CONFLICT_SECONDS + 7

    answers = iter([conflict(), conflict(), "accepted"])
    assert held._until_not_conflict(lambda: _raise_or_return(next(answers))) == "accepted"   # pylint: disable=protected-access

    asked.clear()
    with pytest.raises(HttpResponseError):   # not one of this run's own updates: no second ask
        held._until_not_conflict(busy, ours=lambda: False)   # pylint: disable=protected-access
    with pytest.raises(HttpResponseError) as failed:
        held._until_not_conflict(lambda: _raise_or_return(precondition_failed()))   # pylint: disable=protected-access
    assert len(asked) == 1 and failed.value.status_code == 412

    asked.clear()   # wait_sleep longer than CONFLICT_SECONDS: still asked once more
    slow = _lease.take(Module(wait_sleep=100), Compute(), "rollout", [("rg", "api")], {}, defer=True)
    with pytest.raises(HttpResponseError):
        slow._until_not_conflict(busy)   # pylint: disable=protected-access
    assert asked == [clock["now"] - 100, clock["now"]]


# --- the lease's tags PATCH judged ended from reads of the set, not from its poller (Azure's first Retry-After) ------

class SlowPoller:
    """An operation whose polls say InProgress until ``finish`` (Azure's first Retry-After: 35-61 s); then its
    outcome: the scale set, or ``error``."""

    def __init__(self, doc, error=None):
        self.doc, self.error, self.ended, self.waited = doc, error, False, []

    def done(self):
        return self.ended

    def result(self, timeout=None):
        self.waited.append(timeout)
        if not self.ended:
            return None   # azure-core: the timeout passed, the operation still running
        if self.error is not None:
            raise self.error
        return Doc(self.doc)

    def status(self):
        return "Succeeded" if self.ended else "InProgress"

    def finish(self):
        self.ended = True


class Settling(ScaleSets):
    """The PATCH's operation: the set reads Updating for ``updating_reads`` GETs, then ``state``; the poller
    ends only when the test says so."""

    def __init__(self, updating_reads=2, state="Succeeded", error=None):
        super().__init__()
        self.updating_reads, self.state, self.error = updating_reads, state, error
        self.reads, self.pollers = 0, []

    def get(self, _group, _name):
        self.reads += 1
        doc = Doc(copy.deepcopy(self.doc))
        doc["provisioning_state"] = "Updating" if self.reads <= self.updating_reads else self.state
        return doc

    def begin_update(self, _group, _name, body, etag=None, **kwargs):
        assert "polling" not in kwargs   # polled in the SDK's thread: its outcome read later
        poller = super().begin_update(_group, _name, body, etag=etag)
        self.reads = 0   # the PATCH's operation starts: reads from here on
        self.pollers.append(SlowPoller(poller.doc, self.error))
        return self.pollers[-1]


def test_the_lease_is_taken_once_a_read_shows_the_set_updated_not_when_its_poller_ends():
    compute = Compute()
    scale_sets = compute.virtual_machine_scale_sets = Settling(updating_reads=2)
    module = Module(wait_timeout=60)
    held = _lease.take(module, compute, "blue_green", [("rg", "api")], {})

    [poller] = scale_sets.pollers
    assert not poller.done() and poller.waited == []          # never waited on: its polls go on in their thread
    assert scale_sets.reads == 3   # read every quarter of wait_sleep until not Updating
    assert held.unconfirmed() and held.sets[0]["etag"] == scale_sets.doc["etag"]   # the set as read after it
    poller.finish()
    held.tick()                                                   # the next wait reads the outcome: it succeeded
    assert not held.unconfirmed() and held.pending == [] and poller.waited == [None]


def test_a_tags_patch_that_fails_after_the_read_still_fails_the_module_with_azure_s_error():
    compute = Compute()
    error = HttpResponseError(message="InternalExecutionError: the tags update failed")
    scale_sets = compute.virtual_machine_scale_sets = Settling(updating_reads=0, error=error)
    module = Module(wait_timeout=60)
    held = _lease.take(module, compute, "blue_green", [("rg", "api")], {"status": None})

    held.tick()   # still running: nothing to say yet
    scale_sets.pollers[0].finish()
    with pytest.raises(Failed) as failed:
        held.tick()   # at the module's next wait
    assert failed.value.args[0].startswith("Failed to take the lease on scale set rg/api")
    assert "the tags update failed" in failed.value.args[0]


def test_a_set_that_reads_failed_waits_for_the_poller_s_error_at_once():
    compute = Compute()
    error = HttpResponseError(message="InternalExecutionError: the tags update failed")
    scale_sets = compute.virtual_machine_scale_sets = Settling(updating_reads=1, state="Failed", error=error)
    scale_sets.pollers = []
    original = scale_sets.begin_update

    def ends_when_waited(*args, **kwargs):   # the poller ends while it is waited for
        poller = original(*args, **kwargs)
        poller.result = lambda timeout=None, end=poller: (end.finish(), SlowPoller.result(end, timeout))[1]
        return poller

    scale_sets.begin_update = ends_when_waited
    with pytest.raises(Failed) as failed:
        _lease.take(Module(wait_timeout=60), compute, "blue_green", [("rg", "api")], {})
    assert "the tags update failed" in failed.value.args[0]


def test_an_unwaited_lease_returns_at_once_and_its_patch_s_failure_still_fails_the_module():
    compute = Compute()
    error = HttpResponseError(message="InternalExecutionError: the tags update failed")
    scale_sets = compute.virtual_machine_scale_sets = Settling(updating_reads=10 ** 6, error=error)
    module = Module(wait_timeout=60)
    held = _lease.take(module, compute, "blue_green", [("rg", "api")], {}, unwaited=True)

    assert scale_sets.reads == 0 and held.unconfirmed()   # no wait at all: the run waits for the set itself
    assert held.sets[0]["etag"] is None and _lease.TAG in held.sets[0]["tags"]   # its next write reads first
    scale_sets.pollers[0].finish()
    with pytest.raises(Failed) as failed:
        held.tick()
    assert "the tags update failed" in failed.value.args[0]


# --- a run that keeps its lease from call to call (the rollout role: one call per batch) -------------------------

def test_a_run_that_keeps_its_lease_writes_it_in_its_kept_form_from_the_start():
    compute = Compute()
    _lease.take(Module(keep_lease=True, lease_run="role-run-1"), compute, "rollout", [("rg", "api")], {})
    taken = _lease.decode(compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG])
    assert taken["pid"] == _lease.KEPT_PID and taken["call"] == os.getpid() and taken["run"] == "role-run-1"

    alone = Compute()   # one call that keeps nothing: its own module pid, as before
    _lease.take(Module(), alone, "rollout", [("rg", "api")], {})
    taken = _lease.decode(alone.virtual_machine_scale_sets.doc["tags"][_lease.TAG])
    assert taken["pid"] == os.getpid() and "call" not in taken


class Counting(Client):
    """Notes how many PATCHes the scale set had when each action was sent."""

    def __init__(self, compute):
        super().__init__(compute)
        self.patches_at_start = []

    def start(self, action, ids):
        self.patches_at_start.append(len(self.compute.virtual_machine_scale_sets.patches))
        return super().start(action, ids)


@pytest.mark.parametrize("batch_seconds", [70, 150, 230])   # shorter than a third of the lease, than two thirds, longer
def test_a_run_of_calls_writes_no_lease_at_a_call_s_exit_and_none_just_before_an_upgrade(monkeypatch, batch_seconds):
    """The rollout role's calls, one batch each, a few seconds apart: the lease is written once before the first
    upgrade, then only renewed right after an upgrade (or, in a batch longer than two thirds of its time, by a wait
    of that batch); no call writes it at its exit, so no call's first upgrade meets a tags PATCH still running."""
    clock = {"now": NOW}
    monkeypatch.setattr(_lease.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(_lease.time, "time", lambda: clock["now"])
    compute = Compute({"fleetops.rollout": "{}"})
    patches = compute.virtual_machine_scale_sets.patches
    for call in range(8):
        module = Module(keep_lease=True, lease_run="role-run-1", wait_sleep=5)
        result = {}
        held = _lease.take(module, compute, "rollout", [("rg", "api")], result, defer=True)
        client = Counting(compute)
        held.guard(client)
        taken = len(patches)
        clock["now"] += 2                       # the call reads the set and its instances, a wait among them
        held.tick()
        client.upgrade([str(call)])
        assert client.patches_at_start == [taken + (1 if call == 0 else 0)], call   # only the first call's take
        for _tick in range(batch_seconds // 5):   # the batch's waits
            clock["now"] += 5
            held.tick()
        during = len(patches)
        result["status"] = "in_progress"
        module.on_exit[0](result)
        assert len(patches) == during and result["lease"]["kept"] is True, call   # nothing written at the exit
        left = _lease.parse_iso(result["lease"]["expires"]) - clock["now"]
        assert left >= held.ttl / 4, call
        clock["now"] += 6                       # the role moves on to the next call
    leases = [_lease.decode(body["tags"][_lease.TAG]) for body in patches]
    assert all(lease["pid"] == _lease.KEPT_PID and lease["run"] == "role-run-1" for lease in leases)


def test_a_kept_lease_whose_controller_was_killed_waits_for_its_call_then_is_taken_over(monkeypatch):
    """A run that keeps its lease writes it with pid 0 from the start: judged by its controller. Killed
    (kill -9 of ansible-playbook), a re-run on the same host waits for the call still running to stop at its next
    wait (it releases the lease), and takes over at once a lease whose call has ended too."""
    gone = subprocess.Popen(["true"])   # pylint: disable=consider-using-with
    gone.wait()                         # the controller, killed
    compute = Compute()
    first = Module(keep_lease=True, lease_run="role-run-1", lease_controller_pid=gone.pid)
    running = _lease.take(first, compute, "rollout", [("rg", "api")], {})
    assert _lease.decode(compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG])["pid"] == _lease.KEPT_PID
    slept = []

    def call_stops(seconds):   # meanwhile that call reaches its next wait, notices and releases
        slept.append(seconds)
        with pytest.raises(Failed) as stopped:
            running.tick()
        assert stopped.value.args[1]["status"] == "interrupted"

    monkeypatch.setattr(_lease.time, "sleep", call_stops)
    result = {}
    _lease.take(Module(), compute, "rollout", [("rg", "api")], result)
    assert len(slept) == 1 and result["lease"]["taken_over"] == []
    assert _lease.decode(compute.virtual_machine_scale_sets.doc["tags"][_lease.TAG])["run"] != "role-run-1"

    compute = Compute()   # the same, its call ended (kept for the next call that never came): taken over at once
    _lease.take(Module(keep_lease=True, lease_run="role-run-1", lease_controller_pid=gone.pid), compute, "rollout",
                [("rg", "api")], {})
    monkeypatch.setattr(_lease, "pid_alive", lambda pid: False)
    result = {}
    _lease.take(Module(), compute, "rollout", [("rg", "api")], result)
    assert len(slept) == 1 and [item["reason"] for item in result["lease"]["taken_over"]] == ["orphaned"]
