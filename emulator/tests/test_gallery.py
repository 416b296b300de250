"""Compute galleries: definitions, versions, replication over scaled time, "latest", failure rules, examples.

SDK calls go through azure-mgmt-compute (galleries at api-version 2026-03-03); error-shape checks use
raw ARM calls where the SDK would hide the body.
"""
import copy
import json
import time
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator.app import Emulator
from emulator.providers import gallery
from emulator.providers.gallery import model
from emulator.specs import SpecIndex

RG = "gallery-rg"
API = "2024-03-03"
SOURCE = "/subscriptions/{sub}/resourceGroups/src/providers/Microsoft.Compute/images/base"


def wait_for(fn, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def gallery_path(emu, gallery_name="gal", image=None, version=None):
    path = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Compute" \
           f"/galleries/{gallery_name}"
    if image:
        path += f"/images/{image}"
    if version:
        path += f"/versions/{version}"
    return path


def image_id(emu, image="img", version=None):
    return gallery_path(emu, "gal", image, version)


def make_gallery(emu, client, name="gal"):
    return client.galleries.begin_create_or_update(RG, name, {"location": emu.location}).result()


def make_image(emu, client, gallery_name="gal", name="img", **props):
    body = {"location": emu.location,
            "properties": dict({"osType": "Linux", "osState": "Generalized",
                                "identifier": {"publisher": "fleetops", "offer": "web", "sku": name}}, **props)}
    return client.gallery_images.begin_create_or_update(RG, gallery_name, name, body).result()


def version_body(emu, regions, **profile):
    targets = [r if isinstance(r, dict) else {"name": r} for r in regions]
    return {"location": emu.location,
            "properties": {"storageProfile": {"source": {"id": SOURCE.format(sub=emu.subscription_id)}},
                           "publishingProfile": dict({"targetRegions": targets}, **profile)}}


def update(profile):
    """A version PATCH body; storageProfile is required by the contract, {} keeps the source."""
    return {"properties": {"storageProfile": {}, "publishingProfile": profile}}


def replication(client, version, image="img"):
    """(aggregated state, {region key: (state, progress)}); Azure names regions by display name ("East US"),
    keyed here as ARM compares them ("eastus") so tests read as their requests spell regions."""
    v = client.gallery_image_versions.get(RG, "gal", image, version, expand="ReplicationStatus")
    status = v.properties.replication_status
    return status.aggregated_state, {model.norm_region(s.region): (s.state, s.progress) for s in status.summary}


def resolve(emu, ref, region):
    return emu.control.call("GET", f"galleries/resolve?imageId={quote(ref)}&region={region}")["name"]


# Replication takes image_replication (600 s) per region: at this scale 1.8 s, so tests stay quick
# while intermediate states remain observable.
TIME_SCALE = 0.003


@pytest.fixture
def fast(clean):
    clean.control.set_config(time_scale=TIME_SCALE)
    return clean


@pytest.fixture
def env(fast):
    emu = fast
    emu.rg(RG)
    client = emu.compute()
    make_gallery(emu, client)
    make_image(emu, client)
    return emu, client


# --- galleries and definitions -------------------------------------------------------------------

def test_gallery_lifecycle_and_listing(fast):
    emu = fast
    emu.rg(RG)
    client = emu.compute()
    poller = client.galleries.begin_create_or_update(RG, "gal", {"location": emu.location,
                                                                  "properties": {"description": "first"}})
    status, body, headers = emu.arm("GET", gallery_path(emu), api_version=API)
    assert body["properties"]["provisioningState"] in ("Creating", "Succeeded")
    created = poller.result()
    assert created.properties.provisioning_state == "Succeeded"
    assert created.properties.identifier.unique_name == f"{emu.subscription_id}-GAL"
    for i in range(5):
        make_gallery(emu, client, f"gal{i}")
    assert len(list(client.galleries.list_by_resource_group(RG))) == 6          # pages of 5
    assert {"gal", "gal4"} <= {g.name for g in client.galleries.list()}
    change = {"properties": {"description": "second"}, "tags": {"a": "b"}}
    updated = client.galleries.begin_update(RG, "gal", change).result()
    assert (updated.properties.description, updated.tags) == ("second", {"a": "b"})
    client.galleries.begin_delete(RG, "gal4").result()
    with pytest.raises(ResourceNotFoundError):
        client.galleries.get(RG, "gal4")


def _lro(headers):
    """The long-running-operation headers of an answer (any case)."""
    names = {"azure-asyncoperation", "location", "retry-after"}
    return {k.lower(): v for k, v in headers.items() if k.lower() in names}


def _settled(emu, headers):
    op_path = headers["Azure-AsyncOperation"][len(emu.url):]

    def finished():
        operation = emu.arm("GET", op_path, api_version=None)[1]
        return operation if operation["status"] != "InProgress" else None
    return wait_for(finished)


def test_writes_answer_with_the_recorded_caps_operation_headers(fast):
    """Azure/azure-cli test_gallery_e2e.yaml: gallery, definition and version PUT (201 create, 200 update)
    carry Azure-AsyncOperation only (capsOperations, no Location, no Retry-After); DELETE answers 202 with
    Azure-AsyncOperation and Location (...?monitor=true)."""
    emu = fast
    emu.rg(RG)
    writes = [(gallery_path(emu), {"location": emu.location}),
              (image_id(emu), {"location": emu.location, "properties": {
                  "osType": "Linux", "osState": "Generalized",
                  "identifier": {"publisher": "fleetops", "offer": "web", "sku": "img"}}}),
              (image_id(emu, version="1.0.0"), version_body(emu, [emu.location]))]
    for path, body in writes:
        status, answer, headers = emu.arm("PUT", path, body, api_version=API)
        assert status == 201 and answer["properties"]["provisioningState"] == "Creating"
        lro = _lro(headers)
        assert set(lro) == {"azure-asyncoperation"} and "/capsOperations/" in lro["azure-asyncoperation"]
        assert _settled(emu, headers)["status"] == "Succeeded"
    status, _, headers = emu.arm("PUT", image_id(emu, version="1.0.0"), version_body(emu, [emu.location]),
                                 api_version=API)
    assert status == 200 and set(_lro(headers)) == {"azure-asyncoperation"}
    _settled(emu, headers)
    status, _, headers = emu.arm("PATCH", image_id(emu, version="1.0.0"), update({"excludeFromLatest": True}),
                                 api_version=API)
    assert status == 200 and set(_lro(headers)) == {"azure-asyncoperation"}
    _settled(emu, headers)
    status, body, headers = emu.arm("DELETE", image_id(emu, version="1.0.0"), api_version=API)
    lro = _lro(headers)
    assert (status, body, set(lro)) == (202, None, {"azure-asyncoperation", "location"})
    assert "/capsOperations/" in lro["location"] and "monitor=true" in lro["location"]
    assert _settled(emu, headers)["status"] == "Succeeded"


def test_target_regions_come_back_as_display_names(env):
    """Azure answers targetRegions[].name and replicationStatus.summary[].region with display names ("eastus2"
    -> "East US 2", test_gallery_e2e.yaml), whatever the request spelled; a region it does not know (an edge
    or a new region) as given; the version's own location stays the region key."""
    emu, _ = env
    body = version_body(emu, [emu.location, "eastus2", {"name": "North Europe"}, "marsnorth1"])
    status, answer, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), body, api_version=API)
    assert status == 201
    names = [t["name"] for t in answer["properties"]["publishingProfile"]["targetRegions"]]
    assert names == ["West Europe", "East US 2", "North Europe", "marsnorth1"]
    assert answer["location"] == emu.location == "westeurope"
    status, got, _ = emu.arm("GET", image_id(emu, version="1.0.0") + "?$expand=ReplicationStatus", api_version=API)
    assert [s["region"] for s in got["properties"]["replicationStatus"]["summary"]] == names
    assert got["location"] == "westeurope"
    # Re-sending the request's spelling is no change: no region replicates again.
    status, again, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), body, api_version=API)
    assert status == 200
    assert [t["name"] for t in again["properties"]["publishingProfile"]["targetRegions"]] == names


