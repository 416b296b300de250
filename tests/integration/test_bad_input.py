# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, systematically: hypothesis feeds random and invalid option values to every module, in check mode,
against the emulator; each run must end in a clean success or a clean failure (never a traceback), and the
emulator must have answered no write. Then every state module for real (not in check mode), each run with one
value that is invalid by the module's documentation and Azure's rules (NaN, inf, 0, negatives, YAML booleans,
hostile names, bad image references and tags): a clean failure, and no write that changed anything before it.

The options and their types come from each module's own DOCUMENTATION, so a new module is covered the day it
lands. Modules run in this process (their ``main()`` with patched arguments) so hundreds of runs stay cheap; an
exception escaping ``main()`` is exactly the traceback a user would have seen.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import pathlib
import pkgutil

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import arm_writes, last_seq, put_resource_group

from ansible_collections.fleetops.vmss.plugins import modules as modules_package
from ansible_collections.fleetops.vmss.plugins.module_utils._validate import NUMBER_RULES, OPTION_NAMES

RG = "fuzz"
SCALE_SET = "web"
# Every module that runs here; an action plugin's documentation stub (rollout_wait, report_files: run on the
# controller) has no main() to call: its bad input is tested in tests/unit/plugins/action.
ACTION_STUBS = {name for _finder, name, _is_package in pkgutil.iter_modules(
    [str(pathlib.Path(modules_package.__path__[0]).parent / "action")])}
MODULES = sorted(name for _finder, name, _is_package in pkgutil.iter_modules(modules_package.__path__)
                 if name not in ACTION_STUBS)
# Options whose valid values point at the seeded resources: fuzzed values there mostly test "not found".
ANCHORS = {"resource_group": RG, "name": SCALE_SET, "scale_set": SCALE_SET, "scale_set_name": SCALE_SET}
# Values a user might plausibly mistype, plus hostile ones.
TEXT = st.one_of(st.sampled_from(["", " ", "web", "WEB", "none", "1.0", "-1", "../x", "a/b", "Standard_D2s_v3",
                                  "PT5M", "P1D", "x" * 300, "é\u202e", "<script>", "*", "latest", "0"]),
                 st.text(max_size=12))
SCALAR = st.one_of(TEXT, st.integers(min_value=-10**12, max_value=10**12), st.booleans(), st.none(),
                   st.floats(allow_nan=True, allow_infinity=True))


def documented_options(name):
    module = importlib.import_module("%s.%s" % (modules_package.__name__, name))
    return module, (yaml.safe_load(module.DOCUMENTATION).get("options") or {})


def value_for(spec, depth=0):
    """Values of the option's declared type (and choices) mixed with values of the wrong type."""
    kind = spec.get("type", "str")
    if spec.get("choices"):
        typed = st.one_of(st.sampled_from(list(spec["choices"])), TEXT)
    elif kind == "int":
        typed = st.one_of(st.integers(min_value=-5, max_value=10**6), st.sampled_from(["3", "x", "1.5"]))
    elif kind in ("float",):
        typed = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["0.5", "x"]))
    elif kind == "bool":
        typed = st.one_of(st.booleans(), st.sampled_from(["yes", "maybe", 2]))
    elif kind == "dict" and spec.get("suboptions") and depth < 3:
        typed = options_strategy(spec["suboptions"], depth + 1)
    elif kind == "dict":
        typed = st.dictionaries(TEXT, SCALAR, max_size=3)
    elif kind == "list":
        element = {"type": spec.get("elements", "str"), "choices": spec.get("choices"),
                   "suboptions": spec.get("suboptions")}
        typed = st.lists(value_for(element, depth + 1), max_size=3)
    else:
        typed = TEXT
    return st.one_of(typed, typed, SCALAR) if depth == 0 else st.one_of(typed, typed, typed, SCALAR)


def options_strategy(options, depth=0):
    """Some of the options, each fuzzed; required ones usually present, sometimes missing."""
    required, optional = {}, {}
    for option, spec in options.items():
        spec = spec or {}
        strategy = value_for(spec, depth)
        if option in ANCHORS and depth == 0:
            strategy = st.one_of(st.just(ANCHORS[option]), st.just(ANCHORS[option]), strategy)
        if spec.get("required"):
            required[option] = strategy
        else:
            optional[option] = strategy
    # A required option left out is one more kind of bad input (its absence is drawn like a value).
    dropped = st.sets(st.sampled_from(sorted(required)), max_size=1) if required else st.just(set())
    return st.tuples(st.fixed_dictionaries(required, optional=optional), dropped).map(
        lambda pair: {key: value for key, value in pair[0].items() if key not in pair[1]})


