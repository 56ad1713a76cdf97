"""The engine end to end with the mock backend and the real lexical validators and store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from groundset.core import hookimpl
from groundset.core.runner import prepare_run, start_run
from groundset.core.settings import load_config, settings_from_config
from groundset.core.store import Store
from groundset.core.testing import MockBackend, registered_plugin

GOOD = "[question]: How much did IBM pay for Red Hat?\n[answer]: IBM paid $190.00 per share."
BAD = "I cannot help with that."


def _settings(path: Path, db: Path, **overrides):
    config = load_config(path)
    config["store"] = {"db": str(db)}
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return settings_from_config(config, str(path), path.parent)


def _counts(db: Path) -> tuple[int, int, int]:
    with Store(db, read_only=True) as store:
        return (
            store.query("SELECT count(*) FROM candidates").rows[0][0],
            store.query("SELECT count(DISTINCT candidate_id) FROM candidates").rows[0][0],
            store.query("SELECT count(*) FROM scores").rows[0][0],
        )


def test_run_records_every_candidate_and_score(tmp_path, write_config, mock_backend):
    db = tmp_path / "s.duckdb"
    settings = _settings(write_config(), db, backends={"mock": {"outputs": [GOOD, BAD]}})
    prepared = prepare_run(settings)
    with Store(db) as store:
        summary = start_run(prepared, store)
    assert summary.planned == 4 and summary.candidates == 4
    assert summary.parse_failures == 2
    with Store(db, read_only=True) as store:
        rows = store.query(
            'SELECT parse_ok, parse_error, raw_output, question, "format.parsed",'
            ' "overlap.token_precision" FROM candidate_scores ORDER BY batch_index, work_id'
        ).rows
        status = store.query("SELECT status FROM runs").rows[0][0]
    assert status == "complete"
    failures = [r for r in rows if not r[0]]
    assert all(r[2] == BAD and r[1] and r[4] == 0.0 and r[5] is None for r in failures)
    parsed = [r for r in rows if r[0]]
    assert all(r[3] == "How much did IBM pay for Red Hat?" and r[5] is not None for r in parsed)


def test_rerun_of_same_config_adds_nothing(tmp_path, write_config, mock_backend):
    db = tmp_path / "s.duckdb"
    settings = _settings(write_config(), db)
    for _ in range(2):
        with Store(db) as store:
            start_run(prepare_run(settings), store)
    total, distinct, scores = _counts(db)
    assert total == distinct == 4
    assert scores > 0


class FlakyBackend(MockBackend):
    """The mock backend, failing on call number ``fail_on_call`` of each instance."""

    backend_id = "flaky"
    fail_on_call: ClassVar[int | None] = None

    def generate(self, prompts, params):
        if self.fail_on_call is not None and len(self.calls) + 1 >= self.fail_on_call:
            raise RuntimeError("backend died")
        return super().generate(prompts, params)


class FlakyPlugin:
    @hookimpl
    def register_backends(self, register):
        register(FlakyBackend)


ROWS = (
    "SELECT c.* EXCLUDE (created_at), s.validator, s.metric, s.value FROM candidates c"
    " LEFT JOIN scores s USING (candidate_id) ORDER BY ALL"
)


def test_killed_run_resumes_to_exactly_the_expected_rows(tmp_path, write_config, monkeypatch):
    config = write_config("[backends.flaky]\noutputs = " + json.dumps([GOOD, BAD]) + "\n")
    db, reference_db = tmp_path / "s.duckdb", tmp_path / "ref.duckdb"
    with registered_plugin(FlakyPlugin(), "flaky"):
        monkeypatch.setattr(FlakyBackend, "fail_on_call", 2)  # dies after one batch
        settings = _settings(config, db, run={"backend": "flaky"})
        with Store(db) as store, pytest.raises(RuntimeError, match="backend died"):
            start_run(prepare_run(settings), store)
        with Store(db, read_only=True) as store:
            assert store.query("SELECT status FROM runs").rows[0][0] == "failed"
            assert store.query("SELECT count(*) FROM candidates").rows[0][0] == 2
        monkeypatch.setattr(FlakyBackend, "fail_on_call", None)
        with Store(db) as store:
            summary = start_run(prepare_run(settings), store)
        assert summary.resumed and summary.already_done == 2 and summary.generated == 2
        reference = _settings(config, reference_db, run={"backend": "flaky"})
        with Store(reference_db) as store:
            start_run(prepare_run(reference), store)
    with Store(db, read_only=True) as a, Store(reference_db, read_only=True) as b:
        assert a.query(ROWS).rows == b.query(ROWS).rows
        assert a.query("SELECT status FROM runs").rows[0][0] == "complete"
    total, distinct, _ = _counts(db)
    assert total == distinct == 4
