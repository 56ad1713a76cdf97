"""How many labels the review queue needs, against uniform random labelling, to pin the accepted
set's precision to +-0.05; and how fast the review page serves the next candidate on a store of a
million candidates.

    python bench/review_queue.py [--sets begin_dev,factcheck_gpt_dev] [--repeats 40]
        [--half-width 0.05] [--speed-candidates 1000000] [--json bench/review_queue.json]

**Labels needed.** Each set (a ``*_dev`` file of ``../shared/data/grounding``, scored by
``groundset score --label-field label`` with overlap and grounding_nli, cached as
``bench/calibration_coverage.py`` caches it) stands for a run whose every candidate a person
could label; the set's labels play the person. The review queue (``core/review/queue.py``,
stratified for 30 labels, then active) and a uniform random order each label one candidate at a
time; every 5 labels, the accepted set's (``accepted_default``) weighted precision and its
bootstrap 95 % interval are computed as the page shows them (narrowed by the finite
population correction, since the accepted set is finite). A sitting stops when the interval's
half-width is at most ``--half-width``. Reported per set: the median and quartiles of
labels needed over ``--repeats`` seeded sittings, and how often the final interval holds the
accepted set's true precision (from all its labels).

**Speed.** ``bench/calibrate_speed.py`` builds its million-candidate store; a real
``groundset review`` serves it, and the next candidate is asked for and labelled 50 times over
HTTP, the simulated reviewer reading each candidate for ``--think-ms`` (the page reads the next
candidate's evidence meanwhile). Reported: the page's start-up, the latency of each
``/api/label`` (which answers with the next candidate) and ``/api/next``, and a cold read of
one candidate's evidence without reading ahead."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_coverage import SETS, VALIDATORS, scored_store
from calibration_guide import DATA
from results import save

CHECK_EVERY = 5


def sitting(pool: Any, truth: dict[str, int], order: str, seed: int, half: float) -> dict:
    """One simulated reviewer: labels until the accepted set's interval is narrow enough."""
    import numpy as np

    from groundset.core.intervals import weighted_share
    from groundset.core.review.queue import ReviewQueue

    queue = ReviewQueue(pool, set(), seed=seed)
    uniform = np.random.default_rng(seed).permutation(len(pool.ids))
    population = int(pool.accepted.sum())
    y: list[float] = []
    w: list[float] = []
    estimate = None
    for n in range(1, len(pool.ids) + 1):
        if order == "queue":
            draw = queue.next()
            assert draw is not None
            queue.close(draw.candidate_id)
            i, weight = pool.index[draw.candidate_id], draw.weight
        else:
            i, weight = int(uniform[n - 1]), 1.0
        if pool.accepted[i]:
            y.append(float(truth[pool.ids[i]]))
            w.append(weight)
        if n % CHECK_EVERY or len(y) < 2:
            continue
        estimate = weighted_share(np.array(y), np.array(w), seed, population)
        low, high = estimate.low, estimate.high
        if low is not None and high is not None and (high - low) / 2 <= half:
            return {"labels": n, "accepted_labelled": len(y), "estimate": estimate}
    return {"labels": len(pool.ids), "accepted_labelled": len(y), "estimate": estimate}


def labels_needed(name: str, repeats: int, half: float) -> dict[str, Any]:
    import numpy as np

    from groundset.core.review.queue import load_pool
    from groundset.core.store import Store

    db, _ = scored_store(name, DATA, VALIDATORS)
    with Store(db, read_only=True) as store:
        (run_id,) = store.query("SELECT run_id FROM runs").rows[0]
        pool = load_pool(store, [run_id])
        truth = dict(store.query("SELECT candidate_id, value FROM latest_labels").rows)
    accepted = [truth[c] for c, a in zip(pool.ids, pool.accepted, strict=True) if a]
    precision = float(np.mean(accepted))
    result: dict[str, Any] = {
        "candidates": len(pool.ids),
        "accepted": len(accepted),
        "accepted_precision": round(precision, 4),
    }
    for order in ("queue", "random"):
        runs = [sitting(pool, truth, order, seed, half) for seed in range(repeats)]
        needed = np.array([r["labels"] for r in runs])
        held = [
            r["estimate"] is not None
            and (r["estimate"].low or 0) <= precision <= (r["estimate"].high or 1)
            for r in runs
        ]
        result[order] = {
            "labels_median": float(np.median(needed)),
            "labels_q1_q3": [float(q) for q in np.percentile(needed, [25, 75])],
            "accepted_labelled_median": float(np.median([r["accepted_labelled"] for r in runs])),
            "interval_holds_truth": round(float(np.mean(held)), 3),
        }
    result["saving"] = round(
        1 - result["queue"]["labels_median"] / result["random"]["labels_median"], 3
    )
    return result


