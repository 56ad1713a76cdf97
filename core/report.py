"""``groundset report``: what a run produced, as a terminal summary or one self-contained HTML file.

Gathering is plain SQL against the store (values bound as parameters, metric columns quoted);
the statistics, the threshold sweeps and the ranking are computed here in Python, and the HTML
plots are inline SVG written by this module: the page fetches nothing (its Content Security
Policy forbids it) and its one inline script only checks that every plot rendered.

Ranking rule (the best and worst candidates of the HTML report): only candidates that parsed
are ranked (parse failures have their own chart). A candidate ranks higher when it passes more
default thresholds (a metric without a score does not count as passed); ties are broken by the
mean of its normalised metrics, each scaled to 0..1 over the metric's range (the declared
low..high, or the run's observed range when the declared range is open or huge, like word
counts), clipped, and flipped when lower is better; then by candidate id."""

from __future__ import annotations

import base64
import bisect
import hashlib
import html
import json
import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.queries import pass_rates
from groundset.core.store import Store, quote_identifier

__all__ = [
    "BINS",
    "MetricInfo",
    "RunReport",
    "check_accepted_view",
    "check_html_path",
    "gather",
    "render_html",
    "render_text",
    "write_html",
]

#: histogram bins, terminal and HTML
BINS = 10
#: a declared range wider than this (word counts: 0..10000) is replaced by the observed range
HUGE_SPAN = 1000.0
#: points of each threshold sweep (plus the default threshold)
SWEEP_POINTS = 41
TOP_DOCUMENTS = 30
TOP_REASONS = 20
RANKED = 10
EXCERPT_CHARS = 300
FIELD_CHARS = 600
TERMINAL_REASONS = 5
SPARK = " ▁▂▃▄▅▆▇█"


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    validator: str
    metric: str
    low: float | None
    high: float | None
    higher_is_better: bool
    default_threshold: float | None
    description: str

    @property
    def key(self) -> str:
        """The column name in ``candidate_scores``: ``validator.metric``."""
        return f"{self.validator}.{self.metric}"

    def passes(self, value: float | None, threshold: float | None = None) -> bool:
        """Whether ``value`` meets ``threshold`` (default: the declared default). A missing
        value or threshold passes, as in ``validator_results``."""
        threshold = self.default_threshold if threshold is None else threshold
        if value is None or threshold is None:
            return True
        return value >= threshold if self.higher_is_better else value <= threshold


@dataclass
class MetricStats:
    info: MetricInfo
    values: list[float]
    low: float
    high: float
    observed_range: bool
    counts: list[int]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def edges(self) -> list[float]:
        step = (self.high - self.low) / BINS
        return [self.low + i * step for i in range(BINS)] + [self.high]

    def normalise(self, value: float) -> float:
        """0..1 over this metric's range, 1 = best."""
        span = self.high - self.low
        x = 0.5 if span <= 0 else min(1.0, max(0.0, (value - self.low) / span))
        return x if self.info.higher_is_better else 1.0 - x


@dataclass
class Sweep:
    info: MetricInfo
    thresholds: list[float]
    accepted: list[int]


@dataclass
class RankedCandidate:
    candidate_id: str
    passed: int
    thresholds: int
    score: float | None
    failed: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    document_title: str | None = None
    excerpt: str = ""


@dataclass
class RunReport:
    run_id: str
    name: str | None
    status: str
    strategy: str
    model_id: str | None
    created: str
    status_counts: dict[str, int]
    parse_failures: list[tuple[str, int]]
    accepted: int
    accepted_view: str
    pass_rates: list[tuple[str, int, int, float | None]]
    metrics: list[MetricStats]
    unscored: list[MetricInfo]
    sweeps: list[Sweep]
    documents: list[tuple[str, str | None, int, int]]
    document_count: int
    best: list[RankedCandidate]
    worst: list[RankedCandidate]
    ranked_count: int
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_median: float | None
    latency_p95: float | None

    @property
    def candidates(self) -> int:
        """Candidates recorded, without the prompts the backend failed on."""
        return sum(n for s, n in self.status_counts.items() if s != "error")

    @property
    def parse_failed(self) -> int:
        return self.status_counts.get("parse_failed", 0)


