# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image Builder templates: Azure's rules on the options, what can change in place, bodies, build states."""

from __future__ import annotations

import copy

from ansible_collections.fleetops.vmss.plugins.module_utils import _image_builder as builder

SUB = "00000000-0000-0000-0000-000000000001"
DEF = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.Compute/galleries/golden/images/web" % SUB
IDENTITY = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aib" % SUB


def options(**changes):
    params = {
        "location": "West Europe", "identity": IDENTITY,
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                   "version": "latest"},
        "customize": [{"type": "Shell", "name": "harden", "inline": ["echo hi"]},
                      {"type": "PowerShell", "name": "ps", "inline": ["Write-Host hi"]}],
        "distribute": [{"type": "SharedImage", "run_output_name": "web", "gallery_image_id": DEF + "/versions/1.0.0",
                        "target_regions": [{"name": "West Europe", "replica_count": 1}], "exclude_from_latest": True,
                        "artifact_tags": {"Team": "Ops"}}],
        "build_timeout_in_minutes": 60, "tags": {"stage": "bake"}}
    params.update(changes)
    return builder.desired_template(params)


def as_azure_returns_it(desired):
    """The template as Image Builder returns it: defaults filled in, read-only fields added."""
    body = builder.create_body(desired, desired["location"])
    props = body["properties"]
    props["customize"] = [dict({"runElevated": False, "runAsSystem": False}, **c) if c["type"] == "PowerShell" else c
                          for c in props["customize"]]
    props["source"]["exactVersion"] = "24.04.202605010"
    props.update(vmProfile={"vmSize": "", "osDiskSizeGB": 0}, provisioningState="Succeeded",
                 exactStagingResourceGroup="/subscriptions/%s/resourceGroups/IT_img_web" % SUB,
                 lastRunStatus={"runState": "Succeeded", "runSubState": "Distributing", "message": "",
                                "startTime": "2026-05-01T10:00:00Z", "endTime": "2026-05-01T10:20:00Z"})
    body["identity"]["userAssignedIdentities"][IDENTITY] = {"principalId": "p", "clientId": "c"}
    return dict(body, id="/x/imageTemplates/web", name="web")


def test_the_template_azure_returns_is_what_was_asked():
    desired = options()
    tracker = builder.template_differences(desired, as_azure_returns_it(desired), purge_tags=False)
    assert not tracker, tracker.differences


def test_tags_identity_distribution_and_vm_profile_change_in_place():
    current = as_azure_returns_it(options())
    desired = options(tags={"stage": "prod"}, vm_profile={"vm_size": "Standard_D4s_v5"},
                      distribute=[dict(options()["distribute"][0], target_regions=[{"name": "westeurope"},
                                                                                   {"name": "northeurope"}])])
    tracker = builder.template_differences(desired, current, purge_tags=False)
    assert sorted(tracker.display_paths()) == ["distribute", "tags.stage", "vm_profile.vm_size"]
    assert builder.needs_new_template(tracker) == []
    body = builder.update_body(tracker, desired, current, purge_tags=False)
    assert body["tags"] == {"stage": "prod"}
    assert body["properties"]["vmProfile"] == {"vmSize": "Standard_D4s_v5", "osDiskSizeGB": 0}
    [distributor] = body["properties"]["distribute"]
    assert distributor["targetRegions"] == [{"name": "westeurope"}, {"name": "northeurope"}]
    assert distributor["artifactTags"] == {"Team": "Ops"}  # user keys kept as written


def test_source_customizers_and_timeout_need_a_new_template():
    current = as_azure_returns_it(options())
    customize = copy.deepcopy(options()["customize"])
    customize[0]["inline"] = ["echo changed"]
    desired = options(customize=customize, build_timeout_in_minutes=90,
                      source=dict(options()["source"], sku="server-arm64"))
    tracker = builder.template_differences(desired, current, purge_tags=False)
    assert sorted(builder.needs_new_template(tracker)) == ["build_timeout_in_minutes", "customize", "source.sku"]


def test_a_customizer_removed_is_a_difference():
    current = as_azure_returns_it(options())
    tracker = builder.template_differences(options(customize=options()["customize"][:1]), current, False)
    assert tracker.display_paths() == ["customize"]


def test_every_rule_broken_is_reported():
    desired = builder.desired_template({
        "source": {"type": "SharedImageVersion", "image_version_id": DEF + "/versions/1.0"},
        "customize": [{"type": "Shell", "name": "both", "inline": ["x"], "script_uri": "https://x/s.sh"},
                      {"type": "File", "source_uri": "https://x/f"},
                      {"type": "WindowsRestart", "inline": ["no"]}],
        "distribute": [{"type": "SharedImage", "run_output_name": "web", "gallery_image_id": DEF + "/versions/1.2.3",
                        "versioning": {"scheme": "Latest"}, "target_regions": [{"name": "westeurope", "replica_count": 0}]},
                       {"type": "ManagedImage", "run_output_name": "WEB"},
                       {"type": "VHD", "run_output_name": "bad name!"}],
        "build_timeout_in_minutes": 961})
    errors = builder.template_errors(desired, creating=True)
    assert errors[0] == "To create an image template, set identity."
    text = " ".join(errors)
    for expected in ("source.image_version_id's version '1.0' is not a gallery image version name",
                     "customize[0] (both): a Shell customizer takes exactly one of script_uri or inline.",
                     "customize[1]: a File customizer needs destination.",
                     "customize[2]: inline is not used by a WindowsRestart",
                     "distribute[0]: versioning cannot be set when gallery_image_id names a version.",
                     "distribute[0].target_regions[westeurope].replica_count must be from 1 to 100",
                     "distribute[1]: a ManagedImage distributor needs image_id and location.",
                     "distribute[1].run_output_name 'WEB' is used twice",
                     "distribute[2].run_output_name 'bad name!' must be 1 to 64 letters",
                     "build_timeout_in_minutes must be from 0 (Azure's default, 240) to 960, not 961."):
        assert expected in text, expected


