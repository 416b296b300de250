# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One operation per scale set: a lease, kept as a tag on the scale set.

``fleetops.lease: owner=<host>:<controller pid>:<run id>;pid=<module pid>;op=<operation>;expires=<ISO UTC>``
(a run that keeps its lease from call to call: ``pid=0;...;call=<module pid>``, below)

* Taken with a tags-only PATCH conditioned on the ETag just read (``If-Match``): of two runs that read the
  same free scale set, one write wins and the other gets 412 and reads again. Tags are not part of the model
  instances run, so the PATCH starts no model generation. Its operation is judged ended from reads of the set
  (provisioningState no longer Updating, every quarter of wait_sleep), or not waited for at all by a run that
  waits for each set before writing to it (``unwaited``: blue/green), never through its poller (Azure's first
  Retry-After is 35-61 s); the poller's outcome is read at the module's waits once it has ended (settle).
* Renewed from the module's wait loops (_waiter.WAIT_HOOKS) once a third of its time has passed; the expiry
  is a few wait cycles long (TTL_MIN at least), so a run that died holds nothing for long. A run that acts on
  instances (a rollout's manualupgrade per batch) renews right after an accepted action once a third has passed,
  and its waits only once two thirds have (a batch longer than that): a renewal's PATCH keeps the scale set
  Updating for a while, and an action sent meanwhile is refused (409), so it never lands just before a batch.
* Released when the module exits, whatever the outcome (AzureModule's exit hooks) - except with
  ``keep_lease``: a run of several module calls (the rollout role: blue/green's staged then live; in place, one
  call runs every batch - batch_gate, renewed by these hooks also while it waits for the role's word between two
  batches; stopped by rollout_stop_when, it ends as a call ending at max_batches does) names itself with
  ``lease_run`` (the run id in the owner, the same for each of its calls, a new one per run); a call that ends
  with more to do (a rollout ``in_progress``; a blue/green call that succeeded, when the caller says another
  follows) keeps the lease at exit, and the next call with the same ``lease_run`` takes it as its own, without
  a write while a sixth of its time or more is left (renewed right after its first action). Such a run's calls
  write the lease in its kept form from the start (``pid=0``: no module holds it, the run does; ``call``: the
  module pid that wrote it), so a call that ends with a quarter of the lease's time or more left (its renewals
  see to that: once two thirds have passed at the latest) writes nothing at exit: a tags PATCH there would keep
  the set Updating into the next call's first action (refused 409 until it ends). A kept lease is held against
  every other run until it expires, or, on the same host, until its controller is gone (then orphaned, or
  stopping while the call that wrote it still runs); the call that ends the run (any other status, or a
  failure) releases it.
* A scale set the run creates (blue/green's green) carries the lease in its create's tags (Lease.lease_creates).
* A lease held by another run refuses this one before any write, naming the holder, what it does, when the
  lease expires and how to take over (``force_lease: true``, or wait for the expiry). Taken over at once:
  an expired lease, an unreadable one, and one whose module process is gone on this same host.
* A killed ``ansible-playbook`` leaves its module running (Ansible's workers detach into their own session):
  the module checks at every wait that the processes between it and its controller are still there, and
  stops (interrupted, lease released) when they are not. A re-run on the same host meanwhile waits for that
  module to stop instead of overlapping it; a holder whose lease was taken over stops at its next renewal.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from . import _waiter
from ._errors import error_details, failure_message, is_handled, is_transient

TAG = "fleetops.lease"
TTL_MIN = 300.0          # seconds: a lease never expires sooner than this after its last renewal
TTL_CYCLES = 6           # ... nor sooner than this many wait cycles
RETRY_SECONDS = 5.0      # a renewal that failed (a transient fault) is tried again this soon
CONFLICT_SECONDS = 60.0  # how long a lease write waits for the scale set's update in progress (409 Conflict)
KEPT_PID = 0             # the module pid of a lease kept from call to call of one run (keep_lease, lease_run)
RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")   # lease_run: no ':' ';' '=' (the tag's separators)


class LeaseLost(Exception):
    """Another run holds the lease now (it was taken over)."""


# ---------------------------------------------------------------------------------------------
# the tag: encode, decode, judge (pure)

def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> Optional[float]:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def encode(owner: Dict[str, Any], operation: str, expires: float) -> str:
    """The tag value (well under Azure's 256 characters: the host name is cut at 63, as DNS labels are)."""
    return "owner=%s:%s:%s;pid=%s;op=%s;expires=%s%s" % (
        str(owner["host"])[:63], owner["controller"], owner["run"], owner["pid"], operation, iso(expires),
        ";call=%s" % owner["call"] if owner.get("call") else "")


def decode(value: Any) -> Optional[Dict[str, Any]]:
    """The lease a tag value describes; None when it is not one (hand-edited, truncated)."""
    try:
        fields = dict(part.split("=", 1) for part in str(value).split(";"))
        host, controller, run = fields["owner"].rsplit(":", 2)
        lease = {"host": host, "controller": int(controller), "run": run, "pid": int(fields["pid"]),
                 "operation": fields["op"], "expires": parse_iso(fields["expires"])}
        if "call" in fields:   # a kept lease: the module pid of the call that wrote it
            lease["call"] = int(fields["call"])
    except (KeyError, ValueError):
        return None
    return lease if lease["expires"] is not None and run else None


def judge(lease: Optional[Dict[str, Any]], me: Dict[str, Any], now: float, force: bool, alive) -> str:
    """What this run may do with the lease found: free, unreadable, mine, expired, orphaned (its module is gone
    on this host), forced (``force_lease``), stopping (on this host, its controller is gone and its module is
    stopping), held. ``alive(pid)`` tells whether a process of this host exists."""
    if lease is None:
        return "free"
    if lease.get("unreadable"):
        return "unreadable"
    if lease["run"] == me["run"]:
        return "mine"
    if lease["expires"] <= now:
        return "expired"
    if force:
        return "forced"
    if lease["host"] == me["host"] and lease["pid"] == KEPT_PID:   # a kept lease: judged by its run's controller
        if not alive(lease["controller"]):                           # ... gone: the call that wrote it may still run
            return "stopping" if lease.get("call") and alive(lease["call"]) else "orphaned"
    elif lease["host"] == me["host"]:
        if not alive(lease["pid"]):
            return "orphaned"
        if not alive(lease["controller"]):
            return "stopping"
    return "held"


TAKEN_OVER = ("unreadable", "expired", "orphaned", "forced")


def held_message(what: str, lease: Dict[str, Any], now: float) -> str:
    kept = " - kept by that run from one call to the next" if lease["pid"] == KEPT_PID else ""
    return ("%s is leased to another operation: a %s run by %s (controller pid %s, module pid %s, run %s%s), "
            "tag %s, until %s (in %d s). Nothing was written. Wait for that run to end or its lease to expire, or "
            "take the lease over with force_lease: true once you know that run is gone (two operations on one "
            "scale set undo each other's work)." % (
                what, lease["operation"], lease["host"], lease["controller"], lease["pid"], lease["run"], kept, TAG,
                iso(lease["expires"]), max(0, int(lease["expires"] - now))))


def ttl_for(params: Dict[str, Any]) -> float:
    """A few wait cycles, and longer than the longest pause without a wait hook (between batches)."""
    return max(TTL_MIN, TTL_CYCLES * float(params.get("wait_sleep") or 0),
               2 * float(params.get("pause_between_batches") or 0) + TTL_MIN)


# ---------------------------------------------------------------------------------------------
# the controller: the processes between this module and ansible-playbook

def _proc(pid: int) -> Optional[Tuple[int, List[str]]]:
    """(parent pid, argv) of a process from /proc, None when it does not exist (or there is no /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            argv = [part.decode("utf-8", "replace") for part in cmdline.read().split(b"\0") if part]
    except (OSError, ValueError, IndexError):
        return None
    return ppid, argv


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _is_ansible(argv: List[str]) -> bool:
    return any(os.path.basename(arg).startswith("ansible") for arg in argv[:2])


class Controller:
    """The chain of (pid, parent pid) from this module's parent up to its controller: the topmost process of
    the first run of ``ansible*`` ancestors (a worker forked from ansible-playbook, then ansible-playbook), or
    the parent alone when there is none (or no /proc). The controller is gone when any link is broken."""

    def __init__(self, pid: Optional[int] = None):
        self.chain: List[Tuple[int, Optional[int]]] = []
        if pid:   # named by the caller (a role whose module runs under async, detached from its controller)
            found = _proc(pid)
            self.chain, self.pid = [(pid, found[0] if found else None)], pid
            return
        pid, top = os.getppid(), None
        ancestors = []
        for _depth in range(32):
            found = _proc(pid) if pid > 1 else None
            if found is None:
                break
            ancestors.append((pid, found[0]))
            if _is_ansible(found[1]):
                top = len(ancestors)
            elif top is not None:
                break
            pid = found[0]
        self.chain = ancestors[:top or 1] or [(os.getppid(), -1)]
        self.pid = self.chain[-1][0]

    def alive(self) -> bool:
        for pid, ppid in self.chain:
            if ppid is None:   # named by the caller, no /proc: the pid alone
                if not pid_alive(pid):
                    return False
                continue
            if ppid == -1:
                if os.getppid() != pid:
                    return False
                continue
            found = _proc(pid)
            if found is None or found[0] != ppid:
                return False
        return True


# ---------------------------------------------------------------------------------------------
# the lease of one run

class Lease:
    """The lease of this run on one or more scale sets (take(), then the module's waits and exit do the rest)."""

    def __init__(self, module, compute, operation: str, sets: List[Tuple[str, str]], result: Dict[str, Any],
                 defer: bool = False, docs: Optional[List[Dict[str, Any]]] = None, probe: bool = False,
                 keep_statuses: Tuple[str, ...] = ("in_progress",), unwaited: bool = False):
        self.module, self.compute, self.operation = module, compute, operation
        self.unwaited = unwaited
        self.defer, self.probe = defer, probe
        self.params = module.params
        self.result = result
        self.ttl = ttl_for(self.params)
        self.sleep = float(self.params.get("wait_sleep") or 10.0)
        self.controller = Controller(self.params.get("lease_controller_pid"))
        run = self.params.get("lease_run")
        if run is not None and not RUN_ID.match(run):
            module.fail_json(msg="Invalid options: lease_run must be 1 to 40 letters, digits, '_', '.' or '-' (it is "
                             "part of the lease tag %s); got %r. Nothing was written." % (TAG, run))
        self.keep = keep_statuses if self.params.get("keep_lease") else ()
        self.me = {"host": socket.gethostname(), "controller": self.controller.pid, "run": run or uuid.uuid4().hex[:12],
                   "pid": os.getpid()}
        if self.keep and run is not None:   # a run that keeps its lease: written in its kept form from the start
            self.me.update(pid=KEPT_PID, call=os.getpid())
        self.sets = [{"resource_group": group, "name": name, "etag": None, "tags": None,
                      "value": None, "due": False} for group, name in sets]
        for held, doc in zip(self.sets, docs or []):
            held["doc"] = doc     # the scale set as the module just read it: no second read
        self.renew_at = 0.0
        self.renewed = float("-inf")    # when a renewal last wrote (monotonic)
        self.written = float("-inf")    # when a write last carried a fresh lease (monotonic)
        self.writing = False
        self.pending: List[Tuple[Dict[str, Any], Any]] = []   # (held, poller): tags PATCHes judged ended from a read
        self.clients: List[Any] = []    # the run's own scale-set clients, kept in step with the lease (guard)
        self.info: Dict[str, Any] = {"tag": TAG, "operation": operation, "owner": None, "expires": None,
                                     "free": True, "taken_over": []}

    # --- requests

    def _what(self, held) -> str:
        return "Scale set %s/%s" % (held["resource_group"], held["name"])

    def _read(self, held) -> Optional[Dict[str, Any]]:
        scale_sets = self.compute.virtual_machine_scale_sets
        try:
            return scale_sets.get(held["resource_group"], held["name"]).as_dict()
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, "status_code", None) == 404:
                return None
            self._fail("read the lease of", held, exc)
        return None

    def _write(self, held, tags: Dict[str, str], etag: Optional[str], patient: bool = True,
               wait: bool = False) -> Dict[str, Any]:
        """A tags-only PATCH under If-Match; returns the scale set Azure answers with (its new ETag). ``wait``:
        until its operation has ended (Azure refuses an action on the scale set meanwhile, 409 Conflict), judged
        from reads of the set (_applied), and then the scale set as read.

        ``patient``: while the scale set's previous update is still running Azure answers 409 Conflict ("a
        concurrent request"): asked again (_until_not_conflict); otherwise the 409 is raised at once."""
        from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

        def patch() -> Dict[str, Any]:
            poller = self.compute.virtual_machine_scale_sets.begin_update(
                held["resource_group"], held["name"], {"tags": tags}, etag=etag,
                match_condition=MatchConditions.IfNotModified, **({} if wait else {"polling": False}))
            if wait and self.unwaited:   # the run waits for the set itself before it writes to it (take, unwaited)
                self.pending.append((held, poller))
                return {"tags": dict(tags)}   # no ETag: the lease's next write reads the set first (_rewrite)
            if wait:
                return self._applied(held, poller)
            return poller.result().as_dict()

        return self._until_not_conflict(patch) if patient else patch()

    def _applied(self, held, poller) -> Dict[str, Any]:
        """The scale set once the tags PATCH ``poller`` started has ended, judged as the rollout judges its model
        PATCH (ScaleSetClient.wait_applied): the set read (GET) every quarter of wait_sleep until its
        provisioningState leaves Updating, not the poller waited for (Azure's first Retry-After is 35-61 s). The
        poller polls on in its thread and its outcome is read once it has ended (settle, at every wait of the
        module), so a PATCH that failed then still fails the module with Azure's error (a fault: transient).
        Decided as the blocking wait did: the poller ending first, a set that reads Failed (a failed update: the
        poller's error, waited for), the time running out."""
        what = "update of the tags of %s" % self._what(held)
        deadline = _waiter.Deadline(self.params.get("wait_timeout") or 1800)
        read: List[Optional[Dict[str, Any]]] = []

        def ended() -> bool:
            if poller.done():
                return True
            if not read:   # the PATCH's own answer (Updating) is the first look: no read yet
                read.append(None)
                return False
            read[:] = [self._read(held)]
            return read[0] is None or _provisioning(read[0]) != "updating"   # gone, or Failed: the poller says why

        try:
            _waiter.wait_until(ended, timeout=deadline.remaining(), sleep=self.sleep / 4, what=what)
        except _waiter.WaitTimeout:
            pass   # the poller's wait below says it (WaitTimeout), as before
        if poller.done() or not read or read[0] is None or _provisioning(read[0]) == "failed":
            return _waiter.poller_result(poller, deadline, what).as_dict()
        self.pending.append((held, poller))
        return read[0]

    def unconfirmed(self) -> bool:
        """Whether a tags PATCH judged ended from a read still has its poller running: Azure's operation may hold
        the set a moment more, and refuse an action meanwhile (409; _pending.start_after_write asks again)."""
        return any(not poller.done() for _held, poller in self.pending)

    def settle(self) -> None:
        """Read the outcome of every tags PATCH whose operation has ended since _applied judged it from a read:
        a failure fails the module as the blocking wait's did (``Failed to take the lease on ...``)."""
        for held, poller in [entry for entry in self.pending if entry[1].done()]:
            self.pending.remove((held, poller))
            try:
                poller.result()
            except Exception as exc:  # pylint: disable=broad-except
                self._fail("take the lease on", held, exc)

    def _until_not_conflict(self, call, ours=None):
        """``call()``'s answer. While Azure answers it 409 Conflict (the scale set's update still runs, and Azure
        refuses any other write or action meanwhile) it is asked again every wait_sleep seconds, until
        CONFLICT_SECONDS have passed (so at least once more, whatever wait_sleep is), and only while ``ours()`` says
        the update is one of this run's own, when given; then the 409 is raised, as is any other error at once."""
        end = time.monotonic() + CONFLICT_SECONDS
        while True:
            try:
                return call()
            except Exception as exc:  # pylint: disable=broad-except
                if _status(exc) != 409 or time.monotonic() > end or (ours is not None and not ours()):
                    raise
            time.sleep(self.sleep)

    def _fail(self, action: str, held, exc: Exception) -> None:
        if not is_handled(exc):
            raise exc
        extra = {"transient": True} if is_transient(exc) else {}   # as fail_from says it: not a verdict
        self.module.fail_json(msg=failure_message(action, "scale set %s/%s" % (held["resource_group"], held["name"]),
                                                  error_details(exc)), lease=self.info, **dict(self._failed_result(), **extra))

    def _failed_result(self) -> Dict[str, Any]:
        return {key: value for key, value in self.result.items() if key not in ("msg", "lease")}

    # --- take

    def take(self) -> "Lease":
        """Take the lease on every set that exists (check mode: only say whether it is free)."""
        for held in self.sets:
            self._take(held)
        self.module.on_exit.append(self.on_exit)
        self.result["lease"] = self.info
        return self

    def _take(self, held) -> None:
        for _attempt in range(5):   # each 412: someone wrote between our read and our write
            doc = self._wait_for_stopping(held)
            if doc is None:
                return
            tags = dict(doc.get("tags") or {})
            found = self._found(tags)
            verdict = judge(found, self.me, time.time(), self.params["force_lease"], pid_alive)
            if verdict == "held":
                if self.module.check_mode:
                    self.info.update(free=False, owner=tags[TAG], expires=iso(found["expires"]))
                    return
                self.module.fail_json(msg=held_message(self._what(held), found, time.time()), lease=dict(
                    self.info, free=False, owner=tags[TAG], expires=iso(found["expires"])), **self._failed_result())
            if verdict == "mine" and not self.module.check_mode:   # kept by this run's previous call: released
                # (or kept again) at our exit even if we write nothing
                held.update(etag=doc.get("etag"), tags=tags, value=tags[TAG])
                if self._adopt(held, found):
                    return
            if verdict in TAKEN_OVER:
                self.info["taken_over"].append({"scale_set": "%s/%s" % (held["resource_group"], held["name"]),
                                                "owner": tags.get(TAG), "reason": verdict})
            value = self._new_value()
            if self.module.check_mode:
                return
            if self.defer:
                held["due"] = True   # written with the run's first write (guard)
                return
            if self.probe:
                return
            tags[TAG] = value
            try:
                after = self._write(held, tags, doc.get("etag"), wait=True)
            except Exception as exc:  # pylint: disable=broad-except
                if _status(exc) == 412:
                    continue
                self._fail("take the lease on", held, exc)
            self._wrote(held, after)
            return
        self.module.fail_json(msg="%s: could not take the lease (tag %s): the scale set kept changing between a "
                              "read and a conditional write; run again." % (self._what(held), TAG),
                              lease=self.info, **self._failed_result())

    def _adopt(self, held, found: Dict[str, Any]) -> bool:
        """A lease this run's previous call kept, with a sixth of its time or more to run (the previous call left it
        with a quarter or more: the gap between two calls is covered), is this call's as it is: no tags PATCH before
        the first action (Azure refuses the action until that PATCH ends: a batch's start held back by it, and a
        write more per batch). Like any other lease of ours it is renewed right after an accepted action once a
        third of its time has passed, by the waits once two thirds have (after_action); it stays in its kept form
        (pid 0), judged by its controller."""
        left = found["expires"] - time.time()
        same = all(found[key] == self.me[key] for key in ("host", "controller")) and found["operation"] == self.operation
        if found["pid"] != KEPT_PID or not same or left < self.ttl / 6:
            return False
        held["due"] = False
        self.info.update(owner=held["value"], expires=iso(found["expires"]))
        now = time.monotonic()
        self.written = now - (self.ttl - left)   # as if written then: the renewals keep their schedule
        self.renewed = now                       # a previous call's keeping PATCH may still run (409 meanwhile)
        self._watch()
        self.renew_at = self.written + 2 * self.ttl / 3   # the first action renews it: no PATCH just before it
        return True

    @staticmethod
    def _found(tags: Dict[str, str]) -> Optional[Dict[str, Any]]:
        if TAG not in tags:
            return None
        return decode(tags[TAG]) or {"unreadable": True}

    def _wait_for_stopping(self, held) -> Optional[Dict[str, Any]]:
        """The scale set; while its lease belongs to a module of this host whose controller is gone (it stops at
        its next wait), read again every wait_sleep seconds, until its lease expires at the latest."""
        waited = False
        for _attempt in range(int(self.ttl / self.sleep) + 2):
            doc = held.pop("doc", None) or self._read(held)
            found = self._found(dict((doc or {}).get("tags") or {}))
            if doc is None or self.module.check_mode:
                return doc
            if judge(found, self.me, time.time(), self.params["force_lease"], pid_alive) == "stopping":
                waited = True
                time.sleep(max(0.0, min(self.sleep, found["expires"] - time.time())))
            elif waited and _provisioning(doc) == "updating":
                # the stopped module's last write (its lease released) still runs: Azure answers 409 to ours meanwhile
                time.sleep(self.sleep)
            else:
                return doc
        return self._read(held)

    # --- while the run goes on

    def guard(self, client, last=None) -> None:
        """Take the (deferred) lease with a run's first write, and keep that run's scale-set client in step
        with it. The client: ``.resource`` (the scale set last read or written, whose ``etag`` its writes send
        in If-Match), ``.update(body, wait=...)`` (a PATCH) and ``.start(action, ids)`` (an instance action such as
        manualupgrade: _scale_set_client.ScaleSetClient, whose ``upgrade`` goes through ``start``).

        The first PATCH carries the lease tag (one request, under the run's own If-Match); a first action is
        preceded by a tags-only PATCH. Every later PATCH carries the lease tag as renewed, and no renewal comes
        between a PATCH and the ETag it was read with.

        ``last(body, resource)``: whether a PATCH is the run's last write (the rollout's removal of its rollback
        point): the lease is released in it, one request fewer."""
        update, start = client.update, client.start

        def guarded_update(body, *args, **kwargs):
            held = self._held(client.resource)
            final = held is not None and not held["due"] and last is not None and last(body, client.resource)
            if held is not None and (held["due"] or isinstance(body.get("tags"), dict)):
                tags = body["tags"] if isinstance(body.get("tags"), dict) else client.resource.get("tags") or {}
                body = dict(body, tags=dict(tags, **{TAG: self._new_value() if held["due"] else held["value"]}))
                if final:
                    body["tags"].pop(TAG)
            self.writing = True
            try:
                after = update(body, *args, **kwargs)
            except Exception as exc:  # pylint: disable=broad-except
                if held is not None and held["due"] and _status(exc) == 412:
                    self._refuse_if_held(held)   # another run took the lease since our read: name it
                raise
            finally:
                self.writing = False
            if held is not None and final:
                held.update(value=None, etag=(after or {}).get("etag"))
                self.info["released"] = True
            elif held is not None and after:
                self._wrote(held, after)
            return after

        def guarded_start(action, ids, *args, **kwargs):
            held = self._held(client.resource)
            if held is not None and held["due"]:
                # the lease first, one tags PATCH (then it is not due: no loop on it); a 409 meanwhile: the PATCH
                # that kept the lease for this run's next call (not waited for) still runs
                self._until_not_conflict(lambda: guarded_update({"tags": dict(client.resource.get("tags") or {})}))

            def started():
                answer = start(action, ids, *args, **kwargs)
                self.after_action()
                return answer

            # a 409 asked again only while our own lease renewal's update may still run: that one ends soon
            return self._until_not_conflict(started, ours=lambda: time.monotonic() - self.renewed <= CONFLICT_SECONDS)

        client.update, client.start = guarded_update, guarded_start
        self.clients.append(client)

    def _held(self, resource) -> Optional[Dict[str, Any]]:
        name = str((resource or {}).get("name") or "").lower()
        return next((held for held in self.sets if (held["value"] or held["due"]) and held["name"].lower() == name),
                    None)

    def _new_value(self) -> str:
        expires = time.time() + self.ttl
        value = encode(self.me, self.operation, expires)
        self.info.update(owner=value, expires=iso(expires))
        self.written = time.monotonic()   # the write about to carry it
        return value

    def _wrote(self, held, after: Dict[str, Any]) -> None:
        """Azure's answer to a write carrying our lease: its ETag and tags; the wait hook from the first one."""
        tags = dict(after.get("tags") or {})
        held.update(etag=after.get("etag"), tags=tags, value=tags.get(TAG) or held["value"], due=False)
        self._watch()

    def _watch(self) -> None:
        """The module's waits call tick from the run's first lease write on (its first renewal a third of the
        lease's time later)."""
        if self.tick not in _waiter.WAIT_HOOKS:
            _waiter.WAIT_HOOKS.append(self.tick)
            self.renew_at = time.monotonic() + self.ttl / 3

    def _unwatch(self) -> None:
        if self.tick in _waiter.WAIT_HOOKS:
            _waiter.WAIT_HOOKS.remove(self.tick)

    def _refuse_if_held(self, held) -> None:
        doc = self._read(held)
        found = self._found(dict((doc or {}).get("tags") or {}))
        if found and judge(found, self.me, time.time(), False, pid_alive) in ("held", "stopping"):
            self.module.fail_json(msg=held_message(self._what(held), found, time.time()), lease=dict(
                self.info, free=False, owner=doc["tags"][TAG], expires=iso(found["expires"])), **self._failed_result())

    def tick(self) -> None:
        """From every wait: stop if the controller is gone; the ended tags PATCHes' outcomes (settle); renew when a
        third of the lease's time has passed."""
        self.settle()
        if not self.controller.alive():
            self.stop("the controller that started it (pid %s on %s) is gone" % (self.me["controller"], self.me["host"]))
        if not self.writing and time.monotonic() >= self.renew_at:
            self._renew_or_stop()

    def after_action(self) -> None:
        """An action on instances was accepted: renew now once a third of the lease's time has passed (its PATCH
        then runs while the instances are busy, not when the next action is sent); the waits renew only once two
        thirds have passed (a long batch), so the lease never runs out."""
        if not self.writing and time.monotonic() - self.written >= self.ttl / 3:
            self._renew_or_stop()
        if time.monotonic() - self.written < self.ttl / 3:   # fresh (not a renewal that failed: tried again soon)
            self.renew_at = max(self.renew_at, self.written + 2 * self.ttl / 3)

    def _renew_or_stop(self) -> None:
        try:
            self.renew()
        except LeaseLost as lost:   # taken over: this run must not go on
            self.stop(str(lost))

    def renew(self) -> None:
        expires = time.time() + self.ttl
        value = encode(self.me, self.operation, expires)
        self.renew_at = time.monotonic() + RETRY_SECONDS
        for held in self.sets:
            if not held["value"]:
                continue
            after = self._rewrite(held, value, patient=False)
            if after is None:
                return   # a transient fault: tried again in RETRY_SECONDS, the lease still runs
            held.update(etag=after.get("etag"), tags=after.get("tags"), value=value)
            for client in self.clients:
                if client.resource and client.resource.get("name", "").lower() == held["name"].lower():
                    client.resource["etag"] = after.get("etag")
                    client.resource["tags"] = dict(after.get("tags") or {})
        self.info.update(owner=value, expires=iso(expires))
        self.renewed = self.written = time.monotonic()
        self.renew_at = time.monotonic() + self.ttl / 3

    def _rewrite(self, held, value: Optional[str], patient: bool = True) -> Optional[Dict[str, Any]]:
        """Set (``value``) or remove (None) our lease tag, conditioned on the ETag last seen; on 412 read again
        and go on only while the lease is still ours (LeaseLost otherwise). None after any other Azure error
        (a renewal is tried again soon, a release leaves the lease to expire)."""
        tags, etag = dict(held["tags"] or {}), held["etag"]
        for _attempt in range(3):
            if etag is None:   # never a write without If-Match: read first
                try:   # someone else wrote (an autoscale capacity change, or a run that took the lease over)
                    doc = self.compute.virtual_machine_scale_sets.get(held["resource_group"], held["name"]).as_dict()
                except Exception as exc:  # pylint: disable=broad-except
                    if not is_handled(exc):
                        raise
                    return None
                tags, etag = dict(doc.get("tags") or {}), doc.get("etag")
                if (self._found(tags) or {}).get("run") != self.me["run"]:
                    raise LeaseLost("its lease on scale set %s/%s was taken over (%s: %s)" % (
                        held["resource_group"], held["name"], TAG, tags.get(TAG, "removed")))
            if value is None:
                tags.pop(TAG, None)
            else:
                tags[TAG] = value
            try:
                return self._write(held, tags, etag, patient)
            except Exception as exc:  # pylint: disable=broad-except
                if not is_handled(exc):
                    raise
                if _status(exc) != 412:
                    return None
            etag = None
        return None

    # --- the end

    def release(self) -> None:
        """Remove our lease tag from every set (once; a failure leaves it to expire)."""
        self._unwatch()
        for held in self.sets:
            if held["value"]:
                try:
                    self._rewrite(held, None)
                except LeaseLost:
                    pass
                held["value"] = None
        self.info["released"] = True

    def on_exit(self, result: Dict[str, Any]) -> None:
        if result.get("status") in self.keep and not result.get("failed"):
            self.keep_for_next_call()
        else:
            self.release()
        result["lease"] = self.info

    def keep_for_next_call(self) -> None:
        """keep_lease: leave the lease to this run's next call (pid KEPT_PID, a fresh expiry); a set whose
        rewrite fails keeps the lease it has, which expires. A lease already in its kept form (a run with lease_run
        writes it so) with a quarter of its time or more to run is left as it is: no write."""
        self._unwatch()
        unchanged = [decode(held["value"]) for held in self.sets if held["value"]]
        if unchanged and all(lease and lease["pid"] == KEPT_PID and lease["run"] == self.me["run"]
                             and lease["expires"] - time.time() >= self.ttl / 4 for lease in unchanged):
            # the next call adopts it as it is (it needs a sixth of its time left: the gap is covered)
            self.info.update(kept=True)
            return
        expires = time.time() + self.ttl
        value = encode(dict(self.me, pid=KEPT_PID), self.operation, expires)
        kept = False
        for held in self.sets:
            if held["value"]:
                try:
                    kept = self._rewrite(held, value) is not None or kept
                except LeaseLost:
                    continue
        if kept:
            self.info.update(owner=value, expires=iso(expires), kept=True)

    def lease_creates(self, client) -> None:
        """A scale set this run creates (``client.create(body)``, a PUT) carries the lease in its tags: no
        extra write, released (or kept) with the others."""
        create = client.create

        def leased_create(body, *args, **kwargs):
            held = next((held for held in self.sets if held["name"].lower() == client.name.lower()), None)
            if held is None or self.module.check_mode or self.probe:
                return create(body, *args, **kwargs)
            value = self._new_value()
            body = dict(body, tags=dict(body.get("tags") or {}, **{TAG: value}))
            poller = create(body, *args, **kwargs)
            # the ETag comes with the create's end: the release reads it first (and checks the lease is ours)
            held.update(value=value, tags=dict(body["tags"]), etag=None, due=False)
            self._watch()
            return poller

        client.create = leased_create

    def stop(self, reason: str) -> None:
        """The run must not go on (its controller is gone, or its lease was taken over): release and fail as
        interrupted, with the result so far (the rollback point is left where it is, for a re-run)."""
        self.release()
        result = dict(self._failed_result(), status="interrupted")
        self.module.fail_json(msg="%s of %s interrupted: %s. Nothing more was written (a rollout's rollback point "
                              "stays) and the lease is released. Run the same task again to resume." % (
                                  self.operation.capitalize().replace("_", " "), self._scale_sets(), reason),
                              lease=self.info, **result)

    def _scale_sets(self) -> str:
        return ", ".join("scale set %s/%s" % (held["resource_group"], held["name"]) for held in self.sets)


def _provisioning(doc: Dict[str, Any]) -> str:
    """The scale set's provisioning state, from the SDK's dict (flattened) or a REST document."""
    doc = doc or {}
    return str(doc.get("provisioning_state") or (doc.get("properties") or {}).get("provisioningState") or "").lower()


def take(module, compute, operation: str, sets: List[Tuple[str, str]], result: Optional[Dict[str, Any]] = None,
         defer: bool = False, docs: Optional[List[Dict[str, Any]]] = None, probe: bool = False,
         keep_statuses: Tuple[str, ...] = ("in_progress",), unwaited: bool = False) -> Lease:
    """Take this run's lease on ``sets`` ([(resource group, name)]) for ``operation`` (rollout, blue_green,
    rolling_upgrade), or fail the module before any write when another run holds it. ``result``: the dict the
    module returns (it gets the ``lease`` key; a failure carries its keys). ``defer``: only check now, and
    write the lease with the run's first write (Lease.guard), so that a run that fails its checks writes
    nothing. ``docs``: the sets as the module read them (REST dicts), to save a read. ``probe``: refuse when
    another run holds the lease, write none (a cancel of Azure's rolling upgrade: a PATCH of a scale set in
    Rolling mode waits behind the upgrade it is meant to stop). ``keep_statuses``: with ``keep_lease``, the
    statuses that leave the run's next call to come (the lease is kept for it). ``unwaited``: the tags PATCH not
    waited for at all, for a run that waits for each set to settle before its own first write or action on it
    (blue/green: its first step, green's creation, need not wait for blue's PATCH); its outcome is read as it ends
    (settle), and the run's first action after it asks again on 409 (unconfirmed)."""
    return Lease(module, compute, operation, sets, result if result is not None else {}, defer, docs, probe,
                 keep_statuses, unwaited).take()


def removes_tag(name: str):
    """For Lease.guard(last=...): a PATCH that removes the tag ``name`` the scale set carries."""
    return lambda body, resource: isinstance(body.get("tags"), dict) and name not in body["tags"] \
        and name in ((resource or {}).get("tags") or {})


def _status(exc: Exception) -> Optional[int]:
    """The HTTP status of an SDK error, or of the step failure wrapping one (_errors.AzureFailure)."""
    return getattr(exc, "status_code", None) or (getattr(exc, "details", None) or {}).get("status")
