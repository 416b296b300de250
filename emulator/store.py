"""SQLite-backed state with an in-memory mirror.

Reads come from memory (a 1000-instance list must be cheap); writes are collected and flushed in one
transaction by `commit()`, which the server calls before it answers a request. What was answered is
therefore on disk, and `kill -9` loses nothing a client has seen.
"""
import heapq
import itertools
import json
import os
import sqlite3
import threading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (key TEXT PRIMARY KEY, seq INTEGER, id TEXT, type TEXT, doc TEXT);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS timers (seq INTEGER PRIMARY KEY, due REAL, name TEXT, payload TEXT);
CREATE TABLE IF NOT EXISTS traffic (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, doc TEXT);
"""

_DELETED = object()


class Store:
    def __init__(self, path):
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._load()

    def _load(self):
        self._resources = {}   # key -> [seq, id, type, text]
        self._kv = {}
        self._timers = []      # heap of (due, seq, name, payload)
        self._dirty_resources = {}
        self._dirty_kv = {}
        self._new_timers = []
        self._done_timers = []
        self._traffic = []
        for key, seq, rid, rtype, doc in self.db.execute(
                "SELECT key, seq, id, type, doc FROM resources ORDER BY seq"):
            self._resources[key] = [seq, rid, rtype, doc]
        for key, value in self.db.execute("SELECT key, value FROM kv"):
            self._kv[key] = value
        for seq, due, name, payload in self.db.execute("SELECT seq, due, name, payload FROM timers"):
            heapq.heappush(self._timers, (due, seq, name, payload))
        top = max([v[0] for v in self._resources.values()] + [t[1] for t in self._timers] + [0])
        self._seq = itertools.count(top + 1)

    # --- resources ------------------------------------------------------------------------------

    def get(self, rid):
        row = self._resources.get(rid.lower())
        return json.loads(row[3]) if row else None

    def exists(self, rid):
        return rid.lower() in self._resources

    def put(self, rid, doc, rtype=None):
        """Store `doc` at `rid`; keeps the first-written casing of the id and the insertion order."""
        key = rid.lower()
        row = self._resources.get(key)
        text = json.dumps(doc)
        if row:
            row[3] = text
            if rtype:
                row[2] = rtype.lower()
        else:
            row = [next(self._seq), rid, (rtype or doc.get("type") or "").lower(), text]
            self._resources[key] = row
        self._dirty_resources[key] = row
        return doc

    def delete(self, rid):
        key = rid.lower()
        if self._resources.pop(key, None) is not None:
            self._dirty_resources[key] = _DELETED

    def list(self, rtype=None, prefix=None):
        """Docs of one type (case-insensitive) under an id prefix, in insertion order."""
        rtype = rtype.lower() if rtype else None
        prefix = prefix.lower().rstrip("/") + "/" if prefix else None
        out = []
        for key, (seq, rid, typ, text) in self._resources.items():
            if rtype and typ != rtype:
                continue
            if prefix and not key.startswith(prefix):
                continue
            out.append(json.loads(text))
        return out

    def ids(self, rtype=None, prefix=None):
        rtype = rtype.lower() if rtype else None
        prefix = prefix.lower().rstrip("/") + "/" if prefix else None
        return [row[1] for key, row in self._resources.items()
                if (not rtype or row[2] == rtype) and (not prefix or key.startswith(prefix))]

    def delete_tree(self, rid):
        """Delete a resource and everything under it."""
        prefix = rid.lower().rstrip("/") + "/"
        for key in [k for k in self._resources if k == rid.lower() or k.startswith(prefix)]:
            self.delete(self._resources[key][1])

    # --- key/value ------------------------------------------------------------------------------

    def kv_get(self, key, default=None):
        text = self._kv.get(key)
        return json.loads(text) if text is not None else default

    def kv_set(self, key, value):
        text = json.dumps(value)
        self._kv[key] = text
        self._dirty_kv[key] = text

    def kv_delete(self, key):
        if self._kv.pop(key, None) is not None:
            self._dirty_kv[key] = _DELETED

    def kv_keys(self, prefix=""):
        return [k for k in self._kv if k.startswith(prefix)]

    # --- timers ---------------------------------------------------------------------------------

    def add_timer(self, due, name, payload):
        seq = next(self._seq)
        text = json.dumps(payload)
        heapq.heappush(self._timers, (due, seq, name, text))
        self._new_timers.append((seq, due, name, text))
        return seq

    def pop_due_timer(self, now):
        """The earliest timer due at `now`, removed, as (due, name, payload), or None."""
        if not self._timers or self._timers[0][0] > now:
            return None
        due, seq, name, text = heapq.heappop(self._timers)
        self._done_timers.append(seq)
        return due, name, json.loads(text)

    def next_timer_due(self):
        return self._timers[0][0] if self._timers else None

    # --- traffic --------------------------------------------------------------------------------

    def add_traffic(self, ts, doc):
        self._traffic.append((ts, json.dumps(doc)))

    def traffic(self, since_seq=0):
        self.commit()
        return [(seq, ts, json.loads(doc)) for seq, ts, doc in self.db.execute(
            "SELECT seq, ts, doc FROM traffic WHERE seq > ? ORDER BY seq", (since_seq,))]

    def clear_traffic(self):
        self.commit()
        self.db.execute("DELETE FROM traffic")

    # --- persistence ----------------------------------------------------------------------------

    def commit(self):
        """Flush everything written since the last commit in one transaction."""
        if not (self._dirty_resources or self._dirty_kv or self._new_timers
                or self._done_timers or self._traffic):
            return
        db = self.db
        db.execute("BEGIN")
        try:
            for key, row in self._dirty_resources.items():
                if row is _DELETED:
                    db.execute("DELETE FROM resources WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?)", (key, *row))
            for key, text in self._dirty_kv.items():
                if text is _DELETED:
                    db.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, text))
            db.executemany("INSERT INTO timers VALUES (?, ?, ?, ?)", self._new_timers)
            db.executemany("DELETE FROM timers WHERE seq = ?", [(s,) for s in self._done_timers])
            db.executemany("INSERT INTO traffic (ts, doc) VALUES (?, ?)", self._traffic)
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise
        self._dirty_resources.clear()
        self._dirty_kv.clear()
        self._new_timers.clear()
        self._done_timers.clear()
        self._traffic.clear()

    def rollback(self):
        """Drop every change since the last commit (a handler failed half-way): reload from disk."""
        self._load()

    def reset(self):
        """Forget resources, settings and timers (control API reset); the traffic log has its own DELETE."""
        self.commit()
        self.db.executescript("DELETE FROM resources; DELETE FROM kv; DELETE FROM timers;")
        self._load()

    def close(self):
        self.commit()
        self.db.close()
