"""Microsoft's oav validates the whole suite's traffic against the official specs.

`make emulator-test` runs the suite on several workers, each exporting its emulator's traffic into
$FLEETOPS_TRAFFIC_DIR/<worker>/<spec>/ when it ends, then runs this test alone over all of it. Run
directly (no FLEETOPS_TRAFFIC_DIR), it runs last in the session and validates that session's traffic.
"""
import json
import os
import shutil
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


def client_side(error):
    """Requests that echo read-only properties back (a GET body sent as a PUT) are the client's doing;
    Azure ignores such properties and so does the emulator, so oav's complaint is not about us."""
    return error.get("issueSource") == "request" and error.get("errorCode") == "READONLY_PROPERTY_NOT_ALLOWED_IN_REQUEST"


def merged_by_spec(shared, spec_of, out_dir):
    """[(spec_file, folder)]: every worker's files for a spec in one folder (named <worker>-<file>), so that oav loads
    and resolves each spec once, not once per worker: the loading, not the traffic, is most of its time."""
    folders = {}
    for worker in sorted(os.listdir(shared)):
        if not os.path.isdir(os.path.join(shared, worker)):
            continue
        for name in sorted(os.listdir(os.path.join(shared, worker))):
            folder = folders.setdefault(name, out_dir / name)
            folder.mkdir(parents=True, exist_ok=True)
            for entry in os.scandir(os.path.join(shared, worker, name)):
                shutil.copyfile(entry.path, folder / f"{worker}-{entry.name}")
    return [(spec_of[name], str(folder)) for name, folder in sorted(folders.items())]


@pytest.fixture
def traffic_folders(request, tmp_path):
    """[(spec_file, folder)] to validate."""
    shared = os.environ.get("FLEETOPS_TRAFFIC_DIR")
    if shared:
        with open(os.path.join(shared, "specs.json")) as fh:
            spec_of = json.load(fh)
        return merged_by_spec(shared, spec_of, tmp_path / "by-spec")
    emu = request.getfixturevalue("emu")
    exported = emu.control.call("POST", "traffic/export", {"dir": str(tmp_path / "traffic")})
    return sorted(exported["folders"].items())


def test_suite_traffic_is_valid_against_the_specs(traffic_folders, oav, tmp_path):
    assert traffic_folders, "the suite recorded no traffic for any operation in the specs"
    failures = {}
    for index, (spec_file, folder) in enumerate(traffic_folders):
        report = tmp_path / f"{index}-{os.path.basename(folder)}.report.json"
        # oav 4.0.3 exits 1 even on valid traffic (its HTML template is missing from the package):
        # the JSON report is the verdict.
        subprocess.run([oav, "validate-traffic", folder, spec_file, "--jsonReport", str(report)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        result = json.loads(report.read_text())
        assert result["coveredOperations"] > 0, f"oav matched no operation of {spec_file}"
        errors = [e for e in result["errors"] if not client_side(e)]
        if errors:
            failures[folder] = errors[:8]
    assert not failures, json.dumps(failures, indent=1)[:6000]
