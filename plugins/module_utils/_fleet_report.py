# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's picture: one standalone SVG of a fleet rollout (plugins/filter/fleet.py's fleet_report
data) - a row per scale set, grouped by wave, against seconds since the first set started: each batch a bar
coloured by its health outcome (the colours of the rollout report, _report.py), the rollback in blue, the
waves marked as bands, the halt as a dashed line. Pure, deterministic, standard library only (the controller
renders it)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ._report import (HALT_COLOUR, LABEL_WIDTH, MIN_BAR_WIDTH, OTHER_COLOUR, OUTCOME_COLOURS, ROLLBACK_COLOUR,
                      ROW_HEIGHT, ROWS_TOP, WIDTH, _draw_axis, _iso, _Scale, _Svg, parse_time)

# Row label colours by set status (the bars carry the batch outcomes).
STATUS_COLOURS = {"succeeded": "#2e7d32", "failed": "#b71c1c", "stopped": "#6a1b9a", "not_started": "#757575",
                  "already_done": "#757575"}
WAVE_FILLS = ("#f5f5f5", "#e3f2fd")
BAR, WAVE_HEADER = 14, 16


def _rows(wave: Mapping[str, Any]) -> int:
    return max(len(wave.get("sets") or []), 1)


def _spans(item: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The bars of a set: the batches it ran (``batches_run``; ``batches`` is the planned count), then its
    rollback; each with started_at, ended_at, outcome, kind."""
    bars = [dict(batch) for batch in item.get("batches_run") or [] if isinstance(batch, Mapping)]
    rollback = item.get("rollback")
    if isinstance(rollback, Mapping) and rollback.get("started_at"):
        bars.append(dict(rollback, kind="rollback"))
    return bars


def _times(data: Mapping[str, Any]) -> List[Any]:
    out = []
    for wave in data.get("waves") or []:
        for item in wave.get("sets") or []:
            out += [item.get("started_at"), item.get("ended_at")]
            for span in _spans(item):
                out += [span.get("started_at"), span.get("ended_at")]
    out.append((data.get("halted") or {}).get("at"))
    return [moment for moment in (parse_time(value) for value in out) if moment is not None]


def render_fleet_svg(data: Mapping[str, Any], title: Optional[str] = None) -> str:
    """The SVG of a fleet report's ``data``: sets against time, waves marked, the halt."""
    times = _times(data)
    zero = min(times) if times else None
    scale = _Scale(zero, (max(times) - zero).total_seconds() if times else 0.0)
    waves = data.get("waves") or []
    rows_bottom = ROWS_TOP + (sum(WAVE_HEADER + _rows(wave) * ROW_HEIGHT for wave in waves) or ROW_HEIGHT)
    axis_y = rows_bottom + 8
    height = axis_y + 70
    svg = _Svg()
    title = title or "Fleet rollout of %s" % str(data.get("image_version_id") or "?").rstrip("/").rsplit("/", 1)[-1]
    svg.add("title", title)
    svg.add("desc", "Scale sets against seconds since the first started, a bar per batch coloured by its health "
                    "outcome, grouped by wave; the halt dashed.")
    svg.add("rect", class_="background", x=0, y=0, width=WIDTH, height=height, fill="#ffffff")
    svg.add("text", title, x=12, y=24, font_size=16, font_weight="bold")
    status = "status: %s" % (data.get("status") or "unknown")
    if zero is not None:
        status += " · started %s" % _iso(zero)
    counts = data.get("set_counts") or {}
    if counts:
        status += " · sets: " + ", ".join("%s %s" % (count, name) for name, count in sorted(counts.items()))
    svg.add("text", status, class_="status", x=12, y=46, font_size=12, fill="#424242")
    top = ROWS_TOP
    for number, wave in enumerate(waves):   # the bands first, under the axis and the bars
        band = WAVE_HEADER + _rows(wave) * ROW_HEIGHT
        svg.add("rect", class_="wave", x=0, y=top, width=WIDTH, height=band, fill=WAVE_FILLS[number % len(WAVE_FILLS)])
        label = "wave %s · %s%s" % (wave.get("index"), wave.get("region"), " · promoted" if wave.get("promoted") else "")
        svg.add("text", label, class_="wave-label", x=6, y=top + 12, font_size=11, fill="#424242", font_weight="bold")
        top += band
    _draw_axis(svg, scale, axis_y)
    top = ROWS_TOP
    for wave in waves:
        top += WAVE_HEADER
        for item in wave.get("sets") or []:
            _draw_set(svg, scale, item, top)
            top += ROW_HEIGHT
        if not wave.get("sets"):
            top += ROW_HEIGHT
    halted = data.get("halted") or {}
    at = scale.x_of(halted.get("at"))
    if at is not None:
        who = halted.get("host") or "wave %s" % halted.get("wave")   # no host: the wait for the wave's replication
        word = "interrupted" if halted.get("interrupted") else "halt"   # a fault, not a verdict
        reason = "%s by %s: %s" % (word, who, halted.get("msg") or "")
        svg.add("line", title=reason, class_="halt", x1=at, y1=ROWS_TOP - 14, x2=at, y2=rows_bottom,
                stroke=HALT_COLOUR, stroke_width=2, stroke_dasharray="6,3")
        svg.add("text", "%s (%s)" % (word, who), class_="halt-label", x=at, y=ROWS_TOP - 18, font_size=11,
                text_anchor="middle", fill=HALT_COLOUR, font_weight="bold")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif">\n%s\n</svg>\n' % (WIDTH, height, WIDTH, height, "\n".join(svg.parts)))


def _draw_set(svg: _Svg, scale: _Scale, item: Mapping[str, Any], top: int) -> None:
    status = str(item.get("status") or "unknown")
    svg.add("text", "%s · %s" % (item.get("host"), status), class_="set %s" % status, x=LABEL_WIDTH - 8,
            y=top + 17, font_size=12, text_anchor="end", fill=STATUS_COLOURS.get(status, "#212121"))
    bars = _spans(item)
    if not bars and item.get("started_at"):   # no batch detail: the set's whole run
        bars = [{"started_at": item.get("started_at"), "ended_at": item.get("ended_at"), "outcome": status}]
    y = top + (ROW_HEIGHT - BAR) // 2
    for span in bars:
        start, end = scale.x_of(span.get("started_at")), scale.x_of(span.get("ended_at"))
        if start is None:
            continue
        end = start if end is None or end < start else end
        outcome = str(span.get("outcome") or "unknown")
        rollback = span.get("kind") == "rollback"
        fill = ROLLBACK_COLOUR if rollback else OUTCOME_COLOURS.get(outcome, OTHER_COLOUR)
        what = "rollback" if rollback else "%s %s" % (span.get("kind") or "batch", span.get("number") or "")
        svg.add("rect", title="%s %s: %s, %s to %s" % (item.get("host"), what.strip(), outcome,
                                                       _iso(span.get("started_at")), _iso(span.get("ended_at"))),
                class_="%s %s" % ("rollback" if rollback else "batch", outcome), x=start, y=y,
                width=max(end - start, MIN_BAR_WIDTH), height=BAR, fill=fill, stroke="#ffffff", stroke_width=1)
    if not bars:
        svg.add("text", "not started" if status == "not_started" else status, class_="missing",
                x=LABEL_WIDTH + 4, y=top + 17, font_size=11, fill="#616161")
