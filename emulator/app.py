"""The emulator's state and services: the `ctx` every handler and timer receives."""
import os
import random
import threading
import uuid

from emulator.arm import ArmError, retry_after
from emulator.clock import DURATIONS, Clock
from emulator.store import Store

TIMERS = {}
START_HOOKS = []

# Retry-After (realistic seconds) of the first InProgress poll of a Compute operation: recorded 35-61 s.
FIRST_POLL_RETRY_AFTER = (35, 61)


def on_start(fn):
    """Register `fn(ctx)` to run when an Emulator is built (providers wire their ctx hooks with it)."""
    START_HOOKS.append(fn)
    return fn


def timer(name):
    """Register `fn(ctx, payload)` to run when a timer of this name falls due (restart-safe)."""
    def register(fn):
        TIMERS[name] = fn
        return fn
    return register


class Config:
    """Settings that survive a restart (kept in kv 'config'); CLI flags override at start."""
    DEFAULTS = {
        "time_scale": 1.0,
        "jitter": 0.0,
        "seed": None,
        "page_size": 100,
        "throttling": True,
        "throttle_scale": 1.0,          # multiplies every Compute throttling budget (tests shrink them)
        "latest_model": "generation",       # how latestModelApplied is judged: "generation" (Azure) | "content"
        # Retry-After of operation polls: "recorded" (Azure: 35-61 s on the first InProgress answer, then none) |
        # "lro_poll" (every InProgress answer asks lro_poll: a quicker clock for benches that compare the two)
        "poll_retry_after": "recorded",
        "subscription_id": "4f1c9c2e-5b4a-4b8e-9a51-1d2f3c4b5a60",
        "tenant_id": "7d3b2a91-8c4e-4f1a-b6d2-0e9f8a7c6b51",
        "default_location": "westeurope",
    }




