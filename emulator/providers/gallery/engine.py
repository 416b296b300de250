"""Gallery state over time: long-running operations, per-region replication, failure rules.

Everything that changes after a request has been answered happens here, in restart-safe timers:
a gallery or definition finishing provisioning, a region finishing replication, a version
settling (all regions done) and then finishing its pending operations and telling its watchers
(Image Builder waits on the versions it distributes).

Private state lives in the stored documents under keys starting with '_' and never leaves the
emulator (`public()` strips it).
"""
import uuid

from emulator.app import timer
from emulator.arm import ArmError, ok
from emulator.control import rules_api
from emulator.providers import operations
from emulator.providers.gallery import model
from emulator.server import route

FAILURE_RULES = "replication_failures"


def duration(ctx, name):
    """Scaled seconds for `name` (clock.DURATIONS)."""
    return ctx.clock.duration(name)


def public(doc):
    """The document as a client may see it: no '_private' keys."""
    return {k: v for k, v in doc.items() if not k.startswith("_")} if doc else doc


# --- long-running operations (Compute's capsOperations) ------------------------------------------

def start_op(ctx, doc, kind):
    """Start an async operation for `doc`; it finishes when the document settles."""
    op = ctx.ops.start(model.norm_region(doc["location"]), doc["id"], kind, namespace="Microsoft.Compute")
    doc.setdefault("_ops", []).append(op["id"])
    return op


def lro_headers(ctx, op, location_header=False):
    """The capsOperations headers GalleryRP answers with (Azure/azure-cli test_gallery_e2e.yaml recording).

    PUT and PATCH (201/200): Azure-AsyncOperation only. DELETE (202): Azure-AsyncOperation and Location
    (`...?monitor=true`). Azure sends no Retry-After on either: only the emulator's `retry-after-ms` pacing
    hint (scaled time) is kept, so clients poll at the scaled pace rather than their default interval.
    """
    headers = {k: v for k, v in ctx.ops.lro_headers(op, location_header=False).items() if k.lower() != "retry-after"}
    base = (f"{ctx.base_url}/subscriptions/{ctx.subscription_id}/providers/Microsoft.Compute/locations/"
            f"{op['location']}/capsOperations/{op['id']}")
    version = ctx.request_api_version or "2024-03-03"
    headers["Azure-AsyncOperation"] = f"{base}?api-version={version}"
    if location_header:
        headers["Location"] = f"{base}?monitor=true&api-version={version}"
    return headers


def finish_ops(ctx, doc, status="Succeeded", error=None):
    for op_id in doc.pop("_ops", []):
        ctx.ops.finish(op_id, status, error=error)


@route("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
              "/capsOperations/{operationId}", action="Microsoft.Compute/locations/capsOperations/read")
def caps_operation(ctx, req):
    """The status behind a gallery LRO: operation status, or with ?monitor=true the Location result."""
    if req.query.get("monitor", "").lower() == "true":
        return operations.operation_result(ctx, req)
    return operations.operation_status(ctx, req)


# --- galleries and definitions: provisioning and deletion ----------------------------------------

def provision_later(ctx, doc, state, rtype):
    """Store `doc` in provisioningState `state` (Creating/Updating); it becomes Succeeded later."""
    doc["properties"]["provisioningState"] = state
    doc["_gen"] = doc.get("_gen", 0) + 1
    ctx.store.put(doc["id"], doc, rtype)
    ctx.schedule(duration(ctx, "gallery_write"), "gallery.provisioned", {"id": doc["id"], "gen": doc["_gen"]})


@timer("gallery.provisioned")
def _provisioned(ctx, payload):
    doc = ctx.store.get(payload["id"])
    if doc is None or doc.get("_gen") != payload["gen"] or doc["properties"]["provisioningState"] == "Deleting":
        return
    doc["properties"]["provisioningState"] = "Succeeded"
    finish_ops(ctx, doc)
    ctx.store.put(doc["id"], doc)


def delete_later(ctx, doc, duration_name):
    """Mark `doc` Deleting and remove it (and everything under it) after `duration_name`."""
    op = start_op(ctx, doc, "delete")
    doc["properties"]["provisioningState"] = "Deleting"
    ctx.store.put(doc["id"], doc)
    ctx.schedule(duration(ctx, duration_name), "gallery.deleted", {"id": doc["id"]})
    return op


@timer("gallery.deleted")
def _deleted(ctx, payload):
    doc = ctx.store.get(payload["id"])
    if doc is None:
        return
    finish_ops(ctx, doc)
    ctx.store.delete_tree(doc["id"])


# --- image versions: replication -----------------------------------------------------------------

