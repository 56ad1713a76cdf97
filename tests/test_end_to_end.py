"""The main job for real: the example config, the default model on CPU, offline, through the
installed command line, then the queries a user runs next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.model


def groundset(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GROUNDSET_LOAD_PLUGINS": ""}
    return subprocess.run(
        [sys.executable, "-m", "groundset.core", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def run_seed_config(cwd: Path) -> subprocess.CompletedProcess:
    """The README's main job, cut down: two documents, one sample each, 40 tokens."""
    seed = str(REPO / "examples" / "seed-qa.toml")
    return groundset("run", seed, "--limit-documents", "2", "--samples", "1",
                     "--max-new-tokens", "40", "--no-progress", cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    result = run_seed_config(work)
    assert result.returncode == 0, result.stderr
    assert "2 prompts -> 2 candidates" in result.stdout
    assert "de-quantizing" not in result.stderr and "Loading weights" not in result.stderr
    return work


def test_every_generation_is_recorded_with_its_model_tokens_and_scores(real_run):
    query = (
        "SELECT model_id, raw_output, parse_ok, parse_error, input_tokens, output_tokens,"
        ' latency_s, "format.parsed" FROM candidate_scores'
    )
    result = groundset("sql", query, "--format", "json", cwd=real_run)
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    for row in rows:
        assert row["model_id"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
        assert row["raw_output"].strip()
        assert 0 < row["output_tokens"] <= 40 and row["input_tokens"] > 100
        assert row["latency_s"] > 0
        assert row["format.parsed"] == float(row["parse_ok"])
        assert row["parse_ok"] or row["parse_error"]


def test_runs_and_export_work_on_the_real_store(real_run):
    runs = json.loads(groundset("runs", "--format", "json", cwd=real_run).stdout)
    assert [(r["name"], r["status"], r["candidates"]) for r in runs] == [("seed-qa", "complete", 2)]
    out = real_run / "qa.jsonl"
    result = groundset(
        "export", "--run", "latest", "--include-failed", "-o", str(out), cwd=real_run
    )
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 2


def test_rerun_resumes_without_loading_work_twice(real_run):
    result = run_seed_config(real_run)
    assert result.returncode == 0, result.stderr
    assert "2 prompts were already recorded" in result.stdout
    count = groundset("sql", "SELECT count(*) FROM candidates", "--format", "csv", cwd=real_run)
    assert count.stdout.splitlines()[1] == "2"


def test_self_instruct_example_runs_with_the_default_model(tmp_path):
    """The README's Self-Instruct example, cut to one round of two prompts: the tiny model
    rarely follows the format, but every output is recorded, parsed or not, and scored."""
    example = str(REPO / "examples" / "self-instruct.toml")
    result = groundset("run", example, "--set", "run.max_rounds=1", "--max-new-tokens", "64",
                       "--no-progress", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "until 20 candidates are accepted" in result.stderr
    rows = groundset("sql", "SELECT count(*) AS n, count(DISTINCT work_id) AS prompts,"
                     " bool_and(raw_output IS NOT NULL) AS raw FROM candidates",
                     "--format", "json", cwd=tmp_path)  # fmt: skip
    [summary] = json.loads(rows.stdout)
    assert summary["prompts"] == 2 and summary["n"] >= 2 and summary["raw"]
    scored = groundset("sql", "SELECT DISTINCT validator FROM scores ORDER BY 1", "--format",
                       "json", cwd=tmp_path)  # fmt: skip
    assert {r["validator"] for r in json.loads(scored.stdout)} <= {"format", "dedup"}
    assert "format" in {r["validator"] for r in json.loads(scored.stdout)}
