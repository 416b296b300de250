# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rolling_upgrade against the emulator: Azure's OS rolling upgrade of a Uniform scale set in Rolling mode whose
model floats on a gallery image definition, after a newer version is published - completed (and not started
twice), Faulted by an image version the Application Health probe finds unhealthy, and cancelled."""

from __future__ import annotations

import json
import re
import subprocess
import time

from conftest import ROOT, arm_writes, last_seq, put_resource_group

RG = "payments-prod"
CAPACITY = 4


def seed(azure, ansible, location, pause="PT0S", automatic=False, deferral=False):
    """Gallery golden/payments with 1.0.0 and 1.1.0 (excluded from latest); scale set api (Rolling, one instance a
    batch, Application Health) on the image definition, so "latest" floats: 1.0.0; then 1.1.0 is released
    (excludeFromLatest false) - with `automatic` (automatic OS upgrade on, under the set's rolling policy) that
    promotion starts Azure's own OS upgrade (with `deferral`, one that waits for approvals). Returns the base
    options of the module."""
    put_resource_group(azure, RG, location)
    compute = azure.client("compute")
    compute.galleries.begin_create_or_update(RG, "golden", {"location": location}).result()
    compute.gallery_images.begin_create_or_update(RG, "golden", "payments", {
        "location": location, "properties": {"osType": "Linux", "osState": "Generalized",
                                             "identifier": {"publisher": "fleetops", "offer": "payments", "sku": "1"}}}
    ).result()
    definition = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/payments"
                  % (azure.subscription_id, RG))
    source = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/base" % (azure.subscription_id, RG)
    replications = [compute.gallery_image_versions.begin_create_or_update(RG, "golden", "payments", version, {
        "location": location, "properties": {"storageProfile": {"source": {"id": source}}, "publishingProfile": {
            "targetRegions": [{"name": location}], "excludeFromLatest": version != "1.0.0"}}})
        for version in ("1.0.0", "1.1.0")]   # replicated side by side
    for poller in replications:
        poller.result()
    base = {"resource_group": RG, "name": "api", "wait_sleep": 0.05}
    code, created = ansible.module("scale_set", dict(
        base, orchestration_mode="Uniform", platform_fault_domain_count=1, overprovision=False,
        sku={"name": "Standard_D2s_v5", "capacity": CAPACITY}, image=definition,
        os_profile={"computer_name_prefix": "api", "admin_username": "azureuser", "admin_password": "Sup3r-secret-pw!"},
        application_health={"protocol": "http", "port": 80, "request_path": "/ready"},
        upgrade_policy=dict({"mode": "Rolling", "rolling_upgrade_policy": {
            "max_batch_instance_percent": 20, "pause_time_between_batches": pause}},   # 4 x 20 %: one a batch
            **({"automatic_os_upgrade_policy": {"enable_automatic_os_upgrade": True,
                                                "use_rolling_upgrade_policy": True,
                                                "os_rolling_upgrade_deferral": deferral}} if automatic else {}))))
    assert code == 0, created
    compute.gallery_image_versions.begin_update(RG, "golden", "payments", "1.1.0", {
        "properties": {"storageProfile": {"source": {"id": source}},
                       "publishingProfile": {"excludeFromLatest": False}}}).result()
    return base


def image_versions(azure):
    vms = azure.client("compute").virtual_machine_scale_set_vms.list(RG, "api")
    return sorted(vm.storage_profile.image_reference.exact_version for vm in vms)


def test_os_upgrade_completes_and_a_second_start_joins_it(emulator, azure, ansible, control):
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], pause="PT10M")  # 6 s between batches here
    assert image_versions(azure) == ["1.0.0"] * CAPACITY

    code, started = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade", wait=False))
    assert code == 0 and started["changed"] is True
    assert started["running_status"]["code"] == "RollingForward" and started["progress_history"] == []
    # while it rolls forward (pauses of 6 s between four batches), a second start joins it instead
    since = last_seq(control)
    code, joined = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade"))
    assert code == 0, joined["msg"]
    assert joined["changed"] is False and arm_writes(control, since) == []
    assert joined["running_status"]["code"] == "Completed"
    assert joined["running_status"]["start_time"] == started["running_status"]["start_time"]
    assert joined["progress"] == {"successful_instance_count": CAPACITY, "failed_instance_count": 0,
                                  "in_progress_instance_count": 0, "pending_instance_count": 0}
    assert joined["error"] is None and joined["policy"]["max_batch_instance_percent"] == 20
    history = joined["progress_history"]
    assert history[0]["code"] == "RollingForward" and history[-1]["code"] == "Completed"
    done = [sample["successful_instance_count"] for sample in history]
    assert done == sorted(done) and len(set(done)) > 1   # progress seen batch by batch
    assert image_versions(azure) == ["1.1.0"] * CAPACITY


def test_faulted_upgrade_fails_with_azures_code(emulator, azure, ansible, control):
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.add_health_rule(match={"scale_set": "api", "image_version": "1.1.0"}, state="Unhealthy")
    since = last_seq(control)

    code, result = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade"))

    assert code != 0 and result["changed"] is True
    assert result["msg"].startswith(
        "Failed to roll out the OS upgrade of scale set %s/api: "
        "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade: "
        "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value" % RG)
    assert result["running_status"]["code"] == "Faulted"
    assert result["error"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert result["progress"]["failed_instance_count"] == 1   # the first batch (one instance) failed, then it stopped
    assert image_versions(azure) == ["1.0.0"] * (CAPACITY - 1) + ["1.1.0"]
    # the start, and around it the lease taken and released (PATCHes of the tags only)
    lease, start, release = arm_writes(control, since)
    assert start["operation_id"] == "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade"
    assert [set(write["liveRequest"]["body"]) for write in (lease, release)] == [{"tags"}, {"tags"}]


def test_cancel_stops_the_upgrade_in_progress(emulator, azure, ansible, control):
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], pause="PT30M")  # 18 s between batches here
    code, started = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade", wait=False))
    assert code == 0 and started["running_status"]["code"] == "RollingForward"
    since = last_seq(control)

    code, cancelled = ansible.module("rolling_upgrade", dict(base, action="cancel"))

    assert code == 0 and cancelled["changed"] is True
    assert cancelled["running_status"]["code"] == "Cancelled" and cancelled["running_status"]["last_action"] == "Cancel"
    assert cancelled["progress_history"][-1]["code"] == "Cancelled"
    assert [w["operation_id"] for w in arm_writes(control, since)] == ["VirtualMachineScaleSetRollingUpgrades_Cancel"]
    upgraded = image_versions(azure).count("1.1.0")
    assert 1 <= upgraded < CAPACITY   # stopped part way
    since = last_seq(control)
    code, again = ansible.module("rolling_upgrade", dict(base, action="cancel"))   # none rolls forward now
    assert (code, again["changed"], again["running_status"]["code"]) == (0, False, "Cancelled")
    assert arm_writes(control, since) == []


# --- Azure's automatic OS upgrade, started by the promotion: joined or reported, never started again ------------

def os_history(azure):
    return [entry.as_dict()["properties"]
            for entry in azure.client("compute").virtual_machine_scale_sets.get_os_upgrade_history(RG, "api")]


def wait_until(check, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def health_states(azure):
    vms = azure.client("compute").virtual_machine_scale_set_vms.list(RG, "api", expand="instanceView")
    return sorted(vm.instance_view.vm_health.status.code for vm in vms)


def test_a_faulted_automatic_upgrade_is_reported_not_started_again(emulator, azure, ansible, control):
    control.add_health_rule(match={"scale_set": "api", "image_version": "1.1.0"}, state="Unhealthy")
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], automatic=True)
    # promoting 1.1.0 started Azure's own upgrade: its first batch turned Unhealthy, it faulted and restored the OS
    wait_until(lambda: [h["runningStatus"]["code"] for h in os_history(azure)] == ["Faulted"], "the automatic upgrade")
    [platform] = os_history(azure)
    assert platform["startedBy"] == "Platform" and platform["targetImageReference"]["exactVersion"] == "1.1.0"
    wait_until(lambda: image_versions(azure) == ["1.0.0"] * CAPACITY, "the automatic rollback")
    since = last_seq(control)

    code, result = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade"))

    assert code != 0 and result["changed"] is False and arm_writes(control, since) == []
    assert result["decision"] == "already_faulted" and result["started_by"] == "Platform"
    assert result["target_version"] == "1.1.0" and result["moved_instance_count"] == 0
    assert result["error"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert result["msg"].startswith("Failed to roll out the OS upgrade of scale set %s/api: "
                                    "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade: " % RG)
    assert "already ended Faulted; no other upgrade was started" in result["msg"]
    # the bad image was not put back: every instance stays on 1.0.0 and Healthy
    assert image_versions(azure) == ["1.0.0"] * CAPACITY
    wait_until(lambda: health_states(azure) == ["HealthState/healthy"] * CAPACITY, "healthy instances")


def test_the_automatic_upgrade_rolling_forward_is_joined_then_reported_done(emulator, azure, ansible, control):
    base = seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], pause="PT30M", automatic=True)  # 18 s pauses: room for a loaded controller to join
    wait_until(lambda: image_versions(azure).count("1.1.0") >= 1, "the automatic upgrade's first batch")
    since = last_seq(control)

    code, joined = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade"))

    assert code == 0, joined["msg"]
    assert (joined["changed"], joined["decision"], joined["started_by"]) == (False, "join", "Platform")
    assert joined["running_status"]["code"] == "Completed" and arm_writes(control, since) == []
    assert image_versions(azure) == ["1.1.0"] * CAPACITY
    # only what Azure moved after the join: the first batch had moved before the module ran
    assert 1 <= joined["moved_instance_count"] < CAPACITY

    code, again = ansible.module("rolling_upgrade", dict(base, action="start_os_upgrade"))
    assert code == 0 and (again["changed"], again["decision"], again["moved_instance_count"]) == (
        False, "already_completed", 0)
    assert arm_writes(control, since) == [] and [h["startedBy"] for h in os_history(azure)] == ["Platform"]


def run_role(ansible_env, azure, **extra):
    """playbooks/rollout.yml with azure_rolling + start_os_upgrade on api; (CompletedProcess, rollout_outcome)."""
    version = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/payments/"
               "versions/1.1.0" % (azure.subscription_id, RG))
    extra_vars = dict({"rollout_resource_group": RG, "rollout_scale_set": "api", "rollout_strategy": "azure_rolling",
                       "rollout_azure_action": "start_os_upgrade", "rollout_image_version_id": version,
                       "rollout_wait_sleep": 0.2, "rollout_poll_seconds": 5}, **extra)
    completed = subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "rollout.yml"), "-e",
                                json.dumps(extra_vars)], env=dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="true"),
                               cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    match = re.search(r"CUSTOM STATS: \*+\s+RUN: (\{.*\})\s*$", completed.stdout, re.S)
    assert match, completed.stdout[-3000:]
    return completed, json.loads(match.group(1))["rollout_outcome"]


def test_the_role_joins_the_automatic_upgrade_and_counts_only_what_it_moved(
        emulator, azure, ansible, ansible_env, control):
    # 27 s pauses: room for the role's preflight to join on a busy machine (18 s were too few for it at load 20)
    seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], pause="PT45M", automatic=True)
    wait_until(lambda: image_versions(azure).count("1.1.0") >= 1, "the automatic upgrade's first batch")
    since = last_seq(control)

    completed, outcome = run_role(ansible_env, azure)

    assert completed.returncode == 0, completed.stdout[-3000:]
    assert outcome["status"] == "succeeded" and arm_writes(control, since) == []
    assert image_versions(azure) == ["1.1.0"] * CAPACITY
    assert 1 <= outcome["moved_instance_count"] < CAPACITY        # the first batch moved before the role ran
    assert "instance(s) moved by the rolling upgrade" in completed.stdout


def test_the_role_reports_the_faulted_automatic_upgrade_and_demotes(emulator, azure, ansible, ansible_env, control):
    """playbooks/rollout.yml, azure_rolling + start_os_upgrade, run after the promotion's automatic upgrade faulted:
    the role starts nothing, fails with Azure's error and demotes the version."""
    control.add_health_rule(match={"scale_set": "api", "image_version": "1.1.0"}, state="Unhealthy")
    seed(azure, ansible, emulator["FLEETOPS_EMULATOR_LOCATION"], automatic=True)
    wait_until(lambda: [h["runningStatus"]["code"] for h in os_history(azure)] == ["Faulted"], "the automatic upgrade")
    wait_until(lambda: image_versions(azure) == ["1.0.0"] * CAPACITY, "the automatic rollback")
    since = last_seq(control)

    completed, outcome = run_role(ansible_env, azure, rollout_demote_on_failure=True)

    assert outcome["status"] == "failed" and outcome["moved_instance_count"] == 0
    out = completed.stdout
    assert completed.returncode != 0, out[-3000:]
    assert "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade" in out, out[-3000:]
    assert "already ended Faulted; no other upgrade was started" in out
    writes = [w["operation_id"] for w in arm_writes(control, since)]
    assert "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade" not in writes
    assert writes == ["GalleryImageVersions_CreateOrUpdate"] or writes == ["GalleryImageVersions_Update"], writes
    assert image_versions(azure) == ["1.0.0"] * CAPACITY
    demoted = azure.client("compute").gallery_image_versions.get(RG, "golden", "payments", "1.1.0")
    assert demoted.publishing_profile.exclude_from_latest is True
    wait_until(lambda: health_states(azure) == ["HealthState/healthy"] * CAPACITY, "healthy instances")
