"""The control API (/_emulator/...): what tests and the demo use to make things go wrong on purpose.

Reached with the admin token from env.json (`Authorization: Bearer <token>`), never with an ARM token.
"""
import os
import tempfile

from emulator.arm import ArmError, Response, ok
from emulator.faults import validate_rule
from emulator.server import route
from emulator.traffic import export_for_oav


def latest_model(value):
    """How latestModelApplied is judged (see emulator/providers/compute/instances.py)."""
    from emulator.providers.compute.instances import LATEST_MODES
    if value not in LATEST_MODES:
        raise ValueError(value)
    return value


latest_model.expects = "'generation' or 'content'"


def poll_retry_after(value):
    """The Retry-After of operation polls (emulator/app.py Context.poll_headers)."""
    if value not in ("recorded", "lro_poll"):
        raise ValueError(value)
    return value


poll_retry_after.expects = "'recorded' or 'lro_poll'"
CONFIG_KEYS = {"time_scale": float, "page_size": int, "throttling": bool, "throttle_scale": float, "jitter": float,
               "seed": int,
               "latest_model": latest_model, "poll_retry_after": poll_retry_after}


def rules_api(key, validate):
    """GET / POST (append) / DELETE (all, or ?id=) for a list of rules kept in kv `key`."""
    path = "/_emulator/" + key.replace("_", "-")

    @route("GET", path, control=True)
    def list_rules(ctx, req):
        return ok({"value": ctx.store.kv_get(key, [])})

    @route("POST", path, control=True)
    def add_rule(ctx, req):
        body = req.body
        new = body if isinstance(body, list) else [body]
        rules = ctx.store.kv_get(key, []) + [validate(rule) for rule in new]
        ctx.store.kv_set(key, rules)
        return ok({"value": rules})

    @route("DELETE", path, control=True)
    def clear_rules(ctx, req):
        rule_id = req.query.get("id")
        rules = [r for r in ctx.store.kv_get(key, []) if rule_id and r.get("id") != rule_id]
        ctx.store.kv_set(key, rules)
        return ok({"value": rules})


def _validate_match_rule(required):
    def validate(rule):
        import uuid
        if not isinstance(rule, dict):
            raise ArmError(400, "InvalidRule", "A rule must be a JSON object.")
        missing = [k for k in required if k not in rule]
        if missing:
            raise ArmError(400, "InvalidRule", f"A rule needs {', '.join(missing)}.")
        return dict(rule, id=rule.get("id") or str(uuid.uuid4()))
    return validate


rules_api("faults", validate_rule)
rules_api("health_rules", _validate_match_rule(["state"]))
rules_api("instance_failures", _validate_match_rule(["code"]))


@route("GET", "/_emulator/config", control=True)
def get_config(ctx, req):
    return ok(ctx.config)


@route("PATCH", "/_emulator/config", control=True)
def patch_config(ctx, req):
    changes = {}
    for key, value in (req.body or {}).items():
        if key not in CONFIG_KEYS:
            raise ArmError(400, "InvalidConfig", f"Unknown setting {key!r}; known: {sorted(CONFIG_KEYS)}.")
        try:
            changes[key] = CONFIG_KEYS[key](value) if value is not None else None
        except (TypeError, ValueError):
            expects = getattr(CONFIG_KEYS[key], "expects", f"a {CONFIG_KEYS[key].__name__}")
            raise ArmError(400, "InvalidConfig", f"{key} must be {expects}.")
    if changes.get("time_scale") is not None and changes["time_scale"] <= 0:
        raise ArmError(400, "InvalidConfig", "time_scale must be positive.")
    ctx.set_config(**changes)
    return ok(ctx.config)


@route("POST", "/_emulator/reset", control=True)
def reset(ctx, req):
    ctx.reset()
    for seed in ctx.seeders:
        seed(ctx)
    return ok({"status": "reset"})


@route("GET", "/_emulator/traffic", control=True)
def get_traffic(ctx, req):
    since = int(req.query.get("since", "0"))
    return ok({"value": [dict(entry, seq=seq) for seq, _ts, entry in ctx.store.traffic(since)]})


@route("DELETE", "/_emulator/traffic", control=True)
def clear_traffic(ctx, req):
    ctx.store.clear_traffic()
    return Response(204)


@route("POST", "/_emulator/traffic/export", control=True)
def export_traffic(ctx, req):
    """Write the log in oav's validate-traffic layout: {"dir": path} (default: a new temp dir)."""
    out_dir = (req.body or {}).get("dir") or tempfile.mkdtemp(prefix="emulator-traffic-")
    os.makedirs(out_dir, exist_ok=True)
    since = int((req.body or {}).get("since", 0))
    folders = export_for_oav(ctx.store.traffic(since), ctx.specs, out_dir)
    return ok({"dir": out_dir, "folders": folders})


@route("GET", "/_emulator/principals", control=True)
def list_principals(ctx, req):
    return ok({"value": [{k: v for k, v in p.items() if k != "secret"} for p in ctx.principals()]})


@route("POST", "/_emulator/principals", control=True)
def add_principal(ctx, req):
    """Add a service principal: {"name", "role" (Owner|Contributor|Reader|[actions]), "secret"?}."""
    import uuid
    body = req.body or {}
    if not body.get("name") or not body.get("role"):
        raise ArmError(400, "InvalidPrincipal", "A principal needs a name and a role.")
    principal = {"name": body["name"], "role": body["role"],
                 "client_id": body.get("client_id") or str(uuid.uuid4()),
                 "object_id": str(uuid.uuid4()), "tenant": ctx.tenant_id,
                 "secret": body.get("secret") or uuid.uuid4().hex}
    principals = [p for p in ctx.principals() if p["name"] != principal["name"]] + [principal]
    ctx.store.kv_set("principals", principals)
    return ok(principal)
