"""``groundset check``: is a store file whole? Schema, references between tables, duplicate
work, and run statuses that agree with the rows.

Each check is one SQL query that returns the offending rows (capped), so a problem is reported
with a count and an example, and the queries double as documentation of the store's invariants.
"""

from __future__ import annotations

from dataclasses import dataclass

from groundset.core.labels import ASPECTS
from groundset.core.migrations import pending_migrations
from groundset.core.store import Store

__all__ = ["CHECKS", "Check", "Problem", "check_store", "totals"]

RUN_STATUSES = ("running", "complete", "interrupted", "failed")
CANDIDATE_STATUSES = ("ok", "parse_failed", "error")


@dataclass(frozen=True)
class Check:
    """``sql`` selects one row per violation; its first column identifies the row."""

    name: str
    what: str
    sql: str


@dataclass(frozen=True)
class Problem:
    check: str
    count: int
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


def _orphans(table: str, column: str, parent: str, parent_column: str | None = None) -> Check:
    target = parent_column or column
    return Check(
        f"{table}.{column} -> {parent}",
        f"every {table}.{column} names a row of {parent}",
        f"SELECT t.{column} FROM {table} t ANTI JOIN {parent} p ON t.{column} = p.{target}"
        f" WHERE t.{column} IS NOT NULL",
    )


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


