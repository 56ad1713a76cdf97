"""How good each metric is on the user's own labelled candidates, and where its threshold should
be: AUROC, and precision, recall and balanced accuracy at the metric's default threshold and at
a recommended one, each with a bootstrap 95 % interval; and the same figures for what every
default threshold at once (``accepted_default``) and each accept policy let through.

The recommended threshold is the loosest whose precision stays at or above the target at the
interval's lower bound: a user who exports at it can say "at least P of these are good" with the
confidence the interval carries. The bootstrap resamples labelled candidates with replacement
(counts drawn from a multinomial), and one cumulative sum over the candidates in score order gives
every threshold's figures for a resample at once, so a thousand resamples over thousands of
labels take well under a second."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from groundset.core.errors import InputError
from groundset.core.intervals import (
    RESAMPLES,
    Estimate,
    auroc,
    estimate,
    resample_counts,
    stretch_for_rest,
    stretched,
    weighted_share,
    widened,
    wilson,
)
from groundset.core.queries import accepted_source
from groundset.core.store import Store

if TYPE_CHECKING:
    from groundset.core.learned_policy import LearnedPolicy

__all__ = [
    "MIN_LABELS",
    "Calibration",
    "Estimate",
    "Labels",
    "MetricCalibration",
    "Segment",
    "ThresholdFigures",
    "VerdictCalibration",
    "calibrate",
    "labelled_precision",
    "majority_labels",
]

#: fewer labelled candidates than this give intervals too wide to choose anything by
MIN_LABELS = 20


@dataclass(frozen=True)
class ThresholdFigures:
    threshold: float
    passed: int
    precision: Estimate
    recall: Estimate
    balanced_accuracy: Estimate


@dataclass(frozen=True)
class MetricCalibration:
    metric: str
    higher_is_better: bool
    labelled: int
    good: int
    auroc: Estimate
    default: ThresholdFigures | None
    recommended: ThresholdFigures | None
    #: why there is no recommendation, and what would give one
    advice: str | None = None


@dataclass(frozen=True)
class VerdictCalibration:
    """An accept policy (or every default threshold at once) against the labels: what it
    passes, and how good that is."""

    name: str
    labelled: int
    figures: ThresholdFigures


@dataclass(frozen=True)
class Segment:
    """The figures on one segment's labelled candidates (``--by``); none where it has too few
    labels, or labels of one kind only."""

    value: str
    labelled: int
    good: int
    metrics: list[MetricCalibration]
    policies: list[VerdictCalibration]


@dataclass
class Calibration:
    run_ids: list[str]
    aspect: str
    target_precision: float
    labelled: int
    good: int
    #: candidates left out because their labellers disagree evenly
    ties: int
    metrics: list[MetricCalibration] = field(default_factory=list)
    #: every default threshold at once, and each recorded accept policy
    policies: list[VerdictCalibration] = field(default_factory=list)
    #: what the segments are (``document``, ``run``, ``model`` or a field), and each one
    by: str | None = None
    segments: list[Segment] = field(default_factory=list)
    #: the learned policy against the best single metric, cross-validated (``learned_policy``)
    learned: LearnedPolicy | None = None


def labelled_precision(
    store: Store, candidate_ids: Sequence[str], aspect: str = "overall", seed: int = 0
) -> tuple[int, Estimate] | None:
    """Of ``candidate_ids``, how many are labelled, and the share of good ones among those with
    its bootstrap 95 % interval; None when none is labelled. What an export is worth."""
    import numpy as np

    labels, _ = majority_labels(store, aspect, "candidate_id", sorted(candidate_ids))
    if not labels:
        return None
    pairs = sorted((labels[c], labels.weight(c)) for c in labels)
    y, w = (np.array(column, dtype=float) for column in zip(*pairs, strict=True))
    return len(y), weighted_share(y, w, seed)


class Labels(dict[str, int]):
    """Candidate -> its label (1 good, 0 bad), with each candidate's sampling weight: how many
    candidates it stands for, relative to a uniform draw. A label the review queue drew from a
    stratum or an uncertain region carries the inverse of its chance of being shown, so figures
    over a deliberately uneven sample still estimate the whole run; other labels weigh 1."""

    def __init__(self, labels: dict[str, int], weights: dict[str, float]) -> None:
        super().__init__(labels)
        self.weights = weights

    def weight(self, candidate_id: str) -> float:
        return self.weights.get(candidate_id, 1.0)

    def part(self, members: Sequence[str]) -> Labels:
        return Labels({c: self[c] for c in members}, self.weights)


def majority_labels(
    store: Store, aspect: str, column: str, keys: Sequence[str], parsed_only: bool = False
) -> tuple[Labels, set[str]]:
    """The labels of the candidates whose ``column`` (``run_id`` or ``candidate_id``) is among
    ``keys`` (with ``parsed_only``, of those that parsed): the majority of each one's labellers'
    latest labels, weighted by how they were drawn (the mean over its labels, 1 where none
    was); and the candidates left out because their labellers split evenly."""
    parsed = " AND l.candidate_id IN (SELECT candidate_id FROM candidates WHERE parse_ok)"
    rows = store.query(
        "SELECT l.candidate_id, avg(l.value), avg(coalesce(l.weight, 1)) FROM latest_labels l"
        f" WHERE l.aspect = ? AND l.{column} IN (SELECT unnest(?)){parsed if parsed_only else ''}"
        " GROUP BY l.candidate_id",
        [aspect, list(keys)],
    ).rows
    kept = [(cid, mean, weight) for cid, mean, weight in rows if mean != 0.5]
    labels = Labels(
        {cid: int(mean > 0.5) for cid, mean, _ in kept},
        {cid: float(weight) for cid, _, weight in kept if weight != 1},
    )
    return labels, {cid for cid, mean, _ in rows if mean == 0.5}


def _scores(store: Store, run_ids: list[str], ids: list[str]) -> dict[str, dict[str, float]]:
    """metric -> candidate -> its latest score, for the labelled candidates."""
    rows = store.query(
        "SELECT validator || '.' || metric, candidate_id, value FROM latest_scores"
        # a semi-join on the ids: list_contains would scan the list once per score row
        " WHERE list_contains(?, run_id) AND candidate_id IN (SELECT unnest(?))"
        " AND value IS NOT NULL",
        [run_ids, ids],
    ).rows
    found: dict[str, dict[str, float]] = {}
    for metric, cid, value in rows:
        found.setdefault(metric, {})[cid] = float(value)
    return found


def calibrate(
    store: Store,
    run_ids: Sequence[str],
    aspect: str = "overall",
    target_precision: float = 0.9,
    resamples: int = RESAMPLES,
    seed: int = 0,
    by: str | None = None,
) -> Calibration:
    """Every metric of the runs, measured on their labelled candidates; with ``by``, on each
    segment's too."""
    import numpy as np

    runs = list(run_ids)
    labels, tied = majority_labels(store, aspect, "run_id", runs)
    ties = len(tied)
    good = sum(labels.values())
    if len(labels) < MIN_LABELS or good in (0, len(labels)):
        have = f"{len(labels)} labelled candidates ({good} good, {len(labels) - good} bad)"
        raise InputError(
            f"calibrate needs at least {MIN_LABELS} labelled candidates of both kinds for"
            f" aspect {aspect!r}; the runs have {have}: `groundset labels import` adds more"
        )
    result = Calibration(runs, aspect, target_precision, len(labels), good, ties)
    declared = {
        f"{v}.{m}": (bool(hib), thr)
        for v, m, hib, thr in store.query(
            "SELECT validator, metric, higher_is_better, default_threshold FROM metrics"
        ).rows
    }
    rng = np.random.default_rng(seed)
    scores = _scores(store, runs, sorted(labels))
    verdicts = _verdicts(store, runs)
    scored, candidates = _population(store, runs)
    stretches = {m: stretch_for_rest(len(v), scored.get(m)) for m, v in scores.items()}
    measure = _Measure(scores, verdicts, declared, target_precision, rng, resamples, stretches,
                       stretch_for_rest(len(labels), candidates))  # fmt: skip
    result.metrics, result.policies = measure(labels)
    if by is not None:
        result.by = by
        for value, members in _segments(store, labels, by).items():
            part = labels.part(members)
            good_here = sum(part.values())
            enough = len(part) >= MIN_LABELS and 0 < good_here < len(part)
            metrics, policies = measure(part) if enough else ([], [])
            result.segments.append(Segment(value, len(part), good_here, metrics, policies))
    return result


