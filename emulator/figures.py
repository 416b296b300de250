"""Traffic figures: how hard a client drove ARM, and how fast it reacted to what happened inside.

    summarise(entries, time_scale, events=()) -> dict       entries: traffic log docs (with "ts")
    render(summary) -> str                                  the same as a text report
    main(args)                                              python -m emulator figures --state-dir DIR
                                                                [--since SEQ] [--json]

Figures:
* requests by operation id (LRO polls, which have no operation id, as "(operation status)" and
  "(operation result)");
* per resource (the top-level ARM resource a request addresses, e.g. the scale set for its VMs and
  actions): reads and writes per *scaled* minute (60 s x time_scale), peak and mean over the log's span;
* 429 answers, by policy: the Compute policy named in the error detail, ARM's
  SubscriptionRequestsThrottled as "ARM/<kind>", and injected faults as "fault";
* LRO polls: GETs of operations/{id} and operationResults/{id};
* reaction latency: for each write on a resource, the time since the latest event (a state change
  inside the emulator: events.py) on that resource after the previous write, in real seconds and in
  realistic seconds (divided by time_scale). It measures how long a client takes to act on, say, the
  last instance of a batch turning Healthy.

The CLI reads DIR/state.db read-only (a running emulator is not disturbed): the traffic table, the
events table, and the time scale from the stored config.
"""
import argparse
import json
import math
import os
import sqlite3
import sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit

from emulator import events as event_log

READS = ("GET", "HEAD")


# --- classifying traffic entries -----------------------------------------------------------------

def request_path(entry):
    return urlsplit(entry["liveRequest"]["url"]).path


def top_resource(path):
    """/subscriptions/s/resourceGroups/g/providers/NS/type/name/... -> the id up to `name`; lists and
    other paths map to themselves (lower-cased, without a trailing slash)."""
    parts = path.strip("/").split("/")
    lower = [p.lower() for p in parts]
    if "providers" in lower:
        i = lower.index("providers")
        if len(parts) >= i + 4:
            return "/" + "/".join(lower[:i + 4])
    return "/" + "/".join(lower)


def lro_kind(path):
    lower = path.lower()
    if "/locations/" in lower and "/operationresults/" in lower:
        return "(operation result)"
    if "/locations/" in lower and "/operations/" in lower:
        return "(operation status)"
    return None


def operation_name(entry):
    return entry.get("operation_id") or lro_kind(request_path(entry)) or \
        f"{entry['liveRequest']['method']} (no operation id)"


def throttle_policy(entry):
    """Which limit a 429 hit: a Compute policy, ARM's buckets or an injected fault."""
    body = (entry["liveResponse"].get("body") or {}).get("error") or {}
    details = body.get("details") or []
    if body.get("code") == "OperationNotAllowed" and details:
        return details[0].get("target") or "Microsoft.Compute"
    if body.get("code") == "SubscriptionRequestsThrottled":
        return f"ARM/{'reads' if entry['liveRequest']['method'] in READS else 'writes'}"
    return "fault"


# --- statistics ----------------------------------------------------------------------------------

def rate(counts, minutes):
    """Peak and mean requests per minute from {minute index: count} over `minutes` minutes."""
    return {"peak": max(counts.values(), default=0), "mean": round(sum(counts.values()) / max(minutes, 1), 3)}


def spread(values):
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pct(p):
        return ordered[min(int(math.ceil(p / 100 * len(ordered))) - 1, len(ordered) - 1)]
    return {"count": len(ordered), "min": round(ordered[0], 3), "mean": round(sum(ordered) / len(ordered), 3),
            "p50": round(pct(50), 3), "p95": round(pct(95), 3), "max": round(ordered[-1], 3)}


def reaction_latencies(entries, events):
    """[(write entry, event, seconds)] for each write preceded by an event on its resource since the
    previous write on that resource."""
    by_resource = defaultdict(list)
    for ev in events:
        by_resource[top_resource(ev["resource_id"])].append(ev)
    for evs in by_resource.values():
        evs.sort(key=lambda e: e["ts"])
    previous_write = {}
    out = []
    for entry in sorted(entries, key=lambda e: e["ts"]):
        if entry["liveRequest"]["method"] in READS:
            continue
        resource = top_resource(request_path(entry))
        since = previous_write.get(resource, -math.inf)
        previous_write[resource] = entry["ts"]
        recent = [e for e in by_resource.get(resource, []) if since < e["ts"] <= entry["ts"]]
        if recent:
            out.append((entry, recent[-1], entry["ts"] - recent[-1]["ts"]))
    return out


