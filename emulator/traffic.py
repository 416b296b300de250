"""Traffic log: every ARM request/response pair, secrets redacted, exportable for `oav validate-traffic`."""
import json
import os
from urllib.parse import parse_qsl, urlencode, urlsplit

SECRET_KEYS = {"adminpassword", "protectedsettings", "customdata", "client_secret", "secret", "password",
               "protectedsettingsfromkeyvault", "access_token", "userdata"}
REDACTED = "<redacted>"
_RESPONSE_HEADERS = ("Azure-AsyncOperation", "Location", "Retry-After", "retry-after-ms", "ETag",
                     "x-ms-request-id", "x-ms-correlation-request-id",
                     "x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-subscription-writes",
                     "x-ms-ratelimit-remaining-resource")


def redact(value):
    """A copy of a JSON value with every secret-looking property replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if k.lower() in SECRET_KEYS and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _request_headers(req):
    keep = {}
    for key in ("Content-Type", "If-Match", "If-None-Match", "User-Agent", "x-ms-client-request-id"):
        value = req.headers.get(key)
        if value:
            keep[key] = value
    if req.headers.get("Authorization"):
        keep["Authorization"] = "Bearer " + REDACTED
    return keep


class Traffic:
    def record(self, ctx, req, response, started):
        body = response.body if isinstance(response.body, (dict, list)) else None
        principal = req.principal or {}
        entry = {
            "ts": started,
            "duration_ms": round((ctx.clock.now() - started) * 1000, 3),
            "principal": principal.get("name"),
            "operation_id": req.operation_id,
            "liveRequest": {
                "method": req.method,
                "url": f"{ctx.base_url}{req.path}" + (f"?{req.raw_query}" if req.raw_query else ""),
                "headers": _request_headers(req),
                "body": redact(req.body) if req.body is not None else None,
            },
            "liveResponse": {
                "statusCode": str(response.status),
                "headers": {k: v for k, v in response.headers.items() if k in _RESPONSE_HEADERS},
                "body": redact(body) if body is not None else None,
            },
        }
        ctx.store.add_traffic(started, entry)


def export_for_oav(entries, specs, out_dir):
    """Write one oav 'validate-traffic' file per request, in one folder per spec file.

    The SDKs send newer api-versions than the spec files here define; each url's api-version is mapped
    to its operation's spec version (the newer versions are supersets for the fields we use).
    Returns {spec_path: folder}.
    """
    folders = {}
    for seq, _ts, entry in entries:
        op = specs.operation(entry.get("operation_id")) if specs is not None else None
        if op is None:
            continue
        spec_path = os.path.join(specs.root, op.spec_file)
        folder = os.path.join(out_dir, os.path.basename(op.spec_file).replace(".json", ""))
        os.makedirs(folder, exist_ok=True)
        folders[spec_path] = folder
        request = dict(entry["liveRequest"])
        url = urlsplit(request["url"])
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        params["api-version"] = op.api_version
        request["url"] = f"https://management.azure.com{url.path}?{urlencode(params)}"
        request["headers"] = dict(request["headers"], **{"Content-Type": "application/json"})
        response = dict(entry["liveResponse"])
        response["headers"] = dict(response["headers"], **{"Content-Type": "application/json"})
        if request.get("body") is None:
            request.pop("body", None)
        if response.get("body") is None:
            response.pop("body", None)
        with open(os.path.join(folder, f"{seq:07d}.json"), "w") as fh:
            json.dump({"liveRequest": request, "liveResponse": response}, fh)
    return folders
