"""Azure Monitor metrics through azure-mgmt-monitor: definitions, values from scripts, samples and state,
aggregations, intervals, dimension filters, per-instance series, and the errors Azure gives."""
import datetime
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from compute_support import body as vmss_body, vmss_path, wait_until
from conftest import TIME_SCALE
from emulator.client import ControlError
from emulator.providers import metrics as provider


def monitor(emu):
    from azure.mgmt.monitor import MonitorManagementClient
    return MonitorManagementClient(**emu.sdk_kwargs())


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timespan(seconds):
    """A realistic window ending a little after now (the emulator scales it)."""
    end = time.time() + 1
    return f"{iso(end - seconds)}/{iso(end)}"


@pytest.fixture
def fleet(clean):
    emu = clean
    emu.rg("mx-rg")
    path = vmss_path(emu, "mx-rg", "web")
    status, doc, _ = emu.arm("PUT", path, vmss_body(emu, 3))
    assert status in (200, 201), doc
    wait_until(lambda: all(v["properties"]["provisioningState"] == "Succeeded" for v in
                           emu.arm("GET", path + "/virtualMachines")[1]["value"]))
    component = f"/subscriptions/{emu.subscription_id}/resourceGroups/mx-rg/providers/microsoft.insights/components/web-ai"
    return emu, doc["id"], component


def aligned(points, interval):
    """Whether the points' timestamps are consecutive grains at multiples of the scaled interval."""
    grain = interval * TIME_SCALE
    stamps = [p.time_stamp.timestamp() for p in points]
    return all(abs(t / grain - round(t / grain)) < 1e-3 for t in stamps) and all(
        b - a == pytest.approx(grain, abs=2e-3) for a, b in zip(stamps, stamps[1:]))


def values(series, how="count"):
    return [getattr(p, how) for p in series.data if getattr(p, how) is not None]


# --- pure ----------------------------------------------------------------------------------------

def test_filter_parsing_and_errors():
    conditions = provider.parse_filter("cloud/roleInstance eq 'web000001' or cloud/roleInstance eq 'web000002' "
                                       "and request/success eq '*'")
    assert conditions == [
        {"DimensionName": "cloud/roleInstance", "Values": ["web000001", "web000002"], "Operator": "Equals"},
        {"DimensionName": "request/success", "Values": ["*"], "Operator": "Equals"}]
    assert provider.parse_filter("VMName ne 'a'")[0]["Operator"] == "NotEquals"
    assert provider.parse_filter(None) == [] and provider.parse_filter("  ") == []
    with pytest.raises(Exception, match="may only join values of one dimension"):
        provider.parse_filter("A eq 'a' or B eq 'b'")
    with pytest.raises(Exception, match="Invalid \\$filter clause"):
        provider.parse_filter("A = 'a'")


def test_aggregate_weighs_held_values_by_coverage():
    samples = [(10.0, 1.0), (30.0, 0.5)]
    assert provider.aggregate(samples, "average") == pytest.approx(25 / 1.5)
    assert provider.aggregate(samples, "total") == 25
    assert provider.aggregate(samples, "count") == 1.5
    assert (provider.aggregate(samples, "minimum"), provider.aggregate(samples, "maximum")) == (10, 30)


# --- through the SDK -----------------------------------------------------------------------------

def test_definitions_of_the_three_resource_types(fleet):
    emu, vmss, component = fleet
    client = monitor(emu)
    cpu = {d.name.value: d for d in client.metric_definitions.list(vmss)}["Percentage CPU"]
    assert cpu.unit == "Percent" and cpu.primary_aggregation_type == "Average"
    assert [d.value for d in cpu.dimensions] == ["VMName"]
    ai = {d.name.value: d for d in client.metric_definitions.list(component)}
    assert {"requests/count", "requests/failed"} <= set(ai)
    assert "cloud/roleInstance" in [d.value for d in ai["requests/failed"].dimensions]
    lb = f"/subscriptions/{emu.subscription_id}/resourceGroups/mx-rg/providers/Microsoft.Network/loadBalancers/nope"
    with pytest.raises(ResourceNotFoundError):
        list(client.metric_definitions.list(lb))


