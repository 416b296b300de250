# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a report's files (JSON, Markdown, SVG) into a directory on the controller, in the controller's own process:
one task and no module run, where three ``copy`` tasks start six (a ``stat`` and a ``copy`` per file). Each file is
replaced atomically and only when its content changed. Documentation: modules/report_files.py."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "files": {"type": "dict", "required": True},
    "mode": {"type": "raw", "default": "0644"},
}


def file_mode(mode) -> int:
    """"0644" or "644" (octal text) or 0o644 (YAML's unquoted 0644) -> 0o644; anything else refused before a write."""
    try:
        value = mode if isinstance(mode, int) and not isinstance(mode, bool) else int(str(mode), 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise AnsibleActionFail("mode must be an octal file mode such as 0644, not %r" % (mode,))
    return value


def holds(path: str, content: bytes, mode: int) -> bool:
    """Whether path is a file with that content and mode already."""
    try:
        with open(path, "rb") as handle:
            return handle.read() == content and os.fstat(handle.fileno()).st_mode & 0o777 == mode
    except OSError:
        return False


def write_file(path: str, content: bytes, mode: int) -> bool:
    """Write path (atomically: a temporary file beside it, renamed) unless it already holds content; True if written."""
    if holds(path, content, mode):
        return False
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        mode = file_mode(args["mode"])
        # key -> text (the key is the file name), or key -> {name, content} (as fleetops.vmss.rollout_reports gives them)
        files = {to_text(key): (value.get("name"), value.get("content")) if isinstance(value, dict) else (key, value)
                 for key, value in args["files"].items()}
        bad = [key for key, (name, content) in files.items() if not isinstance(name, str) or name in ("", ".", "..")
               or "/" in name or not isinstance(content, str)]
        if bad:
            raise AnsibleActionFail("files must map each key to its text, or to {name, content}, with a plain file name (no directory): "
                                    "not %s" % ", ".join(map(repr, bad)))
        directory = os.path.abspath(os.path.expanduser(args["dir"]))
        paths = {key: os.path.join(directory, name) for key, (name, content) in files.items()}
        result.update(dest=paths, changed=False)
        if self._task.check_mode:
            result["changed"] = not os.path.isdir(directory) or not all(
                holds(paths[key], to_bytes(content), mode) for key, (name, content) in files.items())
            return result
        try:
            # exist_ok: the sets of a wave write into one directory at the same time
            result["changed"] = not os.path.isdir(directory)
            os.makedirs(directory, mode=0o755, exist_ok=True)
            for key, (name, content) in files.items():
                result["changed"] |= write_file(paths[key], to_bytes(content), mode)
        except OSError as error:
            raise AnsibleActionFail("Cannot write the report files in %s: %s" % (directory, error)) from error
        return result
