"""Start, stop and connect: builds the emulator, serves it, writes env.sh / env.json when ready."""
import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time

from emulator import autoscale_engine, events
from emulator import identity as entra
from emulator.app import Emulator
from emulator.arm import ArmError, Response
from emulator.faults import Faults
from emulator.server import Pipeline, Server, start_timer_thread
from emulator.throttling import throttle as throttle_request
from emulator.traffic import Traffic

log = logging.getLogger("emulator")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SPECS = os.path.join(os.path.dirname(REPO), "shared", "azure-specs")


class IdentityService:
    """Adapts emulator.identity (Entra ID + ARM token checks) to the pipeline."""

    def __init__(self, ctx, signing_key, admin_token):
        self.ctx = ctx
        self.signing_key = signing_key
        self.admin_token = admin_token

    def handle_public(self, req):
        with self.ctx.lock:
            principals = self.ctx.principals()
        answer = entra.handle_identity(self.ctx.base_url, principals, self.signing_key, req)
        if answer is None:
            return None
        status, body, headers = answer
        return Response(status, body, headers)

    def authenticate(self, req):
        with self.ctx.lock:
            principals = self.ctx.principals()
        return entra.authenticate(self.ctx.base_url, principals, self.signing_key, req)

    def authorize(self, principal, action, scope):
        entra.authorize(principal, action, scope)

    def check_admin(self, req):
        if req.path == "/_emulator/health":
            return
        supplied = (req.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(supplied, self.admin_token):
            raise ArmError(401, "InvalidAdminToken", "The control API needs the emulator's admin token.")


def _secret(ctx, key, make):
    value = ctx.store.kv_get(key)
    if value is None:
        value = make()
        ctx.store.kv_set(key, value)
    return value


def _seed_principals(ctx):
    if not ctx.principals():
        ctx.store.kv_set("principals", entra.default_principals(ctx.subscription_id, ctx.tenant_id))


def _seed_fixture(path):
    def seed(ctx):
        from emulator.fixtures import apply_fixture
        apply_fixture(ctx, path)
    return seed


def build(state_dir, time_scale=None, page_size=None, spec_root=None, throttling=None, fixture=None,
          latest_model=None):
    """An Emulator with its providers loaded and state seeded; nothing listening yet."""
    from emulator import control  # noqa: F401  (registers control routes)
    from emulator.providers import load_all
    from emulator.specs import SpecIndex
    load_all()
    ctx = Emulator(state_dir, time_scale=time_scale, page_size=page_size, throttling=throttling,
                   latest_model=latest_model)
    autoscale_engine.install(ctx)
    ctx.engines.append(events.watch_health)
    root = spec_root or os.environ.get("FLEETOPS_AZURE_SPECS") or DEFAULT_SPECS
    specs = SpecIndex.load(root)
    ctx.specs = specs if specs.available else None
    if ctx.specs is None:
        log.warning("Azure specs not found at %s: requests are checked by the built-in rules only.", root)
    ctx.seeders.insert(0, _seed_principals)
    if fixture:
        ctx.seeders.append(_seed_fixture(fixture))
    ctx.seed()
    return ctx


def _profile_threads(path):
    """FLEETOPS_EMULATOR_PROFILE=<file>: cProfile every thread (requests, timers) and write their merged stats to
    <file> when the emulator stops (read with python -m pstats). For finding CPU hot spots; off otherwise."""
    import cProfile  # pylint: disable=import-outside-toplevel
    profiles = []
    lock = threading.Lock()

    def start(*_):
        sys.setprofile(None)
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(start)

    def dump():
        import pstats  # pylint: disable=import-outside-toplevel
        with lock:
            stats = pstats.Stats(profiles[0]) if profiles else None
            for profile in profiles[1:]:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(path)

    return dump


def serve(state_dir, port=0, time_scale=None, page_size=None, spec_root=None, throttling=None, fixture=None,
          ready=None, latest_model=None):
    from emulator.tls import ensure_certs, server_ssl_context
    dump_profile = _profile_threads(os.environ["FLEETOPS_EMULATOR_PROFILE"]) \
        if os.environ.get("FLEETOPS_EMULATOR_PROFILE") else None
    ctx = build(state_dir, time_scale, page_size, spec_root, throttling, fixture, latest_model)
    for stale in ("env.json", "env.sh"):
        if os.path.exists(os.path.join(ctx.state_dir, stale)):
            os.remove(os.path.join(ctx.state_dir, stale))
    signing_key = _secret(ctx, "signing_key", lambda: secrets.token_hex(32)).encode()
    admin_token = _secret(ctx, "admin_token", lambda: secrets.token_urlsafe(24))
    ctx.store.commit()
    tls = ensure_certs(ctx.state_dir)
    pipeline = Pipeline(ctx, IdentityService(ctx, signing_key, admin_token), Faults(), Traffic(),
                        throttle=throttle_request)
    server = Server(("127.0.0.1", int(port)), pipeline, server_ssl_context(tls))
    ctx.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    stop_timers, _ = start_timer_thread(ctx)
    env = connection_env(ctx, tls["ca"], admin_token)
    write_env(ctx.state_dir, env)
    with open(os.path.join(ctx.state_dir, "emulator.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    log.info("emulator ready at %s (time scale %s)", ctx.base_url, ctx.clock.time_scale)
    if ready:
        ready(ctx, server)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop_timers.set()
        server.server_close()
        with ctx.lock:
            ctx.store.close()
        if dump_profile:
            dump_profile()
        for name in ("emulator.pid", "env.json", "env.sh"):
            path = os.path.join(ctx.state_dir, name)
            if os.path.exists(path):
                os.remove(path)


def _raise_interrupt(*_):
    raise KeyboardInterrupt()


def connection_env(ctx, ca_path, admin_token):
    """Everything a client needs, under the names azure.azcollection / AWX / azure-identity use."""
    owner = next(p for p in ctx.principals() if p.get("role") == "Owner")
    return {
        "AZURE_CLOUD_ENVIRONMENT": f"{ctx.base_url}/metadata/endpoints?api-version=2022-09-01",
        "AZURE_SUBSCRIPTION_ID": ctx.subscription_id,
        "AZURE_CLIENT_ID": owner["client_id"],
        "AZURE_SECRET": owner["secret"],
        "AZURE_CLIENT_SECRET": owner["secret"],
        "AZURE_TENANT": ctx.tenant_id,
        "AZURE_TENANT_ID": ctx.tenant_id,
        "REQUESTS_CA_BUNDLE": ca_path,
        "SSL_CERT_FILE": ca_path,
        "FLEETOPS_EMULATOR_URL": ctx.base_url,
        "FLEETOPS_EMULATOR_CONTROL_URL": f"{ctx.base_url}/_emulator",
        "FLEETOPS_EMULATOR_ADMIN_TOKEN": admin_token,
        "FLEETOPS_EMULATOR_LOCATION": ctx.config["default_location"],
    }


def write_env(state_dir, env):
    """env.json then env.sh, each written atomically; env.json's presence means 'ready'."""
    for name, text in (("env.sh", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())),
                       ("env.json", json.dumps(env, indent=2) + "\n")):
        tmp = os.path.join(state_dir, name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, os.path.join(state_dir, name))


def start_background(state_dir, args, timeout=60):
    """Start `serve` detached; return its env once it is ready (env.json written)."""
    state_dir = os.path.abspath(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    running = read_pid(state_dir)
    if running:
        raise SystemExit(f"An emulator is already running for {state_dir} (pid {running}); stop it first.")
    env_json = os.path.join(state_dir, "env.json")
    if os.path.exists(env_json):
        os.remove(env_json)
    logfile = open(os.path.join(state_dir, "emulator.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--state-dir", state_dir] + args,
                            cwd=REPO, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(env_json):
            with open(env_json) as fh:
                return json.load(fh)
        if proc.poll() is not None:
            raise SystemExit(f"The emulator exited with {proc.returncode}; see {state_dir}/emulator.log.")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"The emulator did not become ready in {timeout}s; see {state_dir}/emulator.log.")


def read_pid(state_dir):
    path = os.path.join(state_dir, "emulator.pid")
    try:
        pid = int(open(path).read().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid):
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:   # our own child that has exited: reap it
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(state_dir, timeout=15):
    """Stop a background emulator cleanly (SIGTERM, then SIGKILL after `timeout`)."""
    pid = read_pid(os.path.abspath(state_dir))
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True
