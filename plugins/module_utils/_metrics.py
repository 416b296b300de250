# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gates: a batch judged on Azure Monitor metrics once its health has settled. Pure functions (options,
the query, the verdict) and one small reader (the only I/O: ``metrics.list`` of azure-mgmt-monitor).

A gate reads one metric of one resource (default: the scale set) over ``window`` seconds, per instance (the
query splits the metric by the dimension naming instances: ``VMName`` on a scale set, ``cloud/roleInstance`` on
an Application Insights component, or ``instance_dimension``). A series belongs to an instance when its
dimension value is the instance's VM name, computer name or instance id.

* value: per instance and per grain (``interval``), the aggregation; then the mean of those points over the
  batch's instances (``maximum``: their largest, ``minimum``: their smallest). So a Total of failed requests is a
  rate per instance and grain, comparable between a batch of 2 and a baseline of 10.
* baseline (``max_ratio_to_baseline``): the same value over the instances not upgraded yet. No such instance
  left: the relative threshold is not judged (noted). A baseline of 0 against a value above 0 is an infinite ratio.
* samples: the batch's points with data; fewer than ``min_samples`` (or, for a relative gate, fewer in the
  baseline) is "waiting": the gate is read again every wait_sleep until health_timeout.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional

AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")
THRESHOLDS = ("max", "min", "max_ratio_to_baseline")
GATE_DEFAULTS = {"namespace": None, "resource": None, "aggregation": "average", "filter": None, "window": 300,
                 "interval": 60, "max": None, "min": None, "max_ratio_to_baseline": None, "min_samples": 3,
                 "instance_dimension": None}

# the argument_spec suboptions of metric_gates (the module documents them)
OPTIONS = dict(
    metric=dict(type="str", required=True),
    namespace=dict(type="str"),
    resource=dict(type="str"),
    aggregation=dict(type="str", choices=list(AGGREGATIONS), default="average"),
    filter=dict(type="str"),
    window=dict(type="float", default=300),
    interval=dict(type="int", default=60),
    max=dict(type="float"),
    min=dict(type="float"),
    max_ratio_to_baseline=dict(type="float"),
    min_samples=dict(type="int", default=3),
    instance_dimension=dict(type="str"),
)


def gate_errors(gates: Optional[Iterable[Dict[str, Any]]]) -> List[str]:
    """Every reason the metric_gates option cannot be judged (before any request)."""
    errors = []
    for number, gate in enumerate(gates or [], 1):
        name = "metric_gates[%d] (%s)" % (number, gate.get("metric"))
        if all(gate.get(k) is None for k in THRESHOLDS):
            errors.append("%s needs a threshold: max, min or max_ratio_to_baseline." % name)
        if (gate.get("window") or 0) <= 0 or (gate.get("interval") or 0) <= 0:
            errors.append("%s: window and interval must be positive seconds." % name)
        elif gate["interval"] % 60 or gate["window"] < gate["interval"]:
            errors.append("%s: interval must be whole minutes (Azure Monitor's grains) and at most the window." % name)
        if (gate.get("min_samples") or 0) < 1:
            errors.append("%s: min_samples must be at least 1." % name)
        if gate.get("max_ratio_to_baseline") is not None and gate["max_ratio_to_baseline"] <= 0:
            errors.append("%s: max_ratio_to_baseline must be positive." % name)
        if gate.get("resource") and not str(gate["resource"]).startswith("/subscriptions/"):
            errors.append("%s: resource must be a full resource id (/subscriptions/...)." % name)
    return errors


