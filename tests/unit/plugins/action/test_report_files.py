# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetops.vmss.report_files: the files written on the controller (the directory made), rewritten only when their
content or mode changed, nothing written in check mode, bad names and modes refused before any write."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.fleetops.vmss.plugins.action import report_files


def run(args, check_mode=False):
    action = report_files.ActionModule.__new__(report_files.ActionModule)
    action._task = SimpleNamespace(args=args, check_mode=check_mode, async_val=0)
    action.validate_argument_spec = lambda argument_spec: (None, dict({"mode": "0644"}, **args))
    original = report_files.ActionBase.run
    report_files.ActionBase.run = lambda self, tmp=None, task_vars=None: {}
    try:
        return action.run(task_vars={})
    finally:
        report_files.ActionBase.run = original


def test_writes_the_files_makes_the_directory_and_returns_each_key_s_path(tmp_path):
    target = tmp_path / "reports" / "sets"
    result = run({"dir": str(target), "files": {"json": {"name": "r.json", "content": '{"a": 1}'}, "r.md": "# R\n"}})
    assert result["changed"] is True
    assert result["dest"] == {"json": str(target / "r.json"), "r.md": str(target / "r.md")}
    assert (target / "r.json").read_text() == '{"a": 1}' and (target / "r.md").read_text() == "# R\n"
    assert os.stat(target / "r.json").st_mode & 0o777 == 0o644
    assert sorted(os.listdir(target)) == ["r.json", "r.md"]   # no temporary file left beside them


def test_same_content_is_not_rewritten_a_change_is(tmp_path):
    args = {"dir": str(tmp_path), "files": {"r.md": "one"}}
    run(args)
    before = os.stat(tmp_path / "r.md").st_ino
    assert run(args)["changed"] is False and os.stat(tmp_path / "r.md").st_ino == before
    assert run({"dir": str(tmp_path), "files": {"r.md": "two"}})["changed"] is True
    assert (tmp_path / "r.md").read_text() == "two"
    assert run({"dir": str(tmp_path), "files": {"r.md": "two"}, "mode": "0600"})["changed"] is True
    assert os.stat(tmp_path / "r.md").st_mode & 0o777 == 0o600


def test_no_files_only_makes_the_directory(tmp_path):
    assert run({"dir": str(tmp_path / "d"), "files": {}})["changed"] is True
    assert (tmp_path / "d").is_dir() and not os.listdir(tmp_path / "d")
    assert run({"dir": str(tmp_path / "d"), "files": {}})["changed"] is False


def test_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    result = run({"dir": str(tmp_path / "d"), "files": {"r.md": "x"}}, check_mode=True)
    assert result["changed"] is True and not (tmp_path / "d").exists()


@pytest.mark.parametrize("files, mode", [
    ({"../r.md": "x"}, "0644"),
    ({"json": {"name": "a/b.json", "content": "x"}}, "0644"),
    ({"r.json": {"a": 1}}, "0644"),
    ({"json": {"name": "r.json"}}, "0644"),
    ({"r.md": "x"}, "rw-r--r--"),
    ({"r.md": "x"}, "01777"),
])
def test_bad_names_contents_and_modes_are_refused_before_any_write(tmp_path, files, mode):
    with pytest.raises(AnsibleActionFail):
        run({"dir": str(tmp_path / "d"), "files": files, "mode": mode})
    assert not (tmp_path / "d").exists()


def test_yaml_integer_mode_is_taken_as_the_octal_it_was_written_as(tmp_path):
    run({"dir": str(tmp_path), "files": {"r.md": "x"}, "mode": 0o640})
    assert os.stat(tmp_path / "r.md").st_mode & 0o777 == 0o640


def test_a_directory_made_meanwhile_by_another_host_is_no_error(tmp_path, monkeypatch):
    # the sets of a fleet wave write their reports into one directory at the same time: another worker may make it
    # between this one's look and its makedirs
    target = tmp_path / "sets"
    real_isdir, looks = os.path.isdir, []

    def isdir(path):   # the first look says missing; the directory exists by the time makedirs runs
        if path == str(target) and not looks:
            looks.append(path)
            target.mkdir()
            return False
        return real_isdir(path)

    monkeypatch.setattr(report_files.os.path, "isdir", isdir)
    result = run({"dir": str(target), "files": {"r.md": "x"}})
    assert (target / "r.md").read_text() == "x" and result["dest"] == {"r.md": str(target / "r.md")}
