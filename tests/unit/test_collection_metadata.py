# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's metadata agrees with its files, so lists kept by hand cannot drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from ansible_collections.fleetops.vmss.plugins.doc_fragments.azure import ModuleDocFragment
from ansible_collections.fleetops.vmss.plugins.module_utils._client import COLLECTION_VERSION
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AUTH_ARGUMENT_SPEC, WAIT_ARGUMENT_SPEC

ROOT = Path(__file__).resolve().parents[2]


def load(path):
    return yaml.safe_load((ROOT / path).read_text())


def test_action_group_lists_every_module_and_nothing_else():
    # an action plugin's docs-only module (rollout_wait) calls no Azure API: module_defaults' Azure options
    # would be unknown to it
    controller_only = {path.stem for path in (ROOT / "plugins" / "action").glob("*.py")}
    modules = {path.stem for path in (ROOT / "plugins" / "modules").glob("*.py")} - {"__init__"} - controller_only
    group = load("meta/runtime.yml")["action_groups"]["vmss"]
    assert len(group) == len(set(group)), "duplicates in meta/runtime.yml action_groups.vmss"
    assert set(group) == modules, "meta/runtime.yml action_groups.vmss must list exactly plugins/modules/*.py"


def test_user_agent_version_is_the_galaxy_version():
    assert COLLECTION_VERSION == load("galaxy.yml")["version"]


def test_doc_fragment_documents_the_shared_argument_spec():
    # validate-modules compares each module's docs and spec; this pins the shared part at its source.
    for fragment, spec in ((ModuleDocFragment.DOCUMENTATION, AUTH_ARGUMENT_SPEC), (ModuleDocFragment.WAIT, WAIT_ARGUMENT_SPEC)):
        options = yaml.safe_load(fragment)["options"]
        assert set(options) == set(spec)
        for name, option in options.items():
            assert option["type"] == spec[name]["type"], name
            assert option.get("choices") == spec[name].get("choices"), name
            assert option.get("default") == spec[name].get("default"), name


def test_build_ignore_keeps_development_trees_out():
    ignored = set(load("galaxy.yml")["build_ignore"])
    assert {"emulator", "bench", ".venv", ".emulator", "tests/output", "Makefile", ".ci"} <= ignored
