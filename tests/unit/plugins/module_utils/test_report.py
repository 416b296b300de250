# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout reports: the SVG timeline (parsed), the Markdown tables, escaping, JSON round trip, the writer."""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils import _report as report

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'probe said <script>alert("x")</script> & | `rm` [link](http://evil)'


def batch(index, start, end, outcome, ids, kind="batch", **extra):
    return dict({"index": index, "kind": kind, "instance_ids": ids, "started_at": start, "ended_at": end,
                 "outcome": outcome, "health": {i: "Healthy" for i in ids}, "unhealthy_upgraded_percent": 0.0,
                 "unhealthy_set_percent": 0.0, "arm_requests": {"total": 5, "writes": 1, "reads": 4}}, **extra)


def halted_result():
    """The seed story's bad image: canary healthy, batch 1 unhealthy, halt, rollback, demotion."""
    return {
        "changed": True, "status": "rolled_back", "scale_set": "payments-prod/payments-api",
        "orchestration_mode": "Uniform", "model_changed": True,
        "image_before": {"id": "/sub/galleries/golden/images/payments/versions/1.6.0"},
        "image_after": {"id": "/sub/galleries/golden/images/payments/versions/1.7.0"},
        "plan": {"batches": [
            {"index": 0, "kind": "canary", "instance_ids": ["0"], "update_domains": [0], "fault_domains": [0],
             "zones": ["1"]},
            {"index": 1, "kind": "batch", "instance_ids": ["1", "2"], "update_domains": [1, 2],
             "fault_domains": [1, 2], "zones": ["2", "3"]},
            {"index": 2, "kind": "batch", "instance_ids": ["3", "4"], "update_domains": [3, 4],
             "fault_domains": [3, 4], "zones": ["1", "2"]}],
            "skipped_instances": [{"instance_id": "5", "reason": "protected from scale-set actions"}],
            "estimated_seconds": 900.0},
        "batches": [
            batch(0, "2026-11-22T04:30:05Z", "2026-11-22T04:33:00Z", "healthy", ["0"], kind="canary"),
            batch(1, "2026-11-22T04:34:00+00:00", "2026-11-22T04:39:30.250000Z", "unhealthy", ["1", "2"],
                  unhealthy_upgraded_percent=66.7, unhealthy_set_percent=33.3,
                  health={"1": "Unhealthy", "2": "Healthy"})],
        "halt": {"at": "2026-11-22T04:39:31Z", "batch_index": 1, "batch_number": 2, "reason": HOSTILE,
                 "code": "MaxUnhealthyUpgradedInstancePercentExceeded"},
        "rollback": {"started_at": "2026-11-22T04:39:32Z", "ended_at": "2026-11-22T04:43:00Z",
                     "instance_ids": ["0", "1", "2"], "outcome": "healthy",
                     "health": {"0": "Healthy", "1": "Healthy", "2": "Healthy"}},
        "demoted": {"image_version_id": "/sub/galleries/golden/images/payments/versions/1.7.0",
                    "exclude_from_latest": True},
        "skipped_instances": [{"instance_id": "5", "reason": "protected from scale-set actions"}],
        "summary": {"instances_total": 6, "instances_upgraded": 1, "instances_skipped": 1, "batches_planned": 3,
                    "batches_completed": 1, "started_at": "2026-11-22T04:30:00Z", "ended_at": "2026-11-22T04:43:01Z",
                    "duration_seconds": 781.0, "arm_requests": {"total": 61, "writes": 5, "reads": 56}},
        "report": None, "arm_requests": 61,
        "msg": "Rollout of scale set payments-prod/payments-api halted after batch 2 of 3: 66.7% unhealthy",
    }


def parse(svg_text):
    return ET.fromstring(svg_text.encode("utf-8"))


def bars(root, css):
    return [rect for rect in root.iter(SVG + "rect") if css in rect.get("class", "").split()]


def test_svg_draws_a_bar_per_batch_coloured_by_outcome_in_time_order():
    root = parse(report.render_svg(halted_result()))
    assert root.tag == SVG + "svg" and root.get("version") == "1.1"
    canary, unhealthy = bars(root, "batch")
    assert canary.get("fill") == report.OUTCOME_COLOURS["healthy"]
    assert unhealthy.get("fill") == report.OUTCOME_COLOURS["unhealthy"]
    [rollback] = bars(root, "rollback")
    assert rollback.get("fill") == report.ROLLBACK_COLOUR
    starts = [float(rect.get("x")) for rect in (canary, unhealthy, rollback)]
    ends = [float(rect.get("x")) + float(rect.get("width")) for rect in (canary, unhealthy, rollback)]
    assert starts == sorted(starts) and ends == sorted(ends)
    assert all(end <= start for end, start in zip(ends, starts[1:]))  # batches do not overlap here
    # x is proportional to time: batch 1 lasts 330.25 s, the canary 175 s
    assert float(unhealthy.get("width")) / float(canary.get("width")) == \
        pytest.approx(330.25 / 175, rel=1e-3)


