"""A learned accept policy: a regularised logistic regression over every metric of the runs, fit
to people's labels, and kept only where it beats the best single metric on candidates it was not
fit on.

Why cross-validation only: a model scored on the labels it was fit to looks better than it is,
and the question ("does this beat my best threshold?") is about candidates it has not seen. So
every figure comes from stratified k-fold out-of-fold predictions, and everything a fold chooses
(the imputed medians, the standardisation, the coefficients and the cut; for the baseline, which
metric, which direction and which threshold) is chosen on that fold's training part alone. The
comparison is paired: the same candidates, resampled together, give the difference in balanced
accuracy with a bootstrap 95 % interval, and the policy is kept only when all of that interval
lies above zero.

A kept policy is fit once more on every labelled candidate and recorded as an accept policy of
kind ``logistic`` (its definition in ``policies``), evaluated in SQL over ``candidate_scores``:
a candidate passes when it parsed and intercept + sum(coefficient * (value - mean) / scale)
reaches the logit of the cut. A missing value counts as that metric's median on the labelled
candidates, as it did at fit time, so a run that lacks a validator is still judged, on the
metrics it has. Each label weighs what the review queue's draw made it stand for (its sampling
weight), in the fit, in the choice of cuts and in the held-out figures."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core.analysis import PolicyOutcome, record_verdicts
from groundset.core.calibration import majority_labels
from groundset.core.errors import ConfigError
from groundset.core.intervals import Estimate, auroc, estimate, resample_counts
from groundset.core.records import content_hash
from groundset.core.rows import groundset_version
from groundset.core.store import Store, quote_identifier

__all__ = [
    "FOLDS",
    "LabelledSet",
    "LearnedPolicy",
    "LogisticPolicy",
    "OutOfFold",
    "apply_learned",
    "best_cut",
    "labelled_set",
    "learn_policy",
    "recorded_learned",
]

#: folds of the cross-validation (fewer when the rarer label has fewer candidates)
FOLDS = 5
#: the inverse of the L2 penalty (scikit-learn's default): on standardised metrics it keeps a
#: few dozen labels from pushing the coefficients to extremes
C = 1.0


@dataclass(frozen=True)
class LabelledSet:
    """The parsed labelled candidates of the runs: their labels and every metric's value (NaN
    where a candidate has none), one column per metric in name order."""

    ids: list[str]
    y: Any
    metrics: list[str]
    x: Any
    higher: list[bool]
    #: each label's sampling weight (``calibration.Labels``): 1 unless the review queue drew it
    w: Any = None


def labelled_set(store: Store, run_ids: Sequence[str], aspect: str) -> LabelledSet:
    """A candidate's label is the majority of its labellers' latest labels; even splits and
    candidates that did not parse (they have no scores to learn from) are left out."""
    import numpy as np

    runs = list(run_ids)
    labels, _ = majority_labels(store, aspect, "run_id", runs, parsed_only=True)
    ids = sorted(labels)
    scores = store.query(
        "SELECT validator || '.' || metric, candidate_id, value FROM latest_scores"
        " WHERE list_contains(?, run_id) AND candidate_id IN (SELECT unnest(?))"
        " AND value IS NOT NULL",
        [runs, ids],
    ).rows
    metrics = sorted({m for m, _, _ in scores})
    column = {m: j for j, m in enumerate(metrics)}
    row = {cid: i for i, cid in enumerate(ids)}
    x = np.full((len(ids), len(metrics)), np.nan)
    for metric, cid, value in scores:
        x[row[cid], column[metric]] = float(value)
    declared = {
        f"{v}.{m}": bool(h)
        for v, m, h in store.query("SELECT validator, metric, higher_is_better FROM metrics").rows
    }
    y = np.array([labels[c] for c in ids], dtype=float)
    # in score order, not id order: ids hash the run's identity (its file's path, say), and the
    # same labels and scores must give the same folds and figures anywhere
    order = sorted(
        range(len(ids)),
        key=lambda i: ([(math.isnan(v), 0.0 if math.isnan(v) else v) for v in x[i]], y[i], ids[i]),
    )
    return LabelledSet(
        [ids[i] for i in order],
        y[order],
        metrics,
        x[order],
        [declared.get(m, True) for m in metrics],
        np.array([labels.weight(ids[i]) for i in order], dtype=float),
    )


@dataclass(frozen=True)
class LearnedPolicy:
    """The learned policy's cross-validated figures against the best single metric, and its
    definition where it is kept. ``verdict`` says in one line whether it is kept, and why."""

    name: str
    kept: bool
    verdict: str
    labelled: int = 0
    good: int = 0
    folds: int = 0
    metrics: list[str] = field(default_factory=list)
    #: metric -> labelled candidates without a value for it (given the training median)
    imputed: dict[str, int] = field(default_factory=dict)
    balanced_accuracy: Estimate | None = None
    auroc: Estimate | None = None
    precision: Estimate | None = None
    #: the single metric and threshold chosen the same way on every labelled candidate
    best_metric: str | None = None
    best_rule: str | None = None
    best_balanced_accuracy: Estimate | None = None
    best_auroc: Estimate | None = None
    best_precision: Estimate | None = None
    #: the single-metric rule each fold chose on its training part
    fold_rules: list[str] = field(default_factory=list)
    #: learned minus best single metric, in held-out balanced accuracy, paired
    difference: Estimate | None = None
    version: str | None = None
    definition: dict[str, Any] | None = None


@dataclass(frozen=True)
class OutOfFold:
    """Held-out predictions, for the curves of ``calibrate --html``: each candidate's predicted
    probability of being good, the learned and best-single verdicts, and the value of the metric
    its fold chose (signed so that higher passes)."""

    y: Any
    probability: Any
    learned: Any
    single: Any
    single_score: Any


def best_cut(score: Any, y: Any, w: Any = None) -> tuple[float, float]:
    """The cut on ``score`` (pass where score >= cut) with the highest balanced accuracy on
    ``y`` (weighted by ``w``, the labels' sampling weights), and that accuracy; between two
    observed scores, so no candidate sits on it. Of equal ones the strictest wins."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    ss, ys = score[order], y[order]
    ws = np.ones(len(ys)) if w is None else w[order]
    n, positives, negatives = len(ys), (ws * ys).sum(), (ws * (1 - ys)).sum()
    tp = np.r_[0.0, np.cumsum(ws * ys)]
    fp = np.r_[0.0, np.cumsum(ws * (1 - ys))]
    # a cut passes a prefix of the order, ending where the score changes
    ks = np.r_[0, np.flatnonzero(np.r_[ss[1:] != ss[:-1], True]) + 1]
    balanced = (tp[ks] / positives + 1 - fp[ks] / negatives) / 2
    best = int(np.argmax(balanced))
    k = int(ks[best])
    if k == 0:
        cut = float(ss[0]) + 1.0
    elif k == n:
        cut = float(ss[-1]) - 1.0
    else:
        cut = float(ss[k - 1] + ss[k]) / 2
    return cut, float(balanced[best])


def _filled(x: Any, medians: Any) -> Any:
    import numpy as np

    return np.where(np.isnan(x), medians, x)


def _medians(x: Any) -> Any:
    """Each metric's median where it has values (0 where it has none)."""
    import numpy as np

    present = ~np.isnan(x)
    return np.array([float(np.median(x[present[:, j], j])) if present[:, j].any() else 0.0
                     for j in range(x.shape[1])])  # fmt: skip


@dataclass(frozen=True)
class _Model:
    medians: Any
    means: Any
    scales: Any
    coefficients: Any
    intercept: float
    cut: float

    def score(self, x: Any) -> Any:
        z = (_filled(x, self.medians) - self.means) / self.scales
        return z @ self.coefficients + self.intercept


def _fit(x: Any, y: Any, w: Any) -> _Model:
    from sklearn.linear_model import LogisticRegression

    medians = _medians(x)
    filled = _filled(x, medians)
    means, scales = filled.mean(axis=0), filled.std(axis=0)
    scales[scales == 0] = 1.0  # a constant metric: its coefficient stays at 0
    fitted = LogisticRegression(C=C, max_iter=1000).fit((filled - means) / scales, y, w)
    model = _Model(medians, means, scales, fitted.coef_[0], float(fitted.intercept_[0]), 0.0)
    cut, _ = best_cut(model.score(x), y, w)
    return _Model(model.medians, means, scales, model.coefficients, model.intercept, cut)


@dataclass(frozen=True)
class _Rule:
    """One metric, one direction, one threshold: the best single-metric policy."""

    column: int
    sign: float
    cut: float
    median: float

    def oriented(self, x: Any) -> Any:
        import numpy as np

        values = x[:, self.column]
        return self.sign * np.where(np.isnan(values), self.median, values)

    def describe(self, metrics: list[str]) -> str:
        op = ">=" if self.sign > 0 else "<="
        return f"{metrics[self.column]} {op} {self.sign * self.cut:.4g}"


def _best_rule(x: Any, y: Any, higher: list[bool], w: Any) -> _Rule:
    """The metric, direction (its declared one first) and threshold with the highest balanced
    accuracy on these candidates."""
    medians = _medians(x)
    best: tuple[float, _Rule] | None = None
    for j in range(x.shape[1]):
        for sign in (1.0, -1.0) if higher[j] else (-1.0, 1.0):
            rule = _Rule(j, sign, 0.0, float(medians[j]))
            cut, balanced = best_cut(rule.oriented(x), y, w)
            if best is None or balanced > best[0] + 1e-12:
                best = (balanced, _Rule(j, sign, cut, float(medians[j])))
    assert best is not None
    return best[1]


def learn_policy(
    store: Store,
    run_ids: Sequence[str],
    aspect: str = "overall",
    name: str | None = None,
    seed: int = 0,
    resamples: int = 1000,
    data: LabelledSet | None = None,
) -> tuple[LearnedPolicy, OutOfFold | None]:
    """Cross-validate the learned policy against the best single metric on the runs' labels,
    and define it (fit on every label) where it wins."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    name = name or f"learned_{aspect}"
    data = data or labelled_set(store, run_ids, aspect)
    x, y, w, n = data.x, data.y, data.w, len(data.ids)
    good = int(y.sum())
    rarer = min(good, n - good)
    if len(data.metrics) < 2 or rarer < 2:
        need = "two metrics or more" if len(data.metrics) < 2 else "two labels of each kind"
        verdict = f"no learned policy: it needs {need} among the parsed labelled candidates"
        return LearnedPolicy(name, False, verdict, n, good, metrics=data.metrics), None
    folds = min(FOLDS, rarer)
    probability, learned, single, oriented = (np.zeros(n) for _ in range(4))
    fold_rules = []
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y)
    for train, test in splits:
        model = _fit(x[train], y[train], w[train])
        score = model.score(x[test])
        probability[test] = 1 / (1 + np.exp(-score))
        learned[test] = score >= model.cut
        rule = _best_rule(x[train], y[train], data.higher, w[train])
        oriented[test] = rule.oriented(x[test])
        single[test] = oriented[test] >= rule.cut
        fold_rules.append(rule.describe(data.metrics))
    # held-out figures estimate the whole run: each label weighs what its draw stood for
    counts = resample_counts(np.random.default_rng(seed), n, resamples) * w
    point = w[None, :]
    ba_learned, ba_single = _balanced(learned, y, point)[0], _balanced(single, y, point)[0]
    boot = _balanced(learned, y, counts) - _balanced(single, y, counts)
    difference = estimate(float(ba_learned - ba_single), boot)
    overall = _best_rule(x, y, data.higher, w)
    best = data.metrics[overall.column]
    low, high = difference.low or 0.0, difference.high or 0.0
    figures = f"difference {difference.value:.2f} [{low:.2f}, {high:.2f}]"
    kept = low > 0
    if kept:
        verdict = f"the learned policy beats {best}: {figures} in held-out balanced accuracy"
    else:
        verdict = f"the learned policy does not beat {best}: {figures}"
    definition = _definition(data, run_ids, aspect) if kept else None
    result = LearnedPolicy(
        name, kept, verdict, n, good, folds, data.metrics,
        {m: int(np.isnan(x[:, j]).sum()) for j, m in enumerate(data.metrics)},
        estimate(float(ba_learned), _balanced(learned, y, counts)),
        auroc(probability, y, w, counts), _precision(learned, y, w, counts),
        best, overall.describe(data.metrics),
        estimate(float(ba_single), _balanced(single, y, counts)),
        auroc(oriented, y, w, counts), _precision(single, y, w, counts),
        fold_rules, difference,
        LogisticPolicy(name, definition).version if definition else None, definition,
    )  # fmt: skip
    return result, OutOfFold(y, probability, learned, single, oriented)


def _balanced(decided: Any, y: Any, weights: Any) -> Any:
    """Balanced accuracy of yes/no ``decided`` under each row of ``weights`` (one resample's
    counts per row)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = (weights @ (y * decided)) / (weights @ y)
        tnr = (weights @ ((1 - y) * (1 - decided))) / (weights @ (1 - y))
    return (tpr + tnr) / 2


def _precision(decided: Any, y: Any, w: Any, counts: Any) -> Estimate:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        passed = (w * decided).sum()
        point = float((w * y * decided).sum() / passed) if decided.sum() else float("nan")
        return estimate(point, (counts @ (y * decided)) / (counts @ decided))


def _definition(data: LabelledSet, run_ids: Sequence[str], aspect: str) -> dict[str, Any]:
    """The policy fit on every labelled candidate, as recorded in ``policies.definition``."""
    model = _fit(data.x, data.y, data.w)
    return {
        "kind": "logistic",
        "aspect": aspect,
        "runs": list(run_ids),
        "labelled": len(data.ids),
        "metrics": data.metrics,
        "medians": [float(v) for v in model.medians],
        "means": [float(v) for v in model.means],
        "scales": [float(v) for v in model.scales],
        "coefficients": [float(v) for v in model.coefficients],
        "intercept": model.intercept,
        "cut": 1 / (1 + math.exp(-model.cut)),
        "cut_logit": model.cut,
        "C": C,
        "groundset_version": groundset_version(),
    }


@dataclass(frozen=True)
class LogisticPolicy:
    """A recorded learned policy, evaluated like a threshold policy: its version is a hash of
    its definition, and it compiles to one boolean SQL expression over ``candidate_scores``."""

    name: str
    definition: dict[str, Any]

    @property
    def version(self) -> str:
        return content_hash("policy", self.definition)[:12]

    def sql(self, known: Sequence[str]) -> tuple[str, list[Any]]:
        d = self.definition
        unknown = sorted(set(d["metrics"]) - set(known))
        if unknown:
            raise ConfigError(
                f"learned policy {self.name!r}: unknown metric {unknown[0]!r} in this store"
            )
        terms, params = [], [float(d["intercept"])]
        for j, metric in enumerate(d["metrics"]):
            terms.append(f"? * ((coalesce(cs.{quote_identifier(metric)}, ?) - ?) / ?)")
            params += [d["coefficients"][j], d["medians"][j], d["means"][j], d["scales"][j]]
        expression = f"(cs.parse_ok AND (? + {' + '.join(terms)}) >= ?)"
        return expression, [*params, float(d["cut_logit"])]


def recorded_learned(store: Store, name: str) -> LogisticPolicy | None:
    """The newest recorded learned policy called ``name``, if any: what ``groundset accept
    --policy NAME`` applies to a run that has no such policy in its config."""
    rows = store.query(
        "SELECT definition FROM policies WHERE policy = ?"
        " AND definition->>'kind' = 'logistic' ORDER BY created_at DESC LIMIT 1",
        [name],
    ).rows
    return LogisticPolicy(name, json.loads(rows[0][0])) if rows else None


def apply_learned(store: Store, policy: LogisticPolicy, run_id: str) -> PolicyOutcome:
    """Evaluate a learned policy on every recorded candidate of the run and record the verdicts
    (``policy_results``, seen by the ``accepted`` view and ``export --policy``)."""
    sql = policy.sql(store.metric_columns())
    return record_verdicts(store, policy.name, policy.version, policy.definition, sql, run_id)
