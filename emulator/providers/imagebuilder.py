"""Azure VM Image Builder: Microsoft.VirtualMachineImages/imageTemplates (2024-02-01 contract).

A template is validated when it is submitted (PUT, a long-running operation), cannot be changed in
place afterwards (PUT of a different template answers 409 Conflict "Update/Upgrade of image
templates is currently not supported..."), and builds when `run` is posted:

    Queued -> Building -> Customizing (one slice per customizer) -> [Optimizing] -> [Validating]
           -> Distributing -> Succeeded | Failed

over the scaled `image_build` duration; while it runs `lastRunStatus.endTime` is Go's zero time
"0001-01-01T00:00:00Z", as Azure reports it. `run` answers 202 with Azure-AsyncOperation and Location;
`cancel` answers 204 and the run goes Canceling (message "Canceling image build"), then Canceled
(Azure/azure-cli test_image_builder_cancel.yaml recording). Distributing to a gallery (SharedImage) creates the image
version through the gallery provider and waits, as Azure does, until it has replicated to every
target region. The template's user-assigned identity must be allowed to write that version (a
role assignment at the gallery, its resource group or subscription), else the run fails with the
AuthorizationFailed text Azure reports. Failures can be injected with the control API
(/_emulator/build-failures: {"template"?, "customizer"?, "message"?, "count"?}).

Messages follow Azure's troubleshooting guide (learn.microsoft.com, "Troubleshoot Azure VM Image
Builder"): ValidationFailed "Validation failed: '<field>': ...", the packerizer failure text, the
"Failed in distributing N images out of total M: {[Error 0] [Distribute 0] ...}" text, and
OperationNotAllowed "... is not allowed in provisioningState: ..., runState: ..."
(danielsollondon/azvmimagebuilder#38). The emulator appends the failed customizer's name to the
packerizer text (Azure leaves it to customization.log, which the emulator does not have).
"""
import json
import re
import uuid

from emulator.app import timer
from emulator.arm import ArmError, Response, check_etag, not_found, ok, page
from emulator.clock import DURATIONS
from emulator.control import rules_api
from emulator.providers import gallery, identity_rbac
from emulator.providers.gallery import model as gallery_model
from emulator.server import route

TEMPLATE = "Microsoft.VirtualMachineImages/imageTemplates"
RUN_OUTPUT = "Microsoft.VirtualMachineImages/imageTemplates/runOutputs"
NAMESPACE = "Microsoft.VirtualMachineImages"
BUILD_FAILURES = "build_failures"
TEMPLATE_REFERENCE = "Please review http://aka.ms/azvmimagebuildertmplref for details on fields requirements in " \
                     "the Image Builder Template."
GALLERY_WRITE = "Microsoft.Compute/galleries/images/versions/write"
IMAGE_WRITE = "Microsoft.Compute/images/write"

SOURCE_TYPES = ("PlatformImage", "ManagedImage", "SharedImageVersion")
CUSTOMIZER_TYPES = ("Shell", "PowerShell", "File", "WindowsRestart", "WindowsUpdate")
DISTRIBUTOR_TYPES = ("ManagedImage", "SharedImage", "VHD")
READ_ONLY = ("provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup")

_MANAGED_IMAGE = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/images/[^/]+$",
                            re.I)
_RUN_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9-_.]{1,64}$")

_BASE = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.VirtualMachineImages"
_TEMPLATE = _BASE + "/imageTemplates/{imageTemplateName}"


def _duration(ctx, name):
    return ctx.clock.duration(name)


def _public(doc):
    return {k: v for k, v in doc.items() if not k.startswith("_")} if doc else doc


# --- submission checks (pure) --------------------------------------------------------------------

def _invalid(where, detail):
    return ArmError(400, "ValidationFailed", f"Validation failed: '{where}': {detail}. {TEMPLATE_REFERENCE}")


def _missing(where, field):
    return _invalid(where, f"Missing field '{field}'")


def _bad(where, field, value):
    return _invalid(where, f"Field '{field}' has a bad value: '{value}'")


def check_identity(identity):
    """Image Builder needs exactly one user-assigned identity; returns its resource id."""
    if not identity:
        raise _missing("ImageTemplate", "identity")
    if identity.get("type") != "UserAssigned":
        raise _bad("ImageTemplate.identity", "type", identity.get("type"))
    identities = list((identity.get("userAssignedIdentities") or {}).keys())
    if len(identities) != 1:
        raise _invalid("ImageTemplate.identity", "Exactly one user assigned identity is supported in "
                                                 "'userAssignedIdentities'")
    return identities[0]


def check_source(source):
    where = "ImageTemplate.properties.source"
    if not source:
        raise _missing("ImageTemplate.properties", "source")
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        raise _bad(where, "type", kind)
    if kind == "PlatformImage":
        for field in ("publisher", "offer", "sku"):
            if not source.get(field):
                raise _missing(where, field)
    elif kind == "ManagedImage" and not _MANAGED_IMAGE.match(source.get("imageId") or ""):
        raise _bad(where, "imageId", source.get("imageId"))
    elif kind == "SharedImageVersion" and not (gallery_model.split_image_id(source.get("imageVersionId"))
                                               or (None, None))[1]:
        raise _bad(where, "imageVersionId", source.get("imageVersionId"))


