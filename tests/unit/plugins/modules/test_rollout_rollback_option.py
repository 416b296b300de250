# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.vmss.rollout rollback: true takes what to restore from the rollback point, never from image or model."""

from __future__ import annotations

import pytest

from ansible_collections.fleetops.vmss.plugins.modules.rollout import ARGUMENT_SPEC, option_errors


def options(**set_):
    out = {name: spec.get("default") for name, spec in ARGUMENT_SPEC.items()}
    out.update(resource_group="rg", name="api", **set_)
    return out


@pytest.mark.parametrize("extra", [{"image": {"publisher": "Canonical", "offer": "o", "sku": "s"}},
                                   {"model": {"sku": {"name": "Standard_D4s_v5"}}}])
def test_rollback_with_image_or_model_is_refused_before_any_request(extra):
    errors = option_errors(options(rollback=True, **extra))
    assert errors == ["rollback rolls back to what the scale set's rollback point records: leave image and model out."]


def test_rollback_alone_is_fine():
    assert option_errors(options(rollback=True)) == []
