# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module start-up: what every run imports and carries, and the GC pause around the SDK imports (issue 18)."""

from __future__ import annotations

import ast
import gc
import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _client
from ansible_collections.fleetops.vmss.plugins.module_utils._client import (
    SdkClient,
    gc_paused,
    import_in_background,
    load_client_class,
)

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"
MODULES = sorted(path.stem for path in (PLUGINS / "modules").glob("*.py") if path.stem != "__init__")
OURS = "ansible_collections.fleetops.vmss.plugins.module_utils."

# Packages no module may import before it asks for its first client: the SDKs and what they pull in
# (azure-identity: msal, requests, cryptography), and the heavy pieces of ansible's own module_utils.
HEAVY = ("azure", "msal", "msrest", "isodate", "requests", "urllib3", "cryptography", "yaml", "jsonschema",
         "ansible.module_utils.urls")


def _imported_names(path: Path, package: str):
    """Every module an import statement of the file names, at any depth (as AnsiballZ's finder reads them)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] + ("." + base if base else "")
            yield base
            yield from (base + "." + alias.name for alias in node.names)  # "from . import _rest"


def payload(module: str) -> set:
    """The module_utils (ours and ansible's) an AnsiballZ payload of ``module`` carries: the closure of its imports."""
    seen, todo = set(), [(PLUGINS / "modules" / (module + ".py"), OURS.rstrip("."))]
    while todo:
        path, package = todo.pop()
        for name in _imported_names(path, package):
            if name.startswith("ansible.module_utils."):
                seen.add(name)
            elif name.startswith(OURS) and name not in seen:
                util = PLUGINS / "module_utils" / (name[len(OURS):].split(".")[0] + ".py")
                if util.is_file():
                    seen.add(name)
                    todo.append((util, OURS.rstrip(".")))
    return seen


def test_the_payload_reader_follows_relative_and_nested_imports():
    carried = payload("scale_set_info")
    assert OURS + "_auth" in carried  # scale_set_info -> _common -> ._auth
    assert OURS + "_client" in carried  # _auth -> from ._client import ...
    assert "ansible.module_utils.basic" in carried


@pytest.mark.parametrize("module", MODULES)
def test_no_payload_carries_ansible_module_utils_urls(module):
    # 56 kB zipped into every module and, when imported, cookie jars, MIME and x509 on every start; the cloud
    # metadata is fetched with the standard library's urllib instead (_auth.fetch_json).
    assert not [name for name in payload(module) if name.startswith("ansible.module_utils.urls")]


def test_no_module_imports_a_heavy_package_before_its_first_client():
    # A fresh interpreter, as a module run starts: every module of the collection imported, nothing called.
    script = (
        "import importlib, json, sys\n"
        "for name in %r:\n"
        "    importlib.import_module('ansible_collections.fleetops.vmss.plugins.modules.' + name)\n"
        "print(json.dumps(sorted(sys.modules)))\n" % (MODULES,)
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                                       text=True).stdout)
    assert len(loaded) > 100  # the modules really were imported
    assert [name for name in loaded if name.split(".")[0] in HEAVY or name.startswith(HEAVY)] == []


@pytest.fixture
def fake_sdk(tmp_path, monkeypatch):
    """An importable fake SDK, registered as client "fake", that records whether the GC ran during its import."""
    (tmp_path / "fake_sdk_probe.py").write_text("import gc\nGC_ENABLED_DURING_IMPORT = gc.isenabled()\n"
                                                "class FakeClient:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_client.SDK_CLIENTS, "fake", SdkClient("fake_sdk_probe", "FakeClient", "fake-sdk"))
    yield sys.modules
    sys.modules.pop("fake_sdk_probe", None)
    gc.enable()


def test_an_sdk_is_imported_with_the_gc_paused_and_frozen_after(fake_sdk):
    gc.enable()
    frozen = gc.get_freeze_count()
    client_class = load_client_class("fake")
    assert client_class.__name__ == "FakeClient"
    assert fake_sdk["fake_sdk_probe"].GC_ENABLED_DURING_IMPORT is False
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # the imported objects are out of every later collection
    gc.unfreeze()


def test_the_gc_pause_leaves_a_disabled_gc_disabled(fake_sdk):
    gc.disable()
    load_client_class("fake")
    assert fake_sdk["fake_sdk_probe"].GC_ENABLED_DURING_IMPORT is False
    assert not gc.isenabled()


def test_a_failed_sdk_import_still_turns_the_gc_back_on(monkeypatch):
    monkeypatch.setitem(_client.SDK_CLIENTS, "fake", SdkClient("not_an_installed_sdk_probe", "X", "fake-sdk"))
    gc.enable()
    with pytest.raises(_client.MissingLibrary):
        load_client_class("fake")
    assert gc.isenabled()


def test_overlapping_pauses_on_two_threads_end_with_the_last():
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def background():
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=background)
    thread.start()
    inside.wait(5)
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's import is still running
    release.set()
    thread.join(5)
    assert gc.isenabled()
    gc.unfreeze()


def test_a_background_import_pauses_the_gc_too(tmp_path, monkeypatch):
    (tmp_path / "slow_gc_probe.py").write_text("import gc, time\ntime.sleep(0.2)\nGC_ENABLED = gc.isenabled()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    gc.enable()
    import_in_background("slow_gc_probe")
    try:
        assert importlib.import_module("slow_gc_probe").GC_ENABLED is False
    finally:
        sys.modules.pop("slow_gc_probe", None)
    for _attempt in range(50):  # the thread leaves its pause just after the import returns
        if gc.isenabled():
            break
        threading.Event().wait(0.02)
    assert gc.isenabled()
    gc.unfreeze()
