#!/usr/bin/env python3
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command with the environment the emulator wrote (its env.json): cloud metadata URL,
credentials and CA bundle, exactly as AWX would inject them for Azure.

usage: with_env.py ENV_JSON COMMAND [ARG...]
"""

from __future__ import annotations

import json
import os
import sys


def load(path):
    with open(path, encoding="utf-8") as handle:
        values = json.load(handle)
    return {str(key): str(value) for key, value in values.items()}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    try:
        extra = load(argv[1])
    except (OSError, ValueError) as exc:
        sys.exit("cannot read %s: %s (is the emulator running? make emulator)" % (argv[1], exc))
    os.execvpe(argv[2], argv[2:], dict(os.environ, **extra))


if __name__ == "__main__":
    main(sys.argv)
