# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet rollout's plan (waves by region, canary first), per-region promotion flags and report."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.filter import fleet

VERSION_ID = "/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web/versions/1.7.1"
VERSION = {"id": VERSION_ID, "publishing_profile": {"target_regions": [
    {"name": "westeurope"}, {"name": "North Europe"}, {"name": "eastus"}]}}


def host(name, location, capacity=10, done=False, zones=()):
    return {"inventory_hostname": name, "scale_set": name, "scale_set_id": "/subscriptions/s/vmss/" + name, "resource_group": "rg", "subscription_id": "s",
            "location": location, "capacity": capacity, "zones": list(zones),
            "image": {"id": VERSION_ID if done else VERSION_ID.replace("1.7.1", "1.7.0")},
            "instance_count": capacity, "instance_image_versions": {("1.7.1" if done else "1.7.0"): capacity}}


@pytest.mark.parametrize("capacity, batch_by, size, canary, zones, expected", [
    (10, "percent", 20, 0, 0, 5), (10, "percent", 20, 1, 0, 6), (3, "percent", 20, 0, 0, 3),
    (10, "count", 4, 0, 0, 3), (10, "update_domain", 0, 0, 0, 5), (2, "update_domain", 0, 0, 0, 2),
    (9, "zone", 0, 0, 3, 3), (9, "fault_domain", 0, 1, 0, 4), (0, "percent", 20, 0, 0, 0), (1, "count", 5, 1, 0, 1)])
def test_estimated_batches(capacity, batch_by, size, canary, zones, expected):
    assert fleet.estimated_batches(capacity, batch_by, size, canary, zones) == expected


def test_canary_region_first_then_the_given_order_then_the_target_order():
    hosts = [host("us1", "East US"), host("eu1", "westeurope", 4), host("ne1", "northeurope", 2),
             host("eu2", "West Europe", 10, done=True)]

    plan = fleet.fleet_plan(hosts, VERSION, "North Europe", parallel=1, batch_size=50, batch_seconds=60,
                            pause_seconds=10)

    assert [wave["region"] for wave in plan["waves"]] == ["northeurope", "westeurope", "eastus"]
    assert plan["errors"] == [] and plan["regions_without_sets"] == []
    west = plan["waves"][1]
    assert [(item["host"], item["done"], item["batches"], item["estimated_seconds"]) for item in west["sets"]] == [
        ("eu1", False, 2, 130), ("eu2", True, 2, 0)]        # a finished set is skipped and costs nothing
    assert (west["pending"], west["estimated_seconds"]) == (1, 130)
    assert plan["estimated_seconds"] == 130 + 130 + 130

    assert plan["passed_regions"] == []
    ordered = fleet.fleet_plan(hosts, VERSION, "westeurope", region_order=["East US"], parallel=2)
    assert [wave["region"] for wave in ordered["waves"]] == ["westeurope", "eastus", "northeurope"]


def test_a_rerun_promotes_the_leading_finished_waves_only():
    hosts = [host("eu1", "westeurope", done=True), host("ne1", "northeurope"), host("us1", "eastus", done=True)]
    plan = fleet.fleet_plan(hosts, VERSION, "westeurope")
    assert [wave["pending"] for wave in plan["waves"]] == [0, 1, 0]
    assert plan["passed_regions"] == ["westeurope"]      # eastus waits for northeurope's wave to pass


def test_parallel_cap_sets_the_rounds_of_a_wave():
    hosts = [host("eu%d" % index, "westeurope", 5) for index in range(5)]
    plan = fleet.fleet_plan(hosts, VERSION, "westeurope", parallel=2, batch_by="count", batch_size=5,
                            batch_seconds=100)
    assert plan["waves"][0]["estimated_seconds"] == 300       # 5 sets, 2 at a time: 3 rounds of one batch