def test_regions_named_anywhere_are_checked():
    desired = options(distribute=[{"type": "ManagedImage", "run_output_name": "m", "image_id": "/i", "location": "East US"},
                                  dict(options()["distribute"][0])])
    assert builder.regions_of(desired) == ["westeurope", "eastus", "westeurope"]
    assert builder.shared_image_targets(desired)[0]["version"] == "1.0.0"


def test_build_states_in_one_line():
    template = as_azure_returns_it(options())
    assert builder.describe_run(template) == "Succeeded at 2026-05-01T10:20:00Z after 20m00s"
    template["properties"]["lastRunStatus"] = {"runState": "Running", "runSubState": "Customizing",
                                               "startTime": "2026-05-01T10:00:00Z"}
    assert builder.describe_run(template) == "Running (Customizing) since 2026-05-01T10:00:00Z"
    assert builder.is_running(template)
    template["properties"]["lastRunStatus"] = {"runState": "Failed", "endTime": "t", "message": "Customizer 'x' failed"}
    assert builder.describe_run(template) == "Failed at t: Customizer 'x' failed"
    del template["properties"]["lastRunStatus"]
    assert builder.describe_run(template) == "never run" and builder.last_run(template) is None


def test_build_timeout_defaults_to_four_hours():
    assert builder.build_timeout_seconds({"properties": {"buildTimeoutInMinutes": 0}}) == 4 * 3600
    assert builder.build_timeout_seconds({"properties": {"buildTimeoutInMinutes": 30}}) == 1800


def test_a_template_that_failed_to_provision_says_why():
    assert builder.provisioning_problem({"properties": {"provisioningState": "Failed", "provisioningError": {
        "provisioningErrorCode": "BadSharedImageDistribute", "message": "not found"}}}) == \
        "BadSharedImageDistribute: not found"
    assert builder.provisioning_problem({"properties": {"provisioningState": "Succeeded"}}) is None


def test_the_zero_end_time_of_a_running_build_is_no_end():
    """Azure reports endTime 0001-01-01T00:00:00Z while a build runs (test_image_builder_cancel.yaml)."""
    template = {"properties": {"lastRunStatus": {
        "startTime": "2023-05-25T07:59:42.169984039Z", "endTime": "0001-01-01T00:00:00Z", "runState": "Running",
        "runSubState": "Queued", "message": ""}}}
    run = builder.last_run(template)
    assert (run["end_time"], run["duration_seconds"]) == (None, None)
    assert builder.is_running(template)
    assert builder.describe_run(template) == "Running (Queued) since 2023-05-25T07:59:42.169984039Z"
    template["properties"]["lastRunStatus"].update(runState="Canceling", message="Canceling image build")
    del template["properties"]["lastRunStatus"]["runSubState"]
    assert builder.last_run(template)["end_time"] is None and builder.is_running(template)
    # Ended: the real end time, and how long it took.
    template["properties"]["lastRunStatus"].update(runState="Succeeded", endTime="2023-05-25T08:20:49Z", message="")
    run = builder.last_run(template)
    assert (run["end_time"], run["duration_seconds"]) == ("2023-05-25T08:20:49Z", 1267)
    assert builder.describe_run(template) == "Succeeded at 2023-05-25T08:20:49Z after 21m07s"
    # An ended state with the zero end time (never seen, but possible): no end time, no duration.
    template["properties"]["lastRunStatus"]["endTime"] = "0001-01-01T00:00:00Z"
    run = builder.last_run(template)
    assert (run["end_time"], run["duration_seconds"]) == (None, None)
    assert builder.describe_run(template) == "Succeeded at ?"


def test_templates_are_returned_with_the_build_status_normalised():
    result = builder.template_result({"id": "/subscriptions/s/resourceGroups/img/providers/"
                                            "Microsoft.VirtualMachineImages/imageTemplates/t", "name": "t",
                                      "properties": {"lastRunStatus": {"startTime": "2026-05-01T10:00:00Z",
                                                                       "endTime": "0001-01-01T00:00:00Z",
                                                                       "runState": "Running"}}})
    assert result["last_run_status"] == {"start_time": "2026-05-01T10:00:00Z", "end_time": None,
                                         "run_state": "Running", "duration_seconds": None}
    assert result["resource_group"] == "img" and builder.template_result(None) is None
