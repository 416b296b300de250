# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extension rollouts (issue 19, approach 1) against the emulator: a custom script extension installs the app from
new ``fileUris`` (its command line in ``protectedSettings``), rolled out in batches on Uniform and Flexible with
exactly one model write; a bad version halted and rolled back, its settings and protected settings restored (the
latter from the value supplied for the previous version), never shown; a rollout that could not restore protected
settings refused before any write unless on_failure=halt.

Health is scripted by extension settings (the emulator's health rules, ``match.extension``); which instances are
done is read from the extensions each instance reports; writes are counted from the emulator's traffic log.
"""

from __future__ import annotations

import json

import pytest
from conftest import arm_writes, last_seq
from test_rollout import BELIEFS, MARKETPLACE, RG, UPGRADE, instances, rollout, scale_set_tags, seed_scale_set, \
    upgrades, wait_for, write_kinds
from test_rollout import latest_model  # noqa: F401  pylint: disable=unused-import

from ansible_collections.fleetops.vmss.plugins.module_utils._rollout import decode_marker

UPDATE = "VirtualMachineScaleSets_Update"
PKG = "https://pkgs.example.com/payments/app-%s.tgz"
CMD = {"commandToExecute": "./install.sh --hsm-token s3cr3t-%s"}


def app(version, **fields):
    """The custom script extension that installs app ``version``: its package in settings.fileUris, its command
    line (with a secret) in protected_settings."""
    return dict({"name": "app", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                 "type_handler_version": "2.1", "auto_upgrade_minor_version": True,
                 "settings": {"fileUris": [PKG % version]},
                 "protected_settings": {"commandToExecute": CMD["commandToExecute"] % version}}, **fields)


def protected(version):
    return {"commandToExecute": CMD["commandToExecute"] % version}


def app_versions(azure, name):
    """The package each instance reports its ``app`` extension runs (from its ``resources``)."""
    out = {}
    for instance in instances(azure, name):
        ext = next((e for e in instance["extensions"] or [] if e["name"].lower() == "app"), None)
        out[instance["instance_id"]] = ext["settings"]["fileUris"][0].rsplit("-", 1)[1][:-4] if ext else None
    return out


def model_writes(control, since):
    """The PATCHes of the scale set that change its model (not only its tags)."""
    return [entry for entry in arm_writes(control, since) if entry.get("operation_id") == UPDATE
            and "properties" in (entry["liveRequest"]["body"] or {})]


def secret_free(*texts):
    for text in texts:
        for version in ("1.4.0", "1.5.0", "1.5.1"):
            assert "s3cr3t-%s" % version not in text


def seed(azure, name, capacity=6, mode="Uniform"):
    seed_scale_set(azure, name, dict(MARKETPLACE, version="1.0.0"), capacity=capacity, mode=mode,
                   extensions=[app("1.4.0")])
    assert set(app_versions(azure, name).values()) == {"1.4.0"}


@pytest.mark.parametrize("mode", ["Uniform", "Flexible"])
def test_an_extension_rollout_goes_in_batches_with_one_model_write(emulator, azure, ansible, control, mode):
    seed(azure, "api", mode=mode)
    since = last_seq(control)

    code, result = rollout(ansible, "api", model={"extensions": [app("1.5.0")]}, batch_by="count", batch_size=2,
                           previous_protected_settings={"app": protected("1.4.0")})

    assert code == 0 and result["status"] == "succeeded", result
    assert result["orchestration_mode"] == mode
    assert [b["outcome"] for b in result["batches"]] == ["healthy"] * 3
    assert [len(b["instance_ids"]) for b in result["batches"]] == [2, 2, 2]
    # exactly one model write (the extension with its protected settings, and the rollback point), one upgrade
    # per batch, the rollback point removed at the end
    assert write_kinds(control, since) == [UPDATE, UPGRADE, UPGRADE, UPGRADE, UPDATE]
    [change] = model_writes(control, since)
    [sent] = [e for e in change["liveRequest"]["body"]["properties"]["virtualMachineProfile"]["extensionProfile"][
        "extensions"] if e["name"] == "app"]
    assert sent["properties"]["settings"] == {"fileUris": [PKG % "1.5.0"]}
    assert sent["properties"]["protectedSettings"] == "<redacted>"       # sent (the traffic log hides its value)
    marker = decode_marker(change["liveRequest"]["body"]["tags"])
    assert marker["before"]["extensions"][0]["settings"] == {"fileUris": [PKG % "1.4.0"]}
    assert marker["secrets"] == ["extensions/app/protected_settings"]
    assert upgrades(control, since) == [b["instance_ids"] for b in result["batches"]]
    assert set(app_versions(azure, "api").values()) == {"1.5.0"}
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "api"))
    secret_free(json.dumps(result))

    # the same options again: every instance reports the target, nothing is written
    since = last_seq(control)
    code, again = rollout(ansible, "api", model={"extensions": [app("1.5.0")]}, batch_by="count", batch_size=2,
                          previous_protected_settings={"app": protected("1.4.0")})
    assert code == 0 and again["status"] == "nothing_to_do" and again["changed"] is False, again
    assert arm_writes(control, since) == []


@pytest.mark.parametrize("latest_model", BELIEFS, indirect=True)
def test_a_bad_version_halts_and_rolls_back_settings_and_protected_settings(emulator, azure, ansible, control,
                                                                            tmp_path, latest_model):  # noqa: F811
    """The same writes and end state whatever latestModelApplied means after the revert (Azure's generations, or
    content): which instances moved is read from the extensions they report."""
    seed(azure, "pay", capacity=10)
    control.add_health_rule(match={"scale_set": "pay", "extension": {"name": "app",
                                                                     "settings": {"fileUris": [PKG % "1.5.0"]}}},
                            state="Unhealthy")
    since = last_seq(control)

    code, bad = rollout(ansible, "pay", model={"extensions": [app("1.5.0")]}, batch_by="percent", batch_size=20,
                        previous_protected_settings={"app": protected("1.4.0")}, report_path=str(tmp_path))

    assert code != 0 and bad["status"] == "rolled_back", bad
    [first] = bad["batches"]
    assert first["instance_ids"] == ["0", "1"] and first["outcome"] == "unhealthy"
    assert bad["halt"]["code"] == "MaxUnhealthyUpgradedInstancePercentExceeded"
    assert bad["rollback"]["instance_ids"] == ["0", "1"] and bad["rollback"]["outcome"] == "healthy"
    assert bad["msg"].endswith("; rolled back 2 instances")
    latest = {i["instance_id"] for i in instances(azure, "pay") if i["latest_model_applied"]}
    assert latest == ({"0", "1"} if latest_model == "generation" else {str(i) for i in range(10)})
    # model + point, batch 1, previous model back (settings and protected settings), the two moved back, tag off
    assert write_kinds(control, since) == [UPDATE, UPGRADE, UPDATE, UPGRADE, UPDATE]
    assert upgrades(control, since) == [["0", "1"], ["0", "1"]]
    _change, restore = model_writes(control, since)
    [back] = [e for e in restore["liveRequest"]["body"]["properties"]["virtualMachineProfile"]["extensionProfile"][
        "extensions"] if e["name"] == "app"]
    assert back["properties"]["settings"] == {"fileUris": [PKG % "1.4.0"]}
    assert back["properties"]["protectedSettings"] == "<redacted>"
    assert set(app_versions(azure, "pay").values()) == {"1.4.0"}
    assert all(i["health_state"] == "Healthy" for i in instances(azure, "pay"))
    assert not any(tag.startswith("fleetops.rollout") for tag in scale_set_tags(azure, "pay"))
    # the protected settings are the previous version's on every instance: a probe that fails for exactly those
    # settings turns the whole set Unhealthy (the emulator compares them by digest, it keeps no value)
    control.add_health_rule(match={"scale_set": "pay", "extension": {"name": "app",
                                                                     "protected_settings": protected("1.4.0")}},
                            state="Unhealthy")
    wait_for(lambda: {i["health_state"] for i in instances(azure, "pay")} == {"Unhealthy"},
             "every instance on the previous protected settings")
    # and never shown: not in the result, the reports, the rollback point
    secret_free(json.dumps(bad), *(open(path).read() for path in bad["report"].values()))
    secret_free(json.dumps([entry["liveRequest"]["body"] for entry in arm_writes(control, since)]))


def test_a_rollout_that_could_not_restore_protected_settings_is_refused_unless_on_failure_halt(
        emulator, azure, ansible, control):
    seed(azure, "web", capacity=4)
    control.add_health_rule(match={"scale_set": "web", "extension": {"name": "app",
                                                                     "settings": {"fileUris": [PKG % "1.5.0"]}}},
                            state="Unhealthy")
    since = last_seq(control)

    for check in (True, False):
        code, refused = ansible.module("rollout", dict(resource_group=RG, name="web", wait_sleep=0.1,
                                                       model={"extensions": [app("1.5.0")]}), check=check)
        assert code != 0 and refused["changed"] is False, refused
        assert "a rollback could not restore the previous protected_settings.app" in refused["msg"]
        assert "previous_protected_settings.app" in refused["msg"] and "on_failure=halt" in refused["msg"]
        secret_free(json.dumps(refused))
    assert arm_writes(control, since) == []

    # accepted: the rollout runs, the bad batch halts it, nothing is rolled back, the rollback point stays
    code, halted = rollout(ansible, "web", model={"extensions": [app("1.5.0")]}, batch_by="count", batch_size=2,
                           on_failure="halt")
    assert code != 0 and halted["status"] == "halted" and halted["rollback"] is None, halted
    assert app_versions(azure, "web") == {"0": "1.5.0", "1": "1.5.0", "2": "1.4.0", "3": "1.4.0"}
    marker = decode_marker(scale_set_tags(azure, "web"))
    assert marker["state"] == "rolling" and marker["secrets"] == ["extensions/app/protected_settings"]
    secret_free(json.dumps(halted), json.dumps(scale_set_tags(azure, "web")))

    # a later run that would roll back needs the previous value too (refused, nothing written) ...
    since = last_seq(control)
    code, again = rollout(ansible, "web", model={"extensions": [app("1.5.0")]}, batch_by="count", batch_size=2)
    assert code != 0 and "previous_protected_settings.app" in again["msg"] and arm_writes(control, since) == []
    # ... and with it, checks the upgraded instances, finds them Unhealthy and rolls them back
    code, back = rollout(ansible, "web", model={"extensions": [app("1.5.0")]}, batch_by="count", batch_size=2,
                         previous_protected_settings={"app": protected("1.4.0")})
    assert code != 0 and back["status"] == "rolled_back", back
    assert back["rollback"]["instance_ids"] == ["0", "1"]
    assert set(app_versions(azure, "web").values()) == {"1.4.0"}


# --- playbooks/extension_rollout.yml: the README's story -------------------------------------------------------

def extension_playbook(ansible_env, version, **extra):
    # pylint: disable=import-outside-toplevel
    import subprocess

    from conftest import ROOT

    extra_vars = dict({"rollout_resource_group": RG, "rollout_scale_set": "shop", "rollout_batch_by": "percent",
                       "rollout_batch_size": 50, "rollout_health_timeout": 20, "rollout_wait_sleep": 0.2,
                       "rollout_heartbeat_seconds": 1, "app_package_uri": PKG % version,
                       "app_command": protected(version)["commandToExecute"]}, **extra)
    return subprocess.run(["ansible-playbook", str(ROOT / "playbooks" / "extension_rollout.yml"), "-e",
                           json.dumps(extra_vars)], env=ansible_env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_playbook_rolls_a_version_out_then_halts_and_rolls_back_a_bad_one(
        emulator, azure, ansible_env, control, tmp_path):
    seed(azure, "shop", capacity=4)
    reports = {"rollout_report_dir": str(tmp_path)}

    good = extension_playbook(ansible_env, "1.5.0", app_previous_command=protected("1.4.0")["commandToExecute"],
                              **reports)
    assert good.returncode == 0, good.stdout[-4000:] + good.stderr[-2000:]
    assert set(app_versions(azure, "shop").values()) == {"1.5.0"}

    # 1.5.1 cannot reach its HSM: its probe answers Unhealthy
    control.add_health_rule(match={"scale_set": "shop", "extension": {"name": "app",
                                                                      "settings": {"fileUris": [PKG % "1.5.1"]}}},
                            state="Unhealthy")
    since = last_seq(control)
    bad = extension_playbook(ansible_env, "1.5.1", app_previous_command=protected("1.5.0")["commandToExecute"],
                             **reports)
    assert bad.returncode != 0
    assert "Rollout of scale set %s/shop halted after batch 1 of 2" % RG in bad.stdout, bad.stdout[-4000:]
    assert "rolled back 2 instances" in bad.stdout
    assert write_kinds(control, since)[:2] == [UPDATE, UPGRADE]
    assert set(app_versions(azure, "shop").values()) == {"1.5.0"}
    assert all(i["health_state"] == "Healthy" for i in instances(azure, "shop"))
    # every instance runs 1.5.0's command line again (the emulator compares protected settings by digest)
    control.add_health_rule(match={"scale_set": "shop", "extension": {"name": "app",
                                                                      "protected_settings": protected("1.5.0")}},
                            state="Unhealthy")
    wait_for(lambda: {i["health_state"] for i in instances(azure, "shop")} == {"Unhealthy"}, "1.5.0's command line")
    secret_free(good.stdout, good.stderr, bad.stdout, bad.stderr,
                *(path.read_text() for path in tmp_path.rglob("*") if path.is_file()))

    # without the previous command line, the next version is refused before any write
    since = last_seq(control)
    refused = extension_playbook(ansible_env, "1.6.0", **reports)
    assert refused.returncode != 0 and "previous_protected_settings.app" in refused.stdout, refused.stdout[-3000:]
    assert arm_writes(control, since) == []
    secret_free(refused.stdout, refused.stderr)
