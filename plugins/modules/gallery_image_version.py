#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery_image_version
short_description: Publish, replicate, promote, demote and delete Azure Compute Gallery image versions
version_added: 0.1.0
description:
  - Creates an image version from a source (managed image, virtual machine, snapshot, managed disk, another gallery
    image version, or a VHD), replicates it to target regions, changes its publishing profile, or deletes it.
  - B(Replication.) With O(wait=true) the module waits, within O(wait_timeout), until every target region reports
    replication C(Completed), and returns each region's state and progress in
    RV(gallery_image_version.replication_status). When the deadline passes first, it fails saying which regions are
    still replicating and how far they are; Azure goes on replicating.
  - B(Adding a region later replicates only that region.) Regions are compared by name; those you do not list are
    left alone (unless O(purge_target_regions=true)), and the update re-sends the current regions unchanged, so
    Azure copies the image only to the new ones. A region whose replication C(Failed) is retried by the next run.
  - B(Promote and demote.) O(exclude_from_latest) hides the version from C(latest) (demote) or shows it again
    (promote) without replicating anything again.
  - B(Promoting deploys.) A version that becomes C(latest) makes Azure start its automatic OS upgrade onto it on every
    scale set whose model follows C(latest) of the image definition with automatic OS image upgrade on
    (C(upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade)), in each region it is replicated to.
    M(fleetops.vmss.rolling_upgrade) joins that upgrade, or reports how it ended, instead of starting another.
  - B(Checked before anything is written), each with a clear message - the version name (C(MAJOR.MINOR.PATCH)),
    replica counts (1 to 100, Azure's limit), region names (against the subscription's regions), that the source
    exists and has the OS type of the image definition, that the gallery's region is a target region, and that
    nothing Azure refuses to change would change (O(source), O(storage_account_type), O(replication_mode), a
    replicated region's storage account type).
  - Only the options you set are sent and compared; an option left out stays as it is in Azure.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group of the gallery.
    type: str
    required: true
  gallery_name:
    description: The gallery.
    type: str
    required: true
  gallery_image_name:
    description: The image definition.
    type: str
    required: true
  name:
    description: The version, C(MAJOR.MINOR.PATCH) such as V(1.7.0).
    type: str
    required: true
  state:
    description: V(present) creates or updates the version; V(absent) deletes it (from every region).
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - What the version is made from. Required to create; cannot change afterwards.
      - Set O(source.id) or O(source.uri).
    type: dict
    suboptions:
      id:
        description:
          - The resource ID of a managed image, a generalized or specialized virtual machine, a snapshot, a managed
            disk, or another gallery image version. It must exist, and its OS type must be the definition's.
        type: str
      uri:
        description: The URI of a VHD blob (the OS disk). Needs O(source.storage_account_id).
        type: str
      storage_account_id:
        description: The resource ID of the storage account that holds O(source.uri).
        type: str
  target_regions:
    description:
      - The regions to replicate to. The gallery's region must be one of them when creating (Azure keeps
        every version there). If not set when creating, the gallery's region only.
      - Each region you list is compared by name; regions you do not list are left alone unless
        O(purge_target_regions=true).
    type: list
    elements: dict
    suboptions:
      name:
        description: The region, such as V(westeurope) (or V(West Europe)).
        type: str
        required: true
      regional_replica_count:
        description: Replicas in this region, 1 to 100. If not set, O(replica_count).
        type: int
      storage_account_type:
        description: The storage for this region's replicas; cannot change once the region is replicated.
        type: str
        choices: [Standard_LRS, Standard_ZRS, Premium_LRS, PremiumV2_LRS]
      exclude_from_latest:
        description: Hide the version from C(latest) in this region only.
        type: bool
  purge_target_regions:
    description:
      - Remove the replicas in the regions that O(target_regions) does not list. Azure deletes them.
    type: bool
    default: false
  replica_count:
    description: Replicas per region for regions without O(target_regions[].regional_replica_count), 1 to 100.
    type: int
  exclude_from_latest:
    description:
      - V(true) hides the version from C(latest) everywhere (demote); V(false) makes it eligible again (promote).
        Nothing is replicated again.
    type: bool
  end_of_life_date:
    description: When the version is no longer supported, an ISO 8601 date or date-time. Informational.
    type: str
  storage_account_type:
    description: The default storage for replicas; set when creating, cannot change afterwards.
    type: str
    choices: [Standard_LRS, Standard_ZRS, Premium_LRS, PremiumV2_LRS]
  replication_mode:
    description:
      - V(Full) copies the image to every replica; V(Shallow) (test images only) skips the copy. Set when creating,
        cannot change afterwards.
    type: str
    choices: [Full, Shallow]
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
    details: Reads the version (and, to create, its definition and source) and returns what would change; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ (regions by name).
  idempotent:
    support: full
    details:
      - A second run with the same options reads the version, finds no difference and sends no write.
      - With O(wait=true) it still waits for a replication that is in progress.
