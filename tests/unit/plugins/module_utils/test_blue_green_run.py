# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blue/green swap's run against two scale sets simulated in memory (the same fake as the rollout's; the
emulator covers the whole stories in tests/integration/test_blue_green.py): staging green, a gate breached,
a failed creation, a health timeout, the phase records."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from fake_scale_set import IMAGE, POOL, Counter, FakeScaleSet, LoadBalancer

from ansible_collections.fleetops.vmss.plugins.module_utils import _blue_green as bg
from ansible_collections.fleetops.vmss.plugins.module_utils._blue_green_run import Swap, StepFailed
from ansible_collections.fleetops.vmss.plugins.module_utils import _pending as pending
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_failure
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import WaitTimeout


def params(**overrides):
    out = dict(resource_group="rg", name="web", green_name=None, state="staged", image=dict(IMAGE, version="2.0.0"),
               capacity=None, blue_capacity=0, backend_pool_ids=None, soak=0, deallocate_blue=False, keep_green=False,
               move_autoscale=False, on_failure="rollback", max_unhealthy_instance_percent=20,
               max_unhealthy_upgraded_instance_percent=20, health_timeout=5, wait_timeout=60, wait_sleep=0.01,
               admin_password=None, protected_settings=None, custom_data=None)
    out.update(overrides)
    return out


def sets(count=2, **green):
    """Blue serving from the pool, green not created yet, one load balancer and one request counter."""
    counter, lb = Counter(), LoadBalancer()
    blue = FakeScaleSet(count=count, name="web", pools=[POOL], lb=lb, counter=counter)
    return blue, FakeScaleSet(name="web-green", exists=False, lb=lb, counter=counter, **green), counter


def swap_of(blue, green, counter, **overrides):
    swap = Swap(params(**overrides), blue, green, counter=counter)
    observed = swap.observe(first=True)
    return swap, swap.options(observed)


def test_staging_creates_green_out_of_the_pool_and_waits_for_its_health():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter)

    assert swap.pools == [POOL] and swap.counts["blue"] == {"0": 1, "1": 1}   # read from the load balancer
    status, halt, rollback = swap.execute(opts)

    assert (status, halt, rollback) == ("succeeded", None, None)
    [(_create, body)] = green.writes()
    assert body["sku"]["capacity"] == 2 and body["tags"][bg.TAG_BLUE] == "web"
    assert body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] == "2.0.0"
    assert bg.pools_in_model(body) == [] and green.lb.members(POOL) == blue.lb.members(POOL)   # traffic untouched
    assert blue.writes() == []
    [phase] = swap.phases
    assert phase["kind"] == "stage" and [(s["name"], s["outcome"]) for s in phase["steps"]] == [
        ("create_green", "done"), ("green_healthy", "passed")]
    assert phase["outcome"] == "healthy" and phase["health"] == {"web-green/0": "Healthy", "web-green/1": "Healthy"}
    assert phase["instance_ids"] == ["web-green/0", "web-green/1"]
    assert phase["arm_requests"]["writes"] == 1 and phase["arm_requests"]["total"] == phase["arm_requests"]["reads"] + 1
    assert phase["started_at"].endswith("Z") and phase["ended_at"] >= phase["started_at"]


def test_a_second_run_finds_green_staged_and_writes_nothing():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter)
    swap.execute(opts)
    writes = counter.writes

    again, opts = swap_of(blue, green, counter)
    assert again.execute(opts) == ("nothing_to_do", None, None)
    assert counter.writes == writes and again.phases == []   # a gate that held at once records no phase


