# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout planner and gates: batching, canary, resume, protection, thresholds."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as r


def fleet(n, zones=3, uds=5, fds=5, **overrides):
    out = []
    for i in range(n):
        inst = {"instance_id": str(i), "zone": str(i % zones + 1) if zones else None, "update_domain": i % uds,
                "fault_domain": i % fds, "latest_model_applied": False, "health_state": "Healthy",
                "protection": {}}
        inst.update(overrides.get(str(i), {}))
        out.append(inst)
    return out


def ids(batches):
    return [[i["instance_id"] for i in b] for b in batches]


def test_percent_batches_round_up_against_the_whole_set():
    batches = r.plan_batches(fleet(10), "percent", 20, set_size=10)
    assert ids(batches) == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"]]
    assert ids(r.plan_batches(fleet(3), "percent", 20, set_size=3)) == [["0"], ["1"], ["2"]]


def test_count_batches_and_numeric_id_order():
    instances = fleet(12)
    instances.reverse()
    assert ids(r.plan_batches(instances, "count", 5)) == [[str(i) for i in range(5)],
                                                          [str(i) for i in range(5, 10)], ["10", "11"]]


def test_update_domain_batches_follow_domain_order_and_cap():
    batches = r.plan_batches(fleet(10, uds=5), "update_domain")
    assert ids(batches) == [["0", "5"], ["1", "6"], ["2", "7"], ["3", "8"], ["4", "9"]]
    assert ids(r.plan_batches(fleet(10, uds=2), "update_domain", batch_size=3)) == [
        ["0", "2", "4"], ["6", "8"], ["1", "3", "5"], ["7", "9"]]


def test_zone_and_fault_domain_batches():
    assert ids(r.plan_batches(fleet(6, zones=3), "zone")) == [["0", "3"], ["1", "4"], ["2", "5"]]
    assert ids(r.plan_batches(fleet(4, fds=2), "fault_domain")) == [["0", "2"], ["1", "3"]]
    regional = fleet(3, zones=0)
    assert ids(r.plan_batches(regional, "zone")) == [["0", "1", "2"]]   # no zones: one batch


def test_canary_goes_first_then_the_plan():
    batches = r.plan_batches(fleet(10), "percent", 50, canary=1, set_size=10)
    assert ids(batches) == [["0"], ["1", "2", "3", "4", "5"], ["6", "7", "8", "9"]]


def test_prioritize_unhealthy_puts_them_first():
    instances = fleet(5, **{"3": {"health_state": "Unhealthy"}, "4": {"health_state": "Unknown"}})
    assert ids(r.plan_batches(instances, "count", 2, prioritize_unhealthy=True)) == [["3", "4"], ["0", "1"], ["2"]]


def test_select_targets_resumes_and_skips_protected():
    instances = fleet(5, **{"0": {"latest_model_applied": True},
                            "2": {"protection": {"protect_from_scale_set_actions": True}}})
    targets, skipped = r.select_targets(instances)
    assert [t["instance_id"] for t in targets] == ["1", "3", "4"]
    assert skipped == [{"instance_id": "2", "reason": "protect_from_scale_set_actions"}]


def test_precheck_refuses_an_already_unhealthy_set():
    instances = fleet(10, **{str(i): {"health_state": "Unhealthy"} for i in range(3)})
    assert r.precheck(instances, 20).startswith("3 of 10 instances (30%)")
    assert r.precheck(instances, 30) is None


def test_gate_waits_on_initializing_and_passes_when_healthy():
    instances = fleet(4, **{"0": {"health_state": "Initializing"}})
    gate = r.batch_gate(["0", "1"], ["0", "1"], instances, r.Gate(20, 20))
    assert gate["state"] == "waiting" and gate["pending"] == ["0"]
    gate = r.batch_gate(["0", "1"], ["0", "1"], fleet(4), r.Gate(20, 20))
    assert gate["state"] == "passed" and gate["healthy"] == ["0", "1"]


def test_gate_fails_on_unhealthy_upgraded_instances_unknown_included():
    instances = fleet(10, **{"0": {"health_state": "Unknown"}})
    gate = r.batch_gate(["0", "1"], ["0", "1"], instances, r.Gate(50, 20))
    assert gate["state"] == "failed"
    assert "max_unhealthy_upgraded_instance_percent=20" in gate["reason"]


def test_gate_fails_when_the_whole_set_crosses_its_threshold():
    instances = fleet(10, **{str(i): {"health_state": "Unhealthy"} for i in range(5, 9)})
    gate = r.batch_gate(["0"], ["0"], instances, r.Gate(30, 100))
    assert gate["state"] == "failed" and "max_unhealthy_instance_percent=30" in gate["reason"]