def check_customizers(customizers):
    for i, customizer in enumerate(customizers or []):
        where = f"ImageTemplate.properties.customize[{i}]"
        kind = customizer.get("type")
        if kind not in CUSTOMIZER_TYPES:
            raise _bad(where, "type", kind)
        if kind in ("Shell", "PowerShell") and bool(customizer.get("scriptUri")) == bool(customizer.get("inline")):
            raise _invalid(where, "Exactly one of 'scriptUri' or 'inline' must be specified")
        if kind == "File":
            for field in ("sourceUri", "destination"):
                if not customizer.get(field):
                    raise _missing(where, field)


def check_distributors(distributors, source):
    if not distributors:
        raise _missing("ImageTemplate.properties", "distribute")
    seen = set()
    for i, dist in enumerate(distributors):
        where = f"ImageTemplate.properties.distribute[{i}]"
        kind = dist.get("type")
        if kind not in DISTRIBUTOR_TYPES:
            raise _bad(where, "type", kind)
        name = dist.get("runOutputName")
        if not name:
            raise _missing(where, "runOutputName")
        if not _RUN_OUTPUT_NAME.match(name) or name.lower() in seen:
            raise _bad(where, "runOutputName", name)
        seen.add(name.lower())
        if kind == "ManagedImage":
            for field in ("imageId", "location"):
                if not dist.get(field):
                    raise _missing(where, field)
        if kind == "SharedImage":
            _check_shared_image(where, dist, source)


def _check_shared_image(where, dist, source):
    parts = gallery_model.split_image_id(dist.get("galleryImageId"))
    if parts is None:
        raise _bad(where, "galleryImageId", dist.get("galleryImageId"))
    if dist.get("targetRegions") and dist.get("replicationRegions"):
        raise _invalid(where, "Only one of 'targetRegions' and 'replicationRegions' can be specified")
    versioning = dist.get("versioning")
    if versioning:
        if parts[1]:
            raise _invalid(where, "'versioning' cannot be specified when 'galleryImageId' names a version")
        if versioning.get("scheme") not in ("Latest", "Source"):
            raise _bad(where + ".versioning", "scheme", versioning.get("scheme"))
        versionable_source = (source or {}).get("type") in ("PlatformImage", "SharedImageVersion")
        if versioning["scheme"] == "Source" and not versionable_source:
            raise _invalid(where + ".versioning", "Scheme 'Source' needs a PlatformImage or SharedImageVersion source")
    elif parts[1]:
        gallery_model.check_version_name(parts[1])


def _definition_key(location, identity, props):
    """What makes two submissions the same template (tags excluded: they are ARM metadata)."""
    identity = identity or {}
    return json.dumps({"location": (location or "").replace(" ", "").lower(),
                       "identity": [identity.get("type"),
                                    sorted(k.lower() for k in (identity.get("userAssignedIdentities") or {}))],
                       "properties": {k: v for k, v in (props or {}).items() if k not in READ_ONLY}},
                      sort_keys=True)


# --- templates -----------------------------------------------------------------------------------

def _template_id(req):
    p = req.params
    return f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}" \
           f"/providers/Microsoft.VirtualMachineImages/imageTemplates/{p['imageTemplateName']}"


def _existing(ctx, req):
    doc = ctx.store.get(_template_id(req))
    if doc is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        raise not_found(TEMPLATE, req.params["imageTemplateName"], req.params["resourceGroupName"])
    return doc


def _identity_block(ctx, template_id, identity_id):
    """identity as returned: the one identity with its principalId and clientId (it must exist)."""
    msi = identity_rbac.identity(ctx, identity_id)
    if msi is None:
        raise ArmError(400, "FailedIdentityOperation",
                       f"Identity operation for resource '{template_id}' failed with error 'Failed to perform resource "
                       f"identity operation. Status: 'NotFound'. Response: '{{\"error\":{{\"code\":\"NotFound\","
                       f"\"message\":\"Resource '{identity_id}' was not found.\"}}}}'.'.")
    return {"type": "UserAssigned", "userAssignedIdentities": {
        identity_id: {"principalId": msi["properties"]["principalId"], "clientId": msi["properties"]["clientId"]}}}


def _distributions(distribute):
    return [dict({"artifactTags": {}}, **d) for d in distribute or []]