@pytest.mark.parametrize("state, percent", [("Unhealthy", 100.0), ("Unknown", 100.0)])
def test_a_green_breaching_the_gate_halts_with_the_gate_code_and_is_removed(state, percent):
    blue, green, counter = sets(bad={"2.0.0"})
    green.health = {"0": state, "1": state}
    swap, opts = swap_of(blue, green, counter)

    status, halt, rollback = swap.execute(opts)

    assert halt["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded" and halt["phase"] == "stage"
    assert halt["reason"].startswith("scale set rg/web-green: 2 of 2 upgraded instances (100%) are unhealthy")
    assert status == "rolled_back" and rollback["outcome"] == "healthy"
    assert green.resource is None and green.writes()[-1] == ("delete",)       # the failed green removed
    assert blue.writes() == [] and rollback["health"] == {"0": "Healthy", "1": "Healthy"}
    stage = swap.phases[0]
    assert stage["outcome"] == "unhealthy" and stage["unhealthy_set_percent"] == percent
    assert [p["kind"] for p in swap.phases] == ["stage", "rollback"]


def test_keep_green_leaves_a_failed_green_for_inspection():
    blue, green, counter = sets()
    green.health = {"0": "Unhealthy", "1": "Unhealthy"}
    swap, opts = swap_of(blue, green, counter, keep_green=True)

    status, halt, rollback = swap.execute(opts)

    assert (status, rollback) == ("halted", None) and halt["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert green.resource is not None and ("delete",) not in green.writes()


def test_a_failed_creation_is_provisioning_failed_with_azure_s_code():
    blue, green, counter = sets()
    green.operation_errors = [HttpResponseError(message="Allocation failed in the region")]
    swap, opts = swap_of(blue, green, counter)

    status, halt, _rollback = swap.execute(opts)

    assert halt["code"] == "ProvisioningFailed"
    assert halt["reason"].startswith("creation of scale set rg/web-green failed: ")
    assert "Allocation failed in the region" in halt["reason"]
    assert status == "rolled_back" and green.resource is None    # cleaned up: the creation had started


def test_instances_not_healthy_within_health_timeout_is_a_health_timeout():
    blue, green, counter = sets()
    green.health = {"0": "Healthy", "1": "Initializing"}
    swap, opts = swap_of(blue, green, counter, health_timeout=7)

    _status, halt, _rollback = swap.execute(opts)

    assert halt["code"] == "HealthTimeout"
    assert halt["reason"] == "scale set rg/web-green: instances not Healthy within 7 seconds: 1"
    assert swap.phases[0]["outcome"] == "timeout"


def test_an_azure_error_is_raised_to_the_module_not_judged():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter)
    failure = AzureFailure("Failed to create scale set rg/web-green: Conflict: busy", transient=True)

    def create(body):
        raise failure

    green.create = create
    with pytest.raises(AzureFailure) as caught:
        swap.execute(opts)
    assert caught.value is failure and swap.phases[0]["steps"][0]["outcome"] is None


def test_the_result_has_the_rollout_report_shape_with_the_run_s_requests():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter)
    plan = bg.describe_plan("staged", swap.observe(), opts, blue.resource)
    status, halt, rollback = swap.execute(opts)

    result = swap.result(status, plan, halt, rollback)

    summary = result["summary"]
    assert result["status"] == "succeeded" and result["changed"] and result["model_changed"]
    assert summary["arm_requests"] == {"total": counter.total, "writes": 1, "reads": counter.total - 1}
    assert summary["batches_completed"] == 1 and summary["instances_total"] == 2
    assert summary["started_at"] <= summary["ended_at"] and summary["duration_seconds"] >= 0
    assert result["image_after"]["version"] == "2.0.0" and result["green"]["exists"]


def test_a_step_failed_carries_its_gate():
    failure = StepFailed("HealthTimeout", "slow", {"outcome": "timeout"})
    assert (failure.code, str(failure), failure.gate) == ("HealthTimeout", "slow", {"outcome": "timeout"})


def test_a_creation_outlasting_the_deadline_fails_the_module_not_the_step():
    blue, green, counter = sets()
    green.operation_errors = [WaitTimeout("creation of scale set rg/web-green not finished within 60 seconds")]
    swap, opts = swap_of(blue, green, counter)

    with pytest.raises(AzureFailure) as caught:
        swap.execute(opts)
    assert str(caught.value) == ("Failed to create scale set rg/web-green: Timeout: creation of scale set "
                                 "rg/web-green not finished within 60 seconds")
    assert caught.value.error["code"] == "Timeout" and not caught.value.transient


def test_a_failed_deallocation_fails_the_module_with_azure_s_code():
    blue, green, counter = sets()
    swap, _opts = swap_of(blue, green, counter)
    blue.operation_errors = [HttpResponseError(message="quota")]

    with pytest.raises(AzureFailure) as caught:
        swap.do_blue_deallocate({})
    assert str(caught.value).startswith("Failed to deallocate instances of scale set rg/web: ")
    assert ("deallocate", ["0", "1"]) in blue.writes()


class FakeAutoscale:
    """autoscale_settings of the monitor client: PUTs and DELETEs recorded as (what, name, enabled)."""

    def __init__(self):
        self.calls = []

    def create_or_update(self, group, name, body):  # pylint: disable=unused-argument
        self.calls.append(("put", name, body.enabled))

    def delete(self, group, name):  # pylint: disable=unused-argument
        self.calls.append(("delete", name, None))


