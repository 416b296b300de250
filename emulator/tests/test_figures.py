"""Traffic figures on a synthetic log, and the CLI entry point on a live state dir."""
import json

from emulator import figures

BASE = "https://127.0.0.1:1"
SUB = "/subscriptions/s"
VMSS = SUB + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
POLL = SUB + "/providers/Microsoft.Compute/locations/westeurope/operations/op1"


def entry(ts, method, path, op=None, status="200", body=None):
    return {"ts": ts, "operation_id": op,
            "liveRequest": {"method": method, "url": BASE + path + "?api-version=2024-07-01", "headers": {}},
            "liveResponse": {"statusCode": status, "headers": {}, "body": body}}


def compute_429(policy):
    return {"error": {"code": "OperationNotAllowed", "message": "...",
                      "details": [{"code": "TooManyRequests", "target": policy, "message": "{}"}]}}


def synthetic():
    """time scale 0.01: a scaled minute is 0.6 s. Two upgrade batches on one scale set."""
    log = [
        entry(0.00, "PUT", VMSS, "VirtualMachineScaleSets_CreateOrUpdate", "201"),
        entry(0.10, "GET", POLL), entry(0.20, "GET", POLL), entry(0.30, "GET", POLL),
        entry(0.35, "GET", VMSS, "VirtualMachineScaleSets_Get"),
        entry(0.40, "GET", VMSS + "/virtualMachines", "VirtualMachineScaleSetVMs_List"),
        entry(0.45, "GET", VMSS, "VirtualMachineScaleSets_Get", "429", compute_429("GetVMScaleSetResource")),
        entry(0.50, "POST", VMSS + "/manualupgrade", "VirtualMachineScaleSets_UpdateInstances", "202"),
        entry(0.70, "GET", VMSS + "/virtualMachines/0", "VirtualMachineScaleSetVMs_Get"),
        entry(0.80, "GET", VMSS + "/virtualMachines/0", "VirtualMachineScaleSetVMs_Get", "429",
              compute_429("GetVMScaleSetVMResource")),
        entry(0.90, "GET", SUB + "/resourcegroups/rg", "ResourceGroups_Get", "429",
              {"error": {"code": "SubscriptionRequestsThrottled", "message": "..."}}),
        entry(1.00, "GET", SUB + "/resourcegroups/other", "ResourceGroups_Get", "429",
              {"error": {"code": "TooManyRequests", "message": "injected"}}),
        entry(1.50, "POST", VMSS + "/manualupgrade", "VirtualMachineScaleSets_UpdateInstances", "202"),
        entry(1.70, "GET", POLL, status="429", body=compute_429("GetOperationResource")),
    ]
    events = [
        {"kind": "instance.health", "resource_id": VMSS, "ts": 1.20, "instance_id": "0", "state": "Healthy"},
        {"kind": "instance.health", "resource_id": VMSS, "ts": 1.30, "instance_id": "1", "state": "Healthy"},
        {"kind": "instance.health", "resource_id": VMSS.lower(), "ts": 0.05, "instance_id": "0",
         "state": "Initializing"},
    ]
    return log, events


def test_summary_of_a_synthetic_log():
    log, events = synthetic()
    s = figures.summarise(log, 0.01, events)
    assert s["requests"] == 14 and s["scaled_minute_seconds"] == 0.6 and s["minutes"] == 3
    assert s["by_operation"]["(operation status)"] == 4
    assert s["by_operation"]["VirtualMachineScaleSets_Get"] == 2
    assert s["by_operation"]["VirtualMachineScaleSets_UpdateInstances"] == 2
    web = s["per_resource"][VMSS.lower()]
    assert (web["reads"], web["writes"]) == (5, 3)
    assert web["writes_per_minute"] == {"peak": 2, "mean": 1.0}       # minute 0: PUT + upgrade, minute 2: upgrade
    assert web["reads_per_minute"]["peak"] == 3
    assert s["throttled"] == {"total": 5, "by_policy": {"GetVMScaleSetResource": 1, "GetVMScaleSetVMResource": 1,
                                                        "ARM/reads": 1, "fault": 1, "GetOperationResource": 1}}
    assert s["lro_polls"]["total"] == 4 and s["lro_polls"]["per_minute"]["peak"] == 3
    latency = s["reaction_latency"]
    # the first upgrade follows the Initializing event (0.05 -> 0.50); the second follows the last
    # Healthy of its batch (1.30 -> 1.50), not the first one.
    assert [round(x["seconds"], 3) for x in latency["samples"]] == [0.45, 0.2]
    assert latency["samples"][1]["event_time"] == 1.30
    assert latency["seconds"]["max"] == 0.45 and latency["realistic_seconds"]["min"] == 20.0


