"""Does the recommended threshold keep its promise on labels it has not seen? Random half/half
splits of public labelled sets: calibrate on half A, then measure the precision of each
recommended threshold on half B, and count how often it lies inside A's 95 % interval and how
often at or above A's lower bound (the one-sided promise the recommendation makes).

    python bench/calibration_coverage.py [--sets factcheck_gpt_dev,begin_dev]
        [--validators overlap,grounding_nli] [--splits 200] [--target 0.9] [--data DIR]
        [--json bench/calibration_coverage.json]

Each set (a ``*_dev`` or ``*_train`` file of ``../shared/data/grounding``, or ``nli/NAME`` for a
sentence-level NLI file beside it, entailment counting as good; held-out test files are refused) is
converted and scored once with ``groundset score --label-field label``; the scored store is kept
in ``bench/.cache/calibration_coverage`` (ignored by git) and reused. Each split is seeded by
its number: half A's labels replace all labels in a scratch copy of that store, and
``calibrate()`` runs on it exactly as ``groundset calibrate`` would (bootstrap seed = split).

How to read the rates: half B's precision is itself an estimate from as many labels as A's, and
its difference from A's has twice the variance of one estimate. calibrate's interval is for the
candidates nobody labelled, which here are exactly half B: it is stretched by
1/sqrt(1 - n/N) = sqrt 2 over the labels' own (``intervals.stretch_for_rest``), so an exact
interval covers B's estimate 95 % of the time, and B's estimate is at or above its lower bound
97.5 % of the time. Choosing the loosest threshold that meets the target on A lowers both
(A's precision at the chosen threshold is biased upwards, most where the metric barely reaches
the target), and so does a bootstrap percentile interval at thresholds that pass few
candidates, all of them good: every resample then has precision 1 and the interval is
[1.00, 1.00] (counted as ``degenerate``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_guide import DATA, convert, groundset, score_command, source_file

CACHE = Path(__file__).resolve().parent / ".cache" / "calibration_coverage"
SETS = "factcheck_gpt_dev,begin_dev"
VALIDATORS = "overlap,grounding_nli"
#: what an exact 95 % interval of A for its unlabelled rest (half B) gives against B's estimate
EXPECTED = {"two_sided": 0.95, "one_sided": 0.975}


def scorers_digest(validators: str) -> str:
    """What the cached scores depend on besides the set: each validator's version and the
    packaged NLI model's file, so a new model or validator version is scored afresh rather
    than read from a store its predecessor filled."""
    from groundset.core.manager import get_plugins
    from groundset.core.records import content_hash, file_sha256
    from groundset.validators.nli import model_folder

    registry = get_plugins().registry
    versions = [(v, registry.get("validator", v).cls.version) for v in validators.split(",")]
    model = model_folder() / "model.onnx"
    return content_hash(versions, file_sha256(model) if model.exists() else None)[:10]


def scored_store(name: str, data: Path, validators: str) -> tuple[Path, float | None]:
    """The set scored by ``groundset score`` into a cached store, and the seconds scoring took
    (kept beside the store, so a cached run still reports them)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('/', '-')}-{validators.replace(',', '+')}-{scorers_digest(validators)}"
    db = CACHE / f"{stem}.duckdb"
    took = db.with_suffix(".seconds")
    if db.exists():
        return db, float(took.read_text()) if took.exists() else None
    jsonl = CACHE / f"{name.replace('/', '-')}.jsonl"
    if name.startswith("nli/"):
        convert_nli(nli_file(name, data), jsonl)
    else:
        convert(source_file(name, data), jsonl)
    started = time.perf_counter()
    partial = db.with_suffix(".partial.duckdb")
    partial.unlink(missing_ok=True)
    groundset(*score_command(jsonl, partial, validators))
    partial.rename(db)
    seconds = round(time.perf_counter() - started, 1)
    took.write_text(str(seconds))
    return db, seconds


def nli_file(name: str, data: Path) -> Path:
    """``nli/cad_dev``: a sentence-level NLI file of ``../shared/data/nli`` (beside ``data``);
    held-out test files are refused, as for the grounding sets."""
    if name.endswith("_test"):
        raise SystemExit(f"{name}: a held-out test split; use a *_dev file")
    path = data.parent / f"{name}.jsonl"
    if not path.is_file():
        raise SystemExit(f"no {path}: pass --data DIR (the grounding folder beside nli/)")
    return path


def convert_nli(source: Path, out: Path) -> int:
    """An NLI pair as a grounded answer: the premise is the document, the hypothesis the
    answer, and entailment the label 1 (neutral and contradiction 0)."""
    rows = 0
    with source.open(encoding="utf-8") as lines, out.open("w", encoding="utf-8") as f:
        for line in lines:
            row = json.loads(line)
            label = int(row["label"] == "entailment")
            record = {"document": row["premise"], "answer": row["hypothesis"], "label": label}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows += 1
    return rows


