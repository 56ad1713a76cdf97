"""``groundset calibrate`` on a store of a million candidates with a thousand labels: the time of
the command (process start and imports included) and of the ``calibrate()`` call, with what its
store reads cost.

    python bench/calibrate_speed.py [--candidates 1000000] [--labels 1000] [--repeat 3]
                                    [--json bench/calibrate_speed.json] [--keep DIR]

The store is real rows, multiplied: ``groundset score`` records and scores a seed file of
``--labels`` synthetic questions and answers with ``overlap`` and ``format`` (12 scores per
candidate), then SQL copies its candidates and scores until the run holds ``--candidates`` (new
ids, the same documents, fields and values), ``groundset accept`` records a policy's verdict on
every candidate, and one label per seed row is recorded on a copy spread over the whole run
(``rows.label_row``, the writer ``groundset labels import`` uses). ``groundset check`` must pass
on the result.

A calibration reads only the labelled candidates' scores and what the accept policies pass, so
its time should not grow with the run. Target: the command under 10 s on 2 cores. Prints one
summary line and exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 10.0
POLICY = '[accept.strict]\nall = ["overlap.token_precision >= 0.5", "format.ok >= 1"]\n'
DOCUMENT = (
    "The {site} plant opened in {year} and employs {staff} people in three shifts. It makes"
    " {product} for customers in {region}, and its output rose {rise} percent last year."
)
PRODUCTS = ("valves", "pumps", "gearboxes", "cables", "sensors", "turbines", "bearings")
REGIONS = ("Europe", "Asia", "South America", "the Gulf states", "Canada", "West Africa")
QUESTIONS = ("What does the {site} plant make?", "How many people work at {site}?",
             "When did the {site} plant open?", "How did output at {site} change?")  # fmt: skip


def seed_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Answers that restate their document (mostly labelled good) and answers that invent
    (mostly bad): the metrics separate them well, not perfectly, as on real data."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        facts = {"site": f"Site {i}", "year": 1950 + i % 70, "staff": 100 + 7 * i,
                 "product": rng.choice(PRODUCTS), "region": rng.choice(REGIONS),
                 "rise": rng.randint(2, 40)}  # fmt: skip
        faithful = rng.random() < 0.6
        if faithful:
            answer = rng.choice((
                "The {site} plant opened in {year} and makes {product}.",
                "{site} employs {staff} people and sells {product} in {region}.",
                "Output at {site} rose {rise} percent last year.",
            )).format(**facts)  # fmt: skip
        else:
            answer = rng.choice((
                "The {site} factory was founded by engineers from abroad in {year}.",
                "{site} closed its {product} line after a strike.",
                "Most of the {staff} workers at {site} moved to {region} last year.",
            )).format(**facts)  # fmt: skip
        label = faithful if rng.random() < 0.9 else not faithful
        question = rng.choice(QUESTIONS).format(**facts)
        rows.append({"document": DOCUMENT.format(**facts), "question": question,
                     "answer": answer, "label": int(label)})  # fmt: skip
    return rows


def groundset(*args: str) -> tuple[float, str]:
    """Run a ``groundset`` command; its wall time and output."""
    exe = Path(sys.executable).parent / "groundset"
    started = time.perf_counter()
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"groundset {' '.join(args)} failed:\n{out.stdout[-2000:]}"
                         f"{out.stderr[-3000:]}")  # fmt: skip
    return elapsed, out.stdout


def build(folder: Path, candidates: int, labels: int) -> tuple[Path, dict[str, float]]:
    """The store: a scored seed file multiplied to ``candidates``, a policy's verdicts, and one
    label per seed row. Returns its path and the time of each step."""
    from groundset.core.rows import label_row
    from groundset.core.store import Store

    times: dict[str, float] = {}
    rows = seed_rows(labels)
    data, db = folder / "seed.jsonl", folder / "calibrate.duckdb"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    times["seed_score_s"], _ = groundset(
        "score", str(data), "--db", str(db), "--validators", "overlap,format",
        "--name", "speed", "--no-progress",
    )  # fmt: skip
    copies = -(-candidates // labels)
    started = time.perf_counter()
    with Store(db) as store:
        (run_id,) = store.query("SELECT run_id FROM runs").rows[0]
        batches = store.query("SELECT max(batch_index) + 1 FROM candidates").rows[0][0]
        store.db.execute("BEGIN")
        # copy k of seed row n: new ids derived from the seed's, placed after every earlier copy
        store.db.execute(
            "CREATE TEMP TABLE copies AS SELECT c.candidate_id AS seed_id, k,"
            " md5(c.candidate_id || ':' || k)[:32] AS candidate_id,"
            " md5(c.work_id || ':' || k)[:32] AS work_id FROM candidates c, range(1, ?) t(k)"
            " WHERE c.sample_index + k * ? <= ?",
            [copies, labels, candidates],
        )
        store.db.execute(
            "INSERT INTO candidates BY NAME SELECT c.* REPLACE (k.candidate_id AS candidate_id,"
            " k.work_id AS work_id, c.batch_index + k.k * ? AS batch_index,"
            " c.sample_index + k.k * ? AS sample_index)"
            " FROM candidates c JOIN copies k ON k.seed_id = c.candidate_id",
            [batches, labels],
        )
        store.db.execute(
            "INSERT INTO scores BY NAME SELECT s.* REPLACE (k.candidate_id AS candidate_id)"
            " FROM scores s JOIN copies k ON k.seed_id = s.candidate_id"
        )
        total = store.query("SELECT count(*) FROM candidates").rows[0][0]
        store.db.execute("UPDATE runs SET planned = ? WHERE run_id = ?", [total, run_id])
        store.db.execute("COMMIT")
        store.db.execute("CHECKPOINT")
        times["multiply_s"] = time.perf_counter() - started
        # one label per seed row, on copy (n * 389) mod copies: spread over the whole run
        spread = store.query(
            "SELECT coalesce(k.candidate_id, c.candidate_id), c.sample_index FROM candidates c"
            " LEFT JOIN copies k ON k.seed_id = c.candidate_id"
            " AND k.k = (c.sample_index * 389) % ? WHERE c.sample_index <= ?",
            [copies, labels],
        ).rows
        store.record_labels([
            label_row(cid, run_id, rows[line - 1]["label"], aspect="overall",
                      labeller="bench", source="import", origin=f"{data}:{line}")
            for cid, line in sorted(spread, key=lambda r: r[1])
        ])  # fmt: skip
    policy = folder / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    times["accept_s"], _ = groundset("accept", str(policy), "--policy", "strict", "--db", str(db))
    times["check_s"], _ = groundset("check", "--db", str(db))
    return db, {k: round(v, 2) for k, v in times.items()}


def in_process(db: Path, repeat: int) -> dict[str, Any]:
    """``calibrate()`` in this process, best of ``repeat``, with the time of each store read."""
    from groundset.core import calibration
    from groundset.core.store import Store

    spent: dict[str, float] = {}

    def timed(name: str) -> Any:
        inner = getattr(calibration, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return inner, wrapper

    originals = {}
    for name in ("_labels", "_scores", "_verdicts", "_segments"):
        if hasattr(calibration, name):
            originals[name], wrapped = timed(name)
            setattr(calibration, name, wrapped)
    runs: list[dict[str, float]] = []
    try:
        with Store(db, read_only=True) as store:
            run_ids = [store.resolve_run("latest")]
            for _ in range(repeat):
                spent.clear()
                started = time.perf_counter()
                result = calibration.calibrate(store, run_ids)
                total = time.perf_counter() - started
                runs.append({"calibrate_s": total, **{f"{k}_s": v for k, v in spent.items()}})
    finally:
        for name, inner in originals.items():
            setattr(calibration, name, inner)
    best = min(runs, key=lambda r: r["calibrate_s"])
    return {
        **{k: round(v, 3) for k, v in best.items()},
        "labelled": result.labelled,
        "metrics": len(result.metrics),
        "verdicts": len(result.policies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the store in this folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(tempfile.mkdtemp(prefix="groundset-calibrate-"))
    try:
        db, build_times = build(folder, args.candidates, args.labels)
        from groundset.core.store import Store

        with Store(db, read_only=True) as store:
            counts = store.query(
                "SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM scores),"
                " (SELECT count(*) FROM labels), (SELECT count(*) FROM metrics)"
            ).rows[0]
        command = [groundset("calibrate", "--db", str(db))[0] for _ in range(args.repeat)]
        start = [groundset("--version")[0] for _ in range(args.repeat)]
        inside = in_process(db, args.repeat)
        best = min(command)
        ok = best < TARGET_S
        print(
            f"calibrate: {counts[0]:,} candidates, {counts[1]:,} scores, {counts[2]:,} labels;"
            f" command {best:.2f} s (CLI start {min(start):.2f} s), calibrate()"
            f" {inside['calibrate_s']:.2f} s (labels {inside.get('_labels_s', 0):.2f}, scores"
            f" {inside.get('_scores_s', 0):.2f}, verdicts {inside.get('_verdicts_s', 0):.2f});"
            f" target < {TARGET_S:g} s: {'OK' if ok else 'MISSED'}"
        )
        if args.json:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from results import save

            save(args.json, {
                "candidates": counts[0], "scores": counts[1], "labels": counts[2],
                "metrics": counts[3], "build": build_times,
                "command_s": [round(t, 3) for t in command],
                "cli_start_s": round(min(start), 3), "calibrate": inside,
                "target_s": TARGET_S, "ok": ok,
            })  # fmt: skip
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(db, args.keep / db.name)
        return 0 if ok else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
