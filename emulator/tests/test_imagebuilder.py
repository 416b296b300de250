"""Azure Image Builder templates through azure-mgmt-imagebuilder: submission rules, immutability, runs over
scaled time, distribution into a gallery (with replication), injected build failures and RBAC."""
import copy
import json
import time
import uuid
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator.specs import SpecIndex
from test_msi_rbac import CONTRIBUTOR, READER, VM_CONTRIBUTOR, assign, auth_client, make_identity, rg_scope

RG = "aib-rg"
API = "2024-02-01"
# image_build (1200 s) -> 3.6 s and image_replication (600 s) -> 1.8 s per region at this scale.
TIME_SCALE = 0.003


def wait_for(fn, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def aib_client(emu):
    from azure.mgmt.imagebuilder import ImageBuilderClient
    return ImageBuilderClient(**emu.sdk_kwargs())


class Bake:
    """A resource group with a gallery definition, an identity allowed to publish to it, and clients."""

    def __init__(self, emu):
        self.emu = emu
        self.compute = emu.compute()
        self.aib = aib_client(emu)
        emu.rg(RG)
        self.compute.galleries.begin_create_or_update(RG, "gal", {"location": emu.location}).result()
        self.definition = self.add_definition("web")
        self.identity = make_identity(emu, RG, "aib-id")

    def add_definition(self, name):
        return self.compute.gallery_images.begin_create_or_update(RG, "gal", name, {
            "location": self.emu.location, "properties": {
                "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                "identifier": {"publisher": "fleetops", "offer": "web", "sku": name}}}).result().id

    def allow(self, role=CONTRIBUTOR, scope=None):
        return assign(self.emu, scope or rg_scope(self.emu, RG), self.identity.principal_id, role)

    def body(self, distribute=None, customize=None, source=None, **props):
        return {"location": self.emu.location,
                "identity": {"type": "UserAssigned", "userAssignedIdentities": {self.identity.id: {}}},
                "properties": dict({
                    "source": source or {"type": "PlatformImage", "publisher": "Canonical",
                                         "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                                         "version": "latest"},
                    "customize": [{"type": "Shell", "name": "install-app", "inline": ["apt-get install -y app"]},
                                  {"type": "Shell", "name": "harden", "scriptUri": "https://example.com/harden.sh"}]
                    if customize is None else customize,
                    "distribute": distribute or [self.shared_image()]}, **props)}

    def shared_image(self, image_id=None, name="web-image", **extra):
        return dict({"type": "SharedImage", "galleryImageId": image_id or self.definition, "runOutputName": name,
                     "targetRegions": [{"name": self.emu.location}, {"name": "eastus", "replicaCount": 2}],
                     "versioning": {"scheme": "Latest", "major": 1}}, **extra)

    def create(self, name, body):
        return self.aib.virtual_machine_image_templates.begin_create_or_update(RG, name, body).result()

    def status(self, name):
        return self.aib.virtual_machine_image_templates.get(RG, name).properties.last_run_status

    def path(self, name):
        return f"/subscriptions/{self.emu.subscription_id}/resourceGroups/{RG}/providers/" \
               f"Microsoft.VirtualMachineImages/imageTemplates/{name}"


@pytest.fixture
def bake(clean):
    clean.control.set_config(time_scale=TIME_SCALE)
    return Bake(clean)


# --- templates -----------------------------------------------------------------------------------

def test_template_lifecycle(bake):
    emu, templates = bake.emu, bake.aib.virtual_machine_image_templates
    poller = templates.begin_create_or_update(RG, "web-tpl", bake.body())
    assert templates.get(RG, "web-tpl").properties.provisioning_state in ("Creating", "Succeeded")
    template = poller.result()
    assert template.properties.provisioning_state == "Succeeded"
    assert template.properties.last_run_status is None
    identity = template.identity.user_assigned_identities[bake.identity.id]
    assert (identity.principal_id, identity.client_id) == (bake.identity.principal_id, bake.identity.client_id)
    assert f"/resourceGroups/IT_{RG}_web-tpl_" in template.properties.exact_staging_resource_group
    assert [t.name for t in templates.list_by_resource_group(RG)] == ["web-tpl"]
    assert "web-tpl" in {t.name for t in templates.list()}
    updated = templates.begin_update(RG, "web-tpl", {"tags": {"stage": "bake"}}).result()
    assert updated.tags == {"stage": "bake"}
    templates.begin_delete(RG, "web-tpl").result()
    with pytest.raises(ResourceNotFoundError):
        templates.get(RG, "web-tpl")


def _only_identity(body):
    return next(iter(body["identity"]["userAssignedIdentities"]))


@pytest.mark.parametrize("mutate,code,fragment", [
    (lambda b: b["identity"].update(type="None"), "ValidationFailed", "Field 'type' has a bad value: 'None'"),
    (lambda b: b["properties"].update(source={"type": "ManagedImage", "imageId": "/not/an/image"}), "ValidationFailed",
     "Field 'imageId' has a bad value"),
    (lambda b: b["properties"]["customize"][0].update(scriptUri="https://x/y.sh"), "ValidationFailed",
     "Exactly one of 'scriptUri' or 'inline'"),
    (lambda b: b["properties"]["customize"].append({"type": "File", "name": "f"}), "ValidationFailed",
     "Missing field 'sourceUri'"),
    (lambda b: b["properties"]["distribute"][0].update(galleryImageId="/subscriptions/x/gallery"), "ValidationFailed",
     "galleryImageId"),
    (lambda b: b["properties"]["distribute"].append(dict(b["properties"]["distribute"][0])), "ValidationFailed",
     "runOutputName"),
    (lambda b: b["identity"].update(userAssignedIdentities={_only_identity(b) + "-gone": {}}),
     "FailedIdentityOperation", "was not found"),
])
def test_submission_is_validated(bake, mutate, code, fragment):
    body = bake.body()
    mutate(body)
    status, err, _ = bake.emu.arm("PUT", bake.path("bad-tpl"), body, api_version=API)
    assert (status, err["error"]["code"]) == (400, code)
    assert fragment in err["error"]["message"]


@pytest.mark.parametrize("mutate,target", [
    (lambda b: b.pop("identity"), "identity"),
    (lambda b: b["properties"]["source"].update(type="Iso"), "properties.source.type"),
    (lambda b: b["properties"]["customize"][0].update(type="Ansible"), "properties.customize[0].type"),
])
def test_contract_violations_are_refused_before_image_builder_checks(mutate, target):
    """What the contract itself forbids is refused by the spec validation (InvalidParameter), which runs
    before Image Builder's own checks; checked in process to keep such requests off the session's
    traffic, which oav validates."""
    from emulator.arm import ArmError
    specs = SpecIndex.load()
    if not specs.available:
        pytest.skip(specs.reason)
    body = {"location": "westeurope", "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/x": {}}},
            "properties": {"source": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s"},
                           "customize": [{"type": "Shell", "inline": ["true"]}],
                           "distribute": [{"type": "VHD", "runOutputName": "vhd"}]}}
    specs.validate_body("VirtualMachineImageTemplates_CreateOrUpdate", copy.deepcopy(body))
    mutate(body)
    with pytest.raises(ArmError) as refused:
        specs.validate_body("VirtualMachineImageTemplates_CreateOrUpdate", body)
    assert (refused.value.status, refused.value.code, refused.value.target) == (400, "InvalidParameter", target)


def test_a_template_cannot_be_updated_in_place(bake):
    emu = bake.emu
    bake.create("web-tpl", bake.body())
    status, same, _ = emu.arm("PUT", bake.path("web-tpl"), bake.body(), api_version=API)
    assert status == 200 and same["properties"]["provisioningState"] == "Succeeded"
    changed = bake.body(customize=[{"type": "Shell", "name": "other", "inline": ["true"]}])
    status, err, _ = emu.arm("PUT", bake.path("web-tpl"), changed, api_version=API)
    assert status == 409 and err["error"]["code"] == "Conflict"
    assert err["error"]["message"].startswith("Update/Upgrade of image templates is currently not supported.")


def test_missing_distribution_target_fails_provisioning(bake):
    body = bake.body(distribute=[bake.shared_image(bake.definition.replace("/web", "/nothing"))])
    with pytest.raises(HttpResponseError) as failed:
        bake.create("bad-target", body)
    assert "BadSharedImageDistribute" in str(failed.value)
    template = bake.aib.virtual_machine_image_templates.get(RG, "bad-target")
    assert template.properties.provisioning_state == "Failed"
    assert template.properties.provisioning_error.provisioning_error_code == "BadSharedImageDistribute"
    status, err, _ = bake.emu.arm("POST", bake.path("bad-target") + "/run", api_version=API)
    assert (status, err["error"]["code"]) == (409, "OperationNotAllowed")


# --- runs ----------------------------------------------------------------------------------------

def test_run_builds_distributes_and_replicates(bake):
    emu, templates = bake.emu, bake.aib.virtual_machine_image_templates
    bake.allow()
    bake.create("web-tpl", bake.body())
    poller = templates.begin_run(RG, "web-tpl")
    first = bake.status("web-tpl")
    # Azure reports Go's zero time as endTime while a run has not ended (test_image_builder_cancel.yaml).
    assert first.run_state == "Running" and first.start_time is not None and first.end_time.year == 1
    seen = set()

    def distributing():
        status = bake.status("web-tpl")
        seen.add(status.run_sub_state)
        return status.run_sub_state == "Distributing"
    wait_for(distributing)
    assert {"Customizing", "Distributing"} <= seen
    status, err, _ = emu.arm("DELETE", bake.path("web-tpl"), api_version=API)   # not while it runs
    assert (status, err["error"]["code"]) == (409, "OperationNotAllowed")
    version = wait_for(lambda: list(bake.compute.gallery_image_versions.list_by_gallery_image(RG, "gal", "web")))[0]
    assert version.name == "1.0.0"
    regions = bake.compute.gallery_image_versions.get(RG, "gal", "web", "1.0.0", expand="ReplicationStatus")
    assert regions.properties.replication_status.aggregated_state == "InProgress"
    assert templates.get_run_output(RG, "web-tpl", "web-image").provisioning_state == "Creating"
    poller.result()
    final = bake.status("web-tpl")
    assert (final.run_state, final.message) == ("Succeeded", "") and final.end_time >= final.start_time
    outputs = list(templates.list_run_outputs(RG, "web-tpl"))
    assert [(o.name, o.artifact_id, o.provisioning_state) for o in outputs] == [
        ("web-image", f"{bake.definition}/versions/1.0.0", "Succeeded")]
    published = bake.compute.gallery_image_versions.get(RG, "gal", "web", "1.0.0", expand="ReplicationStatus")
    assert published.properties.replication_status.aggregated_state == "Completed"
    assert [(t.name, t.regional_replica_count) for t in published.properties.publishing_profile.target_regions] == \
        [("West Europe", 1), ("East US", 2)]     # display names, as Azure answers them
    templates.begin_run(RG, "web-tpl").result()                 # versioning Latest: next patch
    assert [o.artifact_id.rsplit("/", 1)[1] for o in templates.list_run_outputs(RG, "web-tpl")] == ["1.0.1"]
    latest = emu.control.call("GET", f"galleries/resolve?imageId={quote(bake.definition)}&region=eastus")
    assert latest["name"] == "1.0.1"


def test_explicit_version_and_source_versioning(bake):
    bake.allow()
    bake.create("pinned", bake.body(distribute=[bake.shared_image(bake.definition + "/versions/3.1.4",
                                                                  versioning=None, targetRegions=None)]))
    bake.aib.virtual_machine_image_templates.begin_run(RG, "pinned").result()
    pinned = bake.compute.gallery_image_versions.get(RG, "gal", "web", "3.1.4")
    assert [t.name for t in pinned.properties.publishing_profile.target_regions] == ["West Europe"]
    api = bake.add_definition("api")
    source = {"type": "SharedImageVersion", "imageVersionId": bake.definition + "/versions/latest"}
    body = bake.body(source=source, customize=[],
                     distribute=[bake.shared_image(api, name="api-image", versioning={"scheme": "Source"},
                                                   excludeFromLatest=True)])
    bake.create("derived", body)
    bake.aib.virtual_machine_image_templates.begin_run(RG, "derived").result()
    template = bake.aib.virtual_machine_image_templates.get(RG, "derived")
    assert template.properties.source.exact_version == bake.definition + "/versions/3.1.4"
    derived = bake.compute.gallery_image_versions.get(RG, "gal", "api", "3.1.4")
    assert derived.properties.publishing_profile.exclude_from_latest is True


def test_failed_customizer_is_named(bake):
    bake.allow()
    bake.create("web-tpl", bake.body())
    bake.emu.control.call("POST", "build-failures", {"customizer": "harden", "count": 1,
                                                     "message": "Script exited with non-zero exit status: 100."})
    with pytest.raises(HttpResponseError) as failed:
        bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    assert "harden" in str(failed.value)
    status = bake.status("web-tpl")
    assert (status.run_state, status.run_sub_state) == ("Failed", "Customizing")
    assert "Packer build command has failed" in status.message
    assert "Customizer 'harden' (Shell, step 2 of 2) failed: Script exited with non-zero exit status: 100." \
        in status.message
    assert list(bake.compute.gallery_image_versions.list_by_gallery_image(RG, "gal", "web")) == []
    assert bake.emu.control.call("GET", "build-failures")["value"] == []      # count 1: consumed
    bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    assert bake.status("web-tpl").run_state == "Succeeded"


def test_failure_by_template_name_fails_its_first_customizer(bake):
    bake.allow()
    bake.create("web-tpl", bake.body())
    bake.create("other-tpl", bake.body(distribute=[bake.shared_image(name="other")]))
    bake.emu.control.call("POST", "build-failures", {"template": "web-tpl"})
    with pytest.raises(HttpResponseError):
        bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    assert "Customizer 'install-app' (Shell, step 1 of 2)" in bake.status("web-tpl").message
    bake.aib.virtual_machine_image_templates.begin_run(RG, "other-tpl").result()
    assert bake.status("other-tpl").run_state == "Succeeded"


def test_identity_without_a_role_cannot_publish(bake):
    emu = bake.emu
    bake.create("web-tpl", bake.body())
    with pytest.raises(HttpResponseError):
        bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    status = bake.status("web-tpl")
    assert (status.run_state, status.run_sub_state) == ("Failed", "Distributing")
    assert status.message.startswith("Failed in distributing 1 images out of total 1: {[Error 0] [Distribute 0] ")
    assert 'Code="AuthorizationFailed"' in status.message
    assert f"The client '{bake.identity.client_id}' with object id '{bake.identity.principal_id}' does not have " \
           "authorization to perform action 'Microsoft.Compute/galleries/images/versions/write' over scope " \
           f"'{bake.definition}/versions/1.0.0'" in status.message
    output = bake.aib.virtual_machine_image_templates.get_run_output(RG, "web-tpl", "web-image")
    assert output.provisioning_state == "Failed"
    # Neither Reader nor Virtual Machine Contributor may write gallery versions.
    bake.allow(READER)
    bake.allow(VM_CONTRIBUTOR)
    with pytest.raises(HttpResponseError):
        bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    # A custom role with the one action, assigned at the gallery, is enough.
    from azure.mgmt.authorization.models import Permission, RoleDefinition
    guid = str(uuid.uuid4())
    subscription = f"/subscriptions/{emu.subscription_id}"
    auth_client(emu).role_definitions.create_or_update(subscription, guid, RoleDefinition(
        role_name="Gallery Publisher", permissions=[Permission(actions=[
            "Microsoft.Compute/galleries/images/versions/write", "Microsoft.Compute/galleries/images/versions/read"])],
        assignable_scopes=[subscription]))
    gallery_id = bake.definition.rsplit("/images/", 1)[0]
    assign(emu, gallery_id, bake.identity.principal_id, guid)
    bake.aib.virtual_machine_image_templates.begin_run(RG, "web-tpl").result()
    assert bake.status("web-tpl").run_state == "Succeeded"


def test_cancel_and_build_timeout(bake):
    bake.allow()
    bake.create("web-tpl", bake.body())
    templates = bake.aib.virtual_machine_image_templates
    run = templates.begin_run(RG, "web-tpl")
    status, err, _ = bake.emu.arm("POST", bake.path("web-tpl") + "/run", api_version=API)
    assert (status, err["error"]["code"]) == (409, "OperationNotAllowed")
    templates.begin_cancel(RG, "web-tpl").result()    # 204: accepted, the run goes Canceling first
    assert bake.status("web-tpl").run_state in ("Canceling", "Canceled")
    assert wait_for(lambda: bake.status("web-tpl").run_state == "Canceled")
    with pytest.raises(HttpResponseError):
        run.result()
    bake.create("quick", bake.body(distribute=[bake.shared_image(name="quick")], buildTimeoutInMinutes=5))
    with pytest.raises(HttpResponseError):
        templates.begin_run(RG, "quick").result()
    assert "context deadline exceeded" in bake.status("quick").message


def test_run_and_cancel_answer_as_recorded(bake):
    """Headers and shapes of Azure/azure-cli test_image_builder_cancel.yaml: PUT 201 with Azure-AsyncOperation
    only; run 202 with Azure-AsyncOperation and Location (the same operation), no body; lastRunStatus while
    running {startTime, endTime: 0001-01-01T00:00:00Z, runState: Running, runSubState: Queued, message: ""};
    cancel 204 with no body, then runState Canceling, message "Canceling image build", no runSubState."""
    emu = bake.emu
    bake.allow()
    status, body, headers = emu.arm("PUT", bake.path("web-tpl"), bake.body(), api_version=API)
    assert status == 201 and body["properties"]["provisioningState"] == "Creating"
    assert "Azure-AsyncOperation" in headers and "Location" not in headers and "Retry-After" not in headers
    wait_for(lambda: emu.arm("GET", bake.path("web-tpl"), api_version=API)[1]["properties"]["provisioningState"]
             == "Succeeded")
    # Queued (5% of the build) and Canceling (one poll interval) last 6 s and 1 s at this scale, 0.18 s and 0.03 s
    # at the module's: long enough for a busy machine to read them.
    emu.control.set_config(time_scale=0.1)
    status, body, headers = emu.arm("POST", bake.path("web-tpl") + "/run", api_version=API)
    assert (status, body) == (202, None)
    assert headers["Location"] == headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.VirtualMachineImages/locations/" in headers["Location"]
    assert "Retry-After" not in headers
    run = emu.arm("GET", bake.path("web-tpl"), api_version=API)[1]["properties"]["lastRunStatus"]
    assert run == {"startTime": run["startTime"], "endTime": "0001-01-01T00:00:00Z", "runState": "Running",
                   "runSubState": "Queued", "message": ""}
    status, body, headers = emu.arm("POST", bake.path("web-tpl") + "/cancel", api_version=API)
    assert (status, body) == (204, None) and "Azure-AsyncOperation" not in headers
    run = emu.arm("GET", bake.path("web-tpl"), api_version=API)[1]["properties"]["lastRunStatus"]
    assert run == {"startTime": run["startTime"], "endTime": "0001-01-01T00:00:00Z", "runState": "Canceling",
                   "message": "Canceling image build"}
    ended = wait_for(lambda: (lambda r: r if r["runState"] == "Canceled" else None)(
        emu.arm("GET", bake.path("web-tpl"), api_version=API)[1]["properties"]["lastRunStatus"]))
    assert ended["endTime"] >= ended["startTime"] and not ended["endTime"].startswith("0001")


def test_auto_run_and_other_distributors(bake):
    bake.allow()
    image_id = f"/subscriptions/{bake.emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Compute/images/web"
    body = bake.body(customize=[], autoRun={"state": "Enabled"}, distribute=[
        {"type": "ManagedImage", "imageId": image_id, "location": bake.emu.location, "runOutputName": "managed"},
        {"type": "VHD", "runOutputName": "vhd"}])
    bake.create("auto", body)
    wait_for(lambda: (bake.status("auto") or None) and bake.status("auto").run_state == "Succeeded")
    outputs = {o.name: o for o in bake.aib.virtual_machine_image_templates.list_run_outputs(RG, "auto")}
    assert outputs["managed"].artifact_id == image_id
    assert outputs["vhd"].artifact_uri.endswith("/vhds/vhd.vhd")


# --- the contract's examples ---------------------------------------------------------------------

@pytest.mark.parametrize("title", ["Create an Image Template for Linux.", "Create an Image Template for Windows."])
def test_example_templates_are_accepted(bake, title):
    specs = SpecIndex.load()
    if not specs.available:
        pytest.skip(specs.reason)
    example = next(e for e in specs.examples("VirtualMachineImageTemplates_CreateOrUpdate") if e.title == title)
    emu = bake.emu
    emu.rg("rg1")
    make_identity(emu, "rg1", "identity_1")
    text = json.dumps(example.body).replace("00000000-0000-0000-0000-000000000000", emu.subscription_id)
    body = json.loads(text.replace("{subscription-id}", emu.subscription_id))
    status, answer, _ = emu.arm("PUT", bake.path("example"), body, api_version=API)
    assert status == 201, answer
    templates = bake.aib.virtual_machine_image_templates
    wait_for(lambda: templates.get(RG, "example").properties.provisioning_state == "Succeeded")
    template = templates.get(RG, "example")
    assert template.properties.customize[0].type == example.body["properties"]["customize"][0]["type"]