@dataclass
class _Measure:
    """The metrics and verdicts of the runs, measured on a set of labelled candidates."""

    scores: dict[str, dict[str, float]]
    verdicts: list[tuple[str, set[str]]]
    declared: dict[str, tuple[bool, float | None]]
    target: float
    rng: Any
    resamples: int
    #: per metric, and for the verdicts: how much wider a precision's interval is for the
    #: candidates nobody labelled than for the labelled sample (``stretch_for_rest``)
    stretches: dict[str, float]
    verdict_stretch: float

    def __call__(self, labels: Labels) -> tuple[list[MetricCalibration], list[VerdictCalibration]]:
        import numpy as np

        metrics = []
        for metric, all_values in sorted(self.scores.items()):
            values = {c: v for c, v in all_values.items() if c in labels}
            higher, default = self.declared.get(metric, (True, None))
            # resampled in score order, not id order: ids hash the run's identity (its file's
            # path, say), and the same labels and scores must give the same intervals anywhere
            ids = sorted(values, key=lambda c: (values[c], labels[c], c))
            y = np.array([labels[c] for c in ids], dtype=float)
            x = np.array([values[c] for c in ids], dtype=float)
            if len(ids) < MIN_LABELS or y.sum() in (0, len(ids)):
                continue  # too few of this metric's candidates are labelled to say anything
            w = self._weights(labels, ids)
            counts, stretch = self._counts(w), self.stretches.get(metric, 1.0)
            metrics.append(_metric(metric, higher, default, x, y, w, counts, self.target, stretch))
        policies = []
        for name, passing in self.verdicts:
            ids = _passing_first(passing, labels)
            w = self._weights(labels, ids)
            counts = self._counts(w)
            policies.append(_verdict(name, passing, labels, ids, w, counts, self.verdict_stretch))
        return metrics, policies

    @staticmethod
    def _weights(labels: Labels, ids: list[str]) -> Any:
        import numpy as np

        return np.array([labels.weight(c) for c in ids], dtype=float)

    def _counts(self, weights: Any) -> Any:
        """Each resample's weight on each candidate: how often it was drawn, times its
        sampling weight."""
        return resample_counts(self.rng, len(weights), self.resamples) * weights