def test_a_region_the_version_does_not_target_and_a_canary_without_sets_are_refused():
    plan = fleet.fleet_plan([host("jp1", "japaneast"), host("eu1", "westeurope"), {"inventory_hostname": "web000001"}],
                            VERSION, "northeurope", region_order=["eastus"])
    assert plan["errors"] == [
        "host web000001 is not a scale-set host (the fleetops.vmss.instances inventory with host_type: scale_set)",
        "scale set jp1 is in japaneast, a region image version 1.7.1 does not target (its target regions: "
        "westeurope, northeurope, eastus)",
        "the canary region northeurope has no selected scale set",
        "fleet_region_order's eastus has no selected scale set"]
    assert plan["regions_without_sets"] == ["northeurope", "eastus"]
    with pytest.raises(AnsibleFilterError, match="image version"):
        fleet.fleet_plan([], {}, "westeurope")


def test_fleet_regions_promote_only_the_passed_regions_or_demote_all():
    plan = fleet.fleet_plan([host("eu1", "westeurope")], VERSION, "westeurope")
    assert fleet.fleet_regions(plan, ["West Europe"]) == [
        {"name": "westeurope", "exclude_from_latest": False}, {"name": "northeurope", "exclude_from_latest": True},
        {"name": "eastus", "exclude_from_latest": True}]
    assert all(region["exclude_from_latest"] for region in fleet.fleet_regions(plan, ["westeurope"], demote=True))


def test_report_of_a_halted_fleet():
    plan = fleet.fleet_plan([host("eu1", "westeurope"), host("eu2", "westeurope", done=True),
                             host("us1", "eastus")], VERSION, "westeurope")
    outcomes = {"eu1": {"failed": True, "status": "rolled_back", "msg": "batch 1 unhealthy",
                        "rollback": {"status": "succeeded"}, "summary": {"duration_seconds": 12.5}}}
    halted = {"host": "eu1", "wave": 1, "region": "westeurope", "msg": "batch 1 unhealthy"}

    report = fleet.fleet_report(plan, outcomes, halted, promoted=[])

    data = report["data"]
    assert (data["status"], data["set_counts"]) == ("halted", {"failed": 1, "already_done": 1, "not_started": 1})
    assert [[item["status"] for item in wave["sets"]] for wave in data["waves"]] == [
        ["failed", "already_done"], ["not_started"]]
    assert data["waves"][0]["sets"][0]["rollback"] == {"status": "succeeded"}
    assert "**Halted** in wave 1 (westeurope) by eu1: batch 1 unhealthy" in report["markdown"]
    assert "| 2 | eastus | us1 | 10 | 5 | not_started | no |" in report["markdown"]

    clean = fleet.fleet_report(plan, {"eu1": {"status": "succeeded"}, "us1": {"status": "succeeded"}}, None,
                               promoted=["westeurope", "eastus"])["data"]
    assert (clean["status"], clean["set_counts"]) == ("succeeded", {"succeeded": 2, "already_done": 1})


def batch(number, started, ended, outcome):
    return {"number": number, "kind": "batch", "started_at": "2026-12-06T10:%s.000Z" % started,
            "ended_at": "2026-12-06T10:%s.000Z" % ended, "outcome": outcome, "health": {"0": "Healthy"}}


