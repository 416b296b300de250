# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rollback killed midway is finished by re-running the same role command, demotion on (issue 16, item 2).

The interrupted state is made from a real run's traffic: the role rolls 1.1.0 out, the canary turns Unhealthy,
1.1.0 is demoted and the rollback restores the model with the rollback point in state rolling_back (a PATCH),
then moves the canary back. We replay the forward PATCH and the canary's upgrade, then the rollback's PATCH: the
scale set is left as a run killed right after that PATCH leaves it - model on 1.0.0, the canary still on the
demoted 1.1.0 and Unhealthy, the tag in state rolling_back. The same command must finish the rollback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from azure.core.rest import HttpRequest

from ansible_collections.fleetops.vmss.plugins.module_utils._rollout import decode_marker
from conftest import last_seq
from test_rollout_role import GALLERY_RG, NAME, RG, custom_stats, images, rollout, seed, version_id


def scale_set_patches(control, since):
    """The bodies and URLs of the PATCHes of the scale set since ``since``, oldest first."""
    return [entry["liveRequest"] for entry in control.traffic(since)
            if entry["liveRequest"]["method"] == "PATCH"
            and entry["liveRequest"]["url"].lower().split("?")[0].endswith("/virtualmachinescalesets/" + NAME)]


def replay(azure, request):
    """Send a recorded PATCH of the scale set again through the compute client's pipeline; wait for it to end."""
    response = azure.client("compute").send_request(HttpRequest(request["method"], request["url"],
                                                                json=request.get("body")))
    response.raise_for_status()
    compute = azure.client("compute")
    wait_until(lambda: compute.virtual_machine_scale_sets.get(RG, NAME).provisioning_state == "Succeeded",
               "the replayed " + request["method"])


def marker_state(tags):
    return (decode_marker(tags) or {}).get("state")


def wait_until(predicate, what, tries=200):
    for _attempt in range(tries):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_same_command_finishes_a_rollback_killed_midway_with_demotion_on(
        emulator, azure, control, ansible_env, tmp_path):
    seed(azure, emulator["FLEETOPS_EMULATOR_LOCATION"])
    control.call("POST", "health-rules", {"match": {"scale_set": NAME, "image_version": "1.1.0"}, "state": "Unhealthy"})
    since = last_seq(control)
    first = rollout(ansible_env, azure, tmp_path / "first", rollout_demote_on_failure=True)
    assert first.stdout, first.stderr[-3000:]
    outcome = custom_stats(first.stdout)
    assert outcome["status"] == "rolled_back" and outcome["demoted"], outcome
    canary = outcome["rollback"]["instance_ids"]
    forward, back = scale_set_patches(control, since)[:2]
    assert marker_state(forward["body"]["tags"]) == "rolling"
    assert marker_state(back["body"]["tags"]) == "rolling_back"

    # the interruption: forward model and the canary's upgrade again, then the rollback's PATCH, and no more
    compute = azure.client("compute")
    replay(azure, forward)
    compute.virtual_machine_scale_sets.begin_update_instances(RG, NAME, {"instanceIds": canary}).result()
    replay(azure, back)
    stuck = compute.virtual_machine_scale_sets.get(RG, NAME)
    assert marker_state(stuck.tags) == "rolling_back"
    assert [(i, v) for i, v, _latest in images(azure) if i in canary] == [(i, "1.1.0") for i in canary]
    version = compute.gallery_image_versions.get(GALLERY_RG, "golden", "payments-api", "1.1.0")
    assert version.properties.publishing_profile.exclude_from_latest is True

    # the same command, demotion on, no rollout_allow_excluded
    since = last_seq(control)
    again = rollout(ansible_env, azure, tmp_path / "again", rollout_demote_on_failure=True)

    out = again.stdout
    assert "is excluded from latest" not in out, out[-6000:]
    assert ("Scale set %s/%s carries the rollback point of an interrupted rollback (state rolling_back" % (RG, NAME)
            in out), out[-6000:]
    assert "this run finishes that rollback, back to the model before the rollout (image %s), and does not roll out " \
           "1.1.0" % version_id(azure, "1.0.0") in " ".join(out.split()), out[-6000:]
    finished = custom_stats(out)
    assert finished["status"] == "rolled_back", finished
    assert finished["halt"]["code"] == "RollbackResumed", finished
    assert "was interrupted; this run finished it" in finished["msg"], finished["msg"]
    assert finished["rollback"]["instance_ids"] == canary and finished["rollback"]["outcome"] == "healthy"
    # a resumed run with no batches of its own still writes its report, the rollback explained in the picture
    report = finished["report"]
    assert report and all(Path(report[kind]).parent == tmp_path / "again" for kind in ("json", "markdown", "svg"))
    assert "rollback of %d instance(s): healthy - every instance moved back is Healthy" % len(canary) \
        in Path(report["svg"]).read_text()
    # every instance on 1.0.0, the rollback point gone, 1.1.0 still demoted and never rolled out again
    assert [(i, v) for i, v, _latest in images(azure)] == [(str(i), "1.0.0") for i in range(5)]
    assert marker_state(compute.virtual_machine_scale_sets.get(RG, NAME).tags) is None
    assert compute.gallery_image_versions.get(
        GALLERY_RG, "golden", "payments-api", "1.1.0").properties.publishing_profile.exclude_from_latest is True
    rolled_out = [entry for entry in scale_set_patches(control, since)
                  if "1.1.0" in json.dumps(entry["body"].get("properties") or {})]
    assert rolled_out == []
