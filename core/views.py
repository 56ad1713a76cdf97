"""The views whose columns follow what is recorded: ``candidate_scores`` (one column per parsed
field of any run and per declared metric) and ``accepted_default``, built on it. The fixed views
(``latest_scores``, ``default_failures``, ``validator_results``, ``accepted``) are migrations;
these are rebuilt whenever a run declares new metrics or fields."""

from __future__ import annotations

import json

import duckdb

__all__ = ["quote_identifier", "refresh_views"]

_CANDIDATE_COLUMNS = (
    "candidate_id", "run_id", "work_id", "candidate_index", "batch_index", "sample_index",
    "document_id", "prompt_id", "fields", "raw_output", "parse_ok", "parse_error", "model_id",
    "params", "input_tokens", "output_tokens", "latency_s", "stop_reason", "created_at", "status",
    "error",
)  # fmt: skip


def quote_identifier(name: str) -> str:
    """Quote a column name for SQL; names are never pasted unquoted."""
    return '"' + name.replace('"', '""') + '"'


def refresh_views(db: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the wide ``candidate_scores`` view (one column per parsed field seen in any run
    and one per declared metric, ``"overlap.token_precision"``) and ``accepted_default``, its
    rows that parsed and pass every declared default threshold."""
    metric_rows = db.execute(
        "SELECT validator, metric FROM metrics ORDER BY validator, metric"
    ).fetchall()
    field_names = _field_names(db)
    field_sql = [
        f"c.fields->>{_literal(name)} AS {quote_identifier(name)}"
        for name in field_names
        if name not in _CANDIDATE_COLUMNS and name != "document_title"
    ]
    metric_sql = [
        f"max(s.value) FILTER (WHERE s.validator = {_literal(v)} AND s.metric = {_literal(m)})"
        f" AS {quote_identifier(f'{v}.{m}')}"
        for v, m in metric_rows
    ]
    metrics_select = ", ".join(["s.candidate_id", *metric_sql])
    select = ", ".join(
        ["c.*", "d.title AS document_title", *field_sql, "s.* EXCLUDE (candidate_id)"]
    )
    db.execute(
        f"CREATE OR REPLACE VIEW candidate_scores AS SELECT {select} FROM candidates c"
        f" LEFT JOIN documents d USING (document_id)"
        f" LEFT JOIN (SELECT {metrics_select} FROM latest_scores s GROUP BY s.candidate_id) s"
        f" ON s.candidate_id = c.candidate_id"
    )
    db.execute(
        "CREATE OR REPLACE VIEW accepted_default AS SELECT cs.* FROM candidate_scores cs"
        " WHERE cs.parse_ok AND NOT EXISTS (SELECT 1 FROM default_failures v"
        " WHERE v.candidate_id = cs.candidate_id)"
        # a validator that failed on the candidate's batch rejects it (fail-closed) until
        # a later `groundset validate` scores it
        " AND NOT EXISTS (SELECT 1 FROM validator_failures f"
        " WHERE f.candidate_id = cs.candidate_id AND f.fail_closed AND NOT EXISTS"
        " (SELECT 1 FROM scores s WHERE s.candidate_id = f.candidate_id"
        " AND s.validator = f.validator))"
    )


def _field_names(db: duckdb.DuckDBPyConnection) -> list[str]:
    names: dict[str, None] = {}
    for (fields,) in db.execute("SELECT fields FROM runs ORDER BY created_at").fetchall():
        for name in json.loads(fields or "[]"):
            names[name] = None
    return list(names)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
