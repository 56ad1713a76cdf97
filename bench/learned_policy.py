"""Does the learned policy (a logistic regression over every metric) beat the best single metric
on public labelled data? Held-out balanced accuracy of each, from the same cross-validation
`groundset calibrate` runs, with the paired difference and its bootstrap 95 % interval.

    python bench/learned_policy.py [--sets factcheck_gpt_dev,begin_dev]
        [--validators overlap,grounding_nli] [--seeds 0,1,2] [--json bench/learned_policy.json]

The sets are scored (and cached) as ``bench/calibration_coverage.py`` scores them. Each seed
draws other folds and resamples, so the spread over seeds shows how much a verdict ("kept" or
not) rests on the draw."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_coverage import SETS, VALIDATORS, scored_store
from calibration_guide import DATA
from results import save


def figure(e: Any) -> list[float | None]:
    return [None if v is None else round(v, 3) for v in (e.value, e.low, e.high)]


def measure(name: str, validators: str, seeds: list[int]) -> dict[str, Any]:
    from groundset.core.learned_policy import learn_policy
    from groundset.core.store import Store

    db, _ = scored_store(name, DATA, validators)
    out: dict[str, Any] = {}
    with Store(db, read_only=True) as store:
        (run_id,) = store.query("SELECT run_id FROM runs").rows[0]
        for seed in seeds:
            started = time.perf_counter()
            learned, _ = learn_policy(store, [run_id], seed=seed)
            out[f"seed {seed}"] = {
                "labelled": learned.labelled,
                "good": learned.good,
                "folds": learned.folds,
                "learned_balanced_accuracy": figure(learned.balanced_accuracy),
                "learned_auroc": figure(learned.auroc),
                "best_metric": learned.best_metric,
                "best_rule": learned.best_rule,
                "best_balanced_accuracy": figure(learned.best_balanced_accuracy),
                "difference": figure(learned.difference),
                "kept": learned.kept,
                "seconds": round(time.perf_counter() - started, 2),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=SETS)
    parser.add_argument("--validators", default=VALIDATORS)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {
        "validators": args.validators,
        "sets": {name: measure(name, args.validators, seeds) for name in args.sets.split(",")},
    }
    print(json.dumps(results, indent=2))
    if args.json:
        save(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