class Halves:
    """A scratch copy of a scored store whose labels can be cut down to one half."""

    def __init__(self, db: Path, folder: Path) -> None:
        import numpy as np

        from groundset.core.store import Store

        copy = folder / db.name
        shutil.copy2(db, copy)
        self.store = Store(copy)
        self.labels = self.store.arrow("SELECT * EXCLUDE (seq) FROM labels")
        (self.run_id,) = self.store.query("SELECT DISTINCT run_id FROM labels").rows[0]
        rows = self.store.query(
            "SELECT candidate_id, avg(value) FROM latest_labels WHERE aspect = 'overall'"
            " GROUP BY candidate_id HAVING avg(value) <> 0.5 ORDER BY candidate_id"
        ).rows
        self.ids = [cid for cid, _ in rows]
        self.y = {cid: int(mean > 0.5) for cid, mean in rows}
        self.scores: dict[str, dict[str, float]] = {}
        for metric, cid, value in self.store.query(
            "SELECT validator || '.' || metric, candidate_id, value FROM latest_scores"
            " WHERE value IS NOT NULL"
        ).rows:
            self.scores.setdefault(metric, {})[cid] = float(value)
        self.rng_type = np.random.default_rng

    def split(self, seed: int) -> tuple[list[str], list[str]]:
        """Half A and half B of the labelled candidates, drawn with ``seed``."""
        order = self.rng_type(seed).permutation(len(self.ids))
        half = len(self.ids) // 2
        return [self.ids[i] for i in order[:half]], [self.ids[i] for i in order[half:]]

    def keep_labels(self, ids: Sequence[str]) -> None:
        """Only the labels of ``ids`` stay in the scratch store."""
        _all_labels = self.labels  # read by name
        db = self.store.db
        db.execute("BEGIN")
        db.execute("DELETE FROM labels")
        db.execute(
            "INSERT INTO labels BY NAME SELECT * FROM _all_labels"
            " WHERE candidate_id IN (SELECT unnest(?))",
            [list(ids)],
        )
        db.execute("COMMIT")

    def precision(self, metric: str, higher: bool, threshold: float, ids: Sequence[str]):
        """Passes and precision of ``threshold`` on ``ids`` (precision None when none passes)."""
        values = self.scores.get(metric, {})
        passing = [
            self.y[c]
            for c in ids
            if c in values and (values[c] >= threshold if higher else values[c] <= threshold)
        ]
        return len(passing), (sum(passing) / len(passing) if passing else None)

    def close(self) -> None:
        self.store.close()


def measure(db: Path, splits: int, target: float) -> dict[str, Any]:
    """Per metric: how A's recommendation and its interval fare on B, over ``splits`` splits."""
    from groundset.core.calibration import calibrate

    folder = Path(tempfile.mkdtemp(prefix="groundset-coverage-"))
    halves = Halves(db, folder)
    found: dict[str, list[dict[str, Any]]] = {m: [] for m in sorted(halves.scores)}
    compared: dict[str, list[dict[str, Any]]] = {m: [] for m in sorted(halves.scores)}
    try:
        for seed in range(splits):
            a, b = halves.split(seed)
            halves.keep_labels(a)
            result = calibrate(halves.store, [halves.run_id], target_precision=target, seed=seed)
            for m in result.metrics:
                pick = m.recommended
                if pick is None:
                    continue
                passes, on_b = halves.precision(m.metric, m.higher_is_better, pick.threshold, b)
                found[m.metric].append({
                    "passes_a": pick.passed, "precision_a": pick.precision.value,
                    "low": pick.precision.low, "high": pick.precision.high,
                    "passes_b": passes, "precision_b": on_b,
                })  # fmt: skip
                wilson = wilson_pick(halves, m.metric, m.higher_is_better, a, target)
                if wilson is not None:
                    passes, on_b = halves.precision(m.metric, m.higher_is_better, wilson[0], b)
                    compared[m.metric].append({**wilson[1], "passes_b": passes,
                                               "precision_b": on_b})  # fmt: skip
    finally:
        halves.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "labelled": len(halves.ids),
        "good": sum(halves.y.values()),
        "metrics": {m: summarise(rows, splits, target) for m, rows in found.items()},
        "wilson": {m: summarise(rows, splits, target) for m, rows in compared.items()},
    }


