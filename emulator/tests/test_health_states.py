"""Application Health as Azure runs it (learn.microsoft.com ".../virtual-machine-scale-sets-health-extension"):
Initializing until numberOfProbes identical probes, gracePeriod as the upper bound (then Unknown, or Unhealthy
on tcp), later changes after numberOfProbes identical probes, binary states without Initializing / Unknown;
then the same through the SDK, and Azure's rolling upgrade waiting for health by those rules."""
import pytest
from azure.core.exceptions import HttpResponseError

from compute_support import body, gallery_image, wait_until
from emulator.providers.compute import health as h
from test_compute_rolling import events, mark, new_image, versions


def ext(version="2.0", **settings):
    return {"name": "health", "properties": {"publisher": "Microsoft.ManagedServices",
                                             "type": "ApplicationHealthLinux", "typeHandlerVersion": version,
                                             "settings": dict({"protocol": "http", "port": 80}, **settings)}}


def at(extension, age, answer=h.HEALTHY, period=None):
    """(state, since) `age` realistic seconds after a start at 0 (time scale 1)."""
    return h.assess(extension=extension, running_since=0.0, now=float(age), answer=answer, period=period,
                    scaled=float)


SLOW_GRACE = ext(intervalInSeconds=10, numberOfProbes=3, gracePeriod=600)


@pytest.mark.parametrize("answer", [h.HEALTHY, h.UNHEALTHY])
def test_initializing_lasts_number_of_probes_not_the_grace_period(answer):
    assert at(SLOW_GRACE, 0, answer) == (h.INITIALIZING, 0.0)
    assert at(SLOW_GRACE, 29.9, answer)[0] == h.INITIALIZING          # two probes seen (10 s, 20 s)
    assert at(SLOW_GRACE, 30, answer) == (answer, 30.0)                # the third identical one settles it
    assert at(SLOW_GRACE, 5000, answer) == (answer, 30.0)


def test_grace_period_is_the_most_it_stays_initializing():
    # probes alternate every probe: never 3 identical in a row
    flapping = dict(answer="Flapping", period=10)
    assert at(SLOW_GRACE, 599, **flapping)[0] == h.INITIALIZING
    assert at(SLOW_GRACE, 600, **flapping) == (h.UNKNOWN, 600.0)       # http / https: Unknown
    tcp = ext(protocol="tcp", intervalInSeconds=10, numberOfProbes=3, gracePeriod=600)
    assert at(tcp, 600, **flapping) == (h.UNHEALTHY, 600.0)           # tcp has no Unknown
    assert at(ext(gracePeriod="PT1M", intervalInSeconds=10, numberOfProbes=3), 61, **flapping)[0] == h.UNKNOWN


def test_probes_without_a_verdict_are_unknown_after_the_grace_period():
    for answer in (h.UNKNOWN, h.INITIALIZING):
        assert at(SLOW_GRACE, 300, answer)[0] == h.INITIALIZING
        assert at(SLOW_GRACE, 600, answer) == (h.UNKNOWN, 600.0)
    default = ext(intervalInSeconds=10, numberOfProbes=3)               # grace = interval x probes
    assert h.grace_seconds(default) == 30
    assert at(default, 29, h.UNKNOWN)[0] == h.INITIALIZING and at(default, 30, h.UNKNOWN)[0] == h.UNKNOWN


def test_a_change_needs_number_of_probes_identical_answers():
    # 100 s Healthy, then 100 s Unhealthy...: probes every 10 s, 3 needed
    long_flap = dict(answer="Flapping", period=100)
    assert at(SLOW_GRACE, 95, **long_flap) == (h.HEALTHY, 30.0)
    assert at(SLOW_GRACE, 115, **long_flap) == (h.HEALTHY, 30.0)      # two Unhealthy answers: not yet
    assert at(SLOW_GRACE, 120, **long_flap) == (h.UNHEALTHY, 120.0)
    assert at(SLOW_GRACE, 225, **long_flap) == (h.HEALTHY, 220.0)
    assert at(SLOW_GRACE, 100_000 + 25, **long_flap) == (h.HEALTHY, 100_020.0)   # bounded look-back


def test_binary_states_have_neither_initializing_nor_unknown():
    binary = ext(version="1.0", intervalInSeconds=10, numberOfProbes=3, gracePeriod=600)
    assert at(binary, 5)[0] == h.UNHEALTHY                             # no Healthy signal yet
    assert at(binary, 30) == (h.HEALTHY, 30.0)
    assert at(binary, 30, h.UNKNOWN) == (h.UNHEALTHY, 30.0)           # a probe without an answer is a failure
    assert at(binary, 700, "Flapping", 10)[0] == h.UNHEALTHY


def test_no_extension_or_not_running_has_no_signal_and_codes_are_azures():
    assert at(None, 50) == (None, None)
    assert h.assess(extension=SLOW_GRACE, running_since=None, now=1.0, answer=h.HEALTHY, scaled=float) == (None, None)
    assert {s: h.vm_health(s, "t")["status"]["code"] for s in h.STATES} == {
        h.HEALTHY: "HealthState/healthy", h.UNHEALTHY: "HealthState/unhealthy",
        h.UNKNOWN: "HealthState/unknown", h.INITIALIZING: "HealthState/initializing"}
    assert h.next_probe(SLOW_GRACE, 0.0, 25.0, float) == 30.0


