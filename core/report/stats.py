"""The numbers of a report: plain SQL against the store (values bound as parameters, metric
columns quoted) gathers a run, and Python computes the statistics, the threshold sweeps and the
ranking (the rule is in the package docstring)."""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Sequence
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.queries import accepted_source, pass_rates, run_totals
from groundset.core.report.model import (
    BINS,
    MetricInfo,
    MetricStats,
    RankedCandidate,
    RunReport,
    Sweep,
)
from groundset.core.store import Store, quote_identifier

__all__ = [
    "EXCERPT_CHARS",
    "HUGE_SPAN",
    "POLICY_PREFIX",
    "RANKED",
    "SWEEP_POINTS",
    "TOP_DOCUMENTS",
    "check_accepted_view",
    "gather",
]

#: a declared range wider than this (word counts: 0..10000) is replaced by the observed range
HUGE_SPAN = 1000.0
#: points of each threshold sweep (plus the default threshold)
SWEEP_POINTS = 41
TOP_DOCUMENTS = 30
RANKED = 10
EXCERPT_CHARS = 300
#: ``--accepted-view policy:NAME``: what ``groundset accept --policy NAME`` passed
POLICY_PREFIX = "policy:"


def _policy(accepted_view: str) -> str | None:
    """The policy name of ``policy:NAME``, else None."""
    if accepted_view.startswith(POLICY_PREFIX):
        return accepted_view[len(POLICY_PREFIX) :]
    return None


def check_accepted_view(store: Store, name: str) -> None:
    """``name`` must be a view (or table) of the store with ``run_id`` and ``candidate_id``, or
    ``policy:NAME`` for a policy recorded by ``groundset accept``."""
    policy = _policy(name)
    if policy is not None:
        if not store.query("SELECT 1 FROM policies WHERE policy = ?", [policy]).rows:
            raise ConfigError(
                f"--policy {policy!r} has not been applied: run `groundset accept [CONFIG]"
                f" --policy {policy}` first (CONFIG: the file with [accept.{policy}], if not the"
                " run's own)"
            )
        return
    rows = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]
    ).rows
    columns = {r[0] for r in rows}
    if not columns:
        views = store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
            " ORDER BY table_name"
        ).rows
        known = ", ".join(r[0] for r in views) or "none"
        raise ConfigError(
            f"--accepted-view {name!r}: no such view in {store.path} (views: {known})"
        )
    missing = {"run_id", "candidate_id"} - columns
    if missing:
        raise ConfigError(
            f"--accepted-view {name!r} lacks column(s) {', '.join(sorted(missing))}:"
            " it should select candidate_scores rows"
        )


def _accepted_source(accepted_view: str) -> tuple[str, list[object]]:
    """SQL selecting the (run_id, candidate_id) rows that count as accepted, and its parameters:
    the project's own for ``accepted_default`` and ``policy:NAME``, else the user's view."""
    policy = _policy(accepted_view)
    if policy is not None or accepted_view == "accepted_default":
        return accepted_source(policy)
    return f"SELECT run_id, candidate_id FROM {quote_identifier(accepted_view)}", []


