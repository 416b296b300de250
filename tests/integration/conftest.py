# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration harness: real playbooks against the local Azure emulator.

One emulator per test session, started in a temporary state directory with time scaled by 0.01;
every test starts from an empty emulator (control API ``reset``). Playbooks run with
``ansible-playbook`` in a child process whose environment is the one the emulator wrote (env.json):
the cloud metadata URL, AWX-style credentials and the CA bundle. Single modules (``ansible.module``)
are forked, in that environment, from a per-worker zygote that has imported the SDK and the collection
once (module_zygote.py), as the ``ansible`` CLI would run them (FLEETOPS_MODULE_RUNNER=cli: the CLI).
Targets that test modules rather than a playbook (``playbook(..., forked_modules=True)``) have their module
runs forked from the zygote too; playbooks that are themselves the subject start a Python per module as always,
with a per-worker cache of AnsiballZ payloads and of the code compiled from them (ansiballz_cache/sitecustomize.py).
Under xdist each worker's next test is chosen from the tests' expected walls, longest first (schedule.py).
The terminal summary lists the tests that cost the most CPU, and the run's timeline.

The collection comes from FLEETOPS_COLLECTIONS_PATH when set (``make integration`` points it at
the built and installed artifact), else from this checkout through a symlink.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TARGETS = Path(__file__).resolve().parent / "targets"
ANSIBALLZ_CACHE = Path(__file__).resolve().parent / "ansiballz_cache"  # its sitecustomize.py, for ansible's processes
BIN = Path(sys.executable).parent
TIME_SCALE = "0.01"
START_TIMEOUT = 60

sys.path.insert(0, str(ROOT))  # the emulator package (its control client), and unit-test path setup
from tests.unit.conftest import _collections_root  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, str(_collections_root()))  # ansible_collections.fleetops.vmss, for seeding with our own factory

from ansible.release import __version__ as ANSIBLE_VERSION  # noqa: E402  pylint: disable=wrong-import-position

from tests.integration.module_zygote import CLIENT as ZYGOTE_CLIENT  # noqa: E402  pylint: disable=wrong-import-position
from tests.integration.schedule import LongestFirstScheduling  # noqa: E402  pylint: disable=wrong-import-position


def pytest_xdist_make_scheduler(config, log):
    """Each worker's next test chosen from the tests' expected walls, longest first (schedule.py)."""
    if config.getvalue("dist") == "load":
        return LongestFirstScheduling(config, log)
    return None


# --- Where the CPU goes: per test, the CPU seconds of the worker's children (ansible-playbook, ansible, the modules
# forked by the zygote; what they detach, e.g. async wrappers, is not counted), of the worker itself and of its emulator.
# Each worker attaches its figures to the teardown report (user_properties travel to the xdist controller); the
# controller prints the most expensive tests and the totals in the terminal summary and writes them as JSON to
# FLEETOPS_CPU_REPORT when set.
CPU_TOP = 15
_EMULATOR_PID = {}
_CPU = []  # controller side: one dict per test
_TICKS = os.sysconf("SC_CLK_TCK")
_CPU_START = pytest.StashKey[tuple]()


