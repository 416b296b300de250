"""Azure Monitor metrics (Microsoft.Insights/metrics and metricDefinitions, API 2024-02-01) of a scale set,
a load balancer and an Application Insights component.

What a query answers (learn.microsoft.com/rest/api/monitor/metrics/list):
* `timespan` "start/end" (ISO 8601; default: the hour ending now), `interval` (default PT1M; FULL = one
  grain over the whole timespan), `metricnames` (comma separated; default: the first metric of the
  resource type), `aggregation` (default: the metric's primary aggregation), `metricnamespace` (must be
  the resource type's), `$filter` on dimensions (`A eq 'a1' and B eq 'b1' or B eq 'b2' and C eq '*'`,
  also `ne`), `top` (default 10 series). A dimension named in the filter splits the answer into one
  time series per value (its `metadatavalues`); without a filter there is one series over everything.
  A grain without data carries its timeStamp alone, as Azure's do.
* Time: like every emulator duration, the window and the interval are scaled (time_scale), anchored
  on the requested end; the answer's timeStamps are the requested grains, so a client sees its own
  realistic window.

Where the values come from:
* Samples posted to the control API (`POST /_emulator/metrics`, see autoscale_engine.py: holds and
  points, `instance_id`, `dimensions`). A metric with posted samples answers those alone.
* Scripts (`POST /_emulator/metric-scripts`): a value per image version (and per instance) of a scale set's
  instances, held from the script's start or the instance's (re)start, e.g. Application Insights
  `requests/failed` = 25 per minute on 1.7.0, 5 on anything else:
  {"resource_id": component id, "metric": "requests/failed", "scale_set": vmss id,
   "values": {"1.7.0": 25, "*": 5}, "instances": {"3": 40}, "dimensions": {"cloud/roleName": "web"}}
  Each instance's series carries its `cloud/roleInstance` (components, the computer name) or
  `VMName` (scale sets). The version is the one the instance runs now: an upgraded instance's data
  starts at its upgrade (its restart), not earlier.
* The emulator's own state: a scale set's `Percentage CPU` (running instances, 10% idle, by `VMName`)
  and a load balancer's `DipAvailability` (100 per backend instance whose Application Health is not
  Unhealthy, 0 when it is; by `BackendIPAddress`).
"""
import datetime
import functools
import math
import re
import uuid

from emulator import autoscale_engine as engine
from emulator.arm import ArmError, Response, ok
from emulator.providers.compute import hooks, instances
from emulator.server import route

SCRIPTS_KEY = "metric_scripts"     # not under autoscale's "metrics:" series prefix
IDLE_CPU = 10.0
AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")
_GRAINS = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D")
_AI_DIMS = ("request/resultCode", "request/success", "cloud/roleInstance", "cloud/roleName")
# resource type (lower) -> (namespace, [(metric, unit, primary aggregation, dimensions, description)])
CATALOG = {
    "microsoft.compute/virtualmachinescalesets": ("Microsoft.Compute/virtualMachineScaleSets", [
        ("Percentage CPU", "Percent", "Average", ("VMName",),
         "The percentage of allocated compute units that are currently in use by the Virtual Machine(s)"),
        ("Network In Total", "Bytes", "Total", ("VMName",),
         "The number of bytes received on all network interfaces by the Virtual Machine(s)"),
        ("Network Out Total", "Bytes", "Total", ("VMName",),
         "The number of bytes out on all network interfaces by the Virtual Machine(s)"),
    ]),
    "microsoft.network/loadbalancers": ("Microsoft.Network/loadBalancers", [
        ("DipAvailability", "Count", "Average",
         ("ProtocolType", "BackendPort", "BackendIPAddress", "FrontendIPAddress", "FrontendPort"),
         "Average Load Balancer health probe status per time duration"),
        ("VipAvailability", "Count", "Average", ("FrontendIPAddress", "FrontendPort"),
         "Average Load Balancer data path availability per time duration"),
    ]),
    "microsoft.insights/components": ("microsoft.insights/components", [
        ("requests/count", "Count", "Count", _AI_DIMS, "Count HTTP requests completed"),
        ("requests/failed", "Count", "Count", _AI_DIMS, "Count HTTP requests marked as failed"),
        ("requests/duration", "MilliSeconds", "Average", _AI_DIMS,
         "Time between receiving an HTTP request and finishing sending the response"),
    ]),
}
_TYPES = (("Microsoft.Compute", "virtualMachineScaleSets"), ("Microsoft.Network", "loadBalancers"),
          ("Microsoft.Insights", "components"))


