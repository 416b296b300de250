# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure Compute Gallery rules: version names, replica limits, what may change, bodies, replication, "latest"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils._compare import compare

SUB = "00000000-0000-0000-0000-000000000001"
DEF = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.Compute/galleries/golden/images/web" % SUB


def version(name, regions=(("westeurope", "Completed"),), exclude=False, region_exclude=(), state="Succeeded",
            storage="Standard_LRS"):
    return {"id": "%s/versions/%s" % (DEF, name), "name": name, "location": "westeurope", "tags": {"team": "ops"},
            "properties": {"provisioningState": state,
                           "storageProfile": {"source": {"id": "/subscriptions/%s/resourceGroups/img/providers/"
                                                               "Microsoft.Compute/images/base" % SUB}},
                           "publishingProfile": {
                               "replicaCount": 1, "excludeFromLatest": exclude, "storageAccountType": storage,
                               "replicationMode": "Full",
                               "targetRegions": [{"name": "West Europe" if region == "westeurope" else region,
                                                  "regionalReplicaCount": 1, "storageAccountType": storage,
                                                  "excludeFromLatest": region in region_exclude,
                                                  "encryption": {"osDiskImage": {"diskEncryptionSetId": "des"}}}
                                                 for region, _state in regions]},
                           "replicationStatus": {"aggregatedState": "Completed", "summary": [
                               {"region": region, "state": status, "progress": 100 if status == "Completed" else 40,
                                "details": "boom" if status == "Failed" else ""} for region, status in regions]}}}


@pytest.mark.parametrize("name, parsed", [("1.0.0", (1, 0, 0)), ("2026.3.17", (2026, 3, 17)), ("0.0.0", (0, 0, 0)),
                                          ("1.0", None), ("1.0.0.0", None), ("v1.0.0", None), ("1.0.x", None),
                                          ("", None), (None, None), ("2147483648.0.0", None), ("01.2.3", (1, 2, 3))])
def test_version_names(name, parsed):
    assert gallery.parse_version(name) == parsed


@given(st.integers(0, 2147483647), st.integers(0, 2147483647), st.integers(0, 2147483647))
def test_every_int32_triple_is_a_version(major, minor, patch):
    assert gallery.parse_version("%d.%d.%d" % (major, minor, patch)) == (major, minor, patch)


def test_input_errors_are_all_reported_at_once():
    desired = gallery.desired_version({"replica_count": 0, "target_regions": [
        {"name": "West Europe", "regional_replica_count": 101}, {"name": "westeurope"}],
        "source": {"uri": "https://a.blob.core.windows.net/vhds/os.vhd"}, "end_of_life_date": "next year"})
    errors = gallery.version_errors("1.0", desired)
    assert any("'1.0' is not a gallery image version name" in error for error in errors)
    assert "replica_count must be from 1 to 100 (Azure's limit is 100 replicas), not 0." in errors
    assert "target_regions[westeurope].regional_replica_count must be from 1 to 100 (Azure's limit is 100 replicas), not 101." in errors
    assert "target_regions lists westeurope more than once." in errors
    assert any("source.uri (a VHD) needs source.storage_account_id" in error for error in errors)
    assert any("end_of_life_date 'next year'" in error for error in errors)


def test_a_source_id_must_name_a_kind_of_source():
    errors = gallery.version_errors("1.0.0", {"source": {"id": "/subscriptions/x/resourceGroups/y/providers/"
                                                               "Microsoft.Network/virtualNetworks/v"}})
    assert errors and "is not the id of a managed image" in errors[0]