def test_the_picture_shows_sets_by_wave_their_batches_and_the_halt():
    plan = fleet.fleet_plan([host("eu1", "westeurope"), host("eu2", "westeurope"), host("us1", "eastus")],
                            VERSION, "westeurope")
    outcomes = {
        "eu1": {"failed": True, "status": "rolled_back", "msg": "batch 1 unhealthy",
                "batches": [batch(1, "00:00", "02:00", "unhealthy")],
                "rollback": {"started_at": "2026-12-06T10:02:00Z", "ended_at": "2026-12-06T10:04:00Z", "outcome": "healthy"},
                "summary": {"started_at": "2026-12-06T10:00:00.000Z", "ended_at": "2026-12-06T10:04:00.000Z"}},
        "eu2": {"status": "stopped", "batches": [batch(1, "00:00", "01:40", "healthy")],
                "summary": {"started_at": "2026-12-06T10:00:00.000Z", "ended_at": "2026-12-06T10:01:40.000Z"}}}
    halted = {"host": "eu1", "wave": 1, "region": "westeurope", "msg": "batch 1 <unhealthy>",
              "at": "2026-12-06T10:02:00Z"}

    report = fleet.fleet_report(plan, outcomes, halted, promoted=[])
    svg = report["svg"]

    root = ElementTree.fromstring(svg.encode())                       # well-formed, standalone
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "wave 1 · westeurope" in texts and "wave 2 · eastus" in texts
    assert ["eu1 · failed", "eu2 · stopped", "us1 · not_started"] == [t for t in texts if " · " in t and "wave" not in t
                                                                      and "status" not in t]
    rects = {element.get("class"): element for element in root.iter("{http://www.w3.org/2000/svg}rect")}
    assert rects["batch unhealthy"].get("fill") == "#d32f2f" and rects["rollback healthy"].get("fill") == "#1e88e5"
    halt = [element for element in root.iter("{http://www.w3.org/2000/svg}line") if element.get("class") == "halt"]
    # the halt at 120 s of 240 s: the middle of the plot (x from 190 to 190 + 730; the axis ends at 250 s)
    assert len(halt) == 1 and abs(float(halt[0].get("x1")) - (190 + 120 / 250.0 * 730)) < 0.5
    assert "batch 1 &lt;unhealthy&gt;" in svg                          # escaped
    assert "Stopped after their batch, rollback point kept: eu2" in report["markdown"]
    assert report["data"]["waves"][0]["sets"][1]["batches_run"] == [
        {"number": 1, "kind": "batch", "started_at": "2026-12-06T10:00:00.000Z",
         "ended_at": "2026-12-06T10:01:40.000Z", "outcome": "healthy"}]
    assert fleet.fleet_report(plan, outcomes, halted, promoted=[])["svg"] == svg   # deterministic


def test_report_of_a_set_refused_in_its_preflight_and_of_a_replication_halt():
    plan = fleet.fleet_plan([host("eu1", "westeurope"), host("eu2", "westeurope"), host("us1", "eastus")],
                            VERSION, "westeurope")
    refused = {"host": "eu2", "wave": 1, "region": "westeurope", "msg": "Scale set rg/eu2 does not exist",
               "at": "2026-12-06T10:01:00Z"}
    stopped = {"status": "stopped", "batches": [batch(1, "00:00", "01:40", "healthy")],
               "summary": {"started_at": "2026-12-06T10:00:00.000Z", "ended_at": "2026-12-06T10:01:40.000Z"}}

    data = fleet.fleet_report(plan, {"eu1": stopped}, refused, promoted=[])["data"]

    # the refused set has no outcome of its own (nothing of it written): it is the failed one, with the halt's reason
    assert [(item["host"], item["status"], item["msg"]) for item in data["waves"][0]["sets"]] == [
        ("eu1", "stopped", ""), ("eu2", "failed", "Scale set rg/eu2 does not exist")]
    assert data["set_counts"] == {"stopped": 1, "failed": 1, "not_started": 1}

    waited = {"host": None, "wave": 2, "region": "eastus", "at": "2026-12-06T10:02:00Z",
              "msg": "image version 1.1.0 is not replicated to eastus within 60 s (replication Replicating)"}
    report = fleet.fleet_report(plan, {"eu1": {"status": "succeeded"}, "eu2": {"status": "succeeded"}}, waited,
                                promoted=["westeurope"])
    assert report["data"]["set_counts"] == {"succeeded": 2, "not_started": 1}
    assert ("**Halted** before wave 2 (eastus): image version 1.1.0 is not replicated to eastus within 60 s"
            in report["markdown"])
    assert "halt (wave 2)" in report["svg"] and "None" not in report["svg"]