def _emulator_cpu():
    """The emulator's CPU seconds so far, with its pid (None before it started and after it stopped)."""
    pid = _EMULATOR_PID.get("pid")
    try:
        with open("/proc/%s/stat" % pid, encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None, 0.0
    return pid, (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


def _cpu_now():
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    zygote = _ZYGOTE.get("zygote")
    return (children.ru_utime + children.ru_stime + (zygote.cpu() if zygote else 0.0), own.ru_utime + own.ru_stime, _emulator_cpu(),
            time.monotonic(), time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item.stash[_CPU_START] = _cpu_now()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield
    start = item.stash.get(_CPU_START, None)
    if start:
        end = _cpu_now()
        same_emulator = start[2][0] is not None and start[2][0] == end[2][0]  # not the test that started/stopped it
        item.user_properties.append(("cpu", {"children": end[0] - start[0], "worker": end[1] - start[1],
                                             "emulator": end[2][1] - start[2][1] if same_emulator else 0.0,
                                             "wall": end[3] - start[3], "start": start[4], "end": end[4],
                                             "node": os.environ.get("PYTEST_XDIST_WORKER", "main")}))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        for key, value in report.user_properties:
            if key == "cpu":
                _CPU.append(dict(value, test=report.nodeid))


def pytest_terminal_summary(terminalreporter):
    if not _CPU:
        return
    for entry in _CPU:
        entry["total"] = entry["children"] + entry["worker"] + entry["emulator"]
    totals = {key: sum(entry[key] for entry in _CPU) for key in ("children", "worker", "emulator", "total", "wall")}
    write = terminalreporter.write_line
    terminalreporter.section("CPU seconds per test (ansible children + pytest worker + emulator)")
    write("%8s %8s %8s %8s %8s  %s" % ("total", "children", "worker", "emulator", "wall", "test"))
    for entry in sorted(_CPU, key=lambda entry: -entry["total"])[:CPU_TOP]:
        write("%8.1f %8.1f %8.1f %8.1f %8.1f  %s" % (entry["total"], entry["children"], entry["worker"],
                                                     entry["emulator"], entry["wall"], entry["test"]))
    write("%8.1f %8.1f %8.1f %8.1f %8.1f  all %d tests (wall: summed over workers)" % (
        totals["total"], totals["children"], totals["worker"], totals["emulator"], totals["wall"], len(_CPU)))
    shape = timeline(_CPU)
    write("timeline: %(span).0f s on %(workers)d workers, %(short).0f s of it with fewer tests running than workers; "
          "the first worker idle %(tail).0f s before the end" % shape)
    if os.environ.get("FLEETOPS_CPU_REPORT"):
        report = json.dumps({"totals": totals, "timeline": shape, "tests": _CPU}, indent=1)
        Path(os.environ["FLEETOPS_CPU_REPORT"]).write_text(report, encoding="utf-8")


def timeline(entries):
    """The run's span, its workers, how long fewer tests than workers ran (the tail, and any gaps), and how long
    before the end the first worker ran out of tests."""
    events = sorted([(entry["start"], 1) for entry in entries] + [(entry["end"], -1) for entry in entries])
    workers = len({entry["node"] for entry in entries})
    short, running = 0.0, 0
    for (when, change), (after, _change) in zip(events, events[1:]):
        running += change
        short += (after - when) if running < workers else 0.0
    last_end = {}
    for entry in entries:
        last_end[entry["node"]] = max(last_end.get(entry["node"], 0.0), entry["end"])
    return {"span": events[-1][0] - events[0][0], "workers": workers, "short": short,
            "tail": events[-1][0] - min(last_end.values())}


def _emulator_command(*args):
    return [sys.executable, "-m", "emulator", *args]


@pytest.fixture(scope="session")
def emulator():
    """The emulator's env.json as a dict, for the whole session; stopped at the end whatever happens."""
    if not (ROOT / "emulator" / "__main__.py").exists():
        pytest.fail("the emulator package (emulator/) is missing from this checkout")
    state_dir = tempfile.mkdtemp(prefix="fleetops-emulator-")
    started = subprocess.run(
        _emulator_command("serve", "--state-dir", state_dir, "--time-scale", TIME_SCALE, "--port", "0", "--background"),
        cwd=ROOT, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    env_file = Path(state_dir) / "env.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not env_file.exists() and time.monotonic() < deadline and started.returncode == 0:
            time.sleep(0.1)
        if started.returncode != 0 or not env_file.exists():
            pytest.fail("emulator did not start (exit %s): %s%s" % (started.returncode, started.stdout, started.stderr))
        pid_file = Path(state_dir) / "emulator.pid"  # written just after env.json
        while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text().strip()):
            time.sleep(0.05)
        _EMULATOR_PID["pid"] = pid_file.read_text().strip() if pid_file.exists() else None
        yield json.loads(env_file.read_text())
    finally:
        _EMULATOR_PID.clear()
        subprocess.run(_emulator_command("stop", "--state-dir", state_dir), cwd=ROOT, capture_output=True,
                       timeout=START_TIMEOUT, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def control(emulator):
    from emulator.client import ControlClient  # pylint: disable=import-outside-toplevel

    return ControlClient.from_env(emulator)


@pytest.fixture(autouse=True)
def clean_emulator(request):
    """Each test starts with no resources, faults or rules (only for tests that use the emulator)."""
    if "emulator" in request.fixturenames:
        client = request.getfixturevalue("control")
        client.call("POST", "reset")
        client.clear_faults()


@pytest.fixture(scope="session")
def ansible_env(emulator, tmp_path_factory):
    """Environment of ansible-playbook / ansible: the emulator's variables, our collection, no user config."""
    collections = os.environ.get("FLEETOPS_COLLECTIONS_PATH") or str(_collections_root())
    config = tmp_path_factory.mktemp("ansible-config") / "ansible.cfg"
    config.write_text("[defaults]\n")  # nothing from the machine's or this checkout's ansible.cfg
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "ANSIBLE_"))}
    env.update(emulator)
    env.update({
        "PATH": str(BIN) + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "HOME": str(tmp_path_factory.mktemp("home")),  # no ~/.azure/credentials or ~/.ansible of the machine's user
        "ANSIBLE_LOCAL_TEMP": str(tmp_path_factory.mktemp("ansible-tmp")),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        # each module's AnsiballZ payload built, and its sources compiled, once per worker (see the sitecustomize)
        "FLEETOPS_ANSIBALLZ_CACHE": str(tmp_path_factory.mktemp("ansiballz")),
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ANSIBALLZ_CACHE), env.get("PYTHONPATH")))),
    })
    return env