def test_definition_crud_and_immutable_properties(env):
    emu, client = env
    image = client.gallery_images.get(RG, "gal", "img")
    assert (image.properties.os_type, image.properties.hyper_v_generation, image.properties.architecture) == \
        ("Linux", "V1", "x64")
    updated = client.gallery_images.begin_update(RG, "gal", "img", {"properties": {
        "osType": "Linux", "osState": "Generalized", "description": "web tier",
        "endOfLifeDate": "2030-01-01T00:00:00Z",
        "identifier": {"publisher": "fleetops", "offer": "web", "sku": "img"}}}).result()
    assert updated.properties.description == "web tier"
    status, body, _ = emu.arm("PUT", image_id(emu), {"location": emu.location, "properties": {
        "osType": "Windows", "osState": "Generalized",
        "identifier": {"publisher": "fleetops", "offer": "web", "sku": "img"}}}, api_version=API)
    assert status == 409 and body["error"] == {
        "code": "PropertyChangeNotAllowed", "target": "galleryImage.properties.osType",
        "message": "Changing property 'galleryImage.properties.osType' is not allowed."}
    same = {"osType": "Linux", "osState": "Generalized",
            "identifier": {"publisher": "fleetops", "offer": "web", "sku": "img"}}
    other_publisher = dict(same, identifier=dict(same["identifier"], publisher="other"))
    status, body, _ = emu.arm("PATCH", image_id(emu), {"properties": other_publisher}, api_version=API)
    assert (status, body["error"]["target"]) == (409, "galleryImage.properties.identifier.publisher")
    features = [{"name": "SecurityType", "value": "TrustedLaunch"}]
    status, body, _ = emu.arm("PATCH", image_id(emu), {"properties": dict(same, features=features)}, api_version=API)
    assert (status, body["error"]["code"]) == (409, "PropertyChangeNotAllowed")
    allowed = dict(same, features=features, allowUpdateImage=True)
    status, body, _ = emu.arm("PATCH", image_id(emu), {"properties": allowed}, api_version=API)
    assert status == 200 and body["properties"]["features"] == features
    assert [i.name for i in client.gallery_images.list_by_gallery(RG, "gal")] == ["img"]