def test_report_of_an_interrupted_fleet_says_interrupted_not_halted():
    plan = fleet.fleet_plan([host("eu1", "westeurope"), host("eu2", "westeurope"), host("us1", "eastus")],
                            VERSION, "westeurope")
    fault = {"host": "eu1", "wave": 1, "region": "westeurope", "interrupted": True, "at": "2026-12-06T10:02:00Z",
             "msg": "Failed to list the instances of scale set rg/eu1: ServerBusy: try later"}
    outcomes = {"eu1": {"status": "interrupted", "interrupted": True, "failed": False, "msg": fault["msg"]},
                "eu2": {"status": "stopped"}}

    report = fleet.fleet_report(plan, outcomes, fault, promoted=[])

    assert report["data"]["status"] == "interrupted"
    assert report["data"]["set_counts"] == {"interrupted": 1, "stopped": 1, "not_started": 1}
    assert "**Interrupted** (a fault, not a verdict: run it again to resume) in wave 1 (westeurope) by eu1" in report["markdown"]
    assert "**Halted**" not in report["markdown"] and "interrupted (eu1)" in report["svg"]

    # interrupted in its pre-flight: no outcome of its own, the set is interrupted, not failed
    refused = fleet.fleet_report(plan, {}, dict(fault, host="eu2"), promoted=[])["data"]
    assert [item["status"] for item in refused["waves"][0]["sets"]] == ["not_started", "interrupted"]


def test_regions_replicated_at_plan_time_need_no_wait():
    version = dict(VERSION, replication_status={"summary": [
        {"region": "West Europe", "state": "Completed"}, {"region": "North Europe", "state": "Replicating"},
        {"region": "eastus", "state": "Failed"}]})

    plan = fleet.fleet_plan([host("eu1", "westeurope"), host("ne1", "northeurope"), host("us1", "eastus")],
                            version, "westeurope")

    assert [(wave["region"], wave["replicated"]) for wave in plan["waves"]] == [
        ("westeurope", True), ("northeurope", False), ("eastus", False)]
    assert not any(wave["replicated"] for wave in fleet.fleet_plan([host("eu1", "westeurope")], VERSION, "westeurope")["waves"])


class CountingHostvars(dict):
    """hostvars whose lookups are counted (in Ansible each one builds all of a host's variables)."""
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookups = []

    def __getitem__(self, host):
        self.lookups.append(host)
        return super().__getitem__(host)


@pytest.mark.parametrize("facts, running, stop, lookups", [
    ({"a": {"rollout_failure": ""}, "b": {"rollout_failure": ""}, "c": {"rollout_failure": ""}}, ["a", "b", "c"], False,
     ["a", "b", "c"]),
    ({"a": {"rollout_failure": ""}, "b": {"rollout_failure": "2 of 6 unhealthy"}, "c": {}}, ["a", "b", "c"], True, ["a", "b"]),
    # c failed before the rollout role started: no rollout_failure at all
    ({"a": {"rollout_failure": ""}, "b": {"rollout_failure": ""}, "c": {}}, ["a", "b", "c"], True, ["a", "b", "c"]),
    # a set of an earlier round (no longer running) that never started the role does not stop this one
    ({"a": {}, "b": {"rollout_failure": ""}, "c": {"rollout_failure": ""}}, ["b", "c"], False, ["a", "b", "c"]),
    ({"a": {"rollout_failure": "refused"}, "b": {"rollout_failure": ""}, "c": {"rollout_failure": ""}}, ["b", "c"], True, ["a"]),
    # a fault (rollout_interrupted) stops the others too, though it is no verdict
    ({"a": {"rollout_failure": "", "rollout_interrupted": ""}, "b": {"rollout_failure": "", "rollout_interrupted": "503"},
      "c": {"rollout_failure": ""}}, ["a", "b", "c"], True, ["a", "b"]),
])
def test_the_sets_stop_on_the_first_failure_each_host_looked_up_once(facts, running, stop, lookups):
    hostvars = CountingHostvars(facts)
    assert fleet.fleet_stop(hostvars, ["a", "b", "c"], running) is stop
    assert hostvars.lookups == lookups
    assert fleet.FilterModule().filters()["fleet_stop"] is fleet.fleet_stop
