"""Pure scale-set model rules: defaults, merge, validation, secrets, hashing, health, placement."""
import pytest

from emulator.arm import ArmError
from emulator.providers.compute import health as h
from emulator.providers.compute import model as m
from emulator.providers.compute import placement as pl


def uniform(**props):
    doc = {"location": "westeurope", "sku": {"name": "Standard_D2s_v3", "capacity": 2},
           "properties": {"virtualMachineProfile": {
               "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "o", "sku": "s",
                                                     "version": "latest"}},
               "osProfile": {"computerNamePrefix": "web", "adminUsername": "u", "adminPassword": "Sup3r-secret!"}}}}
    doc["properties"].update(props)
    return doc


def health_ext(**settings):
    return {"name": "health", "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                                             "typeHandlerVersion": "2.0", "settings": settings}}


def err(fn, *args):
    with pytest.raises(ArmError) as caught:
        fn(*args)
    return caught.value


# --- defaults and merge -------------------------------------------------------------------------

def test_defaults_uniform_regional_and_zonal():
    doc = m.apply_defaults(uniform())
    p = doc["properties"]
    assert (p["orchestrationMode"], p["platformFaultDomainCount"], p["singlePlacementGroup"], p["overprovision"]) \
        == ("Uniform", 5, True, True)
    assert p["upgradePolicy"] == {"mode": "Manual"}
    zonal = m.apply_defaults(dict(uniform(), zones=["1", "2"]))
    assert zonal["properties"]["platformFaultDomainCount"] == 1
    big = uniform()
    big["sku"]["capacity"] = 500
    assert m.apply_defaults(big)["properties"]["singlePlacementGroup"] is False


def test_defaults_flexible_and_idempotence():
    doc = m.apply_defaults(uniform(orchestrationMode="Flexible"))
    assert doc["properties"]["platformFaultDomainCount"] == 1
    assert "overprovision" not in doc["properties"]
    import copy
    again = m.apply_defaults(copy.deepcopy(doc))
    assert again == doc


def test_put_keeps_immutables_capacity_and_patch_merges():
    current = m.apply_defaults(uniform(orchestrationMode="Flexible", platformFaultDomainCount=3))
    current["sku"]["capacity"] = 7
    desired = m.desired_from_put(current, {"location": "westeurope", "sku": {"name": "Standard_D4s_v3"},
                                           "properties": {"provisioningState": "Succeeded"}})
    assert desired["properties"]["orchestrationMode"] == "Flexible"
    assert desired["properties"]["platformFaultDomainCount"] == 3
    assert desired["sku"] == {"name": "Standard_D4s_v3", "capacity": 7}
    assert "provisioningState" not in desired["properties"]
    current["tags"] = {"team": "payments", "cost": "1"}
    patched = m.desired_from_patch(current, {"sku": {"capacity": 9}, "properties": {"overprovision": False},
                                             "tags": {"team": "web"}})
    assert patched["tags"] == {"team": "web"}
    assert patched["sku"]["capacity"] == 9 and patched["sku"]["name"] == "Standard_D2s_v3"
    assert patched["properties"]["overprovision"] is False
    assert patched["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"] == "web"


# --- validation ---------------------------------------------------------------------------------

def test_immutable_changes_are_refused():
    current = m.apply_defaults(dict(uniform(), zones=["1", "2"]))
    e = err(m.validate, m.apply_defaults(dict(uniform(orchestrationMode="Flexible"), zones=["1", "2"])), current)
    assert (e.status, e.code, e.target) == (400, "PropertyChangeNotAllowed", "orchestrationMode")
    e = err(m.validate, m.apply_defaults(dict(uniform(platformFaultDomainCount=5), zones=["1", "2"])), current)
    assert (e.code, e.target) == ("PropertyChangeNotAllowed", "platformFaultDomainCount")
    e = err(m.validate, m.apply_defaults(dict(uniform(), zones=["1"])), current)
    assert (e.code, e.target) == ("PropertyChangeNotAllowed", "zones")
    m.validate(m.apply_defaults(dict(uniform(), zones=["1", "2", "3"])), current)   # adding a zone is fine


def test_invalid_parameters_name_their_target():
    e = err(m.validate, m.apply_defaults(uniform(platformFaultDomainCount=7)))
    assert (e.code, e.target) == ("InvalidParameter", "platformFaultDomainCount")
    e = err(m.validate, m.apply_defaults(dict(uniform(), zones=["1"], properties=dict(
        uniform()["properties"], zoneBalance=True))))
    assert e.target == "zoneBalance"
    doc = uniform(singlePlacementGroup=True)
    doc["sku"]["capacity"] = 101
    assert err(m.validate, m.apply_defaults(doc)).target == "sku.capacity"
    doc = uniform(orchestrationMode="Flexible", overprovision=True)
    assert err(m.validate, m.apply_defaults(doc)).target == "overprovision"
    assert err(m.validate, m.apply_defaults(uniform(priorityMixPolicy={}))).target == "priorityMixPolicy"
    doc = uniform()
    doc["properties"]["virtualMachineProfile"]["evictionPolicy"] = "Delete"
    assert err(m.validate, m.apply_defaults(doc)).target == "evictionPolicy"
    doc["properties"]["virtualMachineProfile"].pop("evictionPolicy")
    doc["properties"]["virtualMachineProfile"]["billingProfile"] = {"maxPrice": -1}
    m.validate(m.apply_defaults(doc))                       # -1 (no cap) is harmless on a Regular VM
    doc["properties"]["virtualMachineProfile"]["billingProfile"] = {"maxPrice": 0.5}
    assert err(m.validate, m.apply_defaults(doc)).target == "billingProfile.maxPrice"
    doc["properties"]["virtualMachineProfile"].update(priority="Spot", billingProfile={"maxPrice": -2})
    assert err(m.validate, m.apply_defaults(doc)).target == "billingProfile.maxPrice"
    doc = {"location": "westeurope", "sku": {"name": "x", "capacity": 1}, "properties": {}}
    assert err(m.validate, m.apply_defaults(doc)).target == "virtualMachineProfile"


def test_rolling_needs_a_health_signal_and_a_valid_pause():
    e = err(m.validate, m.apply_defaults(uniform(upgradePolicy={"mode": "Rolling"})))
    assert (e.code, e.status) == ("BadRequest", 400)
    doc = uniform(upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": {"pauseTimeBetweenBatches": "soon"}})
    doc["properties"]["virtualMachineProfile"]["extensionProfile"] = {"extensions": [health_ext()]}
    assert err(m.validate, m.apply_defaults(doc)).target.endswith("pauseTimeBetweenBatches")
    doc["properties"]["upgradePolicy"]["rollingUpgradePolicy"]["pauseTimeBetweenBatches"] = "PT30S"
    m.validate(m.apply_defaults(doc))
    doc["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT5M"}
    assert err(m.validate, m.apply_defaults(doc)).target == "automaticRepairsPolicy.gracePeriod"


def test_location_change_is_a_conflict():
    current = dict(m.apply_defaults(uniform()), name="a")
    moved = m.apply_defaults(dict(uniform(), location="eastus"))
    assert err(m.validate, moved, current).status == 409


# --- secrets and hashing ------------------------------------------------------------------------

def test_secrets_are_stripped_kept_on_update_and_change_the_hash():
    vm = uniform()["properties"]["virtualMachineProfile"]
    vm["extensionProfile"] = {"extensions": [dict(health_ext(), properties=dict(
        health_ext()["properties"], protectedSettings={"k": "v"}))]}
    clean, digests = m.strip_secrets(vm)
    assert "adminPassword" not in clean["osProfile"]
    assert "protectedSettings" not in clean["extensionProfile"]["extensions"][0]["properties"]
    assert set(digests) == {"osProfile.adminPassword", "extensions/health/protectedSettings"}
    kept = m.merge_secret_digests(digests, {}, clean)
    assert kept == digests
    doc = {"properties": {"virtualMachineProfile": clean}, "sku": {"name": "a", "capacity": 3}}
    base = m.model_hash(m.model_of(doc, kept))
    assert m.model_hash(m.model_of(dict(doc, sku={"name": "a", "capacity": 9}), kept)) == base
    changed = dict(kept, **{"osProfile.adminPassword": "other"})
    assert m.model_hash(m.model_of(doc, changed)) != base
    no_ext = dict(clean, extensionProfile={"extensions": []})
    assert "extensions/health/protectedSettings" not in m.merge_secret_digests(digests, {}, no_ext)


def test_render_hides_user_data_unless_expanded():
    doc = uniform()
    doc["properties"]["virtualMachineProfile"]["userData"] = "ZGF0YQ=="
    assert "userData" not in m.render(doc)["properties"]["virtualMachineProfile"]
    assert m.render(doc, "userData")["properties"]["virtualMachineProfile"]["userData"] == "ZGF0YQ=="


def test_image_references_and_durations():
    gallery = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web"
    assert m.gallery_image({"id": gallery}) == (gallery, None)
    assert m.image_version({"id": gallery + "/versions/1.7.0"}) == "1.7.0"
    assert m.image_version({"id": gallery}) == "latest"
    assert m.image_version({"publisher": "p", "version": "1.2.3"}) == "1.2.3"
    assert m.parse_duration("PT1H30M") == 5400 and m.parse_duration(45) == 45
    assert m.parse_duration("soon") is None and m.parse_duration("PT") is None
    assert m.next_etag({"etag": '"4"'}) == '"5"' and m.next_etag({}) == '"1"'


# --- health -------------------------------------------------------------------------------------

def evaluate(rules, age, ext=None, instance_id="0", versions=("1.0.0",)):
    return h.evaluate(extension=ext or health_ext(gracePeriod=100), running_since=0, now=age, rules=rules,
                      vmss_name="web", vmss_id="/x/web", instance_id=instance_id, versions=versions,
                      scaled=lambda s: s)


def test_health_settles_then_rules_last_match_wins():
    # Azure: Initializing until numberOfProbes identical probes (1 x 5 s here); gracePeriod only bounds it
    assert evaluate([], 3) == h.INITIALIZING
    assert evaluate([], 50) == h.HEALTHY
    assert evaluate([], 150) == h.HEALTHY
    rules = [{"match": {"scale_set": "WEB"}, "state": "Unhealthy"},
             {"match": {"instance_ids": ["1"]}, "state": "Healthy"}]
    assert evaluate(rules, 150, instance_id="0") == h.UNHEALTHY
    assert evaluate(rules, 150, instance_id="1") == h.HEALTHY
    assert evaluate([{"match": {"image_version": "1.7.0"}, "state": "Unhealthy"}], 150) == h.HEALTHY
    assert evaluate([{"match": {"image_version": "1.7.0"}, "state": "Unhealthy"}], 150,
                    versions=("1.7.0",)) == h.UNHEALTHY
    # no verdict from the probes: Initializing for at most the grace period, then Unknown
    assert evaluate([{"state": "Initializing"}], 50) == h.INITIALIZING
    assert evaluate([{"state": "Initializing"}], 150) == h.UNKNOWN


def test_health_flapping_binary_and_default_grace():
    rules = [{"state": "Flapping", "period": 10}]
    assert [evaluate(rules, 100 + t) for t in (5, 15, 25)] == [h.HEALTHY, h.UNHEALTHY, h.HEALTHY]
    binary = dict(health_ext(gracePeriod=1), properties=dict(health_ext()["properties"], typeHandlerVersion="1.0"))
    assert evaluate([{"state": "Unknown"}], 10, ext=binary) == h.UNHEALTHY
    assert h.grace_seconds(health_ext()) == 5
    assert h.grace_seconds(health_ext(intervalInSeconds=10, numberOfProbes=3)) == 30
    assert h.grace_seconds(health_ext(gracePeriod="PT2M")) == 120
    assert h.evaluate(extension=None, running_since=0, now=9, rules=[], vmss_name="a", vmss_id="b",
                      instance_id="0", versions=(), scaled=float) is None
    assert h.vm_health(h.HEALTHY, "t")["status"]["code"] == "HealthState/healthy"


# --- placement ----------------------------------------------------------------------------------

def test_domains_round_robin_over_zones_and_fault_domains():
    got = pl.assign_domains([], 6, ["1", "2", "3"], 1, 5)
    assert [z for z, _, _ in got] == ["1", "2", "3", "1", "2", "3"]
    assert {fd for _, fd, _ in got} == {0}
    regional = pl.assign_domains([], 7, [], 5, 5)
    assert [(fd, ud) for _, fd, ud in regional] == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (0, 0), (1, 1)]
    existing = [{"zone": "1", "fd": 0}, {"zone": "1", "fd": 0}]
    assert pl.assign_domains(existing, 1, ["1", "2"], 1, 5)[0][0] == "2"


def inst(iid, zone=None, fd=0, created=0, **protection):
    return {"instanceId": str(iid), "zone": zone, "fd": fd, "created": created, "seq": iid,
            "protection": protection or None}


def test_scale_in_policies():
    fleet = [inst(i, zone=str(i % 2 + 1), created=i) for i in range(6)]     # zone 1: 0 2 4, zone 2: 1 3 5
    newest = pl.select_scale_in(fleet, 2, ["NewestVM"])
    assert sorted(v["instanceId"] for v in newest) == ["4", "5"]
    oldest = pl.select_scale_in(fleet, 2, ["OldestVM"])
    assert sorted(v["instanceId"] for v in oldest) == ["0", "1"]
    regional = [inst(i, fd=i % 2, created=i) for i in range(5)]               # fd0: 0 2 4, fd1: 1 3
    assert [v["instanceId"] for v in pl.select_scale_in(regional, 1, ["Default"])] == ["4"]


def test_scale_in_skips_protected_instances():
    fleet = [inst(0, created=0), inst(1, created=1, protectFromScaleIn=True),
             inst(2, created=2, protectFromScaleSetActions=True)]
    assert [v["instanceId"] for v in pl.select_scale_in(fleet, 3, ["NewestVM"])] == ["0"]


def test_ips_names_and_overprovisioning():
    assert pl.allocate_ips("10.1.0.0/24", {"10.1.0.4"}, 2) == ["10.1.0.5", "10.1.0.6"]
    assert pl.allocate_ips("10.1.0.0/29", set(), 4) is None     # /29: .4-.6 usable only
    assert pl.uniform_computer_name("web", 0) == "web000000"
    assert pl.uniform_computer_name("web", 37) == "web000011"
    assert pl.overprovision_extra(3) == 2 and pl.overprovision_extra(100) == 20
    created = [inst(i, zone=str(i % 3 + 1)) for i in range(9)]
    surplus = pl.pick_overprovisioned([], created, 3, "seed")
    assert len(surplus) == 3 and surplus == pl.pick_overprovisioned([], created, 3, "seed")
    assert sorted(int(i) % 3 for i in surplus) == [0, 1, 2]                # one per zone: balance is kept
    assert m.regular_needed(10, 2, 50) == 6 and m.regular_needed(1, 2, 0) == 1


def test_put_without_user_data_keeps_it():
    current = uniform()
    current["properties"]["virtualMachineProfile"]["userData"] = "ZGF0YQ=="
    rendered = m.render(current)                                   # what a plain GET shows
    desired = m.desired_from_put(current, rendered)
    assert desired["properties"]["virtualMachineProfile"]["userData"] == "ZGF0YQ=="
