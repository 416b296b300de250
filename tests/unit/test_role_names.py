# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role inputs renamed after the modules' (REST-derived) options keep their earlier names: both are accepted,
as booleans or as the strings a survey or `-e name=value` passes, and both are documented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def effective(tmp_path, extra):
    """rollout_demote_on_failure (what the role's tasks read) under the role's defaults and these -e values."""
    playbook = tmp_path / "names.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.include_vars": {"file": str(ROOT / "roles" / "rollout" / "defaults" / "main.yml")}},
        {"ansible.builtin.debug": {"msg": "demote={{ rollout_demote_on_failure | bool }}"}}]}]))
    command = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    for key, value in extra.items():
        command += ["-e", "%s=%s" % (key, value)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": str(BIN), "ANSIBLE_LOCALHOST_WARNING": "false", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout[done.stdout.index("{", done.stdout.index("TASK [ansible.builtin.debug]")):
                                  done.stdout.index("}", done.stdout.index("TASK [ansible.builtin.debug]")) + 1])["msg"]


@pytest.mark.parametrize("extra, demote", [
    ({}, "demote=False"),
    ({"rollout_demote_image_version_on_failure": "true"}, "demote=True"),   # the module's name, as a survey string
    ({"rollout_demote_on_failure": "true"}, "demote=True"),                 # the earlier name
    ({"rollout_demote_image_version_on_failure": "true", "rollout_demote_on_failure": "false"}, "demote=False"),
])
def test_the_rollout_role_takes_either_name_for_demotion(tmp_path, extra, demote):
    assert effective(tmp_path, extra) == demote


def test_both_names_are_documented():
    options = yaml.safe_load((ROOT / "roles" / "rollout" / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]["options"]
    assert options["rollout_demote_image_version_on_failure"]["type"] == "bool"
    assert "rollout_demote_image_version_on_failure" in " ".join(options["rollout_demote_on_failure"]["description"])
