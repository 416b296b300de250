#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery_image
short_description: Create, update and delete image definitions in an Azure Compute Gallery
version_added: 0.1.0
description:
  - Creates an image definition (the OS type, state, generation and identifier that every version of the image
    shares), changes what Azure lets change, or deletes it.
  - Only the options you set are sent and compared; an option left out stays as it is in Azure.
  - B(What Azure does not let change fails before anything is written), naming each difference, for
    O(location), O(os_type), O(os_state), O(hyper_v_generation), O(architecture) and O(identifier).
    Create a new definition instead.
  - O(description), O(end_of_life_date), O(features) and O(tags) are updated in place (a changed feature is
    sent with C(allowUpdateImage), as Azure requires).
  - Azure refuses to delete a definition that still has versions.
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
  name:
    description: The image definition's name.
    type: str
    required: true
  state:
    description: V(present) creates or updates the definition; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  location:
    description:
      - The region. If not set when creating, the gallery's region (where Azure wants it).
    type: str
  os_type:
    description: The OS of the images. Required to create.
    type: str
    choices: [Linux, Windows]
  os_state:
    description:
      - V(Generalized) (sysprep / waagent deprovisioned; Image Builder output) or V(Specialized). Required to create.
    type: str
    choices: [Generalized, Specialized]
  hyper_v_generation:
    description: The VM generation the images boot as. Azure's default is V(V1); Trusted Launch needs V(V2).
    type: str
    choices: [V1, V2]
  architecture:
    description: The CPU architecture. Azure's default is V(x64).
    type: str
    choices: [x64, Arm64]
  identifier:
    description:
      - Publisher, offer and SKU - the triple that names the definition, unique in the gallery. Required to create.
    type: dict
    suboptions:
      publisher:
        description: The publisher name.
        type: str
      offer:
        description: The offer name.
        type: str
      sku:
        description: The SKU name.
        type: str
  features:
    description:
      - Image features, such as C(SecurityType) (V(TrustedLaunchSupported), V(TrustedLaunch),
        V(TrustedLaunchAndConfidentialVmSupported), V(ConfidentialVmSupported), V(ConfidentialVM)),
        C(IsAcceleratedNetworkSupported) or C(DiskControllerTypes).
      - Each feature you list is compared by name; features you do not list are left as they are.
    type: list
    elements: dict
    suboptions:
      name:
        description: The feature's name, as Azure spells it (C(SecurityType)).
        type: str
        required: true
      value:
        description: The feature's value.
        type: str
        required: true
  description:
    description: The definition's description.
    type: str
  end_of_life_date:
    description:
      - When the image is no longer supported, an ISO 8601 date or date-time (V(2027-12-31), V(2027-12-31T00:00:00Z)).
        Informational; Azure does not stop anyone using it.
    type: str
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
    details: Reads the definition and returns what would change; writes nothing. Immutable differences fail as they would for real.
  diff_mode:
    support: full
    details: Before and after of the options you set that differ.
  idempotent:
    support: full
    details: A second run with the same options reads the definition, finds no difference and sends no write.
seealso:
  - module: fleetops.vmss.gallery_image_info
  - module: fleetops.vmss.gallery_image_version
  - name: Gallery Images - Create Or Update (REST API)
    description: The resource this module manages.
    link: https://learn.microsoft.com/rest/api/compute/gallery-images/create-or-update
"""

EXAMPLES = r"""
- name: A Trusted Launch capable Linux image definition
  fleetops.vmss.gallery_image:
    resource_group: images-prod
    gallery_name: golden
    name: payments-api
    os_type: Linux
    os_state: Generalized
    hyper_v_generation: V2
    identifier: {publisher: fleetops, offer: payments, sku: cis-ubuntu-24_04}
    features:
      - {name: SecurityType, value: TrustedLaunchSupported}
    description: CIS-hardened Ubuntu 24.04 for the payments API

- name: Mark the image for decommissioning
  fleetops.vmss.gallery_image:
    resource_group: images-prod
    gallery_name: golden
    name: payments-api
    end_of_life_date: "2027-12-31"
"""

RETURN = r"""
gallery_image:
  description:
    - The image definition in snake_case with C(properties) flattened, as M(fleetops.vmss.gallery_image_info) returns it.
    - In check mode, as it is or as it would be created; None once deleted.
  returned: always
  type: dict
  sample:
    name: payments-api
    resource_group: images-prod
    location: westeurope
    os_type: Linux
    os_state: Generalized
    hyper_v_generation: V2
    architecture: x64
    identifier: {publisher: fleetops, offer: payments, sku: cis-ubuntu-24_04}
    features: [{name: SecurityType, value: TrustedLaunchSupported}]
    provisioning_state: Succeeded