def test_gate_counts_a_vanished_instance_as_unhealthy():
    gate = r.batch_gate(["0", "42"], ["0", "42"], fleet(3), r.Gate(100, 20))
    assert gate["state"] == "failed" and gate["unhealthy"] == ["42"]


@pytest.mark.parametrize("args,message", [
    (("percent", None, 0), "batch_by=percent needs batch_size"),
    (("percent", 150, 0), "batch_by=percent needs batch_size"),
    (("count", 0, 0), "batch_by=count needs batch_size"),
    (("count", 1, -1), "canary must be"),
])
def test_invalid_options_are_refused(args, message):
    with pytest.raises(r.PlanError, match=message):
        r.validate_options(*args)


@pytest.mark.parametrize("thresholds,message", [
    ((120, 20), "max_unhealthy_instance_percent must be between 0 and 100, not 120."),
    ((20, -1), "max_unhealthy_upgraded_instance_percent must be between 0 and 100, not -1."),
])
def test_a_gate_cannot_be_made_from_thresholds_outside_0_to_100(thresholds, message):
    with pytest.raises(r.PlanError, match=re.escape(message)):
        r.Gate(*thresholds)
    gate = r.Gate.of({"max_unhealthy_instance_percent": 0, "max_unhealthy_upgraded_instance_percent": 100})
    assert (gate.max_unhealthy_percent, gate.max_unhealthy_upgraded_percent) == (0, 100)


def test_estimate_and_describe():
    batches = r.plan_batches(fleet(10), "percent", 20, set_size=10)
    assert r.estimate_seconds(batches, 120, 30, 10) == 5 * 150 + 4 * 10
    assert r.estimate_seconds(batches, 120, 30, 10, soak_seconds=60, canary=1) == 5 * 150 + 4 * 10 + 60
    plan = r.describe_plan(batches[:2], canary=2)
    assert plan[0] == {"index": 0, "kind": "canary", "instance_ids": ["0", "1"], "update_domains": [0, 1],
                       "fault_domains": [0, 1], "zones": ["1", "2"]}
    assert plan[1]["index"] == 1 and plan[1]["kind"] == "batch"
    assert [b["kind"] for b in r.describe_plan(batches)] == ["batch"] * 5


@given(n=st.integers(0, 60), size=st.integers(1, 100), by=st.sampled_from(r.BATCH_BY), canary=st.integers(0, 5),
       unhealthy=st.sets(st.integers(0, 59)))
def test_every_target_is_planned_exactly_once(n, size, by, canary, unhealthy):
    instances = fleet(n, **{str(i): {"health_state": "Unhealthy"} for i in unhealthy})
    batches = r.plan_batches(instances, by, size, canary=canary, prioritize_unhealthy=True, set_size=n)
    planned = [i["instance_id"] for b in batches for i in b]
    assert sorted(planned, key=int) == [str(i) for i in range(n)]
    assert all(batches)


# --- gate details, resume, rollback targets ----------------------------------------------------------------

