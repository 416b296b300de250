#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_template
short_description: Create, replace and delete Azure VM Image Builder templates
version_added: 0.1.0
description:
  - Manages an Azure VM Image Builder (AIB) image template - the source image, the customizers run on it, and where
    the result is distributed (an Azure Compute Gallery image version, a managed image, a VHD). Run it with
    M(fleetops.vmss.image_build).
  - B(Templates cannot be changed in place.) Azure lets a template's O(tags), O(identity), O(distribute) and
    O(vm_profile) change (they are updated in place); any other difference (O(source), O(customize),
    O(build_timeout_in_minutes), O(location)) fails, naming the differences, unless O(replace=true).
  - B(O(replace=true)) deletes the template and creates it again with the options given (every option the new
    template needs must then be set). Its run history and run outputs go with it; the images it distributed stay.
    A template that failed to provision (Azure keeps it in state C(Failed)) is always replaced.
  - B(Checked before anything is written), each with a clear message - customizer and distributor fields,
    region names (against the subscription's regions), replica counts (1 to 100), gallery version names
    (C(MAJOR.MINOR.PATCH)), that the gallery image definitions distributed to exist, that an explicitly named
    version does not exist yet (the build would fail at the end), that a gallery image version or managed image
    source exists, and that its OS type is the definition's. Marketplace (C(PlatformImage)) sources and the
    identity are checked by Image Builder when the template is submitted.
  - A template cannot be changed or deleted while it builds; that fails before any write.
  - Only the options you set are sent and compared; an option left out stays as it is in Azure.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the template.
    type: str
    required: true
  name:
    description: The template's name.
    type: str
    required: true
  state:
    description: V(present) creates, updates or replaces the template; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - The region Image Builder runs in (one of the regions where Image Builder is offered). If not set when
        creating, the resource group's region.
    type: str
  identity:
    description:
      - The resource ID of the user-assigned managed identity Image Builder runs as (C(identity.userAssignedIdentities);
        Image Builder takes exactly one). It needs the right to write what the template distributes, for example
        Contributor on the gallery's resource group (M(fleetops.vmss.role_assignment)). Required to create.
    type: str
  source:
    description: The image to start from. Required to create.
    type: dict
    suboptions:
      type:
        description: V(PlatformImage) (Marketplace), V(ManagedImage) or V(SharedImageVersion) (a gallery image version).
        type: str
        required: true
        choices: [PlatformImage, ManagedImage, SharedImageVersion]
      publisher:
        description: PlatformImage publisher (V(Canonical)).
        type: str
      offer:
        description: PlatformImage offer (V(ubuntu-24_04-lts)).
        type: str
      sku:
        description: PlatformImage SKU (V(server)).
        type: str
      version:
        description: PlatformImage version; V(latest) (Azure's default) is resolved when the build starts.
        type: str
      image_id:
        description: ManagedImage resource ID.
        type: str
      image_version_id:
        description:
          - SharedImageVersion resource ID (a version, or a definition for its latest version).
        type: str
  customize:
    description:
      - The customization steps, in order. Each is a Shell, File or PowerShell step, a WindowsRestart or a WindowsUpdate.
      - Compared step by step on the fields you set.
    type: list
    elements: dict
    suboptions:
      type:
        description: The customizer.
        type: str
        required: true
        choices: [Shell, File, PowerShell, WindowsRestart, WindowsUpdate]
      name:
        description: A name for the step; it appears in Image Builder's log and in build failures.
        type: str
      script_uri:
        description: Shell, PowerShell - the URI of the script to run. Exactly one of this or O(customize[].inline).
        type: str
      sha256_checksum:
        description: Shell, PowerShell, File - the SHA256 of the file at the URI.
        type: str
      inline:
        description: Shell, PowerShell - commands to run.
        type: list
        elements: str
      run_elevated:
        description: PowerShell - run elevated.
        type: bool
      run_as_system:
        description: PowerShell - run as the Local System account (with O(customize[].run_elevated)).
        type: bool
      valid_exit_codes:
        description: PowerShell - exit codes that mean success (default 0).
        type: list
        elements: int
      source_uri:
        description: File - the URI of the file to copy into the image.
        type: str
      destination:
        description: File - the absolute path to copy it to.
        type: str
      restart_command:
        description: WindowsRestart - the command that restarts (default C(shutdown /r /f /t 0 /c "packer restart")).
        type: str
      restart_check_command:
        description: WindowsRestart - the command that checks the restart worked.
        type: str
      restart_timeout:
        description: WindowsRestart - how long to wait, such as V(5m) or V(2h) (default 5m).
        type: str
      search_criteria:
        description: WindowsUpdate - the search criteria (default C(IsInstalled=0)).
        type: str
      filters:
        description: WindowsUpdate - filters to select updates.
        type: list
        elements: str
      update_limit:
        description: WindowsUpdate - the most updates installed at once (default 1000).
        type: int
  distribute:
    description:
      - Where the image goes. Required to create. Updated in place (each distributor compared, in order, on the
        fields you set).
    type: list
    elements: dict
    suboptions:
      type:
        description: V(SharedImage) (an Azure Compute Gallery image version), V(ManagedImage) or V(VHD).
        type: str
        required: true
        choices: [SharedImage, ManagedImage, VHD]
      run_output_name:
        description: The name of the run output that records the artifact (1 to 64 letters, digits, -, _ or .).
        type: str
        required: true
      artifact_tags:
        description: Tags to put on the artifact.
        type: dict
      gallery_image_id:
        description:
          - SharedImage - the image definition's resource ID, or a version's (C(.../images/web/versions/1.7.0)) to
            choose the version name. The definition must exist; an explicitly named version must not.
        type: str
      target_regions:
        description: SharedImage - the regions the version is replicated to (the gallery's region is always one).
        type: list
        elements: dict
        suboptions:
          name:
            description: The region.
            type: str
            required: true
          replica_count:
            description:
              - Replicas in this region, 1 to 100 (Azure's default 1); Image Builder's C(replicaCount).
              - Also accepted as C(regional_replica_count), the name M(fleetops.vmss.gallery_image_version) uses
                (the gallery's C(regionalReplicaCount)).
            type: int
            aliases: [regional_replica_count]
          storage_account_type:
            description: Storage of this region's replicas (Azure's default Standard_LRS).
            type: str
            choices: [Standard_LRS, Standard_ZRS, Premium_LRS]
      versioning:
        description: SharedImage - how the version number is chosen when O(distribute[].gallery_image_id) names none.
        type: dict
        suboptions:
          scheme:
            description: V(Latest) (one patch above the highest version, of O(distribute[].versioning.major)) or V(Source).
            type: str
            required: true
            choices: [Latest, Source]
          major:
            description: With V(Latest), the major version to continue.
            type: int
      exclude_from_latest:
        description: SharedImage - publish the version hidden from C(latest).
        type: bool
      replication_mode:
        description: SharedImage - V(Full) or V(Shallow).
        type: str
        choices: [Full, Shallow]
      image_id:
        description: ManagedImage - the resource ID of the managed image to write.
        type: str
      location:
        description: ManagedImage - its region.
        type: str
      uri:
        description: VHD - the blob URI to write (if not set, a storage account in the staging resource group).
        type: str
  vm_profile:
    description: The VM the build runs on. Updated in place.
    type: dict
    suboptions:
      vm_size:
        description: Its size (Azure's default Standard_D1_v2, or Standard_D2ds_v4 for Gen2 images).
        type: str
      os_disk_size_gb:
        description: Its OS disk size in GB (0, Azure's default, keeps the source's).
        type: int
      user_assigned_identities:
        description: Identities to give the build VM (for example to read private artifacts).
        type: list
        elements: str
      vnet_config:
        description: A subnet to put the build VM in.
        type: dict
        suboptions:
          subnet_id:
            description: The subnet's resource ID.
            type: str
  build_timeout_in_minutes:
    description:
      - The longest the build may take, customizing and distributing included, 0 to 960 minutes (0 is Azure's
        default, 4 hours). M(fleetops.vmss.image_build) waits as long by default.
    type: int
  replace:
    description:
      - Delete and recreate the template when a difference cannot be updated in place. See the description.
    type: bool
    default: false
  tags:
    description: Resource tags. Only the tags you list are compared and set; others stay unless O(purge_tags=true).
    type: dict
  purge_tags:
    description: Remove the tags that O(tags) does not list.
    type: bool
    default: false
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.azure.wait
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the template, makes every check and returns what would change; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ (customize and distribute as whole lists).
  idempotent:
    support: full
    details: A second run with the same options reads the template, finds no difference and sends no write.
notes:
  - With O(replace=true) and O(wait=false), the module still waits (within O(wait_timeout)) for the old template to be
    deleted, since the new one cannot be submitted before.
  - Azure role assignments can take a few minutes to reach Image Builder; a build started right after granting its
    identity a role may fail with C(AuthorizationFailed) and succeed when run again.
seealso:
  - module: fleetops.vmss.image_build
  - module: fleetops.vmss.image_template_info
  - module: fleetops.vmss.user_assigned_identity
  - name: Azure VM Image Builder template reference
    description: Every field of a template.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/image-builder-json
"""

EXAMPLES = r"""
- name: A CIS-hardened Ubuntu image, published to the gallery as 1.7.0 in the canary region, hidden from latest
  fleetops.vmss.image_template:
    resource_group: images-prod
    name: payments-api-1-7-0
    location: westeurope
    identity: "{{ builder_identity_id }}"
    source: {type: PlatformImage, publisher: Canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    customize:
      - {type: Shell, name: cis-hardening, script_uri: "https://example.com/cis.sh"}
      - {type: Shell, name: hsm-client, inline: ["sudo apt-get install -y hsm-client=2.4.1"]}
    distribute:
      - type: SharedImage
        run_output_name: payments-api
        gallery_image_id: /subscriptions/{{ sub }}/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/golden/images/payments-api/versions/1.7.0
        target_regions: [{name: westeurope, replica_count: 1}]
        exclude_from_latest: true
    vm_profile: {vm_size: Standard_D2ds_v5}
    build_timeout_in_minutes: 90

- name: Change a customizer (a new template is needed)
  fleetops.vmss.image_template:
    resource_group: images-prod
    name: payments-api-1-7-0
    source: {type: PlatformImage, publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}
    customize:
      - {type: Shell, name: cis-hardening, script_uri: "https://example.com/cis-v2.sh"}
    identity: "{{ builder_identity_id }}"
    distribute: "{{ distribute }}"
    replace: true
"""

RETURN = r"""
image_template:
  description:
    - The template in snake_case with C(properties) flattened, as M(fleetops.vmss.image_template_info) returns it
      (C(source), C(customize), C(distribute), C(vm_profile), C(provisioning_state), C(last_run_status), ...).
    - In check mode, as it is or as it would be created; None once deleted.
  returned: always
  type: dict
changes:
  description: The options that differ (and were, or in check mode would be, changed); empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["customize", "tags.stage"]
replaced:
  description: Whether the template was (or in check mode would be) deleted and created again.
  returned: always
  type: bool
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and operation polls included.
  returned: always
  type: int
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils import _image_builder as builder
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import (
    deleted_diff, diff, long_running, preview, read)
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions
from ansible_collections.fleetops.vmss.plugins.module_utils._rest import resource_group_location
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

STR = dict(type="str")
CUSTOMIZER = dict(
    type=dict(type="str", required=True, choices=list(builder.CUSTOMIZER_FIELDS)), name=STR, script_uri=STR,
    sha256_checksum=STR, inline=dict(type="list", elements="str"), run_elevated=dict(type="bool"),
    run_as_system=dict(type="bool"), valid_exit_codes=dict(type="list", elements="int"), source_uri=STR,
    destination=STR, restart_command=STR, restart_check_command=STR, restart_timeout=STR, search_criteria=STR,
    filters=dict(type="list", elements="str"), update_limit=dict(type="int"))
DISTRIBUTOR = dict(
    type=dict(type="str", required=True, choices=list(builder.DISTRIBUTOR_FIELDS)),
    run_output_name=dict(type="str", required=True), artifact_tags=dict(type="dict"), gallery_image_id=STR,
    target_regions=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True), replica_count=dict(type="int", aliases=["regional_replica_count"]),
        storage_account_type=dict(type="str", choices=["Standard_LRS", "Standard_ZRS", "Premium_LRS"]))),
    versioning=dict(type="dict", options=dict(scheme=dict(type="str", required=True, choices=["Latest", "Source"]),
                                              major=dict(type="int"))),
    exclude_from_latest=dict(type="bool"), replication_mode=dict(type="str", choices=["Full", "Shallow"]),
    image_id=STR, location=STR, uri=STR)
ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=STR,
    identity=STR,
    source=dict(type="dict", options=dict(type=dict(type="str", required=True, choices=list(builder.SOURCE_FIELDS)),
                                          publisher=STR, offer=STR, sku=STR, version=STR, image_id=STR,
                                          image_version_id=STR)),
    customize=dict(type="list", elements="dict", options=CUSTOMIZER),
    distribute=dict(type="list", elements="dict", options=DISTRIBUTOR),
    vm_profile=dict(type="dict", options=dict(vm_size=STR, os_disk_size_gb=dict(type="int"),
                                              user_assigned_identities=dict(type="list", elements="str"),
                                              vnet_config=dict(type="dict", options=dict(subnet_id=STR)))),
    build_timeout_in_minutes=dict(type="int"),
    replace=dict(type="bool", default=False),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)
TEMPLATE_TYPE = "Microsoft.VirtualMachineImages/imageTemplates"


def describe(params):
    return "image template %s/%s" % (params["resource_group"], params["name"])


def template_id(subscription_id, params):
    return "/subscriptions/%s/resourceGroups/%s/providers/%s/%s" % (subscription_id, params["resource_group"],
                                                                    TEMPLATE_TYPE, params["name"])


def check_references(module, desired, what):
    """What the template refers to, read before it is submitted (Image Builder would only find out later).

    Returns warnings for check mode, where a definition the same playbook creates first may not exist yet."""
    compute = module.client("compute")
    check_regions(module, compute, builder.regions_of(desired), "location and distribute target regions")
    problems, notes, os_types = [], [], {}
    for target in builder.shared_image_targets(desired):
        rg, gallery_name, image, version = target["resource_group"], target["gallery"], target["image"], target["version"]
        name = "%s/%s/%s" % (rg, gallery_name, image)
        definition = read("gallery image %s" % name, lambda: compute.gallery_images.get(rg, gallery_name, image))
        if definition is None:
            (notes if module.check_mode else problems).append(
                "the gallery image definition %s it distributes to does not exist" % name)
            continue
        os_types[name] = (definition.get("properties") or {}).get("osType")
        if version and read("gallery image version %s/%s" % (name, version),
                            lambda: compute.gallery_image_versions.get(rg, gallery_name, image, version)) is not None:
            problems.append("version %s of %s already exists, so distributing to it would fail at the end of the build "
                            "(choose a new version)" % (version, name))
    source = desired.get("source") or {}
    source_id = source.get("image_version_id") or source.get("image_id")
    if source.get("type") in ("SharedImageVersion", "ManagedImage") and source_id:
        source_id = source_id[:-len("/versions/latest")] if source_id.lower().endswith("/versions/latest") else source_id
        if gallery.source_kind(source_id) is None and gallery.split_version_id(source_id):  # a definition: its latest
            parts = gallery.split_version_id(source_id)
            found = read("gallery image %s" % source_id,
                         lambda: compute.gallery_images.get(parts["resource_group"], parts["gallery"], parts["image"]))
            exists, os_type = found is not None, ((found or {}).get("properties") or {}).get("osType")
        else:
            with arm_errors("get", "the source %s" % source_id):
                exists, os_type = gallery.read_source(compute, source_id)
        if not exists:
            problems.append("its source %s does not exist" % source_id)
        for name, wanted in os_types.items():
            if exists and os_type and wanted and os_type.lower() != wanted.lower():
                problems.append("its source is a %s image but the image definition %s is for %s" % (os_type, name, wanted))
    if problems:
        module.fail_json(msg="Cannot submit %s: %s." % (what, "; ".join(problems)), errors=problems,
                         arm_requests=module.arm_requests)
    for note in notes:
        module.warn("In check mode: %s (yet)." % note)


def main():
    module = AzureModule(argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        # ansible-core keeps an alias's key beside its option's in suboptions; only replica_count is the template's
        for distributor in params.get("distribute") or []:
            for region in distributor.get("target_regions") or []:
                region.pop("regional_replica_count", None)
        deadline = Deadline(params["wait_timeout"])
        templates = module.client("imagebuilder").virtual_machine_image_templates
        rg, name, what = params["resource_group"], params["name"], describe(params)

        # current state
        current = read(what, lambda: templates.get(rg, name))

        if params["state"] == "absent":
            if current is not None and builder.is_running(current):
                module.fail_json(msg="Cannot delete %s: it is building (%s). Cancel the build first (image_build "
                                 "state=canceled) or wait for it." % (what, builder.describe_run(current)))
            if current is not None and not module.check_mode:
                long_running("delete", what, lambda: templates.begin_delete(rg, name), deadline, params["wait"])
            module.exit_json(changed=current is not None, image_template=None, changes=["state"] if current else [],
                             replaced=False, arm_requests=module.arm_requests, **deleted_diff(module, current is not None))

        # desired state, Azure's rules on it, and the difference (nothing written yet)
        desired = builder.desired_template(params)
        tracker = builder.template_differences(desired, current, params["purge_tags"])
        failed = builder.provisioning_problem(current)
        immutable = builder.needs_new_template(tracker) if current is not None else []
        if immutable and not params["replace"]:
            module.fail_json(msg="Image Builder templates cannot be changed in place, and %s differs in %s. Set replace: true "
                             "to delete the template and create it again (its run history goes with it; the images it "
                             "distributed stay), or give the new definition another template name."
                             % (what, ", ".join(immutable)), changes=tracker.display_paths(),
                             arm_requests=module.arm_requests)
        recreate = current is not None and bool(failed or immutable)
        errors = builder.template_errors(desired, creating=current is None or recreate)
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)
        if current is not None and (tracker or recreate) and builder.is_running(current):
            module.fail_json(msg="Cannot change %s while it builds (%s): cancel the build (image_build state=canceled) or "
                             "wait for it." % (what, builder.describe_run(current)), arm_requests=module.arm_requests)
        if failed and not tracker:
            tracker.add(("provisioning_state",), "Failed (%s)" % failed, "resubmitted")
        if current is None or recreate or tracker.touches("distribute") or tracker.touches("location"):
            check_references(module, desired, what)

        # act (or, in check mode, describe)
        after = current
        if current is None or recreate:
            location = desired.get("location") or (current or {}).get("location")
            if not location:
                with arm_errors("get", "resource group %s" % rg):
                    location = resource_group_location(module.client("imagebuilder"), module.subscription_id, rg)
            body = builder.create_body(desired, location)
            if module.check_mode:
                after = preview(body, template_id(module.subscription_id, params), name, TEMPLATE_TYPE)
            else:
                if recreate:
                    long_running("delete", what, lambda: templates.begin_delete(rg, name), deadline, True)
                after = long_running("create", what, lambda: templates.begin_create_or_update(rg, name, body),
                                     deadline, params["wait"])
        elif tracker and not module.check_mode:
            body = builder.update_body(tracker, desired, current, params["purge_tags"])
            after = long_running("update", what, lambda: templates.begin_update(rg, name, body), deadline,
                                 params["wait"])
        if after is None:  # wait: false, as Azure has it now
            after = read(what, lambda: templates.get(rg, name))

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(), replaced=recreate,
                         image_template=builder.template_result(after), arm_requests=module.arm_requests,
                         **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
