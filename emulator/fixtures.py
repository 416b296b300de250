"""Seed a landing zone from a JSON file: {"requests": [{"path": "/subscriptions/{subscriptionId}/...", "body": {...}}]}.

Each entry is applied as an ARM PUT through the same handler and validation as a client's request, so a
fixture cannot create anything a client could not. `{subscriptionId}` is replaced by the emulator's.
"""
import json

from emulator.server import Request, find_route


def apply_fixture(ctx, path):
    with open(path) as fh:
        fixture = json.load(fh)
    for entry in fixture.get("requests", []):
        target = entry["path"].replace("{subscriptionId}", ctx.subscription_id)
        if ctx.store.exists(target):
            continue
        req = Request("PUT", target + "?api-version=fixture", {"Content-Type": "application/json"},
                      json.dumps(entry["body"]).encode())
        matched, params = find_route("PUT", req.path)
        if matched is None:
            raise ValueError(f"fixture entry {target}: no PUT route")
        req.params, req.operation_id, req.route = params, matched.operation_id, matched
        if ctx.specs is not None and matched.operation_id:
            ctx.specs.validate_body(matched.operation_id, req.body)
        matched.handler(ctx, req)