def test_svg_marks_the_halt_between_the_failed_batch_and_the_rollback():
    root = parse(report.render_svg(halted_result()))
    [marker] = [line for line in root.iter(SVG + "line") if line.get("class") == "halt"]
    _canary, unhealthy = bars(root, "batch")
    [rollback] = bars(root, "rollback")
    x = float(marker.get("x1"))
    assert float(unhealthy.get("x")) + float(unhealthy.get("width")) <= x <= float(rollback.get("x"))
    labels = [text.text for text in root.iter(SVG + "text")]
    assert "halt" in labels
    assert marker.find(SVG + "title").text.endswith(HOSTILE)   # the reason, escaped in the file, intact once parsed


def test_svg_axis_labels_are_seconds_in_increasing_order_and_legend_names_outcomes():
    root = parse(report.render_svg(halted_result()))
    ticks = [text for text in root.iter(SVG + "text") if text.get("class") == "tick-label"]
    seconds = [float(text.text.split()[0]) for text in ticks]
    xs = [float(text.get("x")) for text in ticks]
    assert seconds[0] == 0 and seconds == sorted(seconds) and xs == sorted(xs)
    assert seconds[-1] >= 781   # the axis covers the whole run
    legend = [text.text for text in root.iter(SVG + "text") if text.get("class") == "legend-label"]
    # only the colours the chart uses: two outcomes, the batch planned and never run, the rollback
    assert legend == ["healthy", "unhealthy", "planned, not run", "rollback (outlined in its outcome's colour)"]


def test_svg_escapes_hostile_text_and_has_no_external_references():
    result = halted_result()
    result["scale_set"] = 'rg/<svg onload="x">&'
    text = report.render_svg(result)
    assert "<script" not in text and text.count("<svg") == 1   # only our own element, no injected one
    assert "&lt;script&gt;" in text and "&lt;svg onload" in text
    root = parse(text)  # still well-formed XML
    assert root.find(SVG + "title").text == 'Rollout of scale set rg/<svg onload="x">&'
    assert "href" not in text and "@import" not in text and "url(" not in text


def test_svg_is_deterministic_and_does_not_change_its_input():
    result = halted_result()
    before = copy.deepcopy(result)
    assert report.render_svg(result) == report.render_svg(copy.deepcopy(result))
    assert result == before


def test_timeout_and_failed_batches_have_their_own_colours():
    result = halted_result()
    result["batches"][0]["outcome"] = "timeout"
    result["batches"][1]["outcome"] = "failed"
    timeout, failed = bars(parse(report.render_svg(result)), "batch")
    assert timeout.get("fill") == report.OUTCOME_COLOURS["timeout"]
    assert failed.get("fill") == report.OUTCOME_COLOURS["failed"]


def test_check_mode_plan_renders_without_batches_or_times():
    planned = {"changed": True, "status": "planned", "scale_set": "rg/api", "batches": [], "halt": None,
               "rollback": None, "demoted": None, "summary": None, "report": None,
               "plan": {"batches": [{"index": 0, "kind": "batch", "instance_ids": ["0", "1"], "update_domains": [0],
                                     "fault_domains": [0, 1], "zones": []}], "skipped": [], "estimated_seconds": 300}}
    root = parse(report.render_svg(planned))
    assert bars(root, "batch") == [] and bars(root, "rollback") == []
    assert "No batch ran." in [text.text for text in root.iter(SVG + "text")]
    markdown = report.render_markdown(planned, "t.svg")
    assert "**Status: planned**" in markdown
    assert "| 1 | batch | 0, 1 | 2 | 0 | 0, 1 | — |" in markdown   # numbered from 1
    assert "Estimated duration: 5 min 0 s." in markdown
    assert "No batch ran." in markdown


def test_a_precheck_halt_alone_and_missing_fields_render():
    result = {"status": "halted", "scale_set": "rg/api",
              "halt": {"at": "2026-11-22T04:30:01Z", "batch_index": None, "reason": "40% of the set is unhealthy",
                       "code": "PrecheckFailed"},
              "summary": {"started_at": "2026-11-22T04:30:00Z", "ended_at": None}}
    root = parse(report.render_svg(result))
    assert [line for line in root.iter(SVG + "line") if line.get("class") == "halt"]
    markdown = report.render_markdown(result, "t.svg")
    assert "## Halt" in markdown and "- Code: PrecheckFailed" in markdown and "- Batch: —" in markdown
    for empty in ({}, {"batches": None, "plan": None, "summary": None, "skipped_instances": None},
                  {"batches": [{"index": 0}], "rollback": {}}):
        parse(report.render_svg(empty))
        assert report.render_markdown(empty, "t.svg").startswith("# Rollout of scale set")


