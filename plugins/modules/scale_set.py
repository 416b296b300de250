#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scale_set
short_description: Create, update and delete Azure virtual machine scale sets (Uniform and Flexible)
version_added: 0.1.0
description:
  - Creates a virtual machine scale set, changes the parts of its model you set, or deletes it.
  - B(Only what you set is sent and compared.) An option you leave out is never sent and never compared,
    so it stays as it is in Azure, whoever set it (the capacity an autoscale setting manages, tags another
    team owns, an extension added by a policy). No option has a default that could change an existing scale set.
  - B(Updates are PATCH requests of the differences only), conditioned on the ETag read at the start
    (C(If-Match)). A PATCH leaves untouched every field it does not carry, so fields this module does not
    manage, or that a newer API version added, cannot be lost or reverted, and a capacity change does not
    re-send the model. Arrays are replaced by a PATCH, so a changed extension list, NIC configuration or
    SSH key list is sent whole, built from what was read under that same ETag. If someone else changes the
    scale set between the read and the write, Azure answers 412 and the module fails saying so, having written nothing.
  - Creation is a PUT with C(If-None-Match=*), so a scale set created concurrently under the same name is
    not overwritten.
  - B(Invalid combinations fail before any request that writes), with every reason at once. The rules mirror
    Azure's and are checked on the effective model (what you set, else what the scale set has, else Azure's
    default). They are listed under O(upgrade_policy), O(automatic_repairs_policy), O(application_health),
    O(priority), O(priority_mix_policy) and in the notes.
  - B(Secrets) (O(os_profile.admin_password), O(os_profile.custom_data), O(extensions[].protected_settings)) are
    sent when the scale set (or the extension) is created and never compared afterwards, because Azure never
    returns them; they never appear in results or diffs.
  - With O(wait=true) the module waits, within O(wait_timeout), for Azure's long-running operation, and after a
    capacity change until every instance is provisioned.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the scale set.
    type: str
    required: true
  name:
    description: The scale set's name.
    type: str
    required: true
  state:
    description:
      - V(present) creates the scale set or updates the options you set; V(absent) deletes it with its instances.
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - The Azure region. If not set when creating, the resource group's region.
      - Cannot be changed on an existing scale set.
    type: str
  orchestration_mode:
    description:
      - V(Uniform) (identical instances managed through the scale set) or V(Flexible) (instances are ordinary
        virtual machines).
      - Required to create a scale set; compared only when set, and cannot be changed afterwards.
    type: str
    choices: [Uniform, Flexible]
  sku:
    description:
      - The VM size and instance count.
      - Leave O(sku.capacity) out when an autoscale setting manages the count; it is then never sent.
    type: dict
    suboptions:
      name:
        description: The VM size, such as C(Standard_D2s_v5).
        type: str
      tier:
        description: The SKU tier, usually C(Standard).
        type: str
      capacity:
        description: The number of instances. When it changes and O(wait=true), the module waits until every instance is provisioned.
        type: int
  zones:
    description:
      - Availability zones to spread instances over, such as V(["1", "2", "3"]).
      - Zones can be added to an existing scale set, not removed.
    type: list
    elements: str
  platform_fault_domain_count:
    description: Fault domains per zone (or region). Set at creation only.
    type: int
  single_placement_group:
    description:
      - Whether the scale set is limited to one placement group (100 instances). Uniform only; V(false) on Flexible.
      - Can go from V(true) to V(false) on an existing scale set, never back.
    type: bool
  overprovision:
    description: Whether Azure creates extra instances while scaling out and deletes the surplus (Uniform only).
    type: bool
  image:
    description:
      - The image instances run. One of
      - a Compute Gallery image version ID (C(/subscriptions/.../galleries/G/images/I/versions/1.7.1));
      - a Compute Gallery image definition ID (C(.../galleries/G/images/I)), meaning its latest version;
      - a managed image ID (C(.../providers/Microsoft.Compute/images/NAME));
      - a shared or community gallery image (version) ID (C(/SharedGalleries/...), C(/CommunityGalleries/...));
      - a marketplace reference, a dict with C(publisher), C(offer), C(sku) and C(version) (V(latest) when omitted).
      - Anything else (a partial marketplace reference, a number, another path) is refused before any request.
      - IDs are compared case-insensitively, as Azure does.
    type: raw
  os_profile:
    description: The instances' operating system settings.
    type: dict
    suboptions:
      computer_name_prefix:
        description: Prefix of the instances' computer names. Set at creation only.
        type: str
      admin_username:
        description: The administrator account. Set at creation only.
        type: str
      admin_password:
        description:
          - The administrator password. Sent at creation only, since Azure never returns it and it cannot be compared.
        type: str
      custom_data:
        description:
          - Custom data (cloud-init) as text; the module base64-encodes it. Sent at creation only, since Azure never returns it.
        type: str
      ssh_public_keys:
        description:
          - SSH public keys (OpenSSH format) authorised for O(os_profile.admin_username) on Linux instances.
          - Compared as a set; when they differ the whole list is sent.
        type: list
        elements: str
  network_profile:
    description: The primary network interface of the instances.
    type: dict
    suboptions:
      subnet_id:
        description: The subnet's resource ID. Azure allows another subnet of the same virtual network only.
        type: str
      load_balancer_backend_address_pool_ids:
        description: Load balancer backend address pool IDs the instances join. Compared as a set.
        type: list
        elements: str
      health_probe_id:
        description:
          - A load balancer probe used as the instances' health signal (Uniform).
          - A scale set takes one health source; this or O(application_health), not both.
        type: str
  application_health:
    description:
      - The Application Health extension, the instances' health signal for rolling upgrades, automatic repairs
        and the rollout modules.
      - Matched with the scale set's existing Application Health extension whatever its name; only the
        settings you set are compared and changed.
      - A scale set takes one health source; this or O(network_profile.health_probe_id), not both.
      - Rolling upgrades on a Flexible scale set require it.
    type: dict
    suboptions:
      name:
        description: The extension's name when it is added. Default C(HealthExtension). Not compared.
        type: str
      type:
        description: The extension type when it is added. Default V(ApplicationHealthLinux).
        type: str
        choices: [ApplicationHealthLinux, ApplicationHealthWindows]
      type_handler_version:
        description: The extension version when it is added. Default C(2.0) (rich health states).
        type: str
      protocol:
        description: How instances are probed.
        type: str
        choices: [http, https, tcp]
      port:
        description: The port probed.
        type: int
      request_path:
        description: The HTTP(S) path probed, such as C(/ready).
        type: str
      interval_in_seconds:
        description: Seconds between two probes.
        type: int
      number_of_probes:
        description: Consecutive probes that change the state.
        type: int
      grace_period:
        description: Seconds after a start during which the instance reports C(Initializing).
        type: int
  extensions:
    description:
      - Other VM extensions of the scale-set model, matched by name (case-insensitively).
      - Extensions you do not list are kept.
      - Only the fields you set are compared; O(extensions[].settings) is compared as a whole.
    type: list
    elements: dict
    suboptions:
      name:
        description: The extension's name in the scale set.
        type: str
        required: true
      publisher:
        description: The publisher, such as C(Microsoft.Azure.Extensions).
        type: str
      type:
        description: The extension type, such as C(CustomScript).
        type: str
      type_handler_version:
        description: The extension version, such as C(2.1).
        type: str
      auto_upgrade_minor_version:
        description: Whether minor versions are picked up on deployment.
        type: bool
      enable_automatic_upgrade:
        description: Whether the platform upgrades the extension automatically.
        type: bool
      force_update_tag:
        description: Change it to make the extension run again although its settings did not change.
        type: str
      provision_after_extensions:
        description: Names of extensions to provision before this one.
        type: list
        elements: str
      suppress_failures:
        description: Whether a failure of this extension leaves the instance provisioned.
        type: bool
      settings:
        description: Public settings, keys as the extension defines them. Compared as a whole.
        type: dict
      protected_settings:
        description:
          - Private settings. Sent when the extension is added or when one of its other fields changes;
            never compared (Azure never returns them) and never returned.
        type: dict
  upgrade_policy:
    description:
      - How instances move to a new model.
      - "Rules checked before any write: V(Rolling) needs a health signal (O(application_health) or
        O(network_profile.health_probe_id)); on a Flexible scale set, the Application Health extension."
    type: dict
    suboptions:
      mode:
        description: V(Manual) (you upgrade instances, see M(fleetops.vmss.scale_set_instance)), V(Automatic) or V(Rolling).
        type: str
        choices: [Automatic, Manual, Rolling]
      rolling_upgrade_policy:
        description:
          - The rolling upgrade's batches and health limits.
          - "Rules checked before any write: O(upgrade_policy.rolling_upgrade_policy.max_batch_instance_percent)
            is 5 to 100 and not above O(upgrade_policy.rolling_upgrade_policy.max_unhealthy_instance_percent)
            (yours, else the scale set's, else Azure's default 20);
            O(upgrade_policy.rolling_upgrade_policy.max_unhealthy_instance_percent) is 5 to 100;
            O(upgrade_policy.rolling_upgrade_policy.max_unhealthy_upgraded_instance_percent) is 0 to 100;
            O(upgrade_policy.rolling_upgrade_policy.max_surge) is refused on a Flexible scale set with
            automatic OS image upgrades."
        type: dict
        suboptions:
          max_batch_instance_percent:
            description: The largest share of instances upgraded at once (5-100, Azure's default 20).
            type: int
          max_unhealthy_instance_percent:
            description: The share of unhealthy instances (upgraded or not) that stops the upgrade (5-100, default 20).
            type: int
          max_unhealthy_upgraded_instance_percent:
            description: The share of unhealthy upgraded instances that stops the upgrade (0-100, default 20).
            type: int
          pause_time_between_batches:
            description:
              - ISO 8601 duration between batches, such as C(PT30S). C(PT5M), C(PT05M) and C(PT300S) are the same.
              - Automatic OS upgrades pause only with O(upgrade_policy.automatic_os_upgrade_policy.use_rolling_upgrade_policy=true).
            type: str
          enable_cross_zone_upgrade:
            description: Whether batches may span availability zones.
            type: bool
          prioritize_unhealthy_instances:
            description: Whether unhealthy instances are upgraded first.
            type: bool
          rollback_failed_instances_on_policy_breach:
            description: Whether failed instances return to the previous model when the policy is breached.
            type: bool
          max_surge:
            description: Whether new instances are created for the upgrade before old ones are deleted.
            type: bool
      automatic_os_upgrade_policy:
        description:
          - Automatic OS image upgrades (Azure rolls a newer image out by itself, in batches).
          - Azure batches them with its default policy (the API's defaults, 20% per batch and 20% unhealthy
            limits, no pause between batches), B(not) O(upgrade_policy.rolling_upgrade_policy), unless
            O(upgrade_policy.automatic_os_upgrade_policy.use_rolling_upgrade_policy=true). Set it for the
            batch size and the O(upgrade_policy.rolling_upgrade_policy.pause_time_between_batches) you chose to
            apply to automatic OS upgrades too.
        type: dict
        suboptions:
          enable_automatic_os_upgrade:
            description: Whether newer platform image versions are rolled out automatically.
            type: bool
          disable_automatic_rollback:
            description: Whether the OS image rollback is disabled.
            type: bool
          use_rolling_upgrade_policy:
            description:
              - Whether automatic OS upgrades follow O(upgrade_policy.rolling_upgrade_policy) (its batch size,
                health limits and pause between batches). Azure's default is V(false) - its default policy, with
                no pause.
            type: bool
          os_rolling_upgrade_deferral:
            description:
              - Whether automatic OS upgrades wait for an approval - Azure starts the upgrade when a newer image
                is C(latest), but moves an instance only once it is approved (Azure's C(approveRollingUpgrade) -
                M(fleetops.vmss.rolling_upgrade) with O(fleetops.vmss.rolling_upgrade#module:action=approve), or the
                rollout role's C(rollout_azure_action=approve), batch by batch behind health and metric gates).
            type: bool
  automatic_repairs_policy:
    description:
      - Automatic repairs of unhealthy instances (needs a health signal).
      - "Rule checked before any write: O(automatic_repairs_policy.grace_period) is between C(PT10M) and C(PT90M)."
    type: dict
    suboptions:
      enabled:
        description: Whether automatic repairs are on.
        type: bool
      grace_period:
        description: ISO 8601 duration after a state change before an instance may be repaired (C(PT10M) to C(PT90M)).
        type: str
      repair_action:
        description: What a repair does.
        type: str
        choices: [Replace, Restart, Reimage]
  scale_in_policy:
    description: Which instances a scale-in removes.
    type: dict
    suboptions:
      rules:
        description: The scale-in rule (Azure uses the first).
        type: list
        elements: str
        choices: [Default, OldestVM, NewestVM]
      force_deletion:
        description: Whether instances chosen for removal are force-deleted.
        type: bool
  priority:
    description:
      - V(Regular), V(Spot) (evictable, cheaper) or V(Low) (the former name of Spot). Set at creation only.
      - "Rules checked before any write: V(Spot) requires O(eviction_policy); O(eviction_policy) and
        O(max_price) (other than V(-1)) need V(Spot)."
    type: str
    choices: [Regular, Spot, Low]
  eviction_policy:
    description: What happens to an evicted Spot instance. Set at creation only.
    type: str
    choices: [Deallocate, Delete]
  max_price:
    description: The highest price per hour you pay for a Spot instance, in US dollars; V(-1) caps it at the on-demand price.
    type: float
  priority_mix_policy:
    description:
      - The split between Regular and Spot instances.
      - "Rule checked before any write: Flexible scale sets only."
    type: dict
    suboptions:
      base_regular_priority_count:
        description: The number of Regular instances created first.
        type: int
      regular_priority_percentage_above_base:
        description: The percentage (0-100) of Regular instances beyond the base.
        type: int
  tags:
    description:
      - Tags. With O(purge_tags=false) (the default) only the tags you set are compared and changed, and
        tags set by others are kept.
    type: dict
  purge_tags:
    description: Remove the tags that are not in O(tags).
    type: bool
    default: false
notes:
  - "Rules checked before any write, besides those listed with their options: O(orchestration_mode) is
    required to create a scale set; O(location), O(orchestration_mode), O(platform_fault_domain_count),
    O(os_profile.computer_name_prefix), O(os_profile.admin_username), O(priority) and O(eviction_policy)
    cannot be changed; O(single_placement_group) cannot go from false to true; zones cannot be removed;
    Flexible scale sets take neither O(overprovision=true) nor O(single_placement_group=true); the Application
    Health extension is set through O(application_health), not as an O(extensions) item."
  - A scale set's model changes reach instances according to O(upgrade_policy.mode); with V(Manual), move
    instances with M(fleetops.vmss.scale_set_instance) C(action=upgrade). RV(instances_not_on_latest_model)
    counts the instances still to move.
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.wait
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the scale set and returns what would change (RV(changes), and the diff); writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ; secrets never appear.
  idempotent:
    support: full
    details: A second run with the same options reads the scale set, finds no difference and sends no write.
seealso:
  - module: fleetops.vmss.scale_set_info
  - module: fleetops.vmss.scale_set_instance
  - name: Virtual Machine Scale Sets - Update (REST API)
    description: The PATCH this module sends for changes.
    link: https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/update
"""

EXAMPLES = r"""
- name: A Uniform scale set on a gallery image, rolling upgrades gated by the Application Health extension
  fleetops.vmss.scale_set:
    resource_group: payments-prod
    name: payments-api
    orchestration_mode: Uniform
    sku: {name: Standard_D2s_v5, capacity: 6}
    zones: ["1", "2", "3"]
    image: /subscriptions/{{ sub }}/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments
    os_profile:
      computer_name_prefix: api
      admin_username: azureuser
      ssh_public_keys: ["{{ lookup('file', 'id_ed25519.pub') }}"]
    network_profile:
      subnet_id: "{{ subnet_id }}"
    application_health: {protocol: http, port: 80, request_path: /ready}
    upgrade_policy:
      mode: Rolling
      rolling_upgrade_policy: {max_batch_instance_percent: 20, max_unhealthy_instance_percent: 20, pause_time_between_batches: PT30S}
    tags: {team: payments}

- name: Scale to 10 instances, touching nothing else
  fleetops.vmss.scale_set:
    resource_group: payments-prod
    name: payments-api
    sku: {capacity: 10}

- name: Point the model at image version 1.7.1 (instances follow the upgrade policy)
  fleetops.vmss.scale_set:
    resource_group: payments-prod
    name: payments-api
    image: /subscriptions/{{ sub }}/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments/versions/1.7.1
  register: model
- name: Show how many instances still run another model
  ansible.builtin.debug:
    var: model.instances_not_on_latest_model

- name: A Flexible scale set of Spot and Regular instances
  fleetops.vmss.scale_set:
    resource_group: batch
    name: workers
    orchestration_mode: Flexible
    platform_fault_domain_count: 1
    sku: {name: Standard_D4s_v5, capacity: 20}
    image: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}
    os_profile: {computer_name_prefix: wrk, admin_username: azureuser, ssh_public_keys: ["{{ key }}"]}
    network_profile: {subnet_id: "{{ subnet_id }}"}
    priority: Spot
    eviction_policy: Delete
    max_price: -1
    priority_mix_policy: {base_regular_priority_count: 2, regular_priority_percentage_above_base: 25}

- name: What would change? (no write)
  fleetops.vmss.scale_set:
    resource_group: payments-prod
    name: payments-api
    upgrade_policy: {mode: Manual}
  check_mode: true
  diff: true
  register: preview

- name: Delete the scale set and its instances
  fleetops.vmss.scale_set:
    resource_group: payments-prod
    name: payments-api
    state: absent
"""

RETURN = r"""
scale_set:
  description:
    - The scale set as Azure returns it after the change, in the shape M(fleetops.vmss.scale_set_info) returns
      (snake_case, C(properties) flattened, no secrets).
    - In check mode, the scale set as it is, or as it would be created (the request body).
    - None once deleted.
  returned: always
  type: dict
  sample:
    name: payments-api
    resource_group: payments-prod
    sku: {name: Standard_D2s_v5, tier: Standard, capacity: 6}
    orchestration_mode: Uniform
    upgrade_policy: {mode: Rolling}
    provisioning_state: Succeeded
changes:
  description:
    - The options that differ (and were, or in check mode would be, changed), as option paths.
    - Every option you set when the scale set is created; empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["sku.capacity", "upgrade_policy.mode", "application_health.request_path", "extensions[agent].settings", "tags.team"]
instances_not_on_latest_model:
  description:
    - How many instances do not run the scale set's current model. Uniform, from Azure's C(latestModelApplied);
      Flexible, by image reference, VM size and extension definitions (Azure does not report C(latestModelApplied)
      for Flexible VMs; see M(fleetops.vmss.scale_set_instance)).
    - None when the scale set is deleted (or would be created, in check mode).
  returned: always
  type: int
  sample: 3
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and operation polls included.
  returned: always
  type: int
  sample: 6
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found
from ansible_collections.fleetops.vmss.plugins.module_utils._ids import scale_set_id
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, poller_result, wait_until

SKU = dict(name=dict(type="str"), tier=dict(type="str"), capacity=dict(type="int"))
OS_PROFILE = dict(computer_name_prefix=dict(type="str"), admin_username=dict(type="str"),
                  admin_password=dict(type="str", no_log=True), custom_data=dict(type="str", no_log=True),
                  ssh_public_keys=dict(type="list", elements="str", no_log=False))
NETWORK_PROFILE = dict(subnet_id=dict(type="str"),
                       load_balancer_backend_address_pool_ids=dict(type="list", elements="str"),
                       health_probe_id=dict(type="str"))
APPLICATION_HEALTH = dict(name=dict(type="str"), type=dict(type="str", choices=list(model.HEALTH_TYPES)),
                          type_handler_version=dict(type="str"),
                          protocol=dict(type="str", choices=["http", "https", "tcp"]), port=dict(type="int"),
                          request_path=dict(type="str"), interval_in_seconds=dict(type="int"),
                          number_of_probes=dict(type="int"), grace_period=dict(type="int"))
ROLLING_UPGRADE_POLICY = dict(
    max_batch_instance_percent=dict(type="int"), max_unhealthy_instance_percent=dict(type="int"),
    max_unhealthy_upgraded_instance_percent=dict(type="int"), pause_time_between_batches=dict(type="str"),
    enable_cross_zone_upgrade=dict(type="bool"), prioritize_unhealthy_instances=dict(type="bool"),
    rollback_failed_instances_on_policy_breach=dict(type="bool"), max_surge=dict(type="bool"))
AUTOMATIC_OS_UPGRADE_POLICY = dict(enable_automatic_os_upgrade=dict(type="bool"),
                                   disable_automatic_rollback=dict(type="bool"),
                                   use_rolling_upgrade_policy=dict(type="bool"),
                                   os_rolling_upgrade_deferral=dict(type="bool"))
UPGRADE_POLICY = dict(mode=dict(type="str", choices=["Automatic", "Manual", "Rolling"]),
                      rolling_upgrade_policy=dict(type="dict", options=ROLLING_UPGRADE_POLICY),
                      automatic_os_upgrade_policy=dict(type="dict", options=AUTOMATIC_OS_UPGRADE_POLICY))

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    orchestration_mode=dict(type="str", choices=["Uniform", "Flexible"]),
    sku=dict(type="dict", options=SKU),
    zones=dict(type="list", elements="str"),
    platform_fault_domain_count=dict(type="int"),
    single_placement_group=dict(type="bool"),
    overprovision=dict(type="bool"),
    image=dict(type="raw"),
    os_profile=dict(type="dict", options=OS_PROFILE),
    network_profile=dict(type="dict", options=NETWORK_PROFILE),
    application_health=dict(type="dict", options=APPLICATION_HEALTH),
    extensions=dict(type="list", elements="dict", options=model.extension_options()),
    upgrade_policy=dict(type="dict", options=UPGRADE_POLICY),
    automatic_repairs_policy=dict(type="dict", options=dict(
        enabled=dict(type="bool"), grace_period=dict(type="str"),
        repair_action=dict(type="str", choices=["Replace", "Restart", "Reimage"]))),
    scale_in_policy=dict(type="dict", options=dict(
        rules=dict(type="list", elements="str", choices=["Default", "OldestVM", "NewestVM"]),
        force_deletion=dict(type="bool"))),
    priority=dict(type="str", choices=["Regular", "Spot", "Low"]),
    eviction_policy=dict(type="str", choices=["Deallocate", "Delete"]),
    max_price=dict(type="float"),
    priority_mix_policy=dict(type="dict", options=dict(base_regular_priority_count=dict(type="int"),
                                                       regular_priority_percentage_above_base=dict(type="int"))),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)

RESOURCE_GROUP_API_VERSION = "2021-04-01"


def read_scale_set(operations, resource_group, name):
    """The scale set as a REST dict, None when it (or its resource group) does not exist."""
    found = ignore_not_found(lambda: operations.get(resource_group, name))
    return found.as_dict() if found is not None else None


def resource_group_location(compute, subscription_id, resource_group):
    """The region of a resource group (one ARM GET through the compute client's pipeline)."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    request = HttpRequest("GET", "/subscriptions/%s/resourcegroups/%s?api-version=%s"
                          % (subscription_id, resource_group, RESOURCE_GROUP_API_VERSION))
    response = compute.send_request(request)
    response.raise_for_status()
    return response.json()["location"]


def create(module, compute, desired, deadline):
    """PUT (If-None-Match: *) the new scale set; returns it as a REST dict (None in check mode)."""
    params = module.params
    resource_group, name = params["resource_group"], params["name"]
    location = desired.get("location")
    if not location:
        with arm_errors("get", "resource group %s" % resource_group):
            location = resource_group_location(compute, module.subscription_id, resource_group)
    body = model.create_body(name, desired, location)
    if module.check_mode:
        preview = dict(body, id=scale_set_id(module.subscription_id, resource_group, name), name=name,
                       type="Microsoft.Compute/virtualMachineScaleSets")
        return None, preview
    from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

    operations = compute.virtual_machine_scale_sets
    with arm_errors("create", describe(params)):
        poller = operations.begin_create_or_update(resource_group, name, body, match_condition=MatchConditions.IfMissing)
        if params["wait"]:
            return poller_result(poller, deadline, "creation of %s" % describe(params)).as_dict(), None
    return None, None


def update(module, compute, tracker, desired, current, deadline):
    """PATCH (If-Match: the ETag read) only what differs; returns the scale set as a REST dict."""
    params = module.params
    body = model.update_body(tracker, desired, current, params["purge_tags"])
    if module.check_mode:
        return None
    from azure.core import MatchConditions  # pylint: disable=import-outside-toplevel

    with arm_errors("update", describe(params)):
        poller = compute.virtual_machine_scale_sets.begin_update(
            params["resource_group"], params["name"], body, etag=current.get("etag"),
            match_condition=MatchConditions.IfNotModified)
        if params["wait"]:
            return poller_result(poller, deadline, "update of %s" % describe(params)).as_dict()
    return None


def delete(module, compute, deadline):
    params = module.params
    if module.check_mode:
        return
    with arm_errors("delete", describe(params)):
        poller = compute.virtual_machine_scale_sets.begin_delete(params["resource_group"], params["name"])
        if params["wait"]:
            poller_result(poller, deadline, "deletion of %s" % describe(params))


def wait_for_capacity(module, compute, scale_set, deadline):
    """After a capacity change: every instance provisioned (Azure's operation may end before)."""
    params = module.params
    capacity = (scale_set.get("sku") or {}).get("capacity")
    with arm_errors("wait for the instances of", describe(params)):
        wait_until(lambda: instances.provisioned(
            instances.list_instances(compute, params["resource_group"], params["name"], scale_set, instance_view=False),
            capacity), timeout=deadline.remaining(), sleep=params["wait_sleep"],
            what="%s instances provisioned in %s" % (capacity, describe(params)))


def count_not_on_latest_model(module, compute, scale_set):
    params = module.params
    with arm_errors("list the instances of", describe(params)):
        found = instances.list_instances(compute, params["resource_group"], params["name"], scale_set,
                                         instance_view=False)
    return instances.count_not_on_latest_model(found, scale_set)


def describe(params):
    return "scale set %s/%s" % (params["resource_group"], params["name"])


def main():
    module = AzureModule(names=dict(name="scale_set"), argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        deadline = Deadline(params["wait_timeout"])
        compute = module.client("compute")

        # current state
        with arm_errors("get", describe(params)):
            current = read_scale_set(compute.virtual_machine_scale_sets, params["resource_group"], params["name"])

        if params["state"] == "absent":
            if current is not None:
                delete(module, compute, deadline)
            module.exit_json(changed=current is not None, scale_set=None, changes=["state"] if current else [],
                             instances_not_on_latest_model=None, arm_requests=module.arm_requests,
                             **({"diff": {"before": {"state": "present"}, "after": {"state": "absent"}}}
                                if module.diff_mode and current is not None else {}))

        # desired state, and Azure's rules on it (no request written yet)
        desired = model.desired_options(params)
        errors = model.validate(desired, current)
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (describe(params), " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)

        # difference, then act (or, in check mode, describe)
        tracker = model.differences(desired, current, params["purge_tags"])
        after, preview = current, None
        if current is None:
            after, preview = create(module, compute, desired, deadline)
        elif tracker:
            after = update(module, compute, tracker, desired, current, deadline) or current
        if not module.check_mode and tracker and (after is current or after is None):
            with arm_errors("get", describe(params)):  # wait=false: as Azure has it now
                after = read_scale_set(compute.virtual_machine_scale_sets, params["resource_group"], params["name"])
        capacity_changed = tracker.touches("sku", "capacity")
        if not module.check_mode and params["wait"] and capacity_changed and after is not None:
            wait_for_capacity(module, compute, after, deadline)

        # result
        stale = count_not_on_latest_model(module, compute, after) if after is not None and not preview else None
        result = dict(changed=tracker.changed, changes=tracker.display_paths(),
                      scale_set=resource_result(preview if preview is not None else after),
                      instances_not_on_latest_model=stale)
        if module.diff_mode:
            result["diff"] = {"before": {}, "after": tracker.after()} if current is None else tracker.diff()
        module.exit_json(arm_requests=module.arm_requests, **result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