def _resource(ctx, req):
    """(resource id, catalogue entry) of the request's resource; 404 when a modelled resource is missing.
    Application Insights components are not modelled: any component name answers (from scripts/samples)."""
    p = req.params
    rtype = f"{p['ns']}/{p['type']}"
    rid = f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/{rtype}/{p['name']}"
    if rtype.lower() != "microsoft.insights/components":
        doc = ctx.store.get(rid)
        if doc is None:
            raise ArmError(404, "ResourceNotFound", f"The Resource '{rtype}/{p['name']}' under resource group "
                                                    f"'{p['resourceGroupName']}' was not found.")
        rid = doc["id"]
    return rid, CATALOG[rtype.lower()]


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad(message):
    return ArmError(400, "BadRequest", message)


# --- $filter -------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"^\s*(?P<name>[^\s]+)\s+(?P<op>eq|ne)\s+['\u2018\u2019](?P<value>.*)['\u2018\u2019]\s*$", re.I)


def parse_filter(text):
    """[{DimensionName, Operator, Values}] of a metrics $filter (and of or-alternatives on one name)."""
    conditions = []
    for clause in re.split(r"\s+and\s+", (text or "").strip(), flags=re.I) if text and text.strip() else []:
        names, values, ops = set(), [], set()
        for alternative in re.split(r"\s+or\s+", clause, flags=re.I):
            m = _CLAUSE.match(alternative)
            if not m:
                raise _bad(f"Invalid $filter clause {alternative.strip()!r}: expected <dimension> eq|ne '<value>'.")
            names.add(m.group("name").lower())
            ops.add(m.group("op").lower())
            values.append(m.group("value"))
        if len(names) > 1 or len(ops) > 1:
            raise _bad(f"Invalid $filter clause {clause.strip()!r}: 'or' may only join values of one dimension.")
        conditions.append({"DimensionName": m.group("name"), "Values": values,
                           "Operator": "Equals" if ops == {"eq"} else "NotEquals"})
    return conditions


# --- sources -------------------------------------------------------------------------------------

def _vm_name(vmss_doc, view):
    return view.get("name") if "/virtualMachines/" in (view.get("id") or "") and view.get("name") \
        else f"{vmss_doc['name']}_{view['instanceId']}"


def _running(ctx, vmss_id, now):
    doc = instances.scale_set_doc(ctx, vmss_id)
    views = [v for v in instances.list_instances(ctx, vmss_id, now) if doc is not None
             and not v.get("surplus") and not instances.busy(v, now) and v.get("power") == "running"]
    return doc, views


def _version(ctx, view):
    model = instances.get_model(ctx, view["vmss"], view.get("model")) or {}
    versions = instances.versions_of(model, view.get("exactVersion"))
    return versions[1] or versions[0]


def scripted(ctx, rid, metric, now):
    """Holds [t, value, instance, dims] that the scripts for (rid, metric) give now."""
    out = []
    for script in ctx.store.kv_get(SCRIPTS_KEY, []):
        if script["resource_id"].lower() != rid.lower() or script["metric"].lower() != metric.lower():
            continue
        doc, views = _running(ctx, script["scale_set"], now)
        for view in views:
            value = (script.get("instances") or {}).get(str(view["instanceId"]))
            if value is None:
                values = script.get("values") or {}
                value = values.get(str(_version(ctx, view)), values.get("*"))
            if value is None:
                continue
            dim = "VMName" if "/virtualmachinescalesets/" in rid.lower() else "cloud/roleInstance"
            who = _vm_name(doc, view) if dim == "VMName" else view.get("computerName")
            dims = dict(script.get("dimensions") or {}, **{dim: who})
            out.append([max(script["since"], view.get("since") or script["since"]), float(value), who, dims])
    return out


