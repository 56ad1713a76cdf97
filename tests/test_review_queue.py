"""The review queue: stratified draws first, then active ones, each with the sampling weight that
keeps estimates from an uneven sample unbiased; and `calibrate` using those weights."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from groundset.core.calibration import labelled_precision
from groundset.core.intervals import weighted_share
from groundset.core.review.queue import Pool, ReviewQueue
from groundset.core.store import Store
from tests.test_calibrate import invoke, labelled_store  # noqa: F401 (a fixture)


def synthetic_pool(n: int = 2000, seed: int = 0) -> tuple[Pool, np.ndarray]:
    """Candidates whose chance of being good grows with their margin to the threshold; those
    just above it (accepted, near) are the worst of the accepted ones."""
    rng = np.random.default_rng(seed)
    worst = rng.normal(0, 0.3, n)
    good = rng.random(n) < 1 / (1 + np.exp(-20 * worst))
    pool = Pool(
        ids=[f"c{i:05d}" for i in range(n)],
        runs=["r"] * n,
        documents=[f"d{i % 12}" for i in range(n)],
        accepted=worst >= 0,
        worst=worst,
        nearest=np.abs(worst),
        disagree=rng.random(n) < 0.1,
    )
    return pool, good


def test_the_queue_draws_stratified_then_leans_to_informative_candidates():
    pool, _ = synthetic_pool()
    queue = ReviewQueue(pool, done=set(), seed=1, stratified=30)
    draws = []
    for _ in range(330):
        draw = queue.next()
        assert draw is not None
        queue.close(draw.candidate_id)  # labelled: never drawn again
        draws.append(draw)
    assert [d.sampling for d in draws[:30]] == ["stratified"] * 30
    assert {d.sampling for d in draws[30:]} == {"active"}
    ids = [d.candidate_id for d in draws]
    assert len(set(ids)) == len(ids)  # never the same candidate twice
    accepted = np.array([pool.accepted[pool.index[c]] for c in ids[30:]])
    assert accepted.mean() > pool.accepted.mean() + 0.15  # the exported set gets more labels
    # the stratified phase reaches every document group early
    assert len({pool.documents[pool.index[c]] for c in ids[:30]}) >= 8
    # a draw that was likelier than uniform weighs less than one, and the reverse
    weights = np.array([d.weight for d in draws[30:]])
    assert weights.min() < 1 < weights.max() <= 1 / 0.25 + 1e-6


def test_weighted_labels_estimate_the_accepted_sets_precision_without_bias():
    pool, good = synthetic_pool()
    truth = good[pool.accepted].mean()
    weighted = []
    for seed in range(150):
        queue = ReviewQueue(pool, done=set(), seed=seed, stratified=10)
        y, w = [], []
        for _ in range(60):
            draw = queue.next()
            assert draw is not None
            queue.close(draw.candidate_id)
            i = pool.index[draw.candidate_id]
            if pool.accepted[i]:
                y.append(float(good[i]))
                w.append(draw.weight)
        weighted.append(weighted_share(np.array(y), np.array(w)).value)
    # over many sittings the weighted estimate centres on the truth, though each sitting drew
    # its labels unevenly (stratified, then leaning to the accepted and near-threshold ones)
    assert abs(np.mean(weighted) - truth) < 0.015


def test_calibrate_and_export_precision_weigh_each_label_by_how_it_was_drawn(
    labelled_store,  # noqa: F811 (the fixture imported above)
):
    with duckdb.connect(str(labelled_store)) as db:  # the bad labels stand for three each
        db.execute("UPDATE labels SET weight = CASE WHEN value = 0 THEN 3 ELSE 1 END")
        rows = db.execute(
            "SELECT l.value, l.weight FROM labels l JOIN accepted_default USING (candidate_id)"
        ).fetchall()
        ids = [c for (c,) in db.execute("SELECT candidate_id FROM accepted_default").fetchall()]
    y, w = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    expected = float(w @ y / w.sum())
    assert expected < y.mean() - 0.01  # the weights matter here
    import json

    result = json.loads(invoke("calibrate", "--db", labelled_store, "--format", "json").output)
    [accepted] = [p for p in result["policies"] if p["name"] == "all default thresholds"]
    assert accepted["figures"]["precision"]["value"] == pytest.approx(expected)
    assert accepted["figures"]["passed"] == len(rows)  # counted in candidates, not weight
    with Store(labelled_store, read_only=True) as store:
        labelled, estimate = labelled_precision(store, ids) or (0, None)
    assert labelled == len(rows) and estimate is not None
    assert estimate.value == pytest.approx(expected)
    assert estimate.low is not None and estimate.low < expected < (estimate.high or 0)


def test_the_accepted_sets_interval_narrows_as_it_is_labelled_and_never_collapses_early():
    y, w = np.array([1.0] * 24 + [0.0] * 6), np.ones(30)
    wide = weighted_share(y, w)
    half_done = weighted_share(y, w, population=60)
    known = weighted_share(y, w, population=30)  # every member labelled: nothing is uncertain
    assert wide.low < half_done.low < 0.8 < half_done.high < wide.high
    assert known.low == known.high == pytest.approx(0.8)
    # all good so far: not "[1.00, 1.00]", but how low 30 good labels still allow
    all_good = weighted_share(np.ones(30), np.ones(30))
    assert all_good.high == 1.0 and 0.85 < all_good.low < 0.92
    assert weighted_share(np.ones(30), np.ones(30), population=30).low == 1.0