notes:
  - Image Builder (M(fleetops.vmss.image_template), M(fleetops.vmss.image_build)) creates versions itself; use this
    module on such a version without O(source) to replicate it further, promote or demote it.
  - An image version is read-only in Azure while it replicates; a change to a version that is replicating waits
    for Azure to accept it.
seealso:
  - module: fleetops.vmss.gallery_image_version_info
  - module: fleetops.vmss.gallery_image
  - name: Gallery Image Versions - Update (REST API)
    description: The PATCH this module sends for changes.
    link: https://learn.microsoft.com/rest/api/compute/gallery-image-versions/update
  - name: Azure Compute Gallery limits
    description: Where the 100 replica limit comes from.
    link: https://learn.microsoft.com/azure/virtual-machines/azure-compute-gallery#limits
"""

EXAMPLES = r"""
- name: Publish 1.7.0 from another gallery version, in the canary region only, hidden from latest
  fleetops.vmss.gallery_image_version:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    name: 1.7.0
    source:
      id: /subscriptions/{{ sub }}/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/staging/images/payments-api/versions/1.7.0
    target_regions:
      - {name: westeurope, regional_replica_count: 2}
    exclude_from_latest: true

- name: Replicate it to a second region (only northeurope is copied), showing each region's progress
  fleetops.vmss.gallery_image_version:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    name: 1.7.0
    target_regions:
      - {name: northeurope, regional_replica_count: 3}
    wait_timeout: 3600
  register: replicated

- name: Demote 1.7.0 (it broke the HSM connection); latest goes back to 1.6.x, nothing is deleted
  fleetops.vmss.gallery_image_version:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    name: 1.7.0
    exclude_from_latest: true

- name: Start replicating and return at once (watch it with gallery_image_version_info)
  fleetops.vmss.gallery_image_version:
    resource_group: images-prod
    gallery_name: golden
    gallery_image_name: payments-api
    name: 1.7.1
    target_regions: [{name: eastus2}]
    wait: false
"""

RETURN = r"""
gallery_image_version:
  description:
    - The version in snake_case with C(properties) flattened, read with its replication status, as
      M(fleetops.vmss.gallery_image_version_info) returns it.
    - Region names (C(location), C(publishing_profile.target_regions[].name), C(replication_status.summary[].region))
      are region keys (V(eastus2)) however you spelled them (Azure answers with display names, V(East US 2)).
    - In check mode, as it is or as it would be created; None once deleted.
  returned: always
  type: dict
  contains:
    publishing_profile:
      description: Target regions (C(name), C(regional_replica_count), C(storage_account_type), C(exclude_from_latest)),
        C(replica_count), C(exclude_from_latest), C(end_of_life_date), C(storage_account_type), C(replication_mode).
      type: dict
      returned: always
    storage_profile:
      description: The source the version was made from.
      type: dict
      returned: always
    replication_status:
      description:
        - C(aggregated_state) (C(InProgress), C(Completed), C(Failed)) and C(summary), one entry per region with
          C(region), C(state), C(progress) (percent) and C(details).
      type: dict
      returned: when Azure has it (not in check mode for a new version)
      sample:
        aggregated_state: InProgress
        summary:
          - {region: westeurope, state: Completed, progress: 100, details: ""}
          - {region: northeurope, state: Replicating, progress: 40, details: ""}
    provisioning_state:
      description: C(Creating), C(Updating), C(Succeeded) or C(Failed).
      type: str
      returned: always
