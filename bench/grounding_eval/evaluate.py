"""Measure how well groundset validators separate grounded answers from ungrounded ones.

Scores every item of the grounding evaluation set (``documents.jsonl`` and ``items.jsonl`` next to
this script) with the requested validators, then reports for every metric they declare:

- AUROC on the dev and the test split (rank-based, ties count half; oriented by the metric's
  ``higher_is_better``),
- the threshold that maximises balanced accuracy on dev (Youden's J) and the balanced accuracy that
  threshold gets on test, so no number on test was tuned on test,
- balanced accuracy on test at the metric's declared ``default_threshold``, when it has one,
- the share of each answer kind that passes the dev threshold on test (where a metric fails: a
  lexical metric passes most ``fact_changed`` answers),
- scoring speed per validator (candidates per second; model loading, with a first warm-up call
  on one candidate, is timed apart).

A metric a validator leaves out for a candidate counts as failing that candidate.

    python bench/grounding_eval/evaluate.py --validators overlap,format
    python bench/grounding_eval/evaluate.py --validators overlap,grounding_nli \\
        --set grounding_nli.batch_size=8 --out results.json --markdown
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundset.core import Candidate, Document, GroundsetError, Metric, PluginError, Validator
from groundset.core.manager import load_plugins
from groundset.core.options import build_options

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test")
KINDS = (
    "correct",
    "partial_paraphrase",
    "fact_changed",
    "unsupported_addition",
    "other_document",
    "unrelated",
)
#: Short column names of the kinds in the tables.
KIND_COLUMNS = {
    "correct": "correct",
    "partial_paraphrase": "paraph",
    "fact_changed": "fact",
    "unsupported_addition": "addit",
    "other_document": "otherdoc",
    "unrelated": "unrel",
}
RUN_ID = "grounding-eval"


@dataclass(frozen=True)
class Item:
    """One question/answer pair to score, with its gold label (1 = grounded and correct)."""

    id: str
    document_id: str
    question: str
    answer: str
    kind: str
    label: int
    split: str


@dataclass
class ValidatorRun:
    """A validator's scores (one dict per item, in item order) and how long it took."""

    validator: Validator
    options: dict[str, Any]
    scores: list[dict[str, float]]
    load_s: float
    score_s: float

    @property
    def candidates_per_s(self) -> float:
        return len(self.scores) / self.score_s if self.score_s > 0 else math.inf


@dataclass
class MetricResult:
    """Everything reported for one metric."""

    name: str
    higher_is_better: bool
    default_threshold: float | None
    coverage: dict[str, float]
    auroc: dict[str, float | None]
    dev_threshold: float | None
    balanced_accuracy_at_dev_threshold: dict[str, float | None]
    balanced_accuracy_at_default: dict[str, float | None]
    pass_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    pass_rates_at_default: dict[str, dict[str, float]] = field(default_factory=dict)


# --- the data set ---------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_set(folder: Path) -> tuple[dict[str, Document], list[Item]]:
    """The documents (by set id) and the items of the evaluation set."""
    documents = {
        row["id"]: Document(text=row["text"], title=row.get("title"), source=row.get("source"))
        for row in read_jsonl(folder / "documents.jsonl")
    }
    items = [
        Item(
            id=row["id"],
            document_id=row["document_id"],
            question=row["question"],
            answer=row["answer"],
            kind=row["kind"],
            label=int(row["label"]),
            split=row["split"],
        )
        for row in read_jsonl(folder / "items.jsonl")
    ]
    unknown = sorted({item.document_id for item in items} - set(documents))
    if unknown:
        raise SystemExit(f"items name unknown documents: {', '.join(unknown[:5])}")
    return documents, items


def build_candidates(items: Sequence[Item], documents: dict[str, Document]) -> list[Candidate]:
    """Candidates as a run would record them: fields question and answer, and the document."""
    return [
        Candidate(
            candidate_id=item.id,
            run_id=RUN_ID,
            work_id=item.id,
            document=documents[item.document_id],
            fields={"question": item.question, "answer": item.answer},
            raw_output=f"[question]: {item.question}\n[answer]: {item.answer}",
        )
        for item in items
    ]


# --- validators -----------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A TOML value (number, boolean, quoted string, array), else the text as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """``--set VALIDATOR.OPTION=VALUE``, repeatable, for ``parse_settings``."""
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="VALIDATOR.OPTION=VALUE",
        help="a validator option (TOML value; repeatable)",
    )


def parse_settings(pairs: Sequence[str], validator_ids: Sequence[str]) -> dict[str, dict]:
    """``VALIDATOR.OPTION=VALUE`` strings as options per validator."""
    settings: dict[str, dict[str, Any]] = {vid: {} for vid in validator_ids}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        validator_id, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise SystemExit(f"--set {pair!r}: expected VALIDATOR.OPTION=VALUE")
        if validator_id not in settings:
            raise SystemExit(f"--set {pair!r}: {validator_id!r} is not in --validators")
        settings[validator_id][option] = parse_value(value.strip())
    return settings


