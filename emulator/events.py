"""State changes inside the emulator (instances turning Healthy, autoscale actions, ...), kept so the
traffic figures can measure how fast a client reacts to them.

    events.record(ctx, "instance.health", vmss_id, time=t, instance_id="3", state="Healthy")

Events live in their own SQLite table `events` of state.db (created here; the core store is not
touched), written at once: like the traffic log they survive restarts and a control-API reset, and
have their own DELETE. `resource_id` should be the resource a client would write to in reaction (the
scale set, not the instance) — figures match events to writes on the same top-level resource anyway.

Control API: `GET /_emulator/events[?since=SEQ&kind=K&resource_id=ID]`, `DELETE /_emulator/events`.

Until the compute provider records health transitions itself, `watch_health` (an engine:
`ctx.engines.append(events.watch_health)`) derives them lazily: every `health_probe_interval` (scaled,
at least WATCH_MIN_INTERVAL real seconds) it computes each instance's Application Health state and
records a change, dated when the probes settled on it when that is when it happened.
"""
import json
import logging
import threading

from emulator.arm import Response, ok
from emulator.server import route

log = logging.getLogger("emulator.events")

_SCHEMA = "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, kind TEXT, " \
          "resource_id TEXT, doc TEXT)"
_ready = set()
_ready_lock = threading.Lock()
WATCH_KEY = "events:health"
WATCH_MIN_INTERVAL = 1.0   # real seconds: a full scan of a 1000-instance set costs ~0.2 s of CPU


def _db(store):
    """The store's SQLite connection, with our table created once per database file."""
    with _ready_lock:
        if store.path not in _ready:
            store.db.execute(_SCHEMA)
            _ready.add(store.path)
    return store.db


def record(ctx, kind, resource_id, time=None, **data):
    """Append an event; returns it (with its seq)."""
    ts = ctx.clock.now() if time is None else float(time)
    doc = {"kind": kind, "resource_id": resource_id, "ts": ts, "time": ctx.clock.iso(ts), **data}
    cursor = _db(ctx.store).execute("INSERT INTO events (ts, kind, resource_id, doc) VALUES (?, ?, ?, ?)",
                                    (ts, kind, resource_id, json.dumps(doc)))
    doc["seq"] = cursor.lastrowid
    return doc


def read(db, since=0, kind=None, resource_id=None):
    """Events from an SQLite connection (a running emulator's or a state.db opened read-only)."""
    try:
        rows = db.execute("SELECT seq, doc FROM events WHERE seq > ? ORDER BY seq", (int(since),)).fetchall()
    except Exception:   # no events table yet: nothing was ever recorded
        return []
    out = []
    for seq, text in rows:
        doc = dict(json.loads(text), seq=seq)
        if kind and doc["kind"] != kind:
            continue
        if resource_id and doc["resource_id"].lower() != resource_id.lower():
            continue
        out.append(doc)
    return out


def events(ctx, since=0, kind=None, resource_id=None):
    return read(_db(ctx.store), since, kind, resource_id)


@route("GET", "/_emulator/events", control=True)
def get_events(ctx, req):
    q = req.query
    return ok({"value": events(ctx, int(q.get("since", "0") or 0), q.get("kind"), q.get("resource_id"))})


@route("DELETE", "/_emulator/events", control=True)
def clear_events(ctx, req):
    _db(ctx.store).execute("DELETE FROM events")
    return Response(204)


# --- lazy health transitions ---------------------------------------------------------------------

def watch_health(ctx, now):
    """Engine: record Application Health changes of scale-set instances (see the module docstring)."""
    # The next check time lives on ctx (not in kv), so a call that is not due costs one comparison.
    if now < getattr(ctx, "_health_watch_next", 0):
        return
    from emulator.providers.compute import instances as inst
    from emulator.providers.compute import model as m
    watch = ctx.store.kv_get(WATCH_KEY) or {}
    known = watch.get("states", {})
    last = watch.get("checked")
    changed = False
    for doc in ctx.store.list(m.VMSS_TYPE):
        for view in inst.list_instances(ctx, doc["id"], now):
            key = view["id"].lower()
            state = inst.health_of(ctx, view, now, doc)
            if state == known.get(key):
                continue
            known[key] = state
            changed = True
            if state is not None:
                record(ctx, "instance.health", doc["id"], time=_changed_at(ctx, doc, view, now, last),
                       instance_id=view["instanceId"], state=state)
    ctx._health_watch_next = now + max(ctx.duration("health_probe_interval"), WATCH_MIN_INTERVAL)
    if changed or last is None:
        ctx.store.kv_set(WATCH_KEY, {"checked": now, "states": known})


def _changed_at(ctx, vmss_doc, view, now, last_checked):
    """When the state changed: when the probes settled on it (health.state_since) if that falls since the
    last check (the usual Initializing -> Healthy step), else now."""
    from emulator.providers.compute import health as h
    since = h.state_since(ctx, view, now, vmss_doc)[1]
    if since is not None and since <= now and (last_checked is None or since > last_checked):
        return since
    return now
