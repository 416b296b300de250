"""The HTTPS server: request parsing, the ARM pipeline and the route table."""
import json
import logging
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from emulator import validation
from emulator.arm import ArmError, Response

log = logging.getLogger("emulator")

ROUTES = []


class Route:
    def __init__(self, method, template, handler, operation_id, action, control):
        self.method = method.upper()
        self.template = template
        self.handler = handler
        self.operation_id = operation_id
        self.action = action or derive_action(self.method, template)
        self.control = control
        pattern = re.sub(r"\\{([^}]+)\\}", lambda m: f"(?P<{_group(m.group(1))}>[^/]+)", re.escape(template))
        self.regex = re.compile("^" + pattern + "/?$", re.I)
        self.params = re.findall(r"{([^}]+)}", template)
        self.literals = len([s for s in template.split("/") if s and not s.startswith("{")])

    def match(self, method, path):
        if method != self.method:
            return None
        m = self.regex.match(path)
        if not m:
            return None
        return {name: unquote(m.group(_group(name))) for name in self.params}


def _group(name):
    return re.sub(r"\W", "_", name)


def route(method, template, operation_id=None, action=None, control=False):
    """Register a handler `fn(ctx, req) -> Response` for an ARM (or control API) path template."""
    def register(fn):
        ROUTES.append(Route(method, template, fn, operation_id, action, control))
        ROUTES.sort(key=lambda r: -r.literals)
        return fn
    return register


def derive_action(method, template):
    """The RBAC action Azure checks for a request, e.g. Microsoft.Compute/virtualMachineScaleSets/write."""
    parts = [p for p in template.strip("/").split("/")]
    lower = [p.lower() for p in parts]
    if "providers" in lower:
        rest = parts[lower.index("providers") + 1:]
        namespace, chain = rest[0], rest[1:]
    else:
        # /subscriptions/{id}/resourcegroups/{name}: Azure spells the type resourceGroups
        chain = ["subscriptions", "{subscriptionId}"] + ["resourceGroups" if p.lower() == "resourcegroups" else p
                                                         for p in parts[2:]]
        namespace = "Microsoft.Resources"
    types = [seg for i, seg in enumerate(chain) if i % 2 == 0]
    if method == "POST" and len(chain) % 2 == 1 and len(types) > 1:
        return f"{namespace}/{'/'.join(types[:-1])}/{types[-1]}/action"
    verb = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write",
            "DELETE": "delete", "POST": "action"}[method]
    return f"{namespace}/{'/'.join(types)}/{verb}"


class CaseInsensitiveDict(dict):
    def __init__(self, items):
        super().__init__((k.lower(), v) for k, v in items)

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(key.lower())


class Request:
    def __init__(self, method, target, headers, raw_body):
        split = urlsplit(target)
        self.method = method
        self.path = unquote(split.path)
        self.raw_query = split.query
        self.query = {k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)}
        self.headers = CaseInsensitiveDict(headers.items())
        self.raw_body = raw_body
        self.body = None
        self.params = {}
        self.principal = None
        self.operation_id = None
        self.route = None
        content_type = self.headers.get("Content-Type", "") or ""
        if raw_body and "json" in content_type or (raw_body and raw_body[:1] in (b"{", b"[")):
            try:
                self.body = json.loads(raw_body)
            except ValueError:
                self.body_error = True
        self.body_error = getattr(self, "body_error", False)

    @property
    def api_version(self):
        return self.query.get("api-version")


def find_route(method, path):
    for candidate in ROUTES:
        params = candidate.match(method, path)
        if params is not None:
            return candidate, params
    return None, None


def any_route_for_path(path):
    return any(r.regex.match(path) for r in ROUTES)


