#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run extensions/eda/rulebooks/rollback_on_alert.yml in ansible-rulebook itself (its Drools engine: needs Java 17)
on alerts derived from Microsoft's documented sample (tests/unit/eda/alert_sample.json), with the Service Bus source
swapped for ansible-rulebook's eda.builtin.generic and the job template launch for a debug line. Checks which alerts
launch the rollback job: only Fired ones of the chosen rules and severities, once per target within the throttle.

    python3 -m venv /tmp/rulebook && /tmp/rulebook/bin/pip install ansible-rulebook
    PATH=$PWD/.venv/bin:$PATH .venv/bin/python tools/check_rulebook.py /tmp/rulebook/bin/ansible-rulebook
(ansible-rulebook wants ansible-galaxy on PATH: the project's venv has it.) Exits 1 when the launches differ."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = json.loads((ROOT / "tests" / "unit" / "eda" / "alert_sample.json").read_text())
TARGET = "/subscriptions/s/resourcegroups/payments-prod/providers/microsoft.compute/virtualmachinescalesets/%s"


def event(tag, target="payments-api", **essentials):
    body = copy.deepcopy(SAMPLE)
    body["data"]["essentials"].update(alertRule="payments-api-failed-requests", severity="Sev1",
                                      monitorCondition="Fired", alertTargetIDs=[TARGET % target], description=tag)
    body["data"]["essentials"].update(essentials)
    return {"body": body, "meta": {"message_id": tag}}


# Each alert that must not launch targets a set of its own, so that the throttle cannot be what holds it back.
EVENTS = [event("fired"), event("fired-again"), event("resolved", "payments-c", monitorCondition="Resolved"),
          event("other-rule", "payments-d", alertRule="WCUS-R2-Gen2"), event("sev3", "payments-e", severity="Sev3"),
          event("other-set", "payments-b"), event("documented-sample", **SAMPLE["data"]["essentials"])]
EXPECTED = ["fired", "other-set"]


def main(rulebook_bin):
    rulebook = yaml.safe_load((ROOT / "extensions" / "eda" / "rulebooks" / "rollback_on_alert.yml").read_text())
    rulebook[0]["sources"] = [{"name": "alerts", "eda.builtin.generic": {"payload": EVENTS}}]
    rule = rulebook[0]["rules"][0]
    assert list(rule["action"]) == ["run_job_template"]
    rule["action"] = {"debug": {"msg": "LAUNCH {{ event.body.data.essentials.description }} {{ rollback_job_template }}"}}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "rulebook.yml").write_text(yaml.safe_dump(rulebook))
        (work / "vars.yml").write_text(yaml.safe_dump({
            "rollback_alert_rules": ["payments-api-failed-requests"], "rollback_severities": ["Sev0", "Sev1"],
            "rollback_job_template": "fleetops-alert-rollback", "rollback_organization": "Default",
            "service_bus_connection_string": "unused", "service_bus_queue_name": "unused"}))
        (work / "inventory.yml").write_text("all: {hosts: {localhost: {}}}\n")
        out = subprocess.run([rulebook_bin, "-r", "rulebook.yml", "--vars", "vars.yml", "-i", "inventory.yml"],
                             cwd=work, capture_output=True, text=True, timeout=300, check=False)
    launched = re.findall(r"LAUNCH (\S+) fleetops-alert-rollback", out.stdout)
    print("launched:", launched)
    if out.returncode != 0 or launched != EXPECTED:
        print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
        print("expected:", EXPECTED)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "ansible-rulebook"))