@pytest.mark.parametrize("source, profile", [
    ({"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/base"},
     {"source": {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/base"}}),
    ({"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm"},
     {"source": {"virtualMachineId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm"}}),
    ({"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/snapshots/snap"},
     {"osDiskImage": {"source": {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/snapshots/snap"}}}),
    ({"id": DEF + "/versions/1.0.0"}, {"source": {"id": DEF + "/versions/1.0.0"}}),
    ({"uri": "https://a.blob.core.windows.net/v/os.vhd", "storage_account_id": "/sa"},
     {"osDiskImage": {"source": {"uri": "https://a.blob.core.windows.net/v/os.vhd", "storageAccountId": "/sa"}}}),
])
def test_each_kind_of_source_goes_where_the_contract_wants_it(source, profile):
    assert gallery.storage_profile(source) == profile
    assert gallery.source_option(profile)["id" if "id" in source else "uri"] == source.get("id", source.get("uri"))


def test_same_version_in_other_spellings_is_no_difference():
    desired = gallery.desired_version({"target_regions": [{"name": "West Europe", "regional_replica_count": 1,
                                                           "storage_account_type": "standard_lrs"}],
                                       "exclude_from_latest": False, "replication_mode": "full",
                                       "source": {"id": "/SUBSCRIPTIONS/%s/resourceGroups/IMG/providers/"
                                                        "Microsoft.Compute/images/BASE/" % SUB},
                                       "tags": {"team": "ops"}})
    tracker = gallery.version_differences(desired, version("1.0.0"), purge_target_regions=False, purge_tags=False)
    assert not tracker, tracker.differences


def test_a_region_added_later_is_the_only_difference_and_the_patch_keeps_the_others_as_they_are():
    current = version("1.0.0")
    desired = gallery.desired_version({"target_regions": [{"name": "northeurope", "regional_replica_count": 2}]})
    tracker = gallery.version_differences(desired, current, False, False)
    assert tracker.display_paths() == ["target_regions[northeurope]"]
    body = gallery.version_update_body(tracker, desired, current, False, False)
    regions = body["properties"]["publishingProfile"]["targetRegions"]
    assert regions[0] == current["properties"]["publishingProfile"]["targetRegions"][0]  # encryption and all
    assert regions[1] == {"name": "northeurope", "regionalReplicaCount": 2}
    assert body["properties"]["storageProfile"] == {}
    assert "tags" not in body


def test_purge_removes_the_regions_not_listed():
    current = version("1.0.0", regions=(("westeurope", "Completed"), ("northeurope", "Completed")))
    desired = gallery.desired_version({"target_regions": [{"name": "westeurope"}]})
    tracker = gallery.version_differences(desired, current, True, False)
    assert tracker.display_paths() == ["target_regions[northeurope]"]
    body = gallery.version_update_body(tracker, desired, current, True, False)
    assert [r["name"] for r in body["properties"]["publishingProfile"]["targetRegions"]] == ["West Europe"]


def test_demote_sends_only_the_flag_and_the_regions_unchanged():
    current = version("1.7.0", regions=(("westeurope", "Completed"), ("northeurope", "Completed")))
    desired = gallery.desired_version({"exclude_from_latest": True})
    tracker = gallery.version_differences(desired, current, False, False)
    assert tracker.differences == [(("exclude_from_latest",), False, True)]
    profile = gallery.version_update_body(tracker, desired, current, False, False)["properties"]["publishingProfile"]
    assert profile["excludeFromLatest"] is True
    assert profile["targetRegions"] == current["properties"]["publishingProfile"]["targetRegions"]


def test_a_failed_region_is_retried():
    current = version("1.0.0", regions=(("westeurope", "Completed"), ("northeurope", "Failed")))
    tracker = gallery.version_differences({}, current, False, False)
    assert tracker.display_paths() == ["target_regions[northeurope].replication"]
    assert gallery.failed_regions(current) == ["northeurope"]
    assert "northeurope Failed (40%): boom" in gallery.describe_replication(current)


def test_what_azure_does_not_let_change_is_refused_before_any_request():
    current = version("1.0.0")
    desired = gallery.desired_version({"storage_account_type": "Premium_LRS", "replication_mode": "Shallow",
                                       "source": {"id": DEF + "/versions/0.9.0"},
                                       "target_regions": [{"name": "westeurope", "storage_account_type": "Standard_ZRS"},
                                                          {"name": "eastus", "storage_account_type": "Premium_LRS"}]})
    tracker = gallery.version_differences(desired, current, False, False)
    errors = gallery.version_immutable_errors(tracker, current, "v")
    assert len(errors) == 4
    assert any(error.startswith("storage_account_type cannot be changed (Standard_LRS -> Premium_LRS)") for error in errors)
    assert any(error.startswith("target_regions[westeurope].storage_account_type cannot be changed once the region "
                                "is replicated") for error in errors)
    assert not any("eastus" in error for error in errors)  # a new region may have its own storage type


def test_the_gallery_region_must_be_a_target_of_a_new_version():
    assert gallery.missing_home_region({"target_regions": [{"name": "northeurope"}]}, "West Europe").startswith(
        "target_regions must include westeurope")
    assert gallery.missing_home_region({"target_regions": [{"name": "westeurope"}]}, "West Europe") is None
    assert gallery.missing_home_region({}, "westeurope") is None


def test_latest_is_the_highest_number_not_excluded_and_replicated_there():
    versions = [version("1.6.2", regions=(("westeurope", "Completed"), ("northeurope", "Completed"))),
                version("1.10.0", regions=(("westeurope", "Completed"), ("northeurope", "Replicating"))),
                version("1.7.0", regions=(("westeurope", "Completed"),), exclude=True),
                version("1.9.0", regions=(("westeurope", "Completed"), ("northeurope", "Completed")),
                        region_exclude=("northeurope",))]
    assert gallery.latest_for_region(versions, "West Europe")["name"] == "1.10.0"  # 1.10 > 1.9 > 1.7: numbers, not text
    assert gallery.latest_for_region(versions, "northeurope")["name"] == "1.6.2"
    assert gallery.latest_for_region(versions, "eastus") is None
    assert [v["name"] for v in gallery.sort_versions(versions)] == ["1.6.2", "1.7.0", "1.9.0", "1.10.0"]


def test_replication_settles_only_when_no_region_replicates():
    assert gallery.replication_settled(version("1.0.0"))
    assert not gallery.replication_settled(version("1.0.0", regions=(("westeurope", "Replicating"),)))
    assert not gallery.replication_settled(version("1.0.0", state="Updating"))
    assert not gallery.replication_settled({"properties": {}})


def test_image_definition_immutables_and_feature_update():
    current = {"location": "westeurope", "tags": {}, "properties": {
        "osType": "Linux", "osState": "Generalized", "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
        "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"},
                     {"name": "IsAcceleratedNetworkSupported", "value": "True"}]}}
    desired = gallery.desired_image({"os_type": "Windows", "hyper_v_generation": "V2", "identifier": {"publisher": "P"},
                                     "features": [{"name": "securitytype", "value": "TrustedLaunch"}],
                                     "description": "d"})
    tracker = compare(desired, gallery.image_options(current), gallery.image_rules(False))
    errors = gallery.immutable_errors(tracker, gallery.IMAGE_IMMUTABLE, "image", "no")
    assert [error.split(" cannot")[0] for error in errors] == ["os_type", "hyper_v_generation"]  # V1 is Azure's default
    body = gallery.image_update_body(tracker, desired, current, False)
    assert body["properties"]["allowUpdateImage"] is True
    assert body["properties"]["features"] == [{"name": "SecurityType", "value": "TrustedLaunch"},
                                              {"name": "IsAcceleratedNetworkSupported", "value": "True"}]
    assert body["properties"]["identifier"] == current["properties"]["identifier"]  # required by the contract
    assert body["properties"]["description"] == "d"


def test_creating_a_definition_needs_its_identity():
    errors = gallery.image_errors({"identifier": {"publisher": "p"}}, creating=True)
    assert errors == ["To create an image definition, set os_type, os_state, identifier.offer, identifier.sku."]
    assert gallery.image_errors({}, creating=False) == []


@pytest.mark.parametrize("resource_id, parts", [
    (DEF + "/versions/1.0.0", {"subscription": SUB, "resource_group": "img", "gallery": "golden", "image": "web",
                               "version": "1.0.0"}),
    (DEF, {"subscription": SUB, "resource_group": "img", "gallery": "golden", "image": "web", "version": None}),
    (DEF + "/versions", None),
    ("/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/base", None),
    ("not an id", None),
])
def test_gallery_image_ids(resource_id, parts):
    assert gallery.split_version_id(resource_id) == parts


def test_results_name_regions_by_region_key_whatever_azure_answers():
    """Azure answers display names ("East US 2") for target regions and replication; results use region keys."""
    current = version("1.0.0", regions=(("westeurope", "Completed"), ("East US 2", "Replicating")))
    current["properties"]["replicationStatus"]["summary"][0]["region"] = "West Europe"
    out = gallery.with_region_keys(current)
    assert [r["name"] for r in out["properties"]["publishingProfile"]["targetRegions"]] == ["westeurope", "eastus2"]
    assert [e["region"] for e in out["properties"]["replicationStatus"]["summary"]] == ["westeurope", "eastus2"]
    assert current["properties"]["publishingProfile"]["targetRegions"][0]["name"] == "West Europe"  # not changed
    assert gallery.with_region_keys(None) is None


def test_display_names_from_azure_are_no_difference_and_no_region_is_new():
    """A re-run with the user's spelling against Azure's display names: nothing to write, no region re-sent."""
    current = version("1.0.0", regions=(("westeurope", "Completed"), ("East US 2", "Completed")))
    for spelling in ("eastus2", "East US 2", "EASTUS2"):
        desired = gallery.desired_version({"target_regions": [{"name": "westeurope"}, {"name": spelling}]})
        tracker = gallery.version_differences(desired, current, purge_target_regions=True, purge_tags=False)
        assert not tracker, tracker.differences
    desired = gallery.desired_version({"target_regions": [{"name": "eastus2", "regional_replica_count": 3}]})
    tracker = gallery.version_differences(desired, current, purge_target_regions=False, purge_tags=False)
    assert tracker.display_paths() == ["target_regions[eastus2].regional_replica_count"]
    body = gallery.version_update_body(tracker, desired, current, False, False)
    regions = body["properties"]["publishingProfile"]["targetRegions"]
    assert [(r["name"], r["regionalReplicaCount"]) for r in regions] == [("West Europe", 1), ("East US 2", 3)]