# How Ansible.module() runs a module: "fork" (default) forks it from this worker's zygote (module_zygote.py), which
# has already imported the SDK and the installed collection; "cli" runs ``ansible localhost -m`` as before.
MODULE_RUNNER = os.environ.get("FLEETOPS_MODULE_RUNNER", "fork")
_ZYGOTE = {}  # this worker's zygote, for the CPU report (its children are not this worker's)


class Zygote:
    """This worker's module_zygote.py process: one Unix-socket connection per module run."""

    def __init__(self, env, collections, directory):
        self.socket_path = str(directory / "zygote.sock")
        # the interpreter of playbooks whose modules are forked too (a stdlib-only client: python -S)
        self.interpreter = directory / "python"
        self.interpreter.write_text("#!%s -S\n%s" % (sys.executable, ZYGOTE_CLIENT))
        self.interpreter.chmod(0o755)
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped by close()
            [sys.executable, str(Path(__file__).resolve().parent / "module_zygote.py"), collections, self.socket_path],
            env=env, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        assert ready == "ready\n", "the module zygote did not start (exit %s)" % self.process.poll()

    def run(self, request):
        """The child's answer ({"rc": ..}), or None when it died without answering."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(660)  # the zygote kills a module run after 600 s (the CLI's timeout)
            connection.connect(self.socket_path)
            connection.sendall(json.dumps(request).encode() + b"\n")
            answer = b"".join(iter(lambda: connection.recv(65536), b""))
        return json.loads(answer) if answer else None

    def cpu(self):
        """CPU seconds of the zygote's children that have ended."""
        try:
            answer = self.run({"stats": True})
        except OSError:  # the zygote is gone: the tests that need it say so, the report does not
            return 0.0
        return answer["cpu"] if answer else 0.0

    def close(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.socket_path)  # an empty request: the zygote stops
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def cli_result(name, code, stdout, stderr):
    """(exit code, result) as ``ansible localhost -m`` with the tree callback gives them for a module's output: the
    task failed -> 2; the result without what the callback drops (failed, skipped, _ansible_*, invocation, diff,
    deprecations), ``changed`` defaulted to false. ``warnings`` and ``exception`` are kept, unlike the tree file:
    they are the module's own output, and tests assert a module warns of nothing or raised no traceback."""
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils.json_utils import _filter_non_json_lines
    from ansible.vars.clean import strip_internal_keys

    try:
        result = json.loads(_filter_non_json_lines(stdout)[0])
    except ValueError:
        result = {"failed": True, "msg": "Module result deserialization failed (fleetops.vmss.%s)" % name,
                  "module_stdout": stdout, "module_stderr": stderr, "rc": code}
    failed = result.get("failed", "rc" in result and result["rc"] not in (0, "0"))
    result.setdefault("changed", False)
    result = strip_internal_keys(result)
    for key in ("failed", "skipped", "invocation", "diff", "deprecations"):
        result.pop(key, None)
    return (2 if failed else 0), result


