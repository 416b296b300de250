# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/app_update.yml: the application updated inside the instances (local connection: the emulator's
instances are not machines), in batches planned by the rollout's planner, each protected from scale-in while
it runs and gated on Application Health; a bad version breaks its instances' health and halts the run."""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from conftest import ROOT, put_resource_group, seed_network, uniform_scale_set

RG, NAME = "app-prod", "api"
UPDATE_TASKS = """
- name: Read this instance's protection while it is updated
  fleetops.vmss.scale_set_instance_info:
    resource_group: "{{ resource_group }}"
    name: "{{ scale_set }}"
  register: me
- name: Install the application
  when: app_version != 'broken' or instance_id != '1'
  ansible.builtin.copy:
    dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
    mode: "0644"
    content: >-
      {{ {'version': app_version,
          'protection': (me.instances | selectattr('instance_id', 'equalto', instance_id) | first).protection} | to_json }}
- name: A broken package fails to install on instance 1
  ansible.builtin.fail:
    msg: "dpkg: error processing package payments-api"
  when: app_version == 'broken' and instance_id == '1'
- name: A bad version breaks the application (its health probe answers Unhealthy)
  ansible.builtin.uri:
    url: "{{ lookup('env', 'FLEETOPS_EMULATOR_CONTROL_URL') }}/health-rules"
    method: POST
    headers:
      Authorization: "Bearer {{ lookup('env', 'FLEETOPS_EMULATOR_ADMIN_TOKEN') }}"
    body_format: json
    body: {match: {scale_set: "{{ scale_set }}", instance_ids: ["{{ instance_id }}"]}, state: Unhealthy}
    ca_path: "{{ lookup('env', 'REQUESTS_CA_BUNDLE') }}"
    status_code: [200, 201]
  when: app_version == 'bad'
"""


def seed(azure, location, capacity=4):
    put_resource_group(azure, RG, location)
    body = uniform_scale_set(location, {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                        "version": "24.04.202501010"}, capacity)
    ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ipc["properties"]["ipConfigurations"][0]["properties"]["subnet"] = {"id": seed_network(azure, RG, location)["subnet_id"]}
    compute = azure.client("compute")
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, NAME, body).result()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:   # every instance Healthy (the grace period is scaled: a fraction of a second)
        states = [vm.instance_view.vm_health.status.code if vm.instance_view and vm.instance_view.vm_health else None
                  for vm in compute.virtual_machine_scale_set_vms.list(RG, NAME, expand="instanceView")]
        if all(state == "HealthState/healthy" for state in states):
            return
        time.sleep(0.2)
    raise AssertionError("instances not Healthy: %s" % states)


def run(ansible_env, tmp_path, version, **extra):
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "update.yml").write_text(UPDATE_TASKS)
    inventory = tmp_path / "fleet.vmss.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "fleetops.vmss.instances", "hostname": "name",
                                         "scale_sets": [{"resource_group": RG, "name": NAME}],
                                         "compose": {"ansible_connection": "'local'"}}))
    extra_vars = dict({"app_update_resource_group": RG, "app_update_scale_set": NAME,
                       "app_update_tasks": str(tmp_path / "update.yml"), "app_update_batch_by": "count",
                       "app_update_batch_size": 2, "app_update_health_timeout": 20, "app_update_wait_sleep": 0.2,
                       "app_version": version, "out_dir": str(tmp_path / "out")}, **extra)
    env = dict(ansible_env, ANSIBLE_INVENTORY_ENABLED="auto", ANSIBLE_SHOW_CUSTOM_STATS="true")
    return subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / "app_update.yml"),
                           "-e", json.dumps(extra_vars)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False)


def installed(tmp_path):
    return {path.stem: json.loads(path.read_text()) for path in (tmp_path / "out").glob("*.json")}


def protection(azure):
    return {vm.instance_id: bool(vm.protection_policy and vm.protection_policy.protect_from_scale_in)
            for vm in azure.client("compute").virtual_machine_scale_set_vms.list(RG, NAME)}


def test_clean_update_in_batches_protected_while_updated(emulator, azure, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    # an instance the operator protected stays protected after the update
    azure.client("compute").virtual_machine_scale_set_vms.begin_update(
        RG, NAME, "3", {"location": emulator["FLEETOPS_EMULATOR_LOCATION"],
                        "properties": {"protectionPolicy": {"protectFromScaleIn": True}}}).result()

    completed = run(ansible_env, tmp_path, "1.2.0")
    out = completed.stdout
    assert completed.returncode == 0, out[-4000:] + completed.stderr[-2000:]

    assert sorted(installed(tmp_path)) == ["api_0", "api_1", "api_2", "api_3"]
    assert all(item["version"] == "1.2.0" and item["protection"]["protect_from_scale_in"]
               for item in installed(tmp_path).values())                 # protected while it was updated
    assert protection(azure) == {"0": False, "1": False, "2": False, "3": True}
    assert "batch 1 of 2: api_0, api_1 -> passed" in out
    assert "batch 2 of 2: api_2, api_3 -> passed" in out
    assert '"status": "completed"' in out


def test_breach_halts_before_the_next_batch(emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])

    completed = run(ansible_env, tmp_path, "bad")
    out = completed.stdout
    assert completed.returncode != 0, out[-4000:]

    assert sorted(installed(tmp_path)) == ["api_0", "api_1"]              # batch 2 never started
    assert "In-guest update of %s/%s halted after batch 1 of 2: 2 of 2 upgraded instances (100%%) are unhealthy" % (
        RG, NAME) in out
    assert protection(azure) == {"0": False, "1": False, "2": False, "3": False}   # restored as it was
    assert '"status": "halted"' in out


def test_failed_update_tasks_halt_without_judging_health(emulator, azure, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])

    completed = run(ansible_env, tmp_path, "broken")
    out = completed.stdout
    assert completed.returncode != 0, out[-4000:]

    assert sorted(installed(tmp_path)) == ["api_0"]                        # the rest of the batch finished
    assert ("In-guest update of %s/%s halted after batch 1 of 2: the update tasks failed on api_1: "
            "dpkg: error processing package payments-api" % (RG, NAME)) in out
    assert "\"code\": \"UpdateTasksFailed\"" in out and protection(azure) == {str(i): False for i in range(4)}
