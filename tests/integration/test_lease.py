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
