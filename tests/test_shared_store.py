"""One store file, several processes: people look at a run while it writes (runs, sql, report),
and a second writer is turned away with one line; nothing is corrupted or lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.testing import install_mock_backend

ANSWER = "[question]: How much did IBM pay?\\n[answer]: IBM paid $190.00 per share."
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")


@pytest.fixture
def env(tmp_path):
    return {**os.environ, **install_mock_backend(tmp_path / "site")}


def config(tmp_path, seed_documents, delay: float, samples: int) -> str:
    path = tmp_path / f"run-{delay}.toml"
    path.write_text(
        f'[run]\nname = "live"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
        f"batch_size = 2\nsamples_per_document = {samples}\n"
        f'[documents]\npath = "{seed_documents}"\n'
        f'[backends.mock]\noutputs = ["{ANSWER}"]\ndelay_s = {delay}\n'
    )
    return str(path)


def start(cfg: str, db, env) -> subprocess.Popen:
    command = [sys.executable, "-m", "groundset.core", "run", cfg, "--db", str(db), "--no-progress"]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


def count(db) -> int:
    query = "SELECT count(*) AS n FROM candidates"
    result = CliRunner().invoke(cli, ["sql", query, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]["n"]


@pytest.mark.parametrize(
    "delay",
    [0.2, 1.2],
    ids=["fast batches: the writer yields on request", "slow batches: released between"],
)
def test_readers_see_a_live_run_grow_batch_by_batch(tmp_path, seed_documents, env, delay):
    db = tmp_path / "s.duckdb"
    samples = 6 if delay < 1 else 2  # 12 or 4 batches of 2
    process = start(config(tmp_path, seed_documents, delay, samples), db, env)
    seen, reads, runner = [], 0, CliRunner()
    while process.poll() is None or not seen:
        if not db.exists():
            time.sleep(0.05)
            continue
        seen.append(count(db))
        runs = runner.invoke(cli, ["runs", "--db", str(db)])
        assert runs.exit_code == 0, runs.output
        report = runner.invoke(cli, ["report", "--db", str(db)])
        assert report.exit_code == 0, report.output
        reads += 3
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    total = 4 * samples
    assert count(db) == total
    assert seen == sorted(seen) and all(n % 2 == 0 for n in seen)  # whole batches only
    assert len({n for n in seen if 0 < n < total}) >= 2, seen  # looked while it was writing
    assert reads >= 9
    assert runner.invoke(cli, ["check", "--db", str(db)]).exit_code == 0


def test_a_second_writer_is_turned_away_in_one_line(tmp_path, seed_documents, env):
    db = tmp_path / "s.duckdb"
    first = start(config(tmp_path, seed_documents, 0.5, 3), db, env)
    for line in first.stderr:
        if "loading model" in line:
            break
    second = subprocess.run(
        [sys.executable, "-m", "groundset.core", "run",
         config(tmp_path, seed_documents, 0.0, 1), "--db", str(db), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and str(db) in lines[0], second.stderr
    assert f"pid {first.pid}" in lines[0] and "being written by another groundset" in lines[0]
    assert count(db) == 12