def wilson_pick(
    halves: Halves, metric: str, higher: bool, ids: Sequence[str], target: float
) -> tuple[float, dict[str, Any]] | None:
    """For comparison, not what calibrate does: the loosest threshold on ``ids`` whose Wilson
    lower bound of precision is at least ``target``, and its figures."""
    import numpy as np

    from groundset.core.intervals import wilson

    values = halves.scores[metric]
    kept = [c for c in ids if c in values]
    x = np.array([values[c] for c in kept])
    y = np.array([halves.y[c] for c in kept], dtype=float)
    order = np.argsort(-x if higher else x, kind="stable")
    xs, ys = x[order], y[order]
    ends = np.flatnonzero(np.r_[xs[1:] != xs[:-1], True])
    good, passed = np.cumsum(ys)[ends], ends + 1.0
    low, high = wilson(good, passed)
    meeting = np.flatnonzero(low >= target)
    if not len(meeting):
        return None
    i = meeting[-1]
    figures = {"passes_a": int(passed[i]), "precision_a": float(good[i] / passed[i]),
               "low": float(low[i]), "high": float(high[i])}  # fmt: skip
    return float(xs[ends[i]]), figures


def summarise(rows: list[dict[str, Any]], splits: int, target: float) -> dict[str, Any]:
    """Rates over the splits where A recommended a threshold and B had candidates passing it."""
    import numpy as np

    measured = [r for r in rows if r["precision_b"] is not None]
    if not measured:
        return {"splits": splits, "recommended": len(rows), "measured": 0}
    b = np.array([r["precision_b"] for r in measured])
    low = np.array([r["low"] for r in measured])
    high = np.array([r["high"] for r in measured])
    degenerate = low >= 1.0
    inside = (low <= b) & (b <= high)
    return {
        "splits": splits,
        "recommended": len(rows),
        "measured": len(measured),  # B had at least one candidate passing the threshold
        "coverage": round(float(inside.mean()), 3),
        "one_sided": round(float((b >= low).mean()), 3),
        "b_meets_target": round(float((b >= target).mean()), 3),
        "degenerate": int(degenerate.sum()),
        "coverage_not_degenerate": _rate(inside[~degenerate]),
        "one_sided_not_degenerate": _rate((b >= low)[~degenerate]),
        "median_passes_a": float(np.median([r["passes_a"] for r in measured])),
        "mean_precision_a": round(float(np.mean([r["precision_a"] for r in measured])), 3),
        "mean_precision_b": round(float(b.mean()), 3),
        "mean_low_a": round(float(low.mean()), 3),
    }


def _rate(flags: Any) -> float | None:
    return round(float(flags.mean()), 3) if len(flags) else None


def table(results: dict[str, Any]) -> str:
    """One line per set and metric that was ever recommended."""
    lines = ["set / metric: recommended/splits (measured on B), coverage (two-sided),"
             " one-sided, B >= target; the same without [1, 1] intervals"]  # fmt: skip
    for name, found in results.items():
        rules = (("", found["metrics"]), (" [Wilson]", found["wilson"]))
        for rule, metric, s in ((r, m, s) for r, ms in rules for m, s in ms.items()):
            if not s.get("measured"):
                continue
            lines.append(
                f"  {name} {metric}{rule}: {s['recommended']}/{s['splits']} ({s['measured']}),"
                f" {s['coverage']:.2f},"
                f" {s['one_sided']:.2f}, {s['b_meets_target']:.2f}; {s['degenerate']} degenerate,"
                f" else {s['coverage_not_degenerate']}, {s['one_sided_not_degenerate']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=SETS, help=f"comma-separated *_dev sets [{SETS}]")
    parser.add_argument("--validators", default=VALIDATORS)
    parser.add_argument("--splits", type=int, default=200)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results, scoring = {}, {}
    for name in args.sets.split(","):
        db, seconds = scored_store(name, args.data, args.validators)
        scoring[name] = seconds
        split_start = time.perf_counter()
        results[name] = measure(db, args.splits, args.target)
        results[name]["splits_s"] = round(time.perf_counter() - split_start, 1)
        print(f"{name}: scored in {seconds} s (once, then cached), splits in"
              f" {results[name]['splits_s']} s", flush=True)  # fmt: skip
    print(table(results))
    print(f"expected for an exact interval and independent halves: two-sided"
          f" {EXPECTED['two_sided']}, one-sided {EXPECTED['one_sided']}")  # fmt: skip
    if args.json:
        from results import save

        save(args.json, {
            "sets": results, "validators": args.validators, "splits": args.splits,
            "target_precision": args.target, "scoring_s": scoring,
            "expected_exact_interval": EXPECTED,
            "reading": " ".join(__doc__.split("How to read the rates: ", 1)[1].split()),
            "total_s": round(time.perf_counter() - started, 1),
        })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