def from_state(ctx, rid, metric, now):
    """Holds derived from the emulator's own state: scale-set CPU, load-balancer DipAvailability."""
    lower = rid.lower()
    if "/virtualmachinescalesets/" in lower and metric.lower() == "percentage cpu":
        doc, views = _running(ctx, rid, now)
        return [[v.get("since") or now, IDLE_CPU, _vm_name(doc, v), {"VMName": _vm_name(doc, v)}] for v in views]
    if "/loadbalancers/" in lower and metric.lower() == "dipavailability":
        lb = ctx.store.get(rid) or {}
        out = []
        for pool in (lb.get("properties") or {}).get("backendAddressPools") or []:
            for doc, view, _nic, _ipc in hooks._members(ctx, pool["id"], "loadBalancerBackendAddressPools"):
                if instances.busy(view, now) or view.get("power") != "running":
                    continue
                health = instances.health_of(ctx, view, now, vmss_doc=doc)
                ip = view.get("ip") or ""
                out.append([view.get("since") or now, 0.0 if health == "Unhealthy" else 100.0, ip,
                            {"BackendIPAddress": ip, "ProtocolType": "Tcp"}])
        return out
    return []


def series_for(ctx, rid, metric, now):
    """The sample series of (rid, metric): posted samples if any, else scripts and state."""
    series = engine.load_series(ctx, rid, metric)
    if series["points"] or series["holds"]:
        if "/virtualmachinescalesets/" in rid.lower():   # posted per-instance samples name their VM
            name = rid.rstrip("/").split("/")[-1]
            for sample in series["points"] + series["holds"]:
                if sample[2] is not None:
                    sample[3] = dict(sample[3] or {}, VMName=f"{name}_{sample[2]}")
        return series
    return {"points": [], "holds": scripted(ctx, rid, metric, now) + from_state(ctx, rid, metric, now)}


# --- aggregation ---------------------------------------------------------------------------------

def aggregate(samples, how):
    """One grain's value of aggregation `how` over [(value, weight)] (a held value weighs the part of the
    grain it covers): average weighted, total = sum of value x weight, count = sum of weights."""
    weight = sum(w for _, w in samples)
    if how == "average":
        return sum(v * w for v, w in samples) / weight
    if how == "total":
        return sum(v * w for v, w in samples)
    if how == "count":
        return weight
    return (min if how == "minimum" else max)(v for v, _ in samples)


def split(series, conditions):
    """{(dimension values...): filtered series} per value combination of the filter's dimensions."""
    names = [c["DimensionName"] for c in conditions]
    groups = {}
    for kind in ("points", "holds"):
        for sample in series[kind]:
            if not engine._dimensions_match(sample[3], conditions):
                continue
            dims = {str(k).lower(): str(v) for k, v in (sample[3] or {}).items()}
            key = tuple(dims.get(n.lower(), "") for n in names)
            groups.setdefault(key, {"points": [], "holds": []})[kind].append(sample)
    if not names:
        groups.setdefault((), {"points": [], "holds": []})
    return names, groups


def timeseries(series, conditions, start, end, grain, shown_start, shown_grain, aggregations):
    names, groups = split(series, conditions)
    count = max(int(math.ceil((end - start) / grain - 1e-9)), 1)
    out = []
    for key in sorted(groups):
        grains = engine.grain_samples(groups[key], start, end, grain)
        data = []
        for index in range(count):
            point = {"timeStamp": _iso(shown_start + index * shown_grain)}
            samples = [s for per in (grains.get(index) or {}).values() for s in per]
            if samples:
                point.update({how: aggregate(samples, how) for how in aggregations})
            data.append(point)
        out.append({"metadatavalues": [{"name": {"value": n, "localizedValue": n}, "value": v}
                                       for n, v in zip(names, key)], "data": data})
    return out