def test_gate_reports_the_threshold_crossed_and_the_percents():
    instances = fleet(10, **{"0": {"health_state": "Unhealthy"}, "1": {"health_state": "Unhealthy"}})
    gate = r.batch_gate(["0", "1"], ["0", "1"], instances, r.Gate(50, 20))
    assert gate["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert (gate["upgraded_percent"], gate["set_percent"]) == (100.0, 20.0)
    gate = r.batch_gate(["2"], ["2"], instances, r.Gate(10, 20))
    assert gate["code"] == "MaxUnhealthyInstancePercentExceeded" and gate["state"] == "failed"
    assert r.batch_gate(["2"], ["2"], fleet(3), r.Gate(20, 20))["code"] is None


def test_precheck_ignores_instances_an_interrupted_run_upgraded_but_keeps_the_whole_set_as_base():
    instances = fleet(10, **{str(i): {"health_state": "Unhealthy"} for i in range(3)})
    assert r.precheck(instances, 20, ignore=["0", "1"]) is None
    assert r.precheck(instances, 5, ignore=["0", "1"]).startswith("1 of 10 instances (10%)")


def test_upgraded_busy_and_rollback_targets():
    instances = fleet(5, **{"0": {"latest_model_applied": True},
                            "1": {"latest_model_applied": True, "protection": {"protect_from_scale_set_actions": True}},
                            "2": {"latest_model_applied": None, "provisioning_state": "Updating"},
                            "3": {"provisioning_state": "Succeeded"}})
    assert r.upgraded(instances) == ["0"]
    assert [i["instance_id"] for i in instances if r.is_busy(i)] == ["2"]
    # after the previous model is restored: those not on it, protected excepted, unknown (None) left alone
    assert r.rollback_targets(instances) == ["3", "4"]


def test_health_of_a_batch_and_settle_time():
    health = r.health_of(["1", "9"], fleet(3, **{"1": {"health_state": "Initializing"}}))
    assert health == {"1": "Initializing", "9": None}
    # gracePeriod is the most an instance stays Initializing, not how long it does (probes x interval)
    assert r.settle_seconds({"gracePeriod": 90, "intervalInSeconds": 5}) == 5
    assert r.settle_seconds({"gracePeriod": "PT10M", "intervalInSeconds": 15, "numberOfProbes": 2}) == 30
    assert r.settle_seconds({"intervalInSeconds": 10, "numberOfProbes": 3}) == 30
    assert r.settle_seconds(None) == 5


def test_describe_plan_with_a_resume_check_then_the_canary():
    batches = [fleet(2), fleet(1), fleet(3)]
    assert [b["kind"] for b in r.describe_plan(batches, canary=1, resume=True)] == ["resume", "canary", "batch"]
    assert [b["index"] for b in r.describe_plan(batches, resume=True)] == [0, 1, 2]


def test_halt_messages():
    assert r.halt_message("rg/api", 0, 5, "2 of 2 upgraded instances are unhealthy.", rolled_back=2) == (
        "Rollout of scale set rg/api halted after batch 1 of 5: 2 of 2 upgraded instances are unhealthy; "
        "rolled back 2 instances")
    assert r.halt_message("rg/api", None, 3, "too many unhealthy") == (
        "Rollout of scale set rg/api halted before batch 1 of 3: too many unhealthy")
    assert r.halt_message("rg/api", 1, 3, "x", rolled_back=1).endswith("; rolled back 1 instance")


@pytest.mark.parametrize("timing,message", [
    ({"health_timeout": 0}, "health_timeout must be more than 0"),
    ({"canary_soak": -1}, "canary_soak must be 0 or more"),
    ({"pause_between_batches": -0.5}, "pause_between_batches must be 0 or more"),
    ({"max_batches": 0}, "max_batches must be 1 or more"),
])
def test_invalid_timing_is_refused(timing, message):
    with pytest.raises(r.PlanError, match=message):
        r.validate_options("percent", 20, 0, **timing)
    r.validate_options("percent", 20, 0, health_timeout=1, canary_soak=0, max_batches=None)


# --- the rollback point kept in tags ----------------------------------------------------------------------

GALLERY = "/subscriptions/%s/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments/versions/%s"


def test_marker_round_trip_split_over_tags_of_at_most_256_characters():
    marker = r.new_marker({"image": {"id": GALLERY % ("0" * 36, "1.6.0")}, "sku": {"name": "Standard_D2s_v5"}},
                          {"image": {"id": GALLERY % ("0" * 36, "1.7.0")}}, "2026-11-22T04:30:00.000Z")
    tags = r.encode_marker(marker)
    assert sorted(tags) == ["fleetops.rollout", "fleetops.rollout.2"]
    assert all(len(value) <= r.TAG_VALUE_MAX for value in tags.values())
    owned = dict(tags, team="payments")
    assert r.decode_marker(owned) == marker
    assert r.without_marker(owned) == {"team": "payments"}
    assert r.decode_marker({"team": "payments"}) is None
    assert r.encode_marker(dict(marker, before={})) == {"fleetops.rollout": r.encode_marker(
        dict(marker, before={}))["fleetops.rollout"]}          # short: one tag


def test_marker_tags_are_found_case_insensitively():
    marker = r.new_marker({"image": {"publisher": "p", "offer": "o", "sku": "s", "version": "1"}}, {}, "t")
    tags = {key.upper(): value for key, value in r.encode_marker(marker).items()}
    assert r.decode_marker(tags) == marker and r.without_marker(tags) == {}


@pytest.mark.parametrize("value", ["not json", "[1]", '{"before": {}, "state": "done"}', '{"state": "rolling"}'])
def test_a_tag_that_is_not_a_rollback_point_is_refused(value):
    with pytest.raises(r.PlanError, match="is not a rollback point this module wrote"):
        r.decode_marker({"fleetops.rollout": value})


@given(text=st.text(min_size=0, max_size=900))
def test_marker_encoding_survives_any_text(text):
    marker = r.new_marker({"image": {"id": text}}, {"image": {"id": text[::-1]}}, "t", state="rolling_back")
    tags = r.encode_marker(marker)
    assert all(len(v) <= r.TAG_VALUE_MAX for v in tags.values()) and r.decode_marker(tags) == marker


# --- pacing the health polls -----------------------------------------------------------------------------

# Recorded x-ms-ratelimit-remaining-resource values (GUIDE.md "Throttling headers"; azure-cli recordings).
INSTANCE_LIST = "Microsoft.Compute/HighCostGetVMScaleSet3Min;178,Microsoft.Compute/HighCostGetVMScaleSet30Min;898"
MANUAL_UPGRADE = ("Microsoft.Compute/VMScaleSetActions3Min;239,Microsoft.Compute/VMScaleSetActions30Min;1199,"
                  "Microsoft.Compute/VmssQueuedVMOperations;4800")
OPERATION_POLL = "Microsoft.Compute/GetOperation3Min;14999,Microsoft.Compute/GetOperation30Min;29999"
SCALE_SET_GET = "Microsoft.Compute/GetVMScaleSet3Min;395,Microsoft.Compute/GetVMScaleSet30Min;2575"
CREATE = ("Microsoft.Compute/CreateVMScaleSet3Min;59,Microsoft.Compute/CreateVMScaleSet30Min;299,"
          "Microsoft.Compute/VMScaleSetBatchedVMRequests5Min;1196")
OLDER_NAMES = "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum;2399,Microsoft.Compute/GetVMScaleSetResource;35"


def test_remaining_reads_takes_the_scarcest_read_bucket_of_any_window():
    assert r.remaining_reads(INSTANCE_LIST) == 178
    assert r.remaining_reads(OPERATION_POLL) == 14999
    assert r.remaining_reads(SCALE_SET_GET) == 395
    assert r.remaining_reads(OLDER_NAMES) == 35                     # the earlier naming still parses
    # the 30-minute window can be the scarcer one
    assert r.remaining_reads("Microsoft.Compute/HighCostGetVMScaleSet3Min;170,"
                             "Microsoft.Compute/HighCostGetVMScaleSet30Min;12") == 12
    # a read answer that also reports a write-side bucket: only the read buckets pace the polls
    assert r.remaining_reads(INSTANCE_LIST + ",Microsoft.Compute/VmssQueuedVMOperations;0") == 178
    # no read bucket named: every bucket counts (unknown names are not ignored)
    assert r.remaining_reads(MANUAL_UPGRADE) == 239
    assert r.remaining_reads(CREATE) == 59
    assert r.remaining_reads("Contoso/Whatever1Hour;7, Contoso/Other;9") == 7
    assert r.remaining_reads(None) is None and r.remaining_reads("garbage") is None
    assert r.remaining_reads("Microsoft.Compute/GetVMScaleSet3Min;x") is None


def test_recorded_budgets_leave_the_polls_at_the_pace_asked():
    # 178 left of 180: a one-page poll every wait_sleep is comfortable
    assert r.poll_interval(5, 5, r.remaining_reads(INSTANCE_LIST), 1) == 5
    # a 20-page list (2000 instances) with 30 tokens left backs off, then recovers once 200 are back
    assert r.poll_interval(5, 5, 30, 20) == 10
    assert r.poll_interval(10, 5, 200, 20) == 5


def test_the_next_look_halves_what_is_left_then_lands_on_the_expected_moment():
    assert r.next_look(None, 5) == 5 and r.next_look(-2, 5) == 5 and r.next_look(0, 5) == 5   # unknown, or past
    assert r.next_look(100, 5) == 50 and r.next_look(21, 5) == 10.5    # far: half of what is left
    assert r.next_look(20, 5) == 20 and r.next_look(2, 5) == 2          # near: on the moment itself


def test_polls_slow_down_before_the_budget_runs_out_and_recover():
    assert r.poll_interval(5, 5, None, 1) == 5                 # no header: as asked
    assert r.poll_interval(5, 5, 30, 1) == 5                   # plenty left
    assert r.poll_interval(5, 5, 2, 1) == 10                   # fewer than three polls' worth: back off
    assert r.poll_interval(40, 5, 2, 1) == r.MAX_POLL_SECONDS   # capped
    assert r.poll_interval(10, 5, 5, 1) == 10                  # between: keep the pace
    assert r.poll_interval(10, 5, 25, 2) == 5                  # refilled (ten polls of 2 pages)
    assert r.poll_interval(5, 90, 0, 1) == 90                  # never faster than asked


def test_the_budget_others_take_counts_as_need():
    # 60 left, and the bucket lost 25 since this client's last poll (the other rollouts of the subscription):
    # fewer than three intervals' worth remains, back off although one page alone would be comfortable
    assert r.poll_interval(5, 5, 60, 1, previous=85) == 10
    assert r.poll_interval(5, 5, 60, 1) == 5
    assert r.poll_interval(10, 5, 60, 1, previous=50) == 5      # refilling: back towards the pace asked, by halves
    assert r.poll_interval(40, 5, 300, 1, previous=290) == 20


def shared_bucket_run(pollers, use_previous, seconds=1800.0, capacity=180.0, window=180.0, base=2.0):
    """Pollers of one subscription sharing a read bucket (continuous refill, as emulator/throttling.py): each
    polls one page, notes the tokens left and paces itself. Returns (429s, polls)."""
    rate, tokens, stamp = capacity / window, capacity, 0.0
    due = [index * base / pollers for index in range(pollers)]
    state = [{"interval": base, "remaining": None} for _poller in range(pollers)]
    throttled = polls = 0
    while True:
        who = min(range(pollers), key=due.__getitem__)
        now = due[who]
        if now > seconds:
            return throttled, polls
        tokens, stamp = min(capacity, tokens + (now - stamp) * rate), now
        if tokens < 1:
            throttled += 1
            due[who] = now + max((1 - tokens) / rate, 0.01)     # Retry-After
            continue
        tokens -= 1
        polls += 1
        left, mine = int(tokens), state[who]
        mine["interval"] = r.poll_interval(mine["interval"], base, left, 1,
                                           previous=mine["remaining"] if use_previous else None)
        mine["remaining"] = left
        due[who] = now + mine["interval"]


def test_parallel_pollers_of_a_subscription_stay_within_its_shared_budget():
    # ten rollouts polling every 2 s ask five times the refill: each sees the others' reads in the bucket's fall
    throttled, polls = shared_bucket_run(10, use_previous=True)
    assert throttled == 0 and polls > 1500, (throttled, polls)    # about the refill (1/s), not starved
    # counting only its own page, each notices too late: the shared bucket runs dry
    assert shared_bucket_run(10, use_previous=False)[0] > 0


# --- which model an instance runs: its own image and size, whatever Azure says of "latest" ------------------

IMAGE_ID = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/golden/images/api"
UBUNTU = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}


