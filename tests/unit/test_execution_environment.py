# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml: ansible-builder turns it into a build context that installs the collection
from its tarball, ansible-core as tested, and the collection's Azure SDK requirements."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def load(path):
    return yaml.safe_load((ROOT / path).read_text())


def requirement_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def dev_pins():
    """{name: version} of requirements-dev.txt's exact pins."""
    return {Requirement(line).name: str(Requirement(line).specifier).lstrip("=")
            for line in requirement_lines((ROOT / "requirements-dev.txt").read_text())}


def tarball_name():
    """The version-less name the definition installs (`make ee` copies the built tarball to it)."""
    return "fleetops-vmss.tar.gz"


def constraints():
    """{name: version} of ee-constraints.txt."""
    return {Requirement(line).name: str(Requirement(line).specifier).lstrip("=")
            for line in requirement_lines((ROOT / "ee-constraints.txt").read_text())}


def test_the_version_is_galaxy_yml_s_alone():
    version = load("galaxy.yml")["version"]
    assert version not in (ROOT / "execution-environment.yml").read_text()   # tarball name and tag carry none
    assert "options" not in load("execution-environment.yml") or "tags" not in load("execution-environment.yml")["options"]
    for doc in ("README.md", "docs/awx.md"):
        assert "fleetops-vmss-%s" % version not in (ROOT / doc).read_text(), doc
        assert "fleetops-ee:%s" % version not in (ROOT / doc).read_text(), doc


def test_the_base_image_is_pinned_by_digest():
    name = load("execution-environment.yml")["images"]["base_image"]["name"]
    assert re.fullmatch(r"quay\.io/centos/centos:stream9@sha256:[0-9a-f]{64}", name), name


def test_constraints_pin_every_package_at_the_tested_version():
    # tools/ee_constraints.py --check: the file is what the tested venv gives now
    checked = subprocess.run([sys.executable, str(ROOT / "tools" / "ee_constraints.py"), "--check"],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    pins, dev, ee = constraints(), dev_pins(), load("execution-environment.yml")["dependencies"]
    assert "ansible-core==" + pins["ansible-core"] == ee["ansible_core"]["package_pip"]
    assert "ansible-runner==" + pins["ansible-runner"] == ee["ansible_runner"]["package_pip"]
    for name in ("azure-mgmt-compute", "azure-identity", "cryptography", "ansible-core"):
        assert pins[name] == dev[name], name
    for name in ("azure-mgmt-core", "msal", "isodate", "requests", "jinja2"):   # transitive ones too
        assert name in pins, name
    for line in requirement_lines((ROOT / "requirements.txt").read_text()):
        requirement = Requirement(line)
        assert requirement.specifier.contains(pins[requirement.name]), line


def test_galaxy_links_and_the_python_claimed_are_the_tested_ones():
    galaxy = load("galaxy.yml")
    for key in ("repository", "documentation", "issues"):
        assert galaxy[key].startswith("https://"), key
    tested = "%d.%d" % sys.version_info[:2]
    assert load("execution-environment.yml")["dependencies"]["python_interpreter"]["package_system"] == "python" + tested
    requirements = (ROOT / "README.md").read_text().split("## Requirements")[1].split("##")[0]
    assert re.findall(r"Python (3\.\d+)", requirements) == [tested]


def test_definition_names_the_tested_versions_and_this_release():
    ee = load("execution-environment.yml")
    pins = dev_pins()
    assert ee["version"] == 3
    assert ee["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==" + pins["ansible-core"]
    assert ee["dependencies"]["python"] == "requirements.txt"
    assert [entry["src"] for entry in ee["additional_build_files"]] == ["build/" + tarball_name(), "ee-constraints.txt"]
    assert ee["dependencies"]["galaxy"]["collections"] == [
        {"name": "/build/collections/" + tarball_name(), "type": "file"}]
    # Every runtime requirement admits the version the tests run with.
    for line in requirement_lines((ROOT / "requirements.txt").read_text()):
        requirement = Requirement(line)
        assert requirement.specifier.contains(pins[requirement.name]), line


def test_ansible_builder_create_makes_the_build_context(tmp_path):
    # The definition as shipped, beside a tarball built from this checkout (as `make collection` builds it).
    for name in ("execution-environment.yml", "requirements.txt", "ee-constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "build")],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    built_tarball = tmp_path / "build" / ("fleetops-vmss-%s.tar.gz" % load("galaxy.yml")["version"])
    built_tarball.rename(tmp_path / "build" / tarball_name())   # as `make ee` copies it

    created = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml",
                              "--context", "context", "--output-filename", "Containerfile"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)

    assert created.returncode == 0, created.stdout + created.stderr
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==%s ansible-runner==' % dev_pins()["ansible-core"] in containerfile
    assert 'PYCMD="/usr/bin/python3.11"' in containerfile
    assert "COPY _build/collections/ /build/collections/" in containerfile   # before the galaxy install
    assert containerfile.index("COPY _build/collections/") < containerfile.index("ansible-galaxy collection install")
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "introspect --user-pip=requirements.txt" in containerfile
    # the constraints reach pip before anything is installed, in the base every other stage builds on
    assert containerfile.index("ENV PIP_CONSTRAINT=/etc/fleetops/ee-constraints.txt") < containerfile.index(
        "pip install --no-cache-dir $ANSIBLE_INSTALL_REFS")
    assert (context / "_build" / "constraints" / "ee-constraints.txt").read_text() == (ROOT / "ee-constraints.txt").read_text()
    assert "FROM " + load("execution-environment.yml")["images"]["base_image"]["name"] in containerfile \
        or 'EE_BASE_IMAGE="%s"' % load("execution-environment.yml")["images"]["base_image"]["name"] in containerfile

    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == {
        "collections": [{"name": "/build/collections/" + tarball_name(), "type": "file"}]}
    built = requirement_lines((context / "_build" / "requirements.txt").read_text())
    assert built == requirement_lines((ROOT / "requirements.txt").read_text())
    assert {Requirement(line).name for line in built} >= {"azure-identity", "azure-mgmt-compute", "azure-mgmt-monitor",
                                                          "azure-mgmt-network"}

    # The tarball in the context carries what ansible-builder's introspection reads in the image.
    with tarfile.open(context / "_build" / "collections" / tarball_name()) as tarball:
        names = set(tarball.getnames())
        assert {"MANIFEST.json", "requirements.txt", "meta/execution-environment.yml", "meta/runtime.yml",
                "plugins/inventory/instances.py"} <= names
        assert "execution-environment.yml" not in names                     # the image's recipe stays out
        shipped = tarball.extractfile("requirements.txt").read().decode()
        collection_ee = yaml.safe_load(tarball.extractfile("meta/execution-environment.yml").read())
    assert requirement_lines(shipped) == built
    assert collection_ee["dependencies"] == {"python": "requirements.txt"}
