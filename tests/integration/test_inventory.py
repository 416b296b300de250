# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleetops.vmss.instances inventory plugin through ansible-inventory, against the emulator."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import yaml

from conftest import ROOT, arm_put, last_seq, put_resource_group, seed_network

RG = "fleet-inv"
HEALTH_EXTENSION = {"name": "health", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
    "autoUpgradeMinorVersion": True, "settings": {"protocol": "http", "port": 80, "requestPath": "/ready"}}}


def scale_set_body(location, capacity, subnet_id, mode, prefix, zones=None):
    vm_profile = {
        "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                              "sku": "server", "version": "24.04.202501010"}},
        "osProfile": {"computerNamePrefix": prefix, "adminUsername": "azureuser", "adminPassword": "Sup3r-secret!"},
        "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
            "primary": True, "ipConfigurations": [{"name": "ip", "properties": {
                "primary": True, "subnet": {"id": subnet_id}}}]}}]},
        "extensionProfile": {"extensions": [HEALTH_EXTENSION]},
    }
    body = {"location": location, "tags": {"team": "payments", "tier": prefix},
            "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
            "properties": {"orchestrationMode": mode, "upgradePolicy": {"mode": "Manual"},
                           "virtualMachineProfile": vm_profile}}
    if mode == "Flexible":
        vm_profile["networkProfile"]["networkApiVersion"] = "2020-11-01"
        body["properties"]["platformFaultDomainCount"] = 1
    else:
        body["properties"]["overprovision"] = False  # instance ids 0, 1, 2: the health rule names 0
    if zones:
        body["zones"] = zones
    return body


def seed_fleet(azure, location, control):
    """A Uniform set of 3 over two zones (instance 0 Unhealthy) and a Flexible set of 2, on one subnet."""
    put_resource_group(azure, RG, location)
    subnet_id = seed_network(azure, RG, location)["subnet_id"]
    control.add_health_rule(match={"scale_set": "web", "instance_ids": ["0"]}, state="Unhealthy")
    compute = azure.client("compute")
    create = compute.virtual_machine_scale_sets.begin_create_or_update
    pollers = [create(RG, "web", scale_set_body(location, 3, subnet_id, "Uniform", "web", zones=["1", "2"])),
               create(RG, "flex", scale_set_body(location, 2, subnet_id, "Flexible", "flex"))]
    for poller in pollers:
        poller.result()
    # Health comes once each instance's grace period has passed (scaled: a fraction of a second).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [(vm.instance_view.vm_health.status.code if vm.instance_view and vm.instance_view.vm_health else None)
                  for vm in compute.virtual_machine_scale_set_vms.list(RG, "web", expand="instanceView")]
        if None not in states and not any(code.endswith("initializing") for code in states):
            break
        time.sleep(0.2)


def private_ips_from_azure(azure):
    """{VM id: private IP} as the network API reports it (the plugin's answer is checked against it)."""
    network = azure.client("network")
    nics = list(network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(RG, "web")) + list(
        network.network_interfaces.list(RG))
    return {nic.virtual_machine.id.lower(): nic.ip_configurations[0].private_ip_address for nic in nics}


