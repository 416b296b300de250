#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_wait
short_description: Wait on the controller for a background task, with a heartbeat line, and return its result
version_added: 0.1.0
description:
  - Waits for a task started with C(async) and C(poll) 0 (for example M(fleetops.vmss.rollout) with O(fleetops.vmss.rollout#module:max_batches))
    and returns that task's result (as M(ansible.builtin.async_status) returns it) as soon as the job ends.
  - Polls the job every O(poll_seconds), so a job that ends is seen within a few seconds, whatever O(heartbeat_seconds) is.
  - On a C(local) connection each poll reads the job's status file on the controller, starting no process, every
    0.25 seconds at most (O(poll_seconds) if lower); M(ansible.builtin.async_status) runs once, for the result, when
    the file says the job ended. Elsewhere (or when the file cannot be read there) each poll runs
    M(ansible.builtin.async_status) on the host.
  - While the job runs, prints O(msg) and the time waited at most once every O(heartbeat_seconds), as a plain line of
    output (not the C(FAILED - RETRYING) of an C(until) loop).
  - Looks for the job in the async directory the task's C(ansible_async_dir) names, as M(ansible.builtin.async_status) does;
    set it to the directory the job was started with.
  - With O(gate), waits for one step of a M(fleetops.vmss.rollout) call that runs its batches in steps and waits for a
    word between two (O(fleetops.vmss.rollout#module:batch_gate)), and says that word.
  - This is an action plugin; it runs on the controller (the job's host is the task's host).
author:
  - FleetOps maintainers (@fleetops)
options:
  jid:
    description: The job id, C(ansible_job_id) of the registered result of the task started with C(async) and C(poll) 0.
    type: str
    required: true
  msg:
    description: What the heartbeat line says (the time waited follows it).
    type: str
    default: Still running
  heartbeat_seconds:
    description:
      - Seconds between two heartbeat lines; the first comes after that long. V(0) prints none.
      - Lower it where time runs faster than Azure's (an emulator), so that a minute of Azure stays one line.
    type: float
    default: 60
  poll_seconds:
    description: Seconds between two reads of the job's status (on a C(local) connection 0.25 at most); bounds the delay before the result is returned.
    type: float
    default: 2
  timeout:
    description: Seconds to wait at most; then the task fails (the job keeps running). V(0) waits as long as the job runs.
    type: float
    default: 0
  gate:
    description:
      - The O(fleetops.vmss.rollout#module:batch_gate) directory of the job (a M(fleetops.vmss.rollout) call). Then the
        task returns as soon as the job published step O(step) (that step's result, as if a call with
        O(fleetops.vmss.rollout#module:max_batches) had ended, with RV(gate_step)) or ended (its result, as without
        O(gate)), after saying O(say) to step O(step) - 1.
      - Needs a C(local) connection (the files are on the controller).
    type: path
  step:
    description: With O(gate), the step of the job to wait for (1 is its first).
    type: int
    default: 1
  say:
    description:
      - With O(gate), the word said first to step O(step) - 1 (so O(step) 2 or more), that the job waits for after it.
      - V(go) runs the next step. V(stop) ends the job as a call ending at O(fleetops.vmss.rollout#module:max_batches)
        does; the task then waits for the job's end and returns its result.
    type: str
    choices: [go, stop]
  wait:
    description: With O(gate), V(false) only says O(say) and returns at once.
    type: bool
    default: true
extends_documentation_fragment:
  - fleetops.vmss.action_attributes
attributes:
  check_mode:
    details: It only reads the job's status file; a job started in check mode is waited for as usual.
notes:
  - The returned result is the job's, so O(jid)'s module decides RV(ignore:changed) and RV(ignore:failed).
seealso:
  - module: ansible.builtin.async_status
  - module: fleetops.vmss.rollout
"""

EXAMPLES = r"""
- name: Run one batch of the rollout in the background
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: "{{ image_version_id }}"
    max_batches: 1
  async: 3600
  poll: 0
  register: rollout_step

- name: Wait for it, saying once a minute that it still runs
  fleetops.vmss.rollout_wait:
    jid: "{{ rollout_step.ansible_job_id }}"
    msg: Running the next batch on payments-prod/payments-api
    heartbeat_seconds: 60
  register: rollout_batch

- name: Run the whole rollout in one call, one batch per step, the next step when this play says so
  fleetops.vmss.rollout:
    resource_group: payments-prod
    name: payments-api
    image: "{{ image_version_id }}"
    max_batches: 1
    batch_gate: "{{ lookup('ansible.builtin.env', 'HOME') }}/.ansible_async/gate-payments-api"
  async: 3600
  poll: 0
  register: rollout_call

- name: Wait for its first batch (or its end)
  fleetops.vmss.rollout_wait:
    jid: "{{ rollout_call.ansible_job_id }}"
    gate: "{{ lookup('ansible.builtin.env', 'HOME') }}/.ansible_async/gate-payments-api"
    step: 1
  register: rollout_batch

- name: Stop it there (go would run the next batch)
  fleetops.vmss.rollout_wait:
    jid: "{{ rollout_call.ansible_job_id }}"
    gate: "{{ lookup('ansible.builtin.env', 'HOME') }}/.ansible_async/gate-payments-api"
    step: 2
    say: stop
  when: rollout_batch.gate_step is defined
"""

RETURN = r"""
finished:
  description: Whether the job ended (true unless O(timeout) passed, the job published the step waited for, or O(wait) is false).
  returned: always
  type: bool
  sample: true
gate_step:
  description: The step of the job returned (O(gate)); the job waits for the word after it.
  returned: when the job published the step waited for
  type: int
  sample: 2
ansible_job_id:
  description: The job id waited for.
  returned: always
  type: str
  sample: j361279683585.1234
"""