def start_replication(ctx, doc, region_names):
    """Begin replicating `doc` to each region (in parallel, `image_replication` each)."""
    now = ctx.clock.now()
    replication = doc.setdefault("_replication", {})
    for name in region_names:
        key = model.norm_region(name)
        gen = replication.get(key, {}).get("gen", 0) + 1
        span = duration(ctx, "image_replication")
        replication[key] = {"region": name, "state": "Replicating", "start": now, "end": now + span,
                            "details": "", "gen": gen}
        ctx.schedule(span, "gallery.region_replicated", {"id": doc["id"], "region": key, "gen": gen})


def drop_regions(doc, keys):
    for key in keys:
        doc.get("_replication", {}).pop(key, None)


@timer("gallery.region_replicated")
def _region_replicated(ctx, payload):
    doc = ctx.store.get(payload["id"])
    entry = (doc or {}).get("_replication", {}).get(payload["region"])
    if entry is None or entry["gen"] != payload["gen"] or entry["state"] != "Replicating":
        return  # the version or the region is gone, or was restarted since
    failure = take_failure(ctx, doc["id"], payload["region"])
    if failure is None:
        entry.update(state="Completed", details="")
    else:
        progress = model.region_progress(entry, entry["start"] + (entry["end"] - entry["start"]) * 0.6)
        entry.update(state="Failed", details=failure, progress=progress)
    ctx.store.put(doc["id"], doc)
    settle(ctx, doc["id"])


def settle_later(ctx, doc):
    """An update that replicates nothing still takes a moment (provisioningState Updating)."""
    ctx.schedule(duration(ctx, "image_version_update"), "gallery.version_settle", {"id": doc["id"]})


@timer("gallery.version_settle")
def _version_settle(ctx, payload):
    settle(ctx, payload["id"])


def settle(ctx, version_id):
    """When no region is replicating: final provisioningState, finish operations, wake watchers."""
    doc = ctx.store.get(version_id)
    if doc is None or doc["properties"]["provisioningState"] in ("Succeeded", "Failed", "Deleting"):
        return
    replication = doc.get("_replication", {})
    if any(e["state"] == "Replicating" for e in replication.values()):
        return
    failed = any(e["state"] == "Failed" for e in replication.values())
    doc["properties"]["provisioningState"] = "Failed" if failed else "Succeeded"
    if failed:
        finish_ops(ctx, doc, "Failed", model.replication_error(replication))
    else:
        finish_ops(ctx, doc)
    for watcher in doc.pop("_watchers", []):
        ctx.schedule(0, watcher["timer"], dict(watcher["payload"], version_id=version_id))
    ctx.store.put(doc["id"], doc)


# --- failure rules (control API) -----------------------------------------------------------------

def _validate_failure_rule(rule):
    """{"region"?, "gallery"?, "image"?, "version"?, "details"?, "count"?}: every given field must match."""
    if not isinstance(rule, dict):
        raise ArmError(400, "InvalidRule", "A rule must be a JSON object.")
    unknown = set(rule) - {"id", "region", "gallery", "image", "version", "details", "count"}
    if unknown:
        raise ArmError(400, "InvalidRule", f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    if "count" in rule and (not isinstance(rule["count"], int) or rule["count"] < 1):
        raise ArmError(400, "InvalidRule", "count must be a positive integer.")
    return dict(rule, id=rule.get("id") or str(uuid.uuid4()))


rules_api(FAILURE_RULES, _validate_failure_rule)


def _rule_matches(rule, names, region_key):
    if "region" in rule and model.norm_region(rule["region"]) != region_key:
        return False
    return all(rule[k].lower() == names[k].lower() for k in ("gallery", "image", "version") if k in rule)


def take_failure(ctx, version_id, region_key):
    """The failure detail of the first rule matching this version and region (consuming a count), or None."""
    parts = version_id.strip("/").split("/")
    names = {"gallery": parts[7], "image": parts[9], "version": parts[11]}
    rules = ctx.store.kv_get(FAILURE_RULES, [])
    for i, rule in enumerate(rules):
        if _rule_matches(rule, names, region_key):
            if "count" in rule:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    rules.pop(i)
                ctx.store.kv_set(FAILURE_RULES, rules)
            return rule.get("details") or model.REPLICATION_FAILED_DETAIL
    return None


@route("GET", "/_emulator/galleries/replication", control=True)
def replication_overview(ctx, req):
    """Every version's replication state at a glance (for tests and the demo)."""
    now = ctx.clock.now()
    return ok({"value": [{"id": d["id"], "provisioningState": d["properties"].get("provisioningState"),
                          "replicationStatus": model.replication_status(d.get("_replication", {}), now)}
                         for d in ctx.store.list(model.VERSION)]})
