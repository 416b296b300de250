# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports of a rollout (or blue/green) result: JSON, an SVG timeline and Markdown, plus one writer.

The renderers are pure: the same result always gives the same text (no clock, no random ids), so
reports can be compared and archived. They accept partial results - a check-mode plan with no
batches, a halt before the first batch, blue/green phases instead of batches - and treat every
missing or None field as "not applicable". Standard library only: this runs on the controller.

    paths = write_reports(result, "/var/log/rollouts")   # {"json": ..., "markdown": ..., "svg": ...}
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import tempfile
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote
from xml.sax.saxutils import escape

# Bar fills by outcome; anything else (a phase's own word, a batch cut short) is drawn grey.
OUTCOME_COLOURS = {
    "healthy": "#2e7d32",
    "tolerated": "#9e9d24",       # not all Healthy at health_timeout, within both thresholds
    "unhealthy": "#d32f2f",
    "set_unhealthy": "#ad1457",   # the batch Healthy, the rest of the set over its threshold
    "timeout": "#f57c00",
    "failed": "#7f0000",
    "interrupted": "#6a1b9a",     # a transient fault, no verdict
}
ROLLBACK_COLOUR = "#1e88e5"
OTHER_COLOUR = "#9e9e9e"
HALT_COLOUR = "#b71c1c"
PLANNED_COLOUR = "#bdbdbd"        # outline of a batch planned and never run
SOAK_COLOUR = "#ffffff"           # the canary's soak, hatched over its bar
TEXT_WIDTH = 150                  # characters per line of the notes under the chart
# What a rollback's outcome means, in the words under the chart (the bar's outline alone says nothing).
ROLLBACK_MEANINGS = {
    "healthy": "every instance moved back is Healthy; the rollback point is removed",
    "unhealthy": "instances moved back are not Healthy; the rollback point is kept",
    "timeout": "instances moved back were not Healthy within health_timeout; the rollback point is kept",
    "failed": "the rollback could not be done; the rollback point is kept",
    "interrupted": "a transient fault cut it short; run the same command again to finish it",
}
BLUE_GREEN_KINDS = frozenset(("stage", "swap", "soak", "finalize"))

# SVG layout (pixels)
WIDTH, LABEL_WIDTH, RIGHT_MARGIN = 960, 190, 40
PLOT_WIDTH = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
ROWS_TOP, ROW_HEIGHT, BAR_HEIGHT = 76, 26, 16
MIN_BAR_WIDTH = 2.0


# --- values ---------------------------------------------------------------------------------------

