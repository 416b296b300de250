# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gallery_image_version over the real SDK pipeline: nothing written on bad input, what a promotion sends,
the source checked before a version is created, replication reported per region."""

from __future__ import annotations

import copy

from azure_fakes import arm_error
from module_runner import ARM, SUB, body_of, run_module, writes
from ansible_collections.fleetops.vmss.plugins.modules import gallery_image_version, gallery_image_version_info

GALLERY = "/resourceGroups/img/providers/Microsoft\\.Compute/galleries/golden"
DEF_ID = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.Compute/galleries/golden/images/web" % SUB
OPERATION = ARM + "/providers/Microsoft.Compute/locations/westeurope/capsOperations/op-1?api-version=2026-03-03"
LRO = {"Azure-AsyncOperation": OPERATION, "retry-after-ms": "10"}


def version(name="1.0.0", regions=(("westeurope", "Completed", 100),), exclude=True):
    return {"id": "%s/versions/%s" % (DEF_ID, name), "name": name, "location": "westeurope",
            "type": "Microsoft.Compute/galleries/images/versions",
            "properties": {"provisioningState": "Succeeded",
                           "storageProfile": {"source": {"id": DEF_ID + "/versions/0.9.0"}},
                           "publishingProfile": {"replicaCount": 1, "excludeFromLatest": exclude,
                                                 "storageAccountType": "Standard_LRS",
                                                 "targetRegions": [{"name": region, "regionalReplicaCount": 1,
                                                                    "storageAccountType": "Standard_LRS"}
                                                                   for region, _state, _progress in regions]},
                           "replicationStatus": {"aggregatedState": "Completed", "summary": [
                               {"region": region, "state": state, "progress": progress, "details": ""}
                               for region, state, progress in regions]}}}


def definition(os_type="Linux"):
    return {"id": DEF_ID, "name": "web", "location": "westeurope",
            "properties": {"osType": os_type, "osState": "Generalized",
                           "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}}


def run(args, capsys, module=gallery_image_version):
    base = {"resource_group": "img", "gallery_name": "golden", "gallery_image_name": "web"}
    if module is gallery_image_version:
        base["wait_sleep"] = 0.01
    return run_module(module, dict(base, **args), capsys)


def test_bad_input_fails_before_any_request(arm, capsys):
    code, result = run({"name": "1.7", "target_regions": [{"name": "westeurope", "regional_replica_count": 200}]},
                       capsys)
    assert code == 1
    assert "'1.7' is not a gallery image version name" in result["msg"]
    assert "regional_replica_count must be from 1 to 100" in result["msg"]
    assert arm.requests == []


def test_immutable_change_fails_without_writing(arm, capsys):
    arm.route("GET", GALLERY + r"/images/web/versions/1\.0\.0\?", [(200, {}, version())])
    code, result = run({"name": "1.0.0", "storage_account_type": "Premium_LRS"}, capsys)
    assert code == 1
    assert "storage_account_type cannot be changed (Standard_LRS -> Premium_LRS)" in result["msg"]
    assert writes(arm) == []


def test_promote_patches_the_flag_and_keeps_the_regions(arm, capsys, sleeps):
    state = {"doc": version(regions=(("westeurope", "Completed", 100), ("northeurope", "Completed", 100)))}

    def patch(request):
        state["doc"] = copy.deepcopy(state["doc"])
        state["doc"]["properties"]["publishingProfile"]["excludeFromLatest"] = False
        return 200, LRO, state["doc"]

    arm.route("GET", GALLERY + r"/images/web/versions/1\.0\.0\?", [lambda request: (200, {}, state["doc"])])
    arm.route("PATCH", GALLERY + r"/images/web/versions/1\.0\.0\?", [patch])
    arm.route("GET", r"/capsOperations/op-1", [(200, {}, {"status": "Succeeded"})])
    code, result = run({"name": "1.0.0", "exclude_from_latest": False}, capsys)
    assert code == 0 and result["changed"] and result["changes"] == ["exclude_from_latest"]
    [sent] = writes(arm)
    profile = body_of(sent)["properties"]["publishingProfile"]
    assert profile["excludeFromLatest"] is False
    assert [region["name"] for region in profile["targetRegions"]] == ["westeurope", "northeurope"]
    assert result["gallery_image_version"]["publishing_profile"]["exclude_from_latest"] is False


def test_a_source_of_another_os_fails_before_the_version_is_created(arm, capsys):
    arm.route("GET", GALLERY + r"/images/web/versions/1\.1\.0\?", [arm_error("ResourceNotFound", "no", 404)])
    arm.route("GET", GALLERY + r"/images/web\?", [(200, {}, definition("Windows"))])
    arm.route("GET", GALLERY + r"/images/ubuntu/versions/1\.0\.0\?", [(200, {}, version())])
    arm.route("GET", GALLERY + r"/images/ubuntu\?", [(200, {}, definition("Linux"))])
    source = DEF_ID.replace("/web", "/ubuntu") + "/versions/1.0.0"
    code, result = run({"name": "1.1.0", "source": {"id": source}}, capsys)
    assert code == 1
    assert result["msg"] == ("Cannot create gallery image version img/golden/web/1.1.0: its source, the gallery image "
                             "version %s, is a Linux image but the image definition is for Windows." % source)
    assert writes(arm) == []


def test_a_missing_source_fails_before_the_version_is_created(arm, capsys):
    arm.route("GET", GALLERY + r"/images/web/versions/1\.1\.0\?", [arm_error("ResourceNotFound", "no", 404)])
    arm.route("GET", GALLERY + r"/images/web\?", [(200, {}, definition())])
    arm.route("GET", r"/Microsoft\.Compute/images/base\?", [arm_error("ResourceNotFound", "no", 404)])
    source = "/subscriptions/%s/resourceGroups/img/providers/Microsoft.Compute/images/base" % SUB
    code, result = run({"name": "1.1.0", "source": {"id": source}}, capsys)
    assert code == 1
    assert result["msg"] == ("Cannot create gallery image version img/golden/web/1.1.0: its source, the managed image "
                             "%s, does not exist." % source)
    assert writes(arm) == []


def test_info_resolves_latest_per_region(arm, capsys):
    listed = {"value": [version("1.6.0", exclude=False), version("1.7.0", exclude=True),
                        version("1.8.0", regions=(("westeurope", "Replicating", 40),), exclude=False)]}
    arm.route("GET", GALLERY + r"/images/web/versions\?", [(200, {}, listed)])
    for item in listed["value"]:
        arm.route("GET", GALLERY + r"/images/web/versions/%s\?" % item["name"].replace(".", r"\."), [(200, {}, item)])
    code, result = run({"latest_for_region": "West Europe"}, capsys, module=gallery_image_version_info)
    assert code == 0 and result["changed"] is False
    assert [v["name"] for v in result["gallery_image_versions"]] == ["1.6.0", "1.7.0", "1.8.0"]
    assert result["latest_for_region"]["name"] == "1.6.0"
    assert result["gallery_image_versions"][2]["replication_status"]["summary"][0]["progress"] == 40
    assert all("expand=ReplicationStatus" in request.url for request in arm.requests[1:])


def test_a_poll_that_outlasts_the_retries_fails_as_transient_with_the_replication(arm, capsys, sleeps):
    # the promotion's operation answers 503 on every poll: a fault, not Azure's answer (the roles never demote for it)
    arm.route("GET", GALLERY + r"/images/web/versions/1\.0\.0\?", [(200, {}, version())])
    arm.route("PATCH", GALLERY + r"/images/web/versions/1\.0\.0\?", [(200, LRO, version())])
    arm.route("GET", r"/capsOperations/op-1", [arm_error("ServiceUnavailable", "later", 503)])
    code, result = run({"name": "1.0.0", "exclude_from_latest": False}, capsys)
    assert code == 1 and result["transient"] is True and result["timed_out"] is False, result
    assert result["error"]["status"] == 503 and "Replication: westeurope Completed" in result["msg"], result["msg"]
    assert result["gallery_image_version"]["name"] == "1.0.0"


def test_a_failed_operation_is_an_answer_not_transient(arm, capsys, sleeps):
    arm.route("GET", GALLERY + r"/images/web/versions/1\.0\.0\?", [(200, {}, version())])
    arm.route("PATCH", GALLERY + r"/images/web/versions/1\.0\.0\?", [(200, LRO, version())])
    arm.route("GET", r"/capsOperations/op-1", [(200, {}, {"status": "Failed", "error": {
        "code": "ReplicationJobsNotCompleted", "message": "Replication failed"}})])
    code, result = run({"name": "1.0.0", "exclude_from_latest": False}, capsys)
    assert code == 1 and "transient" not in result and result["error"]["code"] == "ReplicationJobsNotCompleted", result
