# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale and bake roles driven as AWX drives them: every boolean and number arrives as a string (a survey's
"true"/"false"/"20", or `-e name=value`), and ansible-core 2.19 refuses a string as a conditional. The bake run
also publishes its artifact (the version id, its regions and their replication state) and passes the template's
per-region settings."""

from __future__ import annotations

import json
import subprocess

from conftest import ROOT, put_resource_group, require_success
from test_autoscale import RG, capacity, seed_scale_set


def playbook(ansible_env, cwd, name, json_vars, strings):
    """playbooks/<name>.yml with json_vars as one JSON -e and every entry of strings as its own `-e key=value`
    (what a survey answer or a command line passes: always a string)."""
    command = ["ansible-playbook", str(ROOT / "playbooks" / ("%s.yml" % name)), "-e", json.dumps(json_vars)]
    for key, value in strings.items():
        command += ["-e", "%s=%s" % (key, value)]
    return subprocess.run(command, env=ansible_env, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)


def test_the_scale_role_takes_survey_strings(emulator, azure, ansible_env, tmp_path):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    seed_scale_set(azure, "api", 3)
    target = {"scale_resource_group": RG, "scale_scale_set": "api"}

    manual = playbook(ansible_env, tmp_path, "scale", target, {
        "scale_autoscale": "false", "scale_manual_capacity": "4", "scale_refuse_capacity_under_autoscale": "true",
        "scale_wait_sleep": "0.2", "scale_wait_timeout": "300"})
    require_success(manual)
    assert capacity(azure, "api") == 4
    assert list(azure.client("monitor").autoscale_settings.list_by_resource_group(RG)) == []   # "false" is false

    disabled = playbook(ansible_env, tmp_path, "scale", target, {
        "scale_autoscale": "true", "scale_autoscale_enabled": "False",
        "scale_protect_from_scale_set_actions": "no", "scale_wait_sleep": "0.2"})
    require_success(disabled)
    settings = list(azure.client("monitor").autoscale_settings.list_by_resource_group(RG))
    assert [(s.name, s.enabled) for s in settings] == [("api-autoscale", False)]
    assert capacity(azure, "api") == 4
    assert "WARNING" not in disabled.stdout   # a disabled setting overrides nothing


def test_the_bake_role_takes_survey_strings_and_publishes_its_artifact(emulator, azure, ansible_env, tmp_path):
    rg = "images-survey"
    put_resource_group(azure, rg, "westeurope")
    inputs = {
        "bake_resource_group": rg, "bake_gallery_name": "golden", "bake_image_name": "payments-api",
        "bake_identifier": {"publisher": "fleetops", "offer": "payments", "sku": "cis"},
        "bake_source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
        "bake_customize": [{"type": "Shell", "name": "cis-hardening", "inline": ["echo cis"]}],
        "bake_canary_region": "westeurope", "bake_regions": ["northeurope", "swedencentral"],
        "bake_region_replica_counts": {"westeurope": "3", "northeurope": 2},
        "bake_artifact_tags": {"baked-by": "awx"}, "bake_run_output_name": "payments-api-1-7-0",
    }
    strings = {"bake_image_version": "1.7.0", "bake_promote": "true", "bake_keep_template": "false",
               "bake_replica_count": "1", "bake_os_disk_size_gb": "64", "bake_build_timeout_in_minutes": "60",
               "bake_poll_seconds": "3", "bake_wait_sleep": "0.5", "bake_replication_timeout_seconds": "600"}
    baked = playbook(ansible_env, tmp_path, "bake", inputs, strings)
    require_success(baked)

    version_id = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/"
                  "payments-api/versions/1.7.0" % (azure.subscription_id, rg))
    version = azure.client("compute").gallery_image_versions.get(rg, "golden", "payments-api", "1.7.0")
    replicas = {r.name: r.regional_replica_count for r in version.properties.publishing_profile.target_regions}
    assert replicas == {"West Europe": 3, "North Europe": 2, "Sweden Central": 1}
    assert version.properties.publishing_profile.exclude_from_latest is False   # "true" promoted it
    assert version.tags == {"baked-by": "awx"}   # Image Builder puts artifactTags on the version
    templates = list(azure.client("imagebuilder").virtual_machine_image_templates.list_by_resource_group(rg))
    assert templates == []   # "false" did not keep it

    # The artifact: as a fact in the play's output (debug) and as set_stats data for the next workflow node.
    artifact = json.loads(baked.stdout[baked.stdout.index("{", baked.stdout.index("TASK [fleetops.vmss.bake : Show the artifact")):]
                          .split("\n}\n")[0] + "\n}")["bake_artifact"]
    assert artifact["image_version_id"].lower() == version_id.lower()
    assert artifact["regions"] == ["westeurope", "northeurope", "swedencentral"]
    assert artifact["replication"] == {"westeurope": "Completed", "northeurope": "Completed",
                                       "swedencentral": "Completed"}
    assert artifact["replicated"] is True and artifact["excluded_from_latest"] is False
    assert artifact["latest_in_canary_region"] == "1.7.0"
