"""Fixtures: one emulator process per test session (time scale 0.01, pages of 5), real SDK clients."""
import fcntl
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from emulator import main as runtime  # noqa: E402
from emulator.client import ControlClient  # noqa: E402

TIME_SCALE = 0.01
PAGE_SIZE = 5


class Emu:
    """A running emulator: its env, control client, and helpers to talk ARM with and without the SDK."""

    def __init__(self, state_dir, env):
        self.state_dir = state_dir
        self.env = env
        self.url = env["FLEETOPS_EMULATOR_URL"]
        self.subscription_id = env["AZURE_SUBSCRIPTION_ID"]
        self.location = env["FLEETOPS_EMULATOR_LOCATION"]
        self.control = ControlClient.from_env(env)
        self._ssl = ssl.create_default_context(cafile=env["REQUESTS_CA_BUNDLE"])
        self._tokens = {}

    def credential(self, client_id=None, secret=None):
        from azure.identity import ClientSecretCredential
        return ClientSecretCredential(self.env["AZURE_TENANT"], client_id or self.env["AZURE_CLIENT_ID"],
                                      secret or self.env["AZURE_SECRET"], authority=self.url,
                                      disable_instance_discovery=True,
                                      connection_verify=self.env["REQUESTS_CA_BUNDLE"])

    def sdk_kwargs(self, credential=None):
        return dict(credential=credential or self.credential(), subscription_id=self.subscription_id,
                    base_url=self.url, credential_scopes=[self.url + "/.default"],
                    connection_verify=self.env["REQUESTS_CA_BUNDLE"], polling_interval=0.05)

    def compute(self, credential=None, **kwargs):
        from azure.mgmt.compute import ComputeManagementClient
        return ComputeManagementClient(**self.sdk_kwargs(credential), **kwargs)

    def token(self, client_id=None, secret=None):
        key = (client_id, secret)
        if key not in self._tokens:
            self._tokens[key] = self.credential(client_id, secret).get_token(self.url + "/.default").token
        return self._tokens[key]

    def arm(self, method, path, body=None, api_version="2024-07-01", headers=None, token=None, raw_query=None):
        """Raw ARM call: returns (status, body, headers). `path` may already hold a query string."""
        sep = "&" if "?" in path else "?"
        url = self.url + path + (f"{sep}api-version={api_version}" if api_version else "")
        if raw_query:
            url += ("&" if "?" in url else "?") + raw_query
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token is not False:
            request.add_header("Authorization", f"Bearer {token or self.token()}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=60) as response:
                payload = response.read()
                return response.status, (json.loads(payload) if payload else None), dict(response.headers)
        except urllib.error.HTTPError as err:
            payload = err.read()
            return err.code, (json.loads(payload) if payload else None), dict(err.headers)

    def traffic_mark(self):
        """The sequence number of the last recorded request: pass it as `since` to see only what follows."""
        entries = self.control.traffic()
        return entries[-1]["seq"] if entries else 0

    def rg(self, name, location=None):
        status, body, _ = self.arm("PUT", f"/subscriptions/{self.subscription_id}/resourcegroups/{name}",
                                   {"location": location or self.location}, api_version="2021-04-01")
        assert status in (200, 201), body
        return body


def start(state_dir, *extra):
    env = runtime.start_background(str(state_dir), ["--time-scale", str(TIME_SCALE),
                                                    "--page-size", str(PAGE_SIZE), *extra])
    return Emu(str(state_dir), env)


@pytest.fixture(scope="session")
def emu(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("emulator")
    instance = start(state_dir, "--no-throttling")
    yield instance
    shared = os.environ.get("FLEETOPS_TRAFFIC_DIR")
    if shared:   # keep this worker's traffic for the oav run that follows (see test_zz_oav.py)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        exported = instance.control.call("POST", "traffic/export", {"dir": os.path.join(shared, worker)})
        index = os.path.join(shared, "specs.json")
        with open(index + ".lock", "w") as lock:    # the workers end together: one read-update-write at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = json.load(open(index)) if os.path.exists(index) else {}
            known.update({os.path.basename(folder): spec for spec, folder in exported["folders"].items()})
            with open(index, "w") as fh:
                json.dump(known, fh)
    runtime.stop(str(state_dir))


@pytest.fixture
def clean(emu):
    """A clean slate: no resources, rules or faults (credentials and settings kept)."""
    emu.control.call("POST", "reset")
    emu.control.set_config(time_scale=TIME_SCALE, page_size=PAGE_SIZE, latest_model="generation")
    return emu


# Started first so that no worker is left with it at the end: the replay waits ~35 s on the scaled clock.
RUN_FIRST = ("test_conformance.py",)


def pytest_collection_modifyitems(items):
    """The longest tests first; the oav check reads the whole session's traffic, so it runs after every other test."""
    items.sort(key=lambda item: ("test_zz_oav" in item.nodeid, item.path.name not in RUN_FIRST))