class Ansible:
    """Runs targets (tests/integration/targets/<name>/tasks/main.yml) and single modules."""

    def __init__(self, env, workdir, zygote=None):
        self.env = env
        self.workdir = workdir
        self.zygote = zygote

    def playbook(self, target, extra_vars=None, env=None, *, forked_modules=False):
        """Run one target as a role on localhost; returns the CompletedProcess (stdout has the log).

        ``forked_modules``: for targets that test modules, not the playbook around them: ansible-playbook runs as
        always, but its module runs (the AnsiballZ files it writes) are forked from the zygote instead of each
        starting a Python that imports the SDK (not with FLEETOPS_MODULE_RUNNER=cli)."""
        playbook = self.workdir / ("%s.yml" % target)
        playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                                             "roles": [str(TARGETS / target)]}]))
        command = ["ansible-playbook", str(playbook), "-e", json.dumps(extra_vars or {})]
        forked = {}
        if forked_modules and self.zygote:  # an extra var: implicit localhost's interpreter is ansible_playbook_python
            command += ["-e", json.dumps({"ansible_python_interpreter": str(self.zygote.interpreter)})]
            forked = {"FLEETOPS_ZYGOTE_SOCKET": self.zygote.socket_path}
        return subprocess.run(command, env=dict(self.env, **forked, **(env or {})), cwd=self.workdir, capture_output=True,
                              text=True, timeout=600, check=False)

    def module(self, name, args, env=None, check=False, *, cli=False):
        """Run module fleetops.vmss.<name> on localhost as ``ansible localhost -m`` does (``--check`` with ``check``);
        returns (exit code, the module's result dict), as the CLI gives them. Forked from the zygote unless ``cli``
        (or FLEETOPS_MODULE_RUNNER=cli): then the ansible CLI itself."""
        if cli or self.zygote is None:
            return self.module_cli(name, args, env, check)
        tmp = Path(tempfile.mkdtemp(dir=self.workdir))
        (tmp / "module-tmp").mkdir()
        # The arguments the controller adds (ActionBase._update_module_args), as `ansible localhost -m` sets them.
        internal = {"_ansible_check_mode": check, "_ansible_no_log": False, "_ansible_debug": False, "_ansible_diff": False,
                    "_ansible_verbosity": 0, "_ansible_version": ANSIBLE_VERSION, "_ansible_module_name": "fleetops.vmss." + name,
                    "_ansible_syslog_facility": "LOG_USER", "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
                    "_ansible_socket": None, "_ansible_shell_executable": "/bin/sh", "_ansible_keep_remote_files": False,
                    "_ansible_tmpdir": str(tmp / "module-tmp") + "/", "_ansible_remote_tmp": "~/.ansible/tmp",
                    "_ansible_ignore_unknown_opts": False, "_ansible_target_log_info": None, "_ansible_tracebacks_for": []}
        answer = self.zygote.run({"module": "ansible_collections.fleetops.vmss.plugins.modules." + name,
                                  "args": dict(args, **internal), "env": dict(self.env, **(env or {})),
                                  "cwd": str(self.workdir), "stdout": str(tmp / "stdout"), "stderr": str(tmp / "stderr")})
        stdout = (tmp / "stdout").read_text(errors="replace")
        stderr = (tmp / "stderr").read_text(errors="replace")
        shutil.rmtree(tmp / "module-tmp", ignore_errors=True)  # as the controller removes its tmpdir
        return cli_result(name, answer["rc"] if answer else -signal.SIGKILL, stdout, stderr)

    def module_cli(self, name, args, env=None, check=False):
        """Run ``ansible localhost -m fleetops.vmss.<name>`` (``--check`` with ``check``); returns (exit code,
        the module's result dict)."""
        tree = Path(tempfile.mkdtemp(dir=self.workdir))
        extra = {"ANSIBLE_LOAD_CALLBACK_PLUGINS": "true", "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.tree",
                 "ANSIBLE_CALLBACK_TREE_DIR": str(tree)}
        command = ["ansible", "localhost", "-m", "fleetops.vmss.%s" % name, "-a", json.dumps(args)] + (
            ["--check"] if check else [])
        completed = subprocess.run(command, env=dict(self.env, **extra, **(env or {})), cwd=self.workdir,
                                   capture_output=True, text=True, timeout=600, check=False)
        result_file = tree / "localhost"
        assert result_file.exists(), completed.stdout + completed.stderr
        return completed.returncode, json.loads(result_file.read_text())


