# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gates: options, the query sent to Azure Monitor, and the verdict on a batch."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils import _metrics as m

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
AI = "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/components/web-ai"
INSTANCES = [{"instance_id": str(i), "name": "web_%d" % i, "computer_name": "web00000%d" % i} for i in range(4)]


def series(values_by_computer, dim="cloud/roleInstance"):
    return [{"dims": {dim: who}, "points": points} for who, points in values_by_computer.items()]


def gate(**kw):
    return m.with_defaults(dict({"metric": "requests/failed", "resource": AI, "aggregation": "total"}, **kw), VMSS)


def test_option_errors_name_the_gate():
    errors = m.gate_errors([{"metric": "x", "window": 300, "interval": 60, "min_samples": 3},
                            {"metric": "y", "max": 1, "window": 300, "interval": 90, "min_samples": 0},
                            {"metric": "z", "max_ratio_to_baseline": 0, "window": 300, "interval": 60, "min_samples": 1,
                             "resource": "web"}])
    assert errors == [
        "metric_gates[1] (x) needs a threshold: max, min or max_ratio_to_baseline.",
        "metric_gates[2] (y): interval must be whole minutes (Azure Monitor's grains) and at most the window.",
        "metric_gates[2] (y): min_samples must be at least 1.",
        "metric_gates[3] (z): max_ratio_to_baseline must be positive.",
        "metric_gates[3] (z): resource must be a full resource id (/subscriptions/...)."]
    assert m.gate_errors([{"metric": "ok", "max": 5, "window": 300, "interval": 60, "min_samples": 3}]) == []


def test_defaults_and_query():
    cpu = m.with_defaults({"metric": "Percentage CPU", "max": 80}, VMSS)
    assert cpu["resource"] == VMSS and cpu["instance_dimension"] == "VMName" and cpu["aggregation"] == "average"
    args = m.query(cpu, 1_000_000_000.0)
    assert args == {"timespan": "2001-09-09T01:41:40Z/2001-09-09T01:46:40Z", "interval": "PT1M",
                    "metricnames": "Percentage CPU", "aggregation": "average", "filter": "VMName eq '*'", "top": 1000}
    failed = gate(filter="request/success eq 'False'", namespace="microsoft.insights/components", interval=3600,
                  window=7200)
    args = m.query(failed, 0)
    assert failed["instance_dimension"] == "cloud/roleInstance" and args["interval"] == "PT1H"
    assert args["filter"] == "request/success eq 'False' and cloud/roleInstance eq '*'"
    assert args["metricnamespace"] == "microsoft.insights/components"


def test_five_times_the_baseline_fails_with_values_in_the_reason():
    data = series({"web000000": [25, 25, 25], "web000001": [5, 5, None], "web000002": [5, 5, 5]})
    verdict = m.judge(gate(max_ratio_to_baseline=2), data, ["0"], ["1", "2"], INSTANCES)
    assert verdict["state"] == "failed"
    assert (verdict["value"], verdict["baseline"], verdict["ratio"]) == (25, 5, 5)
    assert (verdict["samples"], verdict["baseline_samples"]) == (3, 5)
    assert verdict["reason"] == ("metric gate requests/failed (total over 300s): 25 is 5x the baseline 5 (the instances "
                                 "not upgraded), above max_ratio_to_baseline 2")
    assert m.judge(gate(max_ratio_to_baseline=6), data, ["0"], ["1", "2"], INSTANCES)["state"] == "passed"


def test_too_little_data_waits_for_batch_and_baseline():
    data = series({"web000000": [None, 25], "web000001": [5, 5, 5]})
    verdict = m.judge(gate(max_ratio_to_baseline=2), data, ["0"], ["1"], INSTANCES)
    assert verdict["state"] == "waiting" and "1 batch and 3 baseline samples of 3 needed" in verdict["reason"]
    data = series({"web000000": [1, 1, 1], "web000001": [5]})
    assert m.judge(gate(max_ratio_to_baseline=2), data, ["0"], ["1"], INSTANCES)["state"] == "waiting"
    # an absolute gate needs no baseline
    assert m.judge(gate(max=2), data, ["0"], ["1"], INSTANCES)["state"] == "passed"


