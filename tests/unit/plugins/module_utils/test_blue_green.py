# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green: copying the model, pool membership, autoscale copies, and the steps a state needs."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _blue_green as bg

SUB = "/subscriptions/s/resourceGroups/rg/providers"
LB = SUB + "/Microsoft.Network/loadBalancers/lb"
POOL = LB + "/backendAddressPools/web"
OTHER_POOL = SUB + "/Microsoft.Network/loadBalancers/internal/backendAddressPools/ops"
BLUE_ID = SUB + "/Microsoft.Compute/virtualMachineScaleSets/web-blue"
GREEN_ID = SUB + "/Microsoft.Compute/virtualMachineScaleSets/web-green"


def blue(pools=(POOL, OTHER_POOL)):
    """A scale set as GET returns it (read-only fields included)."""
    return {
        "id": BLUE_ID, "name": "web-blue", "type": "Microsoft.Compute/virtualMachineScaleSets", "etag": '"7"',
        "location": "westeurope", "tags": {"team": "web", bg.TAG_CAPACITY: "4"}, "zones": ["1", "2"],
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 4},
        "identity": {"type": "SystemAssigned, UserAssigned", "principalId": "p", "tenantId": "t",
                     "userAssignedIdentities": {SUB + "/id/web": {"principalId": "x", "clientId": "y"}}},
        "properties": {
            "provisioningState": "Succeeded", "uniqueId": "u", "timeCreated": "2026-01-01T00:00:00Z",
            "orchestrationMode": "Uniform", "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "timeCreated": "2026-01-01T00:00:00Z",
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu", "sku": "server",
                                                      "version": "1.0.0", "exactVersion": "1.0.0"}},
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
                "networkProfile": {
                    "healthProbe": {"id": LB + "/probes/ready"},
                    "networkInterfaceConfigurations": [{"name": "nic", "properties": {
                        "primary": True, "ipConfigurations": [{"name": "ipc", "properties": {
                            "primary": True, "subnet": {"id": "subnet"},
                            "loadBalancerBackendAddressPools": [{"id": p} for p in pools],
                            "loadBalancerInboundNatPools": [{"id": LB + "/inboundNatPools/ssh"}]}}]}}]},
                "extensionProfile": {"extensions": [
                    {"name": "health", "id": "ext-id", "type": "Microsoft.Compute/virtualMachineScaleSets/extensions",
                     "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                                    "provisioningState": "Succeeded",
                                    "settings": {"port": 80, "intervalInSeconds": 10, "numberOfProbes": 2}}},
                    {"name": "agent", "properties": {"publisher": "Contoso", "type": "Agent"}}]}}}}


def state(**overrides):
    out = {"exists": True, "capacity": 2, "instances": 2, "members": 2, "touching": 2, "non_members": 0,
           "deallocated": 0, "in_model": True, "out_model": False, "original_capacity": None, "blue_tag": None}
    out.update(overrides)
    return out


ABSENT = bg.set_state(None, [], {}, [])
AUTOSCALE_NONE = {"blue_total": 0, "blue_enabled": 0, "missing": 0, "green_total": 0, "green_enabled": 0}
OPTS = {"capacity": None, "soak": 0, "blue_capacity": None, "deallocate_blue": False, "keep_green": False,
        "move_autoscale": True}


def obs(blue_state, green_state, autoscale=None):
    return {"blue": blue_state, "green": green_state, "autoscale": dict(autoscale or AUTOSCALE_NONE)}


def steps(state_name, observed, **opts):
    return [(phase["kind"], [s["name"] for s in phase["steps"]]) for phase in
            bg.plan(state_name, observed, dict(OPTS, **opts))]


# --- names, images ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,green", [("web-blue", "web-green"), ("web-GREEN", "web-blue"), ("web", "web-green")])
def test_default_green_name(name, green):
    assert bg.default_green_name(name) == green