#: ``--by`` segments other than a parsed field, and the SQL naming each candidate's segment
_SEGMENTS = {
    "document": "coalesce(d.title, c.document_id)",
    "run": "coalesce(r.name, c.run_id)",
    "model": "c.model_id",
}


def _segments(store: Store, labels: dict[str, int], by: str) -> dict[str, list[str]]:
    """Segment value -> its labelled candidates: a document, run or model, or the value of a
    parsed field (``--by question_type``)."""
    expression, params = (_SEGMENTS[by], []) if by in _SEGMENTS else ("c.fields->>?", [by])
    rows = store.query(
        f"SELECT c.candidate_id, {expression} FROM candidates c"
        " LEFT JOIN documents d USING (document_id) LEFT JOIN runs r USING (run_id)"
        " WHERE c.candidate_id IN (SELECT unnest(?))",
        [*params, sorted(labels)],
    ).rows
    if by not in _SEGMENTS and all(value is None for _, value in rows):
        raise InputError(
            f"--by {by!r}: no labelled candidate has that field; use document, run, model or a"
            " field the strategy parses (question, answer, ...)"
        )
    segments: dict[str, list[str]] = {}
    for cid, value in sorted(rows, key=lambda row: (str(row[1]), row[0])):
        segments.setdefault("(none)" if value is None else str(value), []).append(cid)
    return segments


