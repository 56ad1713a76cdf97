"""The evaluation's output: plain or Markdown tables of every metric and of each validator's
speed, and the JSON file with every item's scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eval_runs import ValidatorRun
from eval_set import KIND_COLUMNS, KINDS, SPLITS, Item
from eval_stats import MetricResult


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def fmt_threshold(value: float | None, higher_is_better: bool) -> str:
    if value is None:
        return "-"
    return f"{'>=' if higher_is_better else '<='}{value:.4g}"


METRIC_HEADER = (
    "metric",
    "AUROC dev",
    "AUROC test",
    "dev thr",
    "BA test",
    "default",
    "BA test@def",
    *(f"{KIND_COLUMNS[k]}" for k in KINDS),
)


def metric_row(result: MetricResult) -> list[str]:
    rates = result.pass_rates.get("test", {})
    name = result.name
    coverage = min(result.coverage.values())
    if coverage == 0.0:
        name += " (not scored)"
    elif coverage < 1.0:
        name += f" (scored {coverage:.0%})"
    return [
        name,
        fmt(result.auroc["dev"]),
        fmt(result.auroc["test"]),
        fmt_threshold(result.dev_threshold, result.higher_is_better),
        fmt(result.balanced_accuracy_at_dev_threshold["test"]),
        fmt_threshold(result.default_threshold, result.higher_is_better),
        fmt(result.balanced_accuracy_at_default["test"]),
        *(fmt(rates.get(kind), 2) for kind in KINDS),
    ]


TIMING_HEADER = ("validator", "candidates", "load s", "score s", "candidates/s")


def timing_row(validator_id: str, run: ValidatorRun) -> list[str]:
    return [
        validator_id,
        str(len(run.scores)),
        fmt(run.load_s, 2),
        fmt(run.score_s, 2),
        f"{run.candidates_per_s:.1f}",
    ]


def plain_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = f"{row[0]:<{widths[0]}}"
        return "  ".join([first, *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True))])

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    align = "|" + "|".join([":---", *("---:" for _ in header[1:])]) + "|"
    return "\n".join([line(header), align, *map(line, rows)])


def report(
    runs: dict[str, ValidatorRun], results: Sequence[MetricResult], markdown: bool, counts: str
) -> str:
    table = markdown_table if markdown else plain_table
    note = (
        "AUROC and balanced accuracy (BA) by the metric's declared direction; 'dev thr' maximises "
        "BA on dev; BA test uses it on test; kind columns: share of test answers of that kind "
        "passing the dev threshold (want high for correct/paraph, low for the rest)."
    )
    parts = [
        counts,
        table(METRIC_HEADER, [metric_row(r) for r in results]),
        note,
        table(TIMING_HEADER, [timing_row(vid, run) for vid, run in runs.items()]),
    ]
    return "\n\n".join(parts)


def set_counts(items: Sequence[Item]) -> str:
    parts = []
    for split in SPLITS:
        chosen = [item for item in items if item.split == split]
        positives = sum(item.label for item in chosen)
        parts.append(f"{split}: {len(chosen)} items ({positives} grounded)")
    return "Grounding evaluation set: " + ", ".join(parts)


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def results_json(
    runs: dict[str, ValidatorRun], results: Sequence[MetricResult], items: Sequence[Item]
) -> dict[str, Any]:
    metrics = []
    for result in results:
        row = dict(result.__dict__)
        row["dev_threshold"] = _json_number(result.dev_threshold)
        metrics.append(row)
    scores: dict[str, dict[str, float | None]] = {item.id: {} for item in items}
    for validator_id, run in runs.items():
        for item, result in zip(items, run.scores, strict=True):
            for metric, value in result.items():
                if metric != "details":  # what a validator says beyond numbers
                    scores[item.id][f"{validator_id}.{metric}"] = _json_number(float(value))
    return {
        "items": len(items),
        "validators": {
            vid: {
                "version": run.validator.version,
                "options": run.options,
                "load_s": run.load_s,
                "score_s": run.score_s,
                "candidates_per_s": _json_number(run.candidates_per_s),
            }
            for vid, run in runs.items()
        },
        "metrics": metrics,
        "scores": scores,
    }
