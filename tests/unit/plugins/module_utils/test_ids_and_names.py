# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one resource-id helper (_ids, on azure.mgmt.core.tools) and the one naming helper (_names)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _ids as ids
from ansible_collections.fleetops.vmss.plugins.module_utils import _names as names

SUB = "/subscriptions/0000-1111"
GALLERY = SUB + "/resourceGroups/Img/providers/Microsoft.Compute/galleries/golden"


@pytest.mark.parametrize("resource_id,parsed", [
    (GALLERY + "/images/api/versions/1.7.0",
     {"subscription": "0000-1111", "resource_group": "Img", "namespace": "Microsoft.Compute",
      "types": ["galleries", "images", "versions"], "names": ["golden", "api", "1.7.0"]}),
    # any case, a trailing slash, no leading slash (as the old hand-written parsers accepted)
    ("SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/PROVIDERS/Microsoft.Network/loadBalancers/lb/backendAddressPools/web/",
     {"subscription": "s", "resource_group": "rg", "namespace": "Microsoft.Network",
      "types": ["loadBalancers", "backendAddressPools"], "names": ["lb", "web"]}),
    # a type without its name stays in types, so the id names no resource
    (GALLERY + "/images/api/versions",
     {"subscription": "0000-1111", "resource_group": "Img", "namespace": "Microsoft.Compute",
      "types": ["galleries", "images", "versions"], "names": ["golden", "api"]}),
    (SUB + "/resourceGroups/rg", {"subscription": "0000-1111", "resource_group": "rg", "namespace": None,
                                  "types": [], "names": []}),
    ("/subscriptions/s", {"subscription": "s", "resource_group": None, "namespace": None, "types": [], "names": []}),
    ("web-blue", {}), ("", {}), (None, {}),
])
def test_parse_id(resource_id, parsed):
    assert ids.parse_id(resource_id) == parsed


@pytest.mark.parametrize("resource_id,kind", [
    (GALLERY + "/images/api/versions/1.7.0", "microsoft.compute/galleries/images/versions"),
    (GALLERY + "/images/api/versions", None),
    (SUB + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/backendAddressPools/web",
     "microsoft.network/loadbalancers/backendaddresspools"),
    (SUB + "/resourceGroups/rg", None), ("nonsense", None),
])
def test_resource_type(resource_id, kind):
    assert ids.resource_type(resource_id) == kind


def test_resource_group_of_same_id_and_scale_set_id():
    built = ids.scale_set_id("0000-1111", "Payments", "api")
    assert built == SUB + "/resourceGroups/Payments/providers/Microsoft.Compute/virtualMachineScaleSets/api"
    assert ids.resource_type(built) == "microsoft.compute/virtualmachinescalesets"
    assert ids.resource_group_of(built) == "Payments"
    assert ids.resource_group_of("/subscriptions/s/resourcegroups/lower/providers/x") == "lower"
    assert ids.same_id(built.upper() + "/", built)
    assert not ids.same_id(built, built + "-2")
    assert ids.same_id(None, "")


def test_the_id_helper_leaves_azure_mgmt_core_unloaded_until_an_id_is_parsed():
    code = ("import sys; from ansible_collections.fleetops.vmss.plugins.module_utils import _ids, _rollout; "
            "print('azure.mgmt.core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("snake,rest", [
    ("os_disk_size_gb", "osDiskSizeGB"),                       # the bake modules' table (GB, OS)
    ("enable_ip_forwarding", "enableIPForwarding"),            # ... and IP
    ("hyper_v_generation", "hyperVGeneration"),
    ("automatic_os_upgrade_policy", "automaticOSUpgradePolicy"),  # the scale-set model's table (OS)
    ("enable_automatic_os_upgrade", "enableAutomaticOSUpgrade"),
    ("max_batch_instance_percent", "maxBatchInstancePercent"),
    ("capacity", "capacity"),
])
def test_one_word_table_both_ways(snake, rest):
    assert names.to_camel(snake) == rest
    assert names.to_snake(rest) == snake


def test_camel_keeps_user_maps():
    assert names.camel({"os_profile": {"computer_name_prefix": "api"}, "tags": {"cost_center": "x"},
                        "rules": [{"time_grain": "PT1M"}]}) == {
        "osProfile": {"computerNamePrefix": "api"}, "tags": {"cost_center": "x"}, "rules": [{"timeGrain": "PT1M"}]}
