#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_build
short_description: Run, watch and cancel Azure VM Image Builder builds
version_added: 0.1.0
description:
  - Runs the build of an Image Builder template (M(fleetops.vmss.image_template)), waits for it, and returns its
    state (RV(last_run_status)) and what it produced (RV(run_outputs), such as the gallery image version's ID).
  - A separate module from M(fleetops.vmss.image_template) because a build is an action with its own lifetime (up to
    hours) that playbooks want to start, watch and cancel on their own, while the template is a resource.
  - B(Idempotent.) A build is started only when none is running and the template has never been built, or (with
    O(state=succeeded)) its last build did not succeed, or O(rebuild=true); otherwise the module watches the build
    there is.
  - B(A failed build fails the module) with Image Builder's message, which names the step that failed
    (C(lastRunStatus.message); the full log is the C(customization.log) it links to).
  - B(Progress in playbook output.) A module cannot print while it runs, so to show a long build's progress
    start it with O(state=started) and O(wait=false), then repeat O(state=started) with a short O(wait_timeout)
    (each returns when the build ends or the timeout passes, without failing) and print
    RV(msg) (the state in one line) between them, as the C(fleetops.vmss.bake) role does.
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
    description:
      - V(succeeded) starts a build unless one is running or the last one succeeded, and waits for it to succeed
        within O(wait_timeout); a build that fails, is canceled, or is still running when the timeout passes fails the
        module.
      - V(started) starts a build only if the template has never been built (or O(rebuild=true)), so that repeating it
        watches the same build instead of starting another once that one fails; with O(wait=true) it watches the
        build until it ends or O(wait_timeout) passes, returning either way, and fails when the build fails.
      - V(canceled) cancels a running build (and with O(wait=true) waits, within O(wait_timeout), until it has
        stopped; Azure accepts the cancel at once and the build goes C(Canceling), then C(Canceled)).
    type: str
    choices: [succeeded, started, canceled]
    default: succeeded
  rebuild:
    description:
      - Start a new build, unless one is running, whatever the last one did. A template that distributes to an
        explicitly named gallery version cannot build twice successfully (the version exists).
    type: bool
    default: false
  wait:
    description:
      - With O(state=started) or O(state=canceled), watch the build (up to O(wait_timeout)) before returning.
      - O(state=succeeded) always waits.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to watch the build. If not set, the template's C(buildTimeoutInMinutes) (4 hours when
        0) plus 5 minutes, so that a build that Image Builder lets run is waited for to its end.
    type: int
  wait_sleep:
    description: Seconds between two reads of the build's state.
    type: float
    default: 10.0
extends_documentation_fragment:
  - fleetops.vmss.azure
  - fleetops.vmss.attributes
attributes:
  check_mode:
    support: full
    details: Reads the template and says whether a build would start (or be canceled); starts nothing and does not wait.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A build is started only when none runs and none has (with O(state=succeeded), none has succeeded); running again watches the same build.
seealso:
  - module: fleetops.vmss.image_template
  - module: fleetops.vmss.image_template_info
  - name: Troubleshoot Azure VM Image Builder
    description: What the messages of failed builds mean.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/image-builder-troubleshoot