changes:
  description:
    - The options that differ (and were, or in check mode would be, changed); empty when nothing changes.
    - C(target_regions[REGION].replication) names a failed region being replicated again.
  returned: always
  type: list
  elements: str
  sample: ["target_regions[northeurope]", "exclude_from_latest"]
timed_out:
  description: Whether O(wait_timeout) passed before replication finished (the module then fails).
  returned: on failure while waiting
  type: bool
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
  sample: 9
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import (
    AzureFailure, arm_errors, error_details, failure_message, is_handled, is_transient)
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import (
    deleted_diff, diff, long_running, preview, read)
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions, region_key
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, WaitTimeout, poller_result, wait_until

STORAGE_TYPES = ["Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS"]
ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    gallery_name=dict(type="str", required=True),
    gallery_image_name=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    source=dict(type="dict", options=dict(id=dict(type="str"), uri=dict(type="str"),
                                          storage_account_id=dict(type="str"))),
    target_regions=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True), regional_replica_count=dict(type="int"),
        storage_account_type=dict(type="str", choices=STORAGE_TYPES), exclude_from_latest=dict(type="bool"))),
    purge_target_regions=dict(type="bool", default=False),
    replica_count=dict(type="int"),
    exclude_from_latest=dict(type="bool"),
    end_of_life_date=dict(type="str"),
    storage_account_type=dict(type="str", choices=STORAGE_TYPES),
    replication_mode=dict(type="str", choices=["Full", "Shallow"]),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)
VERSION_TYPE = "Microsoft.Compute/galleries/images/versions"


def version_result(version):
    """The version as returned, region names as region keys (Azure answers with display names)."""
    return resource_result(gallery.with_region_keys(version)) if version else None


def describe(params):
    return "gallery image version %s/%s/%s/%s" % (params["resource_group"], params["gallery_name"],
                                                  params["gallery_image_name"], params["name"])


class Version:
    """The version's ARM calls, each read with its replication status."""

    def __init__(self, module, compute):
        params = module.params
        self.module = module
        self.compute = compute
        self.key = (params["resource_group"], params["gallery_name"], params["gallery_image_name"], params["name"])
        self.what = describe(params)

    def read(self):
        operations = self.compute.gallery_image_versions
        return read(self.what, lambda: operations.get(*self.key, expand="ReplicationStatus"))

    def definition(self):
        rg, gallery_name, image = self.key[:3]
        return read("gallery image %s/%s/%s" % (rg, gallery_name, image),
                    lambda: self.compute.gallery_images.get(rg, gallery_name, image))

    def write(self, action, start, deadline):
        """Send the write; with wait, wait for replication within the deadline, failing with each region's state."""
        with arm_errors(action, self.what):
            poller = start()
        if self.module.params["wait"]:
            try:
                poller_result(poller, deadline, "replication of %s" % self.what)
            except Exception as exc:  # pylint: disable=broad-except
                if not is_handled(exc):
                    raise
                self.fail_waiting(action, exc, deadline)
        return self.read()

    def wait_for_replication(self, current, deadline):
        """Nothing to write, but a replication in progress: wait for it (reads only)."""
        if not self.module.params["wait"] or gallery.replication_settled(current):
            return current
        latest = {"version": current}

        def settled():
            latest["version"] = self.read()
            return gallery.replication_settled(latest["version"])

        try:
            wait_until(settled, timeout=deadline.remaining(), sleep=self.module.params["wait_sleep"],
                       what="replication of %s" % self.what)
        except WaitTimeout as exc:
            self.fail_waiting("wait for", exc, deadline, latest["version"])
        if gallery.failed_regions(latest["version"]):
            self.fail_replication(latest["version"])
        return latest["version"]

    def fail_waiting(self, action, exc, deadline, version=None):
        version = version or self.read()
        details = error_details(exc)
        if isinstance(exc, WaitTimeout):
            msg = ("Replication of %s not Completed within %s seconds: %s. Azure goes on replicating; run again, or "
                   "read it with gallery_image_version_info, to see it finish."
                   % (self.what, int(deadline.timeout), gallery.describe_replication(version)))
        else:
            msg = "%s. Replication: %s" % (failure_message(action, self.what, details),
                                           gallery.describe_replication(version))
        self.module.fail_from(AzureFailure(msg, error=details, transient=is_transient(exc)),
                              timed_out=isinstance(exc, WaitTimeout), gallery_image_version=version_result(version),
                              arm_requests=self.module.arm_requests)

    def fail_replication(self, version):
        self.module.fail_json(msg="Replication of %s failed in %s: %s. The next run retries the failed regions."
                              % (self.what, ", ".join(gallery.failed_regions(version)),
                                 gallery.describe_replication(version)),
                              gallery_image_version=version_result(version), arm_requests=self.module.arm_requests)


