"""A store that cannot be written (a full disk, here a file size limit): the run stops with one
line, the file keeps every batch committed before, and a rerun with room completes it."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import duckdb
import pytest

from groundset.core.testing import install_mock_backend

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
LONG_ANSWER = "[question]: How much did IBM pay?\\n[answer]: IBM paid $190.00. " + "x" * 3000
LIMIT = 400_000  # bytes: room for some 40 of the 160 candidates


def run(cfg, db, env, limit: int | None) -> subprocess.CompletedProcess:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "groundset.core", "run", str(cfg), "--db", str(db)]
    return subprocess.run(
        [*command, "--no-progress"], env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=limited if limit else None,
    )  # fmt: skip


def test_a_full_disk_stops_the_run_in_one_line_and_a_rerun_completes_it(tmp_path, seed_documents):
    env = {**os.environ, **install_mock_backend(tmp_path / "site")}
    cfg = tmp_path / "big.toml"
    cfg.write_text(
        f'[run]\nname = "big"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
        f"batch_size = 2\nsamples_per_document = 40\n"
        f'[documents]\npath = "{seed_documents}"\n'
        f'[backends.mock]\noutputs = ["{LONG_ANSWER}"]\n'
    )
    db = tmp_path / "s.duckdb"

    full = run(cfg, db, env, LIMIT)
    assert full.returncode == 2, full.stderr
    error = [line for line in full.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and f"cannot write store {db}" in error[0]
    assert "run the same command again to resume" in error[0]
    assert "Traceback" not in full.stderr

    check = [sys.executable, "-m", "groundset.core", "check", "--db", str(db)]
    assert subprocess.run(check, env=env, capture_output=True).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM candidates").fetchone()[0]
    assert 0 < kept < 160 and kept % 2 == 0  # whole batches, all committed ones

    room = run(cfg, db, env, None)
    assert room.returncode == 0, room.stderr
    assert f"{kept} already recorded" in room.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        total = con.execute("SELECT count(*) FROM candidates").fetchone()[0]
        status = con.execute("SELECT status FROM runs").fetchone()[0]
    assert (total, status) == (160, "complete")
    assert subprocess.run(check, env=env, capture_output=True).returncode == 0
