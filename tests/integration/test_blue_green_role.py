# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/blue_green.yml (the rollout role, blue_green strategy) against the emulator: a Uniform blue set on
gallery image version 1.0.0 in a load balancer pool, with the Application Health extension. --check prints the
plan and writes nothing; the swap to 1.1.0 leaves green alone in the pool, with blue/green reports and the outcome
in set_stats; the same playbook with rollout_blue_green_state=rolled_back puts blue back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import ROOT, arm_writes, last_seq
from test_blue_green import RG, instance_ids, pool_members, scale_set, seed
from test_rollout_role import custom_stats, seed_gallery, version_id


def blue_green(ansible_env, azure, reports: Path, *options, **extra):
    extra_vars = {"rollout_resource_group": RG, "rollout_scale_set": "shop-blue",
                  "rollout_image_version_id": version_id(azure, "1.1.0"), "rollout_health_timeout": 60,
                  "rollout_wait_sleep": 0.25, "rollout_report_dir": str(reports), **extra}
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "blue_green.yml"), "-e", json.dumps(extra_vars),
                           *options], env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true"), cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def test_blue_green_playbook_swaps_then_rolls_back(emulator, azure, control, ansible_env, tmp_path):
    seed_gallery(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    net = seed(emulator, azure, image={"id": version_id(azure, "1.0.0")})
    reports = tmp_path / "reports"
    since = last_seq(control)

    plan = blue_green(ansible_env, azure, reports, "--check")

    assert plan.returncode == 0, plan.stdout[-6000:] + plan.stderr[-2000:]
    assert ("shop/shop-blue blue/green to live (green shop-green): 2 phase(s), about " in plan.stdout
            and "stage [create_green, green_healthy]; swap [green_join_model, " in plan.stdout), plan.stdout[-4000:]
    assert custom_stats(plan.stdout)["status"] == "planned"
    assert arm_writes(control, since) == [] and not reports.exists()

    swap = blue_green(ansible_env, azure, reports)

    assert swap.returncode == 0, swap.stdout[-6000:] + swap.stderr[-2000:]
    out = swap.stdout
    assert "shop/shop-blue blue/green staged: succeeded; stage -> healthy;" in out
    assert "shop/shop-blue blue/green live: succeeded; swap -> healthy;" in out
    green_ids = instance_ids(azure, "shop-green")
    assert pool_members(azure, net) == {"shop-green": green_ids} and len(green_ids) == 2
    image = scale_set(azure, "shop-green")["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert image["id"].lower() == version_id(azure, "1.1.0").lower()
    outcome = custom_stats(out)
    assert (outcome["strategy"], outcome["status"], outcome["failed"]) == ("blue_green", "succeeded", False), outcome
    assert outcome["autoscale_suspended"] == []
    assert outcome["blue_green"]["traffic_on_green_at"]
    assert (outcome["blue_green"]["green"]["members"], outcome["blue_green"]["blue"]["members"]) == (2, 0)
    report = outcome["report"]
    assert sorted(report) == ["json", "markdown", "svg"], report
    assert all(Path(path).is_file() and Path(path).parent == reports for path in report.values()), report
    assert all(Path(path).name.startswith("blue_green-shop-blue-") for path in report.values()), report
    written = json.loads(Path(report["json"]).read_text())
    assert written["status"] == "succeeded" and [b["kind"] for b in written["batches"]] == ["stage", "swap"]
    # the report's plan adds up both calls' estimates (staged, then live), and green's new image counts as a change
    assert written["model_changed"] is True
    assert written["plan"]["estimated_seconds"] > 90 + 30 + 120      # at least create, join and upgrade
    markdown = Path(report["markdown"]).read_text()
    assert "Estimated duration: 0.0 s" not in markdown and "| Model changed | yes |" in markdown, markdown

    back = blue_green(ansible_env, azure, reports, rollout_blue_green_state="rolled_back")

    assert back.returncode == 0, back.stdout[-6000:] + back.stderr[-2000:]
    outcome = custom_stats(back.stdout)
    assert (outcome["status"], outcome["failed"]) == ("rolled_back", False), outcome
    assert scale_set(azure, "shop-green") is None
    assert pool_members(azure, net) == {"shop-blue": ["0", "1"]}


def test_blue_green_role_takes_the_secrets_green_needs_and_never_shows_them(emulator, azure, control, ansible_env,
                                                                            tmp_path):
    seed_gallery(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    net = seed(emulator, azure, image={"id": version_id(azure, "1.0.0")}, password="Blue-Pass-0001!")
    reports = tmp_path / "reports"
    since = last_seq(control)

    refused = blue_green(ansible_env, azure, reports)

    assert refused.returncode != 0
    assert "give admin_password for green" in refused.stdout, refused.stdout[-4000:]
    assert arm_writes(control, since) == []

    secret = "Green-Pass-0002!"
    swap = blue_green(ansible_env, azure, reports, "-v", rollout_admin_password=secret,
                      rollout_custom_data="#cloud-config")

    assert swap.returncode == 0, swap.stdout[-6000:] + swap.stderr[-2000:]
    assert secret not in swap.stdout + swap.stderr and "#cloud-config" not in swap.stdout
    assert pool_members(azure, net) == {"shop-green": instance_ids(azure, "shop-green")}
    assert all(secret not in path.read_text() for path in reports.iterdir())
