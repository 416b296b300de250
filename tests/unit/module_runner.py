# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for module tests: a scripted ARM behind the real SDK, running a module, reading its requests."""

from __future__ import annotations

import json
import os

import azure.identity
import pytest
from ansible.module_utils.testing import patch_module_args

from azure_fakes import ScriptedAdapter, StaticCredential, session_for
from ansible_collections.fleetops.vmss.plugins.module_utils import _common

SUB = "00000000-0000-0000-0000-000000000001"
ARM = "https://management.azure.com/subscriptions/%s" % SUB
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def scripted_arm(monkeypatch, tmp_path):
    """AWX-style credentials in the environment and a scripted ARM behind the real SDK (the adapter)."""
    for name in list(os.environ):
        if name.startswith("AZURE_") or name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.azure/credentials of the machine's user
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_SECRET", "secret")
    monkeypatch.setenv("AZURE_TENANT", "tenant")
    adapter = ScriptedAdapter([])
    credential = StaticCredential()
    adapter.credential = credential
    monkeypatch.setattr(azure.identity, "ClientSecretCredential", lambda **kwargs: credential.remember(kwargs))

    class ScriptedFactory(_common.ClientFactory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.kwargs.update(session=session_for(adapter), session_owner=False)

    monkeypatch.setattr(_common, "ClientFactory", ScriptedFactory)
    return adapter


def run_module(module, args, capsys):
    """(exit code, result dict) of ``module.main()`` with ``args``."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as caught:
            module.main()
    return caught.value.code, json.loads(capsys.readouterr().out)


def writes(adapter):
    return [request for request in adapter.requests if request.method in WRITES]


def body_of(request):
    return json.loads(request.body) if request.body else None


def serve_lease(adapter, path: str, doc: dict) -> None:
    """The tags-only PATCH of a scale set's lease (_lease): answered with ``doc`` carrying the tags sent and a
    new ETag."""
    def patched(request):
        return 200, {}, dict(doc, tags=json.loads(request.body).get("tags"), etag='"%d"' % len(adapter.requests))
    adapter.route("PATCH", path + r"\?", [patched])