@pytest.fixture(scope="session")
def module_zygote(ansible_env, tmp_path_factory):
    """This worker's zygote (None with FLEETOPS_MODULE_RUNNER=cli), stopped at the end of the session."""
    if MODULE_RUNNER == "cli":
        yield None
        return
    zygote = Zygote(ansible_env, ansible_env["ANSIBLE_COLLECTIONS_PATH"], tmp_path_factory.mktemp("zygote"))
    _ZYGOTE["zygote"] = zygote
    try:
        yield zygote
    finally:
        _ZYGOTE.clear()
        zygote.close()


@pytest.fixture
def ansible(ansible_env, module_zygote, tmp_path):
    return Ansible(ansible_env, tmp_path, module_zygote)


@pytest.fixture(scope="session")
def azure(emulator):
    """The collection's own client factory against the emulator, for seeding state before a test."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.fleetops.vmss.plugins.module_utils._auth import (
        build_credential, resolve_cloud, resolve_settings)
    from ansible_collections.fleetops.vmss.plugins.module_utils._client import ClientFactory, Tuning

    settings = resolve_settings({}, emulator, credentials_file=os.devnull)
    cloud = resolve_cloud(settings.cloud_environment, settings.connection_verify)
    return ClientFactory(build_credential(settings, cloud), cloud, settings.subscription_id,
                         settings.connection_verify, Tuning(polling_interval=0.05))


def put_resource_group(azure, name, location):
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    request = HttpRequest("PUT", "/subscriptions/%s/resourcegroups/%s?api-version=2021-04-01" % (azure.subscription_id, name),
                          json={"location": location})
    response = azure.client("compute").send_request(request)
    response.raise_for_status()
    return response.json()


def require_success(completed):
    assert completed.returncode == 0, "ansible-playbook failed (rc %s):\n%s\n%s" % (
        completed.returncode, completed.stdout[-6000:], completed.stderr[-3000:])


_LAST_SEQ = {"seq": 0}


def last_seq(control):
    """The newest entry of the emulator's traffic log (reading only what came since the last call)."""
    for entry in control.traffic(_LAST_SEQ["seq"]):
        _LAST_SEQ["seq"] = max(_LAST_SEQ["seq"], entry["seq"])
    return _LAST_SEQ["seq"]


