"""What a report is made of: one ``RunReport`` per run, with the statistics of each metric, its
threshold sweep and the ranked candidates. ``stats`` fills them; ``text``, ``charts`` and
``page`` only read them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BINS", "MetricInfo", "MetricStats", "RankedCandidate", "RunReport", "Sweep"]

#: histogram bins, terminal and HTML
BINS = 10


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