def _get(mapping: Any, *path: str) -> Any:
    """mapping[path[0]][path[1]]..., None as soon as a level is missing or not a dict."""
    for key in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def parse_time(value: Any) -> Optional[datetime.datetime]:
    """An ISO-8601 string (``Z`` or an offset; naive means UTC) as an aware datetime; None when absent or unreadable."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def compact_time(value: Any) -> Optional[str]:
    """``2026-11-22T04:30:00.5+01:00`` -> ``20261122T033000Z`` (UTC); None when not a time."""
    parsed = parse_time(value)
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") if parsed else None


def _iso(value: Any) -> str:
    """A time for a table: UTC to the second (``2026-11-22T04:30:12Z``), or an em dash."""
    parsed = parse_time(value)
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "—"


def _seconds_between(start: Any, end: Any) -> Optional[float]:
    begin, finish = parse_time(start), parse_time(end)
    return (finish - begin).total_seconds() if begin and finish else None


def format_seconds(seconds: Optional[float]) -> str:
    """12.34 -> ``12.3 s``; 754 -> ``12 min 34 s``; 3725 -> ``1 h 2 min``; None -> an em dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return "%.1f s" % seconds
    whole = int(round(seconds))
    if whole < 3600:
        return "%d min %d s" % (whole // 60, whole % 60)
    return "%d h %d min" % (whole // 3600, whole % 3600 // 60)


def _percent(value: Any) -> str:
    return "%.1f %%" % value if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _number(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros (deterministic, compact)."""
    text = ("%.2f" % value).rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def scale_set_name(result: Dict[str, Any]) -> str:
    """``rg/name`` -> ``name``; ``scale-set`` when the result names none."""
    return str(result.get("scale_set") or "").rstrip("/").rsplit("/", maxsplit=1)[-1] or "scale-set"


def is_blue_green(result: Dict[str, Any]) -> bool:
    return any(isinstance(b, dict) and b.get("kind") in BLUE_GREEN_KINDS for b in result.get("batches") or [])


def _title(result: Dict[str, Any], kind: Optional[str]) -> str:
    if kind is None:
        kind = "blue_green" if is_blue_green(result) else "rollout"
    label = {"rollout": "Rollout", "blue_green": "Blue/green deployment", "bluegreen": "Blue/green deployment"}.get(
        kind, str(kind).replace("_", " ").capitalize())
    return "%s of scale set %s" % (label, result.get("scale_set") or "(unknown)")


def _batches(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [b for b in result.get("batches") or [] if isinstance(b, dict)]


def batch_number(batch: Dict[str, Any], position: int) -> Any:
    """The batch's number as the user sees it everywhere: the module's rollout-wide ``number`` (from 1), else
    its position from 1."""
    return batch.get("number") or position + 1


def _batch_label(batch: Dict[str, Any], position: int) -> str:
    kind = batch.get("kind") or "batch"
    count = len(batch.get("instance_ids") or [])
    if kind in BLUE_GREEN_KINDS or kind == "rollback":
        return str(kind)
    return "%s %s (%d instance%s)" % (kind, batch_number(batch, position), count, "" if count == 1 else "s")


def _unrun(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The planned batches that never ran (the rollout stopped before them)."""
    ran = {batch_number(b, n) for n, b in enumerate(_batches(result))}
    plan = [b for b in _get(result, "plan", "batches") or [] if isinstance(b, dict)]
    return [b for n, b in enumerate(plan) if batch_number(b, n) not in ran]


# --- JSON -----------------------------------------------------------------------------------------

def render_json(result: Dict[str, Any]) -> str:
    """The result as indented JSON with sorted keys (values JSON cannot hold, such as datetimes, as text)."""
    return json.dumps(result, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"


# --- SVG ------------------------------------------------------------------------------------------

def _attr(value: Any) -> str:
    """Text for a double-quoted XML attribute."""
    return escape(str(value), {'"': "&quot;"})


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving at most about ``ticks`` ticks over ``span``."""
    raw = max(span, 1e-9) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude  # not reached


def _timeline(result: Dict[str, Any]) -> Tuple[Optional[datetime.datetime], float]:
    """(time zero, span in seconds) of everything the SVG draws; (None, 0) when nothing has a time."""
    batches = _batches(result)
    rollback = result.get("rollback") if isinstance(result.get("rollback"), dict) else {}
    halt = result.get("halt") if isinstance(result.get("halt"), dict) else {}
    times = [parse_time(value) for value in
             [b.get("started_at") for b in batches] + [b.get("ended_at") for b in batches] +
             [rollback.get("started_at"), rollback.get("ended_at"), halt.get("at"),
              _get(result, "summary", "started_at"), _get(result, "summary", "ended_at")]]
    times = [t for t in times if t is not None]
    if not times:
        return None, 0.0
    zero = parse_time(_get(result, "summary", "started_at")) or min(times)
    zero = min([zero] + times)
    return zero, max((max(times) - zero).total_seconds(), 0.0)


class _Svg:
    """Collects SVG elements; every text and attribute goes through escape()."""

    def __init__(self):
        self.parts: List[str] = []

    def add(self, element: str, text: Optional[str] = None, title: Optional[str] = None, **attrs: Any) -> None:
        names = " ".join('%s="%s"' % (name.rstrip("_").replace("_", "-"),
                                      _attr(_number(value) if isinstance(value, float) else value))
                         for name, value in attrs.items() if value is not None)
        inner = ""
        if title is not None:
            inner += "<title>%s</title>" % escape(title)
        if text is not None:
            inner += escape(text)
        tag = "%s %s" % (element, names) if names else element
        self.parts.append("<%s>%s</%s>" % (tag, inner, element) if inner or element == "text" else "<%s/>" % tag)


class _Scale:
    """Seconds since time zero -> x, over an axis rounded up to a whole number of ticks."""

    def __init__(self, zero: Optional[datetime.datetime], span: float):
        self.zero = zero
        self.step = nice_step(span or 1.0)
        self.end = self.step * math.ceil((span or 1.0) / self.step - 1e-9)

    def x_at(self, seconds: float) -> float:
        return LABEL_WIDTH + seconds / self.end * PLOT_WIDTH

    def x_of(self, value: Any) -> Optional[float]:
        moment = parse_time(value)
        if moment is None or self.zero is None:
            return None
        return self.x_at((moment - self.zero).total_seconds())


def _rows(result: Dict[str, Any]) -> List[Tuple[str, str, Dict[str, Any], str]]:
    """(css class, label, item with started_at/ended_at/outcome, fill) for each bar, top to bottom: the
    batches run, those planned and never run, the rollback."""
    rows = []
    for position, batch in enumerate(_batches(result)):
        outcome = str(batch.get("outcome") or "")
        fill = ROLLBACK_COLOUR if batch.get("kind") == "rollback" else OUTCOME_COLOURS.get(outcome, OTHER_COLOUR)
        rows.append(("batch", _batch_label(batch, position), batch, fill))
    ran = len(rows)
    for position, batch in enumerate(_unrun(result)):
        rows.append(("planned", _batch_label(batch, ran + position), {}, PLANNED_COLOUR))
    rollback = result.get("rollback")
    if isinstance(rollback, dict):
        count = len(rollback.get("instance_ids") or [])
        rows.append(("rollback", "rollback (%d instance%s)" % (count, "" if count == 1 else "s"), rollback,
                     ROLLBACK_COLOUR))
    return rows


def _draw_axis(svg: _Svg, scale: _Scale, axis_y: int) -> None:
    """Grid lines and "N s" labels every tick, under the bars (drawn first)."""
    for tick in range(int(round(scale.end / scale.step)) + 1):
        x = scale.x_at(tick * scale.step)
        svg.add("line", class_="tick", x1=x, y1=ROWS_TOP, x2=x, y2=axis_y + 4,
                stroke="#e0e0e0" if tick else "#212121", stroke_width=1)
        svg.add("text", "%s s" % _number(tick * scale.step), class_="tick-label", x=x, y=axis_y + 18,
                font_size=11, text_anchor="middle")
    svg.add("line", class_="axis", x1=LABEL_WIDTH, y1=axis_y, x2=LABEL_WIDTH + PLOT_WIDTH, y2=axis_y,
            stroke="#212121", stroke_width=1)
    svg.add("text", "seconds since the start", x=LABEL_WIDTH + PLOT_WIDTH / 2, y=axis_y + 36, font_size=11,
            text_anchor="middle", fill="#616161")


def _draw_bars(svg: _Svg, scale: _Scale, rows: List[Tuple[str, str, Dict[str, Any], str]]) -> None:
    if not rows:
        svg.add("text", "No batch ran.", class_="empty", x=LABEL_WIDTH + 4, y=ROWS_TOP + 17, font_size=12,
                fill="#616161")
    for number, (css, label, item, fill) in enumerate(rows):
        top = ROWS_TOP + number * ROW_HEIGHT
        svg.add("text", label, class_="label", x=LABEL_WIDTH - 8, y=top + 17, font_size=12, text_anchor="end")
        start, end = scale.x_of(item.get("started_at")), scale.x_of(item.get("ended_at"))
        if css == "planned":   # a dashed outline over the whole axis: how far the rollout did not get
            svg.add("rect", class_="planned", x=LABEL_WIDTH, y=top + (ROW_HEIGHT - BAR_HEIGHT) // 2, width=PLOT_WIDTH,
                    height=BAR_HEIGHT, fill="none", stroke=PLANNED_COLOUR, stroke_width=1, stroke_dasharray="4,3")
            svg.add("text", "planned, not run", class_="not-run", x=LABEL_WIDTH + 6, y=top + 17, font_size=11,
                    fill="#616161")
            continue
        if start is None:
            svg.add("text", "not started", class_="missing", x=LABEL_WIDTH + 4, y=top + 17, font_size=11,
                    fill="#616161")
            continue
        outcome = str(item.get("outcome") or "unknown")
        end = start if end is None or end < start else end
        tooltip = "%s: %s, %s to %s (%s)" % (
            label, outcome, _iso(item.get("started_at")), _iso(item.get("ended_at")),
            format_seconds(_seconds_between(item.get("started_at"), item.get("ended_at"))))
        rollback = css == "rollback"   # blue, outlined in the colour of its outcome
        svg.add("rect", title=tooltip, class_="%s %s" % (css, outcome), x=start,
                y=top + (ROW_HEIGHT - BAR_HEIGHT) // 2, width=max(end - start, MIN_BAR_WIDTH), height=BAR_HEIGHT,
                fill=fill, stroke=OUTCOME_COLOURS.get(outcome) if rollback else None,
                stroke_width=2 if rollback else None)
        soak = float(item.get("soak_seconds") or 0) if item.get("kind") == "canary" else 0.0
        if soak and end > start:   # the soak is the end of the canary's bar
            soak_start = max(start, end - soak / scale.end * PLOT_WIDTH)
            svg.add("rect", title="canary soak: %s" % format_seconds(soak), class_="soak", x=soak_start,
                    y=top + (ROW_HEIGHT - BAR_HEIGHT) // 2 + 4, width=max(end - soak_start, MIN_BAR_WIDTH),
                    height=BAR_HEIGHT - 8, fill=SOAK_COLOUR, fill_opacity=0.55)
        word = "%s%s" % (outcome, " · soak %s" % format_seconds(soak) if soak else "")
        inside = end + 6 + 7 * len(word) > WIDTH   # no room right of the bar: inside its end, in white
        svg.add("text", word, class_="outcome", x=end - 6 if inside else end + 6, y=top + 17, font_size=11,
                fill="#ffffff" if inside else "#424242", text_anchor="end" if inside else None)


def _draw_halt(svg: _Svg, scale: _Scale, result: Dict[str, Any], rows_bottom: int) -> None:
    halt = result.get("halt")
    if not isinstance(halt, dict):
        return
    at = scale.x_of(halt.get("at"))
    if at is None:  # no time given: the end of the batch it names
        named = [b for b in _batches(result) if b.get("index") == halt.get("batch_index")
                 and b.get("number") == halt.get("batch_number")]
        at = scale.x_of(named[-1].get("ended_at")) if named else None
    if at is None:
        return
    reason = "halt: %s%s" % ("%s: " % halt["code"] if halt.get("code") else "", halt.get("reason") or "")
    svg.add("line", title=reason, class_="halt", x1=at, y1=ROWS_TOP - 14, x2=at, y2=rows_bottom,
            stroke=HALT_COLOUR, stroke_width=2, stroke_dasharray="6,3")
    svg.add("text", "halt", class_="halt-label", x=at, y=ROWS_TOP - 18, font_size=11, text_anchor="middle",
            fill=HALT_COLOUR, font_weight="bold")


def _draw_legend(svg: _Svg, rows: List[Tuple[str, str, Dict[str, Any], str]], legend_y: int) -> None:
    """Only the colours the chart uses."""
    used = {(css, str(item.get("outcome") or "")) for css, _label, item, _fill in rows}
    legend = [(outcome, colour) for outcome, colour in OUTCOME_COLOURS.items() if ("batch", outcome) in used]
    if any(row[3] == OTHER_COLOUR and row[0] == "batch" for row in rows):
        legend.append(("other", OTHER_COLOUR))
    if any(css == "planned" for css, _outcome in used):
        legend.append(("planned, not run", PLANNED_COLOUR))
    if any(css == "rollback" for css, _outcome in used):
        legend.append(("rollback (outlined in its outcome's colour)", ROLLBACK_COLOUR))
    x = LABEL_WIDTH
    for label, colour in legend:
        svg.add("rect", class_="legend", x=x, y=legend_y, width=12, height=12, fill=colour)
        svg.add("text", label, class_="legend-label", x=x + 16, y=legend_y + 10, font_size=11)
        x += 28 + 7 * len(label)


def _wrapped(text: str, width: int = TEXT_WIDTH) -> List[str]:
    words, lines = str(text).split(), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] = (lines[-1] + " " + word).strip()
    return [line for line in lines if line]


def _not_healthy(health: Any) -> List[str]:
    if not isinstance(health, dict):
        return []
    return ["%s (%s)" % (iid, state or "no signal") for iid, state in sorted(health.items()) if state != "Healthy"]


def _notes(result: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(css class, line) of what the picture must say in words: the images, the halt, the instances that were
    not Healthy, the rollback's outcome, the demotion."""
    notes = [] if _batches(result) or not _unrun(result) else [("empty", "No batch ran.")]
    if result.get("image_before") or result.get("image_after"):
        notes.append(("images", "image: %s → %s" % (_short_image(result.get("image_before")),
                                                    _short_image(result.get("image_after")))))
    halt = result.get("halt") if isinstance(result.get("halt"), dict) else None
    if halt:
        batch = _halt_batch(result, halt)
        interrupted = result.get("status") == "interrupted"   # worded as the module's message words it
        verb = "interrupted" if interrupted else "halted"
        where = "%s batch %s" % ("at" if interrupted else "after", batch) if batch else "before any batch"
        notes += [("halt", line) for line in _wrapped("%s %s (%s): %s" % (
            verb, where, halt.get("code") or "no code", halt.get("reason") or ""))]
    for position, batch in enumerate(_batches(result)):
        bad = _not_healthy(batch.get("health"))
        if bad and batch.get("outcome") != "healthy":
            notes += [("unhealthy", line) for line in _wrapped("not Healthy after %s: %s" % (
                _batch_label(batch, position).split(" (")[0], ", ".join(bad)))]
    rollback = result.get("rollback") if isinstance(result.get("rollback"), dict) else None
    if rollback:
        outcome = rollback.get("outcome") or "unknown"
        meaning = ROLLBACK_MEANINGS.get(outcome, "")
        notes += [("rollback-outcome", line) for line in _wrapped("rollback of %d instance(s): %s%s%s" % (
            len(rollback.get("instance_ids") or []), outcome, " - " if meaning else "", meaning))]
        bad = _not_healthy(rollback.get("health"))
        if bad:
            notes += [("unhealthy", line) for line in _wrapped("not Healthy after the rollback: " + ", ".join(bad))]
    demoted = result.get("demoted") if isinstance(result.get("demoted"), dict) else None
    if demoted:
        notes.append(("demoted", "demoted: %s excluded from latest" % _short_image({"id": demoted.get("image_version_id")})))
    return notes


def _short_image(value: Any) -> str:
    """A gallery version id as ``image version``, anything else as _image does."""
    text = _image(value)
    parts = text.split("/")
    if len(parts) > 4 and parts[-2].lower() == "versions":
        return "%s %s" % (parts[-3], parts[-1])
    return text


def render_svg(result: Dict[str, Any], kind: Optional[str] = None) -> str:
    """A standalone SVG 1.1 timeline: one bar per batch (phase) numbered from 1, the batches planned and never
    run, the rollback, against seconds since the start, coloured by outcome and labelled with it (the canary's
    soak marked); a dashed marker at the halt; an axis; notes in words (images, the halt, instances not Healthy,
    the rollback's outcome); a legend of the colours used."""
    zero, span = _timeline(result)
    scale = _Scale(zero, span)
    rows = _rows(result)
    notes = _notes(result)
    rows_bottom = ROWS_TOP + max(len(rows), 1) * ROW_HEIGHT
    axis_y = rows_bottom + 8
    notes_y = axis_y + 56
    legend_y = notes_y + 16 * len(notes) + 8
    height = legend_y + 30

    svg = _Svg()
    title = _title(result, kind)
    svg.add("title", title)
    svg.add("desc", "Timeline of the batches (x: seconds since the start), coloured by health outcome.")
    svg.add("rect", class_="background", x=0, y=0, width=WIDTH, height=height, fill="#ffffff")
    svg.add("text", title, x=12, y=24, font_size=16, font_weight="bold")
    status = "status: %s" % (result.get("status") or "unknown")
    if zero is not None:
        status += " · started %s" % _iso(zero)
    svg.add("text", status, class_="status", x=12, y=46, font_size=12, fill="#424242")
    _draw_axis(svg, scale, axis_y)
    _draw_bars(svg, scale, rows)
    _draw_halt(svg, scale, result, rows_bottom)
    for number, (css, line) in enumerate(notes):
        svg.add("text", line, class_="note %s" % css, x=12, y=notes_y + 16 * number, font_size=12,
                fill=HALT_COLOUR if css in ("halt", "unhealthy") else "#212121")
    _draw_legend(svg, rows, legend_y)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif">\n%s\n</svg>\n' % (WIDTH, height, WIDTH, height, "\n".join(svg.parts)))


# --- Markdown -------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md(value: Any) -> str:
    """Text for a Markdown table cell or line: one line, HTML and Markdown specials neutralised."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _table(headers: List[str], rows: List[List[Any]]) -> List[str]:
    lines = ["| %s |" % " | ".join(md(h) if h else " " for h in headers), "|%s|" % "|".join("---" for _header in headers)]
    lines += ["| %s |" % " | ".join(md(cell) for cell in row) for row in rows]
    return lines


def _ids(values: Any, limit: int = 12) -> str:
    items = [str(v) for v in values or []]
    if not items:
        return "—"
    shown = ", ".join(items[:limit])
    return shown + (" … (+%d)" % (len(items) - limit) if len(items) > limit else "")


def _image(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return "—"
    if value.get("id"):
        return str(value["id"])
    return ":".join(str(value.get(k)) for k in ("publisher", "offer", "sku", "version") if value.get(k))


def _requests(value: Any) -> str:
    if isinstance(value, dict):
        return "%s (%s writes, %s reads)" % (value.get("total", "—"), value.get("writes", "—"), value.get("reads", "—"))
    return "—" if value is None else str(value)


def _counts(summary: Dict[str, Any], *keys: str) -> Tuple[Any, ...]:
    return tuple("—" if summary.get(key) is None else summary[key] for key in keys)


def _summary_rows(result: Dict[str, Any]) -> List[List[Any]]:
    summary = result.get("summary") if isinstance(result.get("summary"), dict) else {}
    duration = summary.get("duration_seconds")
    if duration is None:
        duration = _seconds_between(summary.get("started_at"), summary.get("ended_at"))
    rows = [["Scale set", "%s%s" % (result.get("scale_set") or "—", " (%s)" % result["orchestration_mode"]
                                    if result.get("orchestration_mode") else "")],
            ["Status", result.get("status")],
            ["Started", _iso(summary.get("started_at"))],
            ["Ended", _iso(summary.get("ended_at"))],
            ["Duration", format_seconds(duration)],
            ["Instances", "%s total, %s upgraded, %s skipped" % _counts(
                summary, "instances_total", "instances_upgraded", "instances_skipped")],
            ["Batches", "%s of %s completed" % _counts(summary, "batches_completed", "batches_planned")],
            ["ARM requests", _requests(summary.get("arm_requests", result.get("arm_requests")))]]
    if result.get("model_changed") is not None or result.get("image_before") or result.get("image_after"):
        rows.append(["Model changed", "yes" if result.get("model_changed") else "no"])
        rows.append(["Image", "%s → %s" % (_image(result.get("image_before")), _image(result.get("image_after")))])
    return rows


def _plan_section(result: Dict[str, Any]) -> List[str]:
    plan = result.get("plan") if isinstance(result.get("plan"), dict) else None
    if not plan:
        return []
    lines = ["## Plan", ""]
    batches = [b for b in plan.get("batches") or [] if isinstance(b, dict)]
    if batches:
        lines += _table(["#", "Kind", "Instances", "Count", "Update domains", "Fault domains", "Zones"], [
            [batch_number(b, n), b.get("kind"), _ids(b.get("instance_ids")), len(b.get("instance_ids") or []),
             _ids(b.get("update_domains")), _ids(b.get("fault_domains")), _ids(b.get("zones"))]
            for n, b in enumerate(batches)])
    else:
        lines.append("No batch planned.")
    lines += ["", "Estimated duration: %s." % format_seconds(plan.get("estimated_seconds")), ""]
    return lines


def _batches_section(result: Dict[str, Any]) -> List[str]:
    batches = _batches(result)
    phases = is_blue_green(result)
    lines = ["## %s" % ("Phases" if phases else "Batches"), ""]
    if not batches:
        return lines + ["No %s ran." % ("phase" if phases else "batch"), ""]
    rows = []
    for n, b in enumerate(batches):
        rows.append([batch_number(b, n), b.get("kind"), _ids(b.get("instance_ids")), _iso(b.get("started_at")),
                     _iso(b.get("ended_at")), format_seconds(_seconds_between(b.get("started_at"), b.get("ended_at"))),
                     b.get("outcome"), _percent(b.get("unhealthy_upgraded_percent")),
                     _percent(b.get("unhealthy_set_percent")), _requests(b.get("arm_requests"))])
    return lines + _table(["#", "Kind", "Instances", "Started", "Ended", "Duration", "Outcome",
                           "Unhealthy upgraded", "Unhealthy set", "ARM requests"], rows) + [""]


def _halt_batch(result: Dict[str, Any], halt: Dict[str, Any]) -> Optional[str]:
    """``N of M`` as the messages say it; None when the rollout stopped before any batch."""
    number = halt.get("batch_number")
    if number is None and isinstance(halt.get("batch_index"), int):
        number = halt["batch_index"] + 1
    total = result.get("batches_total") or _get(result, "summary", "batches_planned")
    return None if number is None else "%s of %s" % (number, total) if total else str(number)


def _unhealthy(health: Any) -> str:
    if not isinstance(health, dict):
        return "—"
    return ", ".join(_not_healthy(health)) or "none"


def _events_section(result: Dict[str, Any]) -> List[str]:
    lines: List[str] = []
    halt, rollback, demoted = (result.get(k) if isinstance(result.get(k), dict) else None
                               for k in ("halt", "rollback", "demoted"))
    if halt:
        lines += ["## Halt", "", "- At: %s" % _iso(halt.get("at")),
                  "- Batch: %s" % md(_halt_batch(result, halt)),
                  "- Code: %s" % md(halt.get("code")),
                  "- Reason: %s" % md(halt.get("reason")), ""]
    if rollback:
        lines += ["## Rollback", "",
                  "- Instances: %s" % md(_ids(rollback.get("instance_ids"), limit=50)),
                  "- Started: %s, ended: %s (%s)" % (_iso(rollback.get("started_at")), _iso(rollback.get("ended_at")),
                                                     format_seconds(_seconds_between(rollback.get("started_at"),
                                                                                     rollback.get("ended_at")))),
                  "- Outcome: %s" % md(rollback.get("outcome")),
                  "- Not healthy afterwards: %s" % md(_unhealthy(rollback.get("health"))), ""]
    if demoted:
        lines += ["## Demotion", "",
                  "- Image version: %s" % md(demoted.get("image_version_id")),
                  "- exclude\\_from\\_latest: %s" % md(demoted.get("exclude_from_latest")), ""]
    skipped = [s for s in result.get("skipped_instances") or [] if isinstance(s, dict)]
    if skipped:
        lines += ["## Skipped instances", ""]
        lines += _table(["Instance", "Reason"], [[s.get("instance_id"), s.get("reason")] for s in skipped]) + [""]
    return lines


def render_markdown(result: Dict[str, Any], svg_filename: str, kind: Optional[str] = None) -> str:
    """Title, status, summary, timeline picture, plan, batches, then halt / rollback / demotion / skipped."""
    status = result.get("status") or "unknown"
    lines = ["# %s" % md(_title(result, kind)), "", "**Status: %s**" % md(status), ""]
    if result.get("msg"):
        lines += ["> %s" % md(result["msg"]), ""]
    lines += ["## Summary", ""] + _table(["", ""], _summary_rows(result)) + [""]
    lines += ["## Timeline", "", "![timeline](%s)" % quote(svg_filename), ""]
    lines += _plan_section(result) + _batches_section(result) + _events_section(result)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- files ----------------------------------------------------------------------------------------

def report_stem(result: Dict[str, Any], kind: str = "rollout",
                now: Optional[datetime.datetime] = None) -> str:
    """``<kind>-<scale set name>-<start, compact UTC>``; a result that never started is named by ``now``."""
    started = compact_time(_get(result, "summary", "started_at"))
    if started is None:
        started = (now or datetime.datetime.now(datetime.timezone.utc)).astimezone(
            datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = "%s-%s-%s" % (kind, scale_set_name(result), started)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem)


def _write(path: str, text: str) -> None:
    """Write through a temporary file in the same directory, so a reader never sees half a report."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_reports(result: Dict[str, Any], directory: str, kind: str = "rollout") -> Dict[str, str]:
    """Write the JSON, Markdown and SVG reports of ``result`` into ``directory`` (created when missing).

    Returns ``{"json": path, "markdown": path, "svg": path}``.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    stem = report_stem(result, kind)
    paths = {"json": os.path.join(directory, stem + ".json"), "markdown": os.path.join(directory, stem + ".md"),
             "svg": os.path.join(directory, stem + ".svg")}
    _write(paths["svg"], render_svg(result, kind))
    _write(paths["markdown"], render_markdown(result, os.path.basename(paths["svg"]), kind))
    _write(paths["json"], render_json(result))
    return paths
