"""The emulator refuses what Azure refuses (names, tags, locations, passwords, ids, image references, VM
sizes) with Azure's codes, before anything is written; what the project legitimately sends still passes."""
from urllib.parse import quote

import pytest

from emulator import validation
from emulator.arm import ArmError
from emulator.tests import compute_support as cs

RG = "validation-rg"


@pytest.fixture(scope="module")
def group(emu):
    emu.rg(RG)
    return RG


def put_set(emu, name, body):
    return emu.arm("PUT", cs.vmss_path(emu, RG, quote(name, safe="")), body, api_version="2024-07-01")


def refused(emu, name, body, code, target=None):
    status, answer, _ = put_set(emu, name, body)
    assert status == 400, answer
    assert answer["error"]["code"] == code, answer
    if target is not None:
        assert answer["error"].get("target") == target, answer
    assert emu.arm("GET", cs.vmss_path(emu, RG, quote(name, safe="")))[0] == 404   # nothing written
    return answer["error"]["message"]


def with_profile(emu, change):
    body = cs.body(emu, capacity=1)
    change(body)
    return body


# --- scale-set PUTs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a" * 2000, "web\u0000x", "-web", "web.", "we b", "a" * 65],
                         ids=["2000-chars", "nul", "leading-hyphen", "trailing-dot", "space", "65-chars"])
def test_bad_scale_set_names_are_refused(emu, group, name):
    message = refused(emu, name, cs.body(emu, capacity=1), "InvalidParameter", target="vmScaleSetName")
    assert "is invalid according to its validation rule" in message


def test_a_64_character_name_and_dots_underscores_are_accepted(emu, group):
    for name in ("a" * 64, "web_1.blue-green_"):
        status, answer, _ = put_set(emu, name, cs.body(emu, capacity=0))
        assert status == 201, answer


@pytest.mark.parametrize("password, windows", [("x", False), ("alllowercase", False), ("Ab1!", False),
                                               ("abcdef1", False), ("Ab1!x\u0001yz", False),
                                               ("Abc12!", True), ("A" * 60 + "a1!" + "b" * 10, False)])
def test_weak_admin_passwords_are_refused_and_never_echoed(emu, group, password, windows):
    def change(body):
        vm = body["properties"]["virtualMachineProfile"]
        vm["osProfile"]["adminPassword"] = password
        if windows:
            vm["storageProfile"]["imageReference"] = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                                      "sku": "2022-datacenter-azure-edition", "version": "latest"}
    message = refused(emu, "pw-set", with_profile(emu, change), "InvalidParameter", target="adminPassword")
    assert message.startswith(f"The supplied password must be between {'8-123' if windows else '6-72'} characters")
    assert len(password) < 4 or password not in message


def test_a_300_character_tag_value_is_refused(emu, group):
    body = cs.body(emu, capacity=1)
    body["tags"] = {"owner": "v" * 300}
    message = refused(emu, "tagged", body, "InvalidTagValueLength")
    assert "'256'" in message


@pytest.mark.parametrize("tags, code", [({"a/b": "x"}, "InvalidTagNameCharacters"),
                                        ({"a<b": "x"}, "InvalidTagNameCharacters"),
                                        ({"n" * 513: "x"}, "InvalidTagNameLength"),
                                        ({f"t{i}": "x" for i in range(51)}, "InvalidTagCount")])
def test_bad_tags_are_refused(emu, group, tags, code):
    body = cs.body(emu, capacity=1)
    body["tags"] = tags
    refused(emu, "tagged", body, code)


def test_an_unknown_location_is_refused(emu, group):
    body = cs.body(emu, capacity=1)
    body["location"] = "marsnorth"
    message = refused(emu, "mars", body, "LocationNotAvailableForResourceType")
    assert "'marsnorth'" in message and "Microsoft.Compute/virtualMachineScaleSets" in message


