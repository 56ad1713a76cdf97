"""Re-scoring: run new or changed validators over a run's recorded candidates, without
generating again. Scores of other validator versions stay in ``scores`` for comparison; the
``candidate_scores`` view shows the newest."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from groundset.core.batch_loop import record_batches
from groundset.core.interfaces import Validator
from groundset.core.records import Candidate, Document
from groundset.core.scoring import BatchScores, declarations, version_tag
from groundset.core.store import Store

__all__ = ["RescoreSummary", "recorded_candidates", "rescore_run"]

_CANDIDATES_SQL = """
SELECT c.candidate_id, c.run_id, c.work_id, c.fields, c.raw_output, c.parse_error,
       d.text, d.title, d.source, d.metadata
FROM candidates c JOIN documents d USING (document_id)
WHERE c.run_id = ? AND c.status <> 'error'
ORDER BY c.batch_index, c.candidate_id
"""


@dataclass
class RescoreSummary:
    run_id: str
    candidates: int = 0
    scored: int = 0
    skipped: int = 0
    #: validator -> batches it failed on (recorded in ``validator_failures``)
    failed: Counter[str] = field(default_factory=Counter)


def _candidate(row: tuple) -> Candidate:
    cid, run_id, work_id, fields, raw, error, text, title, source, metadata = row
    document = Document(
        text=text, title=title, source=source, metadata=json.loads(metadata or "{}")
    )
    return Candidate(cid, run_id, work_id, document, json.loads(fields or "{}"), raw, error)


def recorded_candidates(store: Store, run_id: str) -> list[Candidate]:
    """The run's recorded candidates (backend errors left out) in generation order: batch by
    batch, by candidate id within a batch, as stateful validators see them."""
    return [_candidate(r) for r in store.query(_CANDIDATES_SQL, [run_id]).rows]


def _batches(items: Sequence[Candidate], size: int) -> Iterator[list[Candidate]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _already_scored(store: Store, run_id: str, validator: Validator) -> set[str]:
    rows = store.query(
        "SELECT DISTINCT candidate_id FROM scores"
        " WHERE run_id = ? AND validator = ? AND validator_version = ?",
        [run_id, validator.validator_id, version_tag(validator)],
    ).rows
    return {r[0] for r in rows}


def _todo(validator: Validator, candidates: Sequence[Candidate], done: set[str]) -> list[Candidate]:
    """The candidates this validator version has yet to score (``done``: those it has). A
    parse failure gets no scores from most validators: it is not work left to do."""
    return [
        c
        for c in candidates
        if c.candidate_id not in done and (c.parsed or validator.scores_parse_failures)
    ]


def _scored_by_another_version(store: Store, run_id: str, validator: Validator) -> bool:
    """Would this validator's scores sit beside older ones (so ``latest_scores`` must rank)?"""
    return bool(
        store.query(
            "SELECT 1 FROM scores WHERE run_id = ? AND validator = ? AND validator_version <> ?"
            " LIMIT 1",
            [run_id, validator.validator_id, version_tag(validator)],
        ).rows
    )


def rescore_run(
    store: Store,
    run_id: str,
    validators: Sequence[Validator],
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    *,
    fail_closed: bool = True,
) -> RescoreSummary:
    """Score every candidate of the run that this exact validator version has not scored yet,
    one transaction per batch, so an interrupted re-scoring resumes where it stopped. A
    validator that fails on a batch is recorded in ``validator_failures`` (``fail_closed``:
    those candidates count as rejected until it scores them) and the re-scoring goes on.

    Progress counts (candidate, validator) pairs. ``on_plan(total, done)``, when given, is
    called once before any scoring with the pairs in all and those needing no work; then
    only scored batches go to ``on_batch``. Without it, the pairs needing no work go to
    ``on_batch`` as they are passed over."""
    candidates = recorded_candidates(store, run_id)
    summary = RescoreSummary(run_id, candidates=len(candidates))
    store.register_metrics(declarations(validators))
    done = [_already_scored(store, run_id, v) for v in validators]
    todos = [_todo(v, candidates, d) for v, d in zip(validators, done, strict=True)]
    if on_plan is not None:
        total = len(candidates) * len(validators)
        on_plan(total, total - sum(len(todo) for todo in todos))

    def record(work: tuple[Validator, list[Candidate]]) -> int:
        validator, batch = work
        scored = BatchScores().add([validator], batch, fail_closed)
        store.record_scores(run_id, scored)
        summary.scored += len(batch) if not scored.failures else 0
        summary.failed.update(scored.failed_validators)
        return len(batch)

    for validator, scored_ids, todo in zip(validators, done, todos, strict=True):
        if _scored_by_another_version(store, run_id, validator):
            store.mark_rescored(run_id, validator.validator_id)
        if validator.stateful and todo:
            # scored in generation order; what an interrupted re-scoring did is replayed
            validator.replay([c for c in candidates if c.candidate_id in scored_ids])
        summary.skipped += len(candidates) - len(todo)
        if on_plan is None and on_batch is not None and len(todo) < len(candidates):
            on_batch(len(candidates) - len(todo))
        work = ((validator, batch) for batch in _batches(todo, batch_size))
        record_batches(store, run_id, work, record, on_batch, owns_run=False)
    store.add_run_validators(run_id, [v.validator_id for v in validators])
    return summary
