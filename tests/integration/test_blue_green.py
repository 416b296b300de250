# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""blue_green against the emulator: the swap seen on the load balancer's backend pool, a green that never
turns Healthy, a rollback, an interrupted swap resumed, autoscale following the live set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import arm_put, arm_writes, last_seq, put_resource_group, seed_network

RG = "shop"
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
NETWORK_API = "2024-05-01"
FAST = {"wait_sleep": 0.05, "health_timeout": 60, "wait_timeout": 300}


def seed(emulator, azure, capacity=2, autoscale=False, mode="Uniform", image=None, password=None):
    """A vnet, a load balancer with a pool, and blue (Application Health, image 1.0.0, or ``image``) in the pool;
    signing in with an SSH key, or with ``password`` only."""
    location = emulator["FLEETOPS_EMULATOR_LOCATION"]
    put_resource_group(azure, RG, location)
    net = seed_network(azure, RG, location)
    os_profile = {"computerNamePrefix": "shop", "adminUsername": "azureuser",
                  "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [{
                      "path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAAC3Nz shop"}]}}}
    if password:
        os_profile.update(adminPassword=password, linuxConfiguration={"disablePasswordAuthentication": False})
    vm = {"storageProfile": {"imageReference": image or dict(IMAGE, version="1.0.0")},
          "osProfile": os_profile,
          "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
              "primary": True, "ipConfigurations": [{"name": "ipc", "properties": {
                  "primary": True, "subnet": {"id": net["subnet_id"]},
                  "loadBalancerBackendAddressPools": [{"id": net["pool_id"]}]}}]}}]},
          "extensionProfile": {"extensions": [{"name": "health", "properties": {
              "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
              "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"}}}]}}
    body = {"location": location, "tags": {"team": "shop"}, "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
            "properties": {"orchestrationMode": mode, "upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": vm}}
    if mode == "Uniform":
        body["properties"]["overprovision"] = False
    else:
        body["properties"]["platformFaultDomainCount"] = 1
        vm["networkProfile"]["networkApiVersion"] = "2020-11-01"
    azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(RG, "shop-blue", body).result()
    if autoscale:
        arm_put(azure, "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/autoscalesettings/%s"
                % (azure.subscription_id, RG, "shop-blue-scale"), {"location": location, "properties": {
                    "enabled": True, "targetResourceUri": vmss_id(azure, "shop-blue"), "profiles": [{
                        "name": "default", "capacity": {"minimum": "1", "maximum": "5", "default": str(capacity)},
                        "rules": [{"metricTrigger": {
                            "metricName": "Percentage CPU", "metricResourceUri": vmss_id(azure, "shop-blue"),
                            "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT1M",
                            "timeAggregation": "Average", "operator": "GreaterThan", "threshold": 70},
                            "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1",
                                            "cooldown": "PT1M"}}]}]}}, "2022-10-01")
    return net


def vmss_id(azure, name):
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s"
            % (azure.subscription_id, RG, name))


