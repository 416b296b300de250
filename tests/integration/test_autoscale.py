# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""autoscale and autoscale_info against the emulator and its autoscale engine (metrics fed through the control
API; time scaled by 0.01, so five realistic minutes take three seconds), and the scale role end to end."""

from __future__ import annotations

import itertools
import subprocess
import time

from conftest import ROOT, arm_writes, last_seq, put_resource_group, require_success

RG = "payments-prod"
CPU = "Percentage CPU"
SCALED_MINUTE = 0.6  # realistic seconds x 0.01


def seed_scale_set(azure, name, capacity, mode="Uniform", vm_profile=None, **properties):
    """A scale set straight through the SDK (faster than the module; the module is not under test here)."""
    body = {"location": "westeurope", "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
            "properties": dict({"orchestrationMode": mode, "upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                      "sku": "server", "version": "latest"}},
                "osProfile": {"computerNamePrefix": name, "adminUsername": "azureuser",
                              "adminPassword": "Sup3r-secret-pw!"},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "ipConfigurations": [{"name": "ipc", "properties": {"primary": True}}]}}]}}},
                **properties)}
    body["properties"]["virtualMachineProfile"].update(vm_profile or {})
    if mode == "Uniform":
        body["properties"]["overprovision"] = False  # instance IDs 0, 1, 2, ... as the test names them
    else:
        body["properties"]["platformFaultDomainCount"] = 1
        body["properties"]["virtualMachineProfile"]["networkProfile"]["networkApiVersion"] = "2020-11-01"
    return azure.client("compute").virtual_machine_scale_sets.begin_create_or_update(RG, name, body).result().id


def seed_rules(out_cooldown="PT5M", in_cooldown="PT10M"):
    return [{"metric_trigger": {"metric_name": CPU, "time_window": "PT5M", "operator": "GreaterThan", "threshold": 70},
             "scale_action": {"direction": "Increase", "value": 2, "cooldown": out_cooldown}},
            {"metric_trigger": {"metric_name": CPU, "time_window": "PT10M", "operator": "LessThan", "threshold": 30},
             "scale_action": {"direction": "Decrease", "value": 1, "cooldown": in_cooldown}}]


def capacity(azure, name):
    return azure.client("compute").virtual_machine_scale_sets.get(RG, name).sku.capacity


def instance_ids(azure, name):
    return sorted((vm.instance_id for vm in azure.client("compute").virtual_machine_scale_set_vms.list(RG, name)), key=int)


def scale_log(control):
    return [entry for entry in control.call("GET", "autoscale-log")["value"] if entry["action"] != "failed"]


def wait_for(what, check, timeout=60.0):
    """Poll ``check`` until it holds (a bound, not a timing assertion: the engine acts on scaled time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("%s never happened" % what)


def test_autoscale_target(emulator, azure, ansible, control):
    """Check mode, diff, idempotency in other spellings, the rollout's minimal suspend call, masked webhooks, the
    info module's shapes, bad input refused before any write (targets/autoscale)."""
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    vmss_id = seed_scale_set(azure, "api", 2)
    seed_scale_set(azure, "batch", 1)
    require_success(ansible.playbook("autoscale", {
        "rg": RG, "vmss_name": "api", "vmss_id": vmss_id, "other_vmss_name": "batch", "traffic_start": last_seq(control)},
        forked_modules=True))


def test_cpu_scales_out_by_two_then_in_by_one_and_never_removes_protected_instances(emulator, azure, ansible, control):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    # OldestVM: without protection, a scale-in would remove instances 0 and 1 first.
    vmss_id = seed_scale_set(azure, "api", 3, scaleInPolicy={"rules": ["OldestVM"]})
    code, protected = ansible.module("scale_set_instance", {
        "resource_group": RG, "name": "api", "instance_ids": ["0", "1"], "action": "protect",
        "protect_from_scale_in": True, "wait_sleep": 0.2})
    assert code == 0 and protected["summary"] == {"succeeded": 2}, protected
    code, result = ansible.module("autoscale", {"resource_group": RG, "scale_set": "api", "profiles": [
        {"name": "default", "capacity": {"minimum": 3, "maximum": 30, "default": 3}, "rules": seed_rules()}]})
    assert code == 0 and result["changed"], result
    assert not result.get("warnings"), result

    control.call("POST", "metrics", {"resource_id": vmss_id, "metric": CPU, "value": 85})
    wait_for("a scale-out to 5", lambda: capacity(azure, "api") >= 5)
    # One scale-out per PT5M cooldown (3 s) while the CPU stays high: how many came before the low CPU below is fed
    # is this client's pace, so every step is judged, not their count.
    control.call("POST", "metrics", {"resource_id": vmss_id, "metric": CPU, "value": 20})
    wait_for("scale-ins down to the minimum", lambda: capacity(azure, "api") == 3, timeout=90)
    wait_for("the removed instances gone", lambda: len(instance_ids(azure, "api")) == 3)
    log = scale_log(control)
    outs = list(itertools.takewhile(lambda entry: entry["action"] == "scale-out", log))
    steps = [(entry["action"], entry["old_capacity"], entry["new_capacity"]) for entry in log]
    top = 3 + 2 * len(outs)
    assert outs and steps == [("scale-out", 3 + 2 * i, 5 + 2 * i) for i in range(len(outs))] + [
        ("scale-in", n, n - 1) for n in range(top, 3, -1)], steps
    assert outs[0]["metric_value"] == 85 and all(entry["metric_value"] > 70 and entry["rule"] == 0 for entry in outs)
    assert all(later["ts"] - earlier["ts"] >= 5 * SCALED_MINUTE * 0.95 for earlier, later in zip(outs, outs[1:]))
    scale_ins = log[len(outs):]
    # each scale-in waited for the PT10M window of low CPU and the PT10M cooldown since the action before it
    assert all(later["ts"] - earlier["ts"] >= 10 * SCALED_MINUTE * 0.95 for earlier, later in zip(log, scale_ins))
    assert all(entry["metric_value"] < 30 for entry in scale_ins)
    # the oldest unprotected instances went (2, 3, ...); the protected 0 and 1 stayed, with the newest
    assert instance_ids(azure, "api") == ["0", "1", str(top - 1)]


def test_forecast_only_stores_the_policy_and_never_acts_enabled_does(emulator, azure, ansible, control):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    vmss_id = seed_scale_set(azure, "api", 2)
    rules = seed_rules()[:1]
    code, result = ansible.module("autoscale", {"resource_group": RG, "scale_set": "api", "profiles": [
        {"name": "default", "capacity": {"minimum": 1, "maximum": 10, "default": 1}, "rules": rules}],
        "predictive_autoscale_policy": {"scale_mode": "ForecastOnly", "scale_look_ahead_time": "PT10M"}})
    assert code == 0, result
    code, found = ansible.module("autoscale_info", {"resource_group": RG, "scale_set": "api"})
    assert found["autoscale_settings"][0]["predictive_autoscale_policy"] == {
        "scale_mode": "ForecastOnly", "scale_look_ahead_time": "PT10M"}

    def rising():
        """CPU climbing from 30% to 60% over the last five minutes: the trend crosses 70% within ten."""
        now = time.time()
        control.call("POST", "metrics", [{"resource_id": vmss_id, "metric": CPU, "value": 30 + 30 * i / 9,
                                          "timestamp": now - 5 * SCALED_MINUTE * (1 - i / 9)} for i in range(10)])

    rising()
    time.sleep(3 * SCALED_MINUTE)  # three evaluations
    assert capacity(azure, "api") == 2 and scale_log(control) == []

    # the rollout-style minimal call, on the policy only
    since = last_seq(control)
    code, result = ansible.module("autoscale", {"resource_group": RG, "scale_set": "api",
                                                "predictive_autoscale_policy": {"scale_mode": "Enabled"}})
    assert code == 0 and result["changes"] == ["predictive_autoscale_policy.scale_mode"], result
    [put] = arm_writes(control, since)
    body = put["liveRequest"]["body"]["properties"]
    assert body["predictiveAutoscalePolicy"] == {"scaleMode": "Enabled", "scaleLookAheadTime": "PT10M"}
    assert body["profiles"][0]["rules"][0]["metricTrigger"]["threshold"] == 70
    rising()
    wait_for("a predictive scale-out by 2", lambda: capacity(azure, "api") == 4)
    assert scale_log(control)[-1]["reason"].startswith("predictive scale out")


def scale_playbook(ansible_env, extra_vars):
    import json  # pylint: disable=import-outside-toplevel

    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "scale.yml"), "-e", json.dumps(extra_vars)],
                          env=ansible_env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_scale_playbook_applies_the_seed_example_protects_and_warns_then_refuses(emulator, azure, ansible_env, control):
    """playbooks/scale.yml (the scale role) on a Uniform scale set: the seed example's autoscale setting, instance 0
    protected from scale-in, a manual capacity with the autoscale-override warning, everything reported; then the
    same run with scale_refuse_capacity_under_autoscale fails before writing anything."""
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    seed_scale_set(azure, "api", 3)
    role_vars = {"scale_resource_group": RG, "scale_scale_set": "api", "scale_protect_instances": ["0"],
                 "scale_manual_capacity": 4, "scale_predictive_mode": "ForecastOnly", "scale_wait_sleep": 0.2}

    first = scale_playbook(ansible_env, role_vars)
    require_success(first)
    out = " ".join(first.stdout.split())
    assert ("WARNING: Autoscale setting api-autoscale is enabled on scale set payments-prod/api and will change the "
            "capacity you set (4)") in out
    assert ("payments-prod/api (Uniform): capacity 4, 4 of 4 instances provisioned; protected from scale-in: 0; "
            "priority mix: none") in out
    assert ("Autoscale api-autoscale: enabled, predictive ForecastOnly; profiles: default 3-30 (default 3), 2 rule(s)"
            in out)
    setting = azure.client("monitor").autoscale_settings.get(RG, "api-autoscale")
    [profile] = setting.profiles
    assert (profile.capacity.minimum, profile.capacity.maximum, profile.capacity.default) == ("3", "30", "3")
    assert [(r.metric_trigger.operator, r.metric_trigger.threshold, r.metric_trigger.time_window.total_seconds(),
             r.scale_action.direction, r.scale_action.value, r.scale_action.cooldown.total_seconds())
            for r in profile.rules] == [("GreaterThan", 70, 300, "Increase", "2", 300),
                                        ("LessThan", 30, 600, "Decrease", "1", 600)]
    assert setting.enabled and setting.predictive_autoscale_policy.scale_mode == "ForecastOnly"
    vms = {vm.instance_id: vm for vm in azure.client("compute").virtual_machine_scale_set_vms.list(RG, "api")}
    assert vms["0"].properties.protection_policy.protect_from_scale_in is True
    assert capacity(azure, "api") == 4

    since = last_seq(control)
    refused = scale_playbook(ansible_env, dict(role_vars, scale_manual_capacity=6,
                                               scale_refuse_capacity_under_autoscale=True))
    assert refused.returncode != 0
    assert "scale_refuse_capacity_under_autoscale is true, so nothing was changed" in refused.stdout
    assert arm_writes(control, since) == []
    assert capacity(azure, "api") == 4