def run_inventory(ansible_env, config_path, *extra, env=None):
    env = dict(ansible_env, ANSIBLE_INVENTORY_UNPARSED_FAILED="true", ANSIBLE_INVENTORY_ENABLED="auto", **(env or {}))
    return subprocess.run(["ansible-inventory", "-i", str(config_path), "--list", *extra], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def inventory(ansible_env, config_path, *extra, env=None):
    completed = run_inventory(ansible_env, config_path, *extra, env=env)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return plain(json.loads(completed.stdout)), completed.stderr


def plain(value):
    """ansible-inventory's JSON without its markers of untrusted strings ({"__ansible_unsafe": "..."}): data
    read from Azure is never templated, which is what the markers say."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def arm_reads(control, since):
    return sorted(entry["operation_id"] or entry["liveRequest"]["url"] for entry in control.traffic(since)
                  if "/subscriptions/" in entry["liveRequest"]["url"])


def members(listing, group):
    return sorted(listing.get(group, {}).get("hosts", []))


def test_inventory_of_uniform_and_flexible_sets_with_groups_compose_and_cache(
        emulator, azure, control, ansible_env, tmp_path):
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"], control)
    config = tmp_path / "fleet.vmss.yml"
    config.write_text(yaml.safe_dump({
        "plugin": "fleetops.vmss.instances",
        "scale_sets": [{"resource_group": RG}, {"resource_group": RG, "name": "web"},
                       {"resource_group": RG, "name": "gone"}],
        "hostname": "name",
        "keyed_groups": [{"key": "scale_set", "prefix": "vmss"},
                         {"key": "zone", "prefix": "zone", "default_value": "none"},
                         {"key": "health_state | lower", "prefix": "health"},
                         {"key": "orchestration_mode", "prefix": "mode"}],
        "groups": {"payments": "tags.team == 'payments'", "stale": "not latest_model_applied"},
        "compose": {"ansible_user": "'azureuser'", "tier": "tags.tier", "rack": "'fd' ~ fault_domain"},
        "cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 3600,
    }))
    since = last_seq(control)

    listing, stderr = inventory(ansible_env, config)

    # One read per scale set source, then one paged list of instances and one of NICs per set (Flexible NICs:
    # one list for the group), and nothing else.
    assert arm_reads(control, since) == sorted([
        "VirtualMachineScaleSets_List", "VirtualMachineScaleSets_Get", "VirtualMachineScaleSets_Get",
        "VirtualMachineScaleSetVMs_List", "NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces",
        "VirtualMachines_List", "NetworkInterfaces_List"])
    assert "scale set %s/gone was not found" % RG in stderr

    hostvars = listing["_meta"]["hostvars"]
    web = sorted(name for name, hv in hostvars.items() if hv["scale_set"] == "web")
    flex = sorted(name for name, hv in hostvars.items() if hv["scale_set"] == "flex")
    assert web == ["web_0", "web_1", "web_2"] and len(flex) == 2 and len(hostvars) == 5
    ips = private_ips_from_azure(azure)
    for name, hv in hostvars.items():
        assert hv["private_ip"] == ips[hv["id"].lower()] == hv["ansible_host"], name
        assert ipaddress.ip_address(hv["private_ip"]) in ipaddress.ip_network("10.1.0.0/16")
        assert (hv["power_state"], hv["provisioning_state"], hv["resource_group"]) == ("running", "Succeeded", RG)
        assert hv["image_version"] == "24.04.202501010" and hv["latest_model_applied"] is True
        # vm_name and azure_tags: name and tags are reserved in ansible-core 2.19 (compose still says tags.tier)
        assert "name" not in hv and "tags" not in hv and hv["vm_name"] == name
        assert hv["azure_tags"] == {"team": "payments", "tier": hv["scale_set"]} and hv["tier"] == hv["scale_set"]
        assert hv["ansible_user"] == "azureuser" and hv["rack"] == "fd%s" % hv["fault_domain"]
        assert isinstance(hv["update_domain"], int) and hv["computer_name"].startswith(hv["scale_set"])
    assert {hostvars[name]["orchestration_mode"] for name in flex} == {"Flexible"}
    assert [hostvars[name]["instance_id"] for name in web] == ["0", "1", "2"]
    assert {hostvars[name]["instance_id"] for name in flex} == set(flex)      # Flexible: the VM name

    assert members(listing, "vmss_web") == web and members(listing, "vmss_flex") == flex
    assert members(listing, "mode_Flexible") == flex
    assert members(listing, "health_unhealthy") == ["web_0"]
    assert members(listing, "health_healthy") == sorted(["web_1", "web_2"] + flex)
    assert sorted(members(listing, "zone_1") + members(listing, "zone_2")) == web
    assert members(listing, "zone_none") == flex
    assert members(listing, "payments") == sorted(web + flex) and members(listing, "stale") == []

    # A play over the hosts: no reserved-name warning, and the renamed variables at hand.
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "vmss_web", "gather_facts": False, "tasks": [
        {"ansible.builtin.debug": {"msg": "{{ vm_name }} {{ azure_tags.tier }}"}}]}]))
    played = subprocess.run(["ansible-playbook", "-i", str(config), str(playbook)], env=ansible_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-3000:]
    assert "reserved name" not in played.stdout + played.stderr
    assert '"msg": "web_0 web"' in played.stdout

    # Second run: the same inventory from the cache, and not one request to Azure.
    since = last_seq(control)
    again, _log = inventory(ansible_env, config)
    assert again == listing
    assert arm_reads(control, since) == []

    # --flush-cache reads Azure again (and sees the change: instance 0 is now Healthy).
    control.clear_health_rules()
    since = last_seq(control)
    refreshed, _log = inventory(ansible_env, config, "--flush-cache")
    assert len(arm_reads(control, since)) == 7
    assert refreshed["_meta"]["hostvars"]["web_0"]["health_state"] == "Healthy"


def test_inventory_runs_with_the_operator_role_and_names_a_missing_action(
        emulator, azure, control, ansible_env, tmp_path):
    """docs/fleetops-operator-role.json is enough for the inventory; without the NIC read, the failure says so."""
    seed_fleet(azure, emulator["FLEETOPS_EMULATOR_LOCATION"], control)
    config = tmp_path / "fleet.vmss.yml"
    config.write_text(yaml.safe_dump({"plugin": "fleetops.vmss.instances", "hostname": "private_ip"}))
    actions = json.loads((ROOT / "docs" / "fleetops-operator-role.json").read_text())["Actions"]

    def as_principal(name, role):
        principal = control.call("POST", "principals", {"name": name, "role": role})
        return {"AZURE_CLIENT_ID": principal["client_id"], "AZURE_SECRET": principal["secret"],
                "AZURE_CLIENT_SECRET": principal["secret"]}

    listing, _log = inventory(ansible_env, config, env=as_principal("fleetops-operator", actions))
    assert len(listing["_meta"]["hostvars"]) == 5          # every set of the subscription, named by private IP
    assert all(name.startswith("10.1.") for name in listing["_meta"]["hostvars"])

    nic_read = "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read"
    narrower = [action for action in actions if action != nic_read]
    refused = run_inventory(ansible_env, config, env=as_principal("no-nic-read", narrower))
    assert refused.returncode != 0
    assert ("Failed to list the network interfaces of scale set %s/web: AuthorizationFailed" % RG) in refused.stderr
    assert nic_read in refused.stderr


def seed_nat(azure, location):
    """A public load balancer: an inbound NAT pool (ssh, 50000 + instance id -> 22) for a Uniform set of 3 and an
    inbound NAT rule for a backend pool (ssh-flex, from 50100) for a Flexible set of 2; the public IP's address."""
    put_resource_group(azure, RG, location)
    subnet_id = seed_network(azure, RG, location)["subnet_id"]
    net = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network" % (azure.subscription_id, RG)
    pip = arm_put(azure, net + "/publicIPAddresses/lb-ip", {"location": location, "sku": {"name": "Standard"}},
                  "2024-05-01")
    frontend = {"id": net + "/loadBalancers/edge/frontendIPConfigurations/fe"}
    flex_pool = net + "/loadBalancers/edge/backendAddressPools/flex"
    arm_put(azure, net + "/loadBalancers/edge", {"location": location, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": pip["id"]}}}],
        "backendAddressPools": [{"name": "flex"}],
        "inboundNatPools": [{"name": "ssh", "properties": {
            "frontendIPConfiguration": frontend, "protocol": "Tcp", "frontendPortRangeStart": 50000,
            "frontendPortRangeEnd": 50099, "backendPort": 22}}],
        "inboundNatRules": [{"name": "ssh-flex", "properties": {
            "frontendIPConfiguration": frontend, "backendAddressPool": {"id": flex_pool}, "protocol": "Tcp",
            "frontendPortRangeStart": 50100, "frontendPortRangeEnd": 50199, "backendPort": 22}}]}}, "2024-05-01")
    compute = azure.client("compute")
    pollers = []
    for name, mode, capacity, key, ref in (("web", "Uniform", 3, "loadBalancerInboundNatPools", net + "/loadBalancers/edge/inboundNatPools/ssh"),
                                           ("flex", "Flexible", 2, "loadBalancerBackendAddressPools", flex_pool)):
        body = scale_set_body(location, capacity, subnet_id, mode, name)
        ipc = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
        ipc["properties"]["ipConfigurations"][0]["properties"][key] = [{"id": ref}]
        pollers.append(compute.virtual_machine_scale_sets.begin_create_or_update(RG, name, body))
    for poller in pollers:
        poller.result()
    return pip["properties"]["ipAddress"]


