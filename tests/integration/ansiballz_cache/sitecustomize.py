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

In a module's process (``python AnsiballZ_x.py``): zipimport compiles every file it imports from the payload on every
run (it writes no .pyc), about 0.2 CPU-s of a module run's 0.7 (ansible's module_utils and ours). Here the code
compiled from a source is kept in the same directory (marshal, keyed by the source's hash) and loaded by the next
run, with the run's own file name: the same code as compiling it again.
"""

import hashlib
import importlib.abc
import importlib.machinery
import marshal
import os
import sys
import tempfile
import types

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


def _refile(code, filename):
    """``code`` as compiled from ``filename`` (nested functions' and classes' code too)."""
    consts = tuple(_refile(const, filename) if isinstance(const, types.CodeType) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _compile_cached(compile_source, directory):
    def compile_source_cached(pathname, source):
        path = os.path.join(directory, hashlib.blake2b(source, digest_size=20).hexdigest())
        try:
            with open(path, "rb") as handle:
                return _refile(marshal.load(handle), pathname)
        except (OSError, EOFError, ValueError, TypeError):
            pass
        code = compile_source(pathname, source)
        try:  # written whole, then renamed: a concurrent run reads all of it or nothing
            with tempfile.NamedTemporaryFile(dir=directory, delete=False) as handle:
                marshal.dump(code, handle)
            os.replace(handle.name, path)
        except OSError:  # no cache, the same module run
            pass
        return code
    return compile_source_cached


def _install():
    program = os.path.basename(sys.argv[0] if sys.argv else "")
    if program.startswith("ansible"):  # a controller: ansible-playbook, ansible
        sys.meta_path.insert(0, _Finder())
    elif program.startswith("AnsiballZ_"):  # a module's process
        import zipimport  # pylint: disable=import-outside-toplevel

        directory = os.path.join(_CACHE, "code")
        os.makedirs(directory, exist_ok=True)
        zipimport._compile_source = _compile_cached(zipimport._compile_source, directory)  # pylint: disable=protected-access


if _CACHE:
    _install()
