# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake role against the emulator: playbooks/bake.yml with the demo's image end to end (and again, changing nothing), a failed build
that leaves no half-published version, and bad input refused before anything is written."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT, arm_writes, last_seq, put_resource_group, require_success

RG = "images-bake"
BAKE = {
    "bake_resource_group": RG, "bake_gallery_name": "golden", "bake_image_name": "payments-api",
    "bake_image_version": "1.7.0", "bake_identifier": {"publisher": "fleetops", "offer": "payments", "sku": "cis"},
    "bake_source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "bake_customize": [{"type": "Shell", "name": "cis-hardening", "inline": ["echo cis"]},
                       {"type": "Shell", "name": "hsm-client", "inline": ["echo hsm"]}],
    "bake_canary_region": "westeurope", "bake_regions": ["northeurope"], "bake_poll_seconds": 3, "bake_wait_sleep": 0.5,
}


def bake_demo_image(ansible_env):
    """playbooks/bake.yml with the demo's payments image (playbooks/demo/payments-image.yml), version 1.0.0."""
    extra = {"bake_image_version": "1.0.0", "bake_customize": [
        {"type": "Shell", "name": "cis-hardening", "inline": ["echo applying the CIS level 1 benchmark"]}]}
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "bake.yml"),
                           "-e", "@%s" % (ROOT / "playbooks" / "demo" / "payments-image.yml"), "-e", json.dumps(extra)],
                          env=ansible_env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)


def replication_looks(out):
    """The replication watch's lines once the canary had completed: [(northeurope's state, its progress)], in order.
    How many looks saw northeurope still Replicating is the machine's (its replication takes 6 s at time scale 0.01,
    and a busy machine looks later); that the watch came after the canary's check and looked until every region had
    Completed is the role's."""
    return re.findall(r"westeurope Completed 100%, northeurope (Replicating|Completed) (\d+)%", out)


def versions(azure):
    return sorted(v.name for v in azure.client("compute").gallery_image_versions.list_by_gallery_image(
        RG, "golden", "payments-api"))


def test_bake_playbook_bakes_region_by_region_then_changes_nothing(emulator, azure, ansible_env):
    put_resource_group(azure, "images-demo", "westeurope")
    first = bake_demo_image(ansible_env)
    require_success(first)
    out = first.stdout
    # progress was printed while the build and the replication ran, then the canary was checked before the rest
    assert "Running (Customizing) since" in out or "Running (Building) since" in out, out[-4000:]
    assert "payments-api 1.0.0 is Completed in westeurope" in out
    looks = replication_looks(out)
    assert looks and looks[-1] == ("Completed", "100"), out[-4000:]
    assert out.index("is Completed in westeurope") < out.index("westeurope Completed 100%, northeurope")
    assert "payments-api 1.0.0 is published in westeurope, northeurope; latest in westeurope is 1.0.0" in out
    versions_api = azure.client("compute").gallery_image_versions
    version = versions_api.get("images-demo", "golden", "payments-api", "1.0.0", expand="ReplicationStatus")
    assert version.properties.publishing_profile.exclude_from_latest is False
    # Azure names the regions by display name, whatever the request spelled (test_gallery_e2e.yaml recording)
    assert sorted(s.region for s in version.properties.replication_status.summary) == ["North Europe", "West Europe"]
    # the identity the role created may write into the gallery's resource group, and nowhere else
    builder = azure.client("msi").user_assigned_identities.get("images-demo", "golden-image-builder")
    assignments = azure.client("authorization").role_assignments.list_for_scope(
        "/subscriptions/%s" % azure.subscription_id, filter="principalId eq '%s'" % builder.principal_id)
    assert [a.scope for a in assignments] == ["/subscriptions/%s/resourceGroups/images-demo" % azure.subscription_id]

    again = bake_demo_image(ansible_env)
    require_success(again)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]


def test_display_names_bake_the_canary_first_and_a_rerun_writes_nothing(emulator, azure, ansible, control):
    """Regions given as display names ("West Europe"), as Azure itself answers them: the canary is matched and
    checked first, and a second run changes and writes nothing."""
    put_resource_group(azure, RG, "westeurope")
    inputs = dict(BAKE, bake_canary_region="West Europe", bake_regions=["North Europe"])
    first = ansible.playbook("bake", inputs)
    require_success(first)
    out = first.stdout
    assert "payments-api 1.7.0 is Completed in West Europe" in out
    looks = replication_looks(out)                                       # results use region keys
    assert looks and looks[-1] == ("Completed", "100"), out[-4000:]
    assert out.index("is Completed in West Europe") < out.index("westeurope Completed 100%, northeurope")
    assert versions(azure) == ["1.7.0"]
    since = last_seq(control)
    again = ansible.playbook("bake", inputs)
    require_success(again)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
    assert arm_writes(control, since) == []


def test_a_failed_build_leaves_no_version_and_says_what_broke(emulator, azure, ansible, control):
    put_resource_group(azure, RG, "westeurope")
    control.call("POST", "build-failures", {"template": "payments-api-1-7-0", "customizer": "hsm-client",
                                            "message": "hsm-client 2.5: TLS handshake with the HSM failed"})
    failed = ansible.playbook("bake", BAKE)
    assert failed.returncode != 0
    out = failed.stdout
    assert "Baking payments-api 1.7.0 failed at" in out
    assert "Customizer 'hsm-client' (Shell, step 2 of 2) failed: hsm-client 2.5: TLS handshake with the HSM failed" in out
    assert "nothing was left published in golden" in out
    assert versions(azure) == []


def test_a_replication_failure_in_the_canary_removes_the_version(emulator, azure, ansible, control):
    put_resource_group(azure, RG, "westeurope")
    control.call("POST", "replication-failures", {"region": "westeurope", "version": "1.7.0", "count": 1,
                                                  "details": "Replica creation failed."})
    failed = ansible.playbook("bake", BAKE)
    assert failed.returncode != 0
    assert "Failed in distributing 1 images out of total 1" in failed.stdout
    assert "nothing was left published in golden" in failed.stdout
    assert versions(azure) == []


def test_bad_input_is_refused_before_anything_is_written(emulator, azure, ansible, control):
    put_resource_group(azure, RG, "westeurope")
    for changes, message in (({"bake_image_version": "1.7"}, "bake_image_version 1.7 is not MAJOR.MINOR.PATCH"),
                             ({"bake_regions": ["northeurpoe"]},
                              "Unknown region in names: northeurpoe (did you mean northeurope?)"),
                             ({"bake_replica_count": 101}, "bake_replica_count must be from 1 to 100"),
                             ({"bake_source": {"type": "SharedImageVersion", "image_version_id":
                                               "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/"
                                               "golden/images/base/versions/1.0.0" % (azure.subscription_id, RG)}},
                              "does not exist or is not a Linux image")):
        since = last_seq(control)
        refused = ansible.playbook("bake", dict(BAKE, **changes))
        assert refused.returncode != 0 and message in refused.stdout, refused.stdout[-3000:]
        assert arm_writes(control, since) == [], message