def test_scripted_failed_requests_per_instance_and_filter(fleet):
    emu, vmss, component = fleet
    ids = sorted(v["instanceId"] for v in emu.arm("GET", vmss + "/virtualMachines")[1]["value"])
    emu.control.call("POST", "metric-scripts", {"resource_id": component, "metric": "requests/failed",
                                                "scale_set": vmss, "values": {"*": 5}, "instances": {ids[0]: 25}})
    time.sleep(300 * TIME_SCALE * 1.1)
    client = monitor(emu)
    answer = client.metrics.list(component, timespan=timespan(300), interval="PT1M", metricnames="requests/failed",
                                 aggregation="Total,Count", filter="cloud/roleInstance eq '*'")
    assert answer.interval == "PT1M" and answer.namespace == "microsoft.insights/components"
    metric = answer.value[0]
    assert metric.name.value == "requests/failed" and metric.unit == "Count"
    by_instance = {s.metadatavalues[0].value: s for s in metric.timeseries}
    assert len(by_instance) == 3 and all(s.metadatavalues[0].name.value == "cloud/roleInstance"
                                         for s in metric.timeseries)
    totals = {name: values(s, "total") for name, s in by_instance.items()}
    # one point per grain the window touches, aligned to the (scaled) interval as Azure aligns them
    assert all(len(s.data) in (5, 6) and aligned(s.data, 60) for s in metric.timeseries)
    loud = [name for name, t in totals.items() if t and max(t) > 20]
    assert len(loud) == 1 and max(totals[loud[0]]) == pytest.approx(25, rel=0.05)
    assert all(max(t) == pytest.approx(5, rel=0.05) for name, t in totals.items() if name != loud[0])
    # one instance by filter; no filter = one series over all instances
    one = client.metrics.list(component, timespan=timespan(300), interval="FULL", metricnames="requests/failed",
                              aggregation="Total", filter=f"cloud/roleInstance eq '{loud[0]}'").value[0].timeseries
    assert len(one) == 1 and one[0].metadatavalues[0].value == loud[0] and len(one[0].data) == 1
    whole = client.metrics.list(component, timespan=timespan(300), interval="PT1M", metricnames="requests/failed",
                                aggregation="Total").value[0].timeseries
    assert len(whole) == 1 and whole[0].metadatavalues == []
    assert max(values(whole[0], "total")) == pytest.approx(35, rel=0.05)


def test_scale_set_cpu_from_state_and_from_samples(fleet):
    emu, vmss, _ = fleet
    client = monitor(emu)
    time.sleep(120 * TIME_SCALE)
    series = client.metrics.list(vmss, timespan=timespan(120), interval="PT1M", metricnames="Percentage CPU",
                                 filter="VMName eq '*'").value[0].timeseries
    assert len(series) == 3 and all(v == pytest.approx(provider.IDLE_CPU) for s in series for v in values(s, "average"))
    emu.control.call("POST", "metrics", {"resource_id": vmss, "metric": "Percentage CPU", "value": 80,
                                         "timestamp": time.time() - 30 * TIME_SCALE})
    answer = client.metrics.list(vmss, timespan=timespan(120), interval="PT1M", metricnames="Percentage CPU",
                                 aggregation="Maximum")
    assert max(values(answer.value[0].timeseries[0], "maximum")) == 80     # posted samples replace state


def test_empty_window_gives_timestamps_without_values(fleet):
    emu, _, component = fleet
    answer = monitor(emu).metrics.list(component, timespan=timespan(600), interval="PT5M",
                                       metricnames="requests/count")
    points = answer.value[0].timeseries[0].data
    assert len(points) in (2, 3) and aligned(points, 300) and all(p.time_stamp and p.count is None for p in points)


