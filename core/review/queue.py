"""Which candidate a reviewer labels next, and the sampling weight each label carries.

Labels are spent where they teach most, without biasing what they estimate. Every draw is random
with a known chance ``q`` of picking each unlabelled candidate, and the label records its weight
``1 / (N q)`` (1 for a uniform draw), so weighted figures (``groundset calibrate``, the page's
precision) still estimate the whole run:

1. **Stratified first.** The candidates are split by document group and by score range (quartiles
   of the margin by which a candidate passes or fails its nearest default threshold). Each draw
   picks a stratum uniformly, then a candidate in it: every document group and score range is
   seen early, rare ones included, and a stratum's labels weigh what it holds.
2. **Then active.** Draws lean towards where a label is most informative: candidates that pass
   (the exported set, whose precision the page estimates), whose validators disagree, or whose
   score sits near a threshold. A uniform share of every draw keeps weights bounded, so no label
   can swamp the estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from groundset.core.store import Store

__all__ = ["Draw", "ReviewQueue", "load_pool"]

#: labels drawn stratified before the queue turns active
STRATIFIED_LABELS = 30
#: the share of each active draw spread uniformly: weights stay at most 1 / UNIFORM_SHARE
UNIFORM_SHARE = 0.25
#: document groups in the strata: more documents than this are grouped by a hash of their id
DOCUMENT_GROUPS = 8
SCORE_RANGES = 4
#: a margin within this of a threshold (in the metric's units) counts as near it
NEAR = 0.15

#: per parsed candidate of the runs: its document, whether it passes every default threshold,
#: the smallest margin to any default threshold (negative: it fails), and whether its validators
#: disagree (one passes it, another rejects it)
POOL_SQL = """
WITH margins AS (
    SELECT s.candidate_id,
           min(CASE WHEN m.higher_is_better THEN s.value - m.default_threshold
                    ELSE m.default_threshold - s.value END) AS worst,
           min(abs(s.value - m.default_threshold)) AS nearest
    FROM latest_scores s JOIN metrics m USING (validator, metric)
    WHERE m.default_threshold IS NOT NULL AND list_contains(?, s.run_id)
    GROUP BY s.candidate_id),
verdicts AS (
    SELECT candidate_id, bool_or(passed) AND NOT bool_and(passed) AS disagree
    FROM validator_results WHERE list_contains(?, run_id) GROUP BY candidate_id)
SELECT c.candidate_id, c.run_id, c.document_id, a.candidate_id IS NOT NULL AS accepted,
       coalesce(mg.worst, 0), coalesce(mg.nearest, 1), coalesce(v.disagree, false)
FROM candidates c
LEFT JOIN accepted_default a USING (candidate_id)
LEFT JOIN margins mg USING (candidate_id)
LEFT JOIN verdicts v USING (candidate_id)
WHERE list_contains(?, c.run_id) AND c.parse_ok
ORDER BY c.candidate_id
"""


@dataclass(frozen=True)
class Draw:
    """A candidate the queue picked, with the label weight it earns and the phase that drew it."""

    candidate_id: str
    weight: float
    sampling: str


@dataclass
class Pool:
    """The runs' parsed candidates as columns (numpy arrays), in candidate-id order."""

    ids: list[str]
    runs: list[str]
    documents: list[str]
    accepted: Any
    worst: Any
    nearest: Any
    disagree: Any
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {cid: i for i, cid in enumerate(self.ids)}


def load_pool(store: Store, run_ids: list[str]) -> Pool:
    import numpy as np

    table = store.arrow(POOL_SQL, [run_ids, run_ids, run_ids])
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    ids, runs, documents, accepted, worst, nearest, disagree = columns
    return Pool(
        ids, runs, documents, np.array(accepted, dtype=bool), np.array(worst, dtype=float),
        np.array(nearest, dtype=float), np.array(disagree, dtype=bool),
    )  # fmt: skip


class ReviewQueue:
    """Draws candidates for one aspect: never one already labelled or skipped, stratified for the
    first ``stratified`` labels, then active."""

    def __init__(
        self, pool: Pool, done: set[str], seed: int = 0, stratified: int = STRATIFIED_LABELS
    ) -> None:
        import numpy as np

        self.pool = pool
        self.rng = np.random.default_rng(seed)
        self.stratified = stratified
        self.drawn = 0
        self.open = np.ones(len(pool.ids), dtype=bool)
        for cid in done:
            if cid in pool.index:
                self.open[pool.index[cid]] = False
        self.strata = _strata(pool)
        self.informative = _informativeness(pool)

    @property
    def remaining(self) -> int:
        return int(self.open.sum())

    def close(self, candidate_id: str) -> None:
        """Labelled or skipped: never drawn again."""
        if candidate_id in self.pool.index:
            self.open[self.pool.index[candidate_id]] = False

    def reopen(self, candidate_id: str) -> None:
        """Its label was taken back: it may be drawn again."""
        if candidate_id in self.pool.index:
            self.open[self.pool.index[candidate_id]] = True

    def next(self) -> Draw | None:
        """A random draw with a known chance per candidate; None when every one is done."""
        import numpy as np

        if not self.open.any():
            return None
        n = len(self.pool.ids)
        if self.drawn < self.stratified:
            q, phase = self._stratified(), "stratified"
        else:
            q, phase = self._active(), "active"
        pick = int(self.rng.choice(n, p=q))
        self.drawn += 1
        # a candidate's weight: how many of the run's candidates it stands for, relative to a
        # uniform draw over those still open
        weight = float(1.0 / (q[pick] * self.open.sum()))
        return Draw(self.pool.ids[pick], float(np.round(weight, 6)), phase)

    def _stratified(self) -> Any:
        import numpy as np

        q = np.zeros(len(self.pool.ids))
        open_strata = np.unique(self.strata[self.open])
        for stratum in open_strata:
            members = self.open & (self.strata == stratum)
            q[members] = 1.0 / (len(open_strata) * members.sum())
        return q

    def _active(self) -> Any:
        u = self.informative * self.open
        uniform = self.open / self.open.sum()
        if u.sum() == 0:
            return uniform
        return UNIFORM_SHARE * uniform + (1 - UNIFORM_SHARE) * u / u.sum()


def _strata(pool: Pool) -> Any:
    """Stratum per candidate: document group x score range (quartile of the worst margin)."""
    import zlib

    import numpy as np

    names = sorted(set(pool.documents))
    if len(names) <= DOCUMENT_GROUPS:
        group = {name: i for i, name in enumerate(names)}
    else:  # a stable grouping: the same store gives the same strata anywhere
        group = {name: zlib.crc32(name.encode()) % DOCUMENT_GROUPS for name in names}
    documents = np.array([group[d] for d in pool.documents], dtype=int)
    if not len(pool.worst):
        return documents
    edges = np.unique(np.quantile(pool.worst, np.linspace(0, 1, SCORE_RANGES + 1)[1:-1]))
    ranges = np.searchsorted(edges, pool.worst, side="right")
    return documents * (SCORE_RANGES + 1) + ranges


def _informativeness(pool: Pool) -> Any:
    """How much a label on each candidate teaches: passing ones settle the exported set's
    precision; disagreeing validators and near-threshold scores settle where thresholds go."""
    import numpy as np

    near = np.clip(1 - pool.nearest / NEAR, 0, 1)
    return 0.1 + pool.accepted * 1.0 + pool.disagree * 0.5 + near * 0.5
