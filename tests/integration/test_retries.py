# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retries as documented (issue 16, item 6), through the emulator's fault injection: more consecutive faults of
one kind than azure-core's per-kind default (3) are retried up to retry_total (7), then the module fails with
ARM's code, never a traceback."""

from __future__ import annotations

import pytest

from test_fault_matrix import NAME, RG, mark, scale_set, statuses  # noqa: F401  pylint: disable=unused-import


@pytest.mark.parametrize("kind", ["503", "429"])
def test_five_consecutive_faults_on_a_read_succeed(scale_set, ansible, control, kind):  # noqa: F811
    since = mark(control)
    control.add_fault(kind=kind, match={"operation_id": "VirtualMachineScaleSets_Get"}, count=5, retry_after_ms=20)
    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": NAME})
    assert code == 0, result
    assert [s["name"] for s in result["scale_sets"]] == [NAME]
    assert statuses(control, since, "VirtualMachineScaleSets_Get") == [kind] * 5 + ["200"]


def test_seven_consecutive_503s_on_a_write_succeed(scale_set, ansible, control):  # noqa: F811
    since = mark(control)
    control.add_fault(kind="503", match={"method": "PATCH", "operation_id": "VirtualMachineScaleSets_Update"},
                      count=7, retry_after_ms=20)
    code, result = ansible.module("scale_set", {
        "resource_group": RG, "name": NAME, "tags": {"retried": "7"}, "wait_sleep": 0.2})
    assert code == 0, result
    assert result["changed"]
    assert statuses(control, since, "VirtualMachineScaleSets_Update") == ["503"] * 7 + ["200"]


def test_an_eighth_consecutive_fault_fails_with_the_arm_code(scale_set, ansible, control):  # noqa: F811
    since = mark(control)
    control.add_fault(kind="503", match={"operation_id": "VirtualMachineScaleSets_Get"}, count=8, retry_after_ms=10)
    code, result = ansible.module("scale_set_info", {"resource_group": RG, "name": NAME})
    assert code != 0
    assert result["msg"].startswith("Failed to get scale set %s/%s: " % (RG, NAME)), result["msg"]
    assert "Traceback" not in result["msg"]
    assert statuses(control, since, "VirtualMachineScaleSets_Get") == ["503"] * 8
