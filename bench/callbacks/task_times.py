# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/fleet --task-log FILE: one line per task start and per host result (epoch seconds, kind, host, task), to
line up the controller's tasks with the emulator's traffic (its ts). Not part of the collection."""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.out = open(os.environ.get("FLEET_BENCH_TASK_LOG"), "a")

    def _w(self, kind, name, host=""):  # pylint: disable=invalid-name
        self.out.write("%.3f\t%s\t%s\t%s\n" % (time.time(), kind, host, name))
        self.out.flush()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._w("start", task.get_name())

    def v2_runner_on_ok(self, result):
        self._w("ok", result._task.get_name(), result._host.get_name())

    def v2_runner_on_skipped(self, result):
        self._w("skip", result._task.get_name(), result._host.get_name())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._w("fail", result._task.get_name(), result._host.get_name())