@pytest.mark.parametrize("have,want,runs", [
    ({"id": IMAGE_ID + "/versions/1.7.0"}, {"id": IMAGE_ID + "/versions/1.7.0"}, True),
    ({"id": IMAGE_ID.upper() + "/Versions/1.7.0/"}, {"id": IMAGE_ID + "/versions/1.7.0"}, True),    # ids: any case
    ({"id": IMAGE_ID + "/versions/1.6.0"}, {"id": IMAGE_ID + "/versions/1.7.0"}, False),
    # on the image definition ("latest"): the version it got is exactVersion
    ({"id": IMAGE_ID, "exact_version": "1.7.0"}, {"id": IMAGE_ID + "/versions/1.7.0"}, True),
    ({"id": IMAGE_ID, "exact_version": "1.6.0"}, {"id": IMAGE_ID + "/versions/1.7.0"}, False),
    ({"id": IMAGE_ID}, {"id": IMAGE_ID + "/versions/1.7.0"}, False),
    ({"id": IMAGE_ID, "exact_version": "1.6.0"}, {"id": IMAGE_ID}, True),
    ({"id": IMAGE_ID, "exact_version": "1.6.0"}, {"id": IMAGE_ID + "/versions/latest"}, True),
    # what "latest" resolves to is not known here: a pinned version is not "latest"
    ({"id": IMAGE_ID + "/versions/1.7.0"}, {"id": IMAGE_ID}, False),
    ({"id": IMAGE_ID + "/versions/1.7.0"}, dict(UBUNTU, version="1.7.0"), False),
    ({"shared_gallery_image_id": "/SharedGalleries/G-1/Images/api/Versions/2.0.0"},
     {"id": "/sharedgalleries/g-1/images/api/versions/2.0.0"}, True),
    (dict(UBUNTU, version="24.04.202401"), dict(UBUNTU, version="24.04.202401"), True),
    ({"publisher": "canonical", "offer": "UBUNTU-24_04-LTS", "sku": "Server", "version": "24.04.202401"},
     dict(UBUNTU, version="24.04.202401"), True),
    (dict(UBUNTU, version="24.04.202401"), dict(UBUNTU, version="24.04.202402"), False),
    (dict(UBUNTU, sku="minimal", version="24.04.202401"), dict(UBUNTU, version="24.04.202401"), False),
    (dict(UBUNTU, version="latest", exact_version="24.04.202401"), dict(UBUNTU, version="24.04.202401"), True),
    (dict(UBUNTU, version="latest", exact_version="24.04.202401"), dict(UBUNTU, version="24.04.202402"), False),
    (dict(UBUNTU, version="latest", exact_version="24.04.202401"), dict(UBUNTU), True),          # no version: latest
    (dict(UBUNTU, version="24.04.202401"), dict(UBUNTU, version="latest"), False),
    (dict(UBUNTU, version="1.0.0"), {"id": IMAGE_ID + "/versions/1.0.0"}, False),
    (None, {"id": IMAGE_ID + "/versions/1.0.0"}, None),                                # says nothing
])
def test_runs_image(have, want, runs):
    assert r.runs_image(have, want) is runs