def check_accepted_view(store: Store, name: str) -> None:
    """``name`` must be a view (or table) of the store with ``run_id`` and ``candidate_id``, or
    ``policy:NAME`` for a policy recorded by ``groundset accept``."""
    if name.startswith(POLICY_PREFIX):
        policy = name[len(POLICY_PREFIX) :]
        if not store.query("SELECT 1 FROM policies WHERE policy = ?", [policy]).rows:
            raise ConfigError(
                f"--policy {policy!r} has not been applied: run `groundset accept [CONFIG]"
                f" --policy {policy}` first (CONFIG: the file with [accept.{policy}], if not the"
                " run's own)"
            )
        return
    rows = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]
    ).rows
    columns = {r[0] for r in rows}
    if not columns:
        views = store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
            " ORDER BY table_name"
        ).rows
        known = ", ".join(r[0] for r in views) or "none"
        raise ConfigError(
            f"--accepted-view {name!r}: no such view in {store.path} (views: {known})"
        )
    missing = {"run_id", "candidate_id"} - columns
    if missing:
        raise ConfigError(
            f"--accepted-view {name!r} lacks column(s) {', '.join(sorted(missing))}:"
            " it should select candidate_scores rows"
        )


POLICY_PREFIX = "policy:"


def _accepted_source(accepted_view: str) -> str:
    """The relation whose (run_id, candidate_id) rows are the accepted ones."""
    if accepted_view.startswith(POLICY_PREFIX):
        policy = accepted_view[len(POLICY_PREFIX) :].replace("'", "''")
        return f"(SELECT run_id, candidate_id FROM accepted WHERE policy = '{policy}')"
    return quote_identifier(accepted_view)


def gather(store: Store, run_id: str, accepted_view: str = "accepted_default") -> RunReport:
    """Everything the report shows about one run (``run_id`` already resolved)."""
    run = store.query(
        "SELECT run_id, name, status, strategy, model_id, validators, fields,"
        " strftime(created_at, '%Y-%m-%d %H:%M') FROM runs WHERE run_id = ?",
        [run_id],
    ).rows
    if not run:
        raise ConfigError(f"no run {run_id!r} in {store.path}: `groundset runs` lists them")
    _, name, status, strategy, model_id, validators_json, fields_json, created = run[0]
    view = _accepted_source(accepted_view)

    status_counts = dict(
        store.query(
            "SELECT coalesce(status, 'ok'), count(*) FROM candidates WHERE run_id = ?"
            " GROUP BY ALL ORDER BY 1",
            [run_id],
        ).rows
    )
    reasons = store.query(
        "SELECT coalesce(parse_error, '(no reason recorded)') AS reason, count(*) AS n"
        " FROM candidates WHERE run_id = ? AND status = 'parse_failed'"
        " GROUP BY ALL ORDER BY n DESC, reason",
        [run_id],
    ).rows
    accepted = store.query(f"SELECT count(*) FROM {view} WHERE run_id = ?", [run_id]).rows[0][0]
    rates = [tuple(r) for r in pass_rates(store, run_id).rows]
    tokens = store.query(
        "SELECT sum(input_tokens) FILTER (WHERE candidate_index = 0),"
        " sum(output_tokens) FILTER (WHERE candidate_index = 0),"
        " median(latency_s) FILTER (WHERE candidate_index = 0),"
        " quantile_cont(latency_s, 0.95) FILTER (WHERE candidate_index = 0)"
        " FROM candidates WHERE run_id = ?",
        [run_id],
    ).rows[0]

    infos = _run_metrics(store, run_id, validators_json)
    view_columns = set(store.query("SELECT * FROM candidate_scores LIMIT 0").columns)
    infos = [m for m in infos if m.key in view_columns]
    metric_sql = "".join(f", {quote_identifier(m.key)}" for m in infos)
    rows = store.query(
        f"SELECT candidate_id, parse_ok{metric_sql} FROM candidate_scores"
        " WHERE run_id = ? AND status IS DISTINCT FROM 'error' ORDER BY candidate_id",
        [run_id],
    ).rows
    ids = [r[0] for r in rows]
    parsed = [bool(r[1]) for r in rows]
    columns = {m.key: [r[2 + i] for r in rows] for i, m in enumerate(infos)}

    stats, unscored = [], []
    for info in infos:
        values = [float(v) for v in columns[info.key] if v is not None and math.isfinite(v)]
        if values:
            stats.append(_stats(info, values))
        else:
            unscored.append(info)
    sweeps = _sweeps(stats, columns, parsed)
    ranking = _rank(stats, columns, ids, parsed)
    best, worst = ranking[:RANKED], ranking[::-1][:RANKED]
    _add_details(store, [*best, *worst], json.loads(fields_json or "[]"))

    documents = store.query(
        "SELECT c.document_id, any_value(d.title) AS title, count(*) AS candidates,"
        " count(a.candidate_id) AS accepted"
        " FROM candidates c LEFT JOIN documents d USING (document_id)"
        f" LEFT JOIN (SELECT DISTINCT candidate_id FROM {view} WHERE run_id = ?) a"
        " ON a.candidate_id = c.candidate_id"
        " WHERE c.run_id = ? AND c.status IS DISTINCT FROM 'error'"
        " GROUP BY c.document_id"
        " ORDER BY accepted / candidates DESC, candidates DESC, title, c.document_id",
        [run_id, run_id],
    ).rows
    return RunReport(
        run_id=run_id,
        name=name,
        status=status,
        strategy=strategy,
        model_id=model_id,
        created=created,
        status_counts=status_counts,
        parse_failures=[(r[0], r[1]) for r in reasons],
        accepted=accepted,
        accepted_view=accepted_view,
        pass_rates=rates,
        metrics=stats,
        unscored=unscored,
        sweeps=sweeps,
        documents=[tuple(r) for r in documents[:TOP_DOCUMENTS]],
        document_count=len(documents),
        best=best,
        worst=worst,
        ranked_count=len(ranking),
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        latency_median=tokens[2],
        latency_p95=tokens[3],
    )


