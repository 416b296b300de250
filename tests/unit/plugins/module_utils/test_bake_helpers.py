# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small helpers of the bake modules: REST names, tags, dates, ids, region names, role assignments."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _rbac as rbac
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import (
    KNOWN_REGIONS, region_key, unknown_message, unknown_regions)
from ansible_collections.fleetops.vmss.plugins.module_utils._ids import parse_id, resource_type
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import camel, iso_datetime, tags_to_send, to_camel


@pytest.mark.parametrize("name, rest", [("os_disk_size_gb", "osDiskSizeGB"), ("hyper_v_generation", "hyperVGeneration"),
                                        ("build_timeout_in_minutes", "buildTimeoutInMinutes"), ("os_type", "osType"),
                                        ("sha256_checksum", "sha256Checksum"), ("regional_replica_count",
                                                                                "regionalReplicaCount")])
def test_rest_names(name, rest):
    assert to_camel(name) == rest


def test_user_maps_keep_their_keys():
    assert camel({"artifact_tags": {"cost_center": "1"}, "tags": {"my_tag": "x"}, "vm_profile": {"vm_size": "s"}}) == \
        {"artifactTags": {"cost_center": "1"}, "tags": {"my_tag": "x"}, "vmProfile": {"vmSize": "s"}}


def test_tags_sent_in_a_patch():
    assert tags_to_send({"a": "2"}, {"a": "1", "b": "1"}, purge=False) == {"a": "2", "b": "1"}
    assert tags_to_send({"a": "2"}, {"a": "1", "b": "1"}, purge=True) == {"a": "2"}
    assert tags_to_send(None, {"a": "1"}, purge=True) is None


@pytest.mark.parametrize("given, canonical", [
    ("2027-12-31", "2027-12-31T00:00:00Z"), ("2027-12-31T00:00:00Z", "2027-12-31T00:00:00Z"),
    ("2027-12-31T01:00:00+01:00", "2027-12-31T00:00:00Z"), ("2027-12-31T00:00:00.0000000Z", "2027-12-31T00:00:00Z"),
    ("2027-12-31T00:00:00", "2027-12-31T00:00:00Z"), ("someday", "someday"), (None, None)])
def test_dates_in_one_spelling(given, canonical):
    assert iso_datetime(given) == canonical


def test_ids():
    vm = "/subscriptions/s/resourceGroups/R/providers/Microsoft.Compute/virtualMachines/vm1"
    assert parse_id(vm) == {"subscription": "s", "resource_group": "R", "namespace": "Microsoft.Compute",
                            "types": ["virtualMachines"], "names": ["vm1"]}
    assert resource_type(vm) == "microsoft.compute/virtualmachines"
    assert resource_type("/subscriptions/s/resourceGroups/R") is None
    assert parse_id("nonsense") == {}


def test_region_names_and_typos():
    assert region_key(" West  Europe ") == "westeurope"
    unknown = unknown_regions(["westeurope", "West Europe", "westeurpoe", "mars"], KNOWN_REGIONS)
    assert unknown == [("westeurpoe", "westeurope"), ("mars", None)]
    assert unknown_message("target_regions", unknown, "the list") == (
        "Unknown regions in target_regions: westeurpoe (did you mean westeurope?), mars; checked against the list.")
    assert {"westeurope", "usgovvirginia", "chinanorth3"} <= KNOWN_REGIONS


def test_role_assignments_are_found_by_meaning():
    scope = "/subscriptions/S/resourceGroups/img"
    role = "/subscriptions/S/providers/Microsoft.Authorization/roleDefinitions/B24988AC-6180-42A0-AB88-20F7382DD24C"
    name = rbac.assignment_name(scope, role, "PRINCIPAL")
    assert name == rbac.assignment_name(scope.upper() + "/", role.lower(), "principal")
    assert rbac.is_guid(name)
    listed = [{"scope": "/subscriptions/S", "role_definition_id": role, "principal_id": "principal", "name": "above"},
              {"scope": scope, "role_definition_id": role.replace("B2", "C2"), "principal_id": "principal"},
              {"properties": {"scope": scope, "roleDefinitionId": role, "principalId": "Principal"}, "name": "it"}]
    assert rbac.find_assignment(listed, scope, role, "principal")["name"] == "it"
    assert rbac.find_assignment(listed[:2], scope, role, "principal") is None
    assert rbac.role_guid("b24988ac-6180-42a0-ab88-20f7382dd24c") == "b24988ac-6180-42a0-ab88-20f7382dd24c"
    assert rbac.role_guid("Contributor") is None
