"""Intervals for figures measured on labels: bootstrap percentiles from multinomial resample
counts (every resample's figure at once, as weights), and where a bootstrap cannot move (every
label alike) the Wilson score bound instead. Shared by ``calibrate``, the learned policy and the
review page, so a figure means the same wherever it is printed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "RESAMPLES",
    "Estimate",
    "auroc",
    "estimate",
    "estimate_text",
    "resample_counts",
    "stretch_for_rest",
    "stretched",
    "weighted_share",
    "widened",
    "wilson",
]

RESAMPLES = 1000
Z = 1.96


@dataclass(frozen=True)
class Estimate:
    """A figure and its bootstrap 95 % interval (None where it is undefined, e.g. precision
    when nothing passes)."""

    value: float | None
    low: float | None
    high: float | None


def resample_counts(rng: Any, n: int, resamples: int) -> Any:
    """How often each of ``n`` candidates is drawn, in each bootstrap resample."""
    import numpy as np

    return rng.multinomial(n, np.full(n, 1 / n), size=resamples)


def weighted_share(y: Any, w: Any, seed: int = 0, population: int | None = None) -> Estimate:
    """The (sampling-)weighted share of good labels ``y`` (1/0), with its bootstrap 95 %
    interval: the precision of a set from the labels of some of its candidates. Given the set's
    size (``population``), the interval narrows by the finite population correction
    sqrt(1 - n/N): once most of a set is labelled, only its unlabelled rest is uncertain, and
    with all of it labelled the precision is known."""
    import numpy as np

    point = float(w @ y / w.sum())
    keep = np.sqrt(max(0.0, 1 - len(y) / population)) if population else 1.0
    if y.min() == y.max():  # every resample agrees: the bootstrap would say [p, p]
        return _one_sided(point, float(w.sum() ** 2 / (w**2).sum()), keep)
    counts = resample_counts(np.random.default_rng(seed), len(y), RESAMPLES) * w
    boot = counts @ y / counts.sum(axis=1)
    return estimate(point, point + (boot - point) * keep)


def _one_sided(point: float, n: float, keep: float) -> Estimate:
    """All labels good (or all bad): the Wilson score interval's open side, on the labels'
    effective number (weights spread it), instead of a bootstrap that cannot move."""
    reach = (1 - n / (n + Z**2)) * keep
    return Estimate(point, point - reach, point) if point == 1 else Estimate(point, 0.0, reach)


def estimate(point: float, boot: Any) -> Estimate:
    import numpy as np

    finite = boot[np.isfinite(boot)]
    if not np.isfinite(point):
        return Estimate(None, None, None)
    if not len(finite):
        return Estimate(float(point), None, None)
    low, high = np.percentile(finite, [2.5, 97.5])
    return Estimate(float(point), float(low), float(high))


def auroc(x: Any, y: Any, w: Any, counts: Any) -> Estimate:
    """Probability that a good candidate outscores a bad one (ties count half), by ranks, with
    the sampling weights and the resamples' counts as weights."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    xs, ys, ws, cs = x[order], y[order], w[order], counts[:, order]
    starts = np.searchsorted(xs, xs, side="left")
    stops = np.searchsorted(xs, xs, side="right")

    def auc(weights: Any) -> Any:
        negatives = weights * (1 - ys)
        below = np.concatenate([np.zeros((len(weights), 1)), np.cumsum(negatives, axis=1)], 1)
        # the weight of bad candidates each one outscores, ties counting half
        beats = below[:, starts] + 0.5 * (below[:, stops] - below[:, starts])
        positives = weights * ys
        with np.errstate(divide="ignore", invalid="ignore"):
            return (positives * beats).sum(axis=1) / (positives.sum(1) * negatives.sum(1))

    point = float(auc(ws[None, :])[0])
    return estimate(point, auc(cs))


def wilson(good: Any, n: Any) -> tuple[Any, Any]:
    """The Wilson score interval for ``good`` of ``n`` (numbers or arrays): unlike a bootstrap
    percentile it does not shrink to a point when a few labels all agree."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        p = good / n
        centre = p + Z**2 / (2 * n)
        spread = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
        return (centre - spread) / (1 + Z**2 / n), (centre + spread) / (1 + Z**2 / n)


def widened(figure: Estimate, good: float, n: float) -> Estimate:
    """A share's bootstrap interval, widened to the Wilson interval where that is wider: at a
    threshold that passes few labelled candidates, all good, the bootstrap says [1, 1] and would
    recommend a threshold that unseen labels do not bear out."""
    if figure.value is None or figure.low is None or figure.high is None or n <= 0:
        return figure
    low, high = wilson(good, n)
    return Estimate(figure.value, min(figure.low, float(low)), max(figure.high, float(high)))


def stretch_for_rest(labelled: int, population: int | None) -> float:
    """How much wider an interval must be to hold for the candidates nobody labelled, when
    ``labelled`` of ``population`` are: 1/sqrt(1 - n/N). A user exporting at a threshold asks
    how good the unchecked candidates passing it are. Their precision differs from the labelled
    sample's by the sample's error times N/(N - n), and a bootstrap of the sample (which knows
    nothing of N) measures that error without the finite population correction sqrt(1 - n/N):
    the product is the stretch. With a thousand labels in a million candidates it is 1.0005;
    with half a set labelled, sqrt 2, which is what a held-out half measures
    (``bench/calibration_coverage.py``). With everything labelled there is no rest, and the
    interval stays that of the labelled sample, read as the process that made them."""
    if not population or labelled >= population or labelled <= 0:
        return 1.0
    return float((1 - labelled / population) ** -0.5)


def stretched(figure: Estimate, stretch: float) -> Estimate:
    """A share's interval, its distance from the point times ``stretch``, kept within [0, 1]."""
    if stretch == 1.0 or figure.value is None or figure.low is None or figure.high is None:
        return figure
    point = figure.value
    low = max(0.0, point - (point - figure.low) * stretch)
    return Estimate(point, low, min(1.0, point + (figure.high - point) * stretch))


def estimate_text(figure: Estimate | None, missing: str = "n/a") -> str:
    """``0.91 [0.79, 1.00]``: a figure as every report prints it."""
    if figure is None or figure.value is None:
        return missing
    if figure.low is None or figure.high is None:
        return f"{figure.value:.2f}"
    return f"{figure.value:.2f} [{figure.low:.2f}, {figure.high:.2f}]"
