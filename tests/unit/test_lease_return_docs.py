# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``lease`` return value is documented in each module that holds a scale set's lease. ansible-core (2.19) merges
doc fragments into DOCUMENTATION only - ``utils/plugin_docs.get_docstring`` never extends RETURN - so the entry
cannot live in one fragment; this keeps the copies identical, but for when each module returns it."""

from __future__ import annotations

import importlib

import yaml

MODULES = ("rollout", "blue_green", "rolling_upgrade")


def lease_entry(name):
    module = importlib.import_module("ansible_collections.fleetops.vmss.plugins.modules." + name)
    return yaml.safe_load(module.RETURN)["lease"]


def test_the_lease_return_entry_is_the_same_in_every_module_holding_a_lease():
    entries = {name: lease_entry(name) for name in MODULES}
    returned = {name: entry.pop("returned") for name, entry in entries.items()}
    assert all(returned.values())
    first = entries[MODULES[0]]
    assert first["description"] and all(entry == first for entry in entries.values()), \
        "the lease RETURN entries differ: update all three modules together"