class Operations:
    """Async operations (the resource behind Azure-AsyncOperation / Location headers)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def start(self, location, resource_id, kind, namespace="Microsoft.Compute"):
        op_id = str(uuid.uuid4())
        op = {"id": op_id, "name": op_id, "status": "InProgress", "startTime": self.ctx.clock.iso(),
              "location": location, "resourceId": resource_id, "kind": kind, "namespace": namespace}
        self.ctx.store.kv_set("op:" + op_id, op)
        return op

    def get(self, op_id):
        return self.ctx.store.kv_get("op:" + op_id)

    def finish(self, op_id, status="Succeeded", error=None, output=None):
        op = self.get(op_id)
        if op is None or op["status"] != "InProgress":
            return op
        op["status"] = status
        op["endTime"] = self.ctx.clock.iso()
        if error:
            op["error"] = error
        if output is not None:
            op["output"] = output
        self.ctx.store.kv_set("op:" + op_id, op)
        return op

    def url(self, op, monitor=False):
        """The operation's status URL (Azure-AsyncOperation); with `monitor` its Location URL, the same
        resource with ?monitor=true, as Compute sends it."""
        base = self.ctx.base_url
        sub = self.ctx.subscription_id
        query = ("monitor=true&" if monitor else "") + f"api-version={self.ctx.request_api_version or '2024-07-01'}"
        return (f"{base}/subscriptions/{sub}/providers/{op['namespace']}/locations/{op['location']}"
                f"/operations/{op['id']}?{query}")

    def lro_headers(self, op, location_header=True):
        """The headers of the answer that starts an operation. Recorded from Compute: PUT (201) / PATCH (200)
        of a scale set send Azure-AsyncOperation and `Retry-After: 10`, no Location; POST actions and DELETE
        (202) also send Location (.../operations/{id}?monitor=true). Retry-After is scaled (arm.retry_after)."""
        headers = {"Azure-AsyncOperation": self.url(op)}
        headers.update(retry_after(self.ctx.duration("lro_poll")))
        if location_header:
            headers["Location"] = self.url(op, monitor=True)
        return headers

    def poll_headers(self, op):
        """Retry-After of a status poll: the first InProgress answer asks for 35-61 s (recorded), drawn from a
        generator seeded with the operation id (the same operation always answers the same); later
        InProgress answers and finished operations carry none, as recorded (clients then poll at their
        own interval). Config poll_retry_after "lro_poll": every InProgress answer asks lro_poll instead."""
        if op["status"] != "InProgress":
            return {}
        if self.ctx.config.get("poll_retry_after") == "lro_poll":
            return retry_after(self.ctx.duration("lro_poll"))
        polls = op.get("polls", 0)
        op["polls"] = polls + 1
        self.ctx.store.kv_set("op:" + op["id"], op)
        if polls:
            return {}
        return retry_after(self.ctx.clock.scaled(random.Random(op["id"]).randint(*FIRST_POLL_RETRY_AFTER)))


class Emulator:
    def __init__(self, state_dir, time_scale=None, page_size=None, spec_root=None, throttling=None,
                 latest_model=None):
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.store = Store(os.path.join(self.state_dir, "state.db"))
        self.lock = threading.RLock()
        config = dict(Config.DEFAULTS)
        config.update(self.store.kv_get("config", {}))
        for key, value in (("time_scale", time_scale), ("page_size", page_size), ("throttling", throttling),
                           ("latest_model", latest_model)):
            if value is not None:
                config[key] = value
        self.store.kv_set("config", config)
        self.store.commit()
        self.config = config
        self.clock = Clock(config["time_scale"], config["jitter"], config["seed"])
        self.ops = Operations(self)
        self.base_url = None            # set by the server once it knows its port
        self.spec_root = spec_root
        self.specs = None               # emulator.specs.SpecIndex, loaded by the server
        self.request_api_version = None  # api-version of the request being served (for links)
        self.engines = []               # callables(ctx, now) run before each request (part 2)
        self.seeders = []               # callables(ctx) that seed state at start and after a reset
        self.delete_hooks = []          # callables(ctx, resource_group_id) run before a group is deleted
        self.subnet_users = []          # callables(ctx, subnet_id) -> name of a user of the subnet, or None
        self.pool_members = []          # callables(ctx, backend_pool_id) -> [ip configuration ids]
        self.nat_pool_members = []      # callables(ctx, inbound_nat_pool_id) -> [(instance id, ip configuration id)]
        self.nic_sources = []           # callables(ctx, resource_group_id) -> [networkInterfaces documents]
        for hook in START_HOOKS:
            hook(self)

    # --- configuration --------------------------------------------------------------------------

    @property
    def subscription_id(self):
        return self.config["subscription_id"]

    @property
    def tenant_id(self):
        return self.config["tenant_id"]

    @property
    def page_size(self):
        return int(self.config["page_size"])

    def set_config(self, **changes):
        self.config.update(changes)
        self.store.kv_set("config", self.config)
        self.clock = Clock(self.config["time_scale"], self.config["jitter"], self.config["seed"])

    def duration(self, name):
        return self.clock.duration(name)

    def principals(self):
        return self.store.kv_get("principals", [])

    def seed(self):
        for seeder in self.seeders:
            seeder(self)
        self.store.commit()

    # --- timers ---------------------------------------------------------------------------------

    def schedule(self, delay, name, payload=None):
        """Run timer `name` `delay` (already scaled) seconds from now."""
        if name not in TIMERS:
            raise KeyError(f"no timer registered as {name!r}")
        return self.store.add_timer(self.clock.now() + max(delay, 0.0), name, payload or {})

    def advance(self, now=None):
        """Fire every due timer in due order; timers may schedule more (those fire too when due)."""
        now = self.clock.now() if now is None else now
        fired = 0
        while True:
            item = self.store.pop_due_timer(now)
            if item is None:
                break
            _due, name, payload = item
            handler = TIMERS.get(name)
            if handler is not None:
                handler(self, payload)
            fired += 1
        for engine in self.engines:
            engine(self, now)
        return fired

    def next_due(self):
        return self.store.next_timer_due()

    # --- helpers for providers ------------------------------------------------------------------

    def require_resource_group(self, subscription, rg):
        from emulator.arm import resource_group_id
        if not self.store.exists(resource_group_id(subscription, rg)):
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")

    KEPT_ON_RESET = ("config", "principals", "signing_key", "admin_token")

    def reset(self):
        """Forget every resource, rule and timer; keep settings and credentials (env.json stays valid)."""
        kept = {key: self.store.kv_get(key) for key in self.KEPT_ON_RESET}
        self.store.reset()
        for key, value in kept.items():
            if value is not None:
                self.store.kv_set(key, value)
        config = self.config
        self.clock = Clock(config["time_scale"], config["jitter"], config["seed"])


__all__ = ["Emulator", "timer", "TIMERS", "DURATIONS"]
