"""Recorded real-Azure traffic replayed against the emulator (emulator/tests/conformance).

Fails for any mismatch not allow-listed in conformance/KNOWN.json, and for any allow-listed mismatch that
no longer occurs, so the list stays honest. `python -m emulator.tests.conformance --write-known` rewrites
the list from the current run (reasons kept; new entries marked pending).
"""
import pytest

from emulator.tests.conformance import suite


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    emu = suite.start_emulator(tmp_path_factory.mktemp("conformance"))
    try:
        yield suite.run(emu)
    finally:
        suite.stop_emulator(emu)


def test_corpus_is_well_formed():
    corpus = suite.load_corpus()
    interactions = [i for f in corpus for i in f["interactions"] if suite.counted(i)]
    assert interactions, "empty corpus"
    for f in corpus:
        ids = [i["id"] for i in f["interactions"]]
        assert len(ids) == len(set(ids)), f"duplicate interaction ids in {f['source']}"
        for i in f["interactions"]:
            if i["op"] == "poll":
                assert i["lro"] in ids[:ids.index(i["id"])], f"{f['source']}#{i['id']} polls an unknown LRO"


def test_corpus_covers_what_the_collection_calls_or_says_what_is_missing():
    have = suite.covered()
    missing = [op for op in suite.COLLECTION_OPERATIONS if op not in have and op not in suite.UNCOVERED]
    stale = [op for op in suite.UNCOVERED if op in have]
    assert not missing, f"operations the collection calls with no recorded interaction: {missing}"
    assert not stale, f"listed as uncovered but now in the corpus (remove from UNCOVERED): {stale}"


def test_replay_matches_azure_or_is_known(replay):
    rows, throttled = replay
    print("\n" + suite.table(rows))
    print(suite.summary(rows))
    unlisted, stale = suite.check_known(rows, suite.load_known())
    problems = [f"not allow-listed: {' | '.join(key)}" for key in unlisted]
    problems += [f"allow-listed but no longer occurs (remove it from KNOWN.json): {' | '.join(key)}" for key in stale]
    assert not problems, "\n".join(problems)


def test_comparer_flags_each_kind_of_difference():
    recorded = {"status": 202, "body": {"properties": {"provisioningState": "Updating", "a": 1}},
                "headers": {"Azure-AsyncOperation": "x", "Location": "y",
                            "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/VMScaleSetActions3Min;239"}}
    same = suite.compare(recorded, 202, {"properties": {"provisioningState": "Updating", "a": 2}},
                         {"azure-asyncoperation": "u", "location": "v",
                          "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/VMScaleSetActions3Min;10"})
    assert same == []
    differs = dict(suite.compare(recorded, 200, {"properties": {"provisioningState": "Succeeded", "b": 1}},
                                 {"azure-asyncoperation": "u", "retry-after": "1",
                                  "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/OtherResource;1"}))
    assert set(differs) == {"status", "keys_missing", "keys_extra", "enum", "lro_headers", "throttle"}
    assert differs["keys_missing"] == "properties.a" and differs["keys_extra"] == "properties.b"
    assert differs["lro_headers"] == "Azure [azure-asyncoperation, location], emulator [azure-asyncoperation, retry-after]"


def test_known_list_check_reports_unlisted_and_stale():
    rows = [{"id": "f#01", "op": "x", "url": "", "counted": True, "mismatches": [("status", "Azure 200, emulator 204")]}]
    known = {"lro": [{"id": "f#02", "kind": "status", "detail": "gone", "category": "lro", "reason": "r"}]}
    unlisted, stale = suite.check_known(rows, known)
    assert unlisted == [("f#01", "status", "Azure 200, emulator 204")]
    assert stale == [("f#02", "status", "gone")]


def test_own_items_cuts_a_subscription_list_to_the_files_resource_groups():
    corpus_file = {"interactions": [{"url": "/subscriptions/s/resourceGroups/Mine/providers/X/y/a?api-version=1"}]}
    groups = suite.resource_groups(corpus_file)
    assert groups == {"Mine"}
    body = {"value": [{"id": "/subscriptions/s/resourceGroups/MINE/providers/X/y/a"},   # Azure upper-cases some ids
                      {"id": "/subscriptions/s/resourceGroups/other/providers/X/y/b"}], "nextLink": "n"}
    assert suite.own_items(body, groups) == {"value": [body["value"][0]], "nextLink": "n"}
    assert suite.own_items({"error": {"code": "x"}}, groups) == {"error": {"code": "x"}}


def test_rolling_upgrade_thresholds_are_not_filed_under_health():
    row = {"id": "f#01", "url": "/x", "op": "VirtualMachineScaleSets_Get"}
    assert suite.category(row, "keys_missing", "properties.upgradePolicy.rollingUpgradePolicy.maxUnhealthyInstancePercent") == "shapes"
    assert suite.category(row, "keys_missing", "properties.virtualMachineProfile.networkProfile.healthProbe") == "health"
