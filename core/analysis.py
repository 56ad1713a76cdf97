"""The queries behind ``accept``, ``sweep`` and ``compare``: what passes a policy, how many pass
as one threshold moves, and two runs side by side. Plain SQL over the store's views, with values
bound as parameters and metric names checked against what validators declared."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from groundset.core.errors import ConfigError
from groundset.core.policies import Policy, parse_policies
from groundset.core.queries import accepted_count, run_totals
from groundset.core.store import Store, quote_identifier

__all__ = [
    "PolicyOutcome",
    "SweepRow",
    "apply_policy",
    "compare_runs",
    "record_verdicts",
    "recorded_policies",
    "sweep",
]


@dataclass(frozen=True)
class PolicyOutcome:
    policy: str
    version: str
    run_id: str
    candidates: int
    passed: int


def recorded_policies(store: Store, run_id: str) -> dict[str, Policy]:
    """The policies of the config the run was made with (``[accept.NAME]``)."""
    rows = store.query("SELECT config FROM runs WHERE run_id = ?", [run_id]).rows
    config = json.loads(rows[0][0]) if rows else {}
    return parse_policies({"accept": config.get("accept", {})}, f"run {run_id[:12]}")


def apply_policy(store: Store, policy: Policy, run_id: str) -> PolicyOutcome:
    """Evaluate ``policy`` on every recorded candidate of the run and record the verdicts."""
    sql = policy.sql(store.metric_columns())
    return record_verdicts(store, policy.name, policy.version, policy.definition(), sql, run_id)


def record_verdicts(
    store: Store,
    name: str,
    version: str,
    definition: dict[str, Any],
    sql: tuple[str, list[Any]],
    run_id: str,
) -> PolicyOutcome:
    """Every recorded candidate of the run through a policy's SQL expression (over
    ``candidate_scores cs`` and ``runs r``), recorded in ``policy_results`` with the policy's
    definition: threshold rules and learned policies alike."""
    expression, params = sql
    table = store.arrow(
        f"SELECT ? AS policy, ? AS policy_version, cs.run_id, cs.candidate_id,"
        f" {expression} AS passed FROM candidate_scores cs JOIN runs r USING (run_id)"
        f" WHERE cs.run_id = ? AND cs.status <> 'error'",
        [name, version, *params, run_id],
    )
    text = json.dumps(definition, sort_keys=True)
    store.record_policy(name, version, text, run_id, table)
    passed = sum(1 for value in table.column("passed").to_pylist() if value)
    return PolicyOutcome(name, version, run_id, table.num_rows, passed)


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    passing: int
    share: float


def sweep(store: Store, run_id: str, metric: str, steps: int = 20) -> tuple[list[SweepRow], int]:
    """Candidates passing every other default threshold and ``metric`` at each threshold on a
    grid over its observed range (``>=`` when higher is better, else ``<=``); and how many pass
    the others at all."""
    declared = store.query(
        "SELECT higher_is_better FROM metrics WHERE validator || '.' || metric = ?", [metric]
    ).rows
    if not declared:
        known = ", ".join(store.metric_columns()) or "none recorded yet"
        raise ConfigError(f"unknown metric {metric!r} (known: {known})")
    higher = bool(declared[0][0])
    validator, name = metric.split(".", 1)
    # straight from latest_scores: the wide candidate_scores view would pivot every metric
    values = store.arrow(
        "SELECT s.value FROM candidates c LEFT JOIN latest_scores s"
        " ON s.candidate_id = c.candidate_id AND s.validator = ? AND s.metric = ?"
        " WHERE c.run_id = ? AND c.parse_ok AND NOT EXISTS (SELECT 1 FROM default_failures f"
        " WHERE f.candidate_id = c.candidate_id AND f.validator <> ?)",
        [validator, name, run_id, validator],
    ).column("value")
    base = len(values)
    observed = pc.drop_null(values)
    if not len(observed):
        return [], base
    bounds = pc.min_max(observed)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    grid = (
        sorted({low + (high - low) * i / steps for i in range(steps + 1)}) if high > low else [low]
    )
    compare = pc.greater_equal if higher else pc.less_equal
    rows = []
    for threshold in grid:  # one vectorised pass over the values per threshold
        passing = pc.sum(compare(observed, threshold)).as_py() or 0
        rows.append(SweepRow(threshold, passing, passing / base if base else 0.0))
    return rows, base


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def compare_runs(store: Store, run_ids: list[str]) -> tuple[list[str], list[tuple]]:
    """Per run: candidates, parse rate, accepted; per validator the pass rate; per metric the
    mean and median. One row per quantity, one column per run."""
    columns = ["quantity", *[r[:12] for r in run_ids]]
    rows: list[tuple] = []

    def row(name: str, sql: str, *extra: object) -> None:
        values = [store.query(sql, [run_id, *extra]).rows[0][0] for run_id in run_ids]
        rows.append((name, *values))

    totals = [run_totals(store, run_id) for run_id in run_ids]
    rows.append(("candidates", *[t.candidates for t in totals]))
    rows.append(("parsed %", *[_percent(t.parsed, t.candidates) for t in totals]))
    rows.append(("errors", *[t.errors for t in totals]))
    rows.append(("accepted (default)", *[accepted_count(store, run_id) for run_id in run_ids]))
    validators = store.query(
        "SELECT DISTINCT validator FROM validator_results WHERE list_contains(?, run_id)"
        " ORDER BY 1",
        [run_ids],
    ).rows
    for (validator,) in validators:
        row(f"{validator} pass %", "SELECT round(100 * avg(passed::INTEGER), 1)"
            " FROM validator_results WHERE run_id = ? AND validator = ?", validator)  # fmt: skip
    for metric in store.metric_columns():
        column = f"cs.{quote_identifier(metric)}"
        present = store.query(
            f"SELECT count({column}) FROM candidate_scores cs WHERE list_contains(?, cs.run_id)",
            [run_ids],
        ).rows[0][0]
        if not present:
            continue
        row(f"{metric} mean", f"SELECT round(avg({column}), 3) FROM candidate_scores cs"
            " WHERE cs.run_id = ?")  # fmt: skip
        for label, quantile in (("p10", 0.1), ("median", 0.5), ("p90", 0.9)):
            row(f"{metric} {label}", f"SELECT round(quantile_cont({column}, {quantile}), 3)"
                " FROM candidate_scores cs WHERE cs.run_id = ?")  # fmt: skip
    return columns, rows