def gather(store: Store, run_id: str, accepted_view: str = "accepted_default") -> RunReport:
    """Everything the report shows about one run (``run_id`` already resolved)."""
    run = store.query(
        "SELECT name, status, strategy, model_id, strftime(created_at, '%Y-%m-%d %H:%M'),"
        " validators, fields FROM runs WHERE run_id = ?",
        [run_id],
    ).rows
    if not run:
        raise ConfigError(f"no run {run_id!r} in {store.path}: `groundset runs` lists them")
    name, status, strategy, model_id, created, validators_json, fields_json = run[0]
    accepted_sql, accepted_params = _accepted_source(accepted_view)
    totals = run_totals(store, run_id)
    latency_median, latency_p95 = store.query(
        "SELECT median(latency_s) FILTER (WHERE candidate_index = 0),"
        " quantile_cont(latency_s, 0.95) FILTER (WHERE candidate_index = 0)"
        " FROM candidates WHERE run_id = ?",
        [run_id],
    ).rows[0]
    status_counts = store.query(
        "SELECT coalesce(status, 'ok'), count(*) FROM candidates WHERE run_id = ?"
        " GROUP BY ALL ORDER BY 1",
        [run_id],
    ).rows
    reasons = store.query(
        "SELECT coalesce(parse_error, '(no reason recorded)') AS reason, count(*) AS n"
        " FROM candidates WHERE run_id = ? AND status = 'parse_failed'"
        " GROUP BY ALL ORDER BY n DESC, reason",
        [run_id],
    ).rows
    accepted = store.query(
        f"SELECT count(*) FROM ({accepted_sql}) WHERE run_id = ?", [*accepted_params, run_id]
    ).rows[0][0]

    infos = _run_metrics(store, run_id, validators_json)
    ids, parsed, columns = _scores(store, run_id, infos)
    stats, unscored = [], []
    for info in infos:
        values = [float(v) for v in columns[info.key] if v is not None and math.isfinite(v)]
        if values:
            stats.append(_stats(info, values))
        else:
            unscored.append(info)
    ranking = _rank(stats, columns, ids, parsed)
    best, worst = ranking[:RANKED], ranking[::-1][:RANKED]
    _add_details(store, [*best, *worst], json.loads(fields_json or "[]"))
    documents = _documents(store, run_id, accepted_sql, accepted_params)
    return RunReport(
        run_id=run_id,
        name=name,
        status=status,
        strategy=strategy,
        model_id=model_id,
        created=created,
        status_counts=dict(status_counts),
        parse_failures=[(r[0], r[1]) for r in reasons],
        accepted=accepted,
        accepted_view=accepted_view,
        pass_rates=[tuple(r) for r in pass_rates(store, run_id).rows],
        metrics=stats,
        unscored=unscored,
        sweeps=_sweeps(stats, columns, parsed),
        documents=documents[:TOP_DOCUMENTS],
        document_count=len(documents),
        best=best,
        worst=worst,
        ranked_count=len(ranking),
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        latency_median=latency_median,
        latency_p95=latency_p95,
    )


def _run_metrics(store: Store, run_id: str, validators_json: str | None) -> list[MetricInfo]:
    """Declared metrics of the run's validators that ``candidate_scores`` has a column for:
    those of its config, and any that scored it later (``groundset score``)."""
    validators = set(json.loads(validators_json or "[]"))
    scored = store.query("SELECT DISTINCT validator FROM scores WHERE run_id = ?", [run_id]).rows
    validators |= {r[0] for r in scored}
    rows = store.query(
        "SELECT validator, metric, low, high, higher_is_better, default_threshold,"
        " coalesce(description, '') FROM metrics WHERE list_contains(?, validator)"
        " ORDER BY validator, metric",
        [sorted(validators)],
    ).rows
    view_columns = set(store.query("SELECT * FROM candidate_scores LIMIT 0").columns)
    return [info for info in (MetricInfo(*r) for r in rows) if info.key in view_columns]


def _scores(
    store: Store, run_id: str, infos: Sequence[MetricInfo]
) -> tuple[list[str], list[bool], dict[str, list[Any]]]:
    """The run's candidates (without backend errors) by id: ids, whether each parsed, and one
    column of scores per metric."""
    metric_sql = "".join(f", {quote_identifier(m.key)}" for m in infos)
    rows = store.query(
        f"SELECT candidate_id, parse_ok{metric_sql} FROM candidate_scores"
        " WHERE run_id = ? AND status IS DISTINCT FROM 'error' ORDER BY candidate_id",
        [run_id],
    ).rows
    columns = {m.key: [r[2 + i] for r in rows] for i, m in enumerate(infos)}
    return [r[0] for r in rows], [bool(r[1]) for r in rows], columns


def _documents(
    store: Store, run_id: str, accepted_sql: str, accepted_params: list[object]
) -> list[tuple[str, str | None, int, int]]:
    """(document_id, title, candidates, accepted) per document, highest yield first."""
    rows = store.query(
        "SELECT c.document_id, any_value(d.title) AS title, count(*) AS candidates,"
        " count(a.candidate_id) AS accepted"
        " FROM candidates c LEFT JOIN documents d USING (document_id)"
        f" LEFT JOIN (SELECT DISTINCT candidate_id FROM ({accepted_sql}) WHERE run_id = ?) a"
        " ON a.candidate_id = c.candidate_id"
        " WHERE c.run_id = ? AND c.status IS DISTINCT FROM 'error'"
        " GROUP BY c.document_id"
        " ORDER BY accepted / candidates DESC, candidates DESC, title, c.document_id",
        [*accepted_params, run_id, run_id],
    ).rows
    return [tuple(r) for r in rows]