changes:
  description: The options that differ (and were, or in check mode would be, changed); empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["end_of_life_date", "features[SecurityType].value"]
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and operation polls included.
  returned: always
  type: int
  sample: 2
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _gallery as gallery
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure
from ansible_collections.fleetops.vmss.plugins.module_utils._compare import compare
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import (
    deleted_diff, diff, long_running, preview, read)
from ansible_collections.fleetops.vmss.plugins.module_utils._regions import check_regions
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    gallery_name=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    location=dict(type="str"),
    os_type=dict(type="str", choices=["Linux", "Windows"]),
    os_state=dict(type="str", choices=["Generalized", "Specialized"]),
    hyper_v_generation=dict(type="str", choices=["V1", "V2"]),
    architecture=dict(type="str", choices=["x64", "Arm64"]),
    identifier=dict(type="dict", options=dict(publisher=dict(type="str"), offer=dict(type="str"), sku=dict(type="str"))),
    features=dict(type="list", elements="dict", options=dict(name=dict(type="str", required=True),
                                                             value=dict(type="str", required=True))),
    description=dict(type="str"),
    end_of_life_date=dict(type="str"),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
)
IMAGE_TYPE = "Microsoft.Compute/galleries/images"


def describe(params):
    return "gallery image %s/%s/%s" % (params["resource_group"], params["gallery_name"], params["name"])


def main():
    module = AzureModule(names=dict(name="gallery_image"), argument_spec=ARGUMENT_SPEC, wait=True, supports_check_mode=True)
    try:
        params = module.params
        deadline = Deadline(params["wait_timeout"])
        compute = module.client("compute")
        operations = compute.gallery_images
        rg, gallery_name, name, what = params["resource_group"], params["gallery_name"], params["name"], describe(params)

        # current state
        current = read(what, lambda: operations.get(rg, gallery_name, name))

        if params["state"] == "absent":
            if current is not None and not module.check_mode:
                long_running("delete", what, lambda: operations.begin_delete(rg, gallery_name, name),
                             deadline, params["wait"])
            module.exit_json(changed=current is not None, gallery_image=None, changes=["state"] if current else [],
                             arm_requests=module.arm_requests, **deleted_diff(module, current is not None))

        # desired state, Azure's rules on it, and the difference (nothing written yet)
        desired = gallery.desired_image(params)
        errors = gallery.image_errors(desired, creating=current is None)
        rules = gallery.image_rules(params["purge_tags"])
        if current is None:
            rules["tags"] = "map"
        tracker = compare(desired, gallery.image_options(current), rules)
        if current is not None:
            errors += gallery.immutable_errors(tracker, gallery.IMAGE_IMMUTABLE, what,
                                               "Azure does not allow it; create a new image definition instead")
        if errors:
            module.fail_json(msg="Invalid options for %s: %s" % (what, " ".join(errors)), errors=errors,
                             arm_requests=module.arm_requests)

        # act (or, in check mode, describe)
        after = current
        if current is None:
            parent = read("gallery %s/%s" % (rg, gallery_name), lambda: compute.galleries.get(rg, gallery_name))
            if parent is None and not module.check_mode:
                module.fail_json(msg="Cannot create %s: gallery %s/%s does not exist." % (what, rg, gallery_name),
                                 arm_requests=module.arm_requests)
            if parent is None:  # check mode of a playbook that creates the gallery first
                module.warn("Gallery %s/%s does not exist (yet): the definition would be created in it." % (rg, gallery_name))
            location = desired.get("location") or (parent or {}).get("location")
            if desired.get("location"):
                check_regions(module, compute, [location], "location")
            body = gallery.image_create_body(desired, location)
            if module.check_mode:
                after = preview(body, gallery.gallery_image_id(module.subscription_id, rg, gallery_name, name), name,
                                IMAGE_TYPE)
            else:
                after = long_running("create", what,
                                     lambda: operations.begin_create_or_update(rg, gallery_name, name, body),
                                     deadline, params["wait"])
        elif tracker and not module.check_mode:
            body = gallery.image_update_body(tracker, desired, current, params["purge_tags"])
            after = long_running("update", what, lambda: operations.begin_update(rg, gallery_name, name, body),
                                 deadline, params["wait"])
        if after is None:  # wait: false, as Azure has it now
            after = read(what, lambda: operations.get(rg, gallery_name, name))

        # result
        module.exit_json(changed=tracker.changed or current is None, changes=tracker.display_paths(),
                         gallery_image=resource_result(after) if after else None, arm_requests=module.arm_requests,
                         **diff(module, tracker, current))
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