@pytest.mark.parametrize("image, code", [
    ({"id": "/subscriptions//images/"}, "LinkedInvalidPropertyId"),
    ({"id": "../../etc/passwd"}, "LinkedInvalidPropertyId"),
    ({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"}, "InvalidParameter"),
    ({"publisher": "a"}, "InvalidParameter"),
    ({"publisher": "../..", "offer": "etc", "sku": "passwd", "version": "latest"}, "InvalidParameter"),
    ({"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "newest"}, "InvalidParameter"),
])
def test_bad_image_references_are_refused(emu, group, image, code):
    body = cs.body(emu, capacity=1, image=image)
    refused(emu, "imaged", body, code)


def test_a_vm_size_that_does_not_exist_is_refused(emu, group):
    body = cs.body(emu, capacity=1)
    body["sku"]["name"] = "Standard_Nope_v99"
    message = refused(emu, "sized", body, "InvalidParameter", target="sku.name")
    assert message.startswith("The requested VM size Standard_Nope_v99 is not available in the current region.")
    assert "Standard_D2s_v3" in message


def test_a_patch_is_checked_too(emu, group):
    status, answer, _ = put_set(emu, "patched", cs.body(emu, capacity=0))
    assert status == 201, answer
    path = cs.vmss_path(emu, RG, "patched")
    status, answer, _ = emu.arm("PATCH", path, {"sku": {"name": "Standard_Nope_v99"}, "tags": {"k": "v" * 257}})
    assert status == 400 and answer["error"]["code"] == "InvalidTagValueLength", answer
    status, answer, _ = emu.arm("PATCH", path, {"sku": {"name": "Standard_Nope_v99"}})
    assert status == 400 and answer["error"]["code"] == "InvalidParameter", answer
    assert emu.arm("GET", path)[1]["sku"]["name"] == "Standard_D2s_v3"


# --- other resource types ---------------------------------------------------------------------------

def test_resource_groups_names_and_locations(emu):
    base = f"/subscriptions/{emu.subscription_id}/resourcegroups/"
    status, answer, _ = emu.arm("PUT", base + "a" * 91, {"location": "westeurope"}, api_version="2022-09-01")
    assert status == 400 and answer["error"]["code"] == "InvalidResourceGroup", answer
    status, answer, _ = emu.arm("PUT", base + "bad%21name", {"location": "westeurope"}, api_version="2022-09-01")
    assert status == 400 and "'!'" in answer["error"]["message"], answer
    status, answer, _ = emu.arm("PUT", base + "mars-rg", {"location": "marsnorth"}, api_version="2022-09-01")
    assert status == 400 and answer["error"]["code"] == "LocationNotAvailableForResourceGroup", answer
    status, answer, _ = emu.arm("PUT", base + "ok.rg_(1)", {"location": "West Europe"}, api_version="2022-09-01")
    assert status == 201, answer


def test_gallery_names(emu, group):
    base = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/"
    status, answer, _ = emu.arm("PUT", base + "_gal", {"location": emu.location}, api_version="2024-03-03")
    assert status == 400 and answer["error"]["target"] == "galleryName", answer
    status, answer, _ = emu.arm("PUT", base + "g" * 81, {"location": emu.location}, api_version="2024-03-03")
    assert status == 400 and answer["error"]["code"] == "InvalidParameter", answer
    status, answer, _ = emu.arm("PUT", base + "gal.1_x", {"location": emu.location}, api_version="2024-03-03")
    assert status in (200, 201), answer


def test_vm_sizes_of_a_region(emu):
    path = f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Compute/locations/westeurope/vmSizes"
    status, answer, _ = emu.arm("GET", path)
    assert status == 200
    names = {size["name"]: size for size in answer["value"]}
    assert names["Standard_D2s_v3"]["numberOfCores"] == 2
    assert emu.arm("GET", path.replace("westeurope", "marsnorth"))[0] == 400
    sizes = list(emu.compute().virtual_machine_sizes.list("westeurope"))
    assert "Standard_D4s_v5" in {size.name for size in sizes}


# --- the rules themselves -----------------------------------------------------------------------------

def test_every_size_and_location_the_project_uses_is_known():
    for size in ("Standard_D2s_v3", "Standard_D4s_v3", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D1_v2",
                 "Standard_DS1_v2", "Standard_D2ds_v5", "Standard_D2ds_v4", "Standard_B2s", "Standard_A0"):
        validation.check_vm_size(size, "westeurope")
    for where in ("westeurope", "West Europe", "eastus", "westus", "northeurope", "southcentralus", "centralus",
                  "East US 2"):
        validation.check_location(where, "Microsoft.Compute/virtualMachineScaleSets")


def test_ids_the_project_uses_are_well_formed():
    gallery = ("/subscriptions/0000/resourceGroups/images/providers/Microsoft.Compute/galleries/gal/images/web"
               "/versions/1.2.3")
    validation.check_image_reference({"id": gallery})
    validation.check_image_reference({"id": gallery.rsplit("/versions", 1)[0]})
    validation.check_image_reference({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/b"})
    community = "/CommunityGalleries/f-1/Images/Fedora/Versions/latest"
    validation.check_image_reference({"communityGalleryImageId": community})
    validation.check_image_reference({"publisher": "p", "offer": "o", "sku": "s", "version": "1.0.0"})
    with pytest.raises(ArmError):
        validation.check_image_reference({"communityGalleryImageId": "../x"})


def test_passwords_that_pass():
    validation.check_password("Sup3r-secret!", windows=False)
    validation.check_password("abcde1!", windows=False)            # 3 classes of 4: enough
    validation.check_password("Abcdefg1", windows=True)
    with pytest.raises(ArmError):
        validation.check_password(None, windows=False)


def test_names_and_tags_rules_at_their_edges():
    validation.check_name("Microsoft.Compute/galleries/images", "galleryImageName", "a" * 80)
    with pytest.raises(ArmError):
        validation.check_name("Microsoft.Compute/galleries/images", "galleryImageName", "a" * 81)
    validation.check_tags({"n" * 512: "v" * 256, **{f"t{i}": "" for i in range(49)}})
    assert validation.resource_type_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x"
                                       "/images/y") == "Microsoft.Compute/galleries/images"