def test_runs_model_compares_image_and_size_and_says_none_when_it_cannot_tell():
    instance = {"image": dict(UBUNTU, version="1.1.0"), "vm_size": "Standard_D4s_v3"}
    assert r.runs_model(instance, {"image": dict(UBUNTU, version="1.1.0"), "sku": {"name": "standard_d4s_v3"}})
    assert r.runs_model(instance, {"image": dict(UBUNTU, version="1.1.0"), "sku": {"name": "Standard_D2s_v3"}}) \
        is False
    assert r.runs_model(instance, {"sku": {"name": "Standard_D2s_v3", "tier": "Standard"}}) is False
    assert r.runs_model(dict(instance, vm_size=None), {"image": dict(UBUNTU, version="1.0.0"),
                                                       "sku": {"name": "x"}}) is False    # one differs: enough
    assert r.runs_model(dict(instance, vm_size=None), {"image": dict(UBUNTU, version="1.1.0"),
                                                       "sku": {"name": "x"}}) is None
    assert r.runs_model(instance, {}) is None and r.runs_model(instance, {"sku": {"tier": "Standard"}}) is None


def test_changed_part_keeps_what_tells_instances_apart():
    before = {"image": dict(UBUNTU, version="1.0.0"), "sku": {"name": "Standard_D2s_v3", "tier": "Standard"}}
    assert r.changed_part(before, {"image": dict(UBUNTU, version="1.1.0")}) == {"image": dict(UBUNTU, version="1.1.0")}
    assert r.changed_part(before, {"image": dict(UBUNTU, version="1.0.0"), "sku": {"name": "Standard_D4s_v3"}}) == {
        "sku": {"name": "Standard_D4s_v3"}}
    assert r.changed_part(before, {"sku": {"name": "standard_d2s_v3", "tier": "Basic"}}) == {}   # tier: unseen
    assert r.changed_part({"image": {"id": IMAGE_ID}}, {"image": {"id": IMAGE_ID + "/versions/1.7.0"}}) == {
        "image": {"id": IMAGE_ID + "/versions/1.7.0"}}
    assert r.changed_part(None, None) == {}