def _run_metrics(store: Store, run_id: str, validators_json: str | None) -> list[MetricInfo]:
    """Declared metrics of the run's validators: those of its config, and any that scored it
    later (``groundset score``)."""
    validators = set(json.loads(validators_json or "[]"))
    scored = store.query("SELECT DISTINCT validator FROM scores WHERE run_id = ?", [run_id]).rows
    validators |= {r[0] for r in scored}
    rows = store.query(
        "SELECT validator, metric, low, high, higher_is_better, default_threshold,"
        " coalesce(description, '') FROM metrics WHERE list_contains(?, validator)"
        " ORDER BY validator, metric",
        [sorted(validators)],
    ).rows
    return [MetricInfo(*r) for r in rows]


def _metric_range(info: MetricInfo, values: Sequence[float]) -> tuple[float, float, bool]:
    """The declared low..high, or the observed range when that is open or huge."""
    low, high = info.low, info.high
    declared = (
        low is not None
        and high is not None
        and math.isfinite(low)
        and math.isfinite(high)
        and 0 < high - low <= HUGE_SPAN
    )
    if declared:
        return float(low), float(high), False
    low, high = min(values), max(values)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return low, high, True


def _stats(info: MetricInfo, values: list[float]) -> MetricStats:
    low, high, observed = _metric_range(info, values)
    counts = [0] * BINS
    for v in values:
        counts[min(BINS - 1, max(0, int((v - low) / (high - low) * BINS)))] += 1
    return MetricStats(info, values, low, high, observed, counts)


