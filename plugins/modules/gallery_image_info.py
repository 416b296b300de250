#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gallery_image_info
short_description: Read the image definitions of an Azure Compute Gallery
version_added: 0.1.0
description:
  - Returns one image definition, or every definition of a gallery.
  - Returns O(ignore:gallery_images=[]) when nothing matches, including when the gallery does not exist.
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
    description: The name of one image definition. If not set, every definition of the gallery.
    type: str
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.gallery_image
  - module: fleetops.vmss.gallery_image_version_info
"""

EXAMPLES = r"""
- name: Read one image definition
  fleetops.vmss.gallery_image_info:
    resource_group: images-prod
    gallery_name: golden
    name: payments-api
  register: found

- name: Its OS type
  ansible.builtin.debug:
    msg: "{{ found.gallery_images[0].os_type }}"
"""

RETURN = r"""
gallery_images:
  description:
    - The image definitions found, each in the shape M(fleetops.vmss.gallery_image) returns.
  returned: always
  type: list
  elements: dict
  sample:
    - name: payments-api
      resource_group: images-prod
      location: westeurope
      os_type: Linux
      os_state: Generalized
      hyper_v_generation: V2
      identifier: {publisher: fleetops, offer: payments, sku: cis-ubuntu-24_04}
      provisioning_state: Succeeded
"""

from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found


def main():
    module = AzureModule(names=dict(name="gallery_image"),
                         argument_spec=dict(resource_group=dict(type="str", required=True),
                                            gallery_name=dict(type="str", required=True), name=dict(type="str")),
                         supports_check_mode=True)
    try:
        rg, gallery_name, name = (module.params[key] for key in ("resource_group", "gallery_name", "name"))
        operations = module.client("compute").gallery_images
        if name:
            with arm_errors("get", "gallery image %s/%s/%s" % (rg, gallery_name, name)):
                found = ignore_not_found(lambda: operations.get(rg, gallery_name, name))
            found = [found] if found is not None else []
        else:
            with arm_errors("list", "image definitions of gallery %s/%s" % (rg, gallery_name)):
                found = ignore_not_found(lambda: list(operations.list_by_gallery(rg, gallery_name)), default=[])
        module.exit_json(changed=False, gallery_images=[resource_result(item) for item in found])
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
