"""The queries behind ``runs``, the run summary and ``export``: plain SQL over the store, with
every user-given value bound as a parameter and every column name checked and quoted."""

from __future__ import annotations

from dataclasses import dataclass

from groundset.core.store import QueryResult, Store

__all__ = [
    "RunTotals",
    "accepted_count",
    "accepted_source",
    "pass_rates",
    "run_totals",
    "runs_overview",
]

#: a run's totals, the one definition every summary reads (``runs``, the run and score
#: summaries, ``compare``, ``report``); ``{where}`` picks the runs
TOTALS_SQL = """
    SELECT run_id, count(*) FILTER (WHERE status <> 'error') AS candidates,
           count(*) FILTER (WHERE parse_ok) AS parsed,
           count(*) FILTER (WHERE status = 'parse_failed') AS parse_failures,
           count(*) FILTER (WHERE status = 'error') AS errors,
           -- token counts are per generation: count each once, on its first candidate
           sum(input_tokens) FILTER (WHERE candidate_index = 0) AS prompt_tokens,
           sum(output_tokens) FILTER (WHERE candidate_index = 0) AS completion_tokens
    FROM candidates {where} GROUP BY run_id"""

#: candidates accepted: passing every default threshold, or the latest evaluated version of a
#: named policy (``groundset accept``); the one place "accepted" is counted
ACCEPTED_DEFAULT_SQL = "SELECT run_id, candidate_id FROM accepted_default"
ACCEPTED_POLICY_SQL = "SELECT run_id, candidate_id FROM accepted WHERE policy = ?"

RUNS_SQL = f"""
WITH counts AS ({TOTALS_SQL.format(where="")}),
prices AS (
    SELECT r.run_id, coalesce(r.config->'pricing'->>'currency', 'USD') AS currency,
           CASE WHEN coalesce(r.config->'pricing'->>'input_per_million_tokens',
                              r.config->'pricing'->>'output_per_million_tokens') IS NOT NULL
           THEN (coalesce(c.prompt_tokens, 0)
                 * coalesce((r.config->'pricing'->>'input_per_million_tokens')::DOUBLE, 0)
                 + coalesce(c.completion_tokens, 0)
                 * coalesce((r.config->'pricing'->>'output_per_million_tokens')::DOUBLE, 0))
                / 1e6 END AS cost
    FROM runs r LEFT JOIN counts c USING (run_id)),
accepted AS (SELECT run_id, count(*) AS accepted FROM ({ACCEPTED_DEFAULT_SQL}) GROUP BY run_id),
rates AS (
    SELECT run_id, string_agg(validator || ' ' || round(100 * rate, 1) || '%', ', '
                              ORDER BY validator) AS pass_rates
    FROM (SELECT run_id, validator, avg(passed::INTEGER) AS rate
          FROM validator_results GROUP BY ALL)
    GROUP BY run_id)
SELECT left(r.run_id, 12) AS run, r.name, r.status, r.model_id AS model,
       strftime(r.created_at, '%Y-%m-%d %H:%M') AS created,
       coalesce(c.candidates, 0) AS candidates, coalesce(c.parsed, 0) AS parsed,
       coalesce(c.errors, 0) AS errors, coalesce(a.accepted, 0) AS accepted,
       c.prompt_tokens, c.completion_tokens,
       round(p.cost, 4) || ' ' || p.currency AS cost,
       round(p.cost / nullif(a.accepted, 0), 6) || ' ' || p.currency AS cost_per_accepted,
       rates.pass_rates
FROM runs r
LEFT JOIN counts c USING (run_id)
LEFT JOIN prices p USING (run_id)
LEFT JOIN accepted a USING (run_id)
LEFT JOIN rates USING (run_id)
ORDER BY r.created_at
"""


@dataclass(frozen=True)
class RunTotals:
    """What one run holds: candidates (backend errors left out), parsed, parse failures,
    backend errors, and tokens (``None``: the backend did not say)."""

    candidates: int = 0
    parsed: int = 0
    parse_failures: int = 0
    errors: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def run_totals(store: Store, run_id: str) -> RunTotals:
    sql = TOTALS_SQL.format(where="WHERE run_id = ?")
    rows = store.query(f"SELECT * EXCLUDE (run_id) FROM ({sql})", [run_id]).rows
    return RunTotals(*rows[0]) if rows else RunTotals()


def accepted_source(policy: str | None = None) -> tuple[str, list[object]]:
    """SQL selecting (run_id, candidate_id) of accepted candidates, and its parameters."""
    if policy is None:
        return ACCEPTED_DEFAULT_SQL, []
    return ACCEPTED_POLICY_SQL, [policy]


def accepted_count(store: Store, run_id: str, policy: str | None = None) -> int:
    """Candidates of the run accepted by every default threshold, or by ``policy``."""
    sql, params = accepted_source(policy)
    result = store.query(f"SELECT count(*) FROM ({sql}) WHERE run_id = ?", [*params, run_id])
    return int(result.rows[0][0])


def runs_overview(store: Store) -> QueryResult:
    """One row per run: status, counts, backend errors, accepted under default thresholds,
    prompt and completion tokens, cost per accepted candidate (with ``[pricing]``), pass
    rates."""
    return store.query(RUNS_SQL)


def pass_rates(store: Store, run_id: str) -> QueryResult:
    """Per validator: candidates scored, passed, and pass rate for one run."""
    return store.query(
        "SELECT validator, count(*) AS scored, count(*) FILTER (WHERE passed) AS passed,"
        " round(100 * avg(passed::INTEGER), 1) AS pass_pct"
        " FROM validator_results WHERE run_id = ? GROUP BY validator ORDER BY validator",
        [run_id],
    )