def autoscale_setting(name, target, enabled, tags=None):
    return {"id": "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/autoscalesettings/" + name,
            "name": name, "location": "westeurope", "tags": tags or {},
            "properties": {"enabled": enabled, "targetResourceUri": target, "profiles": []}}


def test_the_serving_set_s_autoscale_is_never_left_off():
    blue, green, counter = sets()
    green.resource = dict(blue.resource)          # ids only matter here
    swap, _opts = swap_of(blue, green, counter)
    swap.monitor = type("Monitor", (), {"autoscale_settings": FakeAutoscale()})()
    calls = swap.monitor.autoscale_settings.calls
    # green already has a (disabled) copy of blue's setting: it is switched on before blue's goes off
    swap.autoscale = {"blue": [autoscale_setting("web-scale", blue.id, True)],
                      "green": [autoscale_setting("web-green-scale", green.id, False)], "missing": []}
    swap.do_autoscale_to_green({})
    assert calls == [("put", "web-green-scale", True), ("put", "web-scale", False)]
    # a rollback finds blue's setting for a copy without its source tag by the copy's name
    del calls[:]
    swap.autoscale = {"blue": [autoscale_setting("web-scale", blue.id, False)],
                      "green": [autoscale_setting("web-green-scale", green.id, True)], "missing": []}
    swap.do_autoscale_to_blue({"keep_green": False})
    assert calls == [("put", "web-scale", True), ("delete", "web-green-scale", None)]


# --- metric gates: green judged against blue while both serve (the judging itself: test_metrics.py) --------------

def metric_monitor(rates, reads=None, fail_from=None):
    """azure-mgmt-monitor whose ``metrics.list`` answers, per scale set read, ``rates[image version]`` failed
    requests per instance and grain (VMName series): three complete grains since the read and the one in progress
    (none until the ``fail_from``-th read when it is set, ``rates`` then). ``reads`` collects the resources read."""
    import datetime  # pylint: disable=import-outside-toplevel
    from types import SimpleNamespace as NS  # pylint: disable=import-outside-toplevel

    fakes = {}
    calls = reads if reads is not None else []

    def list_metrics(resource, **kwargs):  # pylint: disable=unused-argument
        calls.append(resource.rsplit("/", 1)[1])
        fake = fakes[resource]
        at = datetime.datetime.now(datetime.timezone.utc)
        quiet = fail_from is not None and len(calls) < fail_from
        series = [NS(metadatavalues=[NS(name=NS(value="VMName"), value="%s_%s" % (fake.name, i))],
                     data=[NS(time_stamp=at + datetime.timedelta(seconds=grain),
                              total=None if quiet else float(rates[vm["version"]])) for grain in range(4)])
                  for i, vm in fake.vms.items()]
        return NS(value=[NS(timeseries=series)])

    def make(*known):
        fakes.update({fake.id: fake for fake in known})
        return NS(metrics=NS(list=list_metrics))

    return make


def gated_swap(rates, soak=0, reads=None, fail_from=None, **gate):
    blue, green, counter = sets()
    monitor = metric_monitor(rates, reads, fail_from)
    gate = dict({"metric": "requests/failed", "aggregation": "total", "max_ratio_to_baseline": 2, "min_samples": 3},
                **gate)
    swap = Swap(params(state="live", blue_capacity=None, soak=soak, metric_gates=[gate]), blue, green,
                monitor=lambda: monitor(blue, green), counter=counter)
    return swap, swap.options(swap.observe(first=True)), blue, green


def test_green_failing_five_times_blue_s_requests_is_a_failed_swap_and_rolls_back():
    reads = []
    swap, opts, blue, green = gated_swap({"2.0.0": 25, "1.0.0": 5}, reads=reads)
    status, halt, rollback = swap.execute(opts)

    assert status == "rolled_back" and halt["code"] == "MetricGateFailed" and halt["phase"] == "swap", halt
    assert "25 is 5x the baseline 5 (the instances not upgraded)" in halt["reason"] and "web-green" in halt["reason"]
    swap_phase = [p for p in swap.phases if p["kind"] == "swap"][0]
    [verdict] = swap_phase["metrics"]
    assert (verdict["value"], verdict["baseline"], verdict["samples"], verdict["baseline_samples"]) == (25, 5, 6, 6)
    assert swap_phase["outcome"] == "unhealthy" and rollback["outcome"] == "healthy"
    assert sorted(reads) == ["web", "web-green"]     # one read: one metrics call per scale set of the gate
    assert blue.lb.members(POOL) and not [m for m in green.lb.members(POOL) if "web-green" in str(m)]


