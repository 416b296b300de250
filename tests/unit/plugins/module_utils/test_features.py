# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_features: the manual-upgrade preview feature judged from its registration, and when a rollout needs it."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _features as features
from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model

IMAGE = {"publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "1.0.0"}
CURRENT = {"sku": {"name": "Standard_D2s_v3"}, "properties": {
    "orchestrationMode": "Flexible", "virtualMachineProfile": {"storageProfile": {"imageReference": IMAGE}}}}


def test_registered_is_no_problem():
    assert features.image_upgrade_problem({"status": 200, "state": "Registered"}, "rg/api") is None


@pytest.mark.parametrize("answer, said", [({"status": 200, "state": "NotRegistered"}, "(it is NotRegistered)"),
                                          ({"status": 200, "state": "Registering"}, "(it is Registering)"),
                                          ({"status": 404, "state": None}, "(it is FeatureNotFound)")])
def test_anything_but_registered_names_the_feature_the_commands_and_the_alternatives(answer, said):
    problem = features.image_upgrade_problem(answer, "rg/api")
    assert said in problem and "rg/api" in problem
    assert "az feature register --namespace Microsoft.Compute --name ImageReferenceUpgradeForVmoVMs" in problem
    assert "az provider register -n Microsoft.Compute" in problem
    assert "azure_rolling" in problem and "blue_green" in problem


def test_forbidden_names_the_permission():
    problem = features.image_upgrade_problem({"status": 403, "state": None}, "rg/api")
    assert "Microsoft.Features/providers/features/read" in problem and "ImageReferenceUpgradeForVmoVMs" in problem


def test_the_feature_path_is_the_features_get():
    assert features.feature_path("sub") == ("/subscriptions/sub/providers/Microsoft.Features/providers/Microsoft.Compute"
                                            "/features/ImageReferenceUpgradeForVmoVMs?api-version=2021-07-01")


def test_only_image_changes_need_the_feature():
    new_image = model.differences(model.desired_options({"image": dict(IMAGE, version="1.1.0")}), CURRENT)
    size_only = model.differences(model.desired_options({"sku": {"name": "Standard_D4s_v3"}}), CURRENT)
    assert features.image_changes(new_image, None, None) is True
    assert features.image_changes(size_only, None, None) is False
    # resuming or rolling back (the model changed already): the rollback point's image against the target's
    assert features.image_changes(None, {"image": IMAGE}, {"image": dict(IMAGE, version="1.1.0")}) is True
    assert features.image_changes(None, {"image": IMAGE}, {"image": dict(IMAGE, publisher="CANONICAL")}) is False
    assert features.image_changes(None, {"sku": {"name": "a"}}, {"sku": {"name": "b"}}) is False
