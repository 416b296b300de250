"""Microsoft's oav validates the whole suite's traffic against the official specs.

Runs last (conftest orders it so): it exports what the session emulator recorded, one folder per spec
file with api-versions mapped to the spec's, and fails on any error oav reports.
"""
import json
import os
import subprocess

import pytest

OAV_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "oav")
OAV = os.path.join(OAV_DIR, "node_modules", ".bin", "oav")


@pytest.fixture(scope="module")
def oav():
    if not os.path.exists(OAV):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", OAV_DIR], check=True,
                       stdout=subprocess.DEVNULL)
    return OAV


def test_suite_traffic_is_valid_against_the_specs(emu, oav, tmp_path):
    exported = emu.control.call("POST", "traffic/export", {"dir": str(tmp_path / "traffic")})
    folders = exported["folders"]
    assert folders, "the suite recorded no traffic for any operation in the specs"
    failures = {}
    for spec_file, folder in folders.items():
        report = tmp_path / (os.path.basename(folder) + ".report.json")
        # oav 4.0.3 exits 1 even on valid traffic (its HTML template is missing from the package):
        # the JSON report is the verdict.
        subprocess.run([oav, "validate-traffic", folder, spec_file, "--jsonReport", str(report)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        result = json.loads(report.read_text())
        assert result["coveredOperations"] > 0, f"oav matched no operation of {spec_file}"
        if result["errors"] or result["failedOperations"]:
            failures[os.path.basename(spec_file)] = result["errors"][:8]
    assert not failures, json.dumps(failures, indent=1)[:6000]