# --- routes --------------------------------------------------------------------------------------

def _timespan(req, now):
    text = req.query.get("timespan")
    if not text:
        return now - 3600, now, f"{_iso(now - 3600)}/{_iso(now)}"
    try:
        start, end = (datetime.datetime.fromisoformat(p.strip().replace("Z", "+00:00")) for p in text.split("/"))
        start, end = (d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc) for d in (start, end))
    except ValueError:
        raise _bad(f"Invalid timespan {text!r}: expected 'startDateTime_ISO/endDateTime_ISO'.") from None
    if end <= start:
        raise _bad(f"Invalid timespan {text!r}: the end must be after the start.")
    return start.timestamp(), end.timestamp(), text


def _definition(rid, namespace, entry):
    name, unit, primary, dims, description = entry
    return {"id": f"{rid}/providers/microsoft.insights/metricdefinitions/{name}", "resourceId": rid,
            "namespace": namespace, "name": {"value": name, "localizedValue": name},
            "displayDescription": description, "isDimensionRequired": False, "unit": unit,
            "primaryAggregationType": primary,
            "supportedAggregationTypes": ["None", "Average", "Count", "Minimum", "Maximum", "Total"],
            "metricAvailabilities": [{"timeGrain": g, "retention": "P93D"} for g in _GRAINS],
            "dimensions": [{"value": d, "localizedValue": d} for d in dims]}


def _namespace_check(req, namespace):
    asked = req.query.get("metricnamespace")
    if asked and asked.lower() != namespace.lower():
        raise _bad(f"Metric namespace {asked!r} is not supported for this resource; it has {namespace!r}.")


def flat_errors(handler):
    """Azure Monitor answers its own errors unwrapped, {"code", "message"} (the spec's v1 ErrorResponse;
    e.g. {"code":"BadRequest","message":"Failed to find metric configuration for provider: ..."})."""
    @functools.wraps(handler)
    def run(ctx, req):
        try:
            return handler(ctx, req)
        except ArmError as error:
            return Response(error.status, {"code": error.code, "message": error.message})
    return run


def _template(ns, rtype, leaf):
    return (f"/subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroupName}}/providers/{ns}/{rtype}/{{name}}"
            f"/providers/Microsoft.Insights/{leaf}")


def _register(ns, rtype):
    """The two GETs on one resource type (the route table matches single path segments, not {resourceUri})."""
    @route("GET", _template(ns, rtype, "metricDefinitions"), operation_id="MetricDefinitions_List",
           action="Microsoft.Insights/metricDefinitions/read")
    @flat_errors
    def list_definitions(ctx, req):
        req.params.update(ns=ns, type=rtype)
        rid, (namespace, entries) = _resource(ctx, req)
        _namespace_check(req, namespace)
        return ok({"value": [_definition(rid, namespace, e) for e in entries]})

    @route("GET", _template(ns, rtype, "metrics"), operation_id="Metrics_List", action="Microsoft.Insights/metrics/read")
    @flat_errors
    def list_metrics(ctx, req):
        req.params.update(ns=ns, type=rtype)
        return ok(query(ctx, req))


for _ns, _type in _TYPES:
    _register(_ns, _type)


