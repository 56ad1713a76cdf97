"""Runs that go on until enough candidates are accepted: Self-Instruct's bootstrapping loop.

Each round is planned from the candidates accepted in earlier rounds (they join the pool of
in-context examples), generated, scored and recorded like any plan. A round depends only on
earlier, finished rounds, so a stopped run plans the same rounds again, skips what is recorded,
and continues toward the same target."""

from __future__ import annotations

import json
from collections.abc import Callable

from groundset.core.engine import (
    ROUND_STRIDE,
    BatchReport,
    RunPlugins,
    RunSummary,
    execute_plan,
    plan_round_work,
)
from groundset.core.queries import accepted_count
from groundset.core.settings import Settings
from groundset.core.store import Store

__all__ = ["STALLED_ROUNDS", "accepted_fields", "run_to_target"]

#: rounds in a row that may add no accepted candidate before the run gives up on its target
STALLED_ROUNDS = 5


def accepted_fields(store: Store, run_id: str, before_batch: int) -> list[dict[str, str]]:
    """Fields of the run's accepted candidates from batches before ``before_batch``, in the
    order they were generated."""
    rows = store.query(
        "SELECT fields FROM accepted_default WHERE run_id = ? AND batch_index < ?"
        " ORDER BY batch_index, candidate_id",
        [run_id, before_batch],
    ).rows
    return [json.loads(fields) for (fields,) in rows]


def run_to_target(
    store: Store,
    run_id: str,
    plugins: RunPlugins,
    settings: Settings,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> RunSummary:
    """Plan, generate and record rounds until ``run.target`` candidates are accepted, the
    ``run.max_rounds`` are spent, or :data:`STALLED_ROUNDS` rounds in a row add none."""
    target = settings.run.target or 0
    total = RunSummary(run_id, planned=0)
    stalled = 0
    replayed = False
    for round_index in range(settings.run.max_rounds):
        accepted = accepted_count(store, run_id)
        if accepted >= target:
            break
        pool = accepted_fields(store, run_id, round_index * ROUND_STRIDE)
        items = plan_round_work(run_id, plugins.strategy, round_index, pool, settings)
        summary = execute_plan(
            store, run_id, items, plugins, settings, on_batch,
            should_stop=lambda: accepted_count(store, run_id) >= target, final=False,
            replay=not replayed,
        )  # fmt: skip
        replayed = replayed or summary.generated > 0
        _add(total, summary)
        gained = accepted_count(store, run_id) - accepted
        stalled = stalled + 1 if summary.generated and not gained else 0
        if stalled >= STALLED_ROUNDS:
            total.stopped_early = f"{STALLED_ROUNDS} rounds in a row added no accepted candidate"
            break
    else:
        if accepted_count(store, run_id) < target:
            total.stopped_early = f"run.max_rounds ({settings.run.max_rounds}) reached"
    total.accepted = accepted_count(store, run_id)
    store.set_run_status(run_id, "complete")
    return total


def _add(total: RunSummary, part: RunSummary) -> None:
    total.planned += part.planned
    total.already_done += part.already_done
    total.generated += part.generated
    total.candidates += part.candidates
    total.parse_failures += part.parse_failures
    total.errors += part.errors
    total.seconds += part.seconds
    total.batches.extend(part.batches)
