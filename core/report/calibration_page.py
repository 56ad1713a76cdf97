"""``groundset calibrate --html``: one self-contained page of how each metric fares against the
labels. Per metric: its ROC curve, its precision against the threshold with the bootstrap 95 %
band, and a reliability curve (the share of good labels per score bin against the bin's mean
score mapped to 0..1, flipped when lower is better); the same three for the learned policy from
its held-out predictions. It is the report's page kind: inline SVG, the report's styles, and a
Content Security Policy that forbids every fetch and every script but the report's plot check,
which writes how many charts rendered onto ``<body>``.

The curves count each label once (the figures beside them weigh labels by their sampling
weights), from the same labelled candidates ``calibrate`` measured."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from groundset.core.calibration import Calibration, Estimate, MetricCalibration
from groundset.core.intervals import estimate_text
from groundset.core.learned_policy import LabelledSet, LearnedPolicy, OutOfFold
from groundset.core.report.charts import (
    BOTTOM,
    LEFT,
    RIGHT,
    TOP,
    H,
    W,
    _axes,
    _Scale,
    _svg,
    _threshold_line,
    _ticks,
)
from groundset.core.report.formatting import e, fmt
from groundset.core.report.page import CHECK_SCRIPT, CSS, _script_hash

__all__ = ["BINS", "PLOTS_PER_METRIC", "render_calibration_html"]

#: reliability bins over 0..1; the precision curve's most points (evenly spaced among the
#: thresholds that change it)
BINS, MOST_POINTS = 10, 200
PLOTS_PER_METRIC = 3
RESAMPLES = 1000

_CSS = """
svg.plot .band { fill: #e45756; opacity: 0.2; stroke: none; }
svg.plot .reference { stroke: #9aa3af; stroke-dasharray: 4 3; fill: none; }
svg.plot .line.baseline { stroke: #4c78a8; }
.legend-learned { color: #e45756; font-weight: 600; }
.legend-baseline { color: #4c78a8; font-weight: 600; }
"""


def render_calibration_html(
    result: Calibration, data: LabelledSet, held_out: OutOfFold | None, store_path: str | Path
) -> str:
    """The page for ``result``, with ``data`` (the labelled values behind each curve)."""
    import numpy as np

    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
        f" script-src '{_script_hash(CHECK_SCRIPT)}'"
    )
    rng = np.random.default_rng(0)
    sections = [_learned_section(result.learned, held_out, rng)]
    sections.append("<h2>Metrics</h2>")
    if not result.metrics:
        sections.append('<p class="note">No metric has enough labelled candidates.</p>')
    for m in sorted(result.metrics, key=lambda m: -(m.auroc.value or 0.0)):
        if m.metric not in data.metrics:
            continue
        j = data.metrics.index(m.metric)
        present = ~np.isnan(data.x[:, j])
        sections.append(_metric_section(m, data.x[present, j], data.y[present], rng))
    title = f"groundset calibration: {len(result.run_ids)} run(s), aspect {result.aspect}"
    meta = (
        f"store {e(store_path)}, generated {e(datetime.now().strftime('%Y-%m-%d %H:%M'))};"
        f" runs {e(', '.join(r[:12] for r in result.run_ids))}; {result.labelled} labelled"
        f" candidates ({result.good} good, {result.labelled - result.good} bad); target"
        f" precision {result.target_precision:g}"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}{_CSS}</style></head>\n"
        '<body data-plots-rendered="" data-plots-failed=""><main>'
        f'<h1>{e(title)}</h1><p class="meta">{meta}</p>'
        '<p class="note">Intervals and bands: bootstrap 95 %, 1,000 resamples of the labelled'
        " candidates. Reliability: the share of good labels in each of 10 bins of the score"
        " (mapped to 0..1 over its observed range, flipped when lower is better) against the"
        " bin's mean; the dashed diagonal is a perfectly calibrated probability.</p>"
        f"{''.join(sections)}</main>\n<script>{CHECK_SCRIPT}</script>\n</body></html>\n"
    )


def _figure(svg: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{caption_html}</figure>"


def _learned_section(learned: LearnedPolicy | None, held_out: OutOfFold | None, rng: Any) -> str:
    out = ["<h2>Learned policy</h2>"]
    if learned is None:
        return out[0] + '<p class="note">Not measured.</p>'
    out.append(f"<p><strong>{e(learned.verdict)}</strong></p>")
    if held_out is None:
        return "".join(out)
    rows = [
        (f"learned policy ({len(learned.metrics)} metrics)", learned.balanced_accuracy,
         learned.auroc, learned.precision),
        (f"best single metric: {learned.best_rule}", learned.best_balanced_accuracy,
         learned.best_auroc, learned.best_precision),
        ("difference (learned - single)", learned.difference, None, None),
    ]  # fmt: skip
    body = "".join(
        f"<tr><th>{e(name)}</th><td class=num>{e(_text(ba))}</td>"
        f"<td class=num>{e(_text(auc))}</td><td class=num>{e(_text(p))}</td></tr>"
        for name, ba, auc, p in rows
    )
    out.append(
        f'<p class="note">Held out: {learned.folds}-fold stratified cross-validation on'
        f" {learned.labelled} parsed labelled candidates; every choice (imputation,"
        " standardisation, coefficients, cut; the single metric, its direction and threshold)"
        " made on each training fold only. Single-metric rule per fold: "
        f"{e('; '.join(learned.fold_rules))}.</p>"
        "<table><tr><th></th><th>balanced accuracy</th><th>AUROC</th><th>precision</th></tr>"
        f"{body}</table>"
    )
    p, y = held_out.probability, held_out.y
    roc = _roc_chart("roc:learned", "learned policy: held-out ROC", p, y, learned.auroc,
                     baseline=held_out.single_score)  # fmt: skip
    precision = _precision_chart(
        "precision:learned", "learned policy: held-out precision against the cut", p, y, 1.0,
        None, "cut on predicted probability", rng,
    )  # fmt: skip
    reliability = _reliability_chart(
        "reliability:learned", "learned policy: reliability", p, y, "held-out predicted probability"
    )
    figures = [
        _figure(roc, "red: learned policy; blue: the single metric each fold chose (held-out)"),
        _figure(precision),
        _figure(reliability),
    ]
    out.append(f'<div class="plots">{"".join(figures)}</div>')
    return "".join(out)


def _metric_section(m: MetricCalibration, values: Any, y: Any, rng: Any) -> str:
    import numpy as np

    sign = 1.0 if m.higher_is_better else -1.0
    low, high = float(values.min()), float(values.max())
    mapped = (values - low) / (high - low) if high > low else np.full(len(values), 0.5)
    mapped = mapped if m.higher_is_better else 1 - mapped
    direction = ">=" if m.higher_is_better else "<="
    default = m.default.threshold if m.default else None
    recommended = (
        f"recommended {m.recommended.threshold:g}" if m.recommended else "no recommendation"
    )
    roc = _roc_chart(f"roc:{m.metric}", f"{m.metric}: ROC", sign * values, y, m.auroc)
    precision = _precision_chart(
        f"precision:{m.metric}", f"{m.metric}: precision against the threshold", values, y,
        sign, default, f"threshold ({m.metric} {direction} t)", rng,
    )  # fmt: skip
    reliability = _reliability_chart(
        f"reliability:{m.metric}", f"{m.metric}: reliability", mapped, y, "score mapped to 0..1"
    )
    figures = [_figure(roc), _figure(precision, "green: default threshold"), _figure(reliability)]
    return (
        f'<h3>{e(m.metric)}</h3><p class="note">{m.labelled} labelled, {m.good} good;'
        f" AUROC {e(_text(m.auroc))}; {e(recommended)}.</p>"
        f'<div class="plots">{"".join(figures)}</div>'
    )


def _path(points: Sequence[tuple[float, float]], cls: str, tip: str) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
    return f'<path class="{cls}" d="{d}"><title>{e(tip)}</title></path>'


def _unit_axes(xlabel: str, ylabel: str) -> tuple[_Scale, _Scale, str]:
    x, y = _Scale(0, 1, LEFT, W - RIGHT), _Scale(0, 1, H - BOTTOM, TOP)
    ticks = _ticks(0, 1)
    return x, y, _axes(x, y, ticks, ticks, xlabel, ylabel, W)


def _roc_points(score: Any, y: Any) -> tuple[Any, Any]:
    """False and true positive rates as the threshold on ``score`` loosens, from (0, 0)."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    ss, ys = score[order], y[order]
    ends = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])
    tp = np.cumsum(ys)[ends]
    fp = ends + 1 - tp
    return np.r_[0.0, fp / (len(ys) - ys.sum())], np.r_[0.0, tp / ys.sum()]


def _roc_chart(
    plot: str, title: str, score: Any, y: Any, auroc: Estimate | None, baseline: Any = None
) -> str:
    x, yy, body = _unit_axes("false positive rate", "true positive rate")
    body += _path([(x(0), yy(0)), (x(1), yy(1))], "reference", "chance")
    if baseline is not None:
        fpr, tpr = _roc_points(baseline, y)
        body += _path([(x(a), yy(b)) for a, b in zip(fpr, tpr, strict=True)],
                      "mark line baseline", "best single metric")  # fmt: skip
    fpr, tpr = _roc_points(score, y)
    body += _path([(x(a), yy(b)) for a, b in zip(fpr, tpr, strict=True)], "mark line", title)
    return _svg(plot, "calibration", f"{title}, AUROC {_text(auroc)}", body, W, H)


def _precision_chart(
    plot: str,
    title: str,
    values: Any,
    y: Any,
    sign: float,
    default: float | None,
    xlabel: str,
    rng: Any,
) -> str:
    """Precision of what passes each threshold (``sign * value >= sign * t``), and its
    bootstrap band, at up to ``MOST_POINTS`` of the thresholds that change it."""
    import numpy as np

    order = np.argsort(-sign * values, kind="stable")
    xs, ys, n = values[order], y[order], len(values)
    ends = np.flatnonzero(np.r_[xs[1:] != xs[:-1], True])
    if len(ends) > MOST_POINTS:
        ends = ends[np.unique(np.linspace(0, len(ends) - 1, MOST_POINTS).round().astype(int))]
    counts = rng.multinomial(n, np.full(n, 1 / n), size=RESAMPLES)[:, order]
    precision = np.cumsum(ys)[ends] / (ends + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.cumsum(counts * ys, axis=1)[:, ends] / np.cumsum(counts, axis=1)[:, ends]
    lows = np.array([np.percentile(c[np.isfinite(c)], 2.5) if np.isfinite(c).any() else np.nan
                     for c in boot.T])  # fmt: skip
    highs = np.array([np.percentile(c[np.isfinite(c)], 97.5) if np.isfinite(c).any() else np.nan
                      for c in boot.T])  # fmt: skip
    thresholds = xs[ends]
    low, high = float(thresholds.min()), float(thresholds.max())
    if high == low:
        low, high = low - 0.5, high + 0.5
    x, yy = _Scale(low, high, LEFT, W - RIGHT), _Scale(0, 1, H - BOTTOM, TOP)
    body = _axes(x, yy, _ticks(low, high), _ticks(0, 1), xlabel, "precision", W)
    by_x = np.argsort(thresholds, kind="stable")
    band = [i for i in by_x if np.isfinite(lows[i]) and np.isfinite(highs[i])]
    if len(band) > 1:
        outline = [(x(thresholds[i]), yy(highs[i])) for i in band]
        outline += [(x(thresholds[i]), yy(lows[i])) for i in reversed(band)]
        points = " ".join(f"{px:.1f},{py:.1f}" for px, py in outline)
        body += f'<polygon class="mark band" points="{points}"><title>95% band</title></polygon>'
    line = [(x(thresholds[i]), yy(precision[i])) for i in by_x]
    if len(line) == 1:
        line = [(line[0][0] - 2, line[0][1]), (line[0][0] + 2, line[0][1])]
    body += _path(line, "mark line", "precision")
    body += "".join(
        f'<circle class="point" cx="{x(thresholds[i]):.1f}" cy="{yy(precision[i]):.1f}" r="1.6">'
        f"<title>{e(f'at {fmt(thresholds[i])}: {ends[i] + 1} pass, precision')}"
        f" {precision[i]:.2f} [{lows[i]:.2f}, {highs[i]:.2f}]</title></circle>"
        for i in by_x
    )
    body += _threshold_line(x, yy, default)
    return _svg(plot, "calibration", title, body, W, H)


def _reliability_chart(plot: str, title: str, p: Any, y: Any, xlabel: str) -> str:
    """The share of good labels in each of ``BINS`` bins of ``p`` (in 0..1), at the bin's mean
    ``p``: on the diagonal where ``p`` is a calibrated probability."""
    import numpy as np

    x, yy, body = _unit_axes(xlabel, "share labelled good")
    body += _path([(x(0), yy(0)), (x(1), yy(1))], "reference", "perfectly calibrated")
    bins = np.minimum((p * BINS).astype(int), BINS - 1)
    points = []
    for b in range(BINS):
        members = bins == b
        if members.any():
            points.append((float(p[members].mean()), float(y[members].mean()), int(members.sum())))
    body += _path([(x(a), yy(s)) for a, s, _ in points], "mark line", "observed share good")
    body += "".join(
        f'<circle class="mark point" cx="{x(a):.1f}" cy="{yy(s):.1f}"'
        f' r="{2 + min(n, 100) ** 0.5 / 2:.1f}">'
        f"<title>{e(f'{n} candidates, mean {a:.2f}, {s:.0%} good')}</title></circle>"
        for a, s, n in points
    )
    return _svg(plot, "calibration", title, body, W, H)


def _text(figure: Estimate | None) -> str:
    return estimate_text(figure, "-")