def test_green_as_good_as_blue_goes_live_and_the_verdict_is_recorded():
    swap, opts, _blue, _green = gated_swap({"2.0.0": 5, "1.0.0": 5})
    status, halt, _rollback = swap.execute(opts)
    assert (status, halt) == ("succeeded", None)
    [verdict] = [p for p in swap.phases if p.get("metrics")][0]["metrics"]
    assert verdict["state"] == "passed" and verdict["ratio"] == 1


def test_a_soak_judges_green_through_it_and_at_its_end():
    reads = []
    swap, opts, _blue, _green = gated_swap({"2.0.0": 25, "1.0.0": 5}, soak=1, reads=reads)
    status, halt, _rollback = swap.execute(opts)
    assert status == "rolled_back" and (halt["code"], halt["phase"]) == ("MetricGateFailed", "soak"), halt
    # not judged when green joined the pools (the soak's end judges over more grains): the soak's first check failed
    assert len(reads) == 2
    assert [p["kind"] for p in swap.phases if p.get("metrics")] == ["soak"]


def test_too_little_metric_data_is_a_metric_timeout_and_rolls_back():
    swap, opts, _blue, _green = gated_swap({"2.0.0": 5, "1.0.0": 5}, fail_from=99)
    status, halt, _rollback = swap.execute(opts)
    assert status == "rolled_back" and halt["code"] == "MetricTimeout", halt
    assert "not judged within health_timeout=5 seconds" in halt["reason"] and "too little data" in halt["reason"]


# --- Azure's clock: steps judged done from the lists, the operations' outcomes read without waiting on them ------

def noting_outcomes(fake, swap, other):
    """``fake.outcome`` noting, for each operation read to its end, its ids, the step running then and how many
    writes ``other`` had made by then."""
    read_at, outcome = [], fake.outcome

    def noted(poller, what):
        read_at.append((list(getattr(poller, "ids", [])), swap.current_step().get("name"), len(other.writes())))
        return outcome(poller, what)

    fake.outcome = noted
    return read_at


def test_an_upgrade_step_ends_when_the_list_shows_it_done_not_when_its_poller_does():
    blue, green, counter = sets()
    blue.pending_polls = green.pending_polls = 10 ** 6   # Azure's first Retry-After (35-61 s) not over: "InProgress"
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)
    read_at = noting_outcomes(green, swap, blue)

    status, halt, _rollback = swap.execute(opts)

    assert (status, halt) == ("succeeded", None)
    steps = [(s["name"], s["outcome"]) for p in swap.phases for s in p["steps"]]
    assert steps == [("create_green", "done"), ("green_healthy", "passed"), ("green_join_model", "done"),
                     ("green_upgrade", "done"), ("green_in_pool", "passed"), ("blue_leave_model", "done"),
                     ("blue_upgrade", "done"), ("blue_out_of_pool", "passed")]
    # green's creation and upgrade read to their end only once blue's writes were made: no step waited on them
    assert read_at == [([], "blue_out_of_pool", 2), (["0", "1"], "blue_out_of_pool", 2)]
    assert [w[0] for w in blue.writes()] == ["update", "upgrade"]
    # the pools' PATCHes judged applied from the set's provisioningState, not from their pollers
    assert ("applied", "Succeeded") in green.calls and ("applied", "Succeeded") in blue.calls


def test_an_upgrade_whose_operation_fails_after_the_list_showed_it_done_still_fails_with_upgrade_failed():
    blue, green, counter = sets()
    green.pending_polls = 10 ** 6
    green.upgrade_outcomes = [HttpResponseError(message="VMExtensionProvisioningError: the extension failed")]
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)

    status, halt, rollback = swap.execute(opts)

    assert halt["code"] == "UpgradeFailed", halt
    assert halt["reason"].startswith("upgrade of instances 0, 1 of scale set rg/web-green failed: ")
    assert "VMExtensionProvisioningError" in halt["reason"]
    steps = {s["name"]: s["outcome"] for p in swap.phases for s in p["steps"]}
    assert steps["green_upgrade"] == "failed" and [p["kind"] for p in swap.phases][-1] == "rollback"
    assert status == "rolled_back" and rollback["outcome"] == "healthy"
    assert green.resource is None and blue.lb.members(POOL)   # green removed, blue serving again


