#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_template_info
short_description: Read Azure VM Image Builder templates and their builds
version_added: 0.1.0
description:
  - Returns one image template, the templates of a resource group, or every template of the subscription, each
    with the state of its last build (RV(image_templates[].last_run_status)).
  - Returns O(ignore:image_templates=[]) when nothing matches, including when the resource group does not exist.
author:
  - FleetOps maintainers (@fleetops)
options:
  resource_group:
    description: The resource group to look in. If not set, the whole subscription is listed.
    type: str
  name:
    description: The name of one template. Requires O(resource_group).
    type: str
  include:
    description:
      - More to read for each template found. V(run_outputs) adds RV(image_templates[].run_outputs), the artifacts of
        its last build (one request per template).
    type: list
    elements: str
    choices: [run_outputs]
    default: []
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
  - fleetops.vmss.attributes.info_module
seealso:
  - module: fleetops.vmss.image_template
  - module: fleetops.vmss.image_build
"""

EXAMPLES = r"""
- name: The state of a build
  fleetops.vmss.image_template_info:
    resource_group: images-prod
    name: payments-api-1-7-0
    include: [run_outputs]
  register: template

- name: Show it
  ansible.builtin.debug:
    msg: "{{ template.image_templates[0].last_run_status }} {{ template.image_templates[0].run_outputs }}"
"""

RETURN = r"""
image_templates:
  description: The templates found, each in the shape M(fleetops.vmss.image_template) returns.
  returned: always
  type: list
  elements: dict
  contains:
    last_run_status:
      description:
        - The last (or current) build, C(run_state) (C(Running), C(Succeeded), C(PartiallySucceeded), C(Failed),
          C(Canceling), C(Canceled)), C(run_sub_state) (C(Queued), C(Building), C(Customizing), C(Optimizing),
          C(Validating), C(Distributing)), C(start_time), C(end_time), C(duration_seconds) and C(message). None when
          never built.
        - C(end_time) and C(duration_seconds) are None until the build has ended (Azure reports
          C(0001-01-01T00:00:00Z) as the end time of a build that runs).
      type: dict
      returned: always
      sample: {run_state: Running, run_sub_state: Customizing, start_time: "2026-05-01T10:00:00Z", end_time: null,
               duration_seconds: null, message: ""}
    run_outputs:
      description: The last build's artifacts (C(name), C(artifact_id) or C(artifact_uri), C(provisioning_state)).
      type: list
      elements: dict
      returned: when O(include) has V(run_outputs)
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _image_builder as builder
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found


def read_templates(templates, resource_group, name):
    if name:
        found = ignore_not_found(lambda: templates.get(resource_group, name))
        return [found] if found is not None else []
    if resource_group:
        return ignore_not_found(lambda: list(templates.list_by_resource_group(resource_group)), default=[])
    return list(templates.list())


def run_outputs(templates, resource_group, name):
    return [resource_result(output) for output in
            ignore_not_found(lambda: list(templates.list_run_outputs(resource_group, name)), default=[])]


def main():
    module = AzureModule(argument_spec=dict(resource_group=dict(type="str"), name=dict(type="str"),
                                            include=dict(type="list", elements="str", default=[],
                                                         choices=["run_outputs"])),
                         required_by=dict(name="resource_group"), supports_check_mode=True)
    try:
        resource_group, name = module.params["resource_group"], module.params["name"]
        templates = module.client("imagebuilder").virtual_machine_image_templates
        what = ("image template %s/%s" % (resource_group, name) if name else "image templates in resource group %s"
                % resource_group if resource_group else "image templates in the subscription")
        with arm_errors("get" if name else "list", what):
            found = [builder.template_result(item) for item in read_templates(templates, resource_group, name)]
        for template in found:
            template.setdefault("last_run_status", None)
            if "run_outputs" in module.params["include"]:
                with arm_errors("list the run outputs of", "image template %s/%s"
                                % (template["resource_group"], template["name"])):
                    template["run_outputs"] = run_outputs(templates, template["resource_group"], template["name"])
        module.exit_json(changed=False, image_templates=found)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
