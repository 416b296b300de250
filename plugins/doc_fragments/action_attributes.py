# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The attributes of this collection's action plugins (the documentation stubs in plugins/modules of
    # plugins/action/*): each says in check_mode.details what check mode does.

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode.
    support: full
  diff_mode:
    description: Returns the state before and after the change when run with C(--diff).
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
  async:
    description: Can run with C(async).
    support: none
"""