def test_an_upgrade_operation_that_ends_first_ends_the_wait_and_its_failure_fails_the_step_at_once():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)
    green.upgrade_outcomes = [HttpResponseError(message="OSProvisioningTimedOut")]
    green.apply = lambda ids: None   # the instances never reach the model: only the operation says it ended

    status, halt, _rollback = swap.execute(opts)

    assert halt["code"] == "UpgradeFailed" and "OSProvisioningTimedOut" in halt["reason"]
    steps = [(s["name"], s["outcome"]) for p in swap.phases for s in p["steps"]]
    assert ("green_upgrade", "failed") in steps and ("green_in_pool", "passed") not in steps
    assert status == "rolled_back"


def test_green_s_creation_is_judged_by_its_health_gate_and_its_poller_read_at_the_end():
    blue, green, counter = sets()
    green.pending_polls = 10 ** 6
    swap, opts = swap_of(blue, green, counter)
    read_at = noting_outcomes(green, swap, blue)

    assert swap.execute(opts) == ("succeeded", None, None)
    assert read_at == [([], "green_healthy", 0)]
    steps = [(s["name"], s["outcome"]) for s in swap.phases[0]["steps"]]
    assert steps == [("create_green", "done"), ("green_healthy", "passed")]


def test_green_still_being_created_is_not_healthy_yet():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter)
    create = green.create

    def creating(body):
        poller = create(body)
        green.resource["properties"]["provisioningState"] = "Creating"
        return poller

    green.create = creating
    _status, halt, _rollback = swap.execute(opts)
    # every instance Healthy, the set still Creating: not ready
    assert halt["code"] == "HealthTimeout" and halt["reason"].endswith(": the scale set Creating"), halt


# --- a 409 right after our own PATCH: Azure's operation may hold the set a moment after a GET says Succeeded ------

def refused(fake):
    """What the client raises when Azure refuses the upgrade: 409 OperationNotAllowed (a fault, not a verdict)."""
    return arm_failure("upgrade instances of", fake.what, {
        "code": "OperationNotAllowed", "message": "another operation is in progress", "status": 409,
        "request_id": None}, transient=True)


def test_a_409_on_the_upgrade_right_after_the_pool_patch_is_asked_again_and_the_swap_goes_on():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)
    green.upgrade_errors = [refused(green)]   # green_upgrade, right after green_join_model's PATCH

    status, halt, _rollback = swap.execute(opts)

    assert (status, halt) == ("succeeded", None)
    assert [w[0] for w in green.writes()] == ["create", "update", "upgrade", "upgrade"]   # one more start
    assert [w[0] for w in blue.writes()] == ["update", "upgrade"]
    members = green.lb.members(POOL)
    assert members and all("/web-green/" in member for member in members)   # traffic on green, blue out


def test_a_409_lasting_past_conflict_seconds_interrupts_the_swap_without_a_verdict(monkeypatch):
    clock = {"now": 1000.0}   # the wait's clock moves only when it sleeps
    monkeypatch.setattr(pending.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(pending.time, "sleep", lambda seconds: clock.update(now=clock["now"] + seconds))
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None, wait_sleep=10)
    green.upgrade_errors = [refused(green) for _attempt in range(100)]

    with pytest.raises(AzureFailure) as caught:
        swap.execute(opts)

    assert caught.value.transient and caught.value.details["status"] == 409   # interrupted: the module says so
    upgrades = [w for w in green.writes() if w[0] == "upgrade"]
    assert len(upgrades) == int(pending.CONFLICT_SECONDS / 10) + 2      # asked every wait_sleep, then raised
    steps = {s["name"]: s["outcome"] for p in swap.phases for s in p["steps"]}
    assert steps["green_upgrade"] is None and "green_in_pool" not in steps   # no verdict, no rollback
    assert blue.writes() == [] and any("/web/" in member for member in blue.lb.members(POOL))


def test_a_409_on_an_upgrade_not_after_our_patch_is_raised_at_once():
    blue, green, counter = sets()
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)
    swap.execute(opts)   # live: green serves, blue out of the pools
    swap, opts = swap_of(blue, green, counter, state="live", blue_capacity=None)
    green.upgrade_errors = [refused(green)]
    with pytest.raises(AzureFailure):
        swap._instances("green", "upgrade", lambda: ["0"], "UpgradeFailed")   # pylint: disable=protected-access
    assert [w[0] for w in green.writes()][-1:] == ["upgrade"] and len(green.upgrade_errors) == 0
