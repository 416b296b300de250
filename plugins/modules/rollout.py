#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout
short_description: Roll a virtual machine scale set onto a new model in health-gated batches, with halt and rollback
version_added: 0.1.0
description:
  - Moves the instances of a scale set (Uniform or Flexible, upgrade mode V(Manual)) onto its model in batches,
    driven from the controller, and stops the moment health regresses.
  - B(The model change first.) With O(image) (and O(model)) the module changes the scale set's model with one
    PATCH of the differences, conditioned on the ETag it read (C(If-Match)), through the same layer as
    M(fleetops.vmss.scale_set). Without them, it moves the instances onto the model as it is (changed earlier
    with M(fleetops.vmss.scale_set)).
  - B(The rollback point is kept on the scale set), in the same PATCH as the model change, as the tag
    C(fleetops.rollout) - compact JSON of the previous image, VM size and definitions of the extensions the rollout
    changes (their public fields), the target and the start time; continued in C(fleetops.rollout.2)... when
    longer than Azure's 256 characters per tag value, and zlib-compressed (C(z1:) and base64) when longer than
    four. After the PATCH Azure's model is the target, so the tags are where the previous definition can live. A rollout whose rollback point would not
    fit in the 50 tags a resource may carry (with the scale set's other tags) is refused before any write. Protected
    settings and custom data are never kept there, only which of them changed; a rollback restores them from
    O(previous_protected_settings) and O(previous_custom_data). Tags are not part of the
    model instances run, so the tag does not make instances "not on the latest model"; and it survives the
    controller, so a re-run after the controller was killed can still roll back. The tag is removed when the
    rollout completes or has been rolled back. Do not edit it; a tag the module cannot read stops it before any write.
  - B(Batches) by update domain, fault domain, zone, percent of the set or count (O(batch_by), O(batch_size)),
    optionally after a canary batch of O(canary) instances watched for O(canary_soak) seconds. Per batch the
    module sends exactly one write, a manual upgrade (C(manualupgrade)) naming every instance of the batch (VM
    names on a Flexible scale set, where Azure takes them the same way), then reads one paged list of the
    instances with their instance view every O(wait_sleep) seconds (never one request per instance); the batch
    is upgraded once each of its instances runs the new image and size, provisioned and not busy (the
    operation's own polls, which Azure asks to wait 35-61 seconds for, hold nothing up; its outcome is still
    read, and a failed upgrade stops the rollout with C(UpgradeFailed)); from there the same list watches
    health until every instance of the batch is C(Healthy) or O(health_timeout) passes. C(Initializing)
    means not yet; C(Unknown) counts as unhealthy, as in Azure's rolling upgrades. From the second batch on,
    those lists thin out (half the time left) until the moment earlier batches were seen upgraded, and healthy,
    and one lands on it - the fewest reads of Compute's scarcest budget where nothing can have changed. The
    first batch starts as soon as the model change is applied (the scale set read every O(wait_sleep) seconds
    until its C(provisioningState) leaves C(Updating)), not when the PATCH's own polls end; a 409 on that first
    manual upgrade (Azure refusing it while an update still runs) is asked again, never judged.
  - B(Gates), with Azure's rolling-upgrade semantics and your thresholds. Before any write, the module refuses
    to start when more than O(max_unhealthy_instance_percent) of the set is unhealthy (C(PrecheckFailed)).
    After each batch it stops when more than O(max_unhealthy_upgraded_instance_percent) of the instances
    upgraded so far are unhealthy, when the whole set crosses O(max_unhealthy_instance_percent), or when the
    batch is not healthy within O(health_timeout). With O(metric_gates), a batch whose health passed is judged on
    Azure Monitor metrics too, against the instances not upgraded yet - a failing gate (C(MetricGateFailed)) is
    handled like a health breach (O(on_failure), O(demote_image_version_on_failure)); too little data within
    O(health_timeout) (C(MetricTimeout)) halts without rollback or demotion, as a missing signal says nothing
    about the image.
  - B(On failure), with O(on_failure=rollback) (the default), the previous model is restored (PATCH with
    C(If-Match)), every instance the rollout moved is moved back with one manual upgrade (protected ones
    excepted), and their health is watched. With O(demote_image_version_on_failure) the gallery image version is
    excluded from C(latest) (C(exclude_from_latest=true)), not deleted.
  - B(Which instances moved) is read from each instance's own image reference, VM size and extension definitions
    (publisher, type, handler version, C(force_update_tag), public settings, from the instance's C(resources)), as
    the instance reports them, compared with the model part the rollout changed - never from C(latestModelApplied). Azure
    keeps model generations. A model change makes every instance "not on the latest model", and restoring the
    previous model does not make the untouched ones latest again, so "every instance not on the latest model"
    would be the whole scale set. The rollback moves back exactly the instances whose image or size differs from
    the restored model; instances already running the target are done (never upgraded twice, not targets).
    Image references compare case-insensitively; an instance on a gallery image definition or a marketplace
    C(latest) runs the version its C(exactVersion) names. Only when the change is none of these (the SKU tier
    alone), when an instance reports no C(resources) for an extension change, or when the module moves instances
    onto a model changed earlier (no O(image), no O(model), no rollback point), does C(latestModelApplied) decide
    (Flexible VMs, which Azure gives no C(latestModelApplied), are then judged on the scale set's model as
    M(fleetops.vmss.scale_set_instance_info) does). That fallback is right whether or not Azure makes untouched
    instances "latest" again after a rollback's revert - forward, an instance the rollout moved is on the one new
    model either way; in a rollback it may move back every instance not reported latest (also untouched ones, an
    extra upgrade onto the model they already run), never fewer than the rollout moved.
  - B(Resumable.) A re-run with the same options after an interruption (controller killed, connection lost,
    O(max_batches) reached) continues where the last run stopped. The model already at the target is not
    written again; it waits for operations still running on instances; instances already running the target
    (their image and size) are never upgraded again, and those whose health was not yet seen are watched first
    and count in the gates; no instance is skipped. A run interrupted while rolling back finishes the rollback,
    and reports RV(status=rolled_back) only once every instance on the restored model that is not Healthy
    (those it moves back and those the interrupted run moved back) is Healthy; else RV(status=rollback_failed),
    the rollback point kept.
  - B(Faults are not verdicts.) A request that still fails after the SDK's retries for a transient reason -
    throttling (HTTP 429), a server error (5xx), a conflict (409, such as C(OperationNotAllowed) "another
    operation is in progress") or no answer (a refused, dropped or timed-out connection) - says nothing about
    the image. The run stops with RV(status=interrupted) - no rollback, no demotion, the rollback point kept -
    and the task fails with a message saying to run it again, which resumes. Only the health gates, a failed
    upgrade of the batch's instances (Azure's own error code, such as C(VMExtensionProvisioningError)) count
    against the image.
  - Instances protected from scale-set actions (C(protect_from_scale_set_actions)) are never touched and are
    listed in RV(skipped_instances).
  - The module cannot stream progress while it runs. Use O(max_batches) to return after a number of batches
    with RV(status=in_progress), and call it again (the C(fleetops.vmss.rollout) role does this to show progress
    batch by batch in C(ansible-playbook) and AWX output).
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
  image:
    description:
      - The image to roll out, as M(fleetops.vmss.scale_set) takes it - a Compute Gallery image version ID
        (C(/subscriptions/.../galleries/G/images/I/versions/1.7.1)), a gallery image definition ID, a managed image
        ID, a shared or community gallery image ID (C(/SharedGalleries/...), C(/CommunityGalleries/...)), or a
        marketplace reference (a dict with C(publisher), C(offer), C(sku) and C(version), V(latest) if not set).
      - Anything else is refused before any request.
      - If not set, the instances are moved onto the scale set's current model (those Azure reports not on the
        latest model, C(latestModelApplied)), or onto the target of an interrupted rollout's rollback point.
    type: raw
  model:
    description:
      - Other model changes rolled out with (or without) the image, in the same conditional PATCH, applied through
        the same layer and with the same meaning as the options of the same names of M(fleetops.vmss.scale_set)
        (only what you set is sent and compared).
      - Which instances are done is read from what each instance reports itself - its image, VM size and extension
        definitions (its C(resources)) - never from C(latestModelApplied) while that can say; see the notes.
    type: dict
    suboptions:
      sku:
        description: The VM size. The capacity is never changed by a rollout.
        type: dict
        suboptions:
          name:
            description: The VM size, such as C(Standard_D4s_v5).
            type: str
          tier:
            description: The SKU tier, usually C(Standard).
            type: str
      extensions:
        description:
          - VM extensions of the model, as M(fleetops.vmss.scale_set)'s O(fleetops.vmss.scale_set#module:extensions)
            (matched by name; extensions not listed are kept), for example a custom script extension whose
            C(settings.fileUris) point at the application's new version, the command line in C(protected_settings).
          - An extension the rollout adds is removed again by a rollback.
          - O(model.extensions[].protected_settings) are write-only in Azure (never returned), so they are sent with
            the extension when another of its fields changes (change C(force_update_tag) to roll out protected settings
            alone), and a rollback can restore the previous ones only from O(previous_protected_settings).
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
            description: Public settings, keys as the extension defines them (such as C(fileUris)). Compared as a whole.
            type: dict
          protected_settings:
            description:
              - Private settings (such as C(commandToExecute)). Never compared, returned, logged nor kept in the
                rollback point.
            type: dict
      os_profile:
        description: The instances' operating system settings a rollout may change.
        type: dict
        suboptions:
          custom_data:
            description:
              - Custom data (cloud-init) as text; the module base64-encodes it. Azure never returns it, so it is never
                compared - it is sent with a model change that something else makes (an image, size or extension
                change), and a rollback restores the previous one only from O(previous_custom_data).
            type: str
  previous_protected_settings:
    description:
      - The protected settings of the previous version, per extension name (a dict of dicts, extension C(app) with
        its C(commandToExecute) for example), what a rollback sends back with the previous extension definition. Azure never returns protected settings,
        so nothing else can restore them.
      - Required, for each extension of O(model.extensions) that the scale set already has and whose
        O(model.extensions[].protected_settings) the rollout sends, unless O(on_failure=halt). Without it the
        rollout is refused before any write (a rollback would leave the new protected settings in place).
      - Never returned, logged, shown in a diff or kept in the rollback point (the tag holds only which
        extensions' protected settings changed). Give it again to a re-run that resumes or finishes a rollback.
    type: dict
  previous_custom_data:
    description:
      - The custom data of the previous version, sent back by a rollback (Azure never returns custom data).
      - Required with O(model.os_profile.custom_data) unless O(on_failure=halt), as O(previous_protected_settings).
    type: str
  batch_by:
    description:
      - How instances are grouped into batches. V(update_domain), V(fault_domain) and V(zone) make one batch per
        domain (split by O(batch_size) when set); V(percent) makes batches of O(batch_size) percent of the set
        (rounded up); V(count) of O(batch_size) instances.
    type: str
    choices: [update_domain, fault_domain, zone, percent, count]
    default: percent
  batch_size:
    description:
      - With O(batch_by=percent), the percentage of the scale set per batch (1-100, default 20); with
        O(batch_by=count), the instances per batch (required); with a domain, the largest batch (optional).
    type: int
  canary:
    description: The number of instances in a first batch, the canary, before the planned batches.
    type: int
    default: 0
  canary_soak:
    description: Seconds to keep watching the canary once healthy; any gate failure during the soak stops the rollout.
    type: float
    default: 0
  pause_between_batches:
    description: Seconds to wait after a healthy batch before the next one.
    type: float
    default: 0
  health_timeout:
    description:
      - Seconds a batch has, after its upgrade finished (the instance list shows every instance of it on the new
        model, provisioned), to be Healthy.
      - When it passes with instances still not Healthy, the batch is judged by the thresholds, as Azure's
        rolling upgrade does - upgraded instances still Initializing (or with no health signal) count as
        unhealthy. Within both O(max_unhealthy_upgraded_instance_percent) and O(max_unhealthy_instance_percent)
        the rollout goes on (batch outcome V(tolerated), with a note); beyond either, it stops (C(HealthTimeout)).
    type: float
    default: 600
  max_unhealthy_instance_percent:
    description:
      - The share of unhealthy instances of the whole set (upgraded or not) that refuses the start and stops the
        rollout (0-100).
    type: int
    default: 20
  max_unhealthy_upgraded_instance_percent:
    description: The share of unhealthy instances among those upgraded that stops the rollout (0-100).
    type: int
    default: 20
  prioritize_unhealthy_instances:
    description: Upgrade unhealthy instances first.
    type: bool
    default: false
  on_failure:
    description:
      - What the module does when a gate stops the rollout. V(halt) stops and reports, leaving the rollback point
        on the scale set (a later run with V(rollback) rolls back). V(rollback) also restores the previous model
        and moves the instances the rollout moved back onto it.
      - Without a rollback point (the model was changed earlier with M(fleetops.vmss.scale_set), not by this
        module) there is nothing to restore and the rollout halts.
      - A run that stops because O(wait_timeout) passed only halts; a re-run resumes (and gates) from there.
    type: str
    choices: [halt, rollback]
    default: rollback
  rollback:
    description:
      - Roll back now the rollout whose rollback point the scale set carries (a halted or interrupted rollout,
        or one still running elsewhere after its lease expired), whatever health says - the decision was taken
        elsewhere, for example by an Azure Monitor alert (the C(rollback_on_alert) rulebook in
        C(extensions/eda/rulebooks)). The model before the rollout is restored (PATCH with C(If-Match)), every
        instance the rollout moved is moved back with one manual upgrade, their health is watched for
        O(health_timeout), and the rollback point is removed once they are Healthy - as O(on_failure=rollback)
        does after a failed gate, and with the same result keys (RV(rollback)).
      - The module then succeeds with RV(status=rolled_back); it fails with V(rollback_failed). A rollback point
        in state C(rolling_back) (an interrupted rollback) is finished the same way.
      - Without a rollback point (the rollout completed, or was rolled back already) there is nothing to roll
        back - RV(status=nothing_to_do), nothing written. Roll out the previous version instead.
      - Not with O(image) or O(model) (the rollback point says what to restore).
    type: bool
    default: false
  demote_image_version_on_failure:
    description:
      - When a gate stops the rollout, set C(exclude_from_latest=true) on the gallery image version being
        rolled out (a PATCH of that field only), so that nothing picks it as C(latest) any more. It is not deleted.
      - Requires O(image) to be a gallery image version ID.
    type: bool
    default: false
  max_batches:
    description:
      - Run at most this many batches (the resume check aside), then return with RV(status=in_progress) and
        the rollback point still on the scale set. Call the module again to continue.
      - If not set, every batch runs (with O(batch_gate), 1 batch per step).
    type: int
  batch_gate:
    description:
      - A directory on the host where the module runs. When set, the call runs its batches in steps of
        O(max_batches) (1 when unset) and does not return after a step; it writes the result such a call would
        have returned (RV(status=in_progress), that step's batches only) to C(step-<n>.json) there (a temporary
        file renamed), then waits for C(word-<n>) to say C(go) (the next step) or C(stop) (the call returns as
        one ending at O(max_batches) does, the lease kept with O(keep_lease)). Its last step ends the call as
        before, the result cut to that step. One module process per rollout instead of one per step.
      - While it waits the lease is renewed as during a batch; when its controller is gone, or O(wait_timeout)
        passes, the call returns as with C(stop). Its files are removed when it returns.
      - M(fleetops.vmss.rollout_wait) says the words and reads the steps (its O(fleetops.vmss.rollout_wait#module:gate));
        the C(fleetops.vmss.rollout) role uses them. Not in check mode (the plan is one result).
    type: path
  report_path:
    description:
      - A directory on the host where the module runs. When set, a JSON report, a Markdown report and its SVG
        timeline are written there (names start with C(rollout-<scale set>-<start time>)), and returned in RV(report).
      - Nothing is written in check mode.
    type: path
  wait_timeout:
    description:
      - Seconds the whole run may take. When it passes, the run halts where it is (a re-run resumes).
    type: int
    default: 3600
  wait_sleep:
    description:
      - Seconds between two health checks (one paged list of the instances each), and between two polls of an
        operation when Azure does not say when to ask again (C(Retry-After), always honoured).
    type: float
    default: 5
  preflight:
    description:
      - Check mode only (ignored otherwise). Also return what a pre-flight checks, read in this same call -
        RV(preflight) - and return a refusal (invalid options, the scale set missing or not fit, the precheck)
        in RV(refusal) instead of failing, so that the caller can check its own conditions on what was read first.
        An Azure error or a fault (RV(transient)) still fails the module.
      - The reads come before the options are judged - the scale set, its instances (those the plan uses) and,
        through Azure Monitor, the autoscale settings that target it (one list of the subscription's settings) -
        what M(fleetops.vmss.scale_set_info), M(fleetops.vmss.scale_set_instance_info) and
        M(fleetops.vmss.autoscale_info) return, from the module process that plans instead of three more.
    type: bool
    default: false
notes:
  - "Rules checked before any write: the scale set exists; its upgrade mode is V(Manual) when the model changes
    (in V(Automatic) every instance would follow at once, in V(Rolling) Azure's own rolling upgrade would; see
    M(fleetops.vmss.rolling_upgrade)); its model has the Application Health extension (the health signal);
    O(batch_size), the thresholds, O(canary), the times and O(max_batches) are in range; O(demote_image_version_on_failure)
    comes with a gallery image version ID in O(image); the C(fleetops.rollout) tag, if any, is one this module wrote."
  - "Cost on a Flexible scale set: the same single manual upgrade per batch (Azure takes VM names as instance
    IDs there), and health reads through the resource group's VM list filtered on the scale set. Azure does not
    report C(latestModelApplied) for Flexible VMs; the rollout reads each VM's image reference and size, as on
    Uniform. Elsewhere (M(fleetops.vmss.scale_set_instance)) a Flexible instance is on the latest model when its image reference,
    size and extension definitions (each model extension's publisher, type, handler version - major.minor, or
    major only with C(autoUpgradeMinorVersion) - and public settings, against the VM's C(resources); never
    protected settings, which Azure does not return) are the scale set's. A VM that reports no C(resources) is
    judged on image and size only. So an extension-only model change rolls out like an image change."
  - "B(Flexible, new image: a preview feature, checked before any write.) Manual upgrade of Flexible instances is
    documented by Azure as preview, and moving them to a new image reference needs the subscription feature
    C(Microsoft.Compute/ImageReferenceUpgradeForVmoVMs). When the rollout changes (or resumes or rolls back) the
    image of a Flexible scale set, it first reads the feature's registration (one GET, I(Features - Get)) and
    fails before any write, in check mode too, unless it is C(Registered); the message says how to register it
    (C(az feature register --namespace Microsoft.Compute --name ImageReferenceUpgradeForVmoVMs), then
    C(az provider register -n Microsoft.Compute)) and names the alternatives, blue/green (M(fleetops.vmss.blue_green),
    new instances, no feature) and Azure's rolling upgrade (M(fleetops.vmss.rolling_upgrade); the rollout role's
    C(rollout_strategy=azure_rolling)), which Azure documents as a preview on Flexible too (feature
    C(VMSSFlexRollingUpgrade), and this feature for image changes). Reading it needs C(Microsoft.Features/providers/features/read); without it the
    rollout fails naming that permission. VM size or extension changes alone do not need the feature."
  - The estimate in RV(plan.estimated_seconds) is a lower bound - two minutes per upgrade plus the time the
    Application Health extension takes to settle per batch (C(numberOfProbes) x C(intervalInSeconds); its
    C(gracePeriod) is only the most an instance may stay Initializing), the pauses and the canary soak.
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.lease
  - fleetops.vmss.metric_gates
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the scale set and its instances, runs the precheck and returns the plan with its estimated duration; writes nothing (no report either).
  diff_mode:
    support: full
    details: The model change (image, size, extensions) before and after; protected settings and custom data never appear.
  idempotent:
    support: full
    details:
      - Once every instance is on the model and healthy, a run with the same options writes nothing (RV(status=nothing_to_do)).
      - After an interruption, a run with the same options continues; it never upgrades an instance twice.
seealso:
  - module: fleetops.vmss.scale_set
  - module: fleetops.vmss.scale_set_instance
  - module: fleetops.vmss.gallery_image_version
  - name: Virtual Machine Scale Sets - Update Instances (REST API)
    description: The manual upgrade sent once per batch.
    link: https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/update-instances
"""

EXAMPLES = r"""
- name: Roll out image 1.7.0 in 20% batches; roll back and demote it if health regresses
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: /subscriptions/{{ sub }}/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments/versions/1.7.0
    batch_by: percent
    batch_size: 20
    health_timeout: 600
    on_failure: rollback
    demote_image_version_on_failure: true
    report_path: /var/log/rollouts
  register: rollout

- name: What would the rollout do? (plan, estimate, no write)
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: /subscriptions/{{ sub }}/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments/versions/1.7.1
    batch_by: update_domain
  check_mode: true
  diff: true
  register: plan

- name: A canary instance soaked for ten minutes, then one zone at a time
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server, version: 24.04.202611010}
    canary: 1
    canary_soak: 600
    batch_by: zone
    pause_between_batches: 60

- name: Roll out batch by batch, one module call per batch (progress in the job output)
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: "{{ image_version_id }}"
    max_batches: 1
  register: step
  until: step.status != "in_progress"
  retries: 50
  delay: 0
  failed_when: step.status not in ["succeeded", "nothing_to_do", "in_progress"]

- name: Roll back the halted rollout of payments-api now (an alert fired), whatever health says
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    rollback: true

- name: Move the instances onto a VM size already set in the model, halting on failure
  fleetops.vmss.rollout:
    resource_group: batch
    name: workers
    batch_by: count
    batch_size: 5
    on_failure: halt

- name: Install app 1.5.0 with the custom script extension, by update domain; a rollback restores 1.4.0
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    model:
      extensions:
        - name: app
          publisher: Microsoft.Azure.Extensions
          type: CustomScript
          type_handler_version: "2.1"
          settings:
            fileUris: ["https://pkgs.example.com/payments/app-1.5.0.tgz"]
          protected_settings:
            commandToExecute: "./install.sh --hsm-token {{ hsm_token_v150 }}"
    previous_protected_settings:
      app:
        commandToExecute: "./install.sh --hsm-token {{ hsm_token_v140 }}"
    batch_by: update_domain
"""

RETURN = r"""
changed:
  description: Whether the run wrote anything (model, tag, upgrades, demotion). In check mode, whether it would.
  returned: always
  type: bool
status:
  description:
    - V(planned) (check mode), V(succeeded) (every target upgraded and healthy), V(nothing_to_do),
      V(in_progress) (O(max_batches) reached), V(halted), V(interrupted), V(rolled_back) or V(rollback_failed).
    - V(interrupted) - a transient fault (429, 5xx, 409, a lost connection) outlasted the retries; nothing was
      judged, rolled back or demoted, and the rollback point is kept. Run the same task again to resume (or to
      finish a rollback it cut short).
    - The module fails (with RV(msg)) for V(halted), V(interrupted), V(rolled_back) and V(rollback_failed),
      returning every other key too - except for V(rolled_back) with O(rollback) (the rollback asked for).
  returned: always
  type: str
  sample: rolled_back
scale_set:
  description: The scale set, as C(resource_group/name).
  returned: always
  type: str
  sample: payments-prod/payments-api
orchestration_mode:
  description: V(Uniform) or V(Flexible).
  returned: always
  type: str
  sample: Uniform
model_changed:
  description: Whether this run changed the scale set's model (forward, or back in a rollback).
  returned: always
  type: bool
image_before:
  description: The image before the rollout (the rollback point's when resuming), as an O(image) dict.
  returned: always
  type: dict
  sample: {id: /subscriptions/xxx/resourceGroups/images/providers/Microsoft.Compute/galleries/golden/images/payments/versions/1.6.0}
image_after:
  description: The image rolled out, as an O(image) dict.
  returned: always
  type: dict
plan:
  description: The batches of this run, in order, the instances skipped and a lower-bound estimate.
  returned: always
  type: dict
  contains:
    batches:
      description: The planned batches.
      type: list
      elements: dict
      contains:
        index:
          description: The batch's position in this run's plan, from 0.
          type: int
        number:
          description:
            - The batch's number in the whole rollout, from 1, as the messages and the reports show it. A rollout
              run in several calls (O(max_batches), a re-run after an interruption) goes on counting where the
              previous call stopped (kept with the rollback point); a resume check keeps the number of the batch
              it watches again.
          type: int
        kind:
          description: V(canary), V(batch), or V(resume) (instances an interrupted run upgraded, watched with no write).
          type: str
        instance_ids:
          description: Instance IDs (VM names on a Flexible scale set).
          type: list
          elements: str
        update_domains:
          description: The update domains the batch spans.
          type: list
          elements: int
        fault_domains:
          description: The fault domains the batch spans.
          type: list
          elements: int
        zones:
          description: The zones the batch spans.
          type: list
          elements: str
    skipped:
      description: Instances left out, with C(instance_id) and C(reason).
      type: list
      elements: dict
    estimated_seconds:
      description: A lower bound of the duration.
      type: float
  sample:
    batches:
      - {index: 0, number: 1, kind: batch, instance_ids: ["0", "1"], update_domains: [0, 1], fault_domains: [0, 1], zones: []}
    skipped: []
    estimated_seconds: 790.0
batches:
  description: The batches this run ran, in order.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: The batch's position in RV(plan.batches).
      type: int
    number:
      description: The batch's number in the whole rollout, from 1 (see RV(plan.batches[].number)).
      type: int
    kind:
      description: V(canary), V(batch) or V(resume).
      type: str
    instance_ids:
      description: The instances of the batch.
      type: list
      elements: str
    started_at:
      description: When the batch started (ISO 8601, UTC).
      type: str
    ended_at:
      description: When the batch ended (ISO 8601, UTC).
      type: str
    outcome:
      description:
        - V(healthy); V(tolerated) (not every instance Healthy at O(health_timeout), but within both thresholds -
          see RV(batches[].note)); V(unhealthy) (a threshold crossed); V(set_unhealthy) (the batch is Healthy but the
          rest of the set crossed O(max_unhealthy_instance_percent), or a metric gate failed - see RV(batches[].metrics));
          V(timeout); V(failed) (the upgrade failed, or health could not be read); V(interrupted) (a transient fault,
          see RV(status)).
      type: str
    soak_seconds:
      description: For a canary watched for O(canary_soak) seconds once Healthy, those seconds (the end of the batch); else absent.
      type: float
      returned: when the canary soaked
    note:
      description: For V(tolerated), which instances were not Healthy and the thresholds they stayed within; else None.
      type: str
    health:
      description: The last health state seen per instance (None when there was no signal).
      type: dict
    metrics:
      description:
        - With O(metric_gates), the last verdict of each gate - C(metric), C(resource), C(aggregation), C(window),
          C(value) (the batch), C(baseline) (the instances not upgraded), C(ratio), C(samples), C(baseline_samples),
          C(threshold), C(state) (passed, failed, waiting) and C(reason).
      type: list
      elements: dict
      returned: when O(metric_gates) were judged for the batch
    unhealthy_upgraded_percent:
      description: The share of unhealthy instances among the upgraded ones at the end of the batch.
      type: float
    unhealthy_set_percent:
      description: The share of unhealthy instances in the whole set at the end of the batch.
      type: float
    arm_requests:
      description: The requests this batch sent, C(total), C(writes) and C(reads) (operation polls and retries included).
      type: dict
  sample:
    - index: 0
      number: 1
      kind: batch
      instance_ids: ["0", "1"]
      started_at: "2026-11-22T04:30:01.120Z"
      ended_at: "2026-11-22T04:33:05.870Z"
      outcome: unhealthy
      note: null
      health: {"0": Unhealthy, "1": Unhealthy}
      unhealthy_upgraded_percent: 100.0
      unhealthy_set_percent: 20.0
      arm_requests: {total: 19, writes: 1, reads: 18}
batches_total:
  description:
    - The batches of the whole rollout - those earlier calls of it ran and this call's plan - the M of
      "batch N of M" in RV(msg) and in the reports.
  returned: always
  type: int
  sample: 5
halt:
  description: Why the rollout stopped, None when it did not.
  returned: always
  type: dict
  contains:
    at:
      description: When (ISO 8601, UTC).
      type: str
    batch_index:
      description: The batch that stopped it (its RV(batches[].index)); None when it stopped before any batch.
      type: int
    batch_number:
      description: The batch that stopped it, numbered rollout-wide from 1 (its RV(batches[].number)); None when it stopped before any batch.
      type: int
    reason:
      description: One sentence.
      type: str
    code:
      description:
        - C(PrecheckFailed), C(MaxUnhealthyUpgradedInstancePercentExceeded), C(MaxUnhealthyInstancePercentExceeded),
          C(HealthTimeout), C(UpgradeFailed), C(Timeout) (O(wait_timeout)), C(RollbackResumed), or the ARM error code of
          a request that failed (for RV(status=interrupted), the transient fault's, such as C(OperationNotAllowed),
          C(TooManyRequests), C(HTTP 503) or C(ConnectionFailed)).
      type: str
  sample: {at: "2026-11-22T04:33:05.870Z", batch_index: 0, batch_number: 1, code: MaxUnhealthyUpgradedInstancePercentExceeded,
           reason: "2 of 2 upgraded instances (100%) are unhealthy, more than max_unhealthy_upgraded_instance_percent=20"}
rollback:
  description: The rollback, None when there was none.
  returned: always
  type: dict
  contains:
    started_at:
      description: When it started (ISO 8601, UTC).
      type: str
    ended_at:
      description: When it ended.
      type: str
    instance_ids:
      description: The instances moved back (those whose image or size was not the restored model's).
      type: list
      elements: str
    outcome:
      description:
        - V(healthy), V(unhealthy), V(timeout), V(failed) or V(interrupted) (a transient fault; run the task again
          to finish the rollback).
      type: str
    health:
      description:
        - The last health state seen per instance watched - those moved back and, when finishing an interrupted
          rollback, every instance on the restored model that was not Healthy.
      type: dict
demoted:
  description: The gallery image version excluded from latest (C(image_version_id), C(exclude_from_latest)), else None.
  returned: always
  type: dict
skipped_instances:
  description:
    - Instances the rollout does not touch, with C(instance_id) and C(reason) (C(protect_from_scale_set_actions)).
    - Not C(skipped), which Ansible would read as "the task was skipped".
  returned: always
  type: list
  elements: dict
  sample: [{instance_id: "7", reason: protect_from_scale_set_actions}]
summary:
  description:
    - C(instances_total), C(instances_upgraded) (sent to the new model by this run), C(instances_skipped),
      C(batches_planned), C(batches_completed) (healthy), C(started_at), C(ended_at), C(duration_seconds), and
      C(arm_requests) (C(total), C(writes), C(reads)).
  returned: always
  type: dict
report:
  description: The paths of the reports written (C(json), C(markdown), C(svg)), None without O(report_path).
  returned: always
  type: dict
msg:
  description:
    - Why the rollout failed, such as C(Rollout of scale set rg/name halted after batch 1 of 5 - <reason>; rolled back 2 instances),
      the batches numbered as RV(batches[].number) and RV(batches_total).
  returned: on failure
  type: str
transient:
  description:
    - C(true) when the module failed on a fault that outlasted the SDK's retries (HTTP 429, 409, any 5xx, a refused,
      dropped or timed-out connection) - an interruption, not Azure's answer on what was asked; the same task run again
      resumes. The roles read it so that such a fault never demotes an image version.
  returned: on such a failure only
  type: bool
  sample: true
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and operation polls included.
  returned: always
  type: int
  sample: 64
preflight:
  description:
    - With O(preflight) in check mode, what was read before the options were judged - C(scale_set), as
      M(fleetops.vmss.scale_set_info) returns it (an item of its C(scale_sets); None when it does not exist),
      C(instances), as M(fleetops.vmss.scale_set_instance_info) returns them, and C(autoscale_settings), those that target
      the scale set as M(fleetops.vmss.autoscale_info) returns them (webhooks masked). The lists are empty when the scale
      set does not exist.
  returned: with O(preflight) in check mode
  type: dict
  sample: {scale_set: {name: payments-api, resource_group: payments-prod, upgrade_policy: {mode: Manual}}, instances: [],
           autoscale_settings: []}
refusal:
  description:
    - With O(preflight) in check mode, why the rollout would be refused (the message the module fails with
      otherwise), None when the plan holds. The module does not fail for it.
  returned: with O(preflight) in check mode
  type: str
  sample: "Invalid options for the rollout of scale set payments-prod/payments-api: demote_image_version_on_failure needs image
    to be a gallery image version ID (.../galleries/G/images/I/versions/1.2.3), the version that would be demoted."
lease:
  description:
    - This run's lease on the scale set (see O(force_lease)) - C(tag) (V(fleetops.lease)), C(operation), C(owner) (the
      tag's value as written, or as found when another run holds it), C(expires) (ISO 8601 UTC), C(free) (false when
      another run holds it - check mode; a real run fails then), C(taken_over) (leases of other runs taken over, each
      C(scale_set), C(owner) and C(reason) - V(expired), V(orphaned), V(unreadable), V(forced)), C(released), or C(kept)
      (O(keep_lease) - left to the run's next call).
  returned: always
  type: dict
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _autoscale as autoscale
from ansible_collections.fleetops.vmss.plugins.module_utils import _batch_gate as batch_gate
from ansible_collections.fleetops.vmss.plugins.module_utils import _lease as leases
from ansible_collections.fleetops.vmss.plugins.module_utils import _metrics as metrics
from ansible_collections.fleetops.vmss.plugins.module_utils import _rollout as planner
from ansible_collections.fleetops.vmss.plugins.module_utils import _scale_set_model as model
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._gallery import split_version_id
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._rollout_run import Rollout, empty_result
from ansible_collections.fleetops.vmss.plugins.module_utils._run import now

SKU = dict(name=dict(type="str"), tier=dict(type="str"))
ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    image=dict(type="raw"),
    model=dict(type="dict", options=dict(sku=dict(type="dict", options=SKU),
                                         extensions=dict(type="list", elements="dict", options=model.extension_options()),
                                         os_profile=dict(type="dict", options=dict(custom_data=dict(type="str", no_log=True))))),
    previous_protected_settings=dict(type="dict", no_log=True),
    previous_custom_data=dict(type="str", no_log=True),
    batch_by=dict(type="str", choices=list(planner.BATCH_BY), default="percent"),
    batch_size=dict(type="int"),
    canary=dict(type="int", default=0),
    canary_soak=dict(type="float", default=0),
    pause_between_batches=dict(type="float", default=0),
    health_timeout=dict(type="float", default=600),
    **metrics.argument_spec(),
    max_unhealthy_instance_percent=dict(type="int", default=20),
    max_unhealthy_upgraded_instance_percent=dict(type="int", default=20),
    prioritize_unhealthy_instances=dict(type="bool", default=False),
    on_failure=dict(type="str", choices=["halt", "rollback"], default="rollback"),
    rollback=dict(type="bool", default=False),
    demote_image_version_on_failure=dict(type="bool", default=False),
    max_batches=dict(type="int"),
    batch_gate=dict(type="path", no_log=False),
    report_path=dict(type="path"),
    wait_timeout=dict(type="int", default=3600),
    wait_sleep=dict(type="float", default=5),
    preflight=dict(type="bool", default=False),
)
DEFAULT_PERCENT = 20


def option_errors(params):
    """Every reason the options cannot make a rollout, before any request."""
    errors = []
    if params["batch_by"] == "percent" and params["batch_size"] is None:
        params["batch_size"] = DEFAULT_PERCENT
    try:
        planner.Gate.of(params)
        planner.validate_options(params["batch_by"], params["batch_size"], params["canary"],
                                 health_timeout=params["health_timeout"], canary_soak=params["canary_soak"],
                                 pause_between_batches=params["pause_between_batches"],
                                 max_batches=params["max_batches"])
    except planner.PlanError as exc:
        errors.append(str(exc))
    errors += metrics.gate_errors(params["metric_gates"])
    if params["rollback"] and (params["image"] or params["model"]):
        errors.append("rollback rolls back to what the scale set's rollback point records: leave image and model out.")
    if params["demote_image_version_on_failure"]:
        image = model.image_option(params["image"]) if params["image"] else {}
        parts = split_version_id(image.get("id"))
        if not parts or not parts.get("version"):
            errors.append("demote_image_version_on_failure needs image to be a gallery image version ID "
                          "(.../galleries/G/images/I/versions/1.2.3), the version that would be demoted.")
    return errors


def desired_model(params):
    """The model options the user set (image, sku name and tier, extensions, custom data), in the scale_set
    module's shape."""
    return model.desired_options(dict(params["model"] or {}, image=params["image"]))


def number_batches(result, first):
    """Number the batches rollout-wide (1-based) in place: ``first`` is this run's first batch's number, after
    those earlier runs of the same rollout ran (Rollout.first_number, from the rollback point)."""
    for batch in (result.get("plan") or {}).get("batches") or []:
        batch["number"] = first + batch["index"]
    for batch in result.get("batches") or []:
        batch["number"] = first + batch["index"]
    result["batches_total"] = first - 1 + len((result.get("plan") or {}).get("batches") or [])
    halt = result.get("halt")
    if halt is not None:
        halt["batch_number"] = None if halt.get("batch_index") is None else first + halt["batch_index"]
    return result


def write_reports(module, result):
    from ansible_collections.fleetops.vmss.plugins.module_utils._report import \
        write_reports as write  # pylint: disable=import-outside-toplevel

    try:
        return write(result, module.params["report_path"], kind="rollout")
    except OSError as exc:
        module.warn("Could not write the rollout reports to %s: %s" % (module.params["report_path"], exc))
    return None


def preflight_reads(module, run):
    """O(preflight): the scale set, its instances (kept for the plan) and the autoscale settings that target it, as
    the info modules return them, into RV(preflight)."""
    found = dict(scale_set=None, instances=[], autoscale_settings=[])
    resource = run.azure.read()
    if resource is not None:
        run.listed = run.azure.instances()
        with arm_errors("list the autoscale settings that target", run.azure.what):
            settings = autoscale.targeting(autoscale.list_settings(module.client("monitor").autoscale_settings, None),
                                           resource["id"])
        found.update(scale_set=resource_result(resource), instances=run.listed, autoscale_settings=settings)
    run.result["preflight"] = found


def main():
    module = AzureModule(names=dict(name="scale_set"), argument_spec=ARGUMENT_SPEC, supports_check_mode=True, lease=True)
    params = module.params
    scale_set = "%s/%s" % (params["resource_group"], params["name"])
    # a pre-flight reads first, and returns a refusal rather than failing with it: its caller checks its own
    # conditions (in its own words) on what was read before it looks at the refusal
    preflight = params["preflight"] and module.check_mode
    errors = option_errors(params)
    invalid = "Invalid options for the rollout of scale set %s: %%s" % scale_set
    if errors and not preflight:
        module.fail_json(msg=invalid % " ".join(errors), errors=errors, arm_requests=module.arm_requests,
                         **empty_result(scale_set, now()))
    run = Rollout(module.client("compute"), params, module.requests, module.check_mode,
                  monitor=lambda: module.client("monitor"))
    result, msg = run.result, None

    def refuse(reason, **extra):
        if preflight:
            module.exit_json(refusal=reason, arm_requests=module.arm_requests, **dict(run.finish(), **extra))
        module.fail_json(msg=reason, arm_requests=module.arm_requests, **dict(run.finish(), **extra))

    # one operation per scale set: the lease, or a failure naming its holder (before any write)
    lease = leases.take(module, run.azure.compute, "rollout", [(params["resource_group"], params["name"])], result,
                        defer=True)
    lease.guard(run.azure, last=leases.removes_tag(planner.MARKER_TAG))
    steps = open_gate(module, run, lease) if params["batch_gate"] and not module.check_mode else None
    try:
        if preflight:
            preflight_reads(module, run)
            if errors:
                refuse(invalid % " ".join(errors), errors=errors)
        # current state: the scale set and the rollback point it carries
        try:
            found = run.read(again=not preflight)
        except planner.PlanError as exc:
            refuse("Cannot roll out scale set %s: %s" % (scale_set, exc))
        if found is None:
            refuse("Failed to roll out scale set %s: ResourceNotFound: the scale set does not exist." % scale_set)

        # desired state and difference, against Azure's rules and the rollout's (no write yet)
        errors = run.compare(desired_model(params))
        if errors:
            refuse(invalid % " ".join(errors), errors=errors)
        if module.diff_mode:
            result["diff"] = run.diff()

        # the plan, and the precheck before any write (none for a rollback asked for: health is not its gate)
        refusal = None if params["rollback"] else run.plan()
        if params["rollback"]:
            run.roll_back_on_request()
        elif refusal:
            result.update(status="halted", halt={"at": now(), "batch_index": None, "reason": refusal,
                                                 "code": "PrecheckFailed"})
        elif module.check_mode:
            result.update(status="planned", changed=bool(run.tracker or run.batches or run.unconfirmed or run.marker))
        elif run.marker is not None and run.marker.get("state") == "rolling_back":
            run.finish_interrupted_rollback()
        else:
            # act: the model change with its rollback point, then batch after batch
            run.change_model()
            run.run_batches()
        msg = run.message()
    except AzureFailure as failure:
        # a transient fault interrupts (re-run to resume); any other Azure error halts where the run is
        msg = run.stopped_by(failure)
        preflight = False   # and fails a pre-flight too: what it read is not the whole picture

    number_batches(run.finish(), run.first_number)
    arm_requests = module.arm_requests
    if steps is not None:   # the last step's part, as a call with max_batches would return it
        result = steps.view(dict(result, arm_requests=arm_requests), run.estimate_from)
        arm_requests = result.pop("arm_requests")
    if params["report_path"] and not module.check_mode:
        result["report"] = write_reports(module, result)
    if msg:
        if preflight:
            refuse(msg)
        module.fail_json(msg=msg, arm_requests=arm_requests, **result)
    module.exit_json(arm_requests=arm_requests, **dict(result, **({"refusal": None} if preflight else {})))


def open_gate(module, run, lease):
    """batch_gate: after each step (max_batches batches, 1 when unset) with more to run, publish the step's result
    and wait for the caller's word (_batch_gate); returns the Steps that cut the run's result into steps."""
    if module.params["max_batches"] is None:
        module.params["max_batches"] = 1
    try:
        gate = batch_gate.Gate(module.params["batch_gate"], lease.controller.alive, run.deadline.remaining)
    except OSError as exc:   # before any write
        module.fail_json(msg="Invalid options for the rollout of scale set %s: batch_gate %s is not a directory this "
                         "module can write to (%s). Nothing was written." % (run.result["scale_set"],
                                                                             module.params["batch_gate"], exc.strerror or exc),
                         arm_requests=module.arm_requests, **run.finish())
    steps = batch_gate.Steps(run.result)

    def between():
        # the call's result now: numbered, with its summary and requests so far
        result = dict(number_batches(run.finish(), run.first_number), arm_requests=module.arm_requests)
        step = steps.view(result, run.estimate_from)
        step.update(status="in_progress", lease=dict(lease.info, kept=True), report=None)
        gate.publish(steps.step, step)
        going = gate.wait(steps.step)
        steps.mark(result)
        return going

    run.between = between
    module.on_exit.append(lambda _result: gate.remove())
    return steps


if __name__ == "__main__":
    main()
