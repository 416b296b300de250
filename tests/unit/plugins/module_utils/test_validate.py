# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every option checked by Azure's rules before any request: the validator alone, then through the modules."""

from __future__ import annotations

import pytest

from module_runner import run_module, scripted_arm, writes
from ansible_collections.fleetops.vmss.plugins.module_utils._validate import (
    image_errors, name_error, option_errors, tag_errors)
from ansible_collections.fleetops.vmss.plugins.modules import rollout, scale_set, resource_group

GALLERY_VERSION = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/"
                   "versions/1.2.3")
SPEC = {
    "name": {"type": "str"}, "wait_sleep": {"type": "float"}, "wait_timeout": {"type": "int"},
    "secret": {"type": "str", "no_log": True},
    "policy": {"type": "dict", "options": {"max_unhealthy_instance_percent": {"type": "int"}}},
    "profiles": {"type": "list", "elements": "dict", "options": {
        "hours": {"type": "list", "elements": "int"}, "name": {"type": "str"}}},
    "threshold": {"type": "float"},
}


@pytest.mark.parametrize("params, fragment", [
    ({"wait_sleep": float("nan")}, "wait_sleep must be a finite number, not nan."),
    ({"wait_sleep": float("inf")}, "wait_sleep must be a finite number, not inf."),
    ({"threshold": float("-inf")}, "threshold must be a finite number"),
    ({"wait_sleep": 0.0}, "wait_sleep must be more than 0, not 0.0."),
    ({"wait_timeout": -1}, "wait_timeout must be more than 0, not -1."),
    ({"policy": {"max_unhealthy_instance_percent": 101}},
     "policy.max_unhealthy_instance_percent must be between 0 and 100, not 101."),
    ({"profiles": [{"hours": [3, 24]}]}, "profiles[0].hours must be between 0 and 23, not 24."),
])
def test_numbers_out_of_range_are_named_with_their_path(params, fragment):
    errors = option_errors(SPEC, params, params)
    assert len(errors) == 1 and fragment in errors[0], errors


def test_numbers_in_range_and_unruled_numbers_pass():
    params = {"wait_sleep": 0.5, "wait_timeout": 1, "threshold": -70.5,
              "policy": {"max_unhealthy_instance_percent": 0}, "profiles": [{"hours": [0, 23]}]}
    assert option_errors(SPEC, params, params) == []


def test_strings_for_numbers_are_judged_after_ansible_converted_them():
    # AWX surveys send text: the raw value is "0.5", the converted one 0.5; only the converted one is judged
    assert option_errors(SPEC, {"wait_sleep": 0.5}, {"wait_sleep": "0.5"}) == []
    assert option_errors(SPEC, {"wait_sleep": 0.0}, {"wait_sleep": "0"})


@pytest.mark.parametrize("raw", [False, True])
def test_a_yaml_boolean_for_text_is_refused_with_advice_to_quote(raw):
    errors = option_errors(SPEC, {"name": str(raw)}, {"name": raw})
    assert len(errors) == 1 and "YAML boolean" in errors[0] and "quote" in errors[0], errors
    nested = option_errors(SPEC, {"profiles": [{"name": "False"}]}, {"profiles": [{"name": False}]})
    assert nested and nested[0].startswith("profiles[0].name is a YAML boolean"), nested


def test_a_secret_option_is_never_quoted():
    assert option_errors(SPEC, {"secret": "True"}, {"secret": True}) == []


@pytest.mark.parametrize("kind, good, bad", [
    ("scale_set", ["web", "a", "web-01_x", "W" * 64, "web(1)", "-web"],
     ["", "_web", "web-", "web.", "a b", "x" * 65, "a\u0000", "../x", "web/1", "a:b", "a#b"]),
    ("resource_group", ["rg", "my.rg(1)", "é-rg", "x" * 90], ["", "rg.", "a/b", "x" * 91, "a b", "<rg>"]),
    ("gallery", ["gal", "gal_1.x"], ["gal-1", "_gal", "gal.", "x" * 81]),
    ("gallery_image", ["web-img.1"], ["-web", "web-", "a b"]),
    ("user_assigned_identity", ["bake-id_1", "abc"], ["ab", "-abc", "a.bc", "x" * 129]),
])
def test_names_follow_azure_rules(kind, good, bad):
    assert [name for name in good if name_error(kind, name)] == []
    assert [name for name in bad if not name_error(kind, name)] == []


def test_tags_follow_azure_rules():
    assert tag_errors("tags", {"env": "prod", "x" * 512: "y" * 256}) == []
    assert len(tag_errors("tags", {"a/b": "1", "c": "v" * 257, "x" * 513: "1", "d": ["list"]})) == 4
    assert tag_errors("tags", {str(n): "v" for n in range(51)})


