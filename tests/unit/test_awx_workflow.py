# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/awx/fleet_workflow.yml, offline (no AWX server here, and awx.awx does not install from the registries this
project reaches): its survey asks the fleet role's inputs with their argument_specs types and defaults, the wave
nodes set the rest, the graph is wave 1 -> approval -> later waves with every step failing into the rollback, and
every key is one the awx.awx modules document (awx_collection/plugins/modules/{job_template,
workflow_job_template}.py, survey_spec as AWX's /api/v2/job_templates/N/survey_spec/ documents it)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "awx" / "fleet_workflow.yml"
SPECS = ROOT / "roles" / "fleet" / "meta" / "argument_specs.yml"

# Documented option names (awx.awx 24.x), the ones a definition may use.
JOB_TEMPLATE_OPTIONS = {"name", "organization", "project", "playbook", "inventory", "credentials", "execution_environment",
                        "job_type", "forks", "limit", "ask_variables_on_launch", "ask_limit_on_launch", "extra_vars",
                        "survey_enabled", "survey_spec", "description", "timeout", "state"}
WORKFLOW_OPTIONS = {"name", "organization", "description", "extra_vars", "allow_simultaneous", "ask_variables_on_launch",
                    "inventory", "limit", "survey_enabled", "survey_spec", "schema", "workflow_nodes",
                    "destroy_current_schema", "notification_templates_started", "notification_templates_success",
                    "notification_templates_error", "notification_templates_approvals", "state"}
NODE_OPTIONS = {"identifier", "unified_job_template", "extra_data", "inventory", "scm_branch", "job_type", "job_tags",
                "skip_tags", "limit", "diff_mode", "verbosity", "all_parents_must_converge", "related", "state"}
UNIFIED_JOB_TEMPLATE_OPTIONS = {"name", "type", "organization", "inventory", "description", "timeout"}
RELATED_OPTIONS = {"success_nodes", "failure_nodes", "always_nodes", "credentials"}
SURVEY_QUESTION_OPTIONS = {"question_name", "question_description", "variable", "type", "required", "default", "choices",
                           "min", "max", "new_question"}
# argument_specs type -> the survey question types that return it (AWX sends integer/float answers as numbers)
SURVEY_TYPES = {"str": {"text", "textarea"}, "int": {"integer"}, "float": {"float", "integer"},
                "bool": {"multiplechoice"}, "list": {"multiselect"}}
# Inputs the wave nodes set (per wave), and the one no survey can carry: its default is a template, and AWX marks
# survey answers !unsafe, so "{{ playbook_dir }}" would arrive as literal text. fleet_max_waves stays at its default.
PER_NODE = {"fleet_hosts", "fleet_canary_region", "fleet_region_order", "fleet_promote_unselected"}
NOT_SURVEYED = {"fleet_report_dir", "fleet_max_waves"}
WORKFLOW_ONLY = {"fleet_rollback_image_version_id": "playbooks/fleet_rollback.yml"}


def tasks():
    play, = yaml.safe_load(WORKFLOW.read_text())
    return {module: task[module] for task in play["tasks"] for module in task if module.startswith("awx.awx.")}, play


def options():
    return yaml.safe_load(SPECS.read_text())["argument_specs"]["main"]["options"]


def workflow():
    return tasks()[0]["awx.awx.workflow_job_template"]


def nodes():
    return {node["identifier"]: node for node in workflow()["schema"]}


def test_every_key_is_a_documented_awx_option():
    found, _play = tasks()
    assert set(found) == {"awx.awx.job_template", "awx.awx.workflow_job_template"}
    play, = yaml.safe_load(WORKFLOW.read_text())
    for task in play["tasks"]:
        if "awx.awx.job_template" in task:
            assert set(task["awx.awx.job_template"]) <= JOB_TEMPLATE_OPTIONS, task["name"]
    assert set(workflow()) <= WORKFLOW_OPTIONS
    for node in workflow()["schema"]:
        assert set(node) <= NODE_OPTIONS and set(node["unified_job_template"]) <= UNIFIED_JOB_TEMPLATE_OPTIONS, node
        assert set(node["related"]) == RELATED_OPTIONS, node  # the module wants all four, even if empty
    for question in workflow()["survey_spec"]["spec"]:
        assert set(question) <= SURVEY_QUESTION_OPTIONS, question


def test_survey_matches_the_fleet_roles_argument_specs():
    specs = options()
    questions = {question["variable"]: question for question in workflow()["survey_spec"]["spec"]}
    for name, question in questions.items():
        if name in WORKFLOW_ONLY:
            continue
        assert name in specs, "survey variable %s is not an input of the fleet role" % name
        spec = specs[name]
        assert question["type"] in SURVEY_TYPES[spec["type"]], (name, question["type"], spec["type"])
        assert question["required"] == bool(spec.get("required")), name
        if "default" in spec:
            assert question.get("default") == spec["default"], (name, question.get("default"), spec["default"])
        if spec.get("choices"):
            assert question["choices"] == spec["choices"], name
        if spec["type"] == "bool":
            assert sorted(question["choices"]) == ["false", "true"], name
    # every input of the role is asked, set by the wave nodes, or knowingly left at its default
    assert set(specs) == (set(questions) - set(WORKFLOW_ONLY)) | PER_NODE | NOT_SURVEYED
    assert not set(questions) & PER_NODE  # a workflow variable would override the nodes' extra_data


def test_workflow_only_variables_are_read_by_their_playbook():
    questions = {question["variable"] for question in workflow()["survey_spec"]["spec"]}
    for name, playbook in WORKFLOW_ONLY.items():
        assert name in questions and name in (ROOT / playbook).read_text()


def test_one_node_per_wave_an_approval_after_the_canary_and_failures_into_the_rollback():
    graph = nodes()
    waves = [graph[name] for name in sorted(graph) if name.startswith("wave_")]
    approval = graph["approve_canary"]

    def successors(node, kind):
        return [item["identifier"] for item in node["related"][kind]]

    assert approval["unified_job_template"]["type"] == "workflow_approval"
    assert successors(waves[0], "success_nodes") == ["approve_canary"]
    assert successors(approval, "success_nodes") == ["wave_2"]
    for index, wave in enumerate(waves[1:-1], start=2):
        assert successors(wave, "success_nodes") == ["wave_%d" % (index + 1)]
    assert successors(waves[-1], "success_nodes") == []
    for node in waves + [approval]:
        assert successors(node, "failure_nodes") == ["rollback"], node["identifier"]
    assert graph["rollback"]["unified_job_template"]["name"] == "fleetops fleet rollback"
    assert set(graph) == {"approve_canary", "rollback"} | {"wave_%d" % (index + 1) for index in range(len(waves))}


def test_each_wave_rolls_the_regions_up_to_its_own_and_promotes_the_rest_only_last():
    graph = nodes()
    waves = [graph["wave_%d" % (index + 1)] for index in range(sum(name.startswith("wave_") for name in graph))]
    canary = waves[0]["extra_data"]["fleet_canary_region"]
    regions = [canary] + waves[-1]["extra_data"]["fleet_region_order"]
    assert len(set(regions)) == len(regions) == len(waves)
    for index, wave in enumerate(waves):
        data = wave["extra_data"]
        assert set(data) == PER_NODE and wave["unified_job_template"]["name"] == "fleetops fleet rollout"
        assert data["fleet_canary_region"] == canary and data["fleet_region_order"] == regions[1:index + 1]
        groups, selection = data["fleet_hosts"].split(":&")
        assert groups.split(":") == ["region_" + region for region in regions[:index + 1]] and selection
        assert data["fleet_promote_unselected"] is (index == len(waves) - 1)


def test_job_templates_take_the_nodes_variables():
    _found, play = tasks()
    templates = {task["awx.awx.job_template"]["name"]: task["awx.awx.job_template"] for task in play["tasks"]
                 if "awx.awx.job_template" in task}
    assert {name: template["playbook"] for name, template in templates.items()} == {
        "fleetops fleet rollout": "playbooks/fleet_rollout.yml", "fleetops fleet rollback": "playbooks/fleet_rollback.yml"}
    for template in templates.values():
        assert template["ask_variables_on_launch"] is True  # else AWX drops the nodes' extra_data
        assert (ROOT / template["playbook"]).is_file()
    parallel = next(question for question in workflow()["survey_spec"]["spec"] if question["variable"] == "fleet_parallel")
    assert all(template["forks"] >= parallel["max"] for template in templates.values())