def test_delete_refuses_while_nested_resources_exist(env):
    emu, client = env
    client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "1.0.0",
                                                         version_body(emu, [emu.location])).result()
    status, body, _ = emu.arm("DELETE", gallery_path(emu), api_version=API)
    assert (status, body["error"]["code"]) == (409, "CannotDeleteResource")
    status, body, _ = emu.arm("DELETE", image_id(emu), api_version=API)
    assert status == 409 and "galleries/gal/images/img/versions/1.0.0" in body["error"]["message"]
    client.gallery_image_versions.begin_delete(RG, "gal", "img", "1.0.0").result()
    client.gallery_images.begin_delete(RG, "gal", "img").result()
    client.galleries.begin_delete(RG, "gal").result()
    assert list(client.galleries.list_by_resource_group(RG)) == []


def test_children_need_their_parent(fast):
    emu = fast
    emu.rg(RG)
    status, body, _ = emu.arm("PUT", image_id(emu), {"location": emu.location, "properties": {
        "osType": "Linux", "osState": "Generalized", "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}},
        api_version=API)
    assert (status, body["error"]["code"]) == (404, "ParentResourceNotFound")
    status, body, _ = emu.arm("GET", gallery_path(emu), api_version=API)
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")


# --- versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["1.0", "1.0.0.0", "v1.0.0", "1.0.2147483648"])
def test_version_names_must_be_major_minor_patch(env, name):
    emu, _ = env
    status, body, _ = emu.arm("PUT", image_id(emu, version=name), version_body(emu, [emu.location]), api_version=API)
    assert status == 400
    assert body["error"]["code"] == "InvalidParameter" and body["error"]["target"] == "galleryImageVersionName"
    assert "Major(int).Minor(int).Patch(int)" in body["error"]["message"]


def test_version_replicates_per_region_over_time(env):
    emu, client = env
    poller = client.gallery_image_versions.begin_create_or_update(
        RG, "gal", "img", "1.0.0", version_body(emu, [emu.location, {"name": "East US", "regionalReplicaCount": 2}],
                                                excludeFromLatest=False, endOfLifeDate="2030-01-01T00:00:00Z"))
    v = client.gallery_image_versions.get(RG, "gal", "img", "1.0.0")
    assert v.properties.provisioning_state == "Creating" and v.properties.replication_status is None
    state, regions = replication(client, "1.0.0")
    assert state == "InProgress"
    assert {r: s for r, (s, _) in regions.items()} == {emu.location: "Replicating", "eastus": "Replicating"}
    assert all(0 <= p < 100 for _, p in regions.values())
    time.sleep(0.6)
    _, later = replication(client, "1.0.0")
    assert later["eastus"][1] > regions["eastus"][1]                   # progress moves with (scaled) time
    done = poller.result()
    assert done.properties.provisioning_state == "Succeeded"
    profile = done.properties.publishing_profile
    assert profile.replica_count == 1 and profile.storage_account_type == "Standard_LRS"
    # a region's excludeFromLatest is answered only when it was set (sdkpy_galleries#07, 2021; 2025 likewise)
    assert [(t.name, t.regional_replica_count, t.storage_account_type, t.exclude_from_latest)
            for t in profile.target_regions] == [("West Europe", 1, "Standard_LRS", None),
                                                 ("East US", 2, "Standard_LRS", None)]
    assert profile.exclude_from_latest is False and profile.replication_mode is None
    assert profile.published_date is not None
    assert replication(client, "1.0.0") == ("Completed", {emu.location: ("Completed", 100),
                                                          "eastus": ("Completed", 100)})
    assert [v.name for v in client.gallery_image_versions.list_by_gallery_image(RG, "gal", "img")] == ["1.0.0"]


SRC = "/subscriptions/{sub}/resourceGroups/src/providers"


@pytest.mark.parametrize("storage", [
    {"source": {"virtualMachineId": SRC + "/Microsoft.Compute/virtualMachines/vm1"}},
    {"osDiskImage": {"source": {"id": SRC + "/Microsoft.Compute/snapshots/os"}},
     "dataDiskImages": [{"lun": 0, "source": {"id": SRC + "/Microsoft.Compute/disks/d0"}}]},
    {"osDiskImage": {"source": {"storageAccountId": SRC + "/Microsoft.Storage/storageAccounts/vhds",
                                "uri": "https://vhds.blob.core.windows.net/vhds/os.vhd"}}},
    {"source": {"communityGalleryImageId": "/communityGalleries/pub-1234/images/base"}},
], ids=["vm", "snapshots", "vhd", "community"])
def test_every_source_kind_is_accepted(env, storage):
    emu, client = env
    body = version_body(emu, [emu.location])
    body["properties"]["storageProfile"] = json.loads(json.dumps(storage).replace("{sub}", emu.subscription_id))
    v = client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "1.0.0", body).result()
    assert v.properties.provisioning_state == "Succeeded"


def test_gallery_version_as_source_must_exist(env):
    emu, client = env
    body = version_body(emu, [emu.location])
    body["properties"]["storageProfile"] = {"source": {"id": image_id(emu, version="9.9.9")}}
    status, err, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), body, api_version=API)
    assert status == 404
    versions = client.gallery_image_versions
    versions.begin_create_or_update(RG, "gal", "img", "9.9.9", version_body(emu, [emu.location])).result()
    assert versions.begin_create_or_update(RG, "gal", "img", "1.0.0", body).result().name == "1.0.0"


