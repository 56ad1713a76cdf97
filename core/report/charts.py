"""The SVG charts of the HTML report, written here as text: histograms, threshold sweeps and
horizontal bars. Each chart has a ``viewBox`` and scales to the width of its grid cell
(``CHART_CSS``), so sizes here are in its own units. Text is laid out from a deliberately wide
estimate of glyph widths (no font metrics without a browser): a title wraps onto as many lines
as it needs, and an axis label too long for its axis is squeezed to fit (``textLength``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from groundset.core.report.formatting import e, fmt, oneline
from groundset.core.report.model import BINS, MetricStats, RunReport, Sweep

__all__ = [
    "CHART_CSS",
    "TOP_REASONS",
    "svg_hbars",
    "svg_histogram",
    "svg_parse_failures",
    "svg_sweep",
    "svg_yield",
    "wrap_title",
]

#: a chart in a grid cell, and a wide one (bars with labels) across the whole row
W, H, WIDE = 380, 240, 1000
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 34, 46
#: font sizes (CHART_CSS) and title lines, in chart units
FONT, TITLE_FONT, AXIS_FONT, TITLE_LINE = 11, 12.5, 11.5, 16
#: average glyph widths in em, on the wide side: DejaVu Sans, among the widest sans-serif
#: fonts, averages about 0.6 (0.65 bold) on metric names and numbers
GLYPH_EM, BOLD_GLYPH_EM = 0.64, 0.7
#: the characters a bar's label keeps, and the reasons a parse-failure chart lists
LABEL_CHARS, TOP_REASONS = 40, 20

CHART_CSS = f"""
svg.plot {{ display: block; width: 100%; height: auto; font-size: {FONT}px; }}
svg.plot .title {{ font-size: {TITLE_FONT}px; font-weight: 600; fill: #1d2430; }}
svg.plot .axis {{ stroke: #4a5565; stroke-width: 1; }}
svg.plot .tick {{ stroke: #4a5565; }}
svg.plot .grid {{ stroke: #e4e8ee; }}
svg.plot .tick-label, svg.plot .bar-label, svg.plot .bar-value {{ fill: #3b4452; }}
svg.plot .axis-label {{ fill: #1d2430; font-size: {AXIS_FONT}px; }}
svg.plot .bar {{ fill: #4c78a8; }}
svg.plot .end {{ stroke: #1f3f66; stroke-width: 2; }}
svg.plot .line {{ fill: none; stroke: #e45756; stroke-width: 2; }}
svg.plot .point {{ fill: #e45756; }}
svg.plot .threshold {{ stroke: #2a9d4b; stroke-dasharray: 4 3; stroke-width: 1.5; }}
svg.plot .threshold-label {{ fill: #2a9d4b; font-size: 10.5px;
  paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }}
"""


def _text_width(text: str, font: float) -> float:
    return len(text) * font * GLYPH_EM


def wrap_title(text: str, width: float) -> list[str]:
    """The lines of ``text`` in a title ``width`` units wide, as even as the fewest lines allow,
    broken between words; a word too long for a line (a long metric name) breaks after a ``.``
    or ``_``, or anywhere as a last resort. Nothing is cut."""
    limit = max(8, int(width / (TITLE_FONT * BOLD_GLYPH_EM)))
    lines = _fill(text, limit)
    while limit > 8 and len(shorter := _fill(text, limit - 1)) == len(lines):
        limit, lines = limit - 1, shorter
    return lines


def _fill(text: str, limit: int) -> list[str]:
    """``text`` in lines of at most ``limit`` characters, each filled as far as it goes."""
    lines: list[str] = []
    for word in text.split():
        pieces = [word] if len(word) <= limit else [
            part[k : k + limit]
            for part in re.split(r"(?<=[._])", word)
            if part
            for k in range(0, len(part), limit)
        ]  # fmt: skip
        for i, piece in enumerate(pieces):
            sep = "" if i else " "  # the pieces of a word join without a space
            if lines and len(lines[-1]) + len(sep) + len(piece) <= limit:
                lines[-1] += sep + piece
            else:
                lines.append(piece)
    return lines


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def _ticks(low: float, high: float, integer: bool = False) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    step = _nice_step(span)
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - start) / step + 1e-9) + 1
    return [round(start + k * step, 12) for k in range(max(count, 0))]


def _count_top(value: int) -> float:
    """A y-axis maximum for counts: the next tick at or above ``value``."""
    if value <= 0:
        return 1.0
    step = max(1.0, math.ceil(_nice_step(value)))
    return math.ceil(value / step) * step


class _Scale:
    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


def _svg(
    plot: str,
    run_id: str,
    title: str,
    body: str,
    width: int,
    height: int,
    heading: Sequence[str] = (),
) -> str:
    """A chart: its title above ``body`` (the lines of ``heading`` if given, each wrapped to
    the width), and ``body``, drawn for a one-line title, moved down by any more lines."""
    lines = [line for text in heading or [title] for line in wrap_title(text, width - 16)]
    below = (len(lines) - 1) * TITLE_LINE
    height += below
    tspans = "".join(
        f'<tspan x="{width / 2:.1f}" y="{18 + i * TITLE_LINE}">{e(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<svg class="plot" data-plot="{e(plot)}" data-run="{e(run_id)}" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' aria-label="{e(title)}"><title>{e(title)}</title><g class="plot-body">'
        f'<text class="title" text-anchor="middle">{tspans}</text>'
        f'<g transform="translate(0 {below})">{body}</g></g></svg>'
    )


def _fitted(text: str, font: float, room: float) -> str:
    """``textLength`` that squeezes ``text`` into ``room`` when it may not fit, else nothing."""
    if _text_width(text, font) <= room:
        return ""
    return f' textLength="{room:.1f}" lengthAdjust="spacingAndGlyphs"'


def _axes(
    x: _Scale,
    y: _Scale,
    xticks: Sequence[float],
    yticks: Sequence[float],
    xlabel: str,
    ylabel: str,
    width: float,
) -> str:
    x0, x1, y0, y1 = x.r0, x.r1, y.r0, y.r1
    parts = [
        f'<line class="axis" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y0:.1f}"/>',
        f'<line class="axis" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x0:.1f}" y2="{y1:.1f}"/>',
    ]
    for t in xticks:
        px = x(t)
        parts.append(
            f'<line class="tick" x1="{px:.1f}" y1="{y0:.1f}" x2="{px:.1f}" y2="{y0 + 4:.1f}"/>'
            f'<text class="tick-label" x="{px:.1f}" y="{y0 + 15:.1f}" text-anchor="middle">'
            f"{e(fmt(t))}</text>"
        )
    for t in yticks:
        py = y(t)
        parts.append(
            f'<line class="grid" x1="{x0:.1f}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}"/>'
            f'<text class="tick-label" x="{x0 - 6:.1f}" y="{py + 4:.1f}" text-anchor="end">'
            f"{e(fmt(t))}</text>"
        )
    # centred under the axis, or under the chart when the axis is too short for it
    cx = (x0 + x1) / 2
    if _text_width(xlabel, AXIS_FONT) > x1 - x0:
        cx = width / 2
    fitted = _fitted(xlabel, AXIS_FONT, width - 8)
    parts.append(
        f'<text class="axis-label" x="{cx:.1f}" y="{y0 + 34:.1f}" text-anchor="middle"{fitted}>'
        f"{e(xlabel)}</text>"
    )
    cy = (y0 + y1) / 2
    if ylabel:
        parts.append(
            f'<text class="axis-label" x="14" y="{cy:.1f}" text-anchor="middle"'
            f' transform="rotate(-90 14 {cy:.1f})">{e(ylabel)}</text>'
        )
    return "".join(parts)


def _threshold_line(x: _Scale, y: _Scale, value: float | None) -> str:
    if value is None or not (min(x.d0, x.d1) <= value <= max(x.d0, x.d1)):
        return ""
    px, mid = x(value), (x.r0 + x.r1) / 2
    return (
        f'<line class="threshold" x1="{px:.1f}" y1="{y.r0:.1f}" x2="{px:.1f}" y2="{y.r1:.1f}">'
        f"<title>default threshold {e(fmt(value))}</title></line>"
        f'<text class="threshold-label" x="{px + (3 if px < mid else -3):.1f}"'
        f' y="{y.r1 + 10:.1f}" text-anchor="{"start" if px < mid else "end"}">'
        f"default {e(fmt(value))}</text>"
    )


def svg_histogram(s: MetricStats, run_id: str) -> str:
    x = _Scale(s.low, s.high, LEFT, W - RIGHT)
    top = _count_top(max(s.counts))
    y = _Scale(0, top, H - BOTTOM, TOP)
    edges = s.edges()
    bars = []
    for i, count in enumerate(s.counts):
        if not count:
            continue
        left, right = x(edges[i]), x(edges[i + 1])
        closing = "]" if i == BINS - 1 else ")"
        tip = f"[{fmt(edges[i])}, {fmt(edges[i + 1])}{closing}: {count}"
        bars.append(
            f'<rect class="mark bar" x="{left + 0.5:.1f}" y="{y(count):.1f}"'
            f' width="{max(right - left - 1, 1):.1f}" height="{y(0) - y(count):.1f}">'
            f"<title>{e(tip)}</title></rect>"
        )
    xlabel = s.info.key + (" (observed range)" if s.observed_range else "")
    body = _axes(x, y, _ticks(s.low, s.high), _ticks(0, top, True), xlabel, "candidates", W)
    body += "".join(bars) + _threshold_line(x, y, s.info.default_threshold)
    numbers = f"n={s.n}, mean {fmt(s.mean)}, median {fmt(s.median)}"
    heading = [s.info.key, numbers]  # the numbers on a line of their own, in every histogram
    return _svg(f"hist:{s.info.key}", run_id, f"{s.info.key}: {numbers}", body, W, H, heading)


def svg_sweep(sweep: Sweep, run_id: str) -> str:
    xs, ys = sweep.thresholds, sweep.accepted
    x = _Scale(xs[0], xs[-1], LEFT, W - RIGHT)
    top = _count_top(max(ys))
    y = _Scale(0, top, H - BOTTOM, TOP)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(n):.1f}"
        for i, (t, n) in enumerate(zip(xs, ys, strict=True))
    )
    points = "".join(
        f'<circle class="mark point" cx="{x(t):.1f}" cy="{y(n):.1f}" r="2.2">'
        f"<title>{e(f'threshold {fmt(t)}: {n} accepted')}</title></circle>"
        for t, n in zip(xs, ys, strict=True)
    )
    direction = ">=" if sweep.info.higher_is_better else "<="
    xlabel = f"threshold ({sweep.info.key} {direction} t)"
    body = _axes(x, y, _ticks(xs[0], xs[-1]), _ticks(0, top, True), xlabel, "accepted", W)
    body += f'<path class="mark line" d="{path}"/>' + points
    body += _threshold_line(x, y, sweep.info.default_threshold)
    title = f"accepted as {sweep.info.key} threshold moves"
    return _svg(f"sweep:{sweep.info.key}", run_id, title, body, W, H)


def svg_hbars(
    plot: str,
    run_id: str,
    title: str,
    xlabel: str,
    items: Sequence[tuple[str, float, str]],
    x_max: float,
    *,
    integer: bool,
) -> str:
    """Horizontal bars across the row: (label, value, tooltip) each, the tooltip also written
    after the bar. Every bar ends in a marker line, so a zero still shows."""
    bar, gap = 14, 5
    left = 12 + _text_width("x" * LABEL_CHARS, FONT)
    right = RIGHT + max(_text_width(tip, FONT) for _, _, tip in items)
    height = TOP + len(items) * (bar + gap) + BOTTOM
    x = _Scale(0, x_max, left, WIDE - right)
    y = _Scale(0, 1, height - BOTTOM, TOP)
    parts = []
    for i, (label, value, tip) in enumerate(items):
        top = TOP + gap / 2 + i * (bar + gap)
        mid = top + bar / 2
        width = x(value) - x(0)
        parts.append(
            f'<text class="bar-label" x="{left - 6:.1f}" y="{mid + 4:.1f}" text-anchor="end">'
            f"{e(oneline(label, LABEL_CHARS))}<title>{e(label)}</title></text>"
        )
        if width > 0:
            parts.append(
                f'<rect class="mark bar" x="{x(0):.1f}" y="{top:.1f}" width="{width:.1f}"'
                f' height="{bar}"><title>{e(tip)}</title></rect>'
            )
        parts.append(
            f'<line class="mark end" x1="{x(value):.1f}" y1="{top:.1f}" x2="{x(value):.1f}"'
            f' y2="{top + bar:.1f}"><title>{e(tip)}</title></line>'
            f'<text class="bar-value" x="{x(value) + 4:.1f}" y="{mid + 4:.1f}">{e(tip)}</text>'
        )
    body = _axes(x, y, _ticks(0, x_max, integer), [], xlabel, "", WIDE)
    return _svg(plot, run_id, title, body + "".join(parts), WIDE, height)


def svg_yield(r: RunReport) -> str:
    items = [
        (title or document_id[:16], accepted / candidates, f"{accepted}/{candidates}")
        for document_id, title, candidates, accepted in r.documents
    ]
    shown = f"top {len(items)} of {r.document_count}" if r.document_count > len(items) else "all"
    return svg_hbars(
        "yield",
        r.run_id,
        f"yield per document ({shown} documents)",
        "accepted / candidates",
        items,
        1.0,
        integer=False,
    )


def svg_parse_failures(r: RunReport) -> str:
    shown = r.parse_failures[:TOP_REASONS]
    items = [(reason, float(n), str(n)) for reason, n in shown]
    rest = r.parse_failures[TOP_REASONS:]
    if rest:
        total = sum(n for _, n in rest)
        items.append((f"({len(rest)} other reasons)", float(total), str(total)))
    return svg_hbars(
        "parse-failures",
        r.run_id,
        f"parse failures by reason ({r.parse_failed} of {r.candidates})",
        "candidates",
        items,
        _count_top(max(int(v) for _, v, _ in items)),
        integer=True,
    )
