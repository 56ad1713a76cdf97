"""A validator plugin that raises inside score() on one batch costs only its own scores for that
batch: the failure is recorded per candidate, the run goes on, and the user chooses whether
those candidates count as rejected (fail-closed, the default) or passed (fail-open)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from groundset.core import Metric, Validator, hookimpl
from groundset.core.cli import cli
from groundset.core.store import Store
from groundset.core.testing import registered_plugin


class Flaky(Validator):
    """Scores every batch but the second, where it raises."""

    validator_id = "flaky"
    metrics = (Metric("seen", "1 for every candidate it scored", default_threshold=1.0),)
    calls = 0

    def score(self, candidates):
        Flaky.calls += 1
        if Flaky.calls == 2:
            raise RuntimeError("model server went away")
        return [{"seen": 1.0} for _ in candidates]


class OutOfRange(Flaky):
    validator_id = "out_of_range"
    metrics = (Metric("share", "a share", 0.0, 1.0),)

    def score(self, candidates):
        return [{"share": 2.0} for _ in candidates]


class FlakyPlugin:
    @hookimpl
    def register_validators(self, register):
        register(Flaky)
        register(OutOfRange)


def _run(tmp_path, write_config, mock_backend, *args):
    Flaky.calls = 0
    db = tmp_path / "s.duckdb"
    config = write_config()
    with registered_plugin(FlakyPlugin(), "flaky"):
        result = CliRunner().invoke(
            cli,
            ["run", str(config), "--db", str(db), "--no-progress", "--validators",
             "format,flaky,out_of_range", "--limit-documents", "3", "--samples", "2", *args],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return db, result.output


def _rows(db, sql):
    with Store(db, read_only=True) as store:
        return store.query(sql).rows


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_a_validator_raising_on_one_batch_does_not_take_down_the_run(
    tmp_path, write_config, mock_backend, mode
):
    db, output = _run(tmp_path, write_config, mock_backend, "--set",
                      f"run.on_validator_error={mode}")  # fmt: skip
    assert "validator flaky failed on 1 batch(es)" in output
    assert _rows(db, "SELECT count(*) FROM candidates") == [(6,)]
    failed = _rows(db, "SELECT DISTINCT c.batch_index, f.error, f.fail_closed FROM"
                   " validator_failures f JOIN candidates c USING (candidate_id)"
                   " WHERE f.validator = 'flaky'")  # fmt: skip
    assert failed == [(1, "RuntimeError: model server went away", mode == "fail_closed")]
    scored = _rows(db, "SELECT count(DISTINCT candidate_id) FROM scores WHERE validator = 'flaky'")
    assert scored == [(4,)]  # the two other batches
    format_scored = _rows(db, "SELECT count(*) FROM scores WHERE validator = 'format'"
                          " AND metric = 'ok'")  # fmt: skip
    assert format_scored == [(6,)]  # the other validators scored every batch
    in_failed_batch = _rows(db, "SELECT count(*) FROM accepted_default WHERE batch_index = 1")
    assert in_failed_batch == [(0,)] if mode == "fail_closed" else in_failed_batch[0][0] > 0


def test_a_score_outside_the_declared_range_is_a_failure_naming_the_plugin(
    tmp_path, write_config, mock_backend
):
    db, _ = _run(tmp_path, write_config, mock_backend)
    errors = _rows(db, "SELECT DISTINCT error FROM validator_failures"
                   " WHERE validator = 'out_of_range'")  # fmt: skip
    assert errors == [(
        "PluginError: validator 'out_of_range' returned share = 2.0, outside its declared range"
        " [0.0, 1.0]",
    )]  # fmt: skip
    assert _rows(db, "SELECT count(*) FROM scores WHERE validator = 'out_of_range'") == [(0,)]