def test_vhd_source_needs_its_storage_account_and_a_source_is_required(env):
    emu, _ = env
    body = version_body(emu, [emu.location])
    vhd_only = {"uri": "https://a.blob.core.windows.net/v/os.vhd"}
    body["properties"]["storageProfile"] = {"osDiskImage": {"source": vhd_only}}
    status, err, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), body, api_version=API)
    assert (status, err["error"]["code"]) == (400, "InvalidParameter")
    body["properties"]["storageProfile"] = {}
    status, err, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), body, api_version=API)
    assert (status, err["error"]["code"]) == (400, "InvalidParameter")


def test_home_region_must_be_a_target(env):
    emu, _ = env
    status, body, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), version_body(emu, ["eastus"]), api_version=API)
    assert (status, body["error"]["code"]) == (400, "InvalidParameter")


def test_region_added_later_replicates_only_itself(env):
    emu, client = env
    client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "1.0.0",
                                                         version_body(emu, [emu.location])).result()
    poller = client.gallery_image_versions.begin_update(
        RG, "gal", "img", "1.0.0", update({"targetRegions": [{"name": emu.location}, {"name": "eastus"}]}))
    state, regions = replication(client, "1.0.0")
    assert state == "InProgress"
    assert regions[emu.location] == ("Completed", 100) and regions["eastus"][0] == "Replicating"
    with pytest.raises(Exception):
        resolve(emu, image_id(emu, version="1.0.0"), "eastus")              # not usable there yet
    assert poller.result().properties.provisioning_state == "Succeeded"
    assert replication(client, "1.0.0")[1]["eastus"] == ("Completed", 100)
    assert resolve(emu, image_id(emu, version="1.0.0"), "eastus") == "1.0.0"