def _population(store: Store, run_ids: list[str]) -> tuple[dict[str, int], int]:
    """How many candidates of the runs each metric scored, and how many candidates the runs
    have: what the labelled ones are a sample of."""
    scored = store.query(
        "SELECT validator || '.' || metric, count(*) FROM latest_scores"
        " WHERE run_id IN (SELECT unnest(?)) AND value IS NOT NULL GROUP BY 1",
        [run_ids],
    ).rows
    (candidates,) = store.query(
        "SELECT count(*) FROM candidates WHERE run_id IN (SELECT unnest(?))", [run_ids]
    ).rows[0]
    return {metric: int(n) for metric, n in scored}, int(candidates)


def _verdicts(store: Store, run_ids: list[str]) -> list[tuple[str, set[str]]]:
    """(name, accepted candidate ids): every default threshold (``accepted_default``), then
    each accept policy ``groundset accept`` recorded for the runs. Only labelled candidates are
    asked about, the only ones a verdict is measured on: at a million candidates, listing every
    accepted one took seconds."""
    policies = store.query(
        "SELECT DISTINCT policy FROM accepted WHERE list_contains(?, run_id) ORDER BY 1",
        [run_ids],
    ).rows
    found = []
    named = [("all default thresholds", None)] + [(f"policy {p}", p) for (p,) in policies]
    for name, policy in named:
        sql, params = accepted_source(policy)
        ids = store.query(
            f"SELECT candidate_id FROM ({sql}) WHERE list_contains(?, run_id) AND candidate_id"
            " IN (SELECT candidate_id FROM labels WHERE list_contains(?, run_id))",
            [*params, run_ids, run_ids],
        ).rows
        found.append((name, {cid for (cid,) in ids}))
    return found


def _passing_first(passing: set[str], labels: Labels) -> list[str]:
    return sorted(labels, key=lambda c: (c not in passing, labels[c], c))


def _verdict(
    name: str,
    passing: set[str],
    labels: Labels,
    ids: list[str],
    w: Any,
    counts: Any,
    stretch: float = 1.0,
) -> VerdictCalibration:
    """A yes/no verdict measured like a threshold: ``ids`` puts what it passes first."""
    import numpy as np

    x = np.array([float(c in passing) for c in ids])
    y = np.array([labels[c] for c in ids], dtype=float)
    ends = np.flatnonzero(np.r_[x[1:] != x[:-1], True])
    figures = _Sweep(x, y, w, counts, ends, stretch).at_prefix(int(x.sum()), 1.0)
    return VerdictCalibration(name, len(ids), figures)


def _metric(
    metric: str,
    higher: bool,
    default: float | None,
    x: Any,
    y: Any,
    w: Any,
    counts: Any,
    target: float,
    stretch: float = 1.0,
) -> MetricCalibration:
    import numpy as np

    sign = 1.0 if higher else -1.0
    order = np.argsort(-sign * x, kind="stable")  # the most trusted first
    xs, ys, ws, cs = x[order], y[order], w[order], counts[:, order]
    # a threshold passes a prefix of this order: the end of each run of equal values
    ends = np.flatnonzero(np.r_[xs[1:] != xs[:-1], True])
    sweep = _Sweep(xs, ys, ws, cs, ends, stretch)
    default_figures = None
    if default is not None:
        passing = int(np.sum(sign * x >= sign * default))
        default_figures = sweep.at_prefix(passing, float(default))
    recommended, advice = sweep.recommend(target)
    return MetricCalibration(
        metric, higher, len(y), int(y.sum()), auroc(sign * x, y, w, counts),
        default_figures, recommended, advice,
    )  # fmt: skip


