"""Re-scoring recorded candidates with new or changed validators, without generating."""

from __future__ import annotations

import json

from click.testing import CliRunner

from groundset.core.cli import cli

COPY = (
    "[question]: What did IBM and Red Hat announce?\\n[answer]: IBM and Red Hat announced today"
    " that they have closed the transaction under which IBM acquired all of the issued"
)


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sql(db, query: str) -> list[dict]:
    return json.loads(invoke("sql", query, "--db", str(db), "--format", "json").output)


def test_validate_adds_a_validator_without_generating(tmp_path, write_config, mock_backend):
    db = tmp_path / "s.duckdb"
    config = write_config(f'[backends.mock]\noutputs = ["{COPY}"]\n')
    invoke("run", str(config), "--db", str(db), "--validators", "format", "--no-progress")
    before = sql(db, "SELECT count(*) AS n FROM candidates")[0]["n"]
    result = invoke("validate", "--db", str(db), "--validators", "overlap", "--no-progress")
    assert f"scored {before} candidate-validator pairs" in result.output
    assert sql(db, "SELECT count(*) AS n FROM candidates")[0]["n"] == before
    rows = sql(db, 'SELECT "overlap.copy_ratio" AS r FROM candidate_scores')
    assert len(rows) == before and all(r["r"] is not None for r in rows)
    assert json.loads(sql(db, "SELECT validators FROM runs")[0]["validators"]) == [
        "format",
        "overlap",
    ]
    again = invoke("validate", "--db", str(db), "--validators", "overlap", "--no-progress")
    assert "scored 0 candidate-validator pairs" in again.output


def test_changed_options_are_a_new_version_beside_the_old(tmp_path, write_config, mock_backend):
    db = tmp_path / "s.duckdb"
    config = write_config(f'[backends.mock]\noutputs = ["{COPY}"]\n')
    invoke("run", str(config), "--db", str(db), "--no-progress", "--limit-documents", "1")
    flagged = 'SELECT "overlap.verbatim_copy" AS v FROM candidate_scores'
    assert sql(db, flagged)[0]["v"] == 1.0  # a pasted sentence of the Red Hat document
    invoke("validate", "--db", str(db), "--validators", "overlap", "--no-progress",
           "--set", "validators.overlap.min_copy_tokens=1000")  # fmt: skip
    assert sql(db, flagged)[0]["v"] == 0.0  # the newest version is what the view shows
    versions = sql(
        db,
        "SELECT validator_version, value FROM scores WHERE metric ="
        " 'verbatim_copy' ORDER BY created_at",
    )
    assert [v["value"] for v in versions] == [1.0, 0.0]
    assert versions[0]["validator_version"] != versions[1]["validator_version"]
    assert all(v["validator_version"].startswith("1:") for v in versions)


def test_validate_without_validators_or_batches_is_a_clear_error(
    tmp_path, write_config, mock_backend
):
    db = tmp_path / "s.duckdb"
    invoke("run", str(write_config()), "--db", str(db), "--no-progress")
    result = CliRunner().invoke(cli, ["validate", "--db", str(db)])
    assert result.exit_code == 2 and "--validators" in result.output
    args = ["validate", "--db", str(db), "--validators", "overlap", "--batch-size", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "'--batch-size': 0 is not in the range" in result.output