def test_exclude_from_latest_changes_latest_without_replicating_again(env):
    emu, client = env
    for name in ("1.0.0", "1.1.0", "1.0.5"):
        client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", name,
                                                             version_body(emu, [emu.location, "eastus"])).result()
    assert resolve(emu, image_id(emu), emu.location) == "1.1.0"             # highest number, not newest
    assert resolve(emu, image_id(emu, version="latest"), "eastus") == "1.1.0"
    poller = client.gallery_image_versions.begin_update(RG, "gal", "img", "1.1.0", update({"excludeFromLatest": True}))
    assert replication(client, "1.1.0") == ("Completed", {emu.location: ("Completed", 100),
                                                          "eastus": ("Completed", 100)})
    assert poller.result().properties.publishing_profile.exclude_from_latest is True
    assert resolve(emu, image_id(emu), emu.location) == "1.0.5"
    assert resolve(emu, image_id(emu, version="1.1.0"), emu.location) == "1.1.0"   # still usable by name
    # Regional flag: 1.0.5 is hidden from "latest" in eastus only.
    client.gallery_image_versions.begin_update(RG, "gal", "img", "1.0.5", update(
        {"targetRegions": [{"name": emu.location}, {"name": "eastus", "excludeFromLatest": True}]})).result()
    assert resolve(emu, image_id(emu), emu.location) == "1.0.5"
    assert resolve(emu, image_id(emu), "eastus") == "1.0.0"


def test_failed_replication_and_retry(env):
    emu, client = env
    emu.control.call("POST", "replication-failures", {"region": "eastus", "version": "2.0.0", "count": 1,
                                                      "details": "Disk copy timed out."})
    poller = client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "2.0.0",
                                                                  version_body(emu, [emu.location, "eastus"]))
    with pytest.raises(HttpResponseError) as failure:
        poller.result()
    assert "CrpPirReplicationJobsNotCompleted" in str(failure.value)
    assert "{region:eastus, detail:Disk copy timed out.}" in str(failure.value)
    state, regions = replication(client, "2.0.0")
    assert state == "Failed"
    assert regions[emu.location] == ("Completed", 100) and regions["eastus"][0] == "Failed"
    v = client.gallery_image_versions.get(RG, "gal", "img", "2.0.0", expand="ReplicationStatus")
    assert v.properties.provisioning_state == "Failed"
    details = [s.details for s in v.properties.replication_status.summary if s.region == "East US"]
    assert details == ["Disk copy timed out."]
    assert resolve(emu, image_id(emu, version="2.0.0"), emu.location) == "2.0.0"
    with pytest.raises(Exception, match="GalleryImageNotFound"):
        resolve(emu, image_id(emu, version="2.0.0"), "eastus")
    with pytest.raises(Exception, match="InvalidParameter"):
        resolve(emu, image_id(emu), "eastus")
    # The rule was for one failure: an update retries the failed region only.
    retried = client.gallery_image_versions.begin_update(RG, "gal", "img", "2.0.0", update({})).result()
    assert retried.properties.provisioning_state == "Succeeded"
    assert replication(client, "2.0.0")[0] == "Completed"
    assert emu.control.call("GET", "replication-failures")["value"] == []


