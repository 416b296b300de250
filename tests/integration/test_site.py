# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end-to-end story of `make demo` (playbooks/site.yml), run twice against the emulator as `make demo`
would run it: bake 1.0.0 -> a fleet of 10 -> bake 1.1.0, which breaks health -> its rollout halts after the first
batch, rolls back and demotes 1.1.0 -> bake 1.1.1 -> its rollout completes -> autoscale scales out under load.
The second run must succeed too (nothing left half-done by the first)."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT, arm_put

LANDING_ZONE = ROOT / "emulator" / "fixtures" / "demo-landing-zone.json"
API_VERSIONS = {"resourcegroups": "2021-04-01", "Microsoft.Network": "2024-05-01"}


def seed_landing_zone(azure):
    """The platform team's resource group, network and load balancer, as `make demo` seeds them (--fixture)."""
    for entry in json.loads(LANDING_ZONE.read_text())["requests"]:
        path = entry["path"].replace("{subscriptionId}", azure.subscription_id)
        version = API_VERSIONS["Microsoft.Network" if "Microsoft.Network" in path else "resourcegroups"]
        arm_put(azure, path, entry["body"], version)


def run_site(env, workdir, reports):
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "site.yml"),
                           "-e", json.dumps({"rollout_report_dir": str(reports)})],
                          env=env, cwd=workdir, capture_output=True, text=True, timeout=1500, check=False)


def story(stdout):
    """The lines of the summary task's message."""
    start = stdout.index("TASK [Show the story]")
    return json.loads(stdout[stdout.index("{", start):stdout.index("\n}", start) + 2])["msg"]


def instance_counts(line):
    """'Instances: 12, on the latest model: 12, healthy: 12' -> (12, 12, 12)."""
    return tuple(int(n) for n in re.findall(r"\d+", line))


def test_the_demo_tells_the_whole_story_twice(emulator, azure, ansible_env, tmp_path):
    seed_landing_zone(azure)
    reports = tmp_path / "reports"

    first = run_site(ansible_env, tmp_path, reports)

    assert first.returncode == 0, first.stdout[-8000:] + first.stderr[-3000:]
    lines = story(first.stdout)
    assert lines[0] == "Image versions (name, excluded from latest): [['1.0.0', False], ['1.1.0', True], ['1.1.1', False]]"
    assert lines[1].startswith("Rollout of 1.1.0: rolled_back: Rollout of scale set payments-demo/payments-api "
                               "halted after batch 1 of 5: 2 of 2 upgraded instances (100%) are unhealthy"), lines[1]
    assert lines[2].startswith("Rollout of 1.1.1: succeeded, 5 batch(es), report %s/rollout-payments-api-" % reports)
    # Scale-outs of 2 from 10, one per cooldown (3 s here) while the load lasts. The load lasts until the demo sees a
    # scale-out and ends a task later: on a busy machine (CI: 6 workers on 2 cores) several cooldowns can pass before
    # that read and between it and the load's end, so how many came is the machine's, not autoscale's; the steps of 2,
    # the maximum of 30 and every instance on the latest model are autoscale's.
    assert lines[4].startswith("Autoscale under load: capacity 10 -> "), lines[4]
    after = int(lines[4].rsplit(" ", 1)[1])
    assert after >= 12 and after % 2 == 0, lines[4]
    count, latest, healthy = instance_counts(lines[5])
    assert after <= count <= 30 and count % 2 == 0 and latest == count and healthy >= 12, lines[5]
    compute = azure.client("compute")
    images = {vm.storage_profile.image_reference.id.rsplit("/", 1)[-1]
              for vm in compute.virtual_machine_scale_set_vms.list("payments-demo", "payments-api")}
    assert images == {"1.1.1"}
    assert len(list(reports.glob("rollout-payments-api-*.svg"))) == 2  # the halted rollout and the good one

    second = run_site(ansible_env, tmp_path, reports)

    assert second.returncode == 0, second.stdout[-8000:] + second.stderr[-3000:]
    lines = story(second.stdout)
    assert "Rollout of 1.1.0: rolled_back" in lines[1]
    assert lines[2].startswith("Rollout of 1.1.1: nothing_to_do"), lines[2]
    before, after = (int(n) for n in re.findall(r"\d+", lines[4]))
    # The second run starts where the first left it (re-applying the setting did not put the capacity back to its
    # default of 10), or one scale-out of 2 further: one may still come after the first run's summary read, while the
    # 45% just fed shares the 5-minute window with the 85% before it.
    assert before in (count, count + 2) and after >= before + 2 and after % 2 == 0, (count, lines[4])
