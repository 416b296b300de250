# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""resource_group state: absent refuses a group that still holds resources (naming how many and which) before
anything is written, unless force_delete_nonempty (azure.azcollection's name); an empty group is deleted."""

from __future__ import annotations

from conftest import arm_writes, last_seq, put_resource_group, seed_network
from test_autoscale import RG, seed_scale_set


def group_exists(azure, name):
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    return azure.client("compute").send_request(HttpRequest(
        "HEAD", "/subscriptions/%s/resourcegroups/%s?api-version=2021-04-01" % (azure.subscription_id, name))).status_code == 204


def test_a_nonempty_group_is_refused_then_deleted_only_when_forced(emulator, azure, ansible, control):
    put_resource_group(azure, RG, "westeurope")
    seed_network(azure, RG, "westeurope")
    seed_scale_set(azure, "api", 2)
    absent = {"name": RG, "state": "absent"}

    for check in (False, True):
        since = last_seq(control)
        rc, refused = ansible.module("resource_group", absent, check=check)
        assert rc != 0, refused
        assert refused["msg"].startswith("resource group %s holds 3 resource(s): " % RG), refused["msg"]
        for kind in ("1 Microsoft.Compute/virtualMachineScaleSets (api)", "1 Microsoft.Network/loadBalancers (lb)",
                     "1 Microsoft.Network/virtualNetworks (vnet)"):
            assert kind in refused["msg"]
        assert "set force_delete_nonempty: true" in refused["msg"]
        assert sorted(r["type"] for r in refused["resources"]) == [
            "Microsoft.Compute/virtualMachineScaleSets", "Microsoft.Network/loadBalancers",
            "Microsoft.Network/virtualNetworks"]
        assert arm_writes(control, since) == []
    assert group_exists(azure, RG)

    since = last_seq(control)
    rc, planned = ansible.module("resource_group", dict(absent, force_delete_nonempty=True), check=True)
    assert rc == 0 and planned["changed"] and len(planned["resources"]) == 3
    assert arm_writes(control, since) == [] and group_exists(azure, RG)

    rc, deleted = ansible.module("resource_group", dict(absent, force_delete_nonempty=True))
    assert rc == 0 and deleted["changed"] and len(deleted["resources"]) == 3
    assert not group_exists(azure, RG)

    rc, again = ansible.module("resource_group", absent)
    assert rc == 0 and not again["changed"]


def test_an_empty_group_is_deleted_without_force(emulator, azure, ansible):
    put_resource_group(azure, "scratch", "westeurope")
    rc, deleted = ansible.module("resource_group", {"name": "scratch", "state": "absent"})
    assert rc == 0 and deleted["changed"] and deleted["resources"] == []
    assert not group_exists(azure, "scratch")