def test_immutable_version_properties(env):
    emu, client = env
    client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "1.0.0",
                                                         version_body(emu, [emu.location])).result()
    status, body, _ = emu.arm("PATCH", image_id(emu, version="1.0.0"), update({"storageAccountType": "Premium_LRS"}),
                              api_version=API)
    assert (status, body["error"]["code"]) == (409, "PropertyChangeNotAllowed")
    other = version_body(emu, [emu.location])
    other["properties"]["storageProfile"]["source"]["id"] += "-other"
    status, body, _ = emu.arm("PUT", image_id(emu, version="1.0.0"), other, api_version=API)
    assert (status, body["error"]["target"]) == (409, "galleryImageVersion.properties.storageProfile.source.id")


def test_deleting_a_version_takes_it_out_of_latest(env):
    emu, client = env
    for name in ("1.0.0", "1.0.1"):
        client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", name,
                                                             version_body(emu, [emu.location])).result()
    emu.control.set_config(time_scale=0.05)    # Deleting lasts 3 s, so a busy machine still reads it (0.18 s here)
    poller = client.gallery_image_versions.begin_delete(RG, "gal", "img", "1.0.1")
    assert client.gallery_image_versions.get(RG, "gal", "img", "1.0.1").properties.provisioning_state == "Deleting"
    assert resolve(emu, image_id(emu), emu.location) == "1.0.0"
    poller.result()
    with pytest.raises(ResourceNotFoundError):
        client.gallery_image_versions.get(RG, "gal", "img", "1.0.1")


# --- resolve_gallery_image, in process -----------------------------------------------------------

def _version(definition_id, name, regions, exclude=False, states=None):
    """A stored version document as the provider keeps it (replication state included)."""
    states = states or {}
    return {"id": f"{definition_id}/versions/{name}", "name": name, "type": model.VERSION, "location": "westeurope",
            "properties": {"provisioningState": "Succeeded", "publishingProfile": model.publishing_profile(
                "westeurope", {"targetRegions": regions, "excludeFromLatest": exclude})},
            "_replication": {model.norm_region(r["name"]): {
                "region": r["name"], "state": states.get(r["name"], "Completed"), "start": 0, "end": 1, "gen": 1}
                for r in regions}}


def test_resolve_gallery_image_in_process(tmp_path):
    ctx = Emulator(str(tmp_path / "state"))
    definition = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web"
    ctx.store.put(definition, {"id": definition, "name": "web", "type": model.IMAGE, "location": "westeurope",
                               "properties": {"osType": "Linux"}}, model.IMAGE)
    docs = [_version(definition, "1.2.0", [{"name": "westeurope"}, {"name": "eastus"}]),
            _version(definition, "1.10.0", [{"name": "westeurope"}, {"name": "eastus"}],
                     states={"eastus": "Replicating"}),
            _version(definition, "2.0.0", [{"name": "westeurope"}], exclude=True),
            _version(definition, "1.9.0", [{"name": "westeurope"}, {"name": "East US", "excludeFromLatest": True}])]
    for doc in docs:
        ctx.store.put(doc["id"], doc, model.VERSION)
    assert gallery.resolve_gallery_image(ctx, definition, "West Europe")[1] == "1.10.0"   # numeric, not lexical
    assert gallery.resolve_gallery_image(ctx, definition + "/versions/latest", "eastus")[1] == "1.2.0"
    version, name = gallery.resolve_gallery_image(ctx, definition + "/versions/2.0.0", "westeurope")
    assert name == "2.0.0" and "_replication" not in version
    with pytest.raises(Exception) as missing:
        gallery.resolve_gallery_image(ctx, definition + "/versions/1.10.0", "eastus")
    assert (missing.value.status, missing.value.code, missing.value.target) == \
        (404, "GalleryImageNotFound", "imageReference")
    assert "is not available in eastus region" in missing.value.message
    with pytest.raises(Exception) as none:
        gallery.resolve_gallery_image(ctx, definition, "northeurope")
    assert (none.value.status, none.value.code) == (400, "InvalidParameter")
    with pytest.raises(Exception) as unknown:
        gallery.resolve_gallery_image(ctx, definition.replace("web", "api"), "westeurope")
    assert unknown.value.code == "GalleryImageNotFound"