def member_ids(azure, net):
    """The NIC IP configuration ids the load balancer lists in the pool."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = azure.client("compute").send_request(HttpRequest(
        "GET", "%s?api-version=%s" % (net["pool_id"], NETWORK_API)))
    response.raise_for_status()
    return sorted(item["id"] for item in response.json()["properties"].get("backendIPConfigurations") or [])


def pool_members(azure, net):
    """{scale set name: [instance ids]} the load balancer lists in the pool (Uniform NIC ids name both)."""
    out = {}
    for member in member_ids(azure, net):
        parts = member.split("/")
        name = parts[parts.index("virtualMachineScaleSets") + 1]
        out.setdefault(name, []).append(parts[parts.index("virtualMachines") + 1])
    return {name: sorted(ids) for name, ids in out.items()}


def scale_set(azure, name):
    found = [s for s in azure.client("compute").virtual_machine_scale_sets.list(RG) if s.name == name]
    return found[0].as_dict() if found else None


def instance_ids(azure, name):
    return sorted(vm.instance_id for vm in azure.client("compute").virtual_machine_scale_set_vms.list(RG, name))


def model_pools(doc):
    nic = doc["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    return [ref["id"] for ref in nic["properties"]["ipConfigurations"][0]["properties"].get(
        "loadBalancerBackendAddressPools") or []]


def writes_to(control, since, name):
    return [e for e in arm_writes(control, since) if "/virtualMachineScaleSets/%s" % name in e["liveRequest"]["url"]]


def test_clean_swap_then_finalize(emulator, azure, ansible, control, tmp_path):
    net = seed(emulator, azure)
    base = dict(FAST, resource_group=RG, name="shop-blue", image=dict(IMAGE, version="2.0.0"), blue_capacity=1)

    code, plan = ansible.module("blue_green", base, check=True)
    assert code == 0 and plan["status"] == "planned" and plan["changed"] is True
    assert [b["kind"] for b in plan["plan"]["batches"]] == ["stage", "swap"]
    assert [s["name"] for s in plan["plan"]["batches"][1]["steps"]] == [
        "green_join_model", "green_upgrade", "green_in_pool", "blue_scale_in", "blue_leave_model", "blue_upgrade",
        "blue_out_of_pool"]
    assert scale_set(azure, "shop-green") is None

    since = last_seq(control)
    code, result = ansible.module("blue_green", dict(base, report_path=str(tmp_path / "reports")))
    assert code == 0, result.get("msg")
    assert result["status"] == "succeeded" and result["changed"] is True
    green_ids = instance_ids(azure, "shop-green")
    assert pool_members(azure, net) == {"shop-green": green_ids} and len(green_ids) == 2
    assert [b["kind"] for b in result["batches"]] == ["stage", "swap"]
    assert all(b["outcome"] == "healthy" for b in result["batches"])
    assert result["traffic_on_green_at"] and result["green"]["members"] == 2 and result["blue"]["members"] == 0
    green, blue = scale_set(azure, "shop-green"), scale_set(azure, "shop-blue")
    assert green["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] == "2.0.0"
    assert green["tags"] == {"team": "shop", "fleetops.blue_green.blue": "shop-blue"}
    extensions = green["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert [e["name"] for e in extensions] == ["health"]
    assert model_pools(blue) == [] and blue["sku"]["capacity"] == 1
    assert blue["tags"]["fleetops.blue_green.capacity"] == "2"
    report = result["report"]
    assert sorted(report) == ["json", "markdown", "svg"] and all(os.path.exists(path) for path in report.values())
    assert "![timeline](" in Path(report["markdown"]).read_text()
    [create] = [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PUT"]
    assert create["liveRequest"]["headers"].get("If-None-Match") == "*"

    since = last_seq(control)
    code, again = ansible.module("blue_green", base)
    assert code == 0 and again["status"] == "nothing_to_do" and again["changed"] is False and again["batches"] == []
    assert arm_writes(control, since) == []

    code, final = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue", state="finalized"))
    assert code == 0 and final["status"] == "succeeded", final.get("msg")
    assert scale_set(azure, "shop-blue") is None and pool_members(azure, net) == {"shop-green": green_ids}


def test_unhealthy_green_is_removed_and_blue_untouched(emulator, azure, ansible, control):
    net = seed(emulator, azure)
    before = pool_members(azure, net)
    since = last_seq(control)
    code, refused = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue",
                                                      image=dict(IMAGE, version="2.0.0"), soak=-1))
    assert code != 0 and refused["msg"] == "Invalid options: soak must be 0 or more, not -1."
    code, refused = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue", green_name="shop-blue",
                                                      image=dict(IMAGE, version="2.0.0")))
    assert code != 0 and refused["msg"] == "Invalid blue/green of scale set shop/shop-blue: green_name must differ from name."
    assert arm_writes(control, since) == []       # refused before any write

    control.call("POST", "health-rules", {"match": {"image_version": "2.0.0"}, "state": "Unhealthy"})

    code, result = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue",
                                                     image=dict(IMAGE, version="2.0.0")))

    assert code != 0 and result["status"] == "rolled_back" and result["changed"] is True
    assert "skipped" not in result      # Ansible would take the task for skipped and ignore failed_when
    assert result["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert result["msg"] == ("Blue/green of shop/shop-blue halted in phase stage: scale set shop/shop-green: 2 of 2 "
                             "upgraded instances (100%) are unhealthy, more than "
                             "max_unhealthy_upgraded_instance_percent=20; rolled back: blue shop-blue serves, green shop-green "
                             "removed")
    assert [(b["kind"], b["outcome"]) for b in result["batches"]] == [("stage", "unhealthy"), ("rollback", "healthy")]
    assert result["batches"][0]["health"] == {"shop-green/0": "Unhealthy", "shop-green/1": "Unhealthy"}
    assert result["rollback"]["outcome"] == "healthy" and result["rollback"]["instance_ids"] == ["0", "1"]
    assert scale_set(azure, "shop-green") is None
    # blue untouched: only the lease taken and released (tags only), its tags as they were
    assert [set(e["liveRequest"]["body"]) for e in writes_to(control, since, "shop-blue")] == [{"tags"}, {"tags"}]
    assert "fleetops.lease" not in (scale_set(azure, "shop-blue").get("tags") or {})
    assert pool_members(azure, net) == before


def test_rollback_after_swap_restores_blue(emulator, azure, ansible, control):
    net = seed(emulator, azure, capacity=3)
    base = dict(FAST, resource_group=RG, name="shop-blue")
    code, result = ansible.module("blue_green", dict(base, image=dict(IMAGE, version="2.0.0"), capacity=2,
                                                     blue_capacity=1, deallocate_blue=True))
    assert code == 0, result.get("msg")
    assert pool_members(azure, net) == {"shop-green": instance_ids(azure, "shop-green")}
    assert result["blue"] == {"name": "shop-blue", "exists": True, "capacity": 1, "instances": 1, "members": 0,
                              "in_model": False, "deallocated": 1, "original_capacity": 3}

    code, back = ansible.module("blue_green", dict(base, state="rolled_back"))

    assert code == 0, back.get("msg")
    assert back["status"] == "rolled_back" and [b["kind"] for b in back["batches"]] == ["rollback"]
    assert [s["name"] for s in back["batches"][0]["steps"]] == [
        "blue_start", "blue_join_model", "blue_scale_out", "blue_rejoin", "blue_in_pool", "delete_green"]
    blue = scale_set(azure, "shop-blue")
    assert blue["sku"]["capacity"] == 3 and "fleetops.blue_green.capacity" not in blue["tags"]
    assert model_pools(blue) == [net["pool_id"]] and scale_set(azure, "shop-green") is None
    assert pool_members(azure, net) == {"shop-blue": instance_ids(azure, "shop-blue")}
    assert len(instance_ids(azure, "shop-blue")) == 3
    assert all(state == "Healthy" for state in back["batches"][0]["health"].values())

    since = last_seq(control)
    code, again = ansible.module("blue_green", dict(base, state="rolled_back"))
    assert code == 0 and again["status"] == "nothing_to_do" and arm_writes(control, since) == []


def test_autoscale_follows_the_live_set(emulator, azure, ansible, control):
    seed(emulator, azure, autoscale=True)
    code, result = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue",
                                                     image=dict(IMAGE, version="2.0.0")))
    assert code == 0, result.get("msg")
    settings = {s["name"]: s for s in result["autoscale"]}
    assert settings == {
        "shop-blue-scale": {"name": "shop-blue-scale", "resource_group": RG, "target": vmss_id(azure, "shop-blue"),
                            "enabled": False},
        "shop-green-scale": {"name": "shop-green-scale", "resource_group": RG, "target": vmss_id(azure, "shop-green"),
                             "enabled": True}}
    monitor = azure.client("monitor")
    copy = monitor.autoscale_settings.get(RG, "shop-green-scale")
    assert copy.profiles[0].rules[0].metric_trigger.metric_resource_uri == vmss_id(azure, "shop-green")

    # the engine now scales green on green's metrics, and leaves blue alone
    for name in ("shop-blue", "shop-green"):
        control.call("POST", "metrics", {"resource_id": vmss_id(azure, name), "metric": "Percentage CPU", "value": 95})
    deadline = time.monotonic() + 30
    while scale_set(azure, "shop-green")["sku"]["capacity"] < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    # one scale-out of 1 per PT1M cooldown (0.6 s here) while the CPU stays high: how many this loop lets pass is its
    # pace, so the steps, the maximum and whose setting acted are judged, not the count
    log = [entry for entry in control.call("GET", "autoscale-log")["value"] if entry["action"] != "failed"]
    assert log and {entry["setting"].rsplit("/", 1)[1] for entry in log} == {"shop-green-scale"}, log
    assert [(entry["old_capacity"], entry["new_capacity"]) for entry in log] == [(2 + i, 3 + i) for i in range(len(log))]
    assert 3 <= scale_set(azure, "shop-green")["sku"]["capacity"] <= 5
    assert scale_set(azure, "shop-blue")["sku"]["capacity"] == 2

    code, back = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue", state="rolled_back"))
    assert code == 0, back.get("msg")
    assert [(s["name"], s["enabled"]) for s in back["autoscale"]] == [("shop-blue-scale", True)]


def kill_tree(pid):
    """SIGKILL a process and every descendant (Ansible's worker calls setsid, so a process group is not enough)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    for member in reversed(tree):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_module(ansible, name, args):
    """``ansible localhost -m``, not waited for."""
    command = ["ansible", "localhost", "-m", "fleetops.vmss.%s" % name, "-a", json.dumps(args)]
    return subprocess.Popen(command, env=ansible.env, cwd=ansible.workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_interrupted_swap_resumes(emulator, azure, ansible, control):
    net = seed(emulator, azure)
    args = dict(FAST, resource_group=RG, name="shop-blue", image=dict(IMAGE, version="2.0.0"))
    since = last_seq(control)
    process = start_module(ansible, "blue_green", args)
    try:
        deadline = time.monotonic() + 120
        while not [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PATCH"]:
            assert process.poll() is None and time.monotonic() < deadline, "the swap never joined green to the pool"
            time.sleep(0.05)
    finally:
        kill_tree(process.pid)   # the run dies right after green's model joined the pool
        process.wait()
    assert pool_members(azure, net)["shop-blue"] == ["0", "1"]     # mid-way: blue still serves

    code, result = ansible.module("blue_green", args)

    assert code == 0, result.get("msg")
    assert result["status"] == "succeeded"
    steps = [step["name"] for batch in result["batches"] for step in batch["steps"]]
    assert "create_green" not in steps and "green_join_model" not in steps and "blue_leave_model" in steps
    assert pool_members(azure, net) == {"shop-green": instance_ids(azure, "shop-green")}
    creates = [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PUT"]
    patches = [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PATCH"
               and set(e["liveRequest"]["body"]) != {"tags"}]   # not the lease's (tags only)
    assert len(creates) == 1 and len(patches) == 1


def flexible_nics(azure, name):
    """The NIC IP configuration ids of a Flexible set's VMs (their own NICs, in the resource group)."""
    return sorted(nic["id"] + "/ipConfigurations/ipc" for vm in azure.client("compute").virtual_machines.list(RG)
                  if vm.as_dict()["properties"]["virtualMachineScaleSet"]["id"].lower() == vmss_id(azure, name).lower()
                  for nic in vm.as_dict()["properties"]["networkProfile"]["networkInterfaces"])


def test_flexible_swap_and_rollback(emulator, azure, ansible):
    net = seed(emulator, azure, mode="Flexible")
    base = dict(FAST, resource_group=RG, name="shop-blue")
    code, result = ansible.module("blue_green", dict(base, image=dict(IMAGE, version="2.0.0")))
    assert code == 0, result.get("msg")
    # Flexible VMs are in the pool by their own NICs (networkInterfaces/<vm>-nic of the resource group)
    assert (result["green"]["members"], result["green"]["instances"], result["blue"]["members"]) == (2, 2, 0)
    assert result["orchestration_mode"] == "Flexible"
    assert member_ids(azure, net) == flexible_nics(azure, "shop-green") and len(member_ids(azure, net)) == 2

    code, back = ansible.module("blue_green", dict(base, state="rolled_back"))
    assert code == 0, back.get("msg")
    assert (back["blue"]["members"], back["blue"]["instances"], back["green"]["exists"]) == (2, 2, False)
    assert member_ids(azure, net) == flexible_nics(azure, "shop-blue") and len(member_ids(azure, net)) == 2


def autoscale_enabled(azure):
    """{setting name: (target scale set, enabled)} of the resource group's autoscale settings."""
    return {s.name: (s.target_resource_uri.rsplit("/", 1)[-1], s.enabled)
            for s in azure.client("monitor").autoscale_settings.list_by_resource_group(RG)}


def test_a_second_rollout_in_the_rollback_window_is_refused_until_the_cycle_ends(emulator, azure, ansible, control):
    net = seed(emulator, azure, capacity=3, autoscale=True)
    code, first = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue",
                                                    image=dict(IMAGE, version="2.0.0"), blue_capacity=1))
    assert code == 0, first.get("msg")
    serving = instance_ids(azure, "shop-green")
    assert pool_members(azure, net) == {"shop-green": serving} and len(serving) == 3

    # shop-green serves; a rollout of it would take shop-blue (1.0.0, scaled to 1 for its rollback window) as green
    since = last_seq(control)
    second = dict(FAST, resource_group=RG, name="shop-green", image=dict(IMAGE, version="1.0.0"))
    code, refused = ansible.module("blue_green", second)
    assert code != 0, refused
    assert ("scale set shop-blue is the blue of the previous blue/green cycle, waiting in its rollback window "
            "(shop-green serves as its green): end that cycle first") in refused["msg"], refused.get("msg")
    assert arm_writes(control, since) == []
    assert pool_members(azure, net) == {"shop-green": serving}
    assert autoscale_enabled(azure) == {"shop-blue-scale": ("shop-blue", False), "shop-green-scale": ("shop-green", True)}

    # the cycle finalized: blue deleted, green's tag naming it removed - shop-green is just the set that serves
    code, final = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue", state="finalized"))
    assert code == 0, final.get("msg")
    assert [s["name"] for b in final["batches"] for s in b["steps"]] == [
        "delete_blue_autoscale", "delete_blue", "green_clear_tag"]
    assert scale_set(azure, "shop-green")["tags"] == {"team": "shop"}

    # now the new cycle: green (shop-blue) staged at 1 instance, grown to the 3 serving before it joins
    code, result = ansible.module("blue_green", dict(second, capacity=1))
    assert code == 0, result.get("msg")
    steps = [s["name"] for b in result["batches"] for s in b["steps"]]
    assert steps.index("green_scale_out") < steps.index("green_join_model")
    assert pool_members(azure, net) == {"shop-blue": instance_ids(azure, "shop-blue")}
    assert len(instance_ids(azure, "shop-blue")) == 3 and scale_set(azure, "shop-blue")["sku"]["capacity"] == 3
    assert scale_set(azure, "shop-blue")["tags"] == {"team": "shop", "fleetops.blue_green.blue": "shop-green"}
    assert autoscale_enabled(azure) == {"shop-green-scale": ("shop-green", False), "shop-blue-scale": ("shop-blue", True)}

    # rolled back: shop-green serves again at 3, its autoscale on; shop-blue and its copy gone
    code, back = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-green", state="rolled_back"))
    assert code == 0, back.get("msg")
    assert pool_members(azure, net) == {"shop-green": instance_ids(azure, "shop-green")}
    assert len(instance_ids(azure, "shop-green")) == 3 and scale_set(azure, "shop-blue") is None
    assert autoscale_enabled(azure) == {"shop-green-scale": ("shop-green", True)}
    assert scale_set(azure, "shop-green")["tags"] == {"team": "shop"}


def test_green_needs_blue_s_password_and_secrets_go_only_with_its_creation(emulator, azure, ansible, control):
    net = seed(emulator, azure, password="Blue-Pass-0001!")
    base = dict(FAST, resource_group=RG, name="shop-blue", image=dict(IMAGE, version="2.0.0"))
    since = last_seq(control)
    code, refused = ansible.module("blue_green", base)
    assert code != 0 and "give admin_password for green" in refused["msg"], refused.get("msg")
    assert arm_writes(control, since) == []

    secret, script = "Green-Pass-0002!", "#cloud-config\nruncmd: [echo shop]"
    code, staged = ansible.module("blue_green", dict(base, state="staged", admin_password=secret, custom_data=script))
    assert code == 0 and staged["status"] == "succeeded", staged.get("msg")
    [create] = [e for e in writes_to(control, since, "shop-green") if e["liveRequest"]["method"] == "PUT"]
    os_profile = create["liveRequest"]["body"]["properties"]["virtualMachineProfile"]["osProfile"]
    # both sent with green's creation (the emulator's traffic log redacts their values)
    assert (os_profile["adminPassword"], os_profile["customData"]) == ("<redacted>", "<redacted>")
    assert secret not in json.dumps(staged) and "runcmd" not in json.dumps(staged)

    # given again while green exists: refused with the way forward, nothing written
    since = last_seq(control)
    code, again = ansible.module("blue_green", dict(base, admin_password=secret))
    assert code != 0 and "admin_password given, but green shop-green exists" in again["msg"], again.get("msg")
    assert "roll back (state=rolled_back: deletes green)" in again["msg"] and secret not in json.dumps(again)
    assert arm_writes(control, since) == []

    code, live = ansible.module("blue_green", base)
    assert code == 0 and live["status"] == "succeeded", live.get("msg")
    assert pool_members(azure, net) == {"shop-green": instance_ids(azure, "shop-green")}


def test_autoscale_stays_on_the_serving_set_after_a_failed_swap(emulator, azure, ansible, control):
    net = seed(emulator, azure, autoscale=True)
    base = dict(FAST, resource_group=RG, name="shop-blue", image=dict(IMAGE, version="2.0.0"))
    code, staged = ansible.module("blue_green", dict(base, state="staged"))
    assert code == 0, staged.get("msg")
    assert autoscale_enabled(azure) == {"shop-blue-scale": ("shop-blue", True)}

    # green turns Unhealthy once in the pools: the swap rolls back, blue serves and still scales
    control.call("POST", "health-rules", {"match": {"image_version": "2.0.0"}, "state": "Unhealthy"})
    code, failed = ansible.module("blue_green", base)

    assert code != 0 and failed["status"] == "rolled_back", failed.get("msg")
    assert "; rolled back: blue shop-blue serves, green shop-green removed" in failed["msg"]
    assert pool_members(azure, net) == {"shop-blue": instance_ids(azure, "shop-blue")}
    assert autoscale_enabled(azure) == {"shop-blue-scale": ("shop-blue", True)}


def test_green_failing_its_metric_gate_is_a_failed_swap_and_blue_serves_on(emulator, azure, ansible, control):
    """Green Healthy by its probe but at 9x blue's CPU (scripted on green's scale set): judged against blue while
    both serve, after green is Healthy in the pools, the swap fails (MetricGateFailed) and rolls back."""
    net = seed(emulator, azure)
    before = pool_members(azure, net)
    control.call("POST", "metric-scripts", {"resource_id": vmss_id(azure, "shop-green"), "metric": "Percentage CPU",
                                            "scale_set": vmss_id(azure, "shop-green"), "values": {"2.0.0": 90}})
    gate = {"metric": "Percentage CPU", "max_ratio_to_baseline": 3, "window": 120, "min_samples": 2}
    since = last_seq(control)

    code, result = ansible.module("blue_green", dict(FAST, resource_group=RG, name="shop-blue", blue_capacity=1,
                                                     image=dict(IMAGE, version="2.0.0"), metric_gates=[gate]))

    assert code != 0 and result["status"] == "rolled_back", result.get("msg")
    assert (result["halt"]["code"], result["halt"]["phase"]) == ("MetricGateFailed", "swap")
    assert "90 is 9x the baseline 10" in result["halt"]["reason"]
    swap = [b for b in result["batches"] if b["kind"] == "swap"][0]
    [verdict] = swap["metrics"]
    assert verdict["state"] == "failed" and verdict["value"] == 90 and verdict["baseline"] == 10
    assert verdict["samples"] >= 2 and verdict["baseline_samples"] >= 2
    # judged before blue was touched: blue serves as before, green removed
    assert pool_members(azure, net) == before and scale_set(azure, "shop-green") is None
    assert scale_set(azure, "shop-blue")["sku"]["capacity"] == 2
    # one metrics read per scale set per look (green's and blue's), every wait_sleep until judged
    reads = [e for e in control.traffic(since=since) if "/providers/Microsoft.Insights/metrics" in e["liveRequest"]["url"]]
    assert reads and len(reads) % 2 == 0
    assert {e["liveRequest"]["url"].split("/virtualMachineScaleSets/")[1].split("/")[0] for e in reads} == {
        "shop-blue", "shop-green"}
