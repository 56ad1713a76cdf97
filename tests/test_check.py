"""``groundset check``: a whole store passes; each kind of damage is named in one line."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from groundset.core.cli import cli

GOOD = "[question]: How much did IBM pay for Red Hat?\\n[answer]: IBM paid $190.00 per share."
BAD = "Sorry, no."


@pytest.fixture
def store(tmp_path, write_config, mock_backend):
    db = tmp_path / "s.duckdb"
    config = write_config(f'[backends.mock]\noutputs = ["{GOOD}", "{BAD}"]\n')
    args = ["run", str(config), "--db", str(db), "--no-progress", "--samples", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return db


def check(db):
    return CliRunner().invoke(cli, ["check", "--db", str(db)])


def test_a_store_written_by_a_run_is_whole(store):
    result = check(store)
    assert result.exit_code == 0, result.output
    assert "ok (1 run, 8 candidates," in result.output


DAMAGE = {
    "candidates.run_id -> runs": "DELETE FROM runs",
    "candidates.document_id -> documents": "DELETE FROM documents WHERE document_id IN"
    " (SELECT document_id FROM candidates LIMIT 1)",
    "scores.candidate_id -> candidates": "DELETE FROM candidates WHERE candidate_id IN"
    " (SELECT candidate_id FROM scores LIMIT 1)",
    "duplicate work": "INSERT INTO candidates SELECT * REPLACE ('copy' || candidate_id AS"
    " candidate_id) FROM candidates LIMIT 1",
    "duplicate scores": "INSERT INTO scores SELECT * FROM scores LIMIT 1",
    "run status": "UPDATE runs SET status = 'finished'",
    "complete run missing work": "UPDATE runs SET planned = planned + 3",
    "complete run missing scores": "DELETE FROM scores WHERE validator = 'overlap' AND"
    " candidate_id IN (SELECT candidate_id FROM candidates WHERE status = 'ok' LIMIT 1)",
    "candidate status": "UPDATE candidates SET status = 'ok' WHERE NOT parse_ok",
    "score range": "UPDATE scores SET value = 7 WHERE metric = 'rouge_l'",
    "label weight": "INSERT INTO labels (candidate_id, run_id, value, labeller, source, weight,"
    " sampling) SELECT candidate_id, run_id, 1, 'ann', 'review', -1, 'active' FROM candidates"
    " LIMIT 1",
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_each_kind_of_damage_is_reported_in_one_line(store, name):
    with duckdb.connect(str(store)) as db:
        db.execute(DAMAGE[name])
    result = check(store)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(line.startswith(f"{store}: {name}: ") for line in lines), result.output
    assert "Traceback" not in result.output


def test_an_old_store_is_reported_not_migrated(store):
    with duckdb.connect(str(store)) as db:
        db.execute("DELETE FROM schema_migrations WHERE name = 'm005_validator_failures'")
    result = check(store)
    assert result.exit_code == 1 and "schema: 1 migrations not applied" in result.output
    with duckdb.connect(str(store), read_only=True) as db:
        names = {r[0] for r in db.execute("SELECT name FROM schema_migrations").fetchall()}
    assert "m005_validator_failures" not in names  # check only reads


def test_a_missing_file_is_a_one_line_error(tmp_path):
    result = check(tmp_path / "none.duckdb")
    assert result.exit_code == 2 and "no store at" in result.output
