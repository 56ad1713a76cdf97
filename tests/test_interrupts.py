"""Ctrl-C on a real ``groundset run`` process: the first press stops after the batch in flight
is committed, the second at once; either way the run is marked interrupted, the command that
resumes it is printed, the exit code is 130, and what was recorded is whole and resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from groundset.core.testing import install_mock_backend

ANSWER = "[question]: How much did IBM pay?\\n[answer]: IBM paid $190.00 per share."
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def env(tmp_path):
    environment = {**os.environ, **install_mock_backend(tmp_path / "site")}
    environment.pop("GROUNDSET_DISABLED_PLUGINS", None)
    return environment


def config(tmp_path, seed_documents, delay: float) -> Path:
    path = tmp_path / "slow.toml"
    path.write_text(
        f'[run]\nname = "slow"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
        f"batch_size = 2\nsamples_per_document = 2\n"
        f'[documents]\npath = "{seed_documents}"\n'
        f'[backends.mock]\noutputs = ["{ANSWER}"]\ndelay_s = {delay}\n'
    )
    return path


def start(cfg: Path, db: Path, env: dict) -> subprocess.Popen:
    args = [sys.executable, "-m", "groundset.core", "run", str(cfg), "--db", str(db)]
    return subprocess.Popen(
        [*args, "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for_line(process: subprocess.Popen, text: str) -> None:
    for line in process.stderr:
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed")


def rows(db: Path) -> tuple[str, int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        status = con.execute("SELECT status FROM runs").fetchone()[0]
        candidates = con.execute("SELECT count(*) FROM candidates").fetchone()[0]
        batches = con.execute("SELECT count(DISTINCT batch_index) FROM candidates").fetchone()[0]
    return status, candidates, batches


def groundset(*args: str, env: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "groundset.core", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_first_ctrl_c_stops_after_the_batch_in_flight(tmp_path, seed_documents, env):
    cfg, db = config(tmp_path, seed_documents, delay=1.0), tmp_path / "s.duckdb"
    process = start(cfg, db, env)
    wait_for_line(process, "loading model")
    time.sleep(1.5)  # inside the second batch's generation
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "stopping after the batch in flight" in err
    assert f"resume with: groundset run {cfg} --db {db} --no-progress" in err
    assert "Traceback" not in err
    status, candidates, batches = rows(db)
    assert status == "interrupted"
    assert candidates == 2 * batches and 1 <= batches < 4  # whole batches only
    assert groundset("check", "--db", str(db), env=env).returncode == 0

    resumed = groundset("run", str(cfg), "--db", str(db), "--no-progress", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{candidates} already recorded" in resumed.stderr
    assert rows(db) == ("complete", 8, 4)


def test_second_ctrl_c_stops_at_once_losing_nothing_committed(tmp_path, seed_documents, env):
    cfg, db = config(tmp_path, seed_documents, delay=30.0), tmp_path / "s.duckdb"
    process = start(cfg, db, env)
    wait_for_line(process, "loading model")
    time.sleep(2.0)  # inside the first batch's 30 s generation
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert time.monotonic() - started < 10  # did not wait for the 30 s batch
    assert process.returncode == 130 and "Traceback" not in err
    assert "resume with: groundset run" in err
    assert rows(db) == ("interrupted", 0, 0)
    assert groundset("check", "--db", str(db), env=env).returncode == 0


def test_ctrl_c_twice_does_not_wait_for_requests_in_flight(tmp_path, seed_documents, env):
    """A server that takes 60 s to answer: the second Ctrl-C exits in about a second, not
    when the requests time out."""
    from groundset.core.testing.fake_servers import FakeOpenAIServer

    db = tmp_path / "s.duckdb"
    cfg = tmp_path / "remote.toml"
    with FakeOpenAIServer(models=("tiny",), latency_s=60.0) as server:
        cfg.write_text(
            f'[run]\nname = "remote"\nbackend = "openai"\nvalidators = ["format"]\n'
            f'batch_size = 4\n[documents]\npath = "{seed_documents}"\n'
            f'[backends.openai]\nmodel = "tiny"\nbase_url = "{server.base_url}"\n'
            f"concurrency = 4\ntimeout_s = 120\n"
        )
        process = start(cfg, db, env)
        wait_for_line(process, "connecting to")
        deadline = time.monotonic() + 20
        while server.inference_calls < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.inference_calls >= 4  # a batch is in flight
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert time.monotonic() - started < 5, err
    assert process.returncode == 130 and "Traceback" not in err
    assert rows(db) == ("interrupted", 0, 0)
