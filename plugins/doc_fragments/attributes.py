# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The attributes every fleetops.vmss module declares; each module adds its own support levels.

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changes it would make without making them.
  diff_mode:
    description: Returns the state before and after the change when run with C(--diff).
  idempotent:
    description:
      - When run twice with the same options, the second run changes nothing and reports RV(ignore:changed=false).
  action_group:
    description: Use C(group/fleetops.vmss.vmss) in C(module_defaults) to set options for every module of this collection.
    support: full
    membership:
      - fleetops.vmss.vmss
"""

    # For _info modules: read-only, so check mode is the same run.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    details: This module only reads; check mode runs it as usual.
  diff_mode:
    support: none
  idempotent:
    support: full
"""