def generation_fleet():
    """Ten instances after a model change 1.0.0 -> 1.1.0 moved 0 and 1, then the revert to 1.0.0, as Azure
    reports them: no instance is on the latest model (the revert is a new model generation)."""
    def image(version):
        return {"id": IMAGE_ID + "/versions/" + version}
    return fleet(10, **{str(i): {"image": image("1.1.0" if i < 2 else "1.0.0"), "vm_size": "Standard_D2s_v3",
                                 "latest_model_applied": False} for i in range(10)})


def test_after_a_revert_only_the_moved_instances_are_rolled_back_whatever_latest_says():
    before, target = {"image": {"id": IMAGE_ID + "/versions/1.0.0"}}, {"image": {"id": IMAGE_ID + "/versions/1.1.0"}}
    instances = generation_fleet()
    assert r.rollback_targets(instances, before) == ["0", "1"]
    assert r.upgraded(instances, target) == ["0", "1"]
    targets, _skipped = r.select_targets(instances, target)
    assert [i["instance_id"] for i in targets] == [str(i) for i in range(2, 10)]
    # the content belief gives the same answer: 2..9 are "latest" again
    content = [dict(i, latest_model_applied=i["instance_id"] not in ("0", "1")) for i in instances]
    assert r.rollback_targets(content, before) == ["0", "1"]
    # without a model part, latestModelApplied is all there is (Azure's answer: the whole set)
    assert r.rollback_targets(instances) == [str(i) for i in range(10)]


def test_resume_and_skip_decisions_read_the_instance_not_latest():
    target = {"image": {"id": IMAGE_ID + "/versions/1.1.0"}}
    instances = generation_fleet()
    instances[0]["protection"] = {"protect_from_scale_set_actions": True}
    instances[5]["latest_model_applied"] = True          # latest, yet still on 1.0.0: a target
    instances[6]["image"] = {"id": IMAGE_ID, "exact_version": "1.1.0"}   # on "latest", which is 1.1.0: done
    targets, skipped = r.select_targets(instances, target)
    assert [i["instance_id"] for i in targets] == ["2", "3", "4", "5", "7", "8", "9"]
    assert skipped == []                                  # 0 already runs the target: done, not skipped
    assert r.upgraded(instances, target) == ["1", "6"]    # protected 0 is never the rollout's


# --- the health timeout judged by the thresholds (Azure's rolling upgrade goes on within its limits) --------

def test_gate_at_the_timeout_passes_a_batch_within_both_thresholds():
    instances = fleet(20, **{"1": {"health_state": "Unhealthy"}})
    assert r.batch_gate(["0", "1", "2", "3"], ["0", "1", "2", "3"], instances, r.Gate(5, 25))["state"] == "waiting"
    gate = r.batch_gate(["0", "1", "2", "3"], ["0", "1", "2", "3"], instances, r.Gate(5, 25), at_timeout=True)
    assert gate["state"] == "passed" and gate["code"] is None and gate["unhealthy"] == ["1"]
    assert (gate["upgraded_percent"], gate["set_percent"]) == (25.0, 5.0)
    assert gate["reason"].endswith("within max_unhealthy_upgraded_instance_percent=25 and "
                                   "max_unhealthy_instance_percent=5")
    # one more unhealthy anywhere in the set: beyond 5%
    instances[10]["health_state"] = "Unhealthy"
    gate = r.batch_gate(["0", "1", "2", "3"], ["0", "1", "2", "3"], instances, r.Gate(5, 25), at_timeout=True)
    assert gate["state"] == "failed" and gate["code"] == "MaxUnhealthyInstancePercentExceeded"


