# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one image comparator: the rollout's semantics (test_rollout.test_runs_image) in both spellings, and the
cases the two comparators it replaced (_instances.same_image, _blue_green.same_image) decided."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _blue_green as bg
from ansible_collections.fleetops.vmss.plugins.module_utils import _features as features
from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils import _instance_state as state

DEFINITION = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/golden/images/api"
UBUNTU = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}


@pytest.mark.parametrize("have,want,same", [
    # ids in any case, with a trailing slash (all three comparators)
    ({"id": DEFINITION.upper() + "/versions/1.0.0/"}, {"id": DEFINITION + "/versions/1.0.0"}, True),
    ({"id": DEFINITION + "/versions/1.0.0"}, {"id": DEFINITION + "/versions/2.0.0"}, False),
    # marketplace fields case-insensitive, versions compared
    (dict(UBUNTU, version="1.0.0"), {"publisher": "canonical", "offer": "UBUNTU-24_04-LTS", "sku": "Server",
                                     "version": "1.0.0"}, True),
    (dict(UBUNTU, version="2.0.0"), dict(UBUNTU, version="1.0.0"), False),
    (dict(UBUNTU, sku="minimal", version="1.0.0"), dict(UBUNTU, version="1.0.0"), False),
    ({"id": DEFINITION + "/versions/1.0.0"}, dict(UBUNTU, version="1.0.0"), False),
    # Azure's camelCase spelling: exactVersion and shared gallery ids are read as the options' snake_case
    ({"id": DEFINITION, "exactVersion": "1.0.0"}, {"id": DEFINITION + "/versions/1.0.0"}, True),
    (dict(UBUNTU, version="latest", exactVersion="1.0.0"), dict(UBUNTU, version="1.0.0"), True),
    ({"sharedGalleryImageId": "/SharedGalleries/G-1/Images/api/Versions/2.0.0"},
     {"id": "/sharedgalleries/g-1/images/api/versions/2.0.0"}, True),
    # a gallery .../versions/latest is the image definition; a marketplace reference without version is latest
    ({"id": DEFINITION}, {"id": DEFINITION + "/versions/latest"}, True),
    (dict(UBUNTU, version="latest"), dict(UBUNTU), True),
    # a reference that names nothing is the same only as another that names nothing
    ({}, {}, True), (None, {"id": DEFINITION}, False), ({"id": DEFINITION}, None, False),
])
def test_same_image(have, want, same):
    assert state.same_image(have, want) is same


def test_the_comparator_is_the_rollouts():
    assert state.runs_image(None, {"id": DEFINITION}) is None
    assert state.runs_image({"id": DEFINITION + "/versions/1.0.0"}, {"id": DEFINITION}) is False   # latest unknown


def flexible_vm(reference):
    return {"properties": {"storageProfile": {"imageReference": reference},
                           "hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}


def flexible_set(reference):
    return {"sku": {"name": "Standard_D2s_v5"},
            "properties": {"orchestrationMode": "Flexible",
                           "virtualMachineProfile": {"storageProfile": {"imageReference": reference}}}}


def test_a_flexible_instance_is_on_the_model_when_it_runs_the_models_image():
    pinned = dict(UBUNTU, version="1.0.0")
    assert instances.latest_model_applied(flexible_vm(dict(pinned)), flexible_set(pinned)) is True
    # on "latest", resolved to the model's pinned version
    resolved = dict(UBUNTU, version="latest", exactVersion="1.0.0")
    assert instances.latest_model_applied(flexible_vm(resolved), flexible_set(pinned)) is True
    assert instances.latest_model_applied(flexible_vm(dict(pinned, version="0.9.0")), flexible_set(pinned)) is False
    assert instances.latest_model_applied(flexible_vm(None), flexible_set(pinned)) is False


def test_blue_green_compares_an_image_option_with_greens_reference():
    assert bg.same_image(DEFINITION + "/versions/1.0.0", {"id": DEFINITION.lower() + "/versions/1.0.0"})
    assert bg.same_image(dict(UBUNTU), dict(UBUNTU, version="latest"))     # no version: latest, as the CLI
    assert not bg.same_image(dict(UBUNTU, version="1.0.0"), dict(UBUNTU, version="latest"))


def test_an_image_change_is_what_the_rollout_moves():
    target = {"image": {"id": DEFINITION + "/versions/2.0.0"}}
    assert features.image_changes(None, {"image": {"id": DEFINITION + "/versions/1.0.0"}}, target)
    assert not features.image_changes(None, {"image": {"id": DEFINITION.upper() + "/Versions/2.0.0"}}, target)
    assert features.image_changes(None, None, target)
    assert not features.image_changes(None, {"image": {"id": DEFINITION}}, {})
