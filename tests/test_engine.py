"""The engine end to end with the mock backend and the real lexical validators and store."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from groundset.core import hookimpl
from groundset.core.records import Generation
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


class PartlyFailingBackend(MockBackend):
    """The mock backend, failing the prompts whose number is in ``failing`` (per instance)."""

    backend_id = "partly"
    failing: ClassVar[frozenset[int]] = frozenset()

    def generate(self, prompts, params):
        done = sum(len(p) for p, _ in self.calls)
        generations = super().generate(prompts, params)
        return [
            Generation("", g.model_id, error="HTTP 503: overloaded (gave up after 8 attempts)")
            if done + i in self.failing
            else g
            for i, g in enumerate(generations)
        ]


class PartlyFailingPlugin:
    @hookimpl
    def register_backends(self, register):
        register(PartlyFailingBackend)


def test_failed_prompts_are_recorded_as_errors_and_only_they_are_retried(
    tmp_path, write_config, monkeypatch
):
    config = write_config("[backends.partly]\noutputs = " + json.dumps([GOOD]) + "\n")
    db, reference_db = tmp_path / "s.duckdb", tmp_path / "ref.duckdb"
    with registered_plugin(PartlyFailingPlugin(), "partly"):
        settings = _settings(config, db, run={"backend": "partly"})
        monkeypatch.setattr(PartlyFailingBackend, "failing", frozenset({1, 2}))
        with Store(db) as store:
            summary = start_run(prepare_run(settings), store)
        assert summary.errors == 2 and summary.generated == 4
        with Store(db, read_only=True) as store:
            rows = store.query(
                "SELECT status, error, parse_ok, fields IS NULL FROM candidates"
                " WHERE status = 'error'"
            ).rows
            assert (
                rows
                == [("error", "HTTP 503: overloaded (gave up after 8 attempts)", False, True)] * 2
            )
            unscored = store.query(
                "SELECT count(*) FROM candidates c WHERE status = 'error'"
                " AND EXISTS (SELECT 1 FROM scores s WHERE s.candidate_id = c.candidate_id)"
            ).rows[0][0]
            assert unscored == 0
        monkeypatch.setattr(PartlyFailingBackend, "failing", frozenset())
        with Store(db) as store:
            prepared = prepare_run(settings)
            retried = start_run(prepared, store)
        assert retried.generated == 2 and retried.errors == 0 and retried.already_done == 2
        with Store(reference_db) as store:
            start_run(
                prepare_run(_settings(config, reference_db, run={"backend": "partly"})), store
            )
    columns = "SELECT c.* EXCLUDE (created_at, latency_s), s.validator, s.metric, s.value"
    rows = f"{columns} FROM candidates c LEFT JOIN scores s USING (candidate_id) ORDER BY ALL"
    with Store(db, read_only=True) as a, Store(reference_db, read_only=True) as b:
        assert a.query(rows).rows == b.query(rows).rows
        assert a.query("SELECT count(*) FROM candidates WHERE status = 'error'").rows[0][0] == 0
    total, distinct, _ = _counts(db)
    assert total == distinct == 4


def test_a_store_from_before_candidate_status_is_upgraded_when_read(tmp_path):
    import duckdb

    from groundset.core.migrations import MIGRATIONS

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
        )
        name, first = MIGRATIONS[0]
        first(db)
        db.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        db.execute(
            "INSERT INTO candidates (candidate_id, run_id, work_id, candidate_index, batch_index,"
            " sample_index, document_id, raw_output, parse_ok, parse_error, model_id) VALUES"
            " ('a', 'r', 'w1', 0, 0, 0, 'd', 'x', true, NULL, 'm'),"
            " ('b', 'r', 'w2', 0, 0, 1, 'd', 'y', false, 'no [answer] marker', 'm'),"
            " ('c', 'r', 'w3', 0, 0, 2, 'd', '', false, 'backend error: timed out', 'm')"
        )
    with Store(path, read_only=True) as store:
        rows = store.query(
            "SELECT candidate_id, status, error, parse_error FROM candidate_scores ORDER BY 1"
        ).rows
    assert rows == [
        ("a", "ok", None, None),
        ("b", "parse_failed", None, "no [answer] marker"),
        ("c", "error", "timed out", None),
    ]


class PipelinedBackend(MockBackend):
    """The mock backend as a server-bound one: generation may overlap scoring."""

    backend_id = "pipelined"
    overlaps_validation = True
    started: ClassVar[list[threading.Event]] = []

    def generate(self, prompts, params):
        generations = super().generate(prompts, params)
        self.started[len(self.calls) - 1].set()
        return generations


class PipelinedPlugin:
    @hookimpl
    def register_backends(self, register):
        register(PipelinedBackend)


def test_a_server_backend_generates_the_next_batch_while_this_one_is_recorded(
    tmp_path, write_config, monkeypatch
):
    config = write_config("[backends.pipelined]\noutputs = " + json.dumps([GOOD, BAD]) + "\n")
    db, reference_db = tmp_path / "s.duckdb", tmp_path / "ref.duckdb"
    monkeypatch.setattr(PipelinedBackend, "started", [threading.Event() for _ in range(2)])
    overlapped = []
    record = Store.record_batch

    def record_after_next_generation(self, run_id, documents, prompts, candidates, *rest, **kw):
        batch = candidates[0]["batch_index"]
        if batch + 1 < len(PipelinedBackend.started):
            overlapped.append(PipelinedBackend.started[batch + 1].wait(timeout=5))
        return record(self, run_id, documents, prompts, candidates, *rest, **kw)

    with registered_plugin(PipelinedPlugin(), "pipelined"):
        settings = _settings(config, db, run={"backend": "pipelined"})
        monkeypatch.setattr(Store, "record_batch", record_after_next_generation)
        with Store(db) as store:
            summary = start_run(prepare_run(settings), store)
        monkeypatch.setattr(Store, "record_batch", record)
        monkeypatch.setattr(PipelinedBackend, "overlaps_validation", False)
        with Store(reference_db) as store:
            start_run(
                prepare_run(_settings(config, reference_db, run={"backend": "pipelined"})), store
            )
    assert overlapped == [True] and summary.generated == 4
    with Store(db, read_only=True) as a, Store(reference_db, read_only=True) as b:
        assert a.query(ROWS).rows == b.query(ROWS).rows


def test_prompts_are_rendered_when_their_batch_runs_once_each(
    tmp_path, write_config, mock_backend, monkeypatch
):
    from groundset.plugins.grounded_qa import GroundedQA

    rendered: list[str] = []
    render = GroundedQA._prompt

    def counting(self, examples, target):
        rendered.append(target)
        return render(self, examples, target)

    monkeypatch.setattr(GroundedQA, "_prompt", counting)
    db = tmp_path / "s.duckdb"
    prepared = prepare_run(_settings(write_config(), db, run={"samples_per_document": 3}))
    assert rendered == []  # planning holds recipes only
    with Store(db) as store:
        summary = start_run(prepared, store)
    assert len(rendered) == summary.generated == len(prepared.items) == 12
    with Store(db, read_only=True) as store:
        stored = store.query("SELECT count(*), count(DISTINCT prompt_id) FROM candidates").rows
        texts = store.query("SELECT count(*) FROM prompts WHERE text LIKE '%[question]:'").rows
    assert stored[0][0] == 12 and texts[0][0] == stored[0][1]


def test_accept_and_validate_use_the_configs_store(
    tmp_path, write_config, mock_backend, monkeypatch
):
    from click.testing import CliRunner

    from groundset.core.cli import cli

    monkeypatch.chdir(tmp_path)  # where a default store would land
    db = tmp_path / "elsewhere.duckdb"
    config = write_config(
        f'[store]\ndb = "{db}"\n[accept.loose]\nall = ["format.parsed >= 0"]\n'
        '[backends.mock]\noutputs = ["[question]: Q?\\n[answer]: A."]\n'
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(config), "--no-progress"]).exit_code == 0
    accepted = runner.invoke(cli, ["accept", str(config), "--policy", "loose"])
    assert accepted.exit_code == 0, accepted.output
    validated = runner.invoke(cli, ["validate", str(config), "--no-progress"])
    assert validated.exit_code == 0, validated.output
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM policy_results").rows[0][0] == 4
    assert not (tmp_path / "groundset.duckdb").exists()
