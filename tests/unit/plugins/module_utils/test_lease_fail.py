# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_lease: a lease read or write that fails says, as AzureModule.fail_from does, whether the failure was a fault
that outlasted the retries (transient: an interruption the roles never judge) or Azure's answer."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from ansible_collections.fleetops.vmss.plugins.module_utils import _lease


class Failed(Exception):
    pass


class Module:
    def __init__(self):
        self.params = {"wait_sleep": 0.01, "force_lease": False}
        self.check_mode = False
        self.on_exit = []

    def fail_json(self, msg, **result):
        raise Failed(msg, result)


def http_error(status, code):
    error = HttpResponseError(message="%s: answered %d" % (code, status))
    error.status_code = status
    return error


class ScaleSets:
    """A scale set free of any lease whose GET or tags PATCH fails with ``get_error`` / ``patch_error``."""

    def __init__(self, get_error=None, patch_error=None):
        self.get_error, self.patch_error = get_error, patch_error

    def get(self, _group, _name):
        if self.get_error:
            raise self.get_error
        return Doc({"name": "api", "etag": '"1"', "tags": {}})

    def begin_update(self, *_args, **_kwargs):
        raise self.patch_error


class Doc(dict):
    def as_dict(self):
        return dict(self)


class Compute:
    def __init__(self, **errors):
        self.virtual_machine_scale_sets = ScaleSets(**errors)


@pytest.mark.parametrize("errors, transient", [
    ({"patch_error": http_error(503, "ServerBusy")}, True),
    ({"patch_error": http_error(429, "TooManyRequests")}, True),
    ({"get_error": http_error(500, "InternalServerError")}, True),
    ({"patch_error": http_error(403, "AuthorizationFailed")}, False),
    ({"get_error": http_error(400, "InvalidParameter")}, False),
])
def test_a_failed_lease_request_says_whether_it_was_a_fault(errors, transient):
    with pytest.raises(Failed) as caught:
        _lease.take(Module(), Compute(**errors), "rollout", [("rg", "api")], {"status": "in_progress"})
    msg, result = caught.value.args
    assert msg.startswith("Failed to ") and "scale set rg/api" in msg
    assert result.get("transient", False) is transient and ("transient" in result) == transient
    assert result["status"] == "in_progress" and "lease" in result