def _sweeps(
    stats: list[MetricStats], columns: dict[str, list[Any]], parsed: list[bool]
) -> list[Sweep]:
    """Per metric: how many parsed candidates pass every other default threshold and this metric
    at each threshold of a grid over its range (a missing score passes, as in
    ``accepted_default``; at the default threshold the count is ``accepted_default``'s)."""
    gated = [s.info for s in stats if s.info.default_threshold is not None]
    failed: list[list[str]] = [[] for _ in parsed]
    for info in gated:
        for i, v in enumerate(columns[info.key]):
            if parsed[i] and not info.passes(v):
                failed[i].append(info.key)
    sweeps = []
    for s in stats:
        key = s.info.key
        eligible = [
            columns[key][i]
            for i, ok in enumerate(parsed)
            if ok and (not failed[i] or failed[i] == [key])
        ]
        values = sorted(float(v) for v in eligible if v is not None and math.isfinite(v))
        missing = len(eligible) - len(values)  # no score (or NaN) counts as passing
        grid = {s.low + (s.high - s.low) * k / (SWEEP_POINTS - 1) for k in range(SWEEP_POINTS)}
        default = s.info.default_threshold
        if default is not None and s.low <= default <= s.high:
            grid.add(float(default))
        thresholds = sorted(grid)
        if s.info.higher_is_better:
            counts = [missing + len(values) - bisect.bisect_left(values, t) for t in thresholds]
        else:
            counts = [missing + bisect.bisect_right(values, t) for t in thresholds]
        sweeps.append(Sweep(s.info, thresholds, counts))
    return sweeps


def _rank(
    stats: list[MetricStats], columns: dict[str, list[Any]], ids: list[str], parsed: list[bool]
) -> list[RankedCandidate]:
    """Parsed candidates, best first (see the module docstring for the rule)."""
    gated = [s.info for s in stats if s.info.default_threshold is not None]
    ranked = []
    for i, candidate_id in enumerate(ids):
        if not parsed[i]:
            continue
        failed = [m.key for m in gated if not _passes_scored(m, columns[m.key][i])]
        normalised = [
            s.normalise(float(columns[s.info.key][i]))
            for s in stats
            if columns[s.info.key][i] is not None and math.isfinite(columns[s.info.key][i])
        ]
        score = statistics.fmean(normalised) if normalised else None
        ranked.append(
            RankedCandidate(candidate_id, len(gated) - len(failed), len(gated), score, failed)
        )
    ranked.sort(key=lambda c: c.candidate_id)
    ranked.sort(key=lambda c: (c.passed, -1.0 if c.score is None else c.score), reverse=True)
    return ranked


def _passes_scored(info: MetricInfo, value: float | None) -> bool:
    return value is not None and info.passes(value)


