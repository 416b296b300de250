#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: autoscale_info
short_description: Read Azure Monitor autoscale settings
version_added: 0.1.0
description:
  - Returns one autoscale setting by name, the settings that target a scale set (or any resource), the settings
    of a resource group, or every setting of the subscription, in the shape M(fleetops.vmss.autoscale) takes
    and returns.
  - Returns O(ignore:autoscale_settings=[]) when nothing matches, including when the resource group does not exist.
  - Webhook addresses are secrets (they often hold a token); only their scheme and host are returned.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description:
      - The resource group to look in. If not set, the whole subscription is listed.
      - With O(scale_set), the scale set's resource group too.
    type: str
  name:
    description: The name of one setting. Requires O(resource_group).
    type: str
  scale_set:
    description:
      - Only the settings that target this scale set, by name, in O(resource_group) (which it requires).
    type: str
    aliases: [scale_set_name]
  target_resource_uri:
    description: Only the settings that target this resource, by resource ID (compared case-insensitively).
    type: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.autoscale
  - name: Autoscale Settings - Get (REST API)
    description: The REST shape that RV(autoscale_settings) returns in snake_case.
    link: https://learn.microsoft.com/rest/api/monitor/autoscale-settings/get
"""

EXAMPLES = r"""
- name: Is an autoscale setting acting on the scale set?
  fleetops.vmss.autoscale_info:
    resource_group: payments-prod
    scale_set: payments-api
  register: found

- name: Say so
  ansible.builtin.debug:
    msg: "{{ found.autoscale_settings | selectattr('enabled') | map(attribute='name') | list }}"

- name: One setting by name
  fleetops.vmss.autoscale_info:
    resource_group: payments-prod
    name: payments-api-autoscale

- name: Every setting of the subscription
  fleetops.vmss.autoscale_info:
"""

RETURN = r"""
autoscale_settings:
  description: The settings found.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The setting's resource ID.
      type: str
    name:
      description: The setting's name.
      type: str
      sample: payments-api-autoscale
    resource_group:
      description: The setting's resource group.
      type: str
    type:
      description: C(Microsoft.Insights/autoscaleSettings).
      type: str
    location:
      description: The setting's region.
      type: str
      sample: westeurope
    tags:
      description: The setting's tags.
      type: dict
    enabled:
      description: Whether autoscale acts.
      type: bool
      sample: true
    target_resource_uri:
      description: The resource the setting scales.
      type: str
    target_resource_location:
      description: The region of the target, when Azure reports it.
      type: str
    profiles:
      description:
        - The profiles, as M(fleetops.vmss.autoscale)'s O(fleetops.vmss.autoscale#module:profiles) option;
          capacities and scale-action values as numbers, durations as Azure stores them.
      type: list
      elements: dict
      sample:
        - name: default
          capacity: {minimum: 3, maximum: 30, default: 3}
          rules:
            - metric_trigger: {metric_name: Percentage CPU, metric_resource_uri: /subscriptions/.../payments-api,
                               time_grain: PT1M, statistic: Average, time_window: PT5M, time_aggregation: Average,
                               operator: GreaterThan, threshold: 70.0}
              scale_action: {direction: Increase, type: ChangeCount, value: 2, cooldown: PT5M}
          recurrence: null
          fixed_date: null
    notifications:
      description:
        - The notifications, as the O(fleetops.vmss.autoscale#module:notifications) option, webhook addresses masked.
      type: list
      elements: dict
      sample: [{operation: Scale, email: {send_to_subscription_administrator: false, send_to_subscription_co_administrators: false,
                                          custom_emails: [oncall@example.com]},
                webhooks: [{service_uri: "https://hooks.example.com/********", properties: {}}]}]
    predictive_autoscale_policy:
      description: The predictive autoscale policy (C(scale_mode) V(Disabled) when never set).
      type: dict
      sample: {scale_mode: ForecastOnly, scale_look_ahead_time: PT10M}
arm_requests:
  description: The number of requests sent to Azure Resource Manager (every page counts).
  returned: always
  type: int
  sample: 1
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _autoscale as autoscale
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._ids import scale_set_id


def describe(params):
    if params["name"]:
        return "autoscale setting %s/%s" % (params["resource_group"], params["name"])
    if params["resource_group"]:
        return "autoscale settings in resource group %s" % params["resource_group"]
    return "autoscale settings in the subscription"


def main():
    module = AzureModule(
        argument_spec=dict(resource_group=dict(type="str"), name=dict(type="str"),
                           scale_set=dict(type="str", aliases=["scale_set_name"]), target_resource_uri=dict(type="str")),
        required_by=dict(name="resource_group", scale_set="resource_group"),
        mutually_exclusive=[("scale_set", "target_resource_uri")],
        supports_check_mode=True,
    )
    try:
        params = module.params
        target = params["target_resource_uri"] or (
            scale_set_id(module.subscription_id, params["resource_group"], params["scale_set"])
            if params["scale_set"] else None)

        operations = module.client("monitor").autoscale_settings
        with arm_errors("get" if params["name"] else "list", describe(params)):
            if params["name"]:
                found = [autoscale.read_setting(operations, params["resource_group"], params["name"])]
            else:
                found = autoscale.list_settings(operations, params["resource_group"])

        module.exit_json(changed=False, autoscale_settings=autoscale.targeting(found, target), arm_requests=module.arm_requests)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
