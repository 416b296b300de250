"""ARM conventions shared by every provider: errors, responses, ids, paging, ETags."""
import json
import math
import re
import uuid
from urllib.parse import urlencode


class ArmError(Exception):
    """An error answered in the ARM envelope {"error": {code, message, target, details}}."""

    def __init__(self, status, code, message, target=None, details=None, headers=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = headers or {}

    def envelope(self):
        error = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


class Response:
    def __init__(self, status=200, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def encoded(self):
        if self.body is None:
            return b""
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def ok(body, headers=None):
    return Response(200, body, headers)


def created(body, headers=None):
    return Response(201, body, headers)


def no_content():
    return Response(204)


def retry_after(seconds):
    """How long a client should wait, as Azure says it: `Retry-After` in whole seconds (rounded up). A
    scaled wait under a second leaves `Retry-After` out and sends `retry-after-ms` instead: azure-core
    reads `Retry-After` first, and azure-mgmt-compute parses it with int() on 201/202 answers."""
    if seconds >= 1:
        return {"Retry-After": str(math.ceil(seconds - 1e-9))}
    return {"retry-after-ms": str(max(1, math.ceil(seconds * 1000)))}


def not_found(kind, name, rg=None):
    if kind == "resourceGroup":
        return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def new_guid():
    return str(uuid.uuid4())


def new_etag():
    return '"' + new_guid() + '"'


# --- resource ids -----------------------------------------------------------------------------

_RG_RE = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)", re.I)


def split_id(rid):
    """'/subscriptions/s/resourceGroups/rg/providers/NS/t1/n1/t2/n2' -> dict of its parts."""
    parts = rid.strip("/").split("/")
    out = {"subscription": parts[1] if len(parts) > 1 else None}
    if len(parts) > 3 and parts[2].lower() == "resourcegroups":
        out["resource_group"] = parts[3]
    if "providers" in [p.lower() for p in parts]:
        i = [p.lower() for p in parts].index("providers")
        rest = parts[i + 1:]
        out["namespace"] = rest[0] if rest else None
        pairs = rest[1:]
        out["types"] = pairs[0::2]
        out["names"] = pairs[1::2]
        out["name"] = pairs[-1] if len(pairs) % 2 == 0 and pairs else None
        out["type"] = "/".join([rest[0]] + pairs[0::2]) if rest else None
    return out


def resource_group_id(subscription, rg):
    return f"/subscriptions/{subscription}/resourceGroups/{rg}"


def rg_of(rid):
    m = _RG_RE.match(rid)
    return m.group(2) if m else None


# --- ETags --------------------------------------------------------------------------------------

def check_etag(req, current):
    """If-Match / If-None-Match preconditions against the current document (or None)."""
    if_match = req.headers.get("If-Match")
    if_none = req.headers.get("If-None-Match")
    etag = current.get("etag") if current else None
    if if_match:
        if current is None or (if_match.strip() != "*" and if_match.strip() != etag):
            raise ArmError(412, "PreconditionFailed",
                           "The condition specified using HTTP conditional header(s) is not met.")
    if if_none:
        if current is not None and (if_none.strip() == "*" or if_none.strip() == etag):
            raise ArmError(412, "PreconditionFailed",
                           "The condition specified using HTTP conditional header(s) is not met.")


# --- paging -------------------------------------------------------------------------------------

def page(req, items, base_url, page_size):
    """One page of `items` with a nextLink carrying $skiptoken, as ARM list operations do."""
    try:
        start = int(req.query.get("$skiptoken", "0"))
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", "The $skiptoken is not valid.")
    end = start + page_size
    body = {"value": items[start:end]}
    if end < len(items):
        query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(end)
        body["nextLink"] = f"{base_url}{req.path}?{urlencode(query)}"
    return body


def merge_patch(target, patch):
    """JSON merge patch (RFC 7386), the semantics of ARM PATCH."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
