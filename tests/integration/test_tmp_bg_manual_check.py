# temporary manual checks (deleted after use)
import json, subprocess
from pathlib import Path
import yaml
from conftest import ROOT, arm_writes, last_seq
from test_blue_green import RG, instance_ids, pool_members, scale_set, seed
from test_rollout_role import custom_stats, seed_gallery, version_id, seed as seed_in_place, autoscale_writes
from test_blue_green_role import blue_green


def test_finalize_and_rerun(emulator, azure, control, ansible_env, tmp_path):
    seed_gallery(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    net = seed(emulator, azure, image={"id": version_id(azure, "1.0.0")})
    r = blue_green(ansible_env, azure, tmp_path, rollout_blue_capacity=0)
    assert r.returncode == 0, r.stdout[-5000:]
    assert scale_set(azure, "shop-blue")["sku"]["capacity"] == 0
    r = blue_green(ansible_env, azure, tmp_path, rollout_blue_green_state="finalized")
    assert r.returncode == 0, r.stdout[-5000:]
    assert scale_set(azure, "shop-blue") is None
    print(custom_stats(r.stdout)["status"])
    r = blue_green(ansible_env, azure, tmp_path, rollout_blue_green_state="finalized")
    assert r.returncode == 0, r.stdout[-5000:]
    assert custom_stats(r.stdout)["status"] == "nothing_to_do", r.stdout[-3000:]
    Path("/tmp/bg_fin.txt").write_text(r.stdout)


def test_failed_stage(emulator, azure, control, ansible_env, tmp_path):
    seed_gallery(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    net = seed(emulator, azure, image={"id": version_id(azure, "1.0.0")})
    control.call("POST", "health-rules", {"match": {"image_version": "1.1.0"}, "state": "Unhealthy"})
    r = blue_green(ansible_env, azure, tmp_path / "rep", "-vvv", rollout_health_timeout=20)
    Path("/tmp/bg_fail.txt").write_text(r.stdout)
    assert r.returncode != 0
    o = custom_stats(r.stdout)
    assert o["status"] == "rolled_back" and o["failed"] is True, o
    assert all(Path(p).is_file() for p in o["report"].values())
    assert scale_set(azure, "shop-green") is None
    assert pool_members(azure, net) == {"shop-blue": ["0", "1"]}


def test_twice_in_one_play(emulator, azure, control, ansible_env, tmp_path):
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    seed_in_place(azure, location)
    net = seed(emulator, azure, image={"id": version_id(azure, "1.0.0")})
    since = last_seq(control)
    common = {"rollout_image_version_id": version_id(azure, "1.1.0"), "rollout_health_timeout": 60,
              "rollout_wait_sleep": 0.25, "rollout_report_dir": str(tmp_path)}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "in place", "ansible.builtin.include_role": {"name": "fleetops.vmss.rollout"},
         "vars": dict(common, rollout_resource_group="payments-prod", rollout_scale_set="payments-api", rollout_batch_size=100)},
        {"name": "blue green", "ansible.builtin.include_role": {"name": "fleetops.vmss.rollout"},
         "vars": dict(common, rollout_resource_group=RG, rollout_scale_set="shop-blue", rollout_strategy="blue_green")},
    ]}]
    pb = tmp_path / "twice.yml"
    pb.write_text(yaml.safe_dump(play))
    r = subprocess.run(["ansible-playbook", str(pb)], env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true"),
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    Path("/tmp/bg_twice.txt").write_text(r.stdout)
    assert r.returncode == 0, r.stdout[-5000:]
    toggles, _ = autoscale_writes(control, since)
    assert [e for _s, e, _t in toggles] == [False, True], toggles
    o = custom_stats(r.stdout)
    assert o["strategy"] == "blue_green" and o["status"] == "succeeded" and o["autoscale_suspended"] == [], o