def query(ctx, req):
    rid, (namespace, entries) = _resource(ctx, req)
    _namespace_check(req, namespace)
    now = ctx.clock.now()
    start, end, shown = _timespan(req, now)
    interval = (req.query.get("interval") or "PT1M").upper()
    span = end - start
    step = span if interval == "FULL" else engine.parse_duration(interval)
    if not step or step <= 0:
        raise _bad(f"Invalid interval {interval!r}: expected an ISO 8601 duration such as PT1M, or FULL.")
    if span / step > 10000:
        raise _bad("The timespan holds more than 10000 grains of this interval; use a larger interval.")
    catalogue = {e[0].lower(): e for e in entries}
    names = [n.strip().replace("%2", ",") for n in (req.query.get("metricnames") or entries[0][0]).split(",")
             if n.strip()]
    unknown = [n for n in names if n.lower() not in catalogue]
    if unknown:
        provider_ns, _, rtype = namespace.partition("/")
        raise _bad(f"Failed to find metric configuration for provider: {provider_ns}, resource Type: {rtype}, "
                   f"metric: {unknown[0]}, Valid metrics: {','.join(e[0] for e in entries)}")
    asked = [a.strip().lower() for a in (req.query.get("aggregation") or "").split(",") if a.strip()]
    bad = [a for a in asked if a not in AGGREGATIONS]
    if bad:
        raise _bad(f"Invalid aggregation {bad[0]!r}; valid: Average, Count, Minimum, Maximum, Total.")
    conditions = parse_filter(req.query.get("$filter"))
    top = int(req.query.get("top") or 10)
    # the window and the grain are scaled like every emulator duration, anchored on the requested end
    real_end = min(end, now)
    real_start = real_end - ctx.clock.scaled(span)
    real_step = ctx.clock.scaled(step)
    value = []
    for name in names:
        entry = catalogue[name.lower()]
        aggregations = asked or [entry[2].lower()]
        series = series_for(ctx, rid, entry[0], now)
        found = timeseries(series, conditions, real_start, real_end, real_step, start, step, aggregations)
        value.append({"id": f"{rid}/providers/Microsoft.Insights/metrics/{entry[0]}", "type": "Microsoft.Insights/metrics",
                      "name": {"value": entry[0], "localizedValue": entry[0]}, "displayDescription": entry[4],
                      "unit": entry[1], "timeseries": found[:top] if conditions else found, "errorCode": "Success"})
    return {"cost": 0, "timespan": shown, "interval": "FULL" if interval == "FULL" else interval,
            "namespace": namespace, "resourceregion": (ctx.store.get(rid) or {}).get("location", "eastus"),
            "value": value}


# --- control API ---------------------------------------------------------------------------------

def _validate_script(ctx, script):
    if not isinstance(script, dict):
        raise ArmError(400, "InvalidMetricScript", "A metric script must be a JSON object.")
    for key in ("resource_id", "metric", "scale_set"):
        if not isinstance(script.get(key), str) or not script[key]:
            raise ArmError(400, "InvalidMetricScript", f"A metric script needs {key} (a string).")
    for key in ("values", "instances"):
        table = script.get(key)
        if table is not None and (not isinstance(table, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in table.values())):
            raise ArmError(400, "InvalidMetricScript", f"{key} must map names to numbers.")
    if not script.get("values") and not script.get("instances"):
        raise ArmError(400, "InvalidMetricScript", "A metric script needs values (per image version) or instances.")
    return dict(script, id=script.get("id") or str(uuid.uuid4()), since=ctx.clock.now())


@route("GET", "/_emulator/metric-scripts", control=True)
def list_scripts(ctx, req):
    return ok({"value": ctx.store.kv_get(SCRIPTS_KEY, [])})


@route("POST", "/_emulator/metric-scripts", control=True)
def add_scripts(ctx, req):
    new = req.body if isinstance(req.body, list) else [req.body]
    scripts = ctx.store.kv_get(SCRIPTS_KEY, []) + [_validate_script(ctx, s) for s in new]
    ctx.store.kv_set(SCRIPTS_KEY, scripts)
    return ok({"value": scripts})


@route("DELETE", "/_emulator/metric-scripts", control=True)
def clear_scripts(ctx, req):
    script_id = req.query.get("id")
    ctx.store.kv_set(SCRIPTS_KEY, [s for s in ctx.store.kv_get(SCRIPTS_KEY, []) if script_id and s["id"] != script_id])
    return Response(204)