def _metric_range(info: MetricInfo, values: Sequence[float]) -> tuple[float, float, bool]:
    """The declared low..high, or the observed range when that is open or huge."""
    low, high = info.low, info.high
    if (
        low is not None
        and high is not None
        and math.isfinite(low)
        and math.isfinite(high)
        and 0 < high - low <= HUGE_SPAN
    ):
        return float(low), float(high), False
    low, high = min(values), max(values)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return low, high, True


def _stats(info: MetricInfo, values: list[float]) -> MetricStats:
    low, high, observed = _metric_range(info, values)
    counts = [0] * BINS
    for v in values:
        counts[min(BINS - 1, max(0, int((v - low) / (high - low) * BINS)))] += 1
    return MetricStats(info, values, low, high, observed, counts)


def _sweeps(
    stats: list[MetricStats], columns: dict[str, list[Any]], parsed: list[bool]
) -> list[Sweep]:
    """Per metric: how many parsed candidates pass every other default threshold and this metric
    at each threshold of a grid over its range (a missing score passes, as in
    ``accepted_default``; at the default threshold the count is ``accepted_default``'s)."""
    gated = [s.info for s in stats if s.info.default_threshold is not None]
    failed: list[list[str]] = [[] for _ in parsed]
    for info in gated:
        for i, v in enumerate(columns[info.key]):
            if parsed[i] and not info.passes(v):
                failed[i].append(info.key)
    sweeps = []
    for s in stats:
        key = s.info.key
        eligible = [
            columns[key][i]
            for i, ok in enumerate(parsed)
            if ok and (not failed[i] or failed[i] == [key])
        ]
        values = sorted(float(v) for v in eligible if v is not None and math.isfinite(v))
        missing = len(eligible) - len(values)  # no score (or NaN) counts as passing
        grid = {s.low + (s.high - s.low) * k / (SWEEP_POINTS - 1) for k in range(SWEEP_POINTS)}
        default = s.info.default_threshold
        if default is not None and s.low <= default <= s.high:
            grid.add(float(default))
        thresholds = sorted(grid)
        if s.info.higher_is_better:
            counts = [missing + len(values) - bisect.bisect_left(values, t) for t in thresholds]
        else:
            counts = [missing + bisect.bisect_right(values, t) for t in thresholds]
        sweeps.append(Sweep(s.info, thresholds, counts))
    return sweeps


def _rank(
    stats: list[MetricStats], columns: dict[str, list[Any]], ids: list[str], parsed: list[bool]
) -> list[RankedCandidate]:
    """Parsed candidates, best first (see the package docstring for the rule)."""
    gated = [s.info for s in stats if s.info.default_threshold is not None]
    ranked = []
    for i, candidate_id in enumerate(ids):
        if not parsed[i]:
            continue
        failed = [m.key for m in gated if not _passes_scored(m, columns[m.key][i])]
        normalised = [
            s.normalise(float(columns[s.info.key][i]))
            for s in stats
            if columns[s.info.key][i] is not None and math.isfinite(columns[s.info.key][i])
        ]
        score = statistics.fmean(normalised) if normalised else None
        ranked.append(
            RankedCandidate(candidate_id, len(gated) - len(failed), len(gated), score, failed)
        )
    ranked.sort(key=lambda c: c.candidate_id)
    ranked.sort(key=lambda c: (c.passed, -1.0 if c.score is None else c.score), reverse=True)
    return ranked


def _passes_scored(info: MetricInfo, value: float | None) -> bool:
    return value is not None and info.passes(value)


def _add_details(store: Store, candidates: list[RankedCandidate], order: list[str]) -> None:
    """Fields (in the strategy's order) and document excerpt of the candidates shown."""
    if not candidates:
        return
    rows = store.query(
        "SELECT c.candidate_id, c.fields, d.title, left(d.text, ?), length(d.text)"
        " FROM candidates c LEFT JOIN documents d USING (document_id)"
        " WHERE list_contains(?, c.candidate_id)",
        [EXCERPT_CHARS, sorted({c.candidate_id for c in candidates})],
    ).rows
    details = {r[0]: r[1:] for r in rows}
    rank = {name: i for i, name in enumerate(order)}
    for c in candidates:
        fields, title, excerpt, length = details.get(c.candidate_id, (None, None, "", 0))
        values = json.loads(fields) if fields else {}
        c.fields = dict(sorted(values.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        c.document_title = title
        c.excerpt = (excerpt or "") + ("…" if (length or 0) > EXCERPT_CHARS else "")