def test_grains_are_aligned_and_the_grain_in_progress_is_partial(fleet):
    """As on Azure: grains start at multiples of the interval (here scaled, in real epoch time), the last one
    holds the data up to now (a total of part of a grain), and the others hold the full rate."""
    emu, vmss, component = fleet
    emu.control.call("POST", "metric-scripts", {"resource_id": component, "metric": "requests/failed",
                                                "scale_set": vmss, "values": {"*": 6}})
    grain = 60 * TIME_SCALE
    time.sleep(3 * grain)
    while (time.time() % grain) / grain < 0.2 or (time.time() % grain) / grain > 0.6:
        time.sleep(grain / 20)     # read early in a grain: the one in progress is well short of full
    before = time.time()
    answer = monitor(emu).metrics.list(component, timespan=timespan(120), interval="PT1M", metricnames="requests/failed",
                                       aggregation="Total", filter="cloud/roleInstance eq '*'")
    after = time.time()
    for series in answer.value[0].timeseries:
        stamps = [p.time_stamp.timestamp() for p in series.data]
        assert aligned(series.data, 60) and stamps[-1] <= before < stamps[-1] + grain + 0.05
        full, partial = series.data[-2].total, series.data[-1].total
        # the grain in progress holds the part of it elapsed when the emulator answered, between before and after
        # (a busy machine may answer late in the grain: the bracket, not a fixed share, is what holds)
        elapsed = [(moment - stamps[-1]) / grain for moment in (before, after)]
        assert full == pytest.approx(6, rel=0.02)
        assert 0 < partial and 6 * elapsed[0] - 0.1 <= partial <= 6 * min(elapsed[1], 1.0) + 0.1, (partial, elapsed)


def test_bad_queries_are_400s(fleet):
    emu, vmss, component = fleet
    client = monitor(emu)
    for kwargs, message in (({"metricnames": "Nope"}, "Failed to find metric configuration"),
                            ({"aggregation": "median"}, "Invalid aggregation"),
                            ({"interval": "5 minutes"}, "Invalid interval"),
                            ({"timespan": "yesterday"}, "Invalid timespan"),
                            ({"filter": "VMName = 'x'"}, "Invalid $filter"),
                            ({"metricnamespace": "Microsoft.Network/loadBalancers"}, "namespace")):
        with pytest.raises(HttpResponseError) as err:
            client.metrics.list(vmss, **kwargs)
        assert err.value.status_code == 400 and message in str(err.value), kwargs
    # Azure Monitor's own errors are flat, not in the ARM {"error": ...} envelope
    status, answer, _ = emu.arm("GET", vmss + "/providers/Microsoft.Insights/metrics", api_version="2024-02-01",
                                raw_query="metricnames=Nope")
    assert status == 400 and answer["code"] == "BadRequest" and "error" not in answer
    assert answer["message"].startswith("Failed to find metric configuration for provider: Microsoft.Compute, "
                                        "resource Type: virtualMachineScaleSets, metric: Nope, Valid metrics: ")
    with pytest.raises(ControlError, match="needs scale_set"):
        emu.control.call("POST", "metric-scripts", {"resource_id": component, "metric": "requests/failed"})


def test_a_script_replaces_the_state_s_value_of_the_instances_it_covers(fleet):
    emu, vmss, _ = fleet
    ids = sorted(v["instanceId"] for v in emu.arm("GET", vmss + "/virtualMachines")[1]["value"])
    emu.control.call("POST", "metric-scripts", {"resource_id": vmss, "metric": "Percentage CPU", "scale_set": vmss,
                                                "instances": {ids[0]: 90}})
    # restarted after the script: the script's series and the state's would both start at the boot
    status, _, _ = emu.arm("POST", f"{vmss}/virtualMachines/{ids[0]}/restart")
    assert status in (200, 202)
    wait_until(lambda: emu.arm("GET", f"{vmss}/virtualMachines/{ids[0]}")[1]["properties"]["provisioningState"]
               == "Succeeded")
    time.sleep(180 * TIME_SCALE)
    series = monitor(emu).metrics.list(vmss, timespan=timespan(120), interval="PT1M", metricnames="Percentage CPU",
                                       filter="VMName eq '*'").value[0].timeseries
    by_vm = {s.metadatavalues[0].value: values(s, "average") for s in series}
    assert by_vm.pop(f"web_{ids[0]}") == pytest.approx([90] * len(by_vm[f"web_{ids[1]}"]))
    assert all(v and all(x == pytest.approx(provider.IDLE_CPU) for x in v) for v in by_vm.values())