def test_render_is_readable():
    log, events = synthetic()
    text = figures.render(figures.summarise(log, 0.01, events))
    assert "14 requests" in text and "429 answers: 5" in text and "LRO polls: 4" in text
    assert "GetVMScaleSetResource" in text and "Reaction latency" in text and "realistic" in text
    assert "no write followed" in figures.render(figures.summarise(log, 0.01, []))


def test_empty_log():
    s = figures.summarise([], 1.0)
    assert s["requests"] == 0 and s["throttled"]["total"] == 0
    figures.render(s)


def test_cli_reads_a_live_state_dir(clean, capsys):
    emu = clean
    emu.control.call("DELETE", "traffic")
    emu.rg("figures-rg")
    emu.arm("GET", f"/subscriptions/{emu.subscription_id}/resourcegroups/figures-rg", api_version="2021-04-01")
    assert figures.main(["--state-dir", emu.state_dir, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] >= 2 and out["by_operation"]["ResourceGroups_Get"] >= 1
    assert out["time_scale"] == 0.01
    import argparse
    figures.main(argparse.Namespace(state_dir=emu.state_dir, since=0, json=False))
    assert "Requests by operation" in capsys.readouterr().out


def test_health_events_and_reaction_latency_end_to_end(tmp_path):
    """watch_health (until compute records events itself) dates Healthy at the end of the grace period;
    the figures CLI then measures the client's reaction on the live state dir."""
    import time
    from test_autoscale import vmss_body
    from test_throttling import serve_in_process
    emu, server, thread = serve_in_process(tmp_path / "figs", 0.01)
    try:
        emu.rg("fig-rg")
        body = vmss_body(emu, 2)
        settings = {"protocol": "http", "port": 80, "requestPath": "/", "gracePeriod": 60}
        extension = {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                     "typeHandlerVersion": "2.0", "settings": settings}
        body["properties"]["virtualMachineProfile"]["extensionProfile"] = {
            "extensions": [{"name": "health", "properties": extension}]}
        path = (f"/subscriptions/{emu.subscription_id}/resourceGroups/fig-rg/providers/Microsoft.Compute/"
                "virtualMachineScaleSets/web")
        status, created, _ = emu.arm("PUT", path, body)
        assert status == 201, created
        deadline = time.monotonic() + 20
        healthy = []
        while time.monotonic() < deadline and len(healthy) < 2:
            healthy = [e for e in emu.control.call("GET", "events?kind=instance.health")["value"]
                       if e["state"] == "Healthy"]
            time.sleep(0.1)
        assert len(healthy) == 2 and healthy[0]["resource_id"] == created["id"]
        status, answer, _ = emu.arm("POST", path + "/manualupgrade",
                                    {"instanceIds": [healthy[0]["instance_id"]]})
        assert status == 202, answer
        out = json.loads(_run_cli(emu.state_dir))
        sample = out["reaction_latency"]["samples"][-1]
        assert sample["write"] == "VirtualMachineScaleSets_UpdateInstances" and sample["event"] == "instance.health"
        assert 0 <= sample["seconds"] < 20
    finally:
        server.shutdown()
        thread.join(30)


def _run_cli(state_dir):
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        figures.main(["--state-dir", state_dir, "--json"])
    return buffer.getvalue()
