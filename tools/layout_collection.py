#!/usr/bin/env python3
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mirror the collection's files into DEST (build/ansible_collections/fleetops/vmss).

ansible-test needs the collection at a path ending in ansible_collections/<namespace>/<name>.
The files are those git knows or would add (tracked, or untracked and not ignored), less
galaxy.yml's build_ignore, so the laid-out copy is what `ansible-galaxy collection build` ships.
Unchanged files keep their timestamps; files that are gone from the source are removed.
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_files():
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return sorted({path for path in listed.split("\0") if path and os.path.isfile(os.path.join(ROOT, path))})


def ignored(path, patterns):
    """As ansible-galaxy decides: a pattern matching the path or one of its parent directories."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def main(dest):
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        patterns = yaml.safe_load(handle).get("build_ignore") or []
    wanted = [path for path in source_files() if not ignored(path, patterns)]
    os.makedirs(dest, exist_ok=True)
    if not os.path.isdir(os.path.join(dest, ".git")):
        # ansible-test lists files with git: without a repository of its own, the copy would be
        # seen through this checkout, where build/ is ignored, and every test would skip.
        subprocess.run(["git", "init", "-q", dest], check=True)
    for path in wanted:
        src, dst = os.path.join(ROOT, path), os.path.join(dest, path)
        if os.path.isfile(dst) and filecmp.cmp(src, dst, shallow=False):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    keep = set(wanted)
    for directory, _dirs, files in os.walk(dest, topdown=False):
        for name in files:
            relative = os.path.relpath(os.path.join(directory, name), dest).replace(os.sep, "/")
            if relative not in keep and not relative.startswith(("tests/output/", ".git/")):
                os.remove(os.path.join(directory, name))
        if directory != dest and not os.listdir(directory) and "/.git" not in directory:
            os.rmdir(directory)
    print("laid out %d files in %s" % (len(wanted), dest))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: layout_collection.py DEST")
    main(os.path.abspath(sys.argv[1]))