def arm_writes(control, since):
    """ARM writes (PUT, PATCH, POST, DELETE under /subscriptions/) the emulator answered after ``since``."""
    return [entry for entry in control.traffic(since)
            if entry["liveRequest"]["method"] in ("PUT", "PATCH", "POST", "DELETE")
            and "/subscriptions/" in entry["liveRequest"]["url"]]


def arm_put(azure, path, body, api_version):
    """PUT any ARM resource through the compute client's pipeline (for seeding: networks, ...)."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = azure.client("compute").send_request(
        HttpRequest("PUT", "%s?api-version=%s" % (path, api_version), json=body))
    response.raise_for_status()
    return response.json()


def uniform_scale_set(location, image_reference, capacity):
    """The body of a Uniform scale set in Manual upgrade mode, with one NIC and the Application Health extension."""
    return {
        "location": location, "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "properties": {
            "orchestrationMode": "Uniform", "overprovision": False, "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": image_reference},
                "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser",
                              "adminPassword": "Sup3r-secret!"},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "ipConfigurations": [{"name": "ip", "properties": {"primary": True}}]}}]},
                "extensionProfile": {"extensions": [{"name": "HealthExtension", "properties": {
                    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                    "typeHandlerVersion": "2.0", "settings": {"protocol": "http", "port": 80,
                                                              "requestPath": "/ready"}}}]},
            }}}


def seed_network(azure, rg, location):
    """A virtual network with two subnets and a load balancer (pool, probe) in ``rg``; their ids."""
    net = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network" % (azure.subscription_id, rg)
    arm_put(azure, net + "/virtualNetworks/vnet", {"location": location, "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/8"]},
        "subnets": [{"name": "app", "properties": {"addressPrefix": "10.1.0.0/16"}},
                    {"name": "app2", "properties": {"addressPrefix": "10.2.0.0/16"}}]}}, "2024-05-01")
    arm_put(azure, net + "/loadBalancers/lb", {"location": location, "properties": {
        "backendAddressPools": [{"name": "pool"}],
        "probes": [{"name": "probe", "properties": {"protocol": "Http", "port": 80, "requestPath": "/ready"}}]}},
        "2024-05-01")
    return {"subnet_id": net + "/virtualNetworks/vnet/subnets/app", "subnet2_id": net + "/virtualNetworks/vnet/subnets/app2",
            "pool_id": net + "/loadBalancers/lb/backendAddressPools/pool", "probe_id": net + "/loadBalancers/lb/probes/probe"}


FEATURES_API_VERSION = "2021-07-01"
IMAGE_UPGRADE_FEATURE = "ImageReferenceUpgradeForVmoVMs"


def feature_state(azure, feature=IMAGE_UPGRADE_FEATURE, namespace="Microsoft.Compute"):
    """The registration state of a subscription feature (Features - Get), or None when it is not found."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = azure.client("compute").send_request(HttpRequest(
        "GET", "/subscriptions/%s/providers/Microsoft.Features/providers/%s/features/%s?api-version=%s"
        % (azure.subscription_id, namespace, feature, FEATURES_API_VERSION)))
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()["properties"]["state"]


def register_feature(azure, feature=IMAGE_UPGRADE_FEATURE, namespace="Microsoft.Compute", timeout=60):
    """Register a subscription feature as an operator would (Features - Register, then wait until Registered):
    manual upgrades of Flexible instances to a new image need ImageReferenceUpgradeForVmoVMs."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = azure.client("compute").send_request(HttpRequest(
        "POST", "/subscriptions/%s/providers/Microsoft.Features/providers/%s/features/%s/register?api-version=%s"
        % (azure.subscription_id, namespace, feature, FEATURES_API_VERSION)))
    response.raise_for_status()
    deadline = time.monotonic() + timeout
    while feature_state(azure, feature, namespace) != "Registered":
        assert time.monotonic() < deadline, "feature %s/%s was not Registered within %s s" % (namespace, feature, timeout)
        time.sleep(0.1)