def test_an_extension_matcher_reads_the_instances_model_and_protected_settings_by_digest():
    from emulator.providers.compute import model as m
    script = {"name": "App", "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                                            "settings": {"fileUris": ["https://pkgs/app-1.5.0.tgz"], "mode": "x"}}}
    model = {"profile": {"extensionProfile": {"extensions": [ext(), script]}},
             "secrets": {"extensions/app/protectedSettings": m.secret_digest({"commandToExecute": "./install"})}}

    def matches(**wanted):
        return h.rule_matches({"extension": wanted}, "web", "/x/web", "0", [], model)

    assert matches(name="app") and matches(name="APP", settings={"fileUris": ["https://pkgs/app-1.5.0.tgz"]})
    assert not matches(name="app", settings={"fileUris": ["https://pkgs/app-1.4.0.tgz"]})
    assert not matches(name="other")
    assert matches(name="app", protected_settings={"commandToExecute": "./install"})
    assert not matches(name="app", protected_settings={"commandToExecute": "./install --bad"})
    assert not h.rule_matches({"extension": {"name": "app"}}, "web", "/x/web", "0", [], None)   # no model: no match
    rules = [{"match": {"extension": {"name": "app", "settings": {"mode": "x"}}}, "state": h.UNHEALTHY}]
    assert h.probe_rule(rules, "web", "/x/web", "0", [], model) == (h.UNHEALTHY, None)
    assert h.probe_rule(rules, "web", "/x/web", "0", [], {"profile": {}}) == (h.HEALTHY, None)


# --- through the SDK ------------------------------------------------------------------------------------

FAST = 0.005     # gracePeriod 600 s -> 3 s; the 5-minute batch health wait -> 1.5 s; a probe (5 s) -> 0.025 s


@pytest.fixture
def fleet(clean):
    clean.control.set_config(time_scale=FAST)
    clean.rg("rg")
    return clean, clean.compute()


def health_codes(compute):
    return {vm.instance_id: vm.properties.instance_view.vm_health.status.code
            for vm in compute.virtual_machine_scale_set_vms.list("rg", "web", expand="instanceView")
            if vm.properties.instance_view and vm.properties.instance_view.vm_health}


def rolling_set(emu, capacity, grace):
    return body(emu, capacity, health=True, grace=grace, overprovision=False, platformFaultDomainCount=1,
                image=gallery_image(emu, "1.0.0"), upgrade="Rolling",
                upgradePolicy={"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}})


def test_instances_turn_healthy_long_before_a_long_grace_period(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", body(
        emu, 2, health=True, grace=7200, overprovision=False)).result()
    # grace 7200 s would be 36 s here; one probe (5 s -> 0.025 s) settles it
    assert wait_until(lambda: health_codes(compute) == {"0": "HealthState/healthy", "1": "HealthState/healthy"},
                      timeout=10)
    emu.control.add_health_rule(match={"instance_ids": ["1"]}, state="Unknown")
    compute.virtual_machine_scale_set_vms.begin_restart("rg", "web", "1").result()
    assert health_codes(compute)["1"] == "HealthState/initializing"     # no verdict, grace not over


def test_rolling_upgrade_with_a_long_grace_period_waits_for_the_probes_not_the_grace(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", rolling_set(emu, 4, 600)).result()
    seq = mark(emu)
    compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("rg", "web").as_dict()["properties"]
    assert latest["runningStatus"]["code"] == "Completed" and "error" not in latest
    assert versions(compute) == {i: ("1.1.0", True) for i in "0123"}
    assert [e["batch"] for e in events(emu, "rolling.batch_healthy", seq)] == [1, 2]
    assert events(emu, "rolling.batch_unhealthy", seq) == []


def test_an_initializing_instance_is_waited_for_until_its_grace_period_then_judged(fleet):
    emu, compute = fleet
    compute.virtual_machine_scale_sets.begin_create_or_update("rg", "web", rolling_set(emu, 2, 600)).result()
    emu.control.add_health_rule(match={"image_version": "1.1.0"}, state="Initializing")   # probes never answer
    seq = mark(emu)
    with pytest.raises(HttpResponseError) as faulted:
        compute.virtual_machine_scale_sets.begin_update("rg", "web", new_image(emu, "1.1.0")).result()
    assert faulted.value.error.code == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    [started], [unhealthy] = events(emu, "rolling.batch_started", seq), events(emu, "rolling.batch_unhealthy", seq)
    # not failed at the 5-minute health wait: Initializing is "not yet" until the 600 s grace ended (Unknown)
    assert unhealthy["ts"] - started["ts"] >= (120 + 600) * FAST * 0.99
    assert health_codes(compute)["0"] == "HealthState/unknown"