"""

EXAMPLES = r"""
- name: Build and wait (up to the template's build timeout)
  fleetops.vmss.image_build:
    resource_group: images-prod
    name: payments-api-1-7-0
  register: build

- name: The gallery image version it produced
  ansible.builtin.debug:
    msg: "{{ build.run_outputs | map(attribute='artifact_id') | list }}"

- name: Start the build and return at once
  fleetops.vmss.image_build:
    resource_group: images-prod
    name: payments-api-1-7-0
    state: started
    wait: false

- name: Watch it for up to two minutes (returns earlier when it ends; fails only if it failed)
  fleetops.vmss.image_build:
    resource_group: images-prod
    name: payments-api-1-7-0
    state: started
    wait_timeout: 120
  register: build

- name: Show where it is
  ansible.builtin.debug:
    msg: "{{ build.last_run_status.run_state }} / {{ build.last_run_status.run_sub_state }}"

- name: Cancel it
  fleetops.vmss.image_build:
    resource_group: images-prod
    name: payments-api-1-7-0
    state: canceled
"""

RETURN = r"""
last_run_status:
  description:
    - The build (C(run_state), C(run_sub_state), C(start_time), C(end_time), C(duration_seconds), C(message)); None if
      never built.
    - C(end_time) and C(duration_seconds) are None until the build has ended (Azure reports C(0001-01-01T00:00:00Z) as
      the end time of a build that runs).
  returned: always
  type: dict
  sample: {run_state: Succeeded, run_sub_state: Distributing, start_time: "2026-05-01T10:00:00Z", end_time: "2026-05-01T10:21:07Z",
           duration_seconds: 1267, message: ""}
run_outputs:
  description: What the build produced, one per distributor (C(name), C(artifact_id) or C(artifact_uri), C(provisioning_state)).
  returned: always (empty while the build runs)
  type: list
  elements: dict
  sample:
    - name: payments-api
      artifact_id: /subscriptions/0000/resourceGroups/images-prod/providers/Microsoft.Compute/galleries/golden/images/payments-api/versions/1.7.0
      provisioning_state: Succeeded
image_template:
  description: The template, in the shape M(fleetops.vmss.image_template_info) returns.
  returned: always
  type: dict
started:
  description: Whether this run started (or in check mode would start) a build.
  returned: always
  type: bool
finished:
  description: Whether the build had ended when the module returned.
  returned: always
  type: bool
timed_out:
  description: Whether O(wait_timeout) passed while the build was still running.
  returned: always
  type: bool
msg:
  description: The build's state in one line.
  returned: always
  type: str
  sample: "image template images-prod/payments-api-1-7-0: Running (Customizing) since 2026-05-01T10:00:00Z"
arm_requests:
  description: The number of requests sent to Azure Resource Manager, retries and polls included.
  returned: always
  type: int
"""

from ansible_collections.fleetops.vmss.plugins.module_utils import _image_builder as builder
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AzureModule, resource_result
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found
from ansible_collections.fleetops.vmss.plugins.module_utils._operations import as_dict, read
from ansible_collections.fleetops.vmss.plugins.module_utils._waiter import Deadline, WaitTimeout, poller_result, wait_until

ARGUMENT_SPEC = dict(
    resource_group=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["succeeded", "started", "canceled"], default="succeeded"),
    rebuild=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int"),
    wait_sleep=dict(type="float", default=10.0),
)
RESTARTABLE = ("Failed", "Canceled", "PartiallySucceeded")


def describe(params):
    return "image template %s/%s" % (params["resource_group"], params["name"])


class Build:
    """The template's build, read and acted on through Image Builder."""

    def __init__(self, module):
        self.module = module
        self.rg, self.name = module.params["resource_group"], module.params["name"]
        self.templates = module.client("imagebuilder").virtual_machine_image_templates
        self.what = describe(module.params)
        self.template = None

    def read(self):
        self.template = read(self.what, lambda: self.templates.get(self.rg, self.name))
        return self.template

    def outputs(self):
        with arm_errors("list the run outputs of", self.what):
            found = ignore_not_found(lambda: list(self.templates.list_run_outputs(self.rg, self.name)), default=[])
        return [resource_result(as_dict(output)) for output in found]

    def start(self):
        with arm_errors("start the build of", self.what):
            self.templates.begin_run(self.rg, self.name, polling=False)  # watched through the template, not the LRO

    def cancel(self, deadline, wait):
        with arm_errors("cancel the build of", self.what):
            poller = self.templates.begin_cancel(self.rg, self.name)
            if wait:
                poller_result(poller, deadline, "cancellation of the build of %s" % self.what)

    def watch(self, deadline, previous_start):
        """Read until the build (one that started after ``previous_start``, when given) has ended, or the deadline."""
        def ended():
            run = builder.last_run(self.read()) or {}
            if previous_start is not None and run.get("start_time") == previous_start:
                return False
            return run.get("run_state") in builder.RUN_ENDED

        try:
            wait_until(ended, timeout=deadline.remaining(), sleep=self.module.params["wait_sleep"],
                       what="the end of the build of %s" % self.what)
        except WaitTimeout:
            return False
        return True

    def result(self, **extra):
        run = builder.last_run(self.template)
        finished = bool(run) and run.get("run_state") in builder.RUN_ENDED
        result = dict(last_run_status=run, run_outputs=self.outputs() if finished else [], finished=finished,
                      image_template=builder.template_result(self.template), arm_requests=self.module.arm_requests)
        result.update(extra)
        result["msg"] = "%s: %s" % (self.what, builder.describe_run(self.template))
        return result


def main():
    module = AzureModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        params = module.params
        build = Build(module)

        # current state
        template = build.read()
        if template is None:
            module.fail_json(msg="Cannot build %s: it does not exist (create it with image_template)." % build.what)
        problem = builder.provisioning_problem(template)
        if problem:
            module.fail_json(msg="Cannot build %s: it failed to provision (%s); run image_template again to resubmit it."
                             % (build.what, problem))
        timeout = params["wait_timeout"] if params["wait_timeout"] is not None else \
            builder.build_timeout_seconds(template) + 300
        deadline = Deadline(timeout)
        run = builder.last_run(template) or {}

        if params["state"] == "canceled":
            running = builder.is_running(template)
            if running and not module.check_mode and run.get("run_state") == "Running":
                build.cancel(deadline, params["wait"])
            # Azure accepts a cancel with 204 and the build goes Canceling first: wait for the build itself to stop.
            stopped = build.watch(deadline, None) if running and not module.check_mode and params["wait"] else None
            if running and not module.check_mode and stopped is None:
                build.read()
            module.exit_json(**build.result(changed=running, started=False, timed_out=stopped is False))

        # desired: a build that has started (and, for succeeded, ended well); act (or, in check mode, describe)
        last = run.get("run_state")
        start = not builder.is_running(template) and (
            params["rebuild"] or not run or (params["state"] == "succeeded" and last in RESTARTABLE))
        if start and module.check_mode:
            result = build.result(changed=True, started=True, timed_out=False)
            result["msg"] = "%s: a build would start (last: %s)" % (build.what, builder.describe_run(template))
            module.exit_json(**result)
        previous_start = None
        if start:
            if template["properties"].get("provisioningState") != "Succeeded":
                wait_until(lambda: build.read()["properties"].get("provisioningState") in ("Succeeded", "Failed"),
                           timeout=deadline.remaining(), sleep=params["wait_sleep"], what="provisioning of %s" % build.what)
            previous_start = run.get("start_time") or ""
            build.start()
            build.read()

        # watch
        watched = not module.check_mode and (params["state"] == "succeeded" or params["wait"])
        ended = build.watch(deadline, previous_start) if watched else None
        result = build.result(changed=start, started=start, timed_out=ended is False)
        state = (result["last_run_status"] or {}).get("run_state")
        failure = {key: value for key, value in result.items() if key not in ("image_template", "msg")}  # the run
        if watched and ended and state in RESTARTABLE:
            how = {"Canceled": "was canceled", "Failed": "failed"}.get(state, "partly failed")
            message = (result["last_run_status"] or {}).get("message") or state
            module.fail_json(msg="Image build of %s %s: %s" % (build.what, how, message), **failure)
        if params["state"] == "succeeded" and ended is False:
            module.fail_json(msg="The build of %s did not end within %s seconds (%s); it goes on in Azure: run again to keep "
                             "waiting, or cancel it with state=canceled." % (build.what, timeout,
                                                                             builder.describe_run(build.template)),
                             **failure)
        module.exit_json(**result)
    except AzureFailure as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
