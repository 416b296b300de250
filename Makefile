# fleetops.vmss — developer entry points. `make demo` and `make test` are all a newcomer needs.
# Needs only python3 (3.11), pip, git and make; everything else goes into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv is rebuilt when the pinned requirements change (the stamp's name is their hash).
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)

VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
COLLECTION_DIR := build/ansible_collections/fleetops/vmss
TARBALL := build/fleetops-vmss-$(VERSION).tar.gz
INSTALLED := build/collections/ansible_collections/fleetops/vmss

# The venv's tools first, so ansible-playbook, ansible-test and pytest are ours.
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

EMULATOR_DIR := .emulator
# Every test run lists its 10 slowest tests at the end.
PYTEST := $(BIN)/python -m pytest --durations=10

.PHONY: help venv collection sanity lint unit node emulator emulator-stop emulator-test conformance integration test \
	test-checks test-suites demo clean

help:
	@echo "make demo           run the end-to-end demo against the local Azure emulator"
	@echo "make test           unit + sanity + lint + emulator-test, alongside integration"
	@echo "make venv           create .venv with the pinned requirements"
	@echo "make collection     lay out, build and install the collection under build/"
	@echo "make sanity | lint | unit | emulator-test | conformance | integration"
	@echo "make emulator | emulator-stop"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# build/ansible_collections/fleetops/vmss: the collection as shipped (ansible-test runs there);
# build/collections: it installed from the built tarball (ansible.cfg points playbooks there).
# `make test` builds it once, then passes BUILT=1 to its two lanes so neither rebuilds it under the other.
COLLECTION := $(if $(BUILT),,collection)
collection: venv
	$(BIN)/python tools/layout_collection.py $(COLLECTION_DIR)
	rm -f $(TARBALL)
	cd $(COLLECTION_DIR) && $(BIN)/ansible-galaxy collection build --output-path $(CURDIR)/build --force
	$(BIN)/ansible-galaxy collection install $(TARBALL) -p build/collections --force

sanity: $(COLLECTION)
	$(BIN)/python tools/ansible_test_pip_bootstrap.py
	cd $(COLLECTION_DIR) && $(BIN)/ansible-test sanity --local --python 3.11 --requirements --color no

# ansible-lint, production profile, on playbooks, roles and integration targets (.ansible-lint).
lint: venv
	$(BIN)/ansible-lint

unit: venv
	$(PYTEST) -q -p no:cacheprovider tests/unit

emulator: venv
	$(BIN)/python -m emulator serve --state-dir $(EMULATOR_DIR) --background $(EMULATOR_ARGS)

emulator-stop:
	$(BIN)/python -m emulator stop --state-dir $(EMULATOR_DIR)

# Each worker exports its traffic, which oav then validates in one last run. The tests mostly wait on the emulator's
# scaled clock, so there are more workers than cores.
EMULATOR_TEST_WORKERS ?= 4
TRAFFIC_DIR := build/emulator-traffic
# oav (Microsoft's traffic validator, pinned in emulator/oav/package.json) needs Node.js and npm: from Debian when absent.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
node:
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }

emulator-test: venv node
	rm -rf $(TRAFFIC_DIR) && mkdir -p $(TRAFFIC_DIR)
	FLEETOPS_TRAFFIC_DIR=$(CURDIR)/$(TRAFFIC_DIR) $(PYTEST) -q -p no:cacheprovider -n $(EMULATOR_TEST_WORKERS) emulator/tests \
		--deselect emulator/tests/test_zz_oav.py::test_suite_traffic_is_valid_against_the_specs
	FLEETOPS_TRAFFIC_DIR=$(CURDIR)/$(TRAFFIC_DIR) $(PYTEST) -q -p no:cacheprovider emulator/tests/test_zz_oav.py

# Real recorded Azure traffic replayed against the emulator (also run by emulator-test, as a pytest test).
conformance: venv
	$(BIN)/python -m emulator.tests.conformance

# The harness (tests/integration/conftest.py) starts one emulator per xdist worker, each in its own state dir.
# Its CPU bounds it (about 900 CPU-s since an in-place rollout is one module process, which costs about 0.5 CPU-s):
# 2 workers, each half the time waiting on the emulator's scaled clock, kept 2 cores 65% busy; 4 kept them 61% busy
# (1,170 CPU-s in 3,661 worker-seconds), so 6 do not wait on each other more than on the clock. Each worker's next
# test is chosen from the tests' expected walls
# (tests/integration/schedule.py, durations.json; refresh it with tools/integration_durations.py): longest first,
# and never a long test queued behind another long one.
# Single-module tests, and the targets that test modules, fork each module run from a per-worker zygote that has imported
# the SDK once, instead of starting the ansible CLI or a Python per module (FLEETOPS_MODULE_RUNNER=cli: as before).
# Each module's AnsiballZ payload is built once per worker, not once per playbook run, and module processes load the
# code compiled from the payload's sources in an earlier run instead of compiling them (tests/integration/ansiballz_cache).
# The run ends with the tests that cost the most CPU and the run's timeline; build/integration-cpu.json has every
# test's figures (CPU, wall, start, end, worker).
INTEGRATION_WORKERS ?= 6
integration: $(COLLECTION)
	FLEETOPS_COLLECTIONS_PATH=$(CURDIR)/build/collections FLEETOPS_CPU_REPORT=$(CURDIR)/build/integration-cpu.json \
		$(PYTEST) -q -p no:cacheprovider \
		-n $(INTEGRATION_WORKERS) tests/integration

# Two lanes side by side: the checks (unit, sanity, lint, then the emulator's own tests and oav: about 200 CPU-s in
# all) and integration (about 900 CPU-s, the longest lane: it starts first, the unit tests run in the other lane).
# The emulator's tests once ran last, after integration; they now assert on what happened rather than on wall-clock
# slack, so they run beside integration and the run is as long as its longest lane.
# Each lane runs all its phases and fails at the end if one failed; make fails if either lane did. Output is
# synced by line (--output-sync=line): progress shows as it happens and nothing is held back if the run is cut.
test: collection node
	$(MAKE) --no-print-directory -j 2 --output-sync=line BUILT=1 test-checks test-suites

test-checks:
	@status=0; for phase in unit sanity lint emulator-test; do $(MAKE) --no-print-directory $$phase || status=1; done; \
	exit $$status

test-suites:
	@$(MAKE) --no-print-directory integration

# The emulator starts with the demo's landing zone (a resource group, its network and load balancer) and is
# stopped however the playbook ends (failure, Ctrl-C included).
# Realistic durations x DEMO_TIME_SCALE: the 20-minute image build of the bake takes 24 seconds.
DEMO_TIME_SCALE ?= 0.02
demo: collection
	$(MAKE) --no-print-directory emulator \
		EMULATOR_ARGS="--time-scale $(DEMO_TIME_SCALE) --fixture emulator/fixtures/demo-landing-zone.json"
	@trap '$(MAKE) --no-print-directory emulator-stop' EXIT INT TERM; \
	$(BIN)/python tools/with_env.py $(EMULATOR_DIR)/env.json $(BIN)/ansible-playbook playbooks/site.yml

clean:
	rm -rf build .cache tests/output

# The execution environment's build context (build/ee): the collection under the version-less name
# execution-environment.yml installs, then `ansible-builder create` (build it with podman/docker from there).
.PHONY: ee
ee: collection
	cp $(TARBALL) build/fleetops-vmss.tar.gz
	$(BIN)/python tools/ee_constraints.py --check
	$(BIN)/ansible-builder create -f execution-environment.yml --context build/ee
