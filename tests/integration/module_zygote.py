# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the collection's modules as Ansible runs them, without the Ansible CLI (the integration harness's engine).

``python module_zygote.py COLLECTIONS_PATH SOCKET`` imports, once, what every module run imports (ansible's
module_utils, the Azure SDK, the collection's module_utils and modules, all from the installed collection), then
listens on the Unix socket SOCKET. Each connection carries one request (JSON): the module, its arguments (with the
``_ansible_*`` ones the controller adds), the environment, the working directory and the files for stdout/stderr.
The zygote forks a child for it and goes back to listening, so runs may overlap. The child takes the request's
environment, runs the module through ansible's own AnsiballZ loader (``basic._ANSIBLE_ARGS``, the module as
``__main__``), then answers on the connection with its exit code and the CPU seconds it used. Children share no
state: each is a fresh fork of a process that never ran a module.

It is also the Python of the playbooks that opt in (``Ansible.playbook(..., forked_modules=True)``): their
``ansible_python_interpreter`` is a small client (CLIENT below) that hands the zygote its argv (the AnsiballZ file
ansible-playbook wrote), environment, working directory and its stdin/stdout/stderr (SCM_RIGHTS), and exits with
the child's exit code. A ``{"stats": true}`` request answers the CPU seconds of the children reaped so far.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import runpy
import signal
import socket
import sys

TIMEOUT = 600  # as the CLI's subprocess timeout: a hung module is killed (SIGALRM) and the connection closes
# The interpreter of the playbooks that opt in (stdlib only, started with -S: a few milliseconds).
CLIENT = """import json, os, socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as zygote:
    zygote.connect(os.environ["FLEETOPS_ZYGOTE_SOCKET"])
    request = {"script": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}
    socket.send_fds(zygote, [json.dumps(request).encode() + b"\\n"], [0, 1, 2])
    answer = b"".join(iter(lambda: zygote.recv(65536), b""))
sys.exit(json.loads(answer)["rc"] if answer else 1)
"""
SDK_PACKAGES = ("azure.identity", "azure.mgmt.core", "azure.mgmt.compute", "azure.mgmt.compute.models",
                "azure.mgmt.monitor", "azure.mgmt.monitor.models", "azure.mgmt.network", "azure.mgmt.msi",
                "azure.mgmt.authorization", "azure.mgmt.imagebuilder")


def warm(collections):
    """Import what module runs import, so that each fork starts with it loaded."""
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils import basic  # noqa: F401  pylint: disable=unused-import
    from ansible.module_utils._internal._ansiballz import _loader  # noqa: F401  pylint: disable=unused-import
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder

    get_module_decoder("legacy", Direction.CONTROLLER_TO_MODULE)
    get_module_encoder("legacy", Direction.MODULE_TO_CONTROLLER)
    for package in SDK_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:  # a module needing it reports it, as it would under Ansible
            pass
    plugins = os.path.join(collections, "ansible_collections", "fleetops", "vmss", "plugins")
    for kind in ("module_utils", "modules"):
        for found in pkgutil.iter_modules([os.path.join(plugins, kind)]):
            importlib.import_module("ansible_collections.fleetops.vmss.plugins.%s.%s" % (kind, found.name))


def run(request, collections, fds):
    """In the forked child: the module's run (or the script's, with the client's stdio); its exit code."""
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils._internal._ansiballz import _loader

    signal.alarm(TIMEOUT)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    if "script" in request:
        for target, source in enumerate(fds):
            os.dup2(source, target)
            os.close(source)
    else:
        with open(os.devnull, "rb") as null, open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
            os.dup2(null.fileno(), 0)
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
    code = 0
    try:
        if "script" in request:  # an AnsiballZ file, as `python AnsiballZ_x.py` runs it
            sys.argv = list(request["script"])
            runpy.run_path(sys.argv[0], run_name="__main__")
        else:
            _loader.run_module(json_params=json.dumps({"ANSIBLE_MODULE_ARGS": request["args"]}).encode(),
                               profile="legacy", module_fqn=request["module"], modlib_path=collections, extensions={})
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
    except BaseException:  # pylint: disable=broad-exception-caught  # reported as a module failure
        code = 1
    try:
        atexit._run_exitfuncs()  # pylint: disable=protected-access  # what the interpreter's exit does: the module's tmpdir
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def reap(totals):
    """Reap the children that have ended, adding their CPU seconds to totals["cpu"]."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)  # pylint: disable=unused-variable
        except ChildProcessError:
            return
        if not pid:
            return
        totals["cpu"] += usage.ru_utime + usage.ru_stime


def serve(collections, path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    totals = {"cpu": 0.0}
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        connection, address = listener.accept()  # pylint: disable=unused-variable
        reap(totals)
        with connection:
            data, fds, flags, address = socket.recv_fds(connection, 1 << 20, 3)  # pylint: disable=unused-variable
            while data and not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data:  # the harness closing: stop
                return
            request = json.loads(data)
            if request.get("stats"):
                connection.sendall(json.dumps(totals).encode())
                continue
            if os.fork() == 0:
                listener.close()
                code = 1
                pid = os.getpid()
                try:
                    code = run(request, collections, fds)
                finally:
                    if os.getpid() == pid:  # not a process the module forked (async_wrapper daemonizes)
                        connection.sendall(json.dumps({"rc": code}).encode())
                    os._exit(code)  # pylint: disable=protected-access  # the zygote's atexit and buffers are not ours
            for descriptor in fds:
                os.close(descriptor)


def main():
    collections, path = sys.argv[1:3]
    sys.path[0] = collections  # not this directory: the module sees what AnsiballZ gives it
    warm(collections)
    serve(collections, path)


if __name__ == "__main__":
    main()