def summarise(entries, time_scale, events=()):
    entries = sorted(entries, key=lambda e: e["ts"])
    minute = 60.0 * float(time_scale)
    start = entries[0]["ts"] if entries else 0.0
    span = (entries[-1]["ts"] - start) if entries else 0.0
    minutes = max(int(math.ceil(span / minute)) if minute else 1, 1)

    by_operation = Counter(operation_name(e) for e in entries)
    per_resource = defaultdict(lambda: {"reads": Counter(), "writes": Counter()})
    throttled = Counter()
    polls = Counter()
    for entry in entries:
        index = int((entry["ts"] - start) // minute) if minute else 0
        path = request_path(entry)
        if entry["liveResponse"]["statusCode"] == "429":
            throttled[throttle_policy(entry)] += 1
        if lro_kind(path):
            polls[index] += 1
            continue
        kind = "reads" if entry["liveRequest"]["method"] in READS else "writes"
        per_resource[top_resource(path)][kind][index] += 1

    latencies = reaction_latencies(entries, list(events))
    seconds = [s for _, _, s in latencies]
    return {
        "requests": len(entries),
        "time_scale": float(time_scale),
        "scaled_minute_seconds": minute,
        "span_seconds": round(span, 3),
        "minutes": minutes,
        "by_operation": dict(by_operation.most_common()),
        "per_resource": {rid: {"reads": sum(c["reads"].values()), "writes": sum(c["writes"].values()),
                               "reads_per_minute": rate(c["reads"], minutes),
                               "writes_per_minute": rate(c["writes"], minutes)}
                         for rid, c in sorted(per_resource.items())},
        "throttled": {"total": sum(throttled.values()), "by_policy": dict(throttled.most_common())},
        "lro_polls": {"total": sum(polls.values()), "per_minute": rate(polls, minutes)},
        "reaction_latency": {
            "seconds": spread(seconds),
            "realistic_seconds": spread([s / time_scale for s in seconds]) if time_scale else spread([]),
            "samples": [{"write": operation_name(w), "resource": top_resource(request_path(w)),
                         "event": ev["kind"], "event_time": ev["ts"], "write_time": w["ts"],
                         "seconds": round(s, 3)} for w, ev, s in latencies],
        },
    }


# --- text ----------------------------------------------------------------------------------------

def render(summary):
    s = summary
    lines = [f"{s['requests']} requests over {s['span_seconds']} s "
             f"({s['minutes']} scaled minute(s) of {s['scaled_minute_seconds']:g} s, time scale {s['time_scale']:g})",
             "", "Requests by operation:"]
    lines += [f"  {count:6d}  {name}" for name, count in s["by_operation"].items()]
    lines += ["", "Per resource (per scaled minute: peak / mean):"]
    for rid, r in s["per_resource"].items():
        lines.append(f"  {rid}")
        for kind in ("reads", "writes"):
            per = r[f"{kind}_per_minute"]
            lines.append(f"      {kind:6s} {r[kind]:6d}   {per['peak']:5d} / {per['mean']:g}")
    lines += ["", f"429 answers: {s['throttled']['total']}"]
    lines += [f"  {count:6d}  {policy}" for policy, count in s["throttled"]["by_policy"].items()]
    p = s["lro_polls"]
    lines += ["", f"LRO polls: {p['total']} (per scaled minute: peak {p['per_minute']['peak']}, "
                  f"mean {p['per_minute']['mean']:g})"]
    lat = s["reaction_latency"]
    lines += ["", "Reaction latency (state change -> the client's next write on that resource):"]
    if not lat["seconds"]["count"]:
        lines.append("  no write followed a recorded event")
    else:
        for label, key in (("real", "seconds"), ("realistic", "realistic_seconds")):
            d = lat[key]
            lines.append(f"  {label:9s} n={d['count']} min {d['min']:g}  p50 {d['p50']:g}  mean {d['mean']:g}  "
                         f"p95 {d['p95']:g}  max {d['max']:g} s")
    return "\n".join(lines) + "\n"


# --- CLI -----------------------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(prog="python -m emulator figures",
                                description="Traffic figures of an emulator state dir")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--since", type=int, default=0, help="only traffic after this sequence number")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def load(state_dir, since=0):
    """(traffic entries, events, time scale) from a state dir, opened read-only."""
    path = os.path.join(os.path.abspath(state_dir), "state.db")
    if not os.path.exists(path):
        raise SystemExit(f"No emulator state at {path}.")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, ts, doc FROM traffic WHERE seq > ? ORDER BY seq", (since,)).fetchall()
        entries = [dict(json.loads(doc), seq=seq, ts=ts) for seq, ts, doc in rows]
        config = db.execute("SELECT value FROM kv WHERE key = 'config'").fetchone()
        time_scale = float(json.loads(config[0]).get("time_scale", 1.0)) if config else 1.0
        first = entries[0]["ts"] if entries else 0.0
        evs = [e for e in event_log.read(db) if e["ts"] >= first - 3600 * time_scale]
    finally:
        db.close()
    return entries, evs, time_scale


def main(args=None):
    """Entry point; `args` is an argparse Namespace (state_dir, since, json) or an argv list."""
    if args is None or isinstance(args, (list, tuple)):
        args = parser().parse_args(args)
    entries, evs, time_scale = load(args.state_dir, getattr(args, "since", 0) or 0)
    summary = summarise(entries, time_scale, evs)
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
    else:
        sys.stdout.write(render(summary))
    return 0