def test_markdown_has_title_summary_plan_batches_and_the_picture():
    markdown = report.render_markdown(halted_result(), "rollout-payments-api-20261122T043000Z.svg")
    lines = markdown.splitlines()
    assert lines[0] == "# Rollout of scale set payments-prod/payments-api"
    assert "**Status: rolled_back**" in lines
    assert "![timeline](rollout-payments-api-20261122T043000Z.svg)" in lines
    assert "| Duration | 13 min 1 s |" in lines
    assert "| Batches | 1 of 3 completed |" in lines
    assert "| ARM requests | 61 (5 writes, 56 reads) |" in lines
    header = "| # | Kind | Instances | Started | Ended | Duration | Outcome | Unhealthy upgraded | Unhealthy set " \
             "| ARM requests |"
    assert header in lines
    rows = lines[lines.index(header) + 2:lines.index(header) + 4]
    assert rows == [
        "| 1 | canary | 0 | 2026-11-22T04:30:05Z | 2026-11-22T04:33:00Z | 2 min 55 s | healthy | 0.0 % | 0.0 % "
        "| 5 (1 writes, 4 reads) |",
        "| 2 | batch | 1, 2 | 2026-11-22T04:34:00Z | 2026-11-22T04:39:30Z | 5 min 30 s | unhealthy | 66.7 % "
        "| 33.3 % | 5 (1 writes, 4 reads) |"]
    assert "| 3 | batch | 3, 4 | 2 | 3, 4 | 3, 4 | 1, 2 |" in lines   # the plan table, numbered from 1
    assert "- Batch: 2 of 3" in lines
    for section in ("## Summary", "## Plan", "## Batches", "## Halt", "## Rollback", "## Demotion",
                    "## Skipped instances"):
        assert section in lines
    assert "- Outcome: healthy" in lines
    assert "- Image version: /sub/galleries/golden/images/payments/versions/1.7.0" in lines


def test_markdown_neutralises_html_and_table_breaking_characters():
    result = halted_result()
    result["skipped_instances"] = [{"instance_id": "5", "reason": "a | b\nnew line <b>bold</b>"}]
    markdown = report.render_markdown(result, "my report (1).svg")
    assert "<script>" not in markdown and "<b>" not in markdown
    assert "- Reason: probe said &lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; \\| \\`rm\\` " \
           "\\[link\\](http://evil)" in markdown
    assert "| 5 | a \\| b new line &lt;b&gt;bold&lt;/b&gt; |" in markdown
    assert "![timeline](my%20report%20%281%29.svg)" in markdown
    for line in markdown.splitlines():   # every table row keeps its column count
        if line.startswith("| Instance |"):
            assert line.count(" | ") == 1


def test_blue_green_phases_render_as_phases():
    result = {"status": "succeeded", "scale_set": "rg/api-green",
              "batches": [batch(0, "2026-11-22T04:30:00Z", "2026-11-22T04:35:00Z", "healthy", ["0", "1"], kind="stage"),
                          batch(1, "2026-11-22T04:35:00Z", "2026-11-22T04:35:10Z", "healthy", [], kind="swap"),
                          batch(2, "2026-11-22T04:35:10Z", "2026-11-22T04:45:10Z", "healthy", [], kind="soak")],
              "summary": {"started_at": "2026-11-22T04:30:00Z"}}
    markdown = report.render_markdown(result, "t.svg")
    assert markdown.startswith("# Blue/green deployment of scale set rg/api-green")
    assert "## Phases" in markdown and "| 3 | soak |" in markdown
    labels = [text.text for text in parse(report.render_svg(result)).iter(SVG + "text")
              if text.get("class") == "label"]
    assert labels == ["stage", "swap", "soak"]


def test_json_round_trip():
    result = halted_result()
    assert json.loads(report.render_json(result)) == result
    assert report.render_json(result) == report.render_json(copy.deepcopy(result))


