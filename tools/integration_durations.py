#!/usr/bin/env python3
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refresh tests/integration/durations.json (each test's wall seconds, which the integration harness's scheduler
starts longest first) from a run's CPU report: `make integration` writes build/integration-cpu.json.

usage: tools/integration_durations.py [build/integration-cpu.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    report = Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "integration-cpu.json"
    tests = json.loads(report.read_text(encoding="utf-8"))["tests"]
    durations = {entry["test"]: round(entry["wall"], 1) for entry in sorted(tests, key=lambda entry: entry["test"])}
    target = ROOT / "tests" / "integration" / "durations.json"
    target.write_text(json.dumps(durations, indent=0) + "\n", encoding="utf-8")
    print("%s: %d tests, %.0f s in all" % (target.relative_to(ROOT), len(durations), sum(durations.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
