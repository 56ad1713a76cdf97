"""Store schema versions: a file from a newer groundset is refused with both versions named,
and migrations land all together or not at all."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from groundset.core import migrations
from groundset.core.cli import cli
from groundset.core.errors import StoreError
from groundset.core.rows import groundset_version
from groundset.core.store import Store


def _old_store(path) -> None:
    """A store as the first release left it: only m001 applied, one candidate."""
    with duckdb.connect(str(path)) as db:
        db.execute(
            "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
        )
        name, first = migrations.MIGRATIONS[0]
        first(db)
        db.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        db.execute(
            "INSERT INTO candidates (candidate_id, run_id, work_id, candidate_index, batch_index,"
            " sample_index, document_id, raw_output, parse_ok, model_id) VALUES"
            " ('a', 'r', 'w1', 0, 0, 0, 'd', 'x', true, 'm')"
        )


def _schema(path) -> tuple[list, list]:
    with duckdb.connect(str(path), read_only=True) as db:
        applied = sorted(r[0] for r in db.execute("SELECT name FROM schema_migrations").fetchall())
        columns = [r[0] for r in db.execute("DESCRIBE candidates").fetchall()]
    return applied, columns


def test_a_store_from_a_newer_groundset_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "new.duckdb"
    Store(path).close()
    with duckdb.connect(str(path)) as db:
        db.execute(
            "INSERT INTO schema_migrations (name, groundset_version)"
            " VALUES ('m999_future', '9.1.0')"
        )
    for read_only in (False, True):
        with pytest.raises(StoreError) as caught:
            Store(path, read_only=read_only)
        message = str(caught.value)
        assert "9.1.0" in message and "m999_future" in message
        assert migrations.MIGRATIONS[-1][0] in message and "upgrade groundset" in message
    result = CliRunner().invoke(cli, ["runs", "--db", str(path)])
    assert result.exit_code == 2
    assert "9.1.0" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_store_records_which_groundset_applied_each_migration(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    with duckdb.connect(str(path), read_only=True) as db:
        versions = {
            r[0] for r in db.execute("SELECT groundset_version FROM schema_migrations").fetchall()
        }
    assert versions == {groundset_version()}


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    _old_store(path)
    before = _schema(path)

    def m900_broken(db):
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("m900_broken", m900_broken)]
    )
    with pytest.raises(RuntimeError, match="disk full"):
        Store(path)
    assert _schema(path) == before  # not one of the earlier pending migrations stayed
    with duckdb.connect(str(path), read_only=True) as db:
        tables = {
            r[0] for r in db.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert "half_done" not in tables and "validator_failures" not in tables

    monkeypatch.undo()
    with Store(path) as store:  # a working groundset then migrates it in full
        assert store.query("SELECT candidate_id, status FROM candidates").rows == [("a", "ok")]
    applied, columns = _schema(path)
    assert applied == sorted(name for name, _ in migrations.MIGRATIONS)
    assert "status" in columns


def test_scores_rescored_before_m006_are_found_so_latest_scores_keeps_one_per_metric(tmp_path):
    """A store re-scored by a version without ``rescored``: the migration finds the pairs with
    two versions from the scores themselves."""
    path = tmp_path / "old.duckdb"
    _old_store(path)
    with duckdb.connect(str(path)) as db:
        for name, step in migrations.MIGRATIONS[1:]:
            if name == "m006_fast_latest_scores":
                break
            step(db)
            db.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        db.execute(
            "INSERT INTO scores (candidate_id, run_id, validator, metric, value,"
            " validator_version, created_at) VALUES"
            " ('a', 'r', 'overlap', 'rouge_l', 0.2, '1', '2026-01-01'),"
            " ('a', 'r', 'overlap', 'rouge_l', 0.7, '1+b', '2026-02-01'),"
            " ('a', 'r', 'format', 'ok', 1.0, '1', '2026-01-01')"
        )
    with Store(path, read_only=True) as store:  # migrates first
        latest = store.query("SELECT validator, value FROM latest_scores ORDER BY validator").rows
        rescored = store.query("SELECT run_id, validator FROM rescored").rows
    assert latest == [("format", 1.0), ("overlap", 0.7)]
    assert rescored == [("r", "overlap")]
