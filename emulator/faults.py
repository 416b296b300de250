"""Request faults injected through the control API (429, 5xx, 409, dropped connections, latency).

A rule: {"id", "match": {"method"?, "path"? (regex, case-insensitive), "operation_id"?},
         "kind": "429"|"500"|"503"|"409"|"drop"|"latency", "count"? (next N matches),
         "probability"? (0..1, seeded), "retry_after"? (seconds), "retry_after_ms"?, "latency_ms"?,
         "code"?, "message"?}
"""
import random
import re
import time
import uuid

from emulator.arm import ArmError

KINDS = {"429", "500", "503", "409", "drop", "latency"}
_DEFAULTS = {
    "429": (429, "TooManyRequests", "The request is being throttled. Retry after the time in the Retry-After header."),
    "500": (500, "InternalServerError", "An internal execution error occurred. Please retry later."),
    "503": (503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    "409": (409, "OperationNotAllowed",
            "Operation is not allowed because another operation is in progress on this resource. Retry later."),
}


def validate_rule(rule):
    if not isinstance(rule, dict):
        raise ArmError(400, "InvalidFault", "A fault rule must be a JSON object.")
    kind = str(rule.get("kind", ""))
    if kind not in KINDS:
        raise ArmError(400, "InvalidFault", f"Fault kind must be one of {sorted(KINDS)}.")
    match = rule.get("match") or {}
    if not isinstance(match, dict) or set(match) - {"method", "path", "operation_id"}:
        raise ArmError(400, "InvalidFault", "match takes method, path and operation_id.")
    if "path" in match:
        try:
            re.compile(match["path"])
        except re.error as exc:
            raise ArmError(400, "InvalidFault", f"match.path is not a valid regular expression: {exc}")
    out = dict(rule, kind=kind, match=match, id=rule.get("id") or str(uuid.uuid4()))
    out["hits"] = 0
    return out


def matches(rule, req):
    match = rule["match"]
    if "method" in match and match["method"].upper() != req.method:
        return False
    if "operation_id" in match and (req.operation_id or "").lower() != match["operation_id"].lower():
        return False
    if "path" in match and not re.search(match["path"], req.path, re.I):
        return False
    return True


class Faults:
    def __init__(self):
        self._random = random.Random(0)

    def apply(self, ctx, req):
        """Apply the first matching rule to an ARM request: raise, drop, sleep, or nothing."""
        with ctx.lock:
            rules = ctx.store.kv_get("faults", [])
            chosen = None
            for rule in rules:
                if not matches(rule, req):
                    continue
                if "probability" in rule and self._random.random() >= float(rule["probability"]):
                    continue
                chosen = rule
                break
            if chosen is None:
                return
            chosen["hits"] = chosen.get("hits", 0) + 1
            if "count" in chosen:
                chosen["count"] = int(chosen["count"]) - 1
                if chosen["count"] <= 0:
                    rules.remove(chosen)
            ctx.store.kv_set("faults", rules)
            ctx.store.commit()
        kind = chosen["kind"]
        if kind == "latency":
            time.sleep(float(chosen.get("latency_ms", 500)) / 1000.0)
            return
        if kind == "drop":
            from emulator.server import _DropConnection
            raise _DropConnection()
        status, code, message = _DEFAULTS[kind]
        headers = {}
        if kind in ("429", "503"):
            retry_after = float(chosen.get("retry_after", 1))
            headers["Retry-After"] = str(max(1, int(round(retry_after))))
            if "retry_after_ms" in chosen:
                headers["retry-after-ms"] = str(int(chosen["retry_after_ms"]))
        raise ArmError(status, chosen.get("code", code), chosen.get("message", message), headers=headers)