def test_connection_variables_through_nat_rules_or_a_jump_host(emulator, azure, control, ansible_env, tmp_path):
    public_ip = seed_nat(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    config = tmp_path / "nat.vmss.yml"
    config.write_text(yaml.safe_dump({"plugin": "fleetops.vmss.instances", "scale_sets": [{"resource_group": RG}],
                                      "hostname": "name", "connect_via": "nat"}))
    since = last_seq(control)
    hostvars = inventory(ansible_env, config)[0]["_meta"]["hostvars"]

    web = {name: hv for name, hv in hostvars.items() if hv["scale_set"] == "web"}
    assert {name: (hv["ansible_host"], hv["ansible_port"]) for name, hv in web.items()} == {
        "web_%d" % i: (public_ip, 50000 + i) for i in range(3)}
    flex_ports = sorted(hv["ansible_port"] for hv in hostvars.values() if hv["scale_set"] == "flex")
    assert flex_ports == [50100, 50101]
    assert all(hv["ansible_host"] == hv["nat_host"] == public_ip for hv in hostvars.values())
    # the load balancer and its public IP read once, one port-mapping query per Flexible instance
    reads = arm_reads(control, since)
    assert reads.count("LoadBalancers_Get") == 1 and reads.count("PublicIPAddresses_Get") == 1
    assert reads.count("LoadBalancers_ListInboundNatRulePortMappings") == 2

    # The private IPs through a jump box named by a group variable, resolved when Ansible connects.
    jump = tmp_path / "jump"
    (jump / "group_vars").mkdir(parents=True)
    (jump / "group_vars" / "all.yml").write_text("bastion: ops@bastion.example.net:2222\n")
    (jump / "fleet.vmss.yml").write_text(yaml.safe_dump({
        "plugin": "fleetops.vmss.instances", "scale_sets": [{"resource_group": RG, "name": "web"}],
        "hostname": "name", "connect_via": "jump_host", "jump_host": "{{ bastion }}"}))
    env = dict(ansible_env, ANSIBLE_INVENTORY_ENABLED="auto")
    shown = subprocess.run(["ansible", "web_1", "-i", str(jump / "fleet.vmss.yml"), "-m", "ansible.builtin.debug",
                            "-a", json.dumps({"msg": "{{ ansible_host }} {{ ansible_ssh_common_args }}"})],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    private_ip = private_ips_from_azure(azure)[hostvars["web_1"]["id"].lower()]
    assert '"msg": "%s -o ProxyJump=ops@bastion.example.net:2222"' % private_ip in shown.stdout
