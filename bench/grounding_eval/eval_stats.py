"""How well a metric separates grounded from ungrounded answers: AUROC, the dev-tuned
(Youden) threshold and balanced accuracy, and pass rates per kind of answer."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eval_runs import ValidatorRun
from eval_set import KINDS, SPLITS, Item

from groundset.core import Metric


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
    # "details" is the evidence a validator records beside its metrics, not a metric
    undeclared = sorted({name for result in run.scores for name in result} - declared - {"details"})
    if undeclared:
        print(f"warning: {validator_id} returned undeclared {undeclared}", file=sys.stderr)
    results = []
    for metric in run.validator.metrics:
        values = metric_values(run, metric.name)
        results.append(evaluate_metric(f"{validator_id}.{metric.name}", metric, values, items))
    return results