def run_in_process(module, args, check_mode=True):
    """(exit code, result) of the module's main(); any exception other than SystemExit propagates (a traceback).

    In check mode wait_sleep is fixed at 0.1; for real, short waits are defaults the drawn arguments override."""
    out = io.StringIO()
    waits = "wait_sleep" in module.DOCUMENTATION
    if check_mode:
        args = dict(args, _ansible_check_mode=True, **({"wait_sleep": 0.1} if waits else {}))
    else:
        args = dict({"wait_sleep": 0.1, "wait_timeout": 60} if waits else {}, **args)
    with patch_module_args(args):
        with contextlib.redirect_stdout(out):
            try:
                module.main()
            except SystemExit as exited:
                code = exited.code
            else:
                code = None
    return code, out.getvalue()


@pytest.fixture
def seeded(emulator, azure, control, monkeypatch):
    """The emulator's credentials in this process's environment, a resource group and a small scale set."""
    for key in list(os.environ):
        if key.startswith("AZURE_"):
            monkeypatch.delenv(key)
    for key, value in emulator.items():
        monkeypatch.setenv(key, str(value))
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    return control


def seed(azure, location):
    """The resource group and a two-instance Uniform scale set in Manual mode (bench/bad_input seeds it too)."""
    put_resource_group(azure, RG, location)
    azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(RG, SCALE_SET, {
        "location": location, "sku": {"name": "Standard_D2s_v3", "capacity": 2},
        "properties": {"upgradePolicy": {"mode": "Manual"}, "orchestrationMode": "Uniform", "virtualMachineProfile": {
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                  "sku": "server", "version": "latest"}},
            "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser",
                          "adminPassword": "Sup3r-secret-pw!"}}}}).result()


@pytest.mark.parametrize("name", MODULES)
def test_random_and_invalid_options_never_trace_back_nor_write(seeded, name):
    module, options = documented_options(name)
    assert options, "%s documents no options" % name
    outcomes = []

    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(options_strategy(options))
    def check(args):
        since = last_seq(seeded)
        code, output = run_in_process(module, args)
        assert code in (0, 1), "%s exited %r with %s: %s" % (name, code, args, output[-2000:])
        result = json.loads(output)  # one JSON document: Ansible's protocol, no stray prints
        if code:
            assert result.get("failed") and result.get("msg"), result
            assert "Traceback" not in result["msg"], result["msg"]
        writes = arm_writes(seeded, since)
        assert not writes, "%s wrote in check mode with %s: %s" % (
            name, args, [(w["liveRequest"]["method"], w["liveRequest"]["url"]) for w in writes])
        outcomes.append(code)

    check()  # pylint: disable=no-value-for-parameter
    # Where some input is invalid, the generator must have found it, or it is not testing anything.
    if any(spec.get("required") or spec.get("choices") or spec.get("type", "str") not in ("str", "list")
           or spec.get("elements", "str") != "str" for spec in options.values()):
        assert 1 in outcomes, "%s never failed on fuzzed input: the strategy is too tame" % name


# ---------------------------------------------------------------------------------------------
# for real: one invalid value per run, every state module

STATE_MODULES = [name for name in MODULES if not name.endswith("_info")]
# What the modules' own ``name`` names (AzureModule(names=...)): hostile names are invalid there.
NAMED = {"scale_set": "scale_set", "rollout": "scale_set", "blue_green": "scale_set", "rolling_upgrade": "scale_set",
         "scale_set_instance": "scale_set", "gallery": "gallery", "gallery_image": "gallery_image",
         "resource_group": "resource_group", "user_assigned_identity": "user_assigned_identity"}
HOSTILE_NAMES = ["../../etc/passwd", "x" * 2000, "a\u0000b", "web/../../x", "web.", "<script>", " "]
BAD_IMAGES = [12345, 1.5, ["a"], "../../etc/passwd", "/subscriptions//images/", {"publisher": "a"},
              {"publisher": "Canonical", "offer": "o", "sku": "s", "version": "newest"}, {"id": "x", "sku": "s"}]
BAD_TAGS = [{"a/b": "1"}, {"k": "v" * 300}, {"x" * 600: "1"}, {"k<": "v"}, "not tags"]
WAIT_OPTIONS = yaml.safe_load(importlib.import_module(
    "ansible_collections.fleetops.vmss.plugins.doc_fragments.azure").ModuleDocFragment.WAIT)["options"]