CHECKS: tuple[Check, ...] = (
    _orphans("candidates", "run_id", "runs"),
    _orphans("candidates", "document_id", "documents"),
    _orphans("candidates", "prompt_id", "prompts"),
    _orphans("scores", "candidate_id", "candidates"),
    _orphans("score_details", "candidate_id", "candidates"),
    _orphans("validator_failures", "candidate_id", "candidates"),
    _orphans("policy_results", "candidate_id", "candidates"),
    _orphans("labels", "candidate_id", "candidates"),
    _orphans("exports", "run_id", "runs"),
    Check(
        "scores.run_id",
        "a score belongs to the run of its candidate",
        "SELECT s.candidate_id FROM scores s JOIN candidates c USING (candidate_id)"
        " WHERE s.run_id <> c.run_id",
    ),
    Check(
        "labels.run_id",
        "a label belongs to the run of its candidate",
        "SELECT l.candidate_id FROM labels l JOIN candidates c USING (candidate_id)"
        " WHERE l.run_id <> c.run_id",
    ),
    Check(
        "label aspect",
        f"a label's aspect is one of {', '.join(ASPECTS)}",
        f"SELECT candidate_id || ' ' || aspect FROM labels WHERE aspect NOT IN ({_in(ASPECTS)})",
    ),
    Check(
        "label weight",
        "a label the review queue drew has a positive sampling weight and a known phase",
        "SELECT candidate_id || ' ' || coalesce(weight::VARCHAR, 'NULL') FROM labels"
        " WHERE weight <= 0 OR (weight IS NOT NULL AND sampling NOT IN ('stratified', 'active'))",
    ),
    Check(
        "policy_results -> policies",
        "every verdict names a recorded policy version",
        "SELECT r.policy || ' ' || r.policy_version FROM policy_results r"
        " ANTI JOIN policies p USING (policy, policy_version)",
    ),
    Check(
        "calibrations.run_ids -> runs",
        "every run a recorded calibration measured is in runs",
        "SELECT c.calibration_id || ' ' || c.run_id FROM"
        " (SELECT calibration_id, unnest(run_ids) AS run_id FROM calibrations) c"
        " ANTI JOIN runs r USING (run_id)",
    ),
    Check(
        "calibrations -> policies",
        "a learned policy a calibration recorded is in policies",
        "SELECT c.calibration_id || ' ' || c.policy FROM calibrations c"
        " ANTI JOIN policies p USING (policy, policy_version) WHERE c.policy IS NOT NULL",
    ),
    Check(
        "duplicate work",
        "one candidate per (run, work id, candidate index): no prompt recorded twice",
        "SELECT run_id || ' ' || work_id FROM candidates"
        " GROUP BY run_id, work_id, candidate_index HAVING count(*) > 1",
    ),
    Check(
        "duplicate scores",
        "one value per (candidate, validator version, metric)",
        "SELECT candidate_id || ' ' || validator || '.' || metric FROM scores"
        " GROUP BY candidate_id, validator, validator_version, metric HAVING count(*) > 1",
    ),
    Check(
        "duplicate verdicts",
        "one verdict per (policy version, candidate)",
        "SELECT candidate_id || ' ' || policy FROM policy_results"
        " GROUP BY policy, policy_version, candidate_id HAVING count(*) > 1",
    ),
    Check(
        "run status",
        f"a run's status is one of {', '.join(RUN_STATUSES)}",
        f"SELECT run_id || ' ' || coalesce(status, 'NULL') FROM runs"
        f" WHERE status IS NULL OR status NOT IN ({_in(RUN_STATUSES)})",
    ),
    Check(
        "complete run missing work",
        "a complete run has a candidate row for every prompt it planned",
        "SELECT r.run_id || ' has ' || count(DISTINCT c.work_id) || ' of ' || r.planned"
        " FROM runs r LEFT JOIN candidates c USING (run_id) WHERE r.status = 'complete'"
        " GROUP BY r.run_id, r.planned HAVING count(DISTINCT c.work_id) < r.planned",
    ),
    Check(
        "complete run missing scores",
        "every parsed candidate of a complete run has each of the run's validators' scores, or"
        " a recorded validator failure",
        "WITH wanted AS (SELECT r.run_id, unnest(CAST(r.validators AS VARCHAR[])) AS validator"
        " FROM runs r WHERE r.status = 'complete')"
        " SELECT c.candidate_id || ' ' || w.validator FROM candidates c JOIN wanted w USING"
        " (run_id) WHERE c.status = 'ok' AND NOT EXISTS (SELECT 1 FROM scores s WHERE"
        " s.candidate_id = c.candidate_id AND s.validator = w.validator) AND NOT EXISTS"
        " (SELECT 1 FROM validator_failures f WHERE f.candidate_id = c.candidate_id AND"
        " f.validator = w.validator)",
    ),
    Check(
        "candidate status",
        "status agrees with the row: ok rows parsed, parse failures have a reason, errors too",
        f"SELECT candidate_id || ' ' || coalesce(status, 'NULL') FROM candidates WHERE"
        f" status IS NULL OR status NOT IN ({_in(CANDIDATE_STATUSES)})"
        " OR (status = 'ok' AND NOT parse_ok)"
        " OR (status = 'parse_failed' AND (parse_ok OR parse_error IS NULL))"
        " OR (status = 'error' AND error IS NULL)",
    ),
    Check(
        "score range",
        "a score lies within its metric's declared range",
        "SELECT s.candidate_id || ' ' || s.validator || '.' || s.metric || '=' || s.value"
        " FROM scores s JOIN metrics m USING (validator, metric)"
        " WHERE s.value < m.low - 1e-9 OR s.value > m.high + 1e-9",
    ),
)

_CAP = 5


def totals(store: Store) -> tuple[int, int, int]:
    """Runs, candidates and scores in the store."""
    row = store.query(
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM candidates),"
        " (SELECT count(*) FROM scores)"
    ).rows[0]
    return int(row[0]), int(row[1]), int(row[2])


def check_store(store: Store) -> list[Problem]:
    """Every violated invariant of ``store`` (an empty list for a whole store)."""
    problems = []
    pending = pending_migrations(store.db)
    if pending:
        detail = (
            f"{len(pending)} migrations not applied ({', '.join(pending)}): any groundset"
            " command that writes the store applies them"
        )
        problems.append(Problem("schema", len(pending), detail))
        return problems  # the other checks read columns those migrations add
    for check in CHECKS:
        count = store.query(f"SELECT count(*) FROM ({check.sql})").rows[0][0]
        if count:
            rows = store.db.execute(f"{check.sql} LIMIT {_CAP}").fetchall()
            example = ", ".join(str(r[0]) for r in rows) + (", ..." if count > _CAP else "")
            noun = "row breaks" if count == 1 else "rows break"
            detail = f"{count} {noun} '{check.what}' (e.g. {example})"
            problems.append(Problem(check.name, count, detail))
    return problems