def test_write_reports_creates_the_directory_and_names_files_by_set_and_start(tmp_path):
    target = tmp_path / "reports" / "payments"
    paths = report.write_reports(halted_result(), str(target))
    stem = "rollout-payments-api-20261122T043000Z"
    assert paths == {"json": str(target / (stem + ".json")), "markdown": str(target / (stem + ".md")),
                     "svg": str(target / (stem + ".svg"))}
    assert json.loads((target / (stem + ".json")).read_text()) == halted_result()
    assert "![timeline](%s.svg)" % stem in (target / (stem + ".md")).read_text()
    parse((target / (stem + ".svg")).read_text())
    assert sorted(os.listdir(target)) == sorted(os.path.basename(p) for p in paths.values())  # no temporary left

    later = halted_result()
    later["summary"]["started_at"] = "2026-11-23T06:00:00+01:00"
    again = report.write_reports(later, str(target), kind="bluegreen")
    assert os.path.basename(again["svg"]) == "bluegreen-payments-api-20261123T050000Z.svg"
    assert len(os.listdir(target)) == 6   # a second run does not overwrite the first


def test_report_stem_without_a_start_and_with_an_awkward_name():
    import datetime  # pylint: disable=import-outside-toplevel

    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert report.report_stem({"scale_set": "rg/web api"}, now=now) == "rollout-web-api-20260102T030405Z"
    assert report.report_stem({}, now=now) == "rollout-scale-set-20260102T030405Z"


def test_helpers():
    assert report.compact_time("2026-11-22T04:30:00.5Z") == "20261122T043000Z"
    assert report.compact_time("not a time") is None and report.compact_time(None) is None
    assert report.format_seconds(12.34) == "12.3 s"
    assert report.format_seconds(754) == "12 min 34 s"
    assert report.format_seconds(3725) == "1 h 2 min"
    assert [report.nice_step(span) for span in (1, 7, 781, 3600)] == [0.2, 1, 100, 500]


def texts(root, css=None):
    return [text.text for text in root.iter(SVG + "text") if css is None or css in text.get("class", "").split()]


def test_svg_stands_alone_rows_from_1_unrun_batches_soak_and_the_story_in_words():
    """What an incident channel sees without tooltips: every planned batch (those never run too), numbered from 1
    as the messages number them, the canary's soak, the images, the halt, the instances not Healthy and what
    the rollback's outcome means; the legend has only the colours used (the new outcomes have their own)."""
    result = halted_result()
    result["batches"][0]["soak_seconds"] = 60
    result["batches"][1]["outcome"] = "set_unhealthy"
    result["batches_total"] = 3
    root = parse(report.render_svg(result))

    assert texts(root, "label") == ["canary 1 (1 instance)", "batch 2 (2 instances)", "batch 3 (2 instances)",
                                    "rollback (3 instances)"]
    assert texts(root, "not-run") == ["planned, not run"] and len(bars(root, "planned")) == 1
    [soak] = bars(root, "soak")
    [canary, _second] = bars(root, "batch")
    assert float(soak.get("x")) + float(soak.get("width")) == pytest.approx(
        float(canary.get("x")) + float(canary.get("width")))   # the soak is the end of the canary's bar
    assert "healthy · soak 1 min 0 s" in texts(root, "outcome")
    notes = texts(root, "note")
    assert notes[0] == "image: payments 1.6.0 → payments 1.7.0"
    assert any(line.startswith("halted after batch 2 of 3 (MaxUnhealthyUpgradedInstancePercentExceeded): probe said")
               for line in notes), notes
    assert "not Healthy after batch 2: 1 (Unhealthy)" in notes
    assert any(line.startswith("rollback of 3 instance(s): healthy - every instance moved back is Healthy")
               for line in notes), notes
    assert "demoted: payments 1.7.0 excluded from latest" in notes
    assert texts(root, "legend-label") == ["healthy", "set_unhealthy", "planned, not run",
                                           "rollback (outlined in its outcome's colour)"]
    [set_unhealthy] = [rect for rect in root.iter(SVG + "rect") if rect.get("class") == "legend"][1:2]
    assert set_unhealthy.get("fill") == report.OUTCOME_COLOURS["set_unhealthy"]
    assert len({report.OUTCOME_COLOURS[k] for k in ("tolerated", "set_unhealthy", "interrupted")}) == 3


def test_svg_interrupted_rollback_is_explained_and_long_reasons_wrap():
    result = halted_result()
    result["rollback"]["outcome"] = "interrupted"
    result["halt"]["reason"] = "word " * 80
    notes = texts(parse(report.render_svg(result)), "note")
    assert any("a transient fault cut it short; run the same command again to finish it" in line for line in notes)
    assert all(len(line) <= report.TEXT_WIDTH for line in notes if line.startswith(("halted", "word")))
    assert sum(line.count("word") for line in notes) == 80
    result.update(status="interrupted", rollback=None)
    notes = texts(parse(report.render_svg(result)), "note")
    assert any(line.startswith("interrupted at batch 2 of 3 (MaxUnhealthyUpgradedInstancePercentExceeded)") for line in notes)
