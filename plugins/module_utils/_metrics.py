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
* complete grains only: a grain counts when it began at or after ``since`` (the batch's health settled, so it
  holds new-image traffic alone: an upgraded instance keeps its name, and a grain it restarted in holds old-image
  data, or a few seconds of traffic, whose total is a fraction of a full grain's) and is not the answer's last
  (the grain in progress: partial, and Azure fills a grain not ingested yet with nothing or 0). The baseline is
  read over the same grains, so late data weighs on both alike.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional

AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")
THRESHOLDS = ("max", "min", "max_ratio_to_baseline")
GATE_DEFAULTS = {"namespace": None, "resource": None, "aggregation": "average", "filter": None, "window": 300,
                 "interval": 60, "max": None, "min": None, "max_ratio_to_baseline": None, "min_samples": 3,
                 "instance_dimension": None}

# the argument_spec suboptions of metric_gates (documented in the doc fragment fleetops.vmss.metric_gates)
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


def argument_spec() -> Dict[str, Any]:
    """The metric_gates option of rollout, blue_green (doc fragment fleetops.vmss.metric_gates) and rolling_upgrade."""
    return {"metric_gates": dict(type="list", elements="dict", options={k: dict(v) for k, v in OPTIONS.items()})}


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
    """ISO 8601 UTC, with milliseconds when there are any (a window truncated to the second would end before
    data a batch has just produced)."""
    text = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return (text[:-4] if text.endswith(".000") else text) + "Z"


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
    """The instance id a series belongs to (its dimension value is the VM name, computer name or instance id);
    None when it names no instance, or several (blue and green share computer names: green copies blue's model)."""
    value = str({k.lower(): v for k, v in series_dims.items()}.get(dimension.lower(), "")).lower()
    found = {str(inst["instance_id"]) for inst in instances
             if value and value in {str(inst.get(k) or "").lower() for k in ("name", "computer_name", "instance_id")}}
    return found.pop() if len(found) == 1 else None


def _value(points: List[float], aggregation: str) -> Optional[float]:
    if not points:
        return None
    if aggregation == "maximum":
        return max(points)
    if aggregation == "minimum":
        return min(points)
    return sum(points) / len(points)


def complete(series: List[Dict[str, Any]], since: float) -> List[Dict[str, Any]]:
    """The series with only their complete grains (see the module's docstring): begun at or after ``since``,
    and before the answer's last grain (the one in progress)."""
    stamps = [point[0] for item in series for point in item.get("points") or [] if point[0] is not None]
    last = max(stamps) if stamps else None
    return [dict(item, points=[(t, v) for t, v in item.get("points") or []
                               if t is not None and since <= t < last]) for item in series]


def judge(gate: Dict[str, Any], series: List[Dict[str, Any]], batch: Iterable[str], baseline: Iterable[str],
          instances: List[Dict[str, Any]], since: Optional[float]) -> Dict[str, Any]:
    """One gate's verdict on a batch: {state: passed|failed|waiting, metric, value, baseline, ratio, samples,
    baseline_samples, threshold, reason}. ``series``: [{"dims": {name: value}, "points": [(epoch, float|None)
    per grain]}] of one answer, judged on the grains complete since ``since`` (epoch seconds: when the batch's
    health settled); None: series already cut to their complete grains (answers of several resources)."""
    batch, baseline = {str(i) for i in batch}, {str(i) for i in baseline}
    mine: List[float] = []
    theirs: List[float] = []
    for item in series if since is None else complete(series, since):
        who = owner(item.get("dims") or {}, gate["instance_dimension"], instances)
        points = [point[1] for point in item["points"] if point[1] is not None]
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
        failures.append("%s above max %s" % (number(value), number(gate["max"])))
    if gate.get("min") is not None and value < gate["min"]:
        failures.append("%s below min %s" % (number(value), number(gate["min"])))
    if relative:
        base = verdict["baseline"]
        ratio = value / base if base else (1.0 if value == 0 else float("inf"))
        verdict["ratio"] = ratio
        if ratio > gate["max_ratio_to_baseline"]:
            failures.append("%s is %sx the baseline %s (the instances not upgraded), above max_ratio_to_baseline %s"
                            % (number(value), number(ratio), number(base), number(gate["max_ratio_to_baseline"])))
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
    return "metric gate %s (%s over %ss)" % (gate["metric"], gate["aggregation"], number(gate["window"]))


def number(value: float) -> str:
    """A value as the reasons show it: at most 3 decimals, "infinite" for an infinite ratio."""
    if value == float("inf"):
        return "infinite"
    return ("%.3f" % value).rstrip("0").rstrip(".")


def plain_series(response: Any, aggregation: str) -> List[Dict[str, Any]]:
    """An azure-mgmt-monitor ``Response`` as [{"dims", "points": [(epoch of the grain's start, value)]}] of one
    aggregation."""
    out = []
    for metric in response.value or []:
        for item in metric.timeseries or []:
            dims = {m.name.value: m.value for m in item.metadatavalues or []}
            out.append({"dims": dims, "points": [(_epoch(getattr(p, "time_stamp", None)), getattr(p, aggregation, None))
                                                 for p in item.data or []]})
    return out


def _epoch(stamp: Any) -> Optional[float]:
    if stamp is None:
        return None
    if isinstance(stamp, str):
        stamp = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)).timestamp()


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

    def judge_all(self, gates: List[Dict[str, Any]], batch: Iterable[str], baseline: Iterable[str],
                  instances: List[Dict[str, Any]], since: float) -> List[Dict[str, Any]]:
        """Every gate (with defaults) read once and judged (see judge): one metrics call per gate and resource.
        A gate may name several resources (``resources``: blue's and green's scale sets), read one by one."""
        verdicts = []
        for gate in gates:   # each answer cut to its complete grains (its own grain in progress)
            series = [s for resource in gate.get("resources") or [gate["resource"]]
                      for s in complete(self.read(dict(gate, resource=resource)), since)]
            verdicts.append(judge(gate, series, batch, baseline, instances, None))
        return verdicts
