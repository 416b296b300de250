# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Least privilege (docs/permissions.md): the bake, rollout and scale playbooks run as a service principal holding
only the custom role of docs/fleetops-operator-role.json, and as one holding only Reader.

As the custom role all three pass, and no request of theirs is refused (a refused read could otherwise pass unseen:
some reads fall back when refused). As Reader each playbook stops at its first write with Azure's
AuthorizationFailed naming the missing action, no traceback, and nothing written.

The principals are made through the emulator's control API (``principals``, which takes a role as a list of allowed
actions); the playbooks get their credentials through AZURE_CLIENT_ID / AZURE_SECRET, the way AWX injects them.
What the playbooks work on (resource groups, the scale set, an autoscale setting) is seeded as the Owner."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT, last_seq, put_resource_group, uniform_scale_set

GALLERY_RG = "images-prod"
RG = "payments-prod"
NAME = "payments-api"
AUTOSCALE = "payments-api-autoscale"
ROLE = json.loads((ROOT / "docs" / "fleetops-operator-role.json").read_text())
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def principal(control, name, role):
    """A new service principal holding ``role``; the environment that makes the modules act as it."""
    created = control.call("POST", "principals", {"name": name, "role": role})
    return {"AZURE_CLIENT_ID": created["client_id"], "AZURE_SECRET": created["secret"],
            "AZURE_CLIENT_SECRET": created["secret"]}


def operator_role_actions():
    # The emulator takes allowed actions only: the role must not rely on NotActions to mean what it says.
    assert ROLE["NotActions"] == [] and ROLE["DataActions"] == []
    return ROLE["Actions"]


def playbook(ansible_env, credentials, name, extra_vars):
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / ("%s.yml" % name)), "-e",
                           json.dumps(extra_vars)], env=dict(ansible_env, **credentials), cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def passed(run):
    assert run.returncode == 0, "ansible-playbook failed (rc %s):\n%s\n%s" % (
        run.returncode, run.stdout[-6000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr
    return run.stdout


def version_id(azure, version):
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/payments-api/"
            "versions/%s" % (azure.subscription_id, GALLERY_RG, version))


def bake_vars(location):
    return {"bake_resource_group": GALLERY_RG, "bake_gallery_name": "golden", "bake_image_name": "payments-api",
            "bake_image_version": "1.0.0", "bake_identifier": {"publisher": "fleetops", "offer": "payments",
                                                               "sku": "cis"},
            "bake_source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                            "sku": "server"},
            "bake_customize": [{"type": "Shell", "name": "cis-hardening", "inline": ["echo cis"]}],
            "bake_canary_region": location, "bake_promote": True, "bake_poll_seconds": 60, "bake_wait_sleep": 0.5}


def rollout_vars(azure, reports):
    return {"rollout_resource_group": RG, "rollout_scale_set": NAME,
            "rollout_image_version_id": version_id(azure, "1.0.0"), "rollout_batch_size": 50,
            "rollout_health_timeout": 30, "rollout_wait_sleep": 0.2, "rollout_report_dir": str(reports)}


SCALE_VARS = {"scale_resource_group": RG, "scale_scale_set": NAME, "scale_protect_instances": ["0"],
              "scale_wait_sleep": 0.5}


def seed(azure, location):
    """As the Owner: the resource groups, a Uniform set of 3 on Ubuntu with the Application Health extension, and an
    enabled autoscale setting on it (which the rollout suspends, and the scale playbook then rewrites)."""
    put_resource_group(azure, GALLERY_RG, location)
    put_resource_group(azure, RG, location)
    ubuntu = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
    scale_set = azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(
        RG, NAME, uniform_scale_set(location, ubuntu, 3)).result()
    azure.client("monitor").autoscale_settings.create_or_update(RG, AUTOSCALE, {
        "location": location, "enabled": True, "target_resource_uri": scale_set.id,
        "profiles": [{"name": "default", "capacity": {"minimum": "3", "maximum": "6", "default": "3"}, "rules": []}]})


def requests_of(control, name, since):
    """(method, url, status) of every ARM request the principal called ``name`` made after ``since``."""
    return [(entry["liveRequest"]["method"], entry["liveRequest"]["url"], entry["liveResponse"]["statusCode"])
            for entry in control.traffic(since) if entry.get("principal") == name]


def test_bake_rollout_and_scale_pass_as_the_operator_role(emulator, azure, control, ansible_env, tmp_path):
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    operator = principal(control, "fleetops-operator", operator_role_actions())
    seed(azure, location)
    since = last_seq(control)

    out = passed(playbook(ansible_env, operator, "bake", bake_vars(location)))
    assert "payments-api 1.0.0 is published in %s" % location in out, out[-3000:]
    out = passed(playbook(ansible_env, operator, "rollout", rollout_vars(azure, tmp_path / "reports")))
    assert "is suspended for the rollout" in out, out[-3000:]
    out = passed(playbook(ansible_env, operator, "scale", SCALE_VARS))
    assert "protected from scale-in: 0" in out, out[-3000:]

    requests = requests_of(control, "fleetops-operator", since)
    assert [request for request in requests if request[2] in ("401", "403")] == []
    assert {method for method, _url, _status in requests} >= {"PUT", "PATCH", "POST"}  # the work was done as it
    compute = azure.client("compute")
    assert sorted((vm.storage_profile.image_reference.id, vm.latest_model_applied)
                  for vm in compute.virtual_machine_scale_set_vms.list(RG, NAME)) == [
        (version_id(azure, "1.0.0"), True)] * 3
    setting = azure.client("monitor").autoscale_settings.get(RG, AUTOSCALE)
    assert setting.enabled is True and setting.profiles[0].capacity.maximum == "30"  # the scale role's default


def final_error(out):
    """The message the play ended with: that of the last failed task (what AWX shows as the job's failure)."""
    failures = re.findall(r"^(?:fatal|failed): \[localhost\].*? => (\{.*\})$", out, re.M)
    assert failures, out[-3000:]
    return json.loads(failures[-1])["msg"]


def refused_at_first_write(control, run, since, action):
    """The run ended with Azure's 403 naming ``action``, no traceback, and wrote nothing: its only write is the
    refused one."""
    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr, run.stdout[-4000:] + run.stderr
    message = final_error(run.stdout)
    assert "AuthorizationFailed" in message and "'%s'" % action in message, message
    writes = [request for request in requests_of(control, "fleetops-reader-only", since) if request[0] in WRITES]
    assert [status for _method, _url, status in writes] == ["403"], writes


def test_as_reader_each_playbook_stops_at_its_first_write_naming_the_action(emulator, azure, control, ansible_env,
                                                                            tmp_path):
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    reader = principal(control, "fleetops-reader-only", "Reader")
    seed(azure, location)

    since = last_seq(control)
    run = playbook(ansible_env, reader, "bake", bake_vars(location))
    refused_at_first_write(control, run, since, "Microsoft.Compute/galleries/write")

    since = last_seq(control)
    run = playbook(ansible_env, reader, "scale", SCALE_VARS)
    refused_at_first_write(control, run, since, "Microsoft.Insights/autoscalesettings/write")

    since = last_seq(control)  # a new VM size: a rollout that needs no gallery image
    run = playbook(ansible_env, reader, "rollout", dict(rollout_vars(azure, tmp_path / "reports"),
                                                        rollout_image_version_id="",
                                                        rollout_model={"sku": {"name": "Standard_D4s_v3"}}))
    refused_at_first_write(control, run, since, "Microsoft.Insights/autoscalesettings/write")
