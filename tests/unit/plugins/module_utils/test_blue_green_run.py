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
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure
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