def invalid_values(module_name, option, spec):
    """Values the documentation and Azure's rules make invalid for ``option`` (a top-level option)."""
    kind, values = spec.get("type", "str"), []
    if kind in ("int", "float"):
        values += [float("nan"), float("inf"), float("-inf"), "nan"] + ([] if kind == "float" else [1.5, "x"])
        least, most, exclusive = NUMBER_RULES.get(option, (None, None, False))
        if least is not None:
            below = least if exclusive else least - 1
            values += [below, str(below)]      # text too, as AWX surveys send numbers
        if most is not None:
            values.append(most + 1)
    elif kind == "bool":
        values += ["maybe", 2]
    elif option == "image":
        values += BAD_IMAGES
    elif option == "tags":
        values += BAD_TAGS
    elif kind == "dict":
        values += [12, "not a dict"] if spec.get("suboptions") else [12]
    elif kind == "list":
        values += [{"a": 1}]
    elif kind == "str" and not spec.get("no_log"):
        values += [True, False]                # YAML's yes/no reaching a text option
        if spec.get("choices"):
            values.append("not-a-choice")
        if option in OPTION_NAMES or (option == "name" and module_name in NAMED):
            values += HOSTILE_NAMES
    return [(option, value) for value in values]


def minimal_args(options):
    """The required options with valid values (the seeded names, the first choice), so the drawn value is the one
    thing wrong with a run."""
    return {option: ANCHORS.get(option) or (spec.get("choices") or [SCALE_SET])[0]
            for option, spec in options.items() if (spec or {}).get("required")}


def state_changing(writes):
    return [(w["liveRequest"]["method"], w["liveRequest"]["url"], w["liveResponse"]["statusCode"]) for w in writes
            if str(w["liveResponse"]["statusCode"]).startswith("2")]


@pytest.mark.parametrize("name", STATE_MODULES)
def test_one_invalid_value_fails_before_any_write_for_real(seeded, name):
    module, options = documented_options(name)
    if "fleetops.vmss.azure.wait" in module.DOCUMENTATION:
        options = dict(WAIT_OPTIONS, **options)
    bad = {option: invalid_values(name, option, spec or {}) for option, spec in sorted(options.items())}
    bad = {option: pairs for option, pairs in bad.items() if pairs}
    assert bad, "%s has no option with a documented invalid value" % name
    base = minimal_args(options)

    @settings(max_examples=20, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.sampled_from(sorted(bad)).flatmap(lambda option: st.sampled_from(bad[option])))
    def check(invalid):
        option, value = invalid
        args = dict(base, **{option: value})
        since = last_seq(seeded)
        code, output = run_in_process(module, args, check_mode=False)
        assert code == 1, "%s accepted %s=%r: %s" % (name, option, value, output[-2000:])
        result = json.loads(output)  # exactly one JSON document
        assert result.get("failed") and result.get("msg") and "Traceback" not in result["msg"], result
        changed = state_changing(arm_writes(seeded, since))
        assert not changed, "%s wrote before failing on %s=%r: %s (%s)" % (
            name, option, value, changed, result["msg"][:300])

    check()  # pylint: disable=no-value-for-parameter


# The cases of issue 16 that wrote before failing, or were accepted: each now fails before any request at all.
SEEN = [
    ("rollout", {"health_timeout": "nan"}, "health_timeout must be a finite number"),
    ("rollout", {"wait_sleep": float("nan")}, "wait_sleep must be a finite number"),
    ("rollout", {"wait_timeout": -1}, "wait_timeout must be more than 0"),
    ("rollout", {"image": 12345}, "image must be an image id"),
    ("rollout", {"image": "../../etc/passwd"}, "'../../etc/passwd' is none of these"),
    ("rollout", {"image": {"publisher": "a"}}, "lacks offer, sku"),
    ("scale_set", {"wait_sleep": 0}, "wait_sleep must be more than 0"),
    ("scale_set", {"wait_timeout": -1, "tags": {"team": "web"}}, "wait_timeout must be more than 0"),
    ("scale_set", {"name": False, "sku": {"capacity": 3}}, "name is a YAML boolean (false)"),
    ("scale_set", {"name": "x" * 2000, "sku": {"capacity": 3}}, "is not a valid scale set name"),
    ("scale_set", {"tags": {"team": "v" * 300}}, "longer than 256 characters"),
    ("blue_green", {"health_timeout": 0, "image": {"publisher": "a"}}, "health_timeout must be more than 0"),
    ("autoscale", {"profiles": [{"name": "p", "capacity": {"minimum": -1, "maximum": 2, "default": 1}}]},
     "profiles[0].capacity.minimum must be 0 or more, not -1"),
]


@pytest.mark.parametrize("name, args, says", SEEN, ids=["%s-%d" % (case[0], index) for index, case in enumerate(SEEN)])
def test_the_bad_values_seen_fail_before_any_request(seeded, name, args, says):
    module, _options = documented_options(name)
    since = last_seq(seeded)
    code, output = run_in_process(module, dict({"resource_group": RG, "name": SCALE_SET}, **args), check_mode=False)
    result = json.loads(output)
    assert code == 1 and result["msg"].startswith("Invalid options: ") and says in result["msg"], result
    assert [entry for entry in seeded.traffic(since) if "/subscriptions/" in entry["liveRequest"]["url"]] == []
