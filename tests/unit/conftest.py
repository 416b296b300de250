# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.fleetops.vmss`` importable from a plain checkout.

Inside ansible-test the checkout already sits at ``.../ansible_collections/fleetops/vmss``; from a
plain checkout we point ``.cache/collections/ansible_collections/fleetops/vmss`` at it (a symlink,
so edits are seen at once) and put ``.cache/collections`` on sys.path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    if ROOT.parts[-3:] == ("ansible_collections", "fleetops", "vmss"):
        return ROOT.parents[2]
    base = ROOT / ".cache" / "collections"
    link = base / "ansible_collections" / "fleetops" / "vmss"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():  # dangling: the checkout moved
            link.unlink()
        try:
            os.symlink(ROOT, link, target_is_directory=True)
        except FileExistsError:  # another pytest-xdist worker made it first
            pass
    return base


for path in (str(_collections_root()), str(Path(__file__).resolve().parent)):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture
def sleeps(monkeypatch):
    """The SDK pipeline's sleeps (retries, LRO polls), recorded instead of slept."""
    from azure.core.pipeline.transport import RequestsTransport  # pylint: disable=import-outside-toplevel

    slept = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, duration: slept.append(duration))
    return slept
