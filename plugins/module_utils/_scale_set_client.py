# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The requests the long-running workflows (rollout, blue/green, rolling upgrade) send for one scale set, and
the waits on them: one client, one waiter within the run's deadline, the wait predicates in one place.

Every write is conditioned (create: ``If-None-Match: *``; update: ``If-Match`` with the ETag last read); the
instance list is paged through the SDK client's pipeline and notes Compute's read budget, which the watch
honours (_rollout.poll_interval). Azure errors are raised as AzureFailure (_errors.arm_errors).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _instances as instances
from . import _rest as rest
from . import _rollout as planner
from . import _rolling_upgrade as rolling
from ._errors import arm_errors, arm_failure, ignore_not_found
from ._gallery import split_version_id
from ._ids import parse_id, scale_set_id
from ._waiter import Deadline, WaitTimeout, poller_result, wait_until

BUSY = ("creating", "updating", "deleting")


class ScaleSetClient:
    """One scale set's requests. ``network``: a callable returning the network SDK client (pool members),
    called on first use."""

    def __init__(self, compute, resource_group: str, name: str, deadline: Deadline, sleep: float = 10.0,
                 network: Optional[Callable[[], Any]] = None):
        self.compute = compute
        self.resource_group, self.name = resource_group, name
        self.deadline = deadline
        self.sleep = sleep
        self.what = "scale set %s/%s" % (resource_group, name)
        self.resource: Optional[Dict[str, Any]] = None   # the scale set as last read or written
        self.pages, self.remaining = 0, None               # of the last list: requests, read budget left
        self._network, self._network_client = network, None

    @property
    def id(self) -> str:
        return scale_set_id(self.compute._config.subscription_id, self.resource_group, self.name)

    # --- reads ------------------------------------------------------------------------------------

    def read(self, expand: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The scale set (REST dict), None when Azure answers 404."""
        with arm_errors("get", self.what):
            found = ignore_not_found(lambda: self.compute.virtual_machine_scale_sets.get(
                self.resource_group, self.name, **({"expand": expand} if expand else {})))
        self.resource = found.as_dict() if found is not None else None
        return self.resource

    def list_vms(self, action: str = "list the instances of") -> List[Dict[str, Any]]:
        """One paged list of the instances with their instance view (REST dicts); notes how many requests it
        took and the read budget Compute says is left (``pages``, ``remaining``). ``action``: what a failure
        says was being done."""
        return list(self._vms(action))

    def _vms(self, action: str):
        """list_vms, one instance at a time: the pages after the current one are read only when asked for."""
        self.pages, self.remaining = 0, None
        if self.resource is None:
            return
        with arm_errors(action, self.what):
            if not instances.is_flexible(self.resource):
                yield from self._pages()
            else:
                yield from instances.iter_instances(self.compute, self.resource_group, self.name, self.resource,
                                                    instance_view=True, raw_response_hook=self._note_budget)

    def instances(self, until: Optional[Callable[[Dict[str, Any]], bool]] = None) -> Optional[List[Dict[str, Any]]]:
        """The instances summarised (_instances.summary), from one paged list. ``until(instance)``: the list stops
        at the first instance it holds for, and None is returned (a look whose answer that instance gives: its
        later pages are not read, neither the time nor Compute's read budget spent)."""
        out = []
        vms = self._vms("list the instances of")
        for vm in vms:
            item = instances.summary(vm, self.resource)
            if until is not None and until(item):
                vms.close()
                return None
            out.append(item)
        return out

    def _pages(self):
        """The Uniform list as REST JSON, page by page, through the SDK client's pipeline (auth, retries
        honouring Retry-After, the request counter) without building SDK models: a 1000-instance list costs
        about a third of the CPU."""
        # pylint: disable=import-outside-toplevel
        from azure.core.rest import HttpRequest
        from azure.mgmt.compute.operations._operations import \
            build_virtual_machine_scale_set_vms_list_request as build

        request = build(self.resource_group, self.name, self.compute._config.subscription_id, expand="instanceView")
        while request is not None:
            response = rest.send(self.compute, request)
            rest.raise_for_status(response)  # what the SDK raises, with the ARM error code
            self._note_remaining(response.headers)
            body = response.json()
            yield from body.get("value") or []
            request = HttpRequest("GET", body["nextLink"]) if body.get("nextLink") else None

    def _note_budget(self, response) -> None:
        self._note_remaining(response.http_response.headers)

    def _note_remaining(self, headers) -> None:
        """One more page read; the lowest read budget Compute reported (its rate-limit header)."""
        self.pages += 1
        left = planner.remaining_reads(headers.get(planner.RATE_LIMIT_HEADER))
        if left is not None:
            self.remaining = left if self.remaining is None else min(self.remaining, left)

    def pool_members(self, pool_id: str) -> List[str]:
        """The ip configuration ids a load balancer's backend pool lists (read-only ``backendIPConfigurations``)."""
        if self._network_client is None:
            self._network_client = self._network()
        parts = parse_id(pool_id)
        with arm_errors("get", "backend pool %s" % pool_id):
            found = self._network_client.load_balancer_backend_address_pools.get(
                parts["resource_group"], parts["names"][0], parts["names"][-1])
        return [item.id for item in found.backend_ip_configurations or [] if item.id]

    def latest_rolling_upgrade(self) -> Optional[Dict[str, Any]]:
        with arm_errors("get the rolling upgrade of", self.what):
            return rolling.read_latest(self.compute, self.resource_group, self.name)

    # --- writes -----------------------------------------------------------------------------------

    def outcome(self, poller, what: str) -> Any:
        """The operation's result within the run's deadline (the SDK's error when it failed)."""
        return poller_result(poller, self.deadline, what)

    def create(self, body: Dict[str, Any]):
        """PUT with ``If-None-Match: *`` (never over a set that appeared meanwhile); returns the poller."""
        from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

        with arm_errors("create", self.what):
            return self.compute.virtual_machine_scale_sets.begin_create_or_update(
                self.resource_group, self.name, body, match_condition=MatchConditions.IfMissing)

    def update(self, body: Dict[str, Any], wait: bool = True, action: str = "update") -> Dict[str, Any]:
        """PATCH conditioned on the ETag last seen (If-Match); keeps the scale set Azure returns."""
        from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

        with arm_errors(action, self.what):
            poller = self.compute.virtual_machine_scale_sets.begin_update(
                self.resource_group, self.name, body, etag=self.resource.get("etag"),
                match_condition=MatchConditions.IfNotModified, **({} if wait else {"polling": False}))
            after = self.outcome(poller, "%s of %s" % (action, self.what))
        if after is not None:
            self.resource = after.as_dict()
        return self.resource

    def delete(self) -> None:
        with arm_errors("delete", self.what):
            self.outcome(self.compute.virtual_machine_scale_sets.begin_delete(self.resource_group, self.name),
                         "deletion of %s" % self.what)

    def start(self, action: str, instance_ids: List[str]) -> List[Tuple[List[str], Any]]:
        """Start ``action`` on the instances named (one call; per VM where Flexible needs it): [(ids, poller)]."""
        with arm_errors(action, "instances of %s" % self.what):
            return instances.begin_action(self.compute, self.resource_group, self.name, self.resource, action,
                                          list(instance_ids))

    def upgrade(self, instance_ids: List[str]) -> None:
        """One manual upgrade (``manualupgrade``) of every instance named, waited for within the deadline."""
        with arm_errors("upgrade instances of", self.what):
            for _ids, poller in self.start("upgrade", instance_ids):
                self.outcome(poller, "upgrade of instances of %s" % self.what)

    def demote(self, version_id: str) -> bool:
        """Set excludeFromLatest on a gallery image version (a PATCH of that field only); False if it already was."""
        parts = split_version_id(version_id) or {}
        names = (parts.get("resource_group"), parts.get("gallery"), parts.get("image"), parts.get("version"))
        what = "gallery image version %s/%s/%s/%s" % names
        operations = self.compute.gallery_image_versions
        with arm_errors("get", what):
            current = operations.get(*names).as_dict()
        if ((current.get("properties") or {}).get("publishingProfile") or {}).get("excludeFromLatest"):
            return False
        body = {"properties": {"publishingProfile": {"excludeFromLatest": True}, "storageProfile": {}}}
        with arm_errors("update", what):
            self.outcome(operations.begin_update(*names, body), "update of %s" % what)
        return True

    # --- the one watch ------------------------------------------------------------------------------

    def watch(self, predicate: Callable[[Any], Any], timeout: Optional[float] = None,
              observe: Optional[Callable[[], Any]] = None, sleep: Optional[float] = None,
              what: str = "condition", expected_at: Union[None, float, Sequence[float]] = None
              ) -> Tuple[Any, Any, bool]:
        """``observe()`` (default: the instances, summarised) every ``sleep`` seconds (wait_sleep; longer while
        Compute's read budget runs low, _rollout.poll_interval) until ``predicate(observed)`` holds (see
        ``holds``), at most ``timeout`` seconds and never past the run's deadline. ``expected_at``: the moment
        (time.monotonic) it is expected to hold at, or several it may hold at, earliest first: the looks before
        each thin out and one lands on it (_rollout.next_look); wait_sleep after the last.

        Returns (the last verdict, the last observation, whether the time ran out)."""
        sleep = self.sleep if sleep is None else sleep
        observe = observe or self.instances
        # "pace": the read budget's interval (_rollout.poll_interval), kept apart from the schedule's, which would
        # otherwise pass for a slow-down the budget asked for and keep the looks off the expected moments
        last: Dict[str, Any] = {"interval": sleep, "pace": sleep, "verdict": None, "observed": None,
                                "remaining": None}
        budget = self.deadline.remaining() if timeout is None else min(timeout, self.deadline.remaining())
        end = time.monotonic() + budget

        targets = [expected_at] if isinstance(expected_at, (int, float)) else list(expected_at or ())

        def check():
            started = time.monotonic()
            observed = observe()
            pace = interval = planner.poll_interval(last["pace"], sleep, self.remaining, self.pages,
                                                    previous=last["remaining"])
            while targets and targets[0] <= started:   # looked at (or after) it
                targets.pop(0)
            if targets and pace <= sleep:   # the read budget comfortable: the schedule decides
                left = targets[0] - time.monotonic()
                interval = planner.next_look(left, sleep) if left > 0 else 0.0
            last.update(verdict=predicate(observed), observed=observed, remaining=self.remaining, interval=interval,
                        pace=pace)
            return holds(last["verdict"])

        def pause(_seconds):
            time.sleep(max(0.0, min(last["interval"], end - time.monotonic())))

        try:
            wait_until(check, timeout=budget, sleep=sleep, sleeper=pause, what=what)
        except WaitTimeout:
            return last["verdict"], last["observed"], True
        return last["verdict"], last["observed"], False

    def wait_applied(self, action: str = "update") -> Dict[str, Any]:
        """After a PATCH not waited for (update(wait=False)): the scale set read (GET, Compute's cheap
        GetVMScaleSet budget, never the instance list) until its provisioningState leaves Updating. Azure refuses
        an action on its instances (409) until then, and that is seen well before the PATCH's poller would say
        it (its first Retry-After is 35-61 s). Read every quarter of wait_sleep: the first batch waits on this,
        and a GET is cheap (GetVMScaleSet: 400 per 3 minutes, not the instance list's 180). A Failed state
        raises ProvisioningFailed; the run's deadline passing, Timeout. Returns the scale set."""
        pending = [self.resource]   # the PATCH's own answer is the first look
        scale_set = self.wait_for(lambda doc: provisioning_state(doc) not in BUSY,
                                  lambda: pending.pop() if pending else self.read(), action,
                                  "the %s of the scale set applied (provisioningState not Updating)" % action,
                                  sleep=self.sleep / 4)
        if provisioning_state(scale_set) == "failed":
            raise arm_failure(action, self.what, {
                "code": "ProvisioningFailed", "message": "the scale set's provisioningState is Failed after the %s"
                % action, "status": None, "request_id": None})
        return scale_set

    def wait_for(self, predicate: Callable[[Any], Any], observe: Callable[[], Any], action: str, what: str,
                 timeout: Optional[float] = None, sleep: Optional[float] = None) -> Any:
        """watch(); the time running out is ``Failed to <action> <scale set>: Timeout: <what> not reached within
        <seconds> seconds``. Returns the last observation."""
        budget = self.deadline.remaining() if timeout is None else min(timeout, self.deadline.remaining())
        _verdict, observed, timed_out = self.watch(predicate, budget, observe, sleep=sleep, what=what)
        if timed_out:
            raise arm_failure(action, self.what, {"code": "Timeout", "message": "%s not reached within %s seconds"
                                                  % (what, budget), "status": None, "request_id": None})
        return observed


# ---------------------------------------------------------------------------------------------
# wait predicates: what each wait waits for, one small function each

def holds(verdict: Any) -> bool:
    """A gate (a dict with ``state``) holds once it is no longer "waiting"; any other verdict when truthy."""
    if isinstance(verdict, dict) and "state" in verdict:
        return verdict["state"] != "waiting"
    return bool(verdict)


def no_instance_busy(listed: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Summarised instances: no operation runs on any (an interrupted run's upgrade, a repair)."""
    return {"state": "waiting" if any(planner.is_busy(i) for i in listed) else "passed"}


def failures_only(gate: Callable[[Any], Dict[str, Any]]) -> Callable[[Any], Dict[str, Any]]:
    """A soak: ``gate`` holds only when it fails; it keeps watching while it passes or waits."""
    def check(listed):
        result = gate(listed)
        return result if result["state"] == "failed" else dict(result, state="waiting")
    return check


def provisioning_state(scale_set: Optional[Dict[str, Any]]) -> str:
    return str(((scale_set or {}).get("properties") or {}).get("provisioningState") or "").lower()


def set_settled(view: Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]) -> bool:
    """(scale set, its REST instances): it exists and neither it nor an instance has an operation running."""
    scale_set, vms = view
    return scale_set is not None and provisioning_state(scale_set) not in BUSY and not any(
        instances.busy(vm) for vm in vms)


def batch_on(ids: List[str], part: Optional[Dict[str, Any]]) -> Callable[[List[Dict[str, Any]]], bool]:
    """Summarised instances: every one of ``ids`` runs ``part`` (its own image and size, _rollout.on_model),
    its provisioning succeeded and no operation runs on it: what an upgrade of them has done, read from the
    instance list without waiting for the operation's polls (whose first Retry-After is 35-61 s on Azure)."""
    def check(listed):
        by_id = {str(i["instance_id"]): i for i in listed}
        found = [by_id.get(str(i)) for i in ids]
        return all(i is not None and upgraded_onto(i, part) for i in found)
    return check


def upgraded_onto(instance: Dict[str, Any], part: Optional[Dict[str, Any]]) -> bool:
    """One summarised instance runs ``part``, its provisioning succeeded and no operation runs on it."""
    return planner.on_model(instance, part) and not planner.is_busy(instance) \
        and str(instance.get("provisioning_state") or "").lower() == "succeeded"


def not_yet_on(ids: List[str], part: Optional[Dict[str, Any]]) -> Callable[[Dict[str, Any]], bool]:
    """One summarised instance: one of ``ids`` not yet upgraded onto ``part`` (batch_on cannot hold)."""
    wanted = {str(i) for i in ids}
    return lambda instance: str(instance["instance_id"]) in wanted and not upgraded_onto(instance, part)


def set_provisioned(capacity: Optional[int]) -> Callable[[Any], bool]:
    """(scale set, its REST instances): as many instances as ``capacity``, none being created or deleted."""
    return lambda view: view[0] is not None and instances.provisioned(view[1], capacity)


def set_gone(scale_set: Optional[Dict[str, Any]]) -> bool:
    return scale_set is None


def rolling_upgrade_ended(before: Optional[Dict[str, Any]], started: bool) -> Callable[[Any], bool]:
    """The latest rolling upgrade no longer rolls forward (and, after a start, is the new one)."""
    return lambda status: rolling.settled(status, before, started)