class Pipeline:
    """Everything between the socket and a handler; one instance per running emulator."""

    def __init__(self, ctx, identity, faults, traffic, throttle=None):
        self.ctx = ctx
        self.identity = identity
        self.faults = faults
        self.traffic = traffic
        self.throttle = throttle

    def handle(self, req):
        started = time.time()
        request_id = str(uuid.uuid4())
        correlation = req.headers.get("x-ms-correlation-request-id") or request_id
        response = None
        try:
            response = self.identity.handle_public(req)
            if response is None:
                if req.path.startswith("/_emulator/"):
                    response = self._control(req)
                else:
                    response = self._arm(req)
        except ArmError as err:
            response = Response(err.status, err.envelope(), err.headers)
        except _DropConnection:
            raise
        except Exception as exc:  # a bug in the emulator must still answer like ARM does
            log.exception("internal error on %s %s", req.method, req.path)
            with self.ctx.lock:
                self.ctx.store.rollback()   # nothing half-done is kept
            response = Response(500, {"error": {"code": "InternalServerError",
                                                "message": f"Emulator internal error: {exc}"}})
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers.setdefault("x-ms-correlation-request-id", correlation)
        if response.body is not None and not isinstance(response.body, (bytes, str)):
            response.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        if not req.path.startswith("/_emulator/"):
            response.headers.update(getattr(req, "response_headers", None) or {})  # throttling's counters
            with self.ctx.lock:
                self.traffic.record(self.ctx, req, response, started)
                self.ctx.store.commit()
        return response

    def _control(self, req):
        self.identity.check_admin(req)
        with self.ctx.lock:
            matched, params = find_route(req.method, req.path)
            if matched is None or not matched.control:
                raise ArmError(404, "NotFound", f"No control API route for {req.method} {req.path}.")
            req.params = params
            response = matched.handler(self.ctx, req)
            self.ctx.store.commit()
            return response

    def _arm(self, req):
        req.principal = self.identity.authenticate(req)
        matched, params = find_route(req.method, req.path)
        if matched is None or matched.control:
            if any_route_for_path(req.path):
                raise ArmError(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on {req.path}.")
            raise ArmError(404, "InvalidResourceType" if "/providers/" in req.path else "NotFound",
                           f"The resource type could not be found for path '{req.path}'.")
        req.route, req.params, req.operation_id = matched, params, matched.operation_id
        self.identity.authorize(req.principal, matched.action, req.path)
        self.faults.apply(self.ctx, req)                 # may raise, sleep or drop the connection
        if not req.api_version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if req.body_error:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
        with self.ctx.lock:
            if self.throttle is not None:
                self.throttle(self.ctx, req)
            self.ctx.request_api_version = req.api_version
            self.ctx.advance()
            if self.ctx.specs is not None and matched.operation_id and req.method in ("PUT", "PATCH", "POST"):
                self.ctx.specs.validate_body(matched.operation_id, req.body)
            validation.check_request(req)               # names, locations, tags: what ARM refuses
            try:
                response = matched.handler(self.ctx, req)
            finally:
                self.ctx.request_api_version = None
            self._rate_headers(req, response)
            self.ctx.store.commit()
            return response

    def _rate_headers(self, req, response):
        # ARM's per-principal hourly budgets (12000 reads / 1200 writes), counted, never enforced here.
        is_read = req.method in ("GET", "HEAD")
        key = f"ratelimit:{req.principal.get('object_id')}:{int(time.time() // 3600)}:{'r' if is_read else 'w'}"
        used = self.ctx.store.kv_get(key, 0) + 1
        self.ctx.store.kv_set(key, used)
        name = "reads" if is_read else "writes"
        budget = 12000 if is_read else 1200
        response.headers.setdefault(f"x-ms-ratelimit-remaining-subscription-{name}", str(max(budget - used, 0)))


class _DropConnection(Exception):
    """Raised by a fault to close the socket without answering."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FleetOpsAzureEmulator/0.1"

    def setup(self):
        self.request.settimeout(60)
        try:
            self.request.do_handshake()
        except (OSError, ValueError):
            self.request.close()
            raise
        super().setup()

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass

    def log_message(self, fmt, *args):
        log.debug("%s - %s", self.address_string(), fmt % args)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        req = Request(self.command, self.path, self.headers, raw)
        try:
            response = self.server.pipeline.handle(req)
        except _DropConnection:
            self.close_connection = True
            try:
                import socket
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = response.encoded()
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, pipeline, ssl_context):
        super().__init__(address, Handler)
        self.pipeline = pipeline
        # The TLS handshake runs in the handler thread (Handler.setup), never in the accept loop.
        self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request, client_address):
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def run_timers(ctx, stop_event, interval=0.02):
    """Background thread: fire due timers even when no client is asking."""
    while not stop_event.is_set():
        with ctx.lock:
            try:
                ctx.advance()
                ctx.store.commit()
            except Exception:  # keep serving; the traceback goes to the log
                log.exception("timer failed")
            due = ctx.next_due()
        wait = interval if due is None else min(max(due - time.time(), 0.0), interval)
        stop_event.wait(wait or 0.001)


def start_timer_thread(ctx):
    stop = threading.Event()
    thread = threading.Thread(target=run_timers, args=(ctx, stop), daemon=True, name="timers")
    thread.start()
    return stop, thread
