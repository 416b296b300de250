# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The closed loop (issue 21): the rulebook extensions/eda/rulebooks/rollback_on_alert.yml is a valid ansible-rulebook
rulebook (its pinned JSON schema), reads fields that Azure's documented alert payload has, and hands the alert to the
job (playbooks/alert_rollback.yml), whose filter fleetops.vmss.alert_scale_sets finds the scale set in it.

The rule's conditions and throttle run in ansible-rulebook itself (Java): tools/check_rulebook.py."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetops.vmss.plugins.filter.alert import FilterModule, alert_scale_sets

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
RULEBOOK = ROOT / "extensions" / "eda" / "rulebooks" / "rollback_on_alert.yml"
JOB = ROOT / "playbooks" / "alert_rollback.yml"
SAMPLE = json.loads((HERE / "alert_sample.json").read_text())
SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
# Azure sends alert targets lower-cased (the documented sample: .../resourcegroups/pipelinealertrg/providers/microsoft.compute/...)
VMSS = "/subscriptions/%s/resourcegroups/payments-prod/providers/microsoft.compute/virtualmachinescalesets/payments-api" % SUB


def fired(*targets, **essentials):
    alert = copy.deepcopy(SAMPLE)
    alert["data"]["essentials"].update(monitorCondition="Fired", alertTargetIDs=list(targets), **essentials)
    return alert


def rulebook():
    return yaml.safe_load(RULEBOOK.read_text())


def test_the_rulebook_is_valid_for_ansible_rulebook():
    schema = json.loads((HERE / "ruleset_schema.json").read_text())
    jsonschema.validate(rulebook(), schema)   # raises with the path of what is wrong
    [ruleset] = rulebook()
    [source] = ruleset["sources"]
    assert "azure.azcollection.azure_service_bus" in source


def test_a_rulebook_with_a_mistake_fails_the_schema():
    broken = rulebook()
    broken[0]["rules"][0]["throttle"]["once_within"] = "half an hour"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads((HERE / "ruleset_schema.json").read_text()))


def resolve(path, event):
    value = event
    for part in path.split(".")[1:]:
        value = value[part]
    return value


def test_the_rule_reads_fields_of_the_documented_alert_payload():
    [rule] = rulebook()[0]["rules"]
    paths = set(re.findall(r"event(?:\.\w+)+", rule["condition"])) | set(rule["throttle"]["group_by_attributes"])
    event = {"body": SAMPLE, "meta": {"message_id": "1"}}   # what azure_service_bus puts on the queue
    values = {path.rsplit(".", 1)[-1]: resolve(path, event) for path in paths}
    assert values == {"schemaId": "azureMonitorCommonAlertSchema", "monitorCondition": "Resolved",
                      "alertRule": "WCUS-R2-Gen2", "severity": "Sev3",
                      "alertTargetIDs": SAMPLE["data"]["essentials"]["alertTargetIDs"]}
    assert '"Fired"' in rule["condition"]   # never on Resolved


def test_the_job_takes_what_the_rule_passes():
    [rule] = rulebook()[0]["rules"]
    extra_vars = rule["action"]["run_job_template"]["job_args"]["extra_vars"]
    assert extra_vars == {"alert_payload": "{{ event.body }}"}
    assert "alert_payload | fleetops.vmss.alert_scale_sets" in JOB.read_text()


# --- the filter ------------------------------------------------------------------------------------------------

def test_the_documented_sample_names_no_scale_set():
    # its target is a standalone VM: not a scale set, nothing to roll back
    assert alert_scale_sets(SAMPLE) == []


def test_a_scale_set_target_lower_cased_as_azure_sends_it():
    [found] = alert_scale_sets(fired(VMSS))
    assert found == {"id": "/subscriptions/%s/resourceGroups/payments-prod/providers/Microsoft.Compute/"
                           "virtualMachineScaleSets/payments-api" % SUB,
                     "subscription_id": SUB, "resource_group": "payments-prod", "name": "payments-api"}


def test_instances_of_a_set_name_it_once_and_other_targets_are_left_out():
    alert = fired(VMSS + "/virtualmachines/3", VMSS.upper().replace("SUBSCRIPTIONS", "subscriptions") + "/virtualMachines/4",
                  "/subscriptions/%s/resourcegroups/payments-prod/providers/microsoft.network/loadbalancers/lb" % SUB,
                  VMSS.replace("payments-api", "payments-b"))
    assert [s["name"] for s in alert_scale_sets(alert)] == ["payments-api", "payments-b"]


def test_the_event_as_the_service_bus_source_makes_it():
    assert alert_scale_sets({"body": fired(VMSS), "meta": {"message_id": "m"}})[0]["name"] == "payments-api"


def test_the_rule_s_custom_property_names_the_set_of_an_alert_on_another_resource():
    alert = fired("/subscriptions/%s/resourcegroups/obs/providers/microsoft.insights/components/payments" % SUB)
    assert alert_scale_sets(alert) == []
    alert["data"]["customProperties"] = {"fleetops_scale_set_id": VMSS}
    assert [s["name"] for s in alert_scale_sets(alert)] == ["payments-api"]


@pytest.mark.parametrize("payload", [None, "text", {}, {"body": "not json"}, {"data": {"essentials": None}}])
def test_anything_else_fails_clearly(payload):
    with pytest.raises(AnsibleFilterError, match="common alert schema"):
        alert_scale_sets(payload)


def test_the_filter_is_registered():
    assert FilterModule().filters()["alert_scale_sets"] is alert_scale_sets