def test_scale_playbook_sets_a_spot_priority_mix_on_a_flexible_scale_set(emulator, azure, ansible_env):
    put_resource_group(azure, RG, emulator["FLEETOPS_EMULATOR_LOCATION"])
    seed_scale_set(azure, "workers", 2, mode="Flexible", vm_profile={"priority": "Spot", "evictionPolicy": "Delete",
                                                                     "billingProfile": {"maxPrice": -1}})
    spot = azure.client("compute").virtual_machine_scale_sets.get(RG, "workers")
    done = scale_playbook(ansible_env, {"scale_resource_group": RG, "scale_scale_set": "workers", "scale_autoscale": False,
                                        "scale_priority_mix": {"base_regular_priority_count": 1,
                                                               "regular_priority_percentage_above_base": 50},
                                        "scale_wait_sleep": 0.2})
    require_success(done)
    mix = azure.client("compute").virtual_machine_scale_sets.get(RG, "workers").properties.priority_mix_policy
    assert (mix.base_regular_priority_count, mix.regular_priority_percentage_above_base) == (1, 50)
    assert spot.properties.priority_mix_policy is None
    assert "priority mix: {'base_regular_priority_count': 1, 'regular_priority_percentage_above_base': 50}" in \
        " ".join(done.stdout.split())
    assert list(azure.client("monitor").autoscale_settings.list_by_resource_group(RG)) == []  # scale_autoscale: false
