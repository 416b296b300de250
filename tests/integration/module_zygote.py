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
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import resource
import signal
import socket
import sys

TIMEOUT = 600  # as the CLI's subprocess timeout: a hung module is killed (SIGALRM) and the connection closes
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


def run(request, collections):
    """In the forked child: the module's run; never returns."""
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils._internal._ansiballz import _loader

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote reaps by ignoring; the module may wait on its own
    signal.alarm(TIMEOUT)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    with open(os.devnull, "rb") as null, open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        os.dup2(null.fileno(), 0)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    code = 0
    try:
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
    used = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return code, sum(usage.ru_utime + usage.ru_stime for usage in used)


def serve(collections, path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; they answer themselves
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        connection, address = listener.accept()  # pylint: disable=unused-variable
        with connection:
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data:  # the harness closing: stop
                return
            if os.fork() == 0:
                listener.close()
                code, cpu = 1, 0.0
                try:
                    code, cpu = run(json.loads(data), collections)
                finally:
                    connection.sendall(json.dumps({"rc": code, "cpu": cpu}).encode())
                    os._exit(0)  # pylint: disable=protected-access  # the zygote's atexit and buffers are not ours


def main():
    collections, path = sys.argv[1:3]
    sys.path[0] = collections  # not this directory: the module sees what AnsiballZ gives it
    warm(collections)
    serve(collections, path)


if __name__ == "__main__":
    main()
