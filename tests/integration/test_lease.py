# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One operation per scale set (the lease, tag fleetops.lease), against the emulator: a second rollout is
refused before any write naming the holder; a controller killed hard (``kill -9`` of ansible-playbook's process
group, which leaves Ansible's detached worker and the module running) does not make a re-run overlap the
module it left: that module stops at its next wait and releases the lease, the re-run resumes, no instance is
upgraded twice. Writes and versions are read from the emulator's traffic log and the instance views."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections import Counter

import yaml
from conftest import arm_writes, last_seq
from test_rollout import FAST, MARKETPLACE, RG, instances, scale_set_tags, seed_scale_set, upgrades, wait_for

from ansible_collections.fleetops.vmss.plugins.module_utils import _lease

# ten batches two seconds apart: the first run is still going when the second one and the kill come
ARGS = dict(FAST, resource_group=RG, name="api", image=dict(MARKETPLACE, version="1.1.0"), batch_by="count",
            batch_size=1, pause_between_batches=2)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def tags_only(entry):
    return set((entry["liveRequest"].get("body") or {})) == {"tags"}


def test_a_second_rollout_is_refused_and_a_killed_controller_does_not_overlap_the_rerun(
        emulator, azure, ansible, control, tmp_path):
    seed_scale_set(azure, "api", dict(MARKETPLACE, version="1.0.0"), capacity=10)
    since = last_seq(control)
    playbook = tmp_path / "rollout.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"fleetops.vmss.rollout": ARGS}]}]))
    # ansible-playbook in its own process group, as a shell job or an AWX job is: the group is what gets killed
    process = subprocess.Popen(["ansible-playbook", str(playbook)], env=ansible.env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: upgrades(control, since), "the first batch's upgrade", timeout=120)
        holder = _lease.decode(scale_set_tags(azure, "api").get(_lease.TAG))
        assert holder is not None and holder["operation"] == "rollout" and holder["host"] == socket.gethostname()
        assert holder["controller"] == process.pid and alive(holder["pid"])   # the controller, and its module

        # a second rollout while the first runs: refused before any write, naming the holder and the way out
        before = last_seq(control)
        code, second = ansible.module("rollout", ARGS)
        assert code != 0 and second["lease"]["free"] is False, second
        assert "leased to another operation: a rollout run by %s (controller pid %d, module pid %d, run %s)" % (
            holder["host"], holder["controller"], holder["pid"], holder["run"]) in second["msg"]
        assert "force_lease: true" in second["msg"] and "Nothing was written" in second["msg"]
        for entry in arm_writes(control, before):   # only the first run's batches and lease renewals
            body = entry["liveRequest"].get("body") or {}
            assert entry.get("operation_id") == "VirtualMachineScaleSets_UpdateInstances" or (
                tags_only(entry) and (_lease.decode(body["tags"].get(_lease.TAG)) or {}).get("run") == holder["run"]), entry
    finally:
        os.killpg(process.pid, signal.SIGKILL)   # kill -9 -<pgid>
        process.wait()
    # Ansible's worker detached into its own session: the module outlives its playbook until its next wait

    # the re-run at once: waits for the orphaned module to stop (it notices at its next wait), then resumes
    code, rerun = ansible.module("rollout", ARGS)
    assert code == 0 and rerun["status"] == "succeeded", json.dumps(rerun, indent=1)[:6000]
    assert [b for b in rerun["batches"] if b["kind"] == "batch"]    # the orphaned module stopped, it did not finish
    wait_for(lambda: not alive(holder["pid"]), "the orphaned module to exit", timeout=30)

    done = Counter(sum(upgrades(control, since), []))
    assert done == Counter({str(i): 1 for i in range(10)})          # no instance upgraded twice, none skipped
    fleet = instances(azure, "api")
    assert {i["image"]["version"] for i in fleet} == {"1.1.0"} and all(i["health_state"] == "Healthy" for i in fleet)
    tags = scale_set_tags(azure, "api")
    assert _lease.TAG not in tags and "fleetops.rollout" not in tags   # released, rollback point removed
    models = [entry for entry in arm_writes(control, since)
              if entry.get("operation_id") == "VirtualMachineScaleSets_Update" and not tags_only(entry)]
    assert len(models) == 1                                          # the model changed once, by the first run


def lease_of(entry):
    return _lease.decode(((entry["liveRequest"].get("body") or {}).get("tags") or {}).get(_lease.TAG))


def test_a_lease_kept_between_two_calls_of_one_run_refuses_another_run_until_the_last_call_releases_it(
        emulator, azure, ansible, control):
    """keep_lease with one lease_run (as the rollout role calls the module once per batch): between the calls the
    lease stays (pid 0, no module running); a second run is refused before any write (its module pid is gone
    by design, and its controller runs: not an orphan); the run's next call takes it as its own and the last call releases it."""
    seed_scale_set(azure, "api", dict(MARKETPLACE, version="1.0.0"), capacity=4)
    since = last_seq(control)
    # each call is its own `ansible` process here: the run's controller, as the role names it, is this test
    run = dict(ARGS, batch_size=2, pause_between_batches=0, keep_lease=True, lease_run="play-1",
               lease_controller_pid=os.getpid())
    code, first = ansible.module("rollout", dict(run, max_batches=1))
    assert code == 0 and first["status"] == "in_progress", json.dumps(first, indent=1)[:4000]
    kept = _lease.decode(scale_set_tags(azure, "api").get(_lease.TAG))
    assert kept is not None and kept["run"] == "play-1" and kept["pid"] == _lease.KEPT_PID
    assert first["lease"]["kept"] is True and first["lease"]["expires"] == _lease.iso(kept["expires"])

    before = last_seq(control)
    code, other = ansible.module("rollout", ARGS)   # another run (an EDA rollback, a second operator)
    assert code != 0 and other["lease"]["free"] is False and other["lease"]["taken_over"] == [], other
    assert "run play-1 - kept by that run from one call to the next" in other["msg"]
    assert "Nothing was written" in other["msg"]
    assert arm_writes(control, before) == []

    code, last = ansible.module("rollout", run)     # the same run's next call: its own lease, no force_lease
    assert code == 0 and last["status"] == "succeeded", json.dumps(last, indent=1)[:4000]
    assert last["lease"]["taken_over"] == [] and last["lease"]["released"] is True
    assert _lease.TAG not in scale_set_tags(azure, "api")
    assert Counter(sum(upgrades(control, since), [])) == Counter({str(i): 1 for i in range(4)})
    owners = {lease["run"] for lease in map(lease_of, arm_writes(control, since)) if lease}
    assert owners == {"play-1"}


def test_the_rollout_role_holds_one_lease_from_its_first_write_to_its_last(emulator, azure, control, ansible_env, tmp_path):
    """The role calls the module once per batch: every write of the scale set carries the role run's lease
    until the last one, which removes it - there is no moment between two batches when the set is free. The lease
    rides on the first write and is kept in its kept form from the start: no lease PATCH at a call's exit, so each
    batch is one manualupgrade, accepted at once (none refused 409 behind a tags PATCH still running)."""
    from test_rollout_role import NAME, custom_stats, rollout, seed   # pylint: disable=import-outside-toplevel

    seed(azure, "westeurope")
    since = last_seq(control)
    completed = rollout(ansible_env, azure, tmp_path / "reports")
    assert completed.returncode == 0, completed.stdout[-4000:]
    writes = [entry for entry in arm_writes(control, since)
              if entry.get("operation_id") == "VirtualMachineScaleSets_Update" and NAME in entry["liveRequest"]["url"]]
    leases = [lease_of(entry) for entry in writes]
    assert len(upgrades(control, since)) >= 3 and writes and leases[-1] is None   # three calls; the last write frees it
    assert all(leases[:-1]) and len({lease["run"] for lease in leases[:-1]}) == 1, leases
    assert leases[0]["run"].startswith("rollout-") and all(lease["pid"] == _lease.KEPT_PID for lease in leases[:-1])
    assert len(writes) == 2, writes   # the model PATCH takes it, the last PATCH removes it: none between two batches
    batches = custom_stats(completed.stdout)["summary"]["batches_completed"]
    assert batches >= 3 and len(upgrades(control, since)) == batches   # exactly one manualupgrade a batch
    refused = [entry["liveRequest"]["url"] for entry in arm_writes(control, since)
               if str(entry["liveResponse"]["statusCode"]) == "409"]
    assert refused == []
    assert _lease.TAG not in (azure.client("compute").virtual_machine_scale_sets.get(
        "payments-prod", NAME).as_dict().get("tags") or {})


def test_green_is_leased_at_creation_and_the_lease_stays_with_the_run_from_staged_to_live(
        emulator, azure, ansible, control):
    """blue/green as the role calls it (staged, then live, one lease_run): green's create PUT carries the lease (no
    extra write); after staged both sets stay leased to the run, another run is refused before any write; live
    takes the lease as its own and releases it on both sets."""
    from test_blue_green import FAST as BG_FAST, IMAGE, RG as BG_RG, seed as seed_blue, writes_to  # pylint: disable=import-outside-toplevel

    seed_blue(emulator, azure)
    since = last_seq(control)
    base = dict(BG_FAST, resource_group=BG_RG, name="shop-blue", image=dict(IMAGE, version="2.0.0"), lease_run="play-bg",
                lease_controller_pid=os.getpid())
    code, staged = ansible.module("blue_green", dict(base, state="staged", keep_lease=True))
    assert code == 0 and staged["status"] == "succeeded" and staged["lease"]["kept"] is True, staged.get("msg")
    [create] = [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PUT"]
    assert lease_of(create)["run"] == "play-bg"
    assert not [e for e in writes_to(control, since, "shop-green") if tags_only(e) and e["seq"] < create["seq"]]
    compute = azure.client("compute").virtual_machine_scale_sets
    for name in ("shop-blue", "shop-green"):
        kept = _lease.decode((compute.get(BG_RG, name).tags or {}).get(_lease.TAG))
        assert kept["run"] == "play-bg" and kept["pid"] == _lease.KEPT_PID, name

    before = last_seq(control)
    code, other = ansible.module("blue_green", dict(base, lease_run="someone-else"))
    assert code != 0 and other["lease"]["free"] is False and "run play-bg" in other["msg"], other
    assert arm_writes(control, before) == []

    code, live = ansible.module("blue_green", base)
    assert code == 0 and live["status"] == "succeeded" and live["lease"]["taken_over"] == [], live.get("msg")
    assert all(_lease.TAG not in (compute.get(BG_RG, name).tags or {}) for name in ("shop-blue", "shop-green"))
