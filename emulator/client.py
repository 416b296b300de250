"""A small client for the control API (tests, the demo and `python -m emulator ctl` use it)."""
import json
import os
import ssl
import urllib.error
import urllib.request


class ControlError(Exception):
    pass


class ControlClient:
    def __init__(self, control_url, admin_token, ca_path):
        self.control_url = control_url.rstrip("/")
        self.admin_token = admin_token
        self.context = ssl.create_default_context(cafile=ca_path)

    @classmethod
    def from_env(cls, env):
        return cls(env["FLEETOPS_EMULATOR_CONTROL_URL"], env["FLEETOPS_EMULATOR_ADMIN_TOKEN"],
                   env["REQUESTS_CA_BUNDLE"])

    @classmethod
    def from_state_dir(cls, state_dir):
        with open(os.path.join(state_dir, "env.json")) as fh:
            return cls.from_env(json.load(fh))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.control_url}/{path.lstrip('/')}", data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.admin_token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            raise ControlError(f"{method} {path}: {err.code} {err.read().decode(errors='replace')}") from None
        return json.loads(payload) if payload else None

    # conveniences used by tests and the demo
    def add_fault(self, **rule):
        return self.call("POST", "faults", rule)

    def clear_faults(self):
        return self.call("DELETE", "faults")

    def add_health_rule(self, **rule):
        return self.call("POST", "health-rules", rule)

    def clear_health_rules(self):
        return self.call("DELETE", "health-rules")

    def set_config(self, **changes):
        return self.call("PATCH", "config", changes)

    def traffic(self, since=0):
        return self.call("GET", f"traffic?since={since}")["value"]
