"""The HTML report: one self-contained page, one section per run, its charts (``charts``) in a
grid that fills the page's width. The page fetches nothing (its Content Security Policy forbids
it) and its one inline script only checks that every chart rendered."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.report.charts import (
    CHART_CSS,
    svg_histogram,
    svg_parse_failures,
    svg_sweep,
    svg_yield,
)
from groundset.core.report.formatting import e, fmt, pct, run_title, seconds, status_counts
from groundset.core.report.model import BINS, RankedCandidate, RunReport

__all__ = ["CHECK_SCRIPT", "CSS", "FIELD_CHARS", "check_html_path", "render_html", "write_html"]

FIELD_CHARS = 600

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

#: charts in a grid of as many columns of at least 340 px as the page's width holds, sharing
#: it out (a wide chart takes a whole row); each chart scales to its column (``CHART_CSS``)
_PAGE_CSS = """
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
.plots { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 340px), 1fr)); }
.plots > .wide { grid-column: 1 / -1; }
figure { margin: 0; min-width: 0; background: #fff; border: 1px solid #d9dee5; padding: 6px; }
figcaption { font-size: 12px; color: #5b6575; }
.ranked td { max-width: 420px; }
.fields dt { font-weight: 600; }
.fields dd { margin: 0 0 4px 0; white-space: pre-wrap; word-break: break-word; }
.excerpt { white-space: pre-wrap; word-break: break-word; color: #3b4452; font-size: 12.5px; }
.failed { color: #b23b3b; }
nav a { margin-right: 12px; }
"""
CSS = _PAGE_CSS + CHART_CSS


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


def _figure(svg: str, caption: str = "", *, wide: bool = False) -> str:
    caption_html = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    figure = '<figure class="wide">' if wide else "<figure>"
    return f"{figure}{svg}{caption_html}</figure>"


def _grid(figures: Sequence[str]) -> str:
    return f'<div class="plots">{"".join(figures)}</div>'


def _html_run(r: RunReport) -> str:
    out = [
        f'<section class="run" id="run-{e(r.run_id)}" data-run="{e(r.run_id)}">',
        f"<h2>{e(run_title(r))}</h2>",
        _html_summary(r),
        "<h3>Metric distributions</h3>",
    ]
    if r.metrics:
        out.append(
            f'<p class="note">{BINS} bins over each metric\'s declared range, or the observed'
            " range (marked) when the declared one is open or huge; green: default threshold."
            "</p>"
        )
        figures = [_figure(svg_histogram(s, r.run_id), s.info.description) for s in r.metrics]
        out.append(_grid(figures))
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
        out.append(_grid([_figure(svg_sweep(s, r.run_id)) for s in r.sweeps]))
    else:
        out.append('<p class="note">No metrics to sweep.</p>')

    out.append("<h3>Yield per document</h3>")
    if r.documents:
        out.append(
            f'<p class="note">Accepted ({e(r.accepted_view)}) / candidates per document,'
            f" highest yield first; {r.document_count} documents in all.</p>"
        )
        out.append(_grid([_figure(svg_yield(r), wide=True)]))
    else:
        out.append('<p class="note">No candidates recorded.</p>')

    out.append("<h3>Parse failures</h3>")
    if r.parse_failures:
        out.append(_grid([_figure(svg_parse_failures(r), wide=True)]))
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
        ("status", status_counts(r)),
        ("accepted", f"{r.accepted} ({pct(r.accepted, r.candidates)}), view {r.accepted_view}"),
        ("parse failures", str(r.parse_failed)),
        ("pass rates", "; ".join(f"{v} {p}/{s} ({fmt(rate)}%)" for v, s, p, rate in r.pass_rates)),
        ("tokens", f"{fmt(r.prompt_tokens)} prompt, {fmt(r.completion_tokens)} completion"),
        ("latency", f"median {seconds(r.latency_median)}, p95 {seconds(r.latency_p95)}"),
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
            f'<td class="num">{e(fmt(c.score))}</td>'
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