def test_gate_at_the_timeout_counts_initializing_upgraded_instances_as_unhealthy():
    ids = ["0", "1", "2", "3"]
    one = fleet(20, **{"1": {"health_state": "Initializing"}})
    assert r.batch_gate(ids, ids, one, r.Gate(5, 25))["state"] == "waiting"
    gate = r.batch_gate(ids, ids, one, r.Gate(5, 25), at_timeout=True)
    assert gate["state"] == "passed" and (gate["upgraded_percent"], gate["set_percent"]) == (25.0, 5.0)
    two = fleet(20, **{"1": {"health_state": "Initializing"}, "2": {"health_state": None}})
    gate = r.batch_gate(ids, ids, two, r.Gate(5, 25), at_timeout=True)
    assert gate["state"] == "failed" and gate["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert gate["upgraded_percent"] == 50.0 and gate["pending"] == ["1", "2"]
    # instances outside the rollout that are still Initializing are not its verdict
    other = fleet(20, **{str(i): {"health_state": "Initializing"} for i in range(10, 20)})
    assert r.batch_gate(ids, ids, other, r.Gate(5, 25), at_timeout=True)["state"] == "passed"


def test_gate_at_the_timeout_with_every_instance_healthy_has_no_note():
    gate = r.batch_gate(["0"], ["0"], fleet(4), r.Gate(20, 20), at_timeout=True)
    assert gate["state"] == "passed" and gate["reason"] is None


def test_a_resumed_rollback_watches_the_instances_on_the_restored_model_that_are_not_healthy():
    before = {"image": {"publisher": "p", "offer": "o", "sku": "s", "version": "1.0.0"}}
    on_before = {"image": dict(before["image"])}
    instances = fleet(6, **{
        "0": dict(on_before, health_state="Unhealthy"), "1": dict(on_before), "2": dict(on_before, health_state=None),
        "3": dict(on_before, health_state="Unhealthy", protection={"protect_from_scale_set_actions": True}),
        "4": {"image": dict(before["image"], version="1.1.0")}, "5": {"image": None, "latest_model_applied": None}})
    assert r.rollback_targets(instances, before) == ["4"]
    assert r.rollback_watch(instances, before, ["4"]) == ["4", "0", "2"]
    assert r.rollback_watch(instances, before, []) == ["0", "2"]


# --- extension rollouts (issue 19): what instances report, the rollback point's size ------------------------

APP_1 = {"name": "app", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
         "type_handler_version": "2.1", "settings": {"fileUris": ["https://pkgs.example.com/app-1.4.0.tgz"]}}
APP_2 = dict(APP_1, settings={"fileUris": ["https://pkgs.example.com/app-1.5.0.tgz"]})


def reporting(*extensions, **fields):
    """An instance reporting ``extensions`` (option shape, as _instance_state.reported_extensions gives them)."""
    return dict({"instance_id": "0", "image": dict(UBUNTU, version="1.0.0"), "vm_size": "Standard_D2s_v3",
                 "extensions": [dict(ext, provisioning_state="Succeeded") for ext in extensions]}, **fields)


def test_runs_model_reads_the_extensions_an_instance_reports():
    old, new = reporting(APP_1), reporting(dict(APP_2, name="APP", type_handler_version="2.1.3",
                                                auto_upgrade_minor_version=True))
    part = {"extensions": [{"name": "app", "settings": APP_2["settings"]}]}
    assert r.runs_model(old, part) is False and r.runs_model(new, part) is True
    assert r.runs_model(reporting(), part) is False                         # not installed: not on the target
    assert r.runs_model(dict(old, extensions=None), part) is None           # no resources reported: cannot say
    assert r.on_model(dict(old, extensions=None, latest_model_applied=True), part) is True   # then Azure's latest
    # the handler version: major.minor, or major alone when Azure may move the minor version itself
    assert r.runs_model(new, {"extensions": [{"name": "app", "type_handler_version": "2.1"}]}) is True
    assert r.runs_model(reporting(dict(APP_1, type_handler_version="2.2")),
                        {"extensions": [{"name": "app", "type_handler_version": "2.1"}]}) is False
    # an extension the previous model did not have: the instance must not run it
    absent = {"extensions": [{"name": "app", "absent": True}]}
    assert r.runs_model(reporting(), absent) is True and r.runs_model(old, absent) is False
    # with the image: both must hold
    assert r.runs_model(new, dict(part, image=dict(UBUNTU, version="1.1.0"))) is False


def test_changed_part_names_the_extensions_whose_definition_changed():
    before = {"extensions": [APP_1, dict(APP_1, name="agent")]}
    after = {"extensions": [APP_2, dict(APP_1, name="agent")]}
    assert r.changed_part(before, after) == {"extensions": [APP_2]}
    assert r.changed_part(before, {"extensions": [dict(APP_1, type="customscript")]}) == {}   # case only
    added = {"extensions": [{"name": "app", "absent": True}]}
    assert r.changed_part(added, {"extensions": [APP_1]}) == {"extensions": [APP_1]}
    assert r.changed_part({"extensions": [APP_1]}, added) == added          # the rollback of an added extension
    # fields the target does not set are not judged (a protected-settings-only change tells nothing apart)
    assert r.changed_part(before, {"extensions": [{"name": "app"}]}) == {}


def test_an_extension_rollout_moves_back_exactly_the_instances_reporting_the_target():
    before, target = {"extensions": [APP_1]}, {"extensions": [APP_2]}
    instances = [reporting(APP_2 if i < 2 else APP_1, instance_id=str(i), latest_model_applied=False)
                 for i in range(5)]
    assert r.upgraded(instances, target) == ["0", "1"]
    assert r.rollback_targets(instances, r.changed_part(target, before)) == ["0", "1"]
    assert [i["instance_id"] for i in r.select_targets(instances, target)[0]] == ["2", "3", "4"]


def test_a_large_rollback_point_is_compressed_and_still_within_tag_values():
    uris = ["https://pkgs.example.com/releases/2026/app-%d.%d.0/part-%02d.tgz?sv=2024-11-04&sp=r" % (1, n, n)
            for n in range(40)]
    marker = r.new_marker({"extensions": [dict(APP_1, settings={"fileUris": uris})]},
                          {"extensions": [dict(APP_2, settings={"fileUris": uris[::-1]})]}, "t",
                          secrets=["extensions/app/protected_settings", "custom_data"])
    plain = len(json.dumps(marker, separators=(",", ":")))
    tags = r.encode_marker(marker)
    assert plain > r.PLAIN_TAGS_MAX * r.TAG_VALUE_MAX and tags["fleetops.rollout"].startswith("z1:")
    assert len(tags) < plain / r.TAG_VALUE_MAX and all(len(v) <= r.TAG_VALUE_MAX for v in tags.values())
    assert r.decode_marker(dict(tags, team="payments")) == marker
    assert marker["secrets"] == ["custom_data", "extensions/app/protected_settings"]    # names, never values
    # the tag budget: ARM keeps 50 tags per resource
    assert r.marker_tag_problem({"team": "payments"}, marker) is None
    crowded = {"t%d" % n: "x" for n in range(50 - len(tags) + 1)}
    problem = r.marker_tag_problem(crowded, marker)
    assert problem and "at most 50" in problem and "Remove 1 tag," in problem


def test_a_truncated_compressed_rollback_point_is_refused():
    marker = r.new_marker({"extensions": [dict(APP_1, settings={"blob": "y" * 3000})]}, {}, "t")
    tags = r.encode_marker(marker)
    assert tags["fleetops.rollout"].startswith("z1:")
    with pytest.raises(r.PlanError, match="is not a rollback point this module wrote"):
        r.decode_marker({"fleetops.rollout": tags["fleetops.rollout"][:-7]})


def test_a_batch_s_event_is_bracketed_and_the_bracket_narrows_batch_by_batch():
    assert r.learn_bracket(None, None, 130.0) == (None, 130.0)            # seen at the first look
    assert r.learn_bracket(None, 123.0, 130.0) == (123.0, 130.0)
    assert r.learn_bracket((123.0, 130.0), None, 126.5) == (123.0, 126.5)   # the mid-way look saw it
    assert r.learn_bracket((123.0, 126.5), 124.75, 126.5) == (124.75, 126.5)   # it did not: seen at the next
    # a batch slower (or faster) than the bracket says, as Azure's may be: its own bracket replaces it
    assert r.learn_bracket((123.0, 126.5), 140.0, 150.0) == (140.0, 150.0)
    assert r.learn_bracket((123.0, 126.5), 90.0, 100.0) == (90.0, 100.0)


def test_looks_go_mid_way_into_the_bracket_then_to_its_end():
    assert r.look_targets(None) == []
    assert r.look_targets((None, 130.0)) == [130.0]
    assert r.look_targets((120.0, 130.0)) == [125.0, 130.0]
    assert r.look_targets((-1.0, 130.0)) == [130.0]   # a look before the write says nothing