def with_defaults(gate: Dict[str, Any], scale_set_id: str) -> Dict[str, Any]:
    out = dict(GATE_DEFAULTS, **{k: v for k, v in gate.items() if v is not None})
    out["resource"] = out["resource"] or scale_set_id
    if not out["instance_dimension"]:
        out["instance_dimension"] = "VMName" if "/virtualmachinescalesets/" in out["resource"].lower() \
            else "cloud/roleInstance"
    return out


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return "PT%dH" % (minutes // 60) if minutes % 60 == 0 else "PT%dM" % minutes


def query(gate: Dict[str, Any], now: float) -> Dict[str, Any]:
    """The keyword arguments of ``metrics.list`` for a gate (with defaults) over the window ending now."""
    split = "%s eq '*'" % gate["instance_dimension"]
    args = {"timespan": "%s/%s" % (_iso(now - gate["window"]), _iso(now)), "interval": _duration(gate["interval"]),
            "metricnames": gate["metric"], "aggregation": gate["aggregation"],
            "filter": "%s and %s" % (gate["filter"], split) if gate.get("filter") else split,
            "top": 1000}
    if gate.get("namespace"):
        args["metricnamespace"] = gate["namespace"]
    return args


def owner(series_dims: Dict[str, str], dimension: str, instances: Iterable[Dict[str, Any]]) -> Optional[str]:
    """The instance id a series belongs to (its dimension value is the VM name, computer name or id)."""
    value = str({k.lower(): v for k, v in series_dims.items()}.get(dimension.lower(), "")).lower()
    for inst in instances:
        if value and value in {str(inst.get(k) or "").lower() for k in ("name", "computer_name", "instance_id")}:
            return str(inst["instance_id"])
    return None


def _value(points: List[float], aggregation: str) -> Optional[float]:
    if not points:
        return None
    if aggregation == "maximum":
        return max(points)
    if aggregation == "minimum":
        return min(points)
    return sum(points) / len(points)


def judge(gate: Dict[str, Any], series: List[Dict[str, Any]], batch: Iterable[str], baseline: Iterable[str],
          instances: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One gate's verdict on a batch: {state: passed|failed|waiting, metric, value, baseline, ratio, samples,
    baseline_samples, threshold, reason}. ``series``: [{"dims": {name: value}, "points": [float|None per grain]}]."""
    batch, baseline = {str(i) for i in batch}, {str(i) for i in baseline}
    mine: List[float] = []
    theirs: List[float] = []
    for item in series:
        who = owner(item.get("dims") or {}, gate["instance_dimension"], instances)
        points = [p for p in item.get("points") or [] if p is not None]
        if who in batch:
            mine += points
        elif who in baseline:
            theirs += points
    threshold = {k: gate[k] for k in THRESHOLDS if gate.get(k) is not None}
    verdict = {"metric": gate["metric"], "resource": gate["resource"], "aggregation": gate["aggregation"],
               "window": gate["window"], "value": _value(mine, gate["aggregation"]), "samples": len(mine),
               "baseline": _value(theirs, gate["aggregation"]), "baseline_samples": len(theirs), "ratio": None,
               "threshold": threshold, "state": "passed", "reason": None}
    relative = gate.get("max_ratio_to_baseline") is not None and bool(baseline)
    if len(mine) < gate["min_samples"] or relative and len(theirs) < gate["min_samples"]:
        verdict["state"] = "waiting"
        verdict["reason"] = "%s: too little data (%d batch and %d baseline samples of %d needed)" % (
            describe(gate), len(mine), len(theirs), gate["min_samples"])
        return verdict
    value, failures = verdict["value"], []
    if gate.get("max") is not None and value > gate["max"]:
        failures.append("%s above max %s" % (_n(value), _n(gate["max"])))
    if gate.get("min") is not None and value < gate["min"]:
        failures.append("%s below min %s" % (_n(value), _n(gate["min"])))
    if relative:
        base = verdict["baseline"]
        ratio = value / base if base else (1.0 if value == 0 else float("inf"))
        verdict["ratio"] = ratio
        if ratio > gate["max_ratio_to_baseline"]:
            failures.append("%s is %sx the baseline %s (the instances not upgraded), above max_ratio_to_baseline %s"
                            % (_n(value), _n(ratio), _n(base), _n(gate["max_ratio_to_baseline"])))
    elif gate.get("max_ratio_to_baseline") is not None:
        verdict["reason"] = "%s: no baseline (every instance is upgraded): max_ratio_to_baseline not judged" % describe(gate)
    if failures:
        verdict.update(state="failed", reason="%s: %s" % (describe(gate), "; ".join(failures)))
    return verdict


def combine(verdicts: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The gates together: failed if any failed, else waiting if any waits, else passed."""
    for state in ("failed", "waiting"):
        hit = [v for v in verdicts if v["state"] == state]
        if hit:
            return {"state": state, "gates": verdicts, "reason": "; ".join(v["reason"] for v in hit)}
    return {"state": "passed", "gates": verdicts, "reason": "; ".join(v["reason"] for v in verdicts if v["reason"])}


def describe(gate: Dict[str, Any]) -> str:
    return "metric gate %s (%s over %ss)" % (gate["metric"], gate["aggregation"], _n(gate["window"]))


def _n(value: float) -> str:
    if value == float("inf"):
        return "infinite"
    return ("%.3f" % value).rstrip("0").rstrip(".")


def plain_series(response: Any, aggregation: str) -> List[Dict[str, Any]]:
    """An azure-mgmt-monitor ``Response`` as [{"dims", "points"}] of one aggregation."""
    out = []
    for metric in response.value or []:
        for item in metric.timeseries or []:
            dims = {m.name.value: m.value for m in item.metadatavalues or []}
            out.append({"dims": dims, "points": [getattr(p, aggregation, None) for p in item.data or []]})
    return out


class MetricsReader:
    """Reads gates through azure-mgmt-monitor (``monitor``: a callable returning the client, on first use).
    Its errors are AzureFailure (transient ones interrupt the run: never a verdict)."""

    def __init__(self, monitor: Callable[[], Any], clock: Callable[[], float]):
        self._monitor, self._client, self.clock = monitor, None, clock
        self.calls = 0

    def read(self, gate: Dict[str, Any]) -> List[Dict[str, Any]]:
        from ._errors import arm_errors  # pylint: disable=import-outside-toplevel

        if self._client is None:
            self._client = self._monitor()
        self.calls += 1
        with arm_errors("read metric %s of" % gate["metric"], gate["resource"]):
            response = self._client.metrics.list(gate["resource"], **query(gate, self.clock()))
        return plain_series(response, gate["aggregation"])