def page_speed(candidates: int, think: float) -> dict[str, Any]:
    """A real ``groundset review`` on the million-candidate store of calibrate_speed.py."""
    import httpx
    import numpy as np
    from calibrate_speed import build

    with tempfile.TemporaryDirectory() as folder:
        db, _ = build(Path(folder), candidates, 1000)
        exe = Path(sys.executable).with_name("groundset")
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(exe), "review", "--db", str(db), "--labeller", "bench"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            for line in process.stdout:
                found = re.search(r"review page: (\S+token=(\S+))", line)
                if found:
                    break
            else:
                raise SystemExit("groundset review printed no address")
            base, token = found.group(1).split("/?")[0], found.group(2)
            headers = {"X-Groundset-Token": token}
            with httpx.Client(headers=headers, timeout=60) as client:
                first = client.get(base + "/api/next").json()
                startup = time.perf_counter() - started
                nexts, labels = [], []
                shown = first["candidate"]["candidate_id"]
                for i in range(50):
                    time.sleep(think)  # the reviewer reads the candidate
                    t = time.perf_counter()
                    reply = client.post(
                        base + "/api/label", json={"candidate_id": shown, "value": i % 2}
                    ).json()
                    labels.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    shown = client.get(base + "/api/next").json()["candidate"]["candidate_id"]
                    nexts.append(time.perf_counter() - t)
                    assert shown == reply["candidate"]["candidate_id"]
        finally:
            process.terminate()
            process.communicate(timeout=60)
        cold = cold_reads(db)

    def ms(values: list[float]) -> dict[str, float]:
        return {f"p{p}": round(1000 * float(np.percentile(values, p)), 1) for p in (50, 95, 100)}

    return {
        "candidates": candidates,
        "startup_s": round(startup, 2),
        "think_s": think,
        "label_answering_with_the_next_ms": ms(labels),
        "next_ms": ms(nexts),
        "cold_read_ms": ms(cold),
        "target_ms": 200,
        "ok": bool(max(np.percentile(labels, 95), np.percentile(nexts, 95)) < 0.2),
    }


def cold_reads(db: Path, n: int = 20) -> list[float]:
    """One candidate's evidence read as the page reads it when nothing was read ahead: the store
    opened for the request, the candidate, its scores and details, closed again."""
    from groundset.core.review.evidence import candidate_view
    from groundset.core.store import Store

    with Store(db, read_only=True) as store:
        sample = "SELECT candidate_id FROM candidates USING SAMPLE 20 ROWS (reservoir, 7)"
        ids = [c for (c,) in store.query(sample).rows]
    times = []
    for cid in ids[:n]:
        t = time.perf_counter()
        with Store(db, read_only=True, upgrade=False) as store:
            assert candidate_view(store, cid) is not None
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=SETS)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--half-width", type=float, default=0.05)
    parser.add_argument("--speed-candidates", type=int, default=1_000_000,
                        help="0 skips the speed part")  # fmt: skip
    parser.add_argument("--think-ms", type=int, default=1000,
                        help="how long the simulated reviewer reads each candidate")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"half_width": args.half_width, "repeats": args.repeats}
    results["labels_needed"] = {
        name: labels_needed(name, args.repeats, args.half_width) for name in args.sets.split(",")
    }
    if args.speed_candidates:
        results["page_speed"] = page_speed(args.speed_candidates, args.think_ms / 1000)
    print(json.dumps(results, indent=2))
    if args.json:
        save(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