class _Sweep:
    """Cumulative (weighted) true positives and passes along the score order, for the sample and
    for every resample: a threshold's figures are one column of these. A precision's interval
    is for the candidates nobody labelled: ``stretch`` widens the sample's."""

    def __init__(self, xs: Any, ys: Any, ws: Any, cs: Any, ends: Any, stretch: float = 1.0) -> None:
        import numpy as np

        self.xs, self.ends, self.n, self.stretch = xs, ends, len(ys), stretch
        self.tp = np.cumsum(ws * ys)
        self.passed = np.cumsum(ws)
        self.positives = (ws * ys).sum()
        self.total = ws.sum()
        self.boot_tp = np.cumsum(cs * ys, axis=1)
        self.boot_passed = np.cumsum(cs, axis=1)
        self.boot_positives = self.boot_tp[:, -1]
        self.boot_total = cs.sum(axis=1)

    def at_prefix(self, passing: int, threshold: float) -> ThresholdFigures:
        """Figures for the threshold that passes the first ``passing`` candidates."""
        import numpy as np

        if passing == 0:
            none = Estimate(None, None, None)
            ba = estimate(0.5, np.full(len(self.boot_total), 0.5))
            return ThresholdFigures(threshold, 0, none, Estimate(0.0, 0.0, 0.0), ba)
        i = passing - 1
        tp, passed = self.tp[i], self.passed[i]
        negatives = self.total - self.positives
        bt, bp = self.boot_tp[:, i], self.boot_passed[:, i]
        bneg = self.boot_total - self.boot_positives
        with np.errstate(divide="ignore", invalid="ignore"):
            sample = widened(estimate(tp / passed, bt / bp), passing * tp / passed, passing)
            precision = stretched(sample, self.stretch)
            tpr, btpr = tp / self.positives, bt / self.boot_positives
            tnr, btnr = (negatives - (passed - tp)) / negatives, (bneg - (bp - bt)) / bneg
            recall = estimate(tpr, btpr)
            balanced = estimate((tpr + tnr) / 2, (btpr + btnr) / 2)
        return ThresholdFigures(threshold, passing, precision, recall, balanced)

    def recommend(self, target: float) -> tuple[ThresholdFigures | None, str | None]:
        """The loosest threshold whose precision's lower bound is at least ``target``, and at
        every stricter threshold down to the first that reaches it. A later spike, after the
        bound has fallen below the target, is noise that scanning many thresholds turns up:
        taking it broke the promise on held-out labels half the time
        (``bench/calibration_coverage.py``)."""
        import numpy as np

        with np.errstate(divide="ignore", invalid="ignore"):
            lows = np.nanpercentile(self.boot_tp[:, self.ends] / self.boot_passed[:, self.ends],
                                    2.5, axis=0)  # fmt: skip
            # never above the Wilson bound: a few passes, all good, must not look certain
            count = self.ends + 1
            share = self.tp[self.ends] / self.passed[self.ends]
            lows = np.minimum(lows, wilson(share * count, count)[0])
            lows = share - (share - lows) * self.stretch
        meeting = np.flatnonzero(lows >= target)
        if len(meeting):
            run = meeting[: int(np.argmax(np.diff(np.r_[meeting, -1]) != 1)) + 1]
            end = int(self.ends[run[-1]])
            return self.at_prefix(end + 1, float(self.xs[end])), None
        return None, self._advice(target)

    def _advice(self, target: float) -> str:
        """Why no threshold qualifies, and roughly how many labels would let one."""
        import numpy as np

        points = self.tp[self.ends] / self.passed[self.ends]
        reaching = np.flatnonzero(points >= target)
        best = int(reaching[-1]) if len(reaching) else int(np.argmax(points))  # the loosest
        point = float(points[best])
        if point < target:
            return (
                f"no threshold reaches precision {target:g} on these labels (the best is"
                f" {point:.2f}): more labels will not change that much"
            )
        figures = self.at_prefix(int(self.ends[best]) + 1, float(self.xs[self.ends[best]]))
        low = figures.precision.low if figures.precision.low is not None else 0.0
        margin, half = point - target, point - low
        needed = int(np.ceil(self.n * (half / margin) ** 2)) if margin > 0 else None
        if needed is None or needed > 20 * self.n:  # the precision there barely clears it
            more = f"many more labels (over {20 * self.n})"
        else:
            more = f"about {needed} labelled candidates"
        return (
            f"precision {point:.2f} at {figures.threshold:g}, but its interval reaches down to"
            f" {low:.2f}: {more} would narrow it enough to recommend a threshold for {target:g}"
        )
