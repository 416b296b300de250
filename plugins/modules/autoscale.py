#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: autoscale
short_description: Create, update and delete Azure Monitor autoscale settings of scale sets
version_added: 0.1.0
description:
  - Creates an autoscale setting (C(Microsoft.Insights/autoscaleSettings), API 2022-10-01) for a virtual machine
    scale set (or any resource Azure autoscales), changes the parts you set, or deletes it. Profiles (default,
    recurring, fixed date), metric rules with dimensions, notifications and predictive autoscale.
  - B(Only what you set is sent and compared.) On an existing setting every option is optional, so
    O(enabled=false) with the setting's O(name) (or O(scale_set)) and O(resource_group) suspends autoscale and
    leaves the profiles, notifications and tags as they are.
  - B(Profiles are set as a whole.) When you set O(profiles), they are the setting's profiles - matched by name,
    a profile you do not list is removed - and each profile is compared whole (capacity, rules, schedule).
  - "B(Compared the way Azure means it): durations by length (C(PT5M), C(PT05M), C(PT300S) and C(300) are the same);
    capacities and scale-action values as numbers (Azure stores C(\"3\")); enumerations (operators, statistics,
    directions, days, scale modes, ...) in any case, sent in Azure's spelling; metric names, resource IDs and time
    zones case-insensitively; dimension values, custom e-mails and webhooks in any order; rules in order."
  - B(Invalid options fail before any write), with every reason at once - maximum below minimum, a default outside
    them, an unknown operator, statistic, aggregation, direction or action type, a duration that is not one or is
    outside Azure's bounds, a time window shorter than its time grain, a scale-action value Azure refuses, and for a
    new setting a missing target or profile.
  - B(Warnings), for what Azure allows but is usually a mistake - a profile with a scale-out rule and no scale-in
    rule, and a rule whose cooldown is shorter than its time window.
  - Updates are a PUT of the setting as read with your changes put in (Azure's PATCH takes the whole profile list
    too). Autoscale settings have no ETag, so a change someone makes between this module's read and its write is
    overwritten by the read copy.
  - B(Webhook addresses are secrets) (they often hold a token); they are compared, but never appear in results or
    diffs, where only their scheme and host are shown.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description:
      - The resource group of the autoscale setting, and of the scale set when you name it with O(scale_set).
    type: str
    required: true
  name:
    description:
      - The autoscale setting's name.
      - Default V(<scale set>-autoscale), after O(scale_set) or the last name of O(target_resource_uri).
    type: str
  scale_set:
    description:
      - The scale set to autoscale, by name, in O(resource_group).
      - Needed (or O(target_resource_uri)) to create a setting; on an existing one, compared, since Azure cannot
        change a setting's target.
    type: str
    aliases: [scale_set_name]
  target_resource_uri:
    description:
      - The resource to autoscale, by resource ID, for a scale set in another resource group or another resource type.
    type: str
  state:
    description: V(present) creates or updates the setting; V(absent) deletes it (the capacity stays as it is).
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - The setting's region. If not set when creating, the scale set's. Cannot be changed.
    type: str
  enabled:
    description:
      - Whether autoscale acts. When creating, V(true) unless set; on an existing setting, left as it is unless set.
    type: bool
  profiles:
    description:
      - The setting's profiles (at most 20). Needed to create a setting.
      - At most one profile has neither O(profiles[].recurrence) nor O(profiles[].fixed_date) (the default profile).
        Azure uses the fixed-date profile whose dates hold now, else the recurring profile that started last,
        else the default one.
    type: list
    elements: dict
    suboptions:
      name:
        description: The profile's name.
        type: str
        required: true
      capacity:
        description:
          - The instance counts, numbers or numeric strings (Azure stores strings).
          - "Checked before any write: O(profiles[].capacity.maximum) is at least O(profiles[].capacity.minimum),
            O(profiles[].capacity.default) is between them, and the maximum is at most 1000."
        type: dict
        required: true
        suboptions:
          minimum:
            description: The fewest instances.
            type: int
            required: true
          maximum:
            description: The most instances.
            type: int
            required: true
          default:
            description: The count set when metrics are unavailable (only when the current count is lower).
            type: int
            required: true
      rules:
        description:
          - The metric rules (at most 10). Azure scales out when any scale-out rule is met, and scales in when every
            scale-in rule is met and no scale-out rule is. Compared in order.
          - Pair every scale-out rule with a scale-in rule (the module warns when a profile has none).
        type: list
        elements: dict
        default: []
        suboptions:
          metric_trigger:
            description: The metric and the condition that fire the rule.
            type: dict
            required: true
            suboptions:
              metric_name:
                description: The metric, such as C(Percentage CPU). Compared case-insensitively.
                type: str
                required: true
              metric_namespace:
                description:
                  - The metric namespace, such as C(microsoft.compute/virtualmachinescalesets). Compared only when set.
                type: str
              metric_resource_uri:
                description: The resource whose metric is read. Default the setting's target.
                type: str
              time_grain:
                description:
                  - The metric's granularity, an ISO 8601 duration or whole seconds (1 minute to 12 hours).
                type: raw
                default: PT1M
              statistic:
                description:
                  - How the instances' values are combined in each grain - V(Average), V(Min), V(Max), V(Sum) or
                    V(Count) (any case).
                type: str
                default: Average
              time_window:
                description:
                  - The span the rule looks back over, an ISO 8601 duration or whole seconds (1 minute to 12 hours);
                    at least O(profiles[].rules[].metric_trigger.time_grain).
                type: raw
                required: true
              time_aggregation:
                description:
                  - How the grains of the window are combined - V(Average), V(Minimum), V(Maximum), V(Total), V(Count)
                    or V(Last) (any case).
                type: str
                default: Average
              operator:
                description:
                  - How the value is compared with the threshold - V(Equals), V(NotEquals), V(GreaterThan),
                    V(GreaterThanOrEqual), V(LessThan) or V(LessThanOrEqual) (any case).
                type: str
                required: true
              threshold:
                description: The threshold, such as V(70) for 70% CPU.
                type: float
                required: true
              dimensions:
                description:
                  - Dimension filters of the metric. Compared only when set; values in any order.
                type: list
                elements: dict
                suboptions:
                  dimension_name:
                    description: The dimension, such as C(VMName).
                    type: str
                    required: true
                  operator:
                    description: V(Equals) (any of the values) or V(NotEquals) (none of them).
                    type: str
                    default: Equals
                  values:
                    description: The values; V(*) matches all.
                    type: list
                    elements: str
                    required: true
              divide_per_instance:
                description: Whether the value is divided by the instance count. Compared only when set.
                type: bool
          scale_action:
            description: What the rule does when it fires.
            type: dict
            required: true
            suboptions:
              direction:
                description: V(Increase) (scale out), V(Decrease) (scale in) or V(None) (any case).
                type: str
                required: true
              type:
                description:
                  - V(ChangeCount), V(PercentChangeCount), V(ExactCount) or V(ServiceAllowedNextValue) (any case).
                type: str
                default: ChangeCount
              value:
                description:
                  - The instances (or percent) to change by, or the exact count.
                  - "Checked before any write: at least 1 (0 for an exact count); a V(ChangeCount) at most maximum
                    minus minimum; an V(ExactCount) between minimum and maximum."
                type: int
                default: 1
              cooldown:
                description:
                  - The time after any scale action before this rule may act, an ISO 8601 duration or whole seconds
                    (1 minute to 1 week). The module warns when it is shorter than the rule's time window.
                type: raw
                default: PT5M
      recurrence:
        description: When the profile starts, every week. Exclusive with O(profiles[].fixed_date).
        type: dict
        suboptions:
          frequency:
            description: V(Week), the only frequency Azure's autoscale accepts.
            type: str
            default: Week
          schedule:
            description: The days and time the profile starts; it runs until another profile starts.
            type: dict
            required: true
            suboptions:
              time_zone:
                description: A Windows time zone name, such as C(W. Europe Standard Time).
                type: str
                default: UTC
              days:
                description: Days, V(Sunday) to V(Saturday) (any case).
                type: list
                elements: str
                required: true
              hours:
                description: The hour (0-23) the profile starts.
                type: list
                elements: int
                required: true
              minutes:
                description: The minute (0-59) the profile starts.
                type: list
                elements: int
                required: true
      fixed_date:
        description: The dates the profile holds. Exclusive with O(profiles[].recurrence).
        type: dict
        suboptions:
          time_zone:
            description: A Windows time zone name.
            type: str
          start:
            description: The start, an ISO 8601 date-time such as C(2026-12-24T08:00:00Z).
            type: str
            required: true
          end:
            description: The end, after the start.
            type: str
            required: true
  notifications:
    description:
      - Who is told when autoscale acts. Set as a whole; V([]) removes them. Not set, left as they are.
    type: list
    elements: dict
    suboptions:
      operation:
        description: V(Scale), the only operation Azure notifies.
        type: str
        default: Scale
      email:
        description: E-mail notifications.
        type: dict
        suboptions:
          send_to_subscription_administrator:
            description: Whether the subscription administrator is e-mailed.
            type: bool
            default: false
          send_to_subscription_co_administrators:
            description: Whether the subscription co-administrators are e-mailed.
            type: bool
            default: false
          custom_emails:
            description: Other addresses. Compared in any order, case-insensitively.
            type: list
            elements: str
            default: []
      webhooks:
        description: Webhooks called. Compared in any order.
        type: list
        elements: dict
        default: []
        suboptions:
          service_uri:
            description: The address called. A secret - never shown in results or diffs.
            type: str
            required: true
          properties:
            description: Properties sent with the call.
            type: dict
            default: {}
  predictive_autoscale_policy:
    description:
      - Predictive autoscale. Validate it with V(ForecastOnly) (Azure forecasts, acts on nothing) before V(Enabled).
      - Only the fields you set are compared and changed.
    type: dict
    suboptions:
      scale_mode:
        description: V(Disabled), V(ForecastOnly) or V(Enabled) (any case).
        type: str
      scale_look_ahead_time:
        description: How long ahead instances are started, an ISO 8601 duration or whole seconds (1 to 60 minutes).
        type: raw
  tags:
    description:
      - Tags. With O(purge_tags=false) (the default) only the tags you set are compared and changed.
    type: dict
  purge_tags:
    description: Remove the tags that are not in O(tags).
    type: bool
    default: false
notes:
  - Options are the snake_case of the REST API's names, so the REST reference for autoscale settings describes them.
  - O(profiles[].fixed_date.start) and O(profiles[].fixed_date.end) are compared as instants; one without an
    offset is read as UTC. Give them with an offset (or C(Z)) to be sure Azure reads them as you mean.
  - Autoscale changes the scale set's capacity; leave O(fleetops.vmss.scale_set#module:sku.capacity) unset in
    M(fleetops.vmss.scale_set) tasks for an autoscaled scale set.
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the setting and returns what would change (RV(changes), the diff, the setting as it would be).
  diff_mode:
    support: full
    details: Before and after of what differs; webhook addresses are masked.
  idempotent:
    support: full
    details: A second run with the same options reads the setting, finds no difference and sends no write.
seealso:
  - module: fleetops.vmss.autoscale_info
  - module: fleetops.vmss.scale_set
  - name: Autoscale Settings - Create Or Update (REST API)
    description: The request this module sends.
    link: https://learn.microsoft.com/rest/api/monitor/autoscale-settings/create-or-update
  - name: Best practices for autoscale
    description: Why every scale-out rule wants a scale-in rule, and cooldowns.
    link: https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-best-practices
"""

EXAMPLES = r"""
- name: Scale out by 2 above 70% CPU over 5 minutes, in by 1 below 30% over 10 minutes, 3 to 30 instances
  fleetops.vmss.autoscale:
    resource_group: payments-prod
    scale_set: payments-api
    profiles:
      - name: default
        capacity: {minimum: 3, maximum: 30, default: 3}
        rules:
          - metric_trigger: {metric_name: Percentage CPU, time_window: PT5M, operator: GreaterThan, threshold: 70}
            scale_action: {direction: Increase, value: 2, cooldown: PT5M}
          - metric_trigger: {metric_name: Percentage CPU, time_window: PT10M, operator: LessThan, threshold: 30}
            scale_action: {direction: Decrease, value: 1, cooldown: PT10M}
    notifications:
      - email: {custom_emails: [payments-oncall@example.com]}
        webhooks: [{service_uri: "{{ pager_webhook }}"}]
    predictive_autoscale_policy: {scale_mode: ForecastOnly}

- name: A weekday business-hours profile with more instances
  fleetops.vmss.autoscale:
    resource_group: payments-prod
    scale_set: payments-api
    profiles:
      - name: business-hours
        capacity: {minimum: 6, maximum: 30, default: 6}
        recurrence:
          schedule: {time_zone: W. Europe Standard Time, days: [Monday, Tuesday, Wednesday, Thursday, Friday], hours: [8], minutes: [0]}
      - name: nights
        capacity: {minimum: 3, maximum: 10, default: 3}
        recurrence:
          schedule: {time_zone: W. Europe Standard Time, days: [Monday, Tuesday, Wednesday, Thursday, Friday], hours: [20], minutes: [0]}

- name: Suspend autoscale during a rollout (everything else left as it is)
  fleetops.vmss.autoscale:
    resource_group: payments-prod
    name: payments-api-autoscale
    enabled: false

- name: Act on the forecast once ForecastOnly has been validated
  fleetops.vmss.autoscale:
    resource_group: payments-prod
    scale_set: payments-api
    predictive_autoscale_policy: {scale_mode: Enabled, scale_look_ahead_time: PT10M}

- name: Delete the setting (the capacity stays as it is)
  fleetops.vmss.autoscale:
    resource_group: payments-prod
    scale_set: payments-api
    state: absent
"""

RETURN = r"""
autoscale_setting:
  description:
    - The setting as Azure returns it after the change, in the shape of M(fleetops.vmss.autoscale_info)'s
      RV(fleetops.vmss.autoscale_info#module:autoscale_settings) (the options' names, webhook addresses masked).
    - In check mode, the setting as it would be. None once deleted.
  returned: always
  type: dict
  sample:
    name: payments-api-autoscale
    resource_group: payments-prod
    enabled: true
    target_resource_uri: /subscriptions/.../resourceGroups/payments-prod/providers/Microsoft.Compute/virtualMachineScaleSets/payments-api
    profiles:
      - name: default
        capacity: {minimum: 3, maximum: 30, default: 3}
        rules:
          - metric_trigger: {metric_name: Percentage CPU, time_grain: PT1M, statistic: Average, time_window: PT5M,
                             time_aggregation: Average, operator: GreaterThan, threshold: 70.0}
            scale_action: {direction: Increase, type: ChangeCount, value: 2, cooldown: PT5M}
        recurrence: null
        fixed_date: null
    notifications: []
    predictive_autoscale_policy: {scale_mode: ForecastOnly, scale_look_ahead_time: null}
changes:
  description:
    - The options that differ (and were, or in check mode would be, changed), as option paths. Every option you
      set when the setting is created; empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["enabled", "profiles[default].rules", "profiles[default].capacity.maximum", "predictive_autoscale_policy.scale_mode"]
arm_requests:
  description: The number of requests sent to Azure Resource Manager.
  returned: always
  type: int
  sample: 2
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _autoscale as autoscale
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found
from ansible_collections.fleetops.vmss.plugins.module_utils._ids import parse_id, scale_set_id

CAPACITY = dict(minimum=dict(type="int", required=True), maximum=dict(type="int", required=True),
                default=dict(type="int", required=True))
DIMENSION = dict(dimension_name=dict(type="str", required=True), operator=dict(type="str", default="Equals"),
                 values=dict(type="list", elements="str", required=True))
METRIC_TRIGGER = dict(
    metric_name=dict(type="str", required=True), metric_namespace=dict(type="str"),
    metric_resource_uri=dict(type="str"), time_grain=dict(type="raw", default="PT1M"),
    statistic=dict(type="str", default="Average"), time_window=dict(type="raw", required=True),
    time_aggregation=dict(type="str", default="Average"), operator=dict(type="str", required=True),
    threshold=dict(type="float", required=True), dimensions=dict(type="list", elements="dict", options=DIMENSION),
    divide_per_instance=dict(type="bool"))
SCALE_ACTION = dict(direction=dict(type="str", required=True), type=dict(type="str", default="ChangeCount"),
                    value=dict(type="int", default=1), cooldown=dict(type="raw", default="PT5M"))
RULE = dict(metric_trigger=dict(type="dict", required=True, options=METRIC_TRIGGER),
            scale_action=dict(type="dict", required=True, options=SCALE_ACTION))
SCHEDULE = dict(time_zone=dict(type="str", default="UTC"), days=dict(type="list", elements="str", required=True),
                hours=dict(type="list", elements="int", required=True),
                minutes=dict(type="list", elements="int", required=True))
PROFILE = dict(
    name=dict(type="str", required=True), capacity=dict(type="dict", required=True, options=CAPACITY),
    rules=dict(type="list", elements="dict", options=RULE, default=[]),
    recurrence=dict(type="dict", options=dict(frequency=dict(type="str", default="Week"),
                                              schedule=dict(type="dict", required=True, options=SCHEDULE))),
    fixed_date=dict(type="dict", options=dict(time_zone=dict(type="str"), start=dict(type="str", required=True),
                                              end=dict(type="str", required=True))))
EMAIL = dict(send_to_subscription_administrator=dict(type="bool", default=False),
             send_to_subscription_co_administrators=dict(type="bool", default=False),
             custom_emails=dict(type="list", elements="str", default=[]))
WEBHOOK = dict(service_uri=dict(type="str", required=True, no_log=True), properties=dict(type="dict", default={}))
NOTIFICATION = dict(operation=dict(type="str", default="Scale"), email=dict(type="dict", options=EMAIL),
                    webhooks=dict(type="list", elements="dict", options=WEBHOOK, default=[]))

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str"),
    scale_set=dict(type="str", aliases=["scale_set_name"]),
    target_resource_uri=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    enabled=dict(type="bool"),
    profiles=dict(type="list", elements="dict", options=PROFILE),
    notifications=dict(type="list", elements="dict", options=NOTIFICATION),
    predictive_autoscale_policy=dict(type="dict", options=dict(scale_mode=dict(type="str"),
                                                               scale_look_ahead_time=dict(type="raw"))),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)


def describe(params, name):
    return "autoscale setting %s/%s" % (params["resource_group"], name)


def target_location(module, target, what):
    """The region of the target scale set (read to create a setting without a location); fails when it is absent."""
    if not autoscale.is_scale_set(target):
        module.fail_json(msg="Invalid options for %s: location is required for a target that is not a scale set (%s)."
                         % (what, target), arm_requests=module.arm_requests)
    parts = parse_id(target)
    with arm_errors("get", "scale set %s/%s" % (parts["resource_group"], parts["names"][-1])):
        found = ignore_not_found(lambda: module.client("compute").virtual_machine_scale_sets.get(
            parts["resource_group"], parts["names"][-1]))
    if found is None:
        module.fail_json(msg="Failed to create %s: ResourceNotFound: the target scale set %s does not exist."
                         % (what, target), arm_requests=module.arm_requests)
    return found.location


def main():
    module = AzureModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                         mutually_exclusive=[("scale_set", "target_resource_uri")],
                         required_one_of=[("name", "scale_set", "target_resource_uri")])
    try:
        params = module.params
        resource_group = params["resource_group"]
        target = params["target_resource_uri"] or (
            scale_set_id(module.subscription_id, resource_group, params["scale_set"]) if params["scale_set"] else None)
        name = params["name"] or "%s-autoscale" % (params["scale_set"] or autoscale.target_name(target))
        what = describe(params, name)
        operations = module.client("monitor").autoscale_settings

        # current state
        with arm_errors("get", what):
            current_doc = autoscale.read_setting(operations, resource_group, name)
        current = autoscale.from_rest(current_doc) if current_doc is not None else None

        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                with arm_errors("delete", what):
                    operations.delete(resource_group, name)
            module.exit_json(changed=current is not None, changes=["state"] if current else [], autoscale_setting=None,
                             arm_requests=module.arm_requests,
                             **({"diff": {"before": {"state": "present"}, "after": {"state": "absent"}}}
                                if module.diff_mode and current is not None else {}))

        # desired state, and Azure's rules on it (nothing written yet)
        effective_target = target or (current or {}).get("target_resource_uri")
        desired, errors = autoscale.desired_options(dict(params, target_resource_uri=target), effective_target)
        errors += autoscale.validate(desired, current, effective_target)
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)
        for warning in autoscale.warnings(desired):
            module.warn("%s: %s" % (what, warning))

        # difference, then act (or, in check mode, describe)
        tracker = autoscale.differences(desired, current, params["purge_tags"])
        after = current_doc
        if current is None:
            location = params["location"] or target_location(module, effective_target, what)
            after = autoscale.create_body(desired, name, location, effective_target)
        elif tracker:
            after = autoscale.update_body(desired, current_doc, params["purge_tags"])
        if after is not current_doc:
            if module.check_mode:
                after = autoscale.preview(after, module.subscription_id, resource_group, name)
            else:
                with arm_errors("create" if current is None else "update", what):
                    after = autoscale.write_setting(operations, resource_group, name, after)

        # result
        result = dict(changed=tracker.changed, changes=tracker.display_paths(),
                      autoscale_setting=autoscale.mask(autoscale.from_rest(after)), arm_requests=module.arm_requests)
        if module.diff_mode:
            result["diff"] = {"before": {}, "after": tracker.after()} if current is None else tracker.diff()
        module.exit_json(**result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