def test_pure_rules():
    assert model.parse_version("1.2.3") == (1, 2, 3) and model.parse_version("1.2") is None
    assert model.next_version(["1.0.0", "1.2.9", "1.10.1", "2.0.0"], major=1) == "1.10.2"
    assert model.next_version([], major=-1) == "1.0.0" and model.next_version(["3.1.4"]) == "3.1.5"
    assert model.next_version(["1.0.0"], major=4) == "4.0.0"
    start, drop = model.plan_replication({"westeurope": {"state": "Completed"}, "eastus": {"state": "Failed"},
                                          "northeurope": {"state": "Completed"}},
                                         [{"name": "West Europe"}, {"name": "eastus"}, {"name": "uksouth"}])
    assert (start, drop) == (["eastus", "uksouth"], ["northeurope"])
    assert model.aggregated_state({"a": {"state": "Completed"}, "b": {"state": "Failed"}}) == "Failed"


# --- the contract's examples ---------------------------------------------------------------------

OPERATIONS = ("Galleries_CreateOrUpdate", "Galleries_Update", "GalleryImages_CreateOrUpdate", "GalleryImages_Update",
              "GalleryImageVersions_CreateOrUpdate", "GalleryImageVersions_Update")


def _specs():
    specs = SpecIndex.load()
    if not specs.available:
        pytest.skip(specs.reason)
    return specs


def _substitute(value, emu):
    text = json.dumps(value)
    for placeholder, real in (("{subscription-id}", emu.subscription_id), ("{subscriptionId}", emu.subscription_id),
                              ("{resourceGroup}", RG), ("{galleryName}", "gal"), ("{imageDefinitionName}", "img"),
                              ("{versionName}", "0.0.1")):
        text = text.replace(placeholder, real)
    return json.loads(text)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_example_request_is_accepted(env, operation):
    emu, client = env
    client.gallery_image_versions.begin_create_or_update(RG, "gal", "img", "0.0.1",
                                                         version_body(emu, ["West US", emu.location])).result()
    examples = _specs().examples(operation)
    assert examples, operation
    for n, example in enumerate(examples):
        body = _substitute(copy.deepcopy(example.body), emu)
        path, method = _example_target(emu, client, operation, n, body)
        status, answer, _ = emu.arm(method, path, body, api_version=API)
        assert status in (200, 201, 202), (example.title, answer)


def _example_target(emu, client, operation, n, body):
    """Where to send example `n`: a fresh resource for creates, an existing compatible one for updates."""
    if operation == "Galleries_Update":
        make_gallery(emu, client, f"ex{n}")
        return gallery_path(emu, f"ex{n}"), "PATCH"
    if operation == "Galleries_CreateOrUpdate":
        return gallery_path(emu, f"ex{n}"), "PUT"
    if operation.startswith("GalleryImages_"):
        if operation.endswith("_Update"):
            props = {k: v for k, v in body["properties"].items() if k not in ("features", "allowUpdateImage")}
            client.gallery_images.begin_create_or_update(RG, "gal", f"ex{n}", {"location": "West US",
                                                                                 "properties": props}).result()
            return image_id(emu, f"ex{n}"), "PATCH"
        return image_id(emu, f"ex{n}"), "PUT"
    make_image(emu, client, name=f"ex{n}")
    if operation.endswith("_Update"):
        # The update examples name the same source as the create examples: create the version from it.
        source = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Compute" \
                 "/images/{imageName}"
        regions = (body["properties"].get("publishingProfile") or {}).get("targetRegions") or [{"name": "West US"}]
        existing = {"location": "West US", "properties": {
            "storageProfile": {"source": {"id": source}}, "publishingProfile": {"targetRegions": regions}}}
        client.gallery_image_versions.begin_create_or_update(RG, "gal", f"ex{n}", "1.0.0", existing).result()
        return image_id(emu, f"ex{n}", "1.0.0"), "PATCH"
    return image_id(emu, f"ex{n}", "1.0.0"), "PUT"
