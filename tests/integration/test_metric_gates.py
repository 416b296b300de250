# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gates against the emulator's Azure Monitor: a batch Healthy by its probe but failing 20x more requests
than the instances not upgraded halts and rolls back; a gate with no data times out cleanly (no verdict)."""

from __future__ import annotations

import pytest
from conftest import last_seq
from test_rollout import RG, UPGRADE, instances, rollout, seed_gallery, seed_scale_set, version_id, write_kinds


def component(azure):
    return "/subscriptions/%s/resourceGroups/%s/providers/microsoft.insights/components/api-ai" % (
        azure.subscription_id, RG)


def scale_set_id(azure, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
        azure.subscription_id, RG, name)


def failed_requests_gate(azure, **extra):
    return dict({"metric": "requests/failed", "resource": component(azure), "aggregation": "total", "window": 120,
                 "max_ratio_to_baseline": 2, "min_samples": 2}, **extra)


def test_healthy_batch_failing_twenty_times_the_baseline_halts_and_rolls_back(emulator, azure, ansible, control):
    seed_gallery(control, azure, ["1.0.0", "1.1.0"])
    seed_scale_set(azure, "api", version_id(azure, "1.0.0"))
    # Application Insights: 5 failed requests a minute per instance, 100 on 1.1.0 (its probe stays Healthy)
    control.call("POST", "metric-scripts", {"resource_id": component(azure), "metric": "requests/failed",
                                            "scale_set": scale_set_id(azure, "api"), "values": {"1.1.0": 100, "*": 5}})
    since = last_seq(control)

    code, out = rollout(ansible, "api", image=version_id(azure, "1.1.0"), batch_by="percent", batch_size=20,
                        metric_gates=[failed_requests_gate(azure)])

    assert code != 0, out
    assert out["status"] == "rolled_back" and out["halt"]["code"] == "MetricGateFailed", out["halt"]
    # The batch the gate halted: the first one on this machine; in CI under load a later one (see
    # docs/metric_gates.md "Known issue"), so the assertions hold for whichever batch it was.
    halted = out["batches"][-1]
    assert set(halted["health"].values()) == {"Healthy"} and halted["outcome"] == "unhealthy"
    [verdict] = halted["metrics"]
    assert verdict["state"] == "failed" and verdict["baseline"] == pytest.approx(5) and verdict["ratio"] > 2
    assert verdict["threshold"] == {"max_ratio_to_baseline": 2} and verdict["samples"] >= 2
    assert "the baseline 5 (the instances not upgraded), above max_ratio_to_baseline 2" in out["halt"]["reason"]
    assert "metric gate requests/failed" in out["msg"]
    moved = sorted((i for batch in out["batches"] for i in batch["instance_ids"]), key=int)
    assert sorted(out["rollback"]["instance_ids"], key=int) == moved and out["rollback"]["outcome"] == "healthy"
    assert write_kinds(control, since) == (["VirtualMachineScaleSets_Update"] + [UPGRADE] * len(out["batches"])
                                           + ["VirtualMachineScaleSets_Update", UPGRADE, "VirtualMachineScaleSets_Update"])
    assert {i["image"]["id"].rsplit("/", 1)[1] for i in instances(azure, "api")} == {"1.0.0"}


def test_too_little_metric_data_times_out_without_a_verdict_on_the_image(emulator, azure, ansible, control):
    seed_gallery(control, azure, ["1.0.0", "1.1.0"])
    seed_scale_set(azure, "api", version_id(azure, "1.0.0"))
    since = last_seq(control)

    code, out = rollout(ansible, "api", image=version_id(azure, "1.1.0"), batch_by="percent", batch_size=20,
                        health_timeout=3, demote_image_version_on_failure=True,
                        metric_gates=[failed_requests_gate(azure)])

    assert code != 0, out
    assert out["status"] == "halted" and out["halt"]["code"] == "MetricTimeout", out["halt"]
    assert out["halt"]["reason"].startswith("not judged within health_timeout=3 seconds: metric gate requests/failed")
    assert "too little data (0 batch and 0 baseline samples of 2 needed)" in out["halt"]["reason"]
    assert out["batches"][0]["outcome"] == "timeout" and out["batches"][0]["metrics"][0]["state"] == "waiting"
    assert out["demoted"] is None and out["rollback"] is None          # a missing signal says nothing of the image
    # the model (with the rollback point and the lease), batch 1, the lease released (tags only): no demotion
    assert write_kinds(control, since) == ["VirtualMachineScaleSets_Update", UPGRADE, "VirtualMachineScaleSets_Update"]
    assert out["msg"] == ("Rollout of scale set %s/api halted after batch 1 of 5: %s" % (RG, out["halt"]["reason"]))