def build_validator(validator_id: str, options: dict[str, Any], entry_points: bool) -> Validator:
    cls = load_plugins(entry_points=entry_points).registry.get("validator", validator_id).cls
    return cls(build_options(cls.Options, options, f"validators.{validator_id}"))


def _call_if_present(validator: Validator, method: str) -> float:
    """Call an optional lifecycle method (``load``, ``close``); seconds it took."""
    start = time.perf_counter()
    function: Callable[[], object] | None = getattr(validator, method, None)
    if callable(function):
        function()
    return time.perf_counter() - start


def warm_up(validator: Validator, candidates: Sequence[Candidate]) -> float:
    """Score one candidate untimed by the throughput: validators that load their model on the
    first ``score()`` call would otherwise count loading as scoring. Seconds it took."""
    start = time.perf_counter()
    if candidates:
        validator.score(candidates[:1])
    return time.perf_counter() - start


def score_in_batches(
    validator: Validator, candidates: Sequence[Candidate], batch_size: int, progress: bool
) -> list[dict[str, float]]:
    scores: list[dict[str, float]] = []
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        results = validator.score(batch)
        if len(results) != len(batch):
            raise PluginError(f"returned {len(results)} results for {len(batch)} candidates")
        scores.extend(results)
        if progress:
            done = start + len(batch)
            print(f"  {validator.validator_id}: {done}/{len(candidates)}", file=sys.stderr)
    return scores


def run_validator(
    validator_id: str,
    options: dict[str, Any],
    candidates: Sequence[Candidate],
    batch_size: int,
    entry_points: bool,
    progress: bool,
) -> ValidatorRun:
    validator = build_validator(validator_id, options, entry_points)
    load_s = _call_if_present(validator, "load") + warm_up(validator, candidates)
    start = time.perf_counter()
    try:
        scores = score_in_batches(validator, candidates, batch_size, progress)
    finally:
        score_s = time.perf_counter() - start
        _call_if_present(validator, "close")
    return ValidatorRun(validator, options, scores, load_s, score_s)


# --- statistics -----------------------------------------------------------------------------