def test_no_baseline_left_notes_the_relative_gate_and_judges_absolute_ones():
    data = series({"web000000": [9, 9, 9]})
    verdict = m.judge(gate(max_ratio_to_baseline=2, max=10), data, ["0"], [], INSTANCES)
    assert verdict["state"] == "passed" and "no baseline" in verdict["reason"]
    assert m.judge(gate(max_ratio_to_baseline=2, max=8), data, ["0"], [], INSTANCES)["state"] == "failed"


def test_zero_baseline():
    quiet = series({"web000000": [0, 0, 0], "web000001": [0, 0, 0]})
    assert m.judge(gate(max_ratio_to_baseline=2), quiet, ["0"], ["1"], INSTANCES)["ratio"] == 1.0
    loud = series({"web000000": [1, 1, 1], "web000001": [0, 0, 0]})
    verdict = m.judge(gate(max_ratio_to_baseline=2), loud, ["0"], ["1"], INSTANCES)
    assert verdict["state"] == "failed" and math.isinf(verdict["ratio"]) and "infinite" in verdict["reason"]


def test_min_threshold_and_series_matched_by_vm_name_or_id():
    dip = m.with_defaults({"metric": "Percentage CPU", "min": 50, "aggregation": "minimum"}, VMSS)
    data = series({"web_0": [90, 40, 90], "WEB_1": [10, 10, 10], "unknown": [0, 0, 0]}, dim="VMName")
    verdict = m.judge(dip, data, ["0"], ["1"], INSTANCES)
    assert verdict["state"] == "failed" and verdict["value"] == 40 and "40 below min 50" in verdict["reason"]
    assert m.owner({"vmname": "3"}, "VMName", INSTANCES) == "3"
    assert m.owner({"VMName": ""}, "VMName", INSTANCES) is None


def test_combine():
    passed = {"state": "passed", "reason": None}
    waiting = {"state": "waiting", "reason": "w"}
    failed = {"state": "failed", "reason": "f"}
    assert m.combine([passed, waiting])["state"] == "waiting"
    assert m.combine([waiting, failed]) == {"state": "failed", "gates": [waiting, failed], "reason": "f"}
    assert m.combine([passed, dict(passed, reason="noted")])["reason"] == "noted"


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=3, max_size=20), st.floats(min_value=0.1, max_value=10))
def test_absolute_max_is_the_mean_of_batch_points(points, limit):
    data = series({"web000000": points})
    verdict = m.judge(gate(max=limit), data, ["0"], [], INSTANCES)
    mean = sum(points) / len(points)
    assert verdict["value"] == pytest.approx(mean)
    assert verdict["state"] == ("failed" if verdict["value"] > limit else "passed")


def test_plain_series_and_reader():
    point = NS(time_stamp=None, total=4.0, average=None)
    response = NS(value=[NS(timeseries=[NS(metadatavalues=[NS(name=NS(value="cloud/roleInstance"), value="web000000")],
                                           data=[point, NS(time_stamp=None, total=None, average=None)])])])
    assert m.plain_series(response, "total") == [{"dims": {"cloud/roleInstance": "web000000"}, "points": [4.0, None]}]
    calls = []

    class Metrics:
        @staticmethod
        def list(resource, **kwargs):
            calls.append((resource, kwargs))
            return response

    made = []
    reader = m.MetricsReader(lambda: made.append(1) or NS(metrics=Metrics), lambda: 0.0)
    assert reader.read(gate(max=1)) == [{"dims": {"cloud/roleInstance": "web000000"}, "points": [4.0, None]}]
    reader.read(gate(max=1))
    assert made == [1] and reader.calls == 2 and calls[0][0] == AI and calls[0][1]["metricnames"] == "requests/failed"


def test_a_dropped_connection_reading_metrics_is_a_transient_failure_not_a_verdict():
    from azure.core.exceptions import ServiceRequestError

    from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure

    class Metrics:
        @staticmethod
        def list(resource, **kwargs):
            raise ServiceRequestError("connection reset")

    reader = m.MetricsReader(lambda: NS(metrics=Metrics), lambda: 0.0)
    with pytest.raises(AzureFailure) as failure:
        reader.read(gate(max=1))
    assert failure.value.transient