@pytest.mark.parametrize("image", [
    GALLERY_VERSION, GALLERY_VERSION.rsplit("/versions/", 1)[0],
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/golden",
    "/SharedGalleries/abc-123/Images/web/Versions/1.0.0", "/CommunityGalleries/pub-1/Images/web",
    {"id": GALLERY_VERSION},
    {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "24.04.202501010"},
])
def test_image_references_azure_takes_are_accepted(image):
    assert image_errors("image", image) == []


@pytest.mark.parametrize("image, fragment", [
    (12345, "not int"), (["a"], "not list"), ("../../etc/passwd", "none of these"),
    ("/subscriptions//images/", "none of these"), ({"publisher": "a"}, "lacks offer, sku"),
    ({"publisher": "a", "offer": "b", "sku": "c", "version": "newest"}, "image.version must be latest"),
    ({"publisher": "a/..", "offer": "b", "sku": "c"}, "image.publisher"),
    ({"id": GALLERY_VERSION, "sku": "c"}, "not both"), ({"ID": GALLERY_VERSION}, "unknown keys: ID"),
])
def test_other_image_values_are_refused_naming_the_option(image, fragment):
    errors = image_errors("image", image)
    assert errors and fragment in " ".join(errors) and errors[0].startswith("image"), errors


# ---------------------------------------------------------------------------------------------
# through the modules: failed before any request, one clear message

ROLLOUT = {"resource_group": "rg", "name": "web", "image": GALLERY_VERSION}


@pytest.mark.parametrize("module, args, fragment", [
    (rollout, dict(ROLLOUT, health_timeout="nan"), "health_timeout must be a finite number"),
    (rollout, dict(ROLLOUT, wait_sleep=float("nan")), "wait_sleep must be a finite number"),
    (rollout, dict(ROLLOUT, wait_timeout=-1), "wait_timeout must be more than 0"),
    (rollout, dict(ROLLOUT, image=12345), "image must be an image id"),
    (rollout, dict(ROLLOUT, image="../../etc/passwd"), "none of these"),
    (rollout, dict(ROLLOUT, image={"publisher": "a"}), "lacks offer, sku"),
    (rollout, dict(ROLLOUT, model={"sku": {"name": "Standard D2"}}), "model.sku.name"),
    (scale_set, {"resource_group": "rg", "name": "web", "wait_sleep": 0}, "wait_sleep must be more than 0"),
    (scale_set, {"resource_group": "rg", "name": False}, "name is a YAML boolean"),
    (scale_set, {"resource_group": "rg", "name": "web", "tags": {"a": "v" * 300}}, "longer than 256"),
    (scale_set, {"resource_group": "rg", "name": "w" * 2000}, "not a valid scale set name"),
    (resource_group, {"name": "rg.", "location": "eastus"}, "not a valid resource group name"),
])
def test_modules_fail_on_bad_values_before_any_request(monkeypatch, tmp_path, capsys, module, args, fragment):
    adapter = scripted_arm(monkeypatch, tmp_path)
    code, result = run_module(module, args, capsys)
    assert code == 1 and result["failed"], result
    assert result["msg"].startswith("Invalid options: ") and fragment in result["msg"], result["msg"]
    assert adapter.requests == [] and writes(adapter) == []


@pytest.mark.parametrize("image_id, field", [
    (GALLERY_VERSION, "id"), ("/SharedGalleries/abc-123/Images/web/Versions/1.0.0", "sharedGalleryImageId"),
    ("/CommunityGalleries/pub-1/Images/web", "communityGalleryImageId"),
])
def test_each_accepted_image_id_goes_in_the_field_azure_reads_it_from(image_id, field):
    from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model

    assert model.image_reference(model.image_option(image_id)) == {field: image_id}


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", " -Infinity", "nan", [1, "inf"]])
def test_no_whole_number_option_reaches_ansible_core_as_nan_or_infinity(monkeypatch, tmp_path, capsys, value):
    # ansible-core's check_type_int raises OverflowError (a traceback) on infinity
    adapter = scripted_arm(monkeypatch, tmp_path)
    args = dict(ROLLOUT, wait_timeout=value) if not isinstance(value, list) else {
        "resource_group": "rg", "name": "web", "zones": value, "platform_fault_domain_count": value[1]}
    code, result = run_module(rollout if not isinstance(value, list) else scale_set, args, capsys)
    assert code == 1 and "must be a finite whole number" in result["msg"] and adapter.requests == [], result