def test_same_image_compares_references_case_insensitively():
    assert bg.same_image({"publisher": "canonical", "offer": "Ubuntu", "sku": "server", "version": "1.0.0"},
                         {"publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "1.0.0"})
    assert bg.same_image(SUB.upper() + "/Microsoft.Compute/galleries/g/images/i/versions/2.0.0/",
                         {"id": SUB + "/Microsoft.Compute/galleries/g/images/i/versions/2.0.0"})
    assert not bg.same_image({"publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "2.0.0"},
                             {"publisher": "Canonical", "offer": "ubuntu", "sku": "server", "version": "1.0.0"})


# --- the copy -----------------------------------------------------------------------------------

def test_green_is_blue_without_read_only_fields_out_of_the_swapped_pools():
    source = blue()
    image = SUB + "/Microsoft.Compute/galleries/g/images/web/versions/2.0.0"
    secrets = {"admin_password": "pw", "custom_data": "I2Nsb3Vk", "protected_settings": {"agent": {"key": "k"}}}
    body = bg.green_body(source, image, 2, [POOL], secrets)

    assert source == blue()                                       # the source is not modified
    for key in ("id", "name", "type", "etag"):
        assert key not in body
    props = body["properties"]
    assert not {"provisioningState", "uniqueId", "timeCreated"} & set(props)
    vm = props["virtualMachineProfile"]
    assert "timeCreated" not in vm
    assert vm["storageProfile"]["imageReference"] == {"id": image}          # the kind of reference switched cleanly
    ipc = vm["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]["properties"]
    assert ipc["loadBalancerBackendAddressPools"] == [{"id": OTHER_POOL}]   # only the swapped pool is left out
    assert ipc["loadBalancerInboundNatPools"] == []                         # the same LB's NAT pool would collide
    assert "healthProbe" not in vm["networkProfile"]                        # a probe of that LB too
    assert vm["osProfile"] == {"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "pw",
                               "customData": "I2Nsb3Vk"}
    health, agent = vm["extensionProfile"]["extensions"]
    assert health == {"name": "health", "properties": {
        "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
        "settings": {"port": 80, "intervalInSeconds": 10, "numberOfProbes": 2}}}
    assert agent["properties"]["protectedSettings"] == {"key": "k"}
    assert body["sku"] == {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 2}
    assert body["tags"] == {"team": "web", bg.TAG_BLUE: "web-blue"}         # blue's swap bookkeeping not copied
    assert body["identity"] == {"type": "SystemAssigned, UserAssigned",
                                "userAssignedIdentities": {SUB + "/id/web": {}}}
    assert body["zones"] == ["1", "2"] and props["upgradePolicy"] == {"mode": "Manual"}


def test_pool_patches_keep_the_ids_as_spelled_and_other_pools():
    source = blue(pools=[OTHER_POOL])
    join = bg.pool_patch(source, [POOL], join=True)
    ipc = join["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
        "properties"]["ipConfigurations"][0]["properties"]
    assert ipc["loadBalancerBackendAddressPools"] == [{"id": OTHER_POOL}, {"id": POOL}]
    assert ipc["loadBalancerInboundNatPools"] == [{"id": LB + "/inboundNatPools/ssh"}]   # a PATCH moves pools only

    joined = copy.deepcopy(source)
    joined["properties"]["virtualMachineProfile"]["networkProfile"] = join["properties"]["virtualMachineProfile"][
        "networkProfile"]
    assert bg.pools_in_model(joined) == sorted([OTHER_POOL, POOL], key=str.lower)
    again = bg.pool_patch(joined, [POOL.upper()], join=True)           # already in: nothing added twice
    assert again == join
    leave = bg.pool_patch(joined, [POOL.lower()], join=False)
    assert leave["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
        "properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] == [{"id": OTHER_POOL}]


def test_swapped_pools_come_from_either_model_and_are_deduplicated():
    green = blue(pools=[POOL.lower()])
    assert bg.swapped_pools(None, blue(pools=[POOL]), green) == [POOL]
    assert bg.swapped_pools(None, blue(pools=[]), green) == [POOL.lower()]
    assert bg.swapped_pools([POOL + "/", POOL.upper()], None, None) == [POOL]


def test_scale_in_keeps_the_first_capacity_and_scale_out_restores_it():
    source = blue()
    source["tags"] = {"team": "web"}
    assert bg.scale_in_patch(source, 1) == {"sku": {"capacity": 1}, "tags": {"team": "web", bg.TAG_CAPACITY: "4"}}
    source["tags"][bg.TAG_CAPACITY] = "6"                        # a re-run: the capacity before the first scale-in
    assert bg.scale_in_patch(source, 1)["tags"][bg.TAG_CAPACITY] == "6"
    source["sku"]["capacity"] = 1
    assert bg.scale_out_patch(source) == {"tags": {"team": "web"}, "sku": {"capacity": 6}}
    source["sku"]["capacity"] = 8                                # autoscale went higher meanwhile: never less
    assert bg.scale_out_patch(source) == {"tags": {"team": "web"}}


# --- membership ---------------------------------------------------------------------------------

def vm(instance_id, nic):
    return {"instanceId": instance_id, "properties": {"networkProfile": {"networkInterfaces": [{"id": nic}]}}}


def test_pool_counts_match_members_to_instances_by_nic():
    vms = [vm("0", BLUE_ID + "/virtualMachines/0/networkInterfaces/nic"),
           vm("1", BLUE_ID + "/virtualMachines/1/networkInterfaces/nic")]
    members = {POOL: [BLUE_ID.upper() + "/virtualMachines/0/networkInterfaces/nic/ipConfigurations/ipc",
                      BLUE_ID + "/virtualMachines/0/networkInterfaces/nic/ipConfigurations/second",
                      GREEN_ID + "/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ipc"],
               OTHER_POOL: [BLUE_ID + "/virtualMachines/0/networkInterfaces/nic/ipConfigurations/ipc"]}
    assert bg.pool_counts(vms, members) == {"0": 2, "1": 0}
    observed = bg.set_state(blue(pools=[POOL]), vms, {"0": 2, "1": 0}, [POOL, OTHER_POOL])
    assert (observed["members"], observed["touching"], observed["non_members"]) == (1, 1, 1)
    assert (observed["in_model"], observed["out_model"], observed["original_capacity"]) == (False, False, 4)


# --- autoscale ----------------------------------------------------------------------------------

def setting(name, target, enabled=True, metric=None):
    return {"id": SUB + "/microsoft.insights/autoscalesettings/" + name, "name": name, "location": "westeurope",
            "tags": {"owner": "web"}, "properties": {
                "enabled": enabled, "targetResourceUri": target, "name": name,
                "profiles": [{"name": "default", "capacity": {"minimum": "1", "maximum": "5", "default": "2"},
                              "rules": [{"metricTrigger": {"metricName": "Percentage CPU",
                                                           "metricResourceUri": metric or target.upper()}}]}]}}


def test_green_gets_a_copy_of_each_blue_autoscale_setting():
    assert bg.counterpart_name("web-blue-autoscale", "web-blue", "web-green") == "web-green-autoscale"
    assert bg.counterpart_name("cpu", "web-blue", "web-green") == "cpu-web-green"
    body = bg.counterpart_body(setting("web-blue-autoscale", BLUE_ID), BLUE_ID, GREEN_ID, "web-green-autoscale")
    assert body["properties"]["targetResourceUri"] == GREEN_ID
    assert body["properties"]["profiles"][0]["rules"][0]["metricTrigger"]["metricResourceUri"] == GREEN_ID
    assert body["properties"]["enabled"] is True and body["properties"]["name"] == "web-green-autoscale"
    assert body["tags"] == {"owner": "web", bg.TAG_SOURCE: "web-blue-autoscale"}
    queue = bg.counterpart_body(setting("q", BLUE_ID, metric="/queues/orders"), BLUE_ID, GREEN_ID, "q-web-green")
    assert queue["properties"]["profiles"][0]["rules"][0]["metricTrigger"]["metricResourceUri"] == "/queues/orders"

    settings = [setting("web-blue-autoscale", BLUE_ID, enabled=False), setting("web-green-autoscale", GREEN_ID),
                setting("cpu", BLUE_ID), setting("unrelated", SUB + "/other")]
    view = bg.autoscale_view(settings, BLUE_ID.lower(), GREEN_ID, "web-blue", "web-green")
    assert [s["name"] for s in view["blue"]] == ["web-blue-autoscale", "cpu"]
    assert [s["name"] for s in view["missing"]] == ["cpu"]
    assert bg.observe(state(), state(), view)["autoscale"] == {
        "blue_total": 2, "blue_enabled": 1, "missing": 1, "green_total": 1, "green_enabled": 1}
    toggled = bg.toggled(settings[2], False)
    assert toggled["properties"]["enabled"] is False and settings[2]["properties"]["enabled"] is True
    assert set(toggled) == {"location", "tags", "properties"}


# --- steps ----------------------------------------------------------------------------------------

def test_a_fresh_live_plan_stages_then_swaps():
    fresh = obs(state(original_capacity=None), ABSENT, dict(AUTOSCALE_NONE, blue_total=1, blue_enabled=1, missing=1))
    assert steps("live", fresh, blue_capacity=1, soak=60) == [
        ("stage", ["create_green", "green_healthy"]),
        ("swap", ["green_join_model", "green_upgrade", "green_in_pool"]),
        ("soak", ["soak"]),
        ("swap", ["autoscale_to_green", "blue_scale_in", "blue_leave_model", "blue_upgrade", "blue_out_of_pool"])]
    assert steps("staged", fresh) == [("stage", ["create_green", "green_healthy"])]
    # without a soak, swapping green in and blue out is one phase
    assert steps("live", fresh, move_autoscale=False, deallocate_blue=True)[-1] == ("swap", [
        "green_join_model", "green_upgrade", "green_in_pool", "blue_leave_model", "blue_upgrade", "blue_out_of_pool",
        "blue_deallocate"])


def test_a_resumed_live_plan_skips_what_azure_shows_done():
    # interrupted after green's model joined the pools, before its instances were upgraded
    midway = obs(state(), state(in_model=True, out_model=False, members=0, touching=0, non_members=2,
                                blue_tag="web-blue"))
    assert steps("live", midway) == [
        ("swap", ["green_upgrade", "green_in_pool", "blue_leave_model", "blue_upgrade", "blue_out_of_pool"])]
    # interrupted after blue's model left the pools: only blue's instances are left to move
    late = obs(state(in_model=False, out_model=True), state(blue_tag="web-blue"))
    assert steps("live", late) == [("swap", ["green_in_pool", "blue_upgrade", "blue_out_of_pool"])]
    done = obs(state(in_model=False, out_model=True, members=0, touching=0, non_members=2), state(blue_tag="web-blue"))
    assert steps("live", done) == [] and steps("staged", done) == [] and bg.is_live(done)
    # finalizing ends the cycle: blue deleted, green's tag naming it removed
    assert steps("finalized", done) == [("finalize", ["delete_blue", "green_clear_tag"])]


def test_rollback_plans():
    swapped = obs(state(capacity=1, instances=1, members=0, touching=0, non_members=1, deallocated=1, in_model=False,
                        out_model=True, original_capacity=3), state(blue_tag="web-blue"),
                  dict(AUTOSCALE_NONE, blue_total=1, green_total=1, green_enabled=1))
    assert steps("rolled_back", swapped) == [("rollback", [
        "blue_start", "blue_join_model", "blue_scale_out", "blue_rejoin", "blue_in_pool", "autoscale_to_blue",
        "delete_green"])]
    assert steps("rolled_back", swapped, keep_green=True)[0][1][-3:] == [
        "autoscale_to_blue", "green_leave_model", "green_leave"]
    back = obs(state(), ABSENT)
    assert steps("rolled_back", back) == []


def test_estimate_counts_typical_durations_grace_and_soak():
    phases = bg.plan("live", obs(state(), ABSENT), dict(OPTS, soak=60))
    assert bg.estimate_seconds(phases, settle=20, soak=60) == (
        90 + 20 + 30 + 120 + 20 + 60 + 30 + 120)   # create+grace, join+upgrade+grace, soak, leave+upgrade
    assert bg.health_settle_seconds(blue()) == 20.0
    assert bg.describe_plan("live", obs(state(), ABSENT), OPTS, blue())["batches"][0]["kind"] == "stage"


# --- what is refused before any write ---------------------------------------------------------------

PARAMS = {"state": "live", "image": "img", "soak": 0, "health_timeout": 600, "wait_timeout": 3600,
          "max_unhealthy_instance_percent": 20, "max_unhealthy_upgraded_instance_percent": 20, "blue_capacity": None,
          "protected_settings": None}


def test_preconditions_and_validation():
    opts = dict(OPTS, pools=[POOL])
    fresh = obs(state(), ABSENT)
    source = blue()
    assert bg.validate(PARAMS, fresh, source, None, [POOL], dict(OPTS, capacity=2), "web-blue", "web-green") == []
    errors = bg.validate(dict(PARAMS, image=None, soak=-1, max_unhealthy_instance_percent=101,
                              protected_settings={"nope": {}}),
                         fresh, source, None, [POOL], dict(OPTS, capacity=0), "web-blue", "web-green")
    assert errors == [
        "image is required to create the green scale set web-green.",
        "soak must be 0 or more.", "max_unhealthy_instance_percent must be between 0 and 100, not 101.",
        "capacity must be at least 1 (got 0).", "protected_settings names extensions blue's model does not have: nope."]
    assert bg.validate(dict(PARAMS, soak=-1), fresh, source, source, [POOL], OPTS, "web-blue", "WEB-blue") == [
        "soak must be 0 or more.", "green_name must differ from name."]
    assert bg.validate(dict(PARAMS, backend_pool_ids=[POOL, LB + "/probes/ready"]), fresh, source, None, [POOL],
                       dict(OPTS, capacity=2), "web-blue", "web-green") == [
        "backend_pool_ids: '%s/probes/ready' is not the id of a load balancer backend pool." % LB]
    stranger = obs(state(), state(blue_tag=None, in_model=False, out_model=True))
    assert "is not a green copy made by this module" in bg.preconditions("live", stranger, opts, "web-blue",
                                                                         "web-green")[0]
    other = obs(state(), state(blue_tag="api-blue"))
    assert bg.preconditions("live", other, opts, "web-blue", "web-green") == [
        "scale set web-green is the green copy of api-blue, not of web-blue."]
    assert "run state=live first" in bg.preconditions("finalized", fresh, opts, "web-blue", "web-green")[0]
    assert bg.preconditions("live", fresh, dict(OPTS, image="img"), "web-blue", "web-green") == [
        "no backend pool to swap: blue's model is in none, and backend_pool_ids is not set."]
    assert "nothing to roll back to" in bg.preconditions("rolled_back", obs(ABSENT, state(blue_tag="web-blue")),
                                                         opts, "web-blue", "web-green")[0]
    green = blue()
    assert "exists with another image" in bg.validate(PARAMS, obs(state(), state(blue_tag="web-blue")), source, green,
                                                      [POOL], OPTS, "web-blue", "web-green")[-1]
    no_health = blue()
    no_health["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].pop(0)
    assert bg.validate(PARAMS, fresh, no_health, None, [POOL], dict(OPTS, capacity=2), "web-blue", "web-green") == [
        "blue has no Application Health extension: the health gates need one."]


# --- issue 22: one cycle at a time, capacity, secrets --------------------------------------------------


def test_a_set_waiting_in_its_rollback_window_is_never_swapped_in_as_green():
    serving, waiting = blue(), blue()
    serving.update(name="web-green", tags={bg.TAG_BLUE: "web-blue"})
    waiting["tags"] = {bg.TAG_CAPACITY: "4"}
    observed = obs(state(), state(blue_tag=None, in_model=False, out_model=True, members=0, touching=0))
    # a rollout of web-green (serving) whose green would be web-blue, the previous cycle's blue
    errors = bg.validate(dict(PARAMS, image=None), observed, serving, waiting, [POOL], OPTS, "web-green", "web-blue")
    assert ("scale set web-blue is the blue of the previous blue/green cycle, waiting in its rollback window "
            "(web-green serves as its green): end that cycle first") in " ".join(errors)
    # either sign is enough: blue's tag naming green, or green's capacity tag
    assert bg.in_rollback_window(serving, dict(waiting, tags={}), "web-blue")
    assert bg.in_rollback_window({"tags": {}}, waiting, "web-blue")
    assert not bg.in_rollback_window({"tags": {}}, dict(waiting, tags={}), "web-blue")
    assert not bg.in_rollback_window(serving, None, "web-blue")


def test_a_green_staged_smaller_grows_to_blue_s_capacity_before_it_joins():
    green = state(capacity=2, instances=2, members=0, touching=0, non_members=2, in_model=False, out_model=True,
                  blue_tag="web-blue")
    staged = obs(state(capacity=6, instances=6), green)
    assert steps("live", staged)[0] == ("swap", ["green_scale_out", "green_join_model", "green_upgrade",
                                                 "green_in_pool", "blue_leave_model", "blue_upgrade",
                                                 "blue_out_of_pool"])
    # a fresh plan at a smaller capacity: created small, grown before it joins
    assert steps("live", obs(state(capacity=6, instances=6), ABSENT), capacity=2)[1][1][0] == "green_scale_out"
    # blue already scaled in by a resumed run: its capacity before counts
    resumed = obs(state(capacity=1, instances=1, original_capacity=6), staged["green"])
    assert bg.serving_capacity(resumed) == 6 and steps("live", resumed)[0][1][0] == "green_scale_out"
    assert "green_scale_out" not in str(steps("live", obs(state(capacity=2), staged["green"])))


def linux_blue(disable_password):
    out = blue()
    out["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": disable_password}
    return out


def test_green_needs_the_password_blue_signs_in_with_and_secrets_only_go_with_its_creation():
    fresh = obs(state(), ABSENT)
    opts = dict(OPTS, capacity=2)
    assert bg.validate(PARAMS, fresh, linux_blue(True), None, [POOL], opts, "web-blue", "web-green") == []
    assert bg.validate(PARAMS, fresh, linux_blue(False), None, [POOL], opts, "web-blue", "web-green") == [
        "blue's model signs in with a password (linuxConfiguration.disablePasswordAuthentication is not true, or "
        "Windows) and Azure never returns it: give admin_password for green."]
    assert bg.validate(dict(PARAMS, admin_password="s3cret!"), fresh, linux_blue(False), None, [POOL], opts,
                       "web-blue", "web-green") == []
    windows = blue()
    windows["properties"]["virtualMachineProfile"]["osProfile"]["windowsConfiguration"] = {}
    assert bg.password_required(windows) and not bg.password_required(blue())
    staged = obs(state(), state(blue_tag="web-blue", in_model=False, out_model=True))
    green = dict(linux_blue(False), tags={bg.TAG_BLUE: "web-blue"})
    errors = bg.validate(dict(PARAMS, image=None, admin_password="s3cret!", custom_data="#cloud-config"), staged,
                         linux_blue(False), green, [POOL], opts, "web-blue", "web-green")
    assert errors == ["admin_password, custom_data given, but green web-green exists: Azure never returns them, so "
                      "they are only used when green is created. Leave them out to go on with green as it is, or "
                      "roll back (state=rolled_back: deletes green) and stage green again with them."]
    assert "s3cret" not in " ".join(errors)
