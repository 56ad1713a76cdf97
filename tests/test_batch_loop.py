"""Every command that records work batch by batch (``run`` on either engine, ``validate``,
``score``) goes through one loop: a validator that raises or breaks its declared ranges on a
batch costs only its own scores for that batch (the failure is recorded per candidate, the
command goes on, and the user chooses whether those candidates count as rejected, the default,
or passed), and a first Ctrl-C stops after the batch in flight, keeping what was committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core import Metric, Validator, hookimpl
from groundset.core.cli import cli
from groundset.core.store import Store
from groundset.core.testing import registered_plugin

REPO = Path(__file__).resolve().parent.parent


class Flaky(Validator):
    """Scores every batch but its second, where it raises."""

    validator_id = "flaky"
    metrics = (Metric("seen", "1 for every candidate it scored", default_threshold=1.0),)
    calls = 0

    def score(self, candidates):
        Flaky.calls += 1
        if Flaky.calls == 2:
            raise RuntimeError("model server went away")
        return [{"seen": 1.0} for _ in candidates]


class StatefulFlaky(Flaky):
    """The same, scored on the driver of the Ray engine (stateful validators run there)."""

    validator_id = "stateful_flaky"
    stateful = True

    def replay(self, candidates):
        pass


class OutOfRange(Flaky):
    """Breaks its contract on every batch: a share of 2."""

    validator_id = "out_of_range"
    metrics = (Metric("share", "a share", 0.0, 1.0),)

    def score(self, candidates):
        return [{"share": 2.0} for _ in candidates]


class CtrlC(Validator):
    """Presses Ctrl-C once, while its first batch is being scored."""

    validator_id = "ctrl_c"
    metrics = (Metric("seen", "1 for every candidate it scored"),)
    calls = 0

    def score(self, candidates):
        CtrlC.calls += 1
        if CtrlC.calls == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return [{"seen": 1.0} for _ in candidates]


class Plugin:
    @hookimpl
    def register_validators(self, register):
        for validator in (Flaky, StatefulFlaky, OutOfRange, CtrlC):
            register(validator)


@pytest.fixture(autouse=True)
def plugin():
    Flaky.calls = StatefulFlaky.calls = CtrlC.calls = 0
    with registered_plugin(Plugin(), "batch-loop-test"):
        yield


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def rows(db: Path, sql: str) -> list[tuple]:
    with Store(db, read_only=True) as store:
        return store.query(sql).rows


def _data_file(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "data.jsonl"
    lines = [
        {"document": f"Fact {i}: the plant in Site {i} opened in {1990 + i}.",
         "question": f"When did the plant in Site {i} open?",
         "answer": f"The plant in Site {i} opened in {1990 + i}."}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _run(config: Path, db: Path, validators: str, *args: str):
    return invoke("run", config, "--db", db, "--no-progress", "--validators", validators,
                  "--limit-documents", "3", "--samples", "2", *args)  # fmt: skip


def _command(kind: str, tmp_path: Path, write_config, validator: str):
    """Run ``kind`` (run, validate or score) with ``format``/``overlap`` and ``validator``, in
    batches of 2 over 6 candidates; returns the result and the store."""
    db = tmp_path / "s.duckdb"
    if kind == "score":
        data = _data_file(tmp_path)
        return invoke("score", data, "--db", db, "--no-progress", "--validators",
                      f"overlap,{validator}", "--batch-size", "2"), db  # fmt: skip
    config = write_config()
    if kind == "run":
        return _run(config, db, f"format,{validator}"), db
    assert _run(config, db, "format").exit_code == 0
    return invoke("validate", "--run", "test", "--db", db, "--no-progress", "--validators",
                  validator, "--batch-size", "2"), db  # fmt: skip


def test_fail_open_lets_the_candidates_a_validator_failed_on_pass(
    tmp_path, write_config, mock_backend
):
    config = write_config()
    db = tmp_path / "s.duckdb"
    result = _run(config, db, "format,flaky", "--set", "run.on_validator_error=fail_open")
    assert result.exit_code == 0, result.output
    assert "validator flaky failed on 1 batch(es): their candidates count as passed" in (
        result.output
    )
    assert rows(db, "SELECT DISTINCT fail_closed FROM validator_failures") == [(False,)]
    in_failed_batch = "SELECT count(*) FROM accepted_default WHERE batch_index = 1"
    assert rows(db, in_failed_batch)[0][0] > 0


def test_a_score_outside_the_declared_range_is_a_failure_naming_the_plugin(
    tmp_path, write_config, mock_backend
):
    result = _run(write_config(), tmp_path / "s.duckdb", "format,out_of_range")
    assert result.exit_code == 0, result.output
    errors = rows(tmp_path / "s.duckdb", "SELECT DISTINCT error FROM validator_failures")
    assert errors == [(
        "PluginError: validator 'out_of_range' returned share = 2.0, outside its declared range"
        " [0.0, 1.0]",
    )]  # fmt: skip
    scored = "SELECT count(*) FROM scores WHERE validator = 'out_of_range'"
    assert rows(tmp_path / "s.duckdb", scored) == [(0,)]


@pytest.mark.parametrize("kind", ["run", "validate", "score"])
def test_a_failing_validator_is_recorded_and_skipped_by_every_command(
    tmp_path, write_config, mock_backend, kind
):
    result, db = _command(kind, tmp_path, write_config, "flaky")
    assert result.exit_code == 0, result.output
    assert "validator flaky failed on 1 batch(es): their candidates count as rejected" in (
        result.output
    )
    failures = rows(db, "SELECT count(*), any_value(error), bool_and(fail_closed)"
                    " FROM validator_failures WHERE validator = 'flaky'")  # fmt: skip
    assert failures == [(2, "RuntimeError: model server went away", True)]
    scored = rows(db, "SELECT count(DISTINCT candidate_id) FROM scores WHERE validator = 'flaky'")
    assert scored == [(4,)]  # the two other batches
    other = rows(db, "SELECT count(DISTINCT candidate_id) FROM scores WHERE validator <> 'flaky'")
    assert other == [(6,)]  # the other validator scored every batch
    rejected = rows(db, "SELECT count(*) FROM accepted_default a JOIN validator_failures f"
                    " USING (candidate_id)")  # fmt: skip
    assert rejected == [(0,)]  # fail-closed: not accepted until the validator scores them


def test_validate_scores_what_a_failed_batch_left_and_the_rejection_lifts(
    tmp_path, write_config, mock_backend
):
    result, db = _command("validate", tmp_path, write_config, "flaky")
    assert result.exit_code == 0, result.output
    again = invoke("validate", "--run", "test", "--db", db, "--no-progress", "--validators",
                   "flaky", "--batch-size", "2")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "scored 2 candidate-validator pairs (4 already scored" in again.output
    assert rows(
        db, "SELECT count(DISTINCT candidate_id) FROM scores WHERE validator = 'flaky'"
    ) == [(6,)]
    held_back = rows(db, "SELECT count(*) FROM validator_failures f WHERE NOT EXISTS (SELECT 1"
                     " FROM scores s WHERE s.candidate_id = f.candidate_id)")  # fmt: skip
    assert held_back == [(0,)]


@pytest.mark.parametrize(
    ("kind", "status"), [("run", "interrupted"), ("validate", "complete"), ("score", "interrupted")]
)
def test_a_first_ctrl_c_stops_every_command_after_the_batch_in_flight(
    tmp_path, write_config, mock_backend, kind, status
):
    result, db = _command(kind, tmp_path, write_config, "ctrl_c")
    assert result.exit_code == 130, result.output
    assert "stopping after the batch in flight is recorded" in result.output
    assert "interrupted: everything recorded is kept" in result.output
    # the batch in flight was committed whole, and nothing after it ran
    assert rows(db, "SELECT count(*) FROM scores WHERE validator = 'ctrl_c'") == [(2,)]
    # a command that created the run says how it ended; re-scoring leaves the run's status
    assert rows(db, "SELECT status FROM runs") == [(status,)]
    resumed, _ = _command(kind, tmp_path, write_config, "ctrl_c")
    assert resumed.exit_code == 0, resumed.output
    assert rows(db, "SELECT count(*) FROM scores WHERE validator = 'ctrl_c'") == [(6,)]
    assert rows(db, "SELECT status FROM runs") == [("complete",)]


def ray_run(config_path: str, db: str) -> None:
    """A run of the Ray engine with a validator that fails on the driver, printing the batches'
    failed validators. Run in a process of its own: a second private Ray session in the test
    process leaves Ray Data state that the Ray engine's worker-killing test trips on."""
    from groundset.core.runner import prepare_run, start_run
    from groundset.core.settings import load_config, settings_from_config
    from groundset.core.testing import MockBackendPlugin

    config = load_config(config_path)
    config["run"] |= {"validators": ["format", "stateful_flaky"], "limit_documents": 3,
                      "samples_per_document": 2}  # fmt: skip
    config["ray"] = {"generate_num_cpus": 0.5, "validate_num_cpus": 0.5, "window_batches": 2}
    with registered_plugin(Plugin(), "batch-loop-test"), \
            registered_plugin(MockBackendPlugin(), "mock-backend"):  # fmt: skip
        prepared = prepare_run(settings_from_config(config, config_path, Path(db).parent))
        with Store(db) as store:
            summary = start_run(prepared, store, engine="ray")
    print(json.dumps([b.failed_validators for b in summary.batches]))


def test_the_ray_driver_records_a_failing_validator_and_goes_on(tmp_path, write_config):
    pytest.importorskip("ray")
    db = tmp_path / "s.duckdb"
    script = (
        f"from tests.test_batch_loop import ray_run; ray_run({str(write_config())!r}, {str(db)!r})"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [[], ["stateful_flaky"], []]
    assert rows(db, "SELECT count(*), bool_and(fail_closed) FROM validator_failures") == [(2, True)]
    formatted = "SELECT count(DISTINCT candidate_id) FROM scores WHERE validator = 'format'"
    assert rows(db, formatted) == [(6,)]
    assert rows(db, "SELECT status FROM runs") == [("complete",)]
