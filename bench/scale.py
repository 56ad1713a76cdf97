"""A million candidates in one store: insert rate, file size, memory, and the time of every read
command, at 10k, 100k and 1M candidates.

    python bench/scale.py [--sizes 10000,100000,1000000] [--documents 1000] [--batch-size 256]
                          [--json FILE] [--keep DIR]

One run plans ``max(sizes)`` prompts (``--documents`` generated documents, the ``grounded_qa``
strategy, the mock backend answering instantly from canned outputs, the default lexical
validators ``format`` and ``overlap``). The run is stopped at each size and resumed up to the
next (each part runs the first N prompts of the same plan, in its own process, so its peak
memory is its own). At each size:

- insert rate of the part just written (candidates/s, from the first batch to the last commit),
  file size per candidate, peak RSS of the writing process;
- ``groundset runs``, each query of ``docs/sql-cookbook.md``, ``groundset sweep``, ``groundset
  accept`` with a policy and ``groundset export`` of the accepted rows to Parquet: wall time of
  the command, process start and imports included (``cli_start_s`` is that cost alone);
  cookbook queries are timed inside one process (``groundset sql`` adds ``cli_start_s``);
- at the largest size, a resumed run of the whole plan: the time to decide what is recorded.

Targets at the largest size (2 cores): peak memory < 2 GiB while writing; every cookbook query
and ``sweep`` < 2 s; export < 30 s; resume decision < 5 s; and the cost per candidate of writing
growing with exponent <= 1.05 from the smallest to the largest size (per-candidate cost of each
part, compared). Prints one summary line and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = ROOT / "docs" / "sql-cookbook.md"
MEMORY_TARGET = 2 * 1024**3
QUERY_TARGET_S = 2.0
EXPORT_TARGET_S = 30.0
RESUME_TARGET_S = 5.0
EXPONENT_TARGET = 1.05
OUTPUTS = (
    "[question]: What did the company announce?\n[answer]: The company announced a new product.",
    "[question]: How much was paid?\n[answer]: It paid $190.00 per share in cash.",
    "Sorry, I cannot help with that.",
    "[question]: When did the deal close?\n[answer]: The acquisition closed in July 2019.",
    "[question]: Who leads the unit?\n[answer]: The unit is led by its chief executive.",
)
POLICY = '[accept.strict]\nall = ["format.ok >= 1", "overlap.token_precision >= 0.5"]\n'


def write_documents(path: Path, count: int) -> None:
    """``count`` distinct documents made from the example documents' sentences."""
    sentences = []
    for line in (ROOT / "examples" / "seed-documents.jsonl").read_text().splitlines():
        if line.strip():
            text = json.loads(line)["text"]
            sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 30]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            picked = [sentences[(i * 7 + k * 13) % len(sentences)] for k in range(5)]
            text = f"Report {i}. " + " ".join(picked)
            handle.write(json.dumps({"title": f"Report {i}", "text": text}) + "\n")


def write_config(folder: Path, documents: int, largest: int, batch_size: int) -> Path:
    docs = folder / "documents.jsonl"
    write_documents(docs, documents)
    path = folder / "scale.toml"
    path.write_text(
        f'[run]\nname = "scale"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
        f"batch_size = {batch_size}\nsamples_per_document = {-(-largest // documents)}\n"
        f'[documents]\npath = "{docs}"\n[store]\ndb = "{folder / "scale.duckdb"}"\n'
        f"[backends.mock]\noutputs = {json.dumps(list(OUTPUTS))}\nhistory = false\n{POLICY}",
        encoding="utf-8",
    )
    return path


# --- the parts that run in their own process ------------------------------------------------


