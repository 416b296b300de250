# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scale set simulated in memory, standing in for _scale_set_client.ScaleSetClient: the rollout (summarised
instances) and the blue/green swap (REST instances, backend pools, create and delete) run against it."""

from __future__ import annotations

import copy

from ansible_collections.fleetops.vmss.plugins.module_utils._errors import arm_failure
from ansible_collections.fleetops.vmss.plugins.module_utils._scale_set_client import holds
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

IMAGE = {"publisher": "Canonical", "offer": "ubuntu", "sku": "server"}
SUB = "/subscriptions/s/resourceGroups/rg/providers"
POOL = SUB + "/Microsoft.Network/loadBalancers/lb/backendAddressPools/web"


class Counter:
    """The requests counter the clients share (RequestCounter's ``total`` and ``writes``)."""

    def __init__(self):
        self.total = self.writes = 0

    def count(self, write=False):
        self.total += 1
        self.writes += int(write)


class LoadBalancer:
    """Backend pools: an instance is a member of the pools its set's model named when it was created or
    upgraded, as Azure applies a model's pools to an instance only through that instance's own update."""

    def __init__(self):
        self.sets = []

    def members(self, pool):
        return ["%s/ipConfigurations/ipc" % vm_nic(fake, instance_id) for fake in self.sets if fake.resource
                for instance_id, vm in fake.vms.items() if pool.lower() in vm.get("pools", ())]


def vm_nic(fake, instance_id):
    return "%s/Microsoft.Compute/virtualMachineScaleSets/%s/virtualMachines/%s/networkInterfaces/nic" % (
        SUB, fake.name, instance_id)


class Operation:
    """An upgrade's poller: running for ``pending`` done() checks, then ended (failed with ``error``)."""

    def __init__(self, ids, error=None, pending=0):
        self.ids, self.error, self.pending = list(ids), error, pending

    def done(self):
        if self.pending:
            self.pending -= 1
            return False
        return True


class FakeScaleSet:
    """One scale set, its instances, their health by image version.

    ``latest``: how instances report latestModelApplied - "generation" as Azure does (every model change makes
    every instance not latest; a revert does not make the untouched ones latest again), or "content" (the
    instance's image is the model's). ``exists=False``: a set not created yet (blue/green's green).
    ``pools``: the backend pools its model names; ``lb`` the LoadBalancer that lists members."""

    def __init__(self, count=5, version="1.0.0", bad=(), tags=None, latest="generation", name="api", exists=True,
                 pools=(), lb=None, counter=None):
        self.name, self.resource_group = name, "rg"
        self.what = "scale set rg/%s" % name
        self.deadline = Deadline(60)
        self.counter = counter or Counter()
        self.lb = lb or LoadBalancer()
        self.lb.sets.append(self)
        self.resource = None
        self.vms = {}
        if exists:
            self.resource = self.model(count, dict(IMAGE, version=version), tags, pools)
            self.vms = {str(i): {"version": version, "generation": 0, "pools": self.model_pools()}
                        for i in range(count)}
        self.latest, self.generation = latest, 0
        self.bad = set(bad)
        self.health = {}              # instance id: health state, over the health by version
        self.calls = []
        self.upgrade_errors = []      # raised by the next upgrades, in order
        self.update_errors = []
        self.operation_errors = []    # raised by the next operations waited for (create, actions)
        self.upgrade_outcomes = []    # the next upgrade operations' errors (None: it succeeds), once they end
        self.pending_polls = 0        # how many done() checks an upgrade operation answers "still running"
        self.updating_reads = 0       # how many reads after a model PATCH still say Updating (as Azure's GET does)
        self.demoted = []
        self.updating = 0
        self.looks_due = []

    @property
    def id(self):
        return "%s/Microsoft.Compute/virtualMachineScaleSets/%s" % (SUB, self.name)

    def model(self, count, image, tags, pools):
        ipc = {"name": "ipc", "properties": {"primary": True, "loadBalancerBackendAddressPools": [
            {"id": pool} for pool in pools]}}
        return {
            "id": self.id, "name": self.name, "location": "westeurope", "etag": "1", "tags": dict(tags or {}),
            "sku": {"name": "Standard_D2s_v3", "capacity": count},
            "properties": {"orchestrationMode": "Uniform", "upgradePolicy": {"mode": "Manual"},
                           "provisioningState": "Succeeded",
                           "virtualMachineProfile": {
                               "storageProfile": {"imageReference": image},
                               "networkProfile": {"networkInterfaceConfigurations": [
                                   {"name": "nic", "properties": {"primary": True, "ipConfigurations": [ipc]}}]},
                               "extensionProfile": {"extensions": [{"name": "health", "properties": {
                                   "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                                   "settings": {"port": 80}}}]}}}}

    def profile(self):
        return self.resource["properties"]["virtualMachineProfile"]

    def model_version(self):
        return self.profile()["storageProfile"]["imageReference"]["version"]

    def model_pools(self):
        network = self.profile()["networkProfile"]
        return [ref["id"].lower() for nic in network["networkInterfaceConfigurations"]
                for ipc in nic["properties"]["ipConfigurations"]
                for ref in ipc["properties"].get("loadBalancerBackendAddressPools") or []]

    def health_of(self, instance_id, vm):
        return self.health.get(instance_id) or ("Unhealthy" if vm["version"] in self.bad else "Healthy")

    # --- reads ------------------------------------------------------------------------------------

    def read(self, expand=None):  # pylint: disable=unused-argument
        self.calls.append("read")
        self.counter.count()
        if self.resource is not None and self.state() == "Updating":
            self.updating -= 1
            if self.updating < 0:
                self.resource["properties"]["provisioningState"] = "Succeeded"
        return self.resource

    def state(self):
        return self.resource["properties"].get("provisioningState")

    def wait_applied(self, action="update"):  # pylint: disable=unused-argument
        """ScaleSetClient.wait_applied's looks, without its sleeps: the PATCH's answer, then reads."""
        while self.state() == "Updating":
            self.read()
        self.calls.append(("applied", self.state()))
        return self.resource

    def instances(self, until=None):
        """As ScaleSetClient.instances: ``until(instance)`` stops the list at the first instance it holds for (None)."""
        self.calls.append("list")
        self.counter.count()
        out = []
        for instance_id, vm in self.vms.items():
            latest = vm["generation"] == self.generation if self.latest == "generation" \
                else vm["version"] == self.model_version()
            out.append({"instance_id": instance_id, "zone": None, "update_domain": int(instance_id) % 5,
                        "fault_domain": 0, "latest_model_applied": latest,
                        "image": vm.get("image") or dict(IMAGE, version=vm["version"]), "vm_size": "standard_d2s_v3",
                        "health_state": self.health_of(instance_id, vm), "protection": None,
                        "provisioning_state": "Succeeded"})
            if until is not None and until(out[-1]):
                return None
        return out

    def vms_rest(self):
        """The instances as Azure lists them with their instance view (what _instances reads)."""
        return [self.vm_rest(instance_id, vm) for instance_id, vm in self.vms.items()]

    def vm_rest(self, instance_id, vm):
        health = {"status": {"code": "HealthState/" + self.health_of(instance_id, vm).lower()}}
        return {"instanceId": instance_id, "name": "%s_%s" % (self.name, instance_id), "properties": {
            "provisioningState": "Succeeded", "latestModelApplied": vm["generation"] == self.generation,
            "storageProfile": {"imageReference": dict(IMAGE, version=vm["version"])},
            "networkProfile": {"networkInterfaces": [{"id": vm_nic(self, instance_id)}]},
            "instanceView": {"statuses": [{"code": "PowerState/running"}], "vmHealth": health}}}

    def list_vms(self, action="list the instances of"):  # pylint: disable=unused-argument
        self.calls.append("list")
        self.counter.count()
        return self.vms_rest()

    def pool_members(self, pool_id):
        self.calls.append(("pool", pool_id))
        self.counter.count()
        return self.lb.members(pool_id)

    # --- writes -----------------------------------------------------------------------------------

    def update(self, body, wait=True, action="update"):  # pylint: disable=unused-argument
        self.calls.append(("update", copy.deepcopy(body)))
        self.counter.count(write=True)
        if self.update_errors:
            raise self.update_errors.pop(0)
        reference = (((body.get("properties") or {}).get("virtualMachineProfile") or {}).get("storageProfile")
                     or {}).get("imageReference")
        if reference:
            self.profile()["storageProfile"]["imageReference"] = {
                key: value for key, value in reference.items() if value is not None}
            self.generation += 1
        network = (((body.get("properties") or {}).get("virtualMachineProfile") or {}).get("networkProfile"))
        if network:   # the backend pools of the model (blue/green's swap); instances take them when upgraded
            self.profile()["networkProfile"] = copy.deepcopy(network)
            self.generation += 1
        if "tags" in body:
            self.resource["tags"] = dict(body["tags"])
        self.resource["etag"] = str(int(self.resource["etag"]) + 1)
        if reference and self.updating_reads:   # the model change runs on: the PATCH answers Updating
            self.resource["properties"]["provisioningState"] = "Updating"
            self.updating = self.updating_reads
            self.calls.append(("patched", wait))
        return self.resource

    def create(self, body):
        """Creates the set at once; its operation (an Operation, as an upgrade's) ends with the next of
        ``operation_errors`` (None: it succeeds) after ``pending_polls`` done() checks."""
        self.calls.append(("create", copy.deepcopy(body)))
        self.counter.count(write=True)
        self.resource = dict(copy.deepcopy(body), id=self.id, name=self.name, etag="1")
        self.resource["properties"]["provisioningState"] = "Succeeded"
        self.generation = 0
        self.vms = {str(i): {"version": self.model_version(), "generation": 0, "pools": self.model_pools()}
                    for i in range(int(body["sku"]["capacity"]))}
        return Operation([], self.operation_errors.pop(0) if self.operation_errors else None, self.pending_polls)

    def outcome(self, poller, what):  # pylint: disable=unused-argument
        if isinstance(poller, Operation):   # read to its end: done from now on
            self.calls.append(("outcome", list(poller.ids)))
            poller.pending = 0
            if poller.error is not None:
                raise poller.error
            return None
        if self.operation_errors:
            raise self.operation_errors.pop(0)
        return None

    def delete(self):
        self.calls.append(("delete",))
        self.counter.count(write=True)
        self.resource, self.vms = None, {}

    def start(self, action, ids):
        """An upgrade goes through ``upgrade`` (which tests replace) and returns an Operation; any other action
        is applied at once."""
        if action == "upgrade":
            self.upgrade(ids)
            outcome = self.upgrade_outcomes.pop(0) if self.upgrade_outcomes else None
            return [(list(ids), Operation(ids, outcome, self.pending_polls))]
        self.calls.append((action, list(ids)))
        self.counter.count(write=True)
        return [(list(ids), "poller of %s" % action)]

    def apply(self, ids):
        for instance_id in ids:
            self.vms[instance_id].update(
                version=self.model_version(), generation=self.generation, pools=self.model_pools(),
                image=copy.deepcopy(self.profile()["storageProfile"]["imageReference"]))

    def upgrade(self, ids):
        self.calls.append(("upgrade", list(ids)))
        self.counter.count(write=True)
        if self.upgrade_errors:
            raise self.upgrade_errors.pop(0)
        if self.state() == "Updating":   # Azure refuses an action on the instances while the model change runs
            busy = {"code": "Conflict", "message": "busy", "status": 409, "request_id": None}
            raise arm_failure("upgrade instances of", self.what, busy, transient=True)
        self.apply(ids)

    def demote(self, version_id):
        self.calls.append(("demote", version_id))
        self.demoted.append(version_id)
        return True

    # --- waits: one look (the real waiter is tested in test_scale_set_client) -------------------------

    def watch(self, predicate, timeout=None, observe=None, sleep=None, what=None,  # pylint: disable=unused-argument
              expected_at=None):
        """Timed out unless the predicate holds at the first look. ``looks_due``: each watch's expected_at."""
        self.looks_due.append(expected_at)
        observed = (observe or self.instances)()
        verdict = predicate(observed)
        return verdict, observed, not holds(verdict)

    def wait_for(self, predicate, observe, action, what, timeout=None, sleep=None):  # pylint: disable=unused-argument
        verdict, observed, timed_out = self.watch(predicate, timeout, observe)
        if timed_out:
            raise arm_failure(action, self.what, {"code": "Timeout", "message": "%s not reached" % what,
                                                  "status": None, "request_id": None})
        return observed

    def writes(self):
        return [call for call in self.calls if isinstance(call, tuple) and call[0] not in ("pool", "outcome", "applied", "patched")]