def _properties(ctx, props, rg, name):
    """Submitted properties with the defaults Azure fills in."""
    out = {k: v for k, v in props.items() if k not in READ_ONLY}
    # As answered in 2023 (cli_image_builder_cancel#03): no `customize` unless given, "" for an unset staging group,
    # artifactTags {} on each distribution, and a pinned platform version's exactVersion from the start.
    if out.get("customize"):
        out["customize"] = [dict({"runElevated": False, "runAsSystem": False}, **c) if c.get("type") == "PowerShell"
                            else c for c in out["customize"]]
    out["distribute"] = _distributions(out.get("distribute"))
    source = out.get("source") or {}
    if source.get("type") == "PlatformImage" and str(source.get("version") or "latest").lower() != "latest":
        out["source"] = dict(source, exactVersion=source["version"])
    out.setdefault("buildTimeoutInMinutes", 0)
    out["vmProfile"] = dict({"vmSize": "", "osDiskSizeGB": 0}, **(out.get("vmProfile") or {}))
    staging = out.get("stagingResourceGroup") or \
        f"/subscriptions/{ctx.subscription_id}/resourceGroups/IT_{rg}_{name}_{uuid.uuid4()}"
    out.setdefault("stagingResourceGroup", "")
    out["exactStagingResourceGroup"] = staging
    return out


def _validate(ctx, template_id, body):
    identity_id = check_identity(body.get("identity"))
    props = body.get("properties") or {}
    check_source(props.get("source"))
    check_customizers(props.get("customize"))
    check_distributors(props.get("distribute"), props.get("source"))
    return _identity_block(ctx, template_id, identity_id)


# Go's zero time: what Image Builder reports as lastRunStatus.endTime while a run has not ended
# (Azure/azure-cli test_image_builder_cancel.yaml recording).
NOT_ENDED = "0001-01-01T00:00:00Z"


def _lro_headers(ctx, op, location_header=False):
    """Image Builder's LRO headers (test_image_builder_cancel.yaml recording): a template PUT answers
    Azure-AsyncOperation only; `run` answers both, Location naming the same operation. No Retry-After (only
    the emulator's retry-after-ms pacing hint for scaled time)."""
    headers = {k: v for k, v in ctx.ops.lro_headers(op, location_header=False).items() if k.lower() != "retry-after"}
    if location_header:
        headers["Location"] = headers["Azure-AsyncOperation"]
    return headers


def _template_op(ctx, doc, kind):
    op = ctx.ops.start(doc["location"], doc["id"], kind, namespace=NAMESPACE)
    doc.setdefault("_ops", []).append(op["id"])
    return op