def _add_details(store: Store, candidates: list[RankedCandidate], order: list[str]) -> None:
    """Fields (in the strategy's order) and document excerpt of the candidates shown."""
    if not candidates:
        return
    rows = store.query(
        "SELECT c.candidate_id, c.fields, d.title, left(d.text, ?), length(d.text)"
        " FROM candidates c LEFT JOIN documents d USING (document_id)"
        " WHERE list_contains(?, c.candidate_id)",
        [EXCERPT_CHARS, sorted({c.candidate_id for c in candidates})],
    ).rows
    details = {r[0]: r[1:] for r in rows}
    for c in candidates:
        fields, title, excerpt, length = details.get(c.candidate_id, (None, None, "", 0))
        values = json.loads(fields) if fields else {}
        rank = {name: i for i, name in enumerate(order)}
        c.fields = dict(sorted(values.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        c.document_title = title
        c.excerpt = (excerpt or "") + ("…" if (length or 0) > EXCERPT_CHARS else "")


# --- terminal ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def sparkline(counts: Sequence[int]) -> str:
    """One character per bin, scaled to the fullest bin; an empty bin is a space."""
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(SPARK[math.ceil(8 * c / top)] if c else " " for c in counts)


def _run_title(r: RunReport) -> str:
    parts = [f"run {r.run_id}" + (f" ({r.name})" if r.name else ""), r.status, r.strategy]
    if r.model_id:
        parts.append(r.model_id)
    return " | ".join([*parts, r.created])


def render_text(reports: Sequence[RunReport]) -> str:
    """The terminal summary of each run."""
    return "\n\n".join(_text_one(r) for r in reports)


def _text_one(r: RunReport) -> str:
    lines = [_run_title(r)]
    counts = ", ".join(f"{s} {n}" for s, n in sorted(r.status_counts.items())) or "none"
    lines.append(f"  candidates      {r.candidates}  ({counts})")
    lines.append(
        f"  accepted        {r.accepted}  ({_pct(r.accepted, r.candidates)} of candidates,"
        f" view {r.accepted_view})"
    )
    lines.append(f"  parse failures  {r.parse_failed}")
    width = max((len(str(n)) for _, n in r.parse_failures), default=1)
    for reason, n in r.parse_failures[:TERMINAL_REASONS]:
        lines.append(f"    {str(n).rjust(width)}  {_oneline(reason, 90)}")
    if len(r.parse_failures) > TERMINAL_REASONS:
        rest = sum(n for _, n in r.parse_failures[TERMINAL_REASONS:])
        more = len(r.parse_failures) - TERMINAL_REASONS
        lines.append(f"    {str(rest).rjust(width)}  ({more} other reasons)")
    if r.pass_rates:
        lines.append("  pass rates (default thresholds)")
        vw = max(len(v) for v, *_ in r.pass_rates)
        for validator, scored, passed, pct in r.pass_rates:
            ratio = f"{passed}/{scored}"
            rate = "-" if pct is None else f"{pct:.1f}%"
            lines.append(f"    {validator.ljust(vw)}  {ratio.rjust(11)}  {rate.rjust(6)}")
    if r.metrics:
        lines.append(f"  metrics ({BINS} bins over the range; * = observed range)")
        nw = max(len(s.info.key) for s in r.metrics)
        ranges = [
            f"[{_fmt(s.low)}, {_fmt(s.high)}]{'*' if s.observed_range else ''}" for s in r.metrics
        ]
        rw = max((len(x) for x in ranges), default=0)
        for s, span in zip(r.metrics, ranges, strict=True):
            lines.append(
                f"    {s.info.key.ljust(nw)}  {span.ljust(rw)}  |{sparkline(s.counts)}|"
                f"  n={s.n} mean={_fmt(s.mean)} median={_fmt(s.median)}"
            )
    if r.unscored:  # declared by the run's validators, not scored for this kind of data
        names = ", ".join(m.key for m in r.unscored)
        lines += textwrap.wrap(names, 100, initial_indent="  no scores       ",
                               subsequent_indent=" " * 18, break_on_hyphens=False)  # fmt: skip
    lines.append(
        f"  tokens          {_fmt(r.prompt_tokens)} prompt, {_fmt(r.completion_tokens)} completion"
    )
    lines.append(
        f"  latency         median {_seconds(r.latency_median)}, p95 {_seconds(r.latency_p95)}"
        " per backend call (a local model's call is a whole batch)"
    )
    return "\n".join(line.rstrip() for line in lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _oneline(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- SVG plots ------------------------------------------------------------------------------

W, H = 440, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 34, 46


def e(value: Any) -> str:
    """HTML-escape anything, quotes included (text and attribute values)."""
    return html.escape(str(value), quote=True)


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


def _svg(plot: str, run_id: str, title: str, body: str, width: int, height: int) -> str:
    return (
        f'<svg class="plot" data-plot="{e(plot)}" data-run="{e(run_id)}" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' aria-label="{e(title)}"><title>{e(title)}</title><g class="plot-body">'
        f'<text class="title" x="{width / 2:.1f}" y="18" text-anchor="middle">{e(title)}</text>'
        f"{body}</g></svg>"
    )


def _axes(
    x: _Scale,
    y: _Scale,
    xticks: Sequence[float],
    yticks: Sequence[float],
    xlabel: str,
    ylabel: str,
    *,
    xtick_labels: Sequence[str] | None = None,
) -> str:
    x0, x1, y0, y1 = x.r0, x.r1, y.r0, y.r1
    parts = [
        f'<line class="axis" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y0:.1f}"/>',
        f'<line class="axis" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x0:.1f}" y2="{y1:.1f}"/>',
    ]
    labels = xtick_labels or [_fmt(t) for t in xticks]
    for t, label in zip(xticks, labels, strict=True):
        px = x(t)
        parts.append(
            f'<line class="tick" x1="{px:.1f}" y1="{y0:.1f}" x2="{px:.1f}" y2="{y0 + 4:.1f}"/>'
        )
        parts.append(
            f'<text class="tick-label" x="{px:.1f}" y="{y0 + 15:.1f}" text-anchor="middle">'
            f"{e(label)}</text>"
        )
    for t in yticks:
        py = y(t)
        parts.append(
            f'<line class="grid" x1="{x0:.1f}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}"/>'
        )
        parts.append(
            f'<text class="tick-label" x="{x0 - 6:.1f}" y="{py + 4:.1f}" text-anchor="end">'
            f"{e(_fmt(t))}</text>"
        )
    parts.append(
        f'<text class="axis-label" x="{(x0 + x1) / 2:.1f}" y="{y0 + 34:.1f}"'
        f' text-anchor="middle">{e(xlabel)}</text>'
    )
    cy = (y0 + y1) / 2
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
        f"<title>default threshold {e(_fmt(value))}</title></line>"
        f'<text class="threshold-label" x="{px + (3 if px < mid else -3):.1f}"'
        f' y="{y.r1 + 10:.1f}" text-anchor="{"start" if px < mid else "end"}">'
        f"default {e(_fmt(value))}</text>"
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
        tip = f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{closing}: {count}"
        bars.append(
            f'<rect class="mark bar" x="{left + 0.5:.1f}" y="{y(count):.1f}"'
            f' width="{max(right - left - 1, 1):.1f}" height="{y(0) - y(count):.1f}">'
            f"<title>{e(tip)}</title></rect>"
        )
    xlabel = s.info.key + (" (observed range)" if s.observed_range else "")
    body = _axes(x, y, _ticks(s.low, s.high), _ticks(0, top, True), xlabel, "candidates")
    body += "".join(bars) + _threshold_line(x, y, s.info.default_threshold)
    title = f"{s.info.key}: n={s.n}, mean {_fmt(s.mean)}, median {_fmt(s.median)}"
    return _svg(f"hist:{s.info.key}", run_id, title, body, W, H)


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
        f"<title>{e(f'threshold {_fmt(t)}: {n} accepted')}</title></circle>"
        for t, n in zip(xs, ys, strict=True)
    )
    direction = ">=" if sweep.info.higher_is_better else "<="
    body = _axes(
        x,
        y,
        _ticks(xs[0], xs[-1]),
        _ticks(0, top, True),
        f"threshold ({sweep.info.key} {direction} t)",
        "accepted",
    )
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
    """Horizontal bars: (label, value, tooltip) each. Every bar ends in a marker line, so a
    zero still shows."""
    left, bar, gap = 210, 14, 5
    height = TOP + len(items) * (bar + gap) + BOTTOM
    x = _Scale(0, x_max, left, W + 120 - RIGHT)
    y = _Scale(0, 1, height - BOTTOM, TOP)
    parts = []
    for i, (label, value, tip) in enumerate(items):
        top = TOP + gap / 2 + i * (bar + gap)
        mid = top + bar / 2
        width = x(value) - x(0)
        parts.append(
            f'<text class="bar-label" x="{left - 6}" y="{mid + 4:.1f}" text-anchor="end">'
            f"{e(_oneline(label, 30))}<title>{e(label)}</title></text>"
        )
        if width > 0:
            parts.append(
                f'<rect class="mark bar" x="{x(0):.1f}" y="{top:.1f}" width="{width:.1f}"'
                f' height="{bar}"><title>{e(tip)}</title></rect>'
            )
        parts.append(
            f'<line class="mark end" x1="{x(value):.1f}" y1="{top:.1f}" x2="{x(value):.1f}"'
            f' y2="{top + bar:.1f}"><title>{e(tip)}</title></line>'
        )
        parts.append(
            f'<text class="bar-value" x="{x(value) + 4:.1f}" y="{mid + 4:.1f}">{e(tip)}</text>'
        )
    xticks = _ticks(0, x_max, integer)
    body = _axes(x, y, xticks, [], xlabel, "")
    return _svg(plot, run_id, title, body + "".join(parts), W + 120, height)


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


# --- HTML -------------------------------------------------------------------------------------

CHECK_SCRIPT = """
(function () {
  function check() {
    var failed = [], ok = 0;
    document.querySelectorAll("svg.plot").forEach(function (svg) {
      var body = svg.querySelector("g.plot-body"), drawn = 0;
      svg.querySelectorAll(".mark").forEach(function (mark) {
        var box = mark.getBBox();
        if (box.width > 0 || box.height > 0) drawn++;
      });
      var box = body ? body.getBBox() : {width: 0, height: 0};
      if (box.width > 0 && box.height > 0 && drawn > 0) ok++;
      else failed.push(svg.getAttribute("data-run") + ":" + svg.getAttribute("data-plot"));
    });
    document.body.setAttribute("data-plots-rendered", String(ok));
    document.body.setAttribute("data-plots-failed", failed.join(" "));
  }
  window.addEventListener("load", check);
})();
"""

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d2430; background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-top: 12px; border-top: 2px solid #c9d1dc; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.note, .meta { color: #5b6575; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d9dee5; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid #d9dee5; padding: 6px; }
figcaption { max-width: 440px; font-size: 12px; color: #5b6575; }
svg.plot { display: block; font-size: 11px; }
svg.plot .title { font-size: 12.5px; font-weight: 600; fill: #1d2430; }
svg.plot .axis { stroke: #4a5565; stroke-width: 1; }
svg.plot .tick { stroke: #4a5565; }
svg.plot .grid { stroke: #e4e8ee; }
svg.plot .tick-label, svg.plot .bar-label, svg.plot .bar-value { fill: #3b4452; }
svg.plot .axis-label { fill: #1d2430; font-size: 11.5px; }
svg.plot .bar { fill: #4c78a8; }
svg.plot .end { stroke: #1f3f66; stroke-width: 2; }
svg.plot .line { fill: none; stroke: #e45756; stroke-width: 2; }
svg.plot .point { fill: #e45756; }
svg.plot .threshold { stroke: #2a9d4b; stroke-dasharray: 4 3; stroke-width: 1.5; }
svg.plot .threshold-label { fill: #2a9d4b; font-size: 10.5px; }
.ranked td { max-width: 420px; }
.fields dt { font-weight: 600; }
.fields dd { margin: 0 0 4px 0; white-space: pre-wrap; word-break: break-word; }
.excerpt { white-space: pre-wrap; word-break: break-word; color: #3b4452; font-size: 12.5px; }
.failed { color: #b23b3b; }
nav a { margin-right: 12px; }
"""


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(reports: Sequence[RunReport], store_path: str | Path) -> str:
    """One self-contained page, one section per run. A Content Security Policy forbids every
    fetch and every script but the plot check (by its hash)."""
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
        f" script-src '{_script_hash(CHECK_SCRIPT)}'"
    )
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    nav = "".join(
        f'<a href="#run-{e(r.run_id)}">{e(r.name or r.run_id[:12])} ({e(r.run_id[:12])})</a>'
        for r in reports
    )
    sections = "".join(_html_run(r) for r in reports)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>groundset report: {e(', '.join(r.name or r.run_id[:12] for r in reports))}"
        f"</title><style>{CSS}</style></head>\n"
        '<body data-plots-rendered="" data-plots-failed=""><main>'
        f'<h1>groundset report</h1><p class="meta">store {e(store_path)}, generated'
        f" {e(generated)}, {len(reports)} run{'s' if len(reports) != 1 else ''}</p>"
        f"<nav>{nav}</nav>{sections}</main>\n"
        f"<script>{CHECK_SCRIPT}</script>\n</body></html>\n"
    )


def _figure(svg: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{caption_html}</figure>"


def _html_run(r: RunReport) -> str:
    out = [
        f'<section class="run" id="run-{e(r.run_id)}" data-run="{e(r.run_id)}">',
        f"<h2>{e(_run_title(r))}</h2>",
        _html_summary(r),
        "<h3>Metric distributions</h3>",
    ]
    if r.metrics:
        out.append(
            f'<p class="note">{BINS} bins over each metric\'s declared range, or the observed'
            " range (marked) when the declared one is open or huge; green: default threshold."
            "</p>"
        )
        out.append('<div class="plots">')
        out += [_figure(svg_histogram(s, r.run_id), s.info.description) for s in r.metrics]
        out.append("</div>")
    else:
        out.append('<p class="note">No scores recorded for this run.</p>')
    if r.unscored:
        names = ", ".join(m.key for m in r.unscored)
        out.append(f'<p class="note">Declared but not scored in this run: {e(names)}.</p>')

    out.append("<h3>Accepted count as each threshold moves</h3>")
    if r.sweeps:
        out.append(
            '<p class="note">Parsed candidates that pass every other default threshold and this'
            " metric at threshold t (a candidate without a score passes, as in accepted_default);"
            " at the default threshold the count is accepted_default's.</p>"
        )
        out.append('<div class="plots">')
        out += [_figure(svg_sweep(s, r.run_id)) for s in r.sweeps]
        out.append("</div>")
    else:
        out.append('<p class="note">No metrics to sweep.</p>')

    out.append("<h3>Yield per document</h3>")
    if r.documents:
        out.append(
            f'<p class="note">Accepted ({e(r.accepted_view)}) / candidates per document,'
            f" highest yield first; {r.document_count} documents in all.</p>"
        )
        out.append(f'<div class="plots">{_figure(svg_yield(r))}</div>')
    else:
        out.append('<p class="note">No candidates recorded.</p>')

    out.append("<h3>Parse failures</h3>")
    if r.parse_failures:
        out.append(f'<div class="plots">{_figure(svg_parse_failures(r))}</div>')
    else:
        out.append('<p class="note">No parse failures.</p>')

    out.append("<h3>Worst and best candidates</h3>")
    out.append(
        f'<p class="note">{r.ranked_count} parsed candidates ranked by the number of default'
        " thresholds passed (a missing score does not pass), then by the mean of their"
        " normalised metrics (each scaled to 0..1 over the range used above, flipped when"
        " lower is better), then by candidate id.</p>"
    )
    if r.ranked_count:
        out.append(_html_ranked(f"{len(r.worst)} worst", r.worst, "worst"))
        out.append(_html_ranked(f"{len(r.best)} best", r.best, "best"))
    out.append("</section>")
    return "\n".join(out)


def _html_summary(r: RunReport) -> str:
    rows = [
        ("candidates", str(r.candidates)),
        ("status", ", ".join(f"{s} {n}" for s, n in sorted(r.status_counts.items())) or "none"),
        ("accepted", f"{r.accepted} ({_pct(r.accepted, r.candidates)}), view {r.accepted_view}"),
        ("parse failures", str(r.parse_failed)),
        ("pass rates", "; ".join(f"{v} {p}/{s} ({_fmt(pct)}%)" for v, s, p, pct in r.pass_rates)),
        ("tokens", f"{_fmt(r.prompt_tokens)} prompt, {_fmt(r.completion_tokens)} completion"),
        ("latency", f"median {_seconds(r.latency_median)}, p95 {_seconds(r.latency_p95)}"),
    ]
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _html_ranked(title: str, ranked: Sequence[RankedCandidate], kind: str) -> str:
    head = (
        "<tr><th>#</th><th>candidate</th><th>thresholds passed</th><th>score</th>"
        "<th>fields</th><th>document</th></tr>"
    )
    rows = []
    for i, c in enumerate(ranked, 1):
        fields = "".join(f"<dt>{e(k)}</dt><dd>{e(_clip(v))}</dd>" for k, v in c.fields.items())
        failed = f'<div class="failed">failed: {e(", ".join(c.failed))}</div>' if c.failed else ""
        rows.append(
            f'<tr><td class="num">{i}</td><td><code>{e(c.candidate_id[:12])}</code></td>'
            f'<td class="num">{c.passed}/{c.thresholds}{failed}</td>'
            f'<td class="num">{e(_fmt(c.score))}</td>'
            f'<td><dl class="fields">{fields}</dl></td>'
            f"<td><strong>{e(c.document_title or '(untitled)')}</strong>"
            f'<div class="excerpt">{e(c.excerpt)}</div></td></tr>'
        )
    return (
        f"<h4>{e(title)}</h4>"
        f'<table class="ranked" data-ranked="{e(kind)}">{head}{"".join(rows)}</table>'
    )


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= FIELD_CHARS else text[: FIELD_CHARS - 1] + "…"


def check_html_path(path: str | Path) -> Path:
    """Fail before any work when the report could not be written there."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--html {path}: is a folder, give a file name like report.html")
    if not path.parent.is_dir():
        raise ConfigError(f"--html {path}: folder {path.parent} does not exist")
    return path


def write_html(path: str | Path, text: str) -> Path:
    path = check_html_path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--html {path}: cannot write ({error.strerror or error})") from None
    return path
