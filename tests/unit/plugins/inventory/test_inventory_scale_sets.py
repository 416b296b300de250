# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale sets as inventory hosts (host_type: scale_set): the pure host variables and names, and the plugin
across two subscriptions with a scripted ARM (one list of sets per subscription, one instance list per set)."""

# pylint: disable=redefined-outer-name  # the fixtures arm and plugin_loader, shared with test_inventory_instances

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError

from ansible_collections.fleetops.vmss.plugins.module_utils import _fleet_inventory as fleet
from azure_fakes import arm_error
from module_runner import ARM, SUB
from test_inventory_instances import (  # pylint: disable=unused-import
    FLEX, GALLERY_IMAGE, WEB, arm, flexible_vm, group_hosts, parse, plugin_loader, scale_set, uniform_vm)

SUB2 = "00000000-0000-0000-0000-000000000002"
WEB2 = "/subscriptions/%s/resourceGroups/a/providers/Microsoft.Compute/virtualMachineScaleSets/web" % SUB2


def with_policy(body, mode="Rolling", location="westeurope"):
    body = dict(body, location=location)
    body["properties"] = dict(body["properties"], upgradePolicy={"mode": mode}, provisioningState="Succeeded")
    return body


def test_scale_set_vars_count_health_and_versions_from_the_instance_list():
    vms = [uniform_vm("0", "1", "unhealthy"), uniform_vm("1", "2", "healthy"), uniform_vm("2", "2", "healthy")]
    vms[2]["properties"]["storageProfile"]["imageReference"]["exactVersion"] = "1.7.0"
    del vms[1]["properties"]["instanceView"]["vmHealth"]          # no Application Health state reported
    vms[0]["properties"]["latestModelApplied"] = False

    out = fleet.scale_set_vars(with_policy(scale_set(WEB, "Uniform")), iter(vms))

    assert out == {
        "scale_set": "web", "scale_set_id": WEB, "resource_group": "a", "subscription_id": SUB, "location": "westeurope",
        "zones": [], "scale_set_tags": {"team": "payments"}, "vm_size": "Standard_D2s_v5", "capacity": 2, "orchestration_mode": "Uniform",
        "upgrade_mode": "Rolling", "provisioning_state": "Succeeded",
        "image": {"id": GALLERY_IMAGE + "/versions/1.7.1"}, "image_version": "1.7.1", "instance_count": 3,
        "instance_image_versions": {"1.7.0": 1, "1.7.1": 2}, "instances_not_on_latest_model": 1,
        "health_summary": {"None": 1, "Healthy": 1, "Unhealthy": 1}}
    bare = fleet.scale_set_vars({"id": FLEX, "properties": {"orchestrationMode": "Flexible"}}, [])
    assert (bare["upgrade_mode"], bare["image_version"], bare["health_summary"], bare["instance_count"]) == (
        "Manual", None, {}, 0)


def test_host_names_qualify_only_what_clashes():
    def host(sub, group, name):
        return {"subscription_id": sub, "resource_group": group, "scale_set": name}

    hosts = [host("s1", "eu", "api"), host("s1", "us", "API"), host("s1", "eu", "worker"),
             host("s1", "eu", "db"), host("s2", "EU", "db")]
    assert [name for name, _variables in fleet.host_names(hosts)] == [
        "eu/api", "us/API", "worker", "s1/eu/db", "s2/EU/db"]


def test_for_subscription_shares_the_credential_and_counter_not_the_clients():
    class Factory:
        subscription_id = "s1"
        requests = object()

        def __init__(self):
            self._clients = {"compute": object()}

    factory = Factory()
    assert fleet.for_subscription(factory, "s1") is factory and fleet.for_subscription(factory, "") is factory
    other = fleet.for_subscription(factory, "s2")
    assert (other.subscription_id, other._clients, other.requests) == ("s2", {}, factory.requests)
    assert factory.subscription_id == "s1" and factory._clients


def route_two_subscriptions(arm):  # pylint: disable=redefined-outer-name
    arm.route("GET", SUB + r"/providers/Microsoft\.Compute/virtualMachineScaleSets\?", [(200, {}, {"value": [
        with_policy(scale_set(WEB, "Uniform")), with_policy(scale_set(FLEX, "Flexible"), "Manual")]})])
    arm.route("GET", SUB2 + r"/providers/Microsoft\.Compute/virtualMachineScaleSets\?", [(200, {}, {"value": [
        with_policy(scale_set(WEB2, "Uniform"), "Manual", "northeurope")]})])
    arm.route("GET", SUB + r"/resourceGroups/a/providers/Microsoft\.Compute/virtualMachineScaleSets/web/virtualMachines\?",
              [(200, {}, {"value": [uniform_vm("0", "1", "unhealthy"), uniform_vm("1", "2", "healthy")]})])
    arm.route("GET", SUB2 + r"/resourceGroups/a/providers/Microsoft\.Compute/virtualMachineScaleSets/web/virtualMachines\?",
              [(200, {}, {"value": [uniform_vm("0", "1", "healthy")]})])
    arm.route("GET", r"/resourceGroups/b/providers/Microsoft\.Compute/virtualMachines\?",
              [(200, {}, {"value": [flexible_vm("flex_1a2b3c4d")]})])


def test_scale_sets_of_two_subscriptions_grouped_by_region_and_subscription(arm, plugin_loader, tmp_path):
    route_two_subscriptions(arm)

    data, _plugin = parse(plugin_loader, tmp_path, {
        "host_type": "scale_set", "subscriptions": [SUB, SUB2],
        "keyed_groups": [{"key": "location", "prefix": "region"}, {"key": "subscription_id", "prefix": "sub"},
                         {"key": "scale_set_tags.team", "prefix": "team"}],
        "groups": {"degraded": "health_summary.Unhealthy | default(0) > 0"},
        "compose": {"fleet_batches": "capacity * 2"}})

    assert sorted(data.hosts) == ["%s/a/web" % SUB, "%s/a/web" % SUB2, "flex"]
    web = data.hosts["%s/a/web" % SUB].vars
    assert (web["upgrade_mode"], web["health_summary"], web["instance_image_versions"], web["fleet_batches"]) == (
        "Rolling", {"Healthy": 1, "Unhealthy": 1}, {"1.7.1": 2}, 4)
    assert "ansible_host" not in web and "private_ip" not in web
    flex = data.hosts["flex"].vars
    assert (flex["orchestration_mode"], flex["instance_image_versions"], flex["image_version"]) == (
        "Flexible", {"1.7.0": 1}, "1.7.1")
    assert group_hosts(data, "region_northeurope") == ["%s/a/web" % SUB2]
    assert group_hosts(data, "region_westeurope") == ["%s/a/web" % SUB, "flex"]
    assert group_hosts(data, "sub_" + SUB2.replace("-", "_")) == ["%s/a/web" % SUB2]
    assert group_hosts(data, "team_payments") == sorted(data.hosts)
    assert group_hosts(data, "degraded") == ["%s/a/web" % SUB]
    # one list of sets per subscription, one instance list per set: no NICs, no instance views per set
    assert len(arm.requests) == 5 and all(request.method == "GET" for request in arm.requests)
    assert not any("networkInterfaces" in request.url for request in arm.requests)


def test_a_failed_instance_list_names_the_scale_set(arm, plugin_loader, tmp_path):
    route_two_subscriptions(arm)
    arm.route("GET", r"/virtualMachineScaleSets/web/virtualMachines\?", [arm_error(
        "AuthorizationFailed", "The client does not have authorization.", 403)])
    arm.routes.insert(0, arm.routes.pop())

    with pytest.raises(AnsibleError, match=r"^Failed to list the instances of scale set a/web: AuthorizationFailed"):
        parse(plugin_loader, tmp_path, {"host_type": "scale_set"})
    assert ARM in arm.requests[0].url
