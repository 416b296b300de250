# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness's module runner: a module forked from the zygote gives what ``ansible localhost -m`` gives."""

from __future__ import annotations

import pytest

from conftest import arm_writes, last_seq, put_resource_group
from test_scale_set_info import NAME, RG, seed_scale_set

CASES = {
    "a read": ("scale_set_info", {"resource_group": RG, "name": NAME}, False),
    "check mode": ("resource_group", {"name": "scratch", "location": "LOCATION", "tags": {"team": "payments"}}, True),
    "bad input": ("scale_set", {"resource_group": RG, "name": "api", "orchestration_mode": "Sideways"}, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_fork_gives_what_the_cli_gives(emulator, azure, ansible, control, case):
    if ansible.zygote is None:
        pytest.fail("FLEETOPS_MODULE_RUNNER=cli: nothing to compare")
    name, args, check = CASES[case]
    args = {key: emulator["FLEETOPS_EMULATOR_LOCATION"] if value == "LOCATION" else value for key, value in args.items()}
    seed_scale_set(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    since = last_seq(control)

    forked = ansible.module(name, args, check=check)
    cli = ansible.module(name, args, check=check, cli=True)

    # the CLI's tree file drops the module's warnings and exception, which the forked run keeps
    assert (forked[0], {k: v for k, v in forked[1].items() if k not in ("warnings", "exception")}) == cli
    assert forked[0] == (2 if case == "bad input" else 0), forked
    assert not arm_writes(control, since)  # a read, check mode and refused input write nothing, either way


def test_each_run_has_its_own_environment(emulator, azure, ansible):
    """A run given another environment leaves nothing behind for the next run (each is a fresh fork)."""
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    wrong = {"AZURE_CLIENT_SECRET": "not-the-secret", "AZURE_SECRET": "not-the-secret"}
    refused = ansible.module("scale_set_info", {"resource_group": RG}, env=wrong)
    assert refused[0] == 2 and refused[1]["msg"], refused
    code, result = ansible.module("scale_set_info", {"resource_group": RG})
    assert code == 0 and result["scale_sets"] == [], result