def check_source(module, compute, desired, definition, what):
    """The source exists and has the definition's OS type (a VHD cannot be read: Azure checks it)."""
    source_id = (desired.get("source") or {}).get("id")
    if not source_id:
        return
    with arm_errors("get", "the source %s" % source_id):
        exists, os_type = gallery.read_source(compute, source_id)
    kind = gallery.source_kind(source_id)
    if not exists:
        module.fail_json(msg="Cannot create %s: its source, the %s %s, does not exist." % (what, kind, source_id),
                         arm_requests=module.arm_requests)
    wanted = ((definition or {}).get("properties") or {}).get("osType")
    if os_type and wanted and os_type.lower() != wanted.lower():
        module.fail_json(msg="Cannot create %s: its source, the %s %s, is a %s image but the image definition is for %s."
                         % (what, kind, source_id, os_type, wanted), arm_requests=module.arm_requests)


def main():
    module = AzureModule(argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        deadline = Deadline(params["wait_timeout"])
        what = describe(params)
        rg, gallery_name, image, name = (params[key] for key in ("resource_group", "gallery_name", "gallery_image_name",
                                                                 "name"))

        # the options alone (no request yet)
        desired = gallery.desired_version(params)
        errors = gallery.version_errors(name, desired if params["state"] == "present" else {})
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors)

        # current state
        compute = module.client("compute")
        version = Version(module, compute)
        operations = compute.gallery_image_versions
        current = version.read()

        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                long_running("delete", what, lambda: operations.begin_delete(rg, gallery_name, image, name),
                             deadline, params["wait"])
            module.exit_json(changed=current is not None, gallery_image_version=None, changes=["state"] if current else [],
                             arm_requests=module.arm_requests, **deleted_diff(module, current is not None))

        # desired state against Azure's rules, and the difference (nothing written yet)
        tracker = gallery.version_differences(desired, current, params["purge_target_regions"], params["purge_tags"])
        definition = None
        if current is not None:
            errors = gallery.version_immutable_errors(tracker, current, what)
            location = current["location"]
        else:
            definition = version.definition()
            if definition is None and not module.check_mode:
                module.fail_json(msg="Cannot create %s: image definition %s/%s/%s does not exist."
                                 % (what, rg, gallery_name, image), arm_requests=module.arm_requests)
            location = (definition or {}).get("location") or (desired.get("target_regions") or [{}])[0].get("name")
            errors = [] if "source" in desired else ["To create a version, set source."]
            errors += [error for error in [gallery.missing_home_region(desired, location or "")] if location and error]
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)
        if tracker:
            known = {region["name"] for region in gallery.version_options(current).get("target_regions", [])}
            check_regions(module, compute, [region["name"] for region in desired.get("target_regions") or []
                                            if region["name"] not in known], "target_regions")
        if current is None:
            check_source(module, compute, desired, definition, what)

        # act (or, in check mode, describe), and wait for replication
        after = current
        if current is None:
            body = gallery.version_create_body(desired, region_key(location))
            if module.check_mode:
                after = preview(body, gallery.gallery_image_id(module.subscription_id, rg, gallery_name, image, name), name,
                                VERSION_TYPE)
            else:
                after = version.write("create", lambda: operations.begin_create_or_update(rg, gallery_name, image, name,
                                                                                          body), deadline)
        elif tracker and not module.check_mode:
            body = gallery.version_update_body(tracker, desired, current, params["purge_target_regions"],
                                               params["purge_tags"])
            after = version.write("update", lambda: operations.begin_update(rg, gallery_name, image, name, body), deadline)
        elif not module.check_mode:
            after = version.wait_for_replication(current, deadline)

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(),
                         gallery_image_version=version_result(after),
                         arm_requests=module.arm_requests, **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
