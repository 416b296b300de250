# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One AnsiballZ cache per test worker, shared by all its ansible-playbook / ansible runs.

Ansible builds a module's AnsiballZ payload (recursive_finder: parse every module_utils file it imports) once per
controller process, in a cache under its per-process temporary directory (DEFAULT_LOCAL_TMP, removed at exit). A
playbook run of the suite builds each module it uses again: about 0.35 CPU-s for one of ours, 0.15 for ping. With
FLEETOPS_ANSIBALLZ_CACHE set (the harness puts this directory on PYTHONPATH), the cache lives there instead, so each
module is built once per worker. The payload is the same: its cache key is the module's name, and the collection
does not change during a session. Ansible's own lock and atomic rename keep concurrent runs safe.
"""

import importlib.abc
import importlib.machinery
import os
import sys

_CACHE = os.environ.get("FLEETOPS_ANSIBALLZ_CACHE")
_MODULE = "ansible.executor.module_common"


class _Constants:
    """ansible.constants, but DEFAULT_LOCAL_TMP (used by module_common only for its cache) is the shared directory."""

    DEFAULT_LOCAL_TMP = _CACHE

    def __init__(self, constants):
        self._constants = constants

    def __getattr__(self, name):
        return getattr(self._constants, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Patches module_common once it has been executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            module.C = _Constants(module.C)

        spec.loader.exec_module = exec_module
        return spec


if _CACHE and os.path.basename(sys.argv[0] if sys.argv else "").startswith("ansible"):
    sys.meta_path.insert(0, _Finder())
