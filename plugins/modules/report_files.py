#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write a report's files into a directory on the controller
version_added: 0.1.0
description:
  - Writes each of O(files) into O(dir) on the controller, creating O(dir) when missing (O(files) V({}) only creates it).
  - A file is replaced atomically (written beside it, then renamed), and only when its content or mode differs.
  - The rollout and fleet roles write their JSON, Markdown and SVG reports with it, in one task that starts no
    module (three M(ansible.builtin.copy) tasks start six).
  - This is an action plugin; it runs on the controller, whatever the task's host.
author:
  - FleetOps maintainers (@fleetops)
options:
  dir:
    description: The directory on the controller.
    type: path
    required: true
  files:
    description:
      - Each key maps to the file's text (the key is then the file name), or to a dict with the file's C(name) and its
        C(content) (as P(fleetops.vmss.rollout_reports#filter) returns them).
      - File names have no directory part.
    type: dict
    required: true
  mode:
    description: The files' permissions, as an octal number (for example V(0644)).
    type: raw
    default: "0644"
extends_documentation_fragment:
  - fleetops.vmss.action_attributes
attributes:
  check_mode:
    details: Says whether a file would change; writes nothing.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write a report as JSON and Markdown
  fleetops.vmss.report_files:
    dir: "{{ playbook_dir }}/reports"
    files:
      report.json: "{{ {'status': 'succeeded'} | to_nice_json }}"
      report.md: "# Report\n\nSucceeded.\n"
"""

RETURN = r"""
dest:
  description: Each key of O(files) and the path of its file.
  returned: always
  type: dict
  sample: {"json": "/home/op/reports/rollout-payments-api-20261206T120000Z.json"}
"""
