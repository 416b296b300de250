# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Modules end to end inside one process: options -> auth -> SDK -> HTTP (scripted) -> result."""

from __future__ import annotations

import pytest

from module_runner import scripted_arm


@pytest.fixture
def arm(monkeypatch, tmp_path):
    """AWX-style credentials in the environment and a scripted ARM behind the real SDK."""
    return scripted_arm(monkeypatch, tmp_path)