@route("PUT", _TEMPLATE, operation_id="VirtualMachineImageTemplates_CreateOrUpdate")
def put_template(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    rid = _template_id(req)
    current = ctx.store.get(rid)
    check_etag(req, current)
    body = req.body if isinstance(req.body, dict) else {}
    if current is not None:
        same = current["_request"] == _definition_key(body.get("location"), body.get("identity"),
                                                        body.get("properties"))
        if same and current["properties"]["provisioningState"] != "Failed":
            return ok(_public(current))   # the same template again: nothing to do
        raise ArmError(409, "Conflict",
                       "Update/Upgrade of image templates is currently not supported. Please change the name of the "
                       "template you are submitting. If you have previously tried to submit a template and it failed "
                       "to provision, you must delete it first and then resubmit. For more information, go to "
                       "https://aka.ms/azvmimagebuilderts.")
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    identity = _validate(ctx, rid, body)
    name = req.params["imageTemplateName"]
    doc = {"id": rid, "name": name, "type": TEMPLATE, "location": body["location"].replace(" ", "").lower(),
           "tags": body.get("tags", {}), "identity": identity,
           "properties": dict(_properties(ctx, body.get("properties") or {}, req.params["resourceGroupName"], name),
                              provisioningState="Creating"),
           "_request": _definition_key(body.get("location"), body.get("identity"), body.get("properties"))}
    op = _template_op(ctx, doc, "create")
    ctx.store.put(rid, doc, TEMPLATE)
    ctx.schedule(_duration(ctx, "image_template_write"), "imagebuilder.provisioned", {"id": rid})
    return Response(201, _public(doc), _lro_headers(ctx, op))


def _submission_problem(ctx, doc):
    """(provisioningErrorCode, message) when what the template refers to is not there, else None."""
    source = doc["properties"]["source"]
    if source["type"] == "SharedImageVersion":
        definition_id, version = gallery_model.split_image_id(source["imageVersionId"])
        missing = ctx.store.get(definition_id) is None or (
            version.lower() != "latest" and ctx.store.get(source["imageVersionId"]) is None)
        if missing:
            return "BadSharedImageVersionSource", \
                f"The source image version '{source['imageVersionId']}' was not found. For more troubleshooting " \
                "steps go to https://aka.ms/azvmimagebuilderts."
    for dist in doc["properties"]["distribute"]:
        if dist["type"] == "SharedImage":
            definition_id = gallery_model.split_image_id(dist["galleryImageId"])[0]
            if gallery.image_definition(ctx, definition_id) is None:
                return "BadSharedImageDistribute", \
                    f"The gallery image definition '{definition_id}' to distribute to was not found. For more " \
                    "troubleshooting steps go to https://aka.ms/azvmimagebuilderts."
    return None


@timer("imagebuilder.provisioned")
def _provisioned(ctx, payload):
    doc = ctx.store.get(payload["id"])
    if doc is None or doc["properties"]["provisioningState"] not in ("Creating", "Updating"):
        return
    problem = _submission_problem(ctx, doc)
    if problem:
        code, message = problem
        doc["properties"].update(provisioningState="Failed",
                                 provisioningError={"provisioningErrorCode": code, "message": message})
        _finish_ops(ctx, doc, "Failed", {"code": code, "message": message})
    else:
        doc["properties"]["provisioningState"] = "Succeeded"
        doc["properties"].pop("provisioningError", None)
        _finish_ops(ctx, doc)
    ctx.store.put(doc["id"], doc)
    if not problem and (doc["properties"].get("autoRun") or {}).get("state") == "Enabled" \
            and "lastRunStatus" not in doc["properties"]:
        _start_run(ctx, doc)


def _finish_ops(ctx, doc, status="Succeeded", error=None):
    for op_id in doc.pop("_ops", []):
        ctx.ops.finish(op_id, status, error=error)


@route("PATCH", _TEMPLATE, operation_id="VirtualMachineImageTemplates_Update")
def patch_template(ctx, req):
    """Tags, identity, vmProfile and distribute may change (ImageTemplateUpdateParameters); nothing else."""
    doc = _existing(ctx, req)
    _refuse_while_running(doc, "write")
    body = req.body if isinstance(req.body, dict) else {}
    if "tags" in body:
        doc["tags"] = body["tags"] or {}
    if body.get("identity"):
        doc["identity"] = _identity_block(ctx, doc["id"], check_identity(body["identity"]))
    props = body.get("properties") or {}
    if "distribute" in props:
        check_distributors(props["distribute"], doc["properties"]["source"])
        doc["properties"]["distribute"] = _distributions(props["distribute"])
    if "vmProfile" in props:
        doc["properties"]["vmProfile"] = dict({"vmSize": "", "osDiskSizeGB": 0}, **(props["vmProfile"] or {}))
    request_props = {k: v for k, v in doc["properties"].items() if k not in READ_ONLY}
    doc["_request"] = _definition_key(doc["location"], {"type": "UserAssigned", "userAssignedIdentities":
                                                        doc["identity"]["userAssignedIdentities"]}, request_props)
    doc["properties"]["provisioningState"] = "Updating"
    op = _template_op(ctx, doc, "update")
    ctx.store.put(doc["id"], doc)
    ctx.schedule(_duration(ctx, "image_template_write"), "imagebuilder.provisioned", {"id": doc["id"]})
    return Response(200, _public(doc), _lro_headers(ctx, op))


@route("GET", _TEMPLATE, operation_id="VirtualMachineImageTemplates_Get")
def get_template(ctx, req):
    return ok(_public(_existing(ctx, req)))


@route("GET", _BASE + "/imageTemplates", operation_id="VirtualMachineImageTemplates_ListByResourceGroup")
def list_templates_rg(ctx, req):
    ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
    prefix = f"/subscriptions/{req.params['subscriptionId']}/resourceGroups/{req.params['resourceGroupName']}"
    return ok(page(req, [_public(d) for d in ctx.store.list(TEMPLATE, prefix)], ctx.base_url, ctx.page_size))


@route("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.VirtualMachineImages/imageTemplates",
       operation_id="VirtualMachineImageTemplates_List")
def list_templates(ctx, req):
    items = [_public(d) for d in ctx.store.list(TEMPLATE, f"/subscriptions/{req.params['subscriptionId']}")]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


def _run_state(doc):
    return (doc["properties"].get("lastRunStatus") or {}).get("runState")


def _refuse_while_running(doc, verb):
    state = _run_state(doc)
    if state in ("Running", "Canceling"):
        raise ArmError(409, "OperationNotAllowed",
                       f"Operation 'Microsoft.VirtualMachineImages/imageTemplates/{verb}' is not allowed in "
                       f"provisioningState: '{doc['properties']['provisioningState'].lower()}', "
                       f"runState: '{state.lower()}'")


@route("DELETE", _TEMPLATE, operation_id="VirtualMachineImageTemplates_Delete")
def delete_template(ctx, req):
    doc = ctx.store.get(_template_id(req))
    if doc is None:
        ctx.require_resource_group(req.params["subscriptionId"], req.params["resourceGroupName"])
        return Response(204)
    _refuse_while_running(doc, "delete")
    doc["properties"]["provisioningState"] = "Deleting"
    op = _template_op(ctx, doc, "delete")
    ctx.store.put(doc["id"], doc)
    ctx.schedule(_duration(ctx, "image_template_delete"), "imagebuilder.deleted", {"id": doc["id"]})
    return Response(202, None, ctx.ops.lro_headers(op))


@timer("imagebuilder.deleted")
def _deleted(ctx, payload):
    doc = ctx.store.get(payload["id"])
    if doc is not None:
        _finish_ops(ctx, doc)
        ctx.store.delete_tree(doc["id"])   # the template and its run outputs; distributed images stay


# --- run outputs ---------------------------------------------------------------------------------

@route("GET", _TEMPLATE + "/runOutputs", operation_id="VirtualMachineImageTemplates_ListRunOutputs")
def list_run_outputs(ctx, req):
    doc = _existing(ctx, req)
    return ok(page(req, ctx.store.list(RUN_OUTPUT, doc["id"]), ctx.base_url, ctx.page_size))


@route("GET", _TEMPLATE + "/runOutputs/{runOutputName}", operation_id="VirtualMachineImageTemplates_GetRunOutput")
def get_run_output(ctx, req):
    doc = _existing(ctx, req)
    output = ctx.store.get(f"{doc['id']}/runOutputs/{req.params['runOutputName']}")
    if output is None:
        raise not_found(TEMPLATE, f"{doc['name']}/runOutputs/{req.params['runOutputName']}",
                        req.params["resourceGroupName"])
    return ok(output)


def _put_output(ctx, doc, name, state, artifact_id=None, artifact_uri=None):
    props = {"provisioningState": state}
    if artifact_id:
        props["artifactId"] = artifact_id
    if artifact_uri:
        props["artifactUri"] = artifact_uri
    rid = f"{doc['id']}/runOutputs/{name}"
    ctx.store.put(rid, {"id": rid, "name": name, "type": RUN_OUTPUT, "properties": props}, RUN_OUTPUT)


# --- runs ----------------------------------------------------------------------------------------

@route("POST", _TEMPLATE + "/run", operation_id="VirtualMachineImageTemplates_Run")
def run_template(ctx, req):
    doc = _existing(ctx, req)
    _refuse_while_running(doc, "run/action")
    if doc["properties"]["provisioningState"] != "Succeeded":
        raise ArmError(409, "OperationNotAllowed",
                       "Operation 'Microsoft.VirtualMachineImages/imageTemplates/run/action' is not allowed in "
                       f"provisioningState: '{doc['properties']['provisioningState'].lower()}'")
    op = _start_run(ctx, doc)
    return Response(202, None, _lro_headers(ctx, op, location_header=True))


@route("POST", _TEMPLATE + "/cancel", operation_id="VirtualMachineImageTemplates_Cancel")
def cancel_template(ctx, req):
    doc = _existing(ctx, req)
    if _run_state(doc) != "Running":
        raise ArmError(409, "OperationNotAllowed",
                       "Operation 'Microsoft.VirtualMachineImages/imageTemplates/cancel/action' is not allowed in "
                       f"provisioningState: '{doc['properties']['provisioningState'].lower()}', "
                       f"runState: '{(_run_state(doc) or 'none').lower()}'")
    # Recorded: runState Canceling with this message and no runSubState; endTime still unset; 204, no body.
    status = doc["properties"]["lastRunStatus"]
    status.pop("runSubState", None)
    status.update(runState="Canceling", message="Canceling image build")
    ctx.store.put(doc["id"], doc)
    ctx.schedule(ctx.duration("image_build_cancel"), "imagebuilder.phase", {"id": doc["id"], "run": doc["_run"]["id"],
                                                                            "phase": "Canceled"})
    return Response(204)


def _phases(props):
    """(fraction of the build, sub-state) steps after Queued; Customizing covers 15%-80% of the build."""
    steps = [(0.05, "Building")]
    if props.get("customize"):
        steps.append((0.15, "Customizing"))
    if ((props.get("optimize") or {}).get("vmBoot") or {}).get("state") == "Enabled":
        steps.append((0.80, "Optimizing"))
    if (props.get("validate") or {}).get("inVMValidations"):
        steps.append((0.85, "Validating"))
    steps.append((0.92, "Distributing"))
    return steps


def _start_run(ctx, doc):
    """Begin a build: lastRunStatus Running/Queued, previous run outputs gone, phases scheduled."""
    op = ctx.ops.start(doc["location"], doc["id"], "run", namespace=NAMESPACE)
    run_id = str(uuid.uuid4())
    build = _duration(ctx, "image_build")
    doc["_run"] = {"id": run_id, "op": op["id"], "build": build, "outputs": {}}
    doc["properties"]["lastRunStatus"] = {"startTime": ctx.clock.iso(), "endTime": NOT_ENDED, "runState": "Running",
                                          "runSubState": "Queued", "message": ""}
    for output in ctx.store.ids(RUN_OUTPUT, doc["id"]):
        ctx.store.delete(output)
    ctx.store.put(doc["id"], doc)
    for fraction, phase in _phases(doc["properties"]):
        ctx.schedule(build * fraction, "imagebuilder.phase", {"id": doc["id"], "run": run_id, "phase": phase})
    timeout = doc["properties"].get("buildTimeoutInMinutes") or 0
    if timeout and timeout * 60 < DURATIONS["image_build"]:
        ctx.schedule(ctx.clock.scaled(timeout * 60), "imagebuilder.phase",
                     {"id": doc["id"], "run": run_id, "phase": "TimedOut"})
    return op


@timer("imagebuilder.phase")
def _phase(ctx, payload):
    doc = ctx.store.get(payload["id"])
    if doc is None or doc.get("_run", {}).get("id") != payload["run"]:
        return
    state = _run_state(doc)
    phase = payload["phase"]
    if phase == "Canceled":
        if state == "Canceling":
            _finish_run(ctx, doc, "Canceled", "")
            ctx.store.put(doc["id"], doc)
        return
    if state != "Running":
        return
    handler = _PHASES.get(phase, _enter_phase)
    handler(ctx, doc, payload)
    ctx.store.put(doc["id"], doc)


def _enter_phase(ctx, doc, payload):
    doc["properties"]["lastRunStatus"]["runSubState"] = payload["phase"]


def _building(ctx, doc, payload):
    """Resolve the source (a 'latest' gallery version is picked now, not at submission)."""
    _enter_phase(ctx, doc, payload)
    source = doc["properties"]["source"]
    if source["type"] == "SharedImageVersion":
        try:
            version, _name = gallery.resolve_gallery_image(ctx, source["imageVersionId"], doc["location"])
        except ArmError as err:
            _fail(ctx, doc, f"Build (Shared Image Version) step failed for Image Version '{source['imageVersionId']}': "
                            f"Error getting Image Version: Code=\"{err.code}\" Message=\"{err.message}\"")
            return
        source["exactVersion"] = version["id"]
    elif source["type"] == "PlatformImage":
        version = source.get("version") or "latest"
        source["exactVersion"] = _platform_latest(ctx) if version.lower() == "latest" else version
    if not doc["properties"].get("customize") and _matching_rule(ctx, doc, None) is not None:
        # Nothing to customize: a rule for the template fails the build step itself.
        _fail(ctx, doc, _packer_failure(doc, None, _take_rule(ctx, doc, None)))


def _platform_latest(ctx):
    """A marketplace-style version for 'latest' (YY.MM.YYYYMMDD0, like Canonical's)."""
    stamp = ctx.clock.iso()[:10].replace("-", "")
    return f"{stamp[2:4]}.{stamp[4:6]}.{stamp}0"


def _customizing(ctx, doc, payload):
    """Schedule the failure of the customizer a build-failure rule names, if any."""
    _enter_phase(ctx, doc, payload)
    index = _failing_customizer(ctx, doc)
    if index is None:
        return
    rule = _take_rule(ctx, doc, index)
    count = len(doc["properties"].get("customize") or [])
    at = doc["_run"]["build"] * 0.65 * (index + 0.5) / count
    doc["_run"]["failure"] = _packer_failure(doc, index, rule)
    ctx.schedule(at, "imagebuilder.phase", {"id": doc["id"], "run": doc["_run"]["id"], "phase": "CustomizerFailed"})


def _customizer_failed(ctx, doc, payload):
    _fail(ctx, doc, doc["_run"].pop("failure", "Packer build command has failed."))


def _timed_out(ctx, doc, payload):
    _fail(ctx, doc, "Failed in building/customizing image: Failed while waiting for packerizer: Timeout waiting for "
                    "microservice to complete: 'context deadline exceeded'")


def _distributing(ctx, doc, payload):
    """Publish every output; gallery versions are waited on until they have replicated."""
    _enter_phase(ctx, doc, payload)
    if doc["_run"].get("failure"):
        return   # a customizer is failing; the build never gets here
    errors = []
    distributors = doc["properties"]["distribute"]
    for index, dist in enumerate(distributors):
        problem = _DISTRIBUTORS[dist["type"]](ctx, doc, index, dist)
        if problem:
            errors.append(f"[Error {len(errors)}] [Distribute {index}] {problem}")
            _put_output(ctx, doc, dist["runOutputName"], "Failed")
    if errors:
        _fail(ctx, doc, f"Failed in distributing {len(errors)} images out of total {len(distributors)}: "
                        f"{{{' '.join(errors)}}}")
    elif not doc["_run"]["outputs"]:
        ctx.schedule(doc["_run"]["build"] * 0.08, "imagebuilder.phase",
                     {"id": doc["id"], "run": doc["_run"]["id"], "phase": "Distributed"})


def _distributed(ctx, doc, payload):
    _finish_run(ctx, doc, "Succeeded", "")


_PHASES = {"Building": _building, "Customizing": _customizing, "CustomizerFailed": _customizer_failed,
           "TimedOut": _timed_out, "Distributing": _distributing, "Distributed": _distributed}


def _fail(ctx, doc, message):
    _finish_run(ctx, doc, "Failed", message)


def _finish_run(ctx, doc, state, message):
    status = doc["properties"]["lastRunStatus"]
    status.update(runState=state, endTime=ctx.clock.iso(), message=message)
    op_id = doc["_run"]["op"]
    if state == "Failed":
        ctx.ops.finish(op_id, "Failed", error={"code": "InternalOperationError", "message": message})
    else:
        ctx.ops.finish(op_id, state)


# --- distribution --------------------------------------------------------------------------------

def _template_principal(ctx, doc):
    identity_id = next(iter(doc["identity"]["userAssignedIdentities"]))
    return identity_rbac.identity(ctx, identity_id)


def _unauthorized(msi, action, scope):
    return (f"Code=\"AuthorizationFailed\" Message=\"The client '{msi['properties']['clientId']}' with object id "
            f"'{msi['properties']['principalId']}' does not have authorization to perform action '{action}' over "
            f"scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
            "credentials.\"")


def _version_name(ctx, doc, dist, definition_id, explicit):
    if explicit:
        return explicit
    versioning = dist.get("versioning") or {"scheme": "Latest"}
    if versioning["scheme"] == "Source":
        source = doc["properties"]["source"]
        raw = source.get("exactVersion") or source.get("version") or ""
        raw = raw.rstrip("/").rsplit("/", 1)[-1]
        numbers = [int(p) for p in re.findall(r"\d+", raw)[:3]]
        return ".".join(str(n) for n in (numbers + [0, 0, 0])[:3])
    return gallery_model.next_version(gallery.version_names(ctx, definition_id), versioning.get("major", -1))


def _target_regions(dist, home):
    """Gallery targetRegions from a SharedImage distributor (targetRegions, or deprecated replicationRegions)."""
    if dist.get("targetRegions"):
        regions = [{"name": r["name"], "regionalReplicaCount": r.get("replicaCount") or 1,
                    "storageAccountType": r.get("storageAccountType") or "Standard_LRS"} for r in dist["targetRegions"]]
    else:
        regions = [{"name": r, "regionalReplicaCount": 1,
                    "storageAccountType": dist.get("storageAccountType") or "Standard_LRS"}
                   for r in dist.get("replicationRegions") or []]
    if gallery_model.norm_region(home) not in {gallery_model.norm_region(r["name"]) for r in regions}:
        regions.insert(0, {"name": home, "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"})
    return regions


def _distribute_shared_image(ctx, doc, index, dist):
    """Create the gallery image version; returns a problem text, or None once publishing has started."""
    definition_id, explicit = gallery_model.split_image_id(dist["galleryImageId"])
    definition = gallery.image_definition(ctx, definition_id)
    location = (definition or {}).get("location") or doc["location"]
    prefix = f"Error publishing MDI to Azure Compute Gallery:{dist['galleryImageId']}, Location:{location}."
    if definition is None:
        return f"{prefix} Error: gallery image '{definition_id}' was not found."
    version = _version_name(ctx, doc, dist, definition_id, explicit)
    version_id = f"{definition_id}/versions/{version}"
    msi = _template_principal(ctx, doc)
    if msi is None:
        return f"{prefix} Error: The assigned managed identity cannot be used. Please remove the existing one and " \
               "re-assign a new identity. For more troubleshooting steps go to https://aka.ms/azvmimagebuilderts."
    if not identity_rbac.has_permission(ctx, msi["properties"]["principalId"], GALLERY_WRITE, version_id):
        parts = definition_id.split("/")
        return (f"{prefix} Error: Error returned from SIG client while publishing MDI to Azure Compute Gallery for "
                f"dstImageLocation: {location}, dstSubscription: {parts[2]}, dstResourceGroupName: {parts[4]}, "
                f"dstGalleryName: {parts[8]}, dstGalleryImageName: {parts[10]}. Error: "
                f"compute.GalleryImageVersionsClient#CreateOrUpdate: Failure sending request: StatusCode=403 -- "
                f"Original Error: {_unauthorized(msi, GALLERY_WRITE, version_id)}")
    if ctx.store.get(version_id) is not None:
        return f"{prefix} Error: The gallery image version '{version}' already exists."
    properties = {
        "publishingProfile": {"targetRegions": _target_regions(dist, location),
                              "excludeFromLatest": bool(dist.get("excludeFromLatest", False))},
        "storageProfile": {"source": {"id": f"{doc['properties']['exactStagingResourceGroup']}/providers/"
                                            f"Microsoft.Compute/images/IntermediateImage_{doc['_run']['id'][:8]}"}}}
    watcher = {"timer": "imagebuilder.version_settled",
               "payload": {"id": doc["id"], "run": doc["_run"]["id"], "output": dist["runOutputName"]}}
    try:
        gallery.publish_version(ctx, version_id, location, properties, watcher)
    except ArmError as err:
        return f"{prefix} Error: Code=\"{err.code}\" Message=\"{err.message}\""
    if dist.get("artifactTags"):
        stored = ctx.store.get(version_id)
        stored["tags"] = dict(dist["artifactTags"])
        ctx.store.put(version_id, stored)
    doc["_run"]["outputs"][dist["runOutputName"]] = version_id
    _put_output(ctx, doc, dist["runOutputName"], "Creating", artifact_id=version_id)
    return None


def _distribute_managed_image(ctx, doc, index, dist):
    msi = _template_principal(ctx, doc)
    if msi is None or not identity_rbac.has_permission(ctx, msi["properties"]["principalId"], IMAGE_WRITE,
                                                       dist["imageId"]):
        detail = _unauthorized(msi, IMAGE_WRITE, dist["imageId"]) if msi else "The assigned managed identity " \
            "cannot be used."
        return f"Error publishing VHD to managed image:{dist['imageId']}, Location:{dist['location']}. Error: {detail}"
    _put_output(ctx, doc, dist["runOutputName"], "Succeeded", artifact_id=dist["imageId"])
    return None


def _distribute_vhd(ctx, doc, index, dist):
    uri = dist.get("uri") or (f"https://{doc['_run']['id'].replace('-', '')[:24]}.blob.core.windows.net/vhds/"
                              f"{dist['runOutputName']}.vhd")
    _put_output(ctx, doc, dist["runOutputName"], "Succeeded", artifact_uri=uri)
    return None


_DISTRIBUTORS = {"SharedImage": _distribute_shared_image, "ManagedImage": _distribute_managed_image,
                 "VHD": _distribute_vhd}


@timer("imagebuilder.version_settled")
def _version_settled(ctx, payload):
    """A distributed gallery version finished replicating: record it; the run ends with the last one."""
    doc = ctx.store.get(payload["id"])
    if doc is None or doc.get("_run", {}).get("id") != payload["run"] or _run_state(doc) != "Running":
        return
    state, error = gallery.version_outcome(ctx, payload["version_id"])
    output = payload["output"]
    _put_output(ctx, doc, output, "Succeeded" if state == "Succeeded" else "Failed", artifact_id=payload["version_id"])
    doc["_run"].setdefault("settled", {})[output] = error["message"] if error else None
    pending = set(doc["_run"]["outputs"]) - set(doc["_run"]["settled"])
    if not pending:
        failures = [m for m in doc["_run"]["settled"].values() if m]
        if failures:
            _fail(ctx, doc, f"Failed in distributing {len(failures)} images out of total "
                            f"{len(doc['properties']['distribute'])}: {{[Error 0] {failures[0]}}}")
        else:
            _finish_run(ctx, doc, "Succeeded", "")
    ctx.store.put(doc["id"], doc)


# --- build failure rules (control API) -----------------------------------------------------------

def _validate_build_rule(rule):
    """{"template"?, "customizer"?, "message"?, "count"?}: fail the named customizer (or the first one)."""
    if not isinstance(rule, dict) or not (rule.get("template") or rule.get("customizer")):
        raise ArmError(400, "InvalidRule", "A build failure rule needs a template or a customizer name.")
    unknown = set(rule) - {"id", "template", "customizer", "message", "count"}
    if unknown:
        raise ArmError(400, "InvalidRule", f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    if "count" in rule and (not isinstance(rule["count"], int) or rule["count"] < 1):
        raise ArmError(400, "InvalidRule", "count must be a positive integer.")
    return dict(rule, id=rule.get("id") or str(uuid.uuid4()))


rules_api(BUILD_FAILURES, _validate_build_rule)


def _customizer_name(customizer, index):
    return customizer.get("name") or f"{customizer.get('type')} customizer {index + 1}"


def _matching_rule(ctx, doc, index):
    """Index of the first rule that fails customizer `index` (None: the build itself) of this template."""
    customizers = doc["properties"].get("customize") or []
    for i, rule in enumerate(ctx.store.kv_get(BUILD_FAILURES, [])):
        if rule.get("template") and rule["template"].lower() != doc["name"].lower():
            continue
        if rule.get("customizer"):
            if index is not None and _customizer_name(customizers[index], index).lower() == rule["customizer"].lower():
                return i
        elif index in (None, 0):
            return i
    return None


def _failing_customizer(ctx, doc):
    """The first customizer a rule fails, or None."""
    for index in range(len(doc["properties"].get("customize") or [])):
        if _matching_rule(ctx, doc, index) is not None:
            return index
    return None


def _take_rule(ctx, doc, index):
    rules = ctx.store.kv_get(BUILD_FAILURES, [])
    i = _matching_rule(ctx, doc, index)
    rule = dict(rules[i])
    if "count" in rules[i]:
        rules[i]["count"] -= 1
        if rules[i]["count"] <= 0:
            rules.pop(i)
        ctx.store.kv_set(BUILD_FAILURES, rules)
    return rule


def _packer_failure(doc, index, rule):
    """Azure's packerizer failure text, naming the failed customizer."""
    run = doc["_run"]["id"]
    text = ("Failed while waiting for packerizer: Microservice has failed: Failed while processing request: Error "
            "when executing packerizer: Packer build command has failed: exit status 1. During the image build, a "
            "failure has occurred, please review the build log to identify which build/customization step failed. "
            "For more troubleshooting steps go to https://aka.ms/azvmimagebuilderts. Image Build log location: "
            f"https://{run.replace('-', '')[:24]}.blob.core.windows.net/packerlogs/{run}/customization.log. "
            f"OperationId: {doc['_run']['op']}. Use this operationId to search packer logs.")
    customizers = doc["properties"].get("customize") or []
    if index is None:
        return text
    customizer = customizers[index]
    detail = rule.get("message") or "Script exited with non-zero exit status: 1. Allowed exit codes are: [0]"
    return (f"{text} Customizer '{_customizer_name(customizer, index)}' ({customizer.get('type')}, step {index + 1} of "
            f"{len(customizers)}) failed: {detail}")
