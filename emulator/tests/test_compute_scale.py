"""A 1000-instance scale set through the SDK (figures printed, never asserted), and the in-process API
the rolling-upgrade, repair and autoscale engines drive instances with."""
import time
import types

import pytest

from compute_support import body, gallery_image
from emulator.app import Emulator
from emulator.providers import load_all
from emulator.providers.compute import health, instances, scalesets


def test_thousand_instances(clean):
    emu = clean
    emu.control.set_config(page_size=100)
    emu.rg("rg")
    compute = emu.compute()
    spec = body(emu, 1000, health=True, singlePlacementGroup=False, zones=["1", "2", "3"])
    started = time.monotonic()
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "big", spec).result()
    created = time.monotonic() - started
    started = time.monotonic()
    vms = list(compute.virtual_machine_scale_set_vms.list("rg", "big", expand="instanceView"))
    listed = time.monotonic() - started
    assert len(vms) == 1000
    zones = {z: sum(1 for v in vms if v.zones == [z]) for z in ("1", "2", "3")}
    assert max(zones.values()) - min(zones.values()) <= 1
    assert all(v.properties.instance_view.vm_health.status.code == "HealthState/healthy" for v in vms)
    compute.virtual_machine_scale_sets.begin_update("rg", "big", {"properties": {"virtualMachineProfile": {
        "storageProfile": {"imageReference": gallery_image(emu, "2.0.0")}}}}).result()
    ids = [v.instance_id for v in vms[:200]]
    started = time.monotonic()
    compute.virtual_machine_scale_sets.begin_update_instances("rg", "big", {"instanceIds": ids}).result()
    upgraded = time.monotonic() - started
    latest = sum(1 for v in compute.virtual_machine_scale_set_vms.list("rg", "big")
                 if v.properties.latest_model_applied)
    assert latest == 200
    print(f"\n1000 instances: create {created:.1f}s (instance_create {90 * 0.01:.1f}s scaled), "
          f"list with instance views {listed:.1f}s, manualupgrade of 200 {upgraded:.1f}s")


# --- the in-process API -------------------------------------------------------------------------

@pytest.fixture
def ctx(tmp_path):
    load_all()
    emulator = Emulator(str(tmp_path), time_scale=0.01)
    emulator.base_url = "https://127.0.0.1:1"
    emulator.store.put(f"/subscriptions/{emulator.subscription_id}/resourceGroups/rg",
                       {"name": "rg", "location": "westeurope"}, "Microsoft.Resources/resourceGroups")
    return emulator


def request(ctx, name, spec, method="PUT"):
    return types.SimpleNamespace(
        method=method, body=spec, headers={}, query={},
        params={"subscriptionId": ctx.subscription_id, "resourceGroupName": "rg", "vmScaleSetName": name})


def settle_all(ctx, until):
    ctx.advance(until + 1e-3)


def test_engine_api_drives_instances_batch_by_batch(ctx):
    emu = types.SimpleNamespace(location="westeurope")
    spec = body(emu, 4, health=True, overprovision=False, image=gallery_image(
        types.SimpleNamespace(subscription_id=ctx.subscription_id), "1.6.0"))
    scalesets.create_or_update(ctx, request(ctx, "web", spec))
    vmss_id = scalesets.scale_set_id(ctx.subscription_id, "rg", "web")
    now = ctx.clock.now()
    assert [i["provisioningState"] for i in instances.list_instances(ctx, vmss_id, now)] == ["Creating"] * 4
    settle_all(ctx, now + 5)
    old_model = instances.load_state(ctx, vmss_id)["model"]

    # a model change: nobody is on it yet
    spec["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = gallery_image(
        types.SimpleNamespace(subscription_id=ctx.subscription_id), "1.7.0")
    scalesets.create_or_update(ctx, request(ctx, "web", spec))
    settle_all(ctx, ctx.clock.now() + 5)
    fleet = instances.list_instances(ctx, vmss_id)
    assert not any(instances.latest_model_applied(ctx, vmss_id, i) for i in fleet)

    # batch 1: upgrade two instances; the engine learns when they finish
    ends = instances.start_operation(ctx, vmss_id, ["0", "1"], "upgrade")
    assert set(ends) == {"0", "1"}
    mid = min(ends.values()) - 1e-3
    assert all(instances.busy(instances.get_instance(ctx, vmss_id, i, mid), mid) for i in ("0", "1"))
    after = max(ends.values()) + 1e-3
    upgraded = instances.get_instance(ctx, vmss_id, "0", after)
    assert instances.latest_model_applied(ctx, vmss_id, upgraded)
    assert health.instance_health(ctx, upgraded, after) == health.INITIALIZING        # grace after the boot
    ctx.store.kv_set("health_rules", [{"match": {"image_version": "1.7.0"}, "state": "Unhealthy"}])
    later = after + 1
    assert health.instance_health(ctx, instances.get_instance(ctx, vmss_id, "0", later), later) == health.UNHEALTHY
    assert health.instance_health(ctx, instances.get_instance(ctx, vmss_id, "2", later), later) == health.HEALTHY

    # roll back: upgrade to the previous model by hash
    ends = instances.start_operation(ctx, vmss_id, ["0", "1"], "upgrade", model_hash=old_model)
    done = max(ends.values()) + 1e-3
    back = instances.get_instance(ctx, vmss_id, "0", done)
    assert back["model"] == old_model and back["exactVersion"] == "1.6.0"
    assert health.instance_health(ctx, back, done + 1) == health.HEALTHY

    # set_model_applied and scale-in choice are plain calls too
    instances.set_model_applied(ctx, vmss_id, ["3"])
    assert instances.latest_model_applied(ctx, vmss_id, instances.get_instance(ctx, vmss_id, "3", done))
    from emulator.providers.compute import placement
    assert len(placement.select_scale_in(instances.list_instances(ctx, vmss_id, done), 2, ["OldestVM"])) == 2


def test_floating_gallery_image_resolves_what_the_gallery_calls_latest(ctx):
    gallery = f"/subscriptions/{ctx.subscription_id}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
    image = gallery + "/images/web"
    ctx.store.put(gallery, {"name": "g", "properties": {}}, "Microsoft.Compute/galleries")
    ctx.store.put(image, {"name": "web", "properties": {}}, "Microsoft.Compute/galleries/images")
    for name, region, excluded in (("1.6.0", "westeurope", False), ("1.7.0", "westeurope", True),
                                   ("1.8.0", "eastus", False), ("1.6.1", "westeurope", False)):
        ctx.store.put(f"{image}/versions/{name}", {
            "name": name, "id": f"{image}/versions/{name}",
            "properties": {"provisioningState": "Succeeded", "publishingProfile": {
                "targetRegions": [{"name": region}], "excludeFromLatest": excluded}},
            "_replication": {region: {"region": region, "state": "Completed"}}},
            "Microsoft.Compute/galleries/images/versions")
    model = {"profile": {"storageProfile": {"imageReference": {"id": image}}}}
    assert instances.resolve_version(ctx, {"location": "westeurope"}, model) == "1.6.1"
    assert instances.resolve_version(ctx, {"location": "northeurope"}, model) is None
    outside = {"profile": {"storageProfile": {"imageReference": {"id": image.replace("/g/", "/other/") +
                                                                         "/versions/2.0.0"}}}}
    assert instances.resolve_version(ctx, {"location": "westeurope"}, outside) == "2.0.0"