def fill(config: Path, upto: int) -> dict[str, Any]:
    """Run the config's plan up to its first ``upto`` prompts (resuming what is recorded)."""
    from groundset.core import engine
    from groundset.core.runner import prepare_run, start_run
    from groundset.core.settings import build_settings
    from groundset.core.store import Store

    started = time.perf_counter()
    settings = build_settings(str(config), {}, ())
    prepared = prepare_run(settings)
    planned = time.perf_counter()
    del prepared.items[upto:]
    timings: dict[str, float] = {}
    completed = engine.Store.completed_work_ids

    def timed_completed(store: Any, run_id: str) -> set[str]:
        t = time.perf_counter()
        try:
            return completed(store, run_id)
        finally:
            timings["decide_s"] = time.perf_counter() - t

    engine.Store.completed_work_ids = timed_completed  # type: ignore[method-assign]
    with Store(settings.store.db) as store:
        summary = start_run(prepared, store)
    finished = time.perf_counter()
    return {
        "upto": upto,
        "plan_s": round(planned - started, 2),
        "decide_s": round(timings.get("decide_s", 0.0), 3),
        "write_s": round(summary.seconds, 2),
        "written": summary.candidates,
        "already_done": summary.already_done,
        "total_s": round(finished - started, 2),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def cookbook(db: Path) -> dict[str, float]:
    """Each cookbook query's time, in one read-only process."""
    from groundset.core.store import Store

    queries = re.findall(r"```sql\n(.*?)```", COOKBOOK.read_text(), re.S)
    times = {}
    with Store(db, read_only=True) as store:
        for index, sql in enumerate(queries):
            started = time.perf_counter()
            store.query(sql)
            times[f"q{index}"] = round(time.perf_counter() - started, 3)
    return times


# --- the driver ---------------------------------------------------------------------------------


def _child(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"bench part {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    out = subprocess.run(["groundset", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"groundset {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return round(elapsed, 3)


def measure(folder: Path, config: Path, env: dict[str, str], size: int) -> dict[str, Any]:
    db = folder / "scale.duckdb"
    part = _child(env, "--fill", str(config), str(size))
    with_db = ["--db", str(db)]
    exported = folder / f"accepted-{size}.parquet"
    row: dict[str, Any] = {
        "candidates": size,
        "fill": part,
        "insert_rate": round(part["written"] / part["write_s"], 1) if part["written"] else None,
        "file_bytes": db.stat().st_size,
        "bytes_per_candidate": round(db.stat().st_size / size, 1),
        "cli_start_s": _command(env, "--version"),
        "runs_s": _command(env, "runs", *with_db),
        "accept_s": _command(env, "accept", str(config), "--policy", "strict"),
        "cookbook_s": _child(env, "--cookbook", str(db)),
        "sweep_s": _command(env, "sweep", "overlap.token_precision", *with_db),
        "export_s": _command(env, "export", "--policy", "strict", "-o", str(exported), *with_db),
    }
    row["export_bytes"] = exported.stat().st_size
    return row


def _exponent(rows: list[dict[str, Any]]) -> float | None:
    """Growth of the per-candidate cost of writing, smallest size to largest: 1 + the log-log
    slope of seconds per written candidate (1.0: flat)."""
    first, last = rows[0], rows[-1]
    costs = [r["fill"]["write_s"] / r["fill"]["written"] for r in (first, last)]
    if first["candidates"] == last["candidates"]:
        return None
    return 1 + math.log(costs[1] / costs[0]) / math.log(last["candidates"] / first["candidates"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the store in this folder")
    parser.add_argument("--fill", nargs=2, metavar=("CONFIG", "UPTO"), help=argparse.SUPPRESS)
    parser.add_argument("--cookbook", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        print(json.dumps(fill(Path(args.fill[0]), int(args.fill[1]))))
        return 0
    if args.cookbook:
        print(json.dumps(cookbook(Path(args.cookbook))))
        return 0

    from groundset.core.testing import install_mock_backend

    sizes = sorted(int(s) for s in args.sizes.split(","))
    folder = Path(tempfile.mkdtemp(prefix="groundset-scale-"))
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **install_mock_backend(folder / "site")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        config = write_config(folder, args.documents, sizes[-1], args.batch_size)
        rows = []
        for size in sizes:
            row = measure(folder, config, env, size)
            rows.append(row)
            worst = max(row["cookbook_s"].values())
            print(
                f"  {size:>9,} candidates: insert {row['insert_rate']}/s,"
                f" {row['bytes_per_candidate']} B/candidate, peak"
                f" {row['fill']['peak_rss_bytes'] / 2**20:.0f} MiB; runs {row['runs_s']} s,"
                f" slowest cookbook query {worst} s, sweep {row['sweep_s']} s, accept"
                f" {row['accept_s']} s, export {row['export_s']} s (CLI start"
                f" {row['cli_start_s']} s)",
                flush=True,
            )
        resumed = _child(env, "--fill", str(config), str(sizes[-1]))
        exponent = _exponent(rows)
        last = rows[-1]
        checks = {
            "memory": last["fill"]["peak_rss_bytes"] < MEMORY_TARGET,
            "cookbook": max(last["cookbook_s"].values()) < QUERY_TARGET_S,
            "sweep": last["sweep_s"] < QUERY_TARGET_S,
            "export": last["export_s"] < EXPORT_TARGET_S,
            "resume": resumed["decide_s"] < RESUME_TARGET_S and resumed["written"] == 0,
            "exponent": exponent is None or exponent <= EXPONENT_TARGET,
        }
        ok = all(checks.values())
        print(
            f"scale: {last['candidates']:,} candidates, write cost exponent"
            f" {exponent if exponent is None else round(exponent, 3)} (target <="
            f" {EXPONENT_TARGET}), peak {last['fill']['peak_rss_bytes'] / 2**30:.2f} GiB,"
            f" slowest cookbook query {max(last['cookbook_s'].values())} s, sweep"
            f" {last['sweep_s']} s, export {last['export_s']} s, resume decision"
            f" {resumed['decide_s']} s; {'OK' if ok else 'MISSED ' + str(checks)}"
        )
        if args.json:
            from results import save

            report = {"batch_size": args.batch_size, "documents": args.documents}
            report |= {"sizes": rows, "resume": resumed, "exponent": exponent, "checks": checks}
            save(args.json, report)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / "scale.duckdb", args.keep / "scale.duckdb")
        return 0 if ok else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