def oriented(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Values turned so that higher is better; a missing value (NaN) becomes the worst score."""
    sign = 1.0 if higher_is_better else -1.0
    return [-math.inf if math.isnan(v) else sign * v for v in values]


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Probability that a random positive outscores a random negative, ties counting half
    (Mann-Whitney U from average ranks). None when a class is missing."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1  # average 1-based rank of the tie
        start = end + 1
    rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def balanced_accuracy(passed: Sequence[bool], labels: Sequence[int]) -> float | None:
    """Mean of the pass rate of positives and the fail rate of negatives."""
    positives = [p for p, label in zip(passed, labels, strict=True) if label == 1]
    negatives = [p for p, label in zip(passed, labels, strict=True) if label == 0]
    if not positives or not negatives:
        return None
    return (
        sum(positives) / len(positives) + (len(negatives) - sum(negatives)) / len(negatives)
    ) / 2


def candidate_thresholds(scores: Sequence[float]) -> list[float]:
    """The lowest finite score (everything present passes) and the midpoints between
    consecutive distinct finite scores."""
    distinct = sorted({s for s in scores if math.isfinite(s)})
    if not distinct:
        return []
    midpoints = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    return [distinct[0], *midpoints]


def youden_threshold(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """The oriented threshold (pass when score >= it) with the best balanced accuracy; among
    equally good ones, the middle one."""
    best: list[float] = []
    best_value = -1.0
    for threshold in candidate_thresholds(scores):
        value = balanced_accuracy([s >= threshold for s in scores], labels)
        if value is None:
            return None
        if value > best_value + 1e-12:
            best, best_value = [threshold], value
        elif abs(value - best_value) <= 1e-12:
            best.append(threshold)
    return best[len(best) // 2] if best else None


def passes(value: float, threshold: float, higher_is_better: bool) -> bool:
    """The default accept rule: >= for higher-is-better metrics, <= otherwise; NaN fails."""
    if math.isnan(value):
        return False
    return value >= threshold if higher_is_better else value <= threshold


# --- evaluation -----------------------------------------------------------------------------


def metric_values(run: ValidatorRun, metric: str) -> list[float]:
    return [float(result.get(metric, math.nan)) for result in run.scores]


def pass_rates_by_kind(
    items: Sequence[Item], passed: Sequence[bool], split: str
) -> dict[str, float]:
    """Share of each kind's answers in ``split`` that pass."""
    rates = {}
    for kind in KINDS:
        chosen = [
            p
            for item, p in zip(items, passed, strict=True)
            if (item.split, item.kind) == (split, kind)
        ]
        if chosen:
            rates[kind] = sum(chosen) / len(chosen)
    return rates


def _per_split(items: Sequence[Item], values: Sequence[Any], split: str) -> list[Any]:
    return [v for item, v in zip(items, values, strict=True) if item.split == split]


def evaluate_metric(
    name: str, metric: Metric, values: Sequence[float], items: Sequence[Item]
) -> MetricResult:
    """AUROC, dev-tuned and default thresholds, and pass rates by kind, for one metric."""
    labels = [item.label for item in items]
    scores = oriented(values, metric.higher_is_better)
    split_scores = {s: _per_split(items, scores, s) for s in SPLITS}
    split_labels = {s: _per_split(items, labels, s) for s in SPLITS}
    coverage = {
        s: sum(not math.isnan(v) for v in _per_split(items, values, s))
        / max(1, len(split_labels[s]))
        for s in SPLITS
    }
    result = MetricResult(
        name=name,
        higher_is_better=metric.higher_is_better,
        default_threshold=metric.default_threshold,
        coverage=coverage,
        auroc={s: auroc(split_scores[s], split_labels[s]) if coverage[s] else None for s in SPLITS},
        dev_threshold=None,
        balanced_accuracy_at_dev_threshold=dict.fromkeys(SPLITS),
        balanced_accuracy_at_default=dict.fromkeys(SPLITS),
    )
    tuned = youden_threshold(split_scores["dev"], split_labels["dev"])
    if tuned is not None:
        threshold = tuned if metric.higher_is_better else -tuned
        result.dev_threshold = threshold
        passed = [passes(v, threshold, metric.higher_is_better) for v in values]
        for s in SPLITS:
            split_passed = _per_split(items, passed, s)
            result.balanced_accuracy_at_dev_threshold[s] = balanced_accuracy(
                split_passed, split_labels[s]
            )
            result.pass_rates[s] = pass_rates_by_kind(items, passed, s)
    if metric.default_threshold is not None:
        default = [passes(v, metric.default_threshold, metric.higher_is_better) for v in values]
        for s in SPLITS:
            result.balanced_accuracy_at_default[s] = balanced_accuracy(
                _per_split(items, default, s), split_labels[s]
            )
            result.pass_rates_at_default[s] = pass_rates_by_kind(items, default, s)
    return result


def evaluate_run(validator_id: str, run: ValidatorRun, items: Sequence[Item]) -> list[MetricResult]:
    declared = {metric.name for metric in run.validator.metrics}
    undeclared = sorted({name for result in run.scores for name in result} - declared)
    if undeclared:
        print(f"warning: {validator_id} returned undeclared {undeclared}", file=sys.stderr)
    results = []
    for metric in run.validator.metrics:
        values = metric_values(run, metric.name)
        results.append(evaluate_metric(f"{validator_id}.{metric.name}", metric, values, items))
    return results


# --- reporting ------------------------------------------------------------------------------


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


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Score the grounding evaluation set with validators and report how well "
        "each metric separates grounded from ungrounded answers."
    )
    parser.add_argument(
        "--validators", default="overlap,format", help="comma-separated validator ids"
    )
    add_settings_option(parser)
    parser.add_argument("--out", type=Path, help="write metrics and per-item scores as JSON")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--batch-size", type=int, default=32, help="candidates per score() call")
    parser.add_argument("--data", type=Path, default=HERE, help="folder with the set's files")
    parser.add_argument(
        "--entry-points", action="store_true", help="also load installed third-party plugins"
    )
    parser.add_argument("--progress", action="store_true", help="print a line per batch")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    validator_ids = [v.strip() for v in args.validators.split(",") if v.strip()]
    settings = parse_settings(args.settings, validator_ids)
    documents, items = load_set(args.data)
    candidates = build_candidates(items, documents)
    runs: dict[str, ValidatorRun] = {}
    results: list[MetricResult] = []
    failed = []
    for validator_id in validator_ids:
        print(f"scoring {len(candidates)} candidates with {validator_id} ...", file=sys.stderr)
        try:
            run = run_validator(
                validator_id,
                settings[validator_id],
                candidates,
                args.batch_size,
                args.entry_points,
                args.progress,
            )
        except GroundsetError as error:  # unknown validator, bad option, missing model
            print(f"error: {validator_id}: {error}", file=sys.stderr)
            failed.append(validator_id)
            continue
        runs[validator_id] = run
        results.extend(evaluate_run(validator_id, run, items))
    if not runs:
        return 2
    print(report(runs, results, args.markdown, set_counts(items)))
    if args.out:
        args.out.write_text(json.dumps(results_json(runs, results, items), indent=1) + "\n")
        print(f"\nwrote {args.out}", file=sys.stderr)
    if failed:
        print(f"error: not evaluated: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
