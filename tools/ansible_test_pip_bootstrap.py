#!/usr/bin/env python3
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let ansible-test bootstrap pip in its sanity virtualenvs from PyPI alone.

ansible-test creates each sanity-test virtualenv without pip, then downloads a get-pip.py from
ci-files.testing.ansible.com, a host that is not reachable everywhere (here only package
registries are). It first looks for ~/.ansible/test/cache/get_pip_<version>.py, a cache that its
own error message invites to fill by hand; we fill it with a stand-in that installs Python's
bundled pip (ensurepip, no network) and then runs `pip install` with the arguments that
get-pip.py would have received (for example pip==24.2), from the configured package index.
An existing file (a real get-pip.py) is left alone.
"""

from __future__ import annotations

import os
import sys

STAND_IN = '''\
"""Stand-in for get-pip.py, written by fleetops.vmss tools/ansible_test_pip_bootstrap.py."""
import subprocess
import sys

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in the process that runs it,
# and the pip install below needs the machine's pip configuration (index, CA certificate).
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"] + args))
'''


def pip_version() -> str:
    from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel

    class Python:  # get_venv_packages only reads .version
        version = "%d.%d" % sys.version_info[:2]

    return get_venv_packages(Python())["pip"]


def main() -> None:
    path = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % pip_version().replace(".", "_"))
    if os.path.exists(path) and "fleetops.vmss" not in open(path, encoding="utf-8").read(256):
        return  # a real get-pip.py someone put there
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(STAND_IN)
    print("ansible-test pip bootstrap: wrote %s" % path)


if __name__ == "__main__":
    main()
