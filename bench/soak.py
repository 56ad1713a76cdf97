"""Crash soak: SIGKILL ``groundset run`` and ``groundset export`` at chosen moments, run the
same command again after each kill, and check that the store ends up equal, row for row, to
the store of an uninterrupted run.

    python bench/soak.py [--kills 20] [--seed 0] [--samples 24] [--json FILE] [--keep DIR]

The run is real: the engine, a DuckDB store file, the ``format`` and ``overlap`` validators,
and the mock backend (canned outputs, a few ms a batch) installed as a plugin so that
``groundset`` runs as its own process. ``GROUNDSET_PHASE_LOG`` makes the process write a line
as it enters each phase, and ``GROUNDSET_PHASE_PAUSE_S`` holds it there for a moment, so each
kill lands where it was aimed:

- ``generate``: while the backend generates a batch;
- ``validate``: while the validators score it;
- ``commit``: inside the batch's open transaction, before COMMIT;
- ``committed``: just after COMMIT;
- ``export``: while the export file is written; ``exported``: after the file is in place,
  before the export is recorded.

At the end: ``groundset check`` passes; every table equals the uninterrupted store's (all
columns but timestamps; candidate ids are content hashes, so equal rows mean the same work);
the run is complete; the export file is byte for byte the uninterrupted one; and no kill
repeated more than the one batch it interrupted. Exit code 0 when all of that holds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from groundset.core.testing import install_mock_backend

ROOT = Path(__file__).resolve().parent.parent
RUN_PHASES = ("generate", "validate", "commit", "committed")
EXPORT_PHASES = ("export", "exported")
TABLES = (
    "runs", "documents", "prompts", "candidates", "scores", "score_details",
    "validator_failures", "metrics",
)  # fmt: skip
TIMESTAMPS = {"created_at", "updated_at", "finished_at", "applied_at", "evaluated_at"}
OUTPUTS = (
    "[question]: How much did IBM pay for Red Hat?\n[answer]: IBM paid $190.00 per share in cash.",
    "[question]: What does Watson NLP offer?\n[answer]: Watson NLP runs in containers.",
    "Sorry, I cannot help with that.",
    "[question]: When did the deal close?\n[answer]: The acquisition closed in July 2019.",
)


def write_config(folder: Path, samples: int, batch_size: int) -> Path:
    outputs = json.dumps(list(OUTPUTS))
    path = folder / "soak.toml"
    path.write_text(
        f'[run]\nname = "soak"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
        f"batch_size = {batch_size}\nsamples_per_document = {samples}\n"
        f'[documents]\npath = "{ROOT / "examples" / "seed-documents.jsonl"}"\n'
        f"[backends.mock]\noutputs = {outputs}\ndelay_s = 0.005\n",
        encoding="utf-8",
    )
    return path


class Soak:
    def __init__(self, folder: Path, config: Path, rng: random.Random) -> None:
        self.folder, self.config, self.rng = folder, config, rng
        self.db = folder / "soak.duckdb"
        self.export = folder / "soak.jsonl"
        self.log = folder / "phases.log"
        self.env = {**os.environ, **install_mock_backend(folder / "site")}
        self.env["GROUNDSET_PHASE_LOG"] = str(self.log)
        self.env["GROUNDSET_PHASE_PAUSE_S"] = "0.02"
        self.kills: list[dict[str, Any]] = []

    def command(self, kind: str) -> list[str]:
        base = [sys.executable, "-m", "groundset.core"]
        if kind == "run":
            return [*base, "run", str(self.config), "--db", str(self.db), "--no-progress"]
        return [*base, "export", "--db", str(self.db), "-o", str(self.export)]

    def complete(self, kind: str) -> None:
        result = subprocess.run(self.command(kind), env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"soak: `groundset {kind}` failed after the kills:\n{result.stderr}")

    def kill_at(self, kind: str, phase: str) -> dict[str, Any]:
        """Start the command, SIGKILL it when it enters ``phase`` for the n-th time."""
        skip = self.rng.randrange(2) if kind == "run" else 0  # an export passes each once
        offset = self.log.stat().st_size if self.log.exists() else 0
        process = subprocess.Popen(
            self.command(kind), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return {"kind": kind, "phase": phase, "killed": False, "exit": process.returncode}
            if self.log.exists():
                with self.log.open(encoding="utf-8") as log:
                    log.seek(offset)
                    text = log.read()
                lines = [line.split() for line in text.splitlines() if line.strip()]
                hits = [p for p in lines if p[0] == str(process.pid) and p[1] == phase]
                if len(hits) > skip:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return {"kind": kind, "phase": phase, "killed": True, "nth": skip + 1}
            time.sleep(0.002)
        process.kill()
        raise SystemExit(f"soak: `groundset {kind}` never reached phase {phase!r}")

    def run_complete(self) -> bool:
        if not self.db.exists():
            return False
        with duckdb.connect(str(self.db), read_only=True) as con:
            row = con.execute("SELECT status FROM runs").fetchone()
        return bool(row and row[0] == "complete")

    def go(self, kills: int) -> None:
        """``kills`` SIGKILLs that land: most during the run, the last fifth during exports. An
        attempt whose process finished before its moment does not count."""
        run_kills = kills - max(1, kills // 5)
        landed = 0
        while landed < kills and len(self.kills) < 3 * kills:
            kind = "run" if landed < run_kills and not self.run_complete() else "export"
            if kind == "export" and not self.run_complete():
                self.complete("run")
            phase = self.rng.choice(RUN_PHASES if kind == "run" else EXPORT_PHASES)
            self.kills.append(self.kill_at(kind, phase))
            landed += self.kills[-1]["killed"]
        self.complete("run")
        self.complete("export")


def table_rows(db: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        kept = ", ".join(f'"{c}"' for c in columns if c not in TIMESTAMPS)
        return con.execute(f"SELECT {kept} FROM {table} ORDER BY ALL").fetchall()


def compare(a: Path, b: Path) -> dict[str, dict[str, int]]:
    out = {}
    for table in TABLES:
        rows_a, rows_b = Counter(table_rows(a, table)), Counter(table_rows(b, table))
        out[table] = {
            "rows": sum(rows_a.values()),
            "missing": sum((rows_b - rows_a).values()),
            "extra": sum((rows_a - rows_b).values()),
        }
    return out


def repeated_batches(log: Path) -> tuple[int, int]:
    """Batches generated more than once across all processes, and all generations."""
    counts = Counter(
        line.split()[2]
        for line in log.read_text().splitlines()
        if line.split()[1:2] == ["generate"]
    )
    return sum(n - 1 for n in counts.values()), sum(counts.values())


def check(db: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "groundset.core", "check", "--db", str(db)]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=48, help="prompts per document (4 docs)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder, keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="groundset-soak-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        config = write_config(folder, args.samples, args.batch_size)
        started = time.perf_counter()
        reference = Soak(folder / "reference", config, random.Random(args.seed))
        reference.folder.mkdir(exist_ok=True)
        reference.db, reference.export = folder / "reference.duckdb", folder / "reference.jsonl"
        reference.log = folder / "reference-phases.log"
        reference.env["GROUNDSET_PHASE_LOG"] = str(reference.log)
        reference.complete("run")
        reference.complete("export")
        batches = repeated_batches(reference.log)[1]

        soak = Soak(folder, config, random.Random(args.seed))
        soak.go(args.kills)
        repeated, generated = repeated_batches(soak.log)
        diff = compare(soak.db, reference.db)
        checked = check(soak.db, soak.env)
        killed = [k for k in soak.kills if k["killed"]]
        run_kills = sum(1 for k in killed if k["kind"] == "run")
        result = {
            "kills": len(killed),
            "kills_by_phase": dict(Counter(k["phase"] for k in killed)),
            "attempts_that_finished_first": len(soak.kills) - len(killed),
            "batches": batches,
            "batches_generated": generated,
            "repeated_batches": repeated,
            "rows": diff,
            "identical": all(d["missing"] == d["extra"] == 0 for d in diff.values()),
            "run_complete": soak.run_complete(),
            "export_identical": soak.export.read_bytes() == reference.export.read_bytes(),
            "check": checked.stdout.strip() or checked.stderr.strip(),
            "check_ok": checked.returncode == 0,
            "seconds": round(time.perf_counter() - started, 1),
        }
    ok = (
        result["identical"] and result["run_complete"] and result["export_identical"]
        and result["check_ok"] and repeated <= run_kills
    )  # fmt: skip
    result["ok"] = bool(ok)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
