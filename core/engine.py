"""The engine: plan -> generate -> parse -> validate -> record, one planned batch at a time.

Work items have content-hash ids and batches are fixed when planning, so running the same config
again skips every batch already recorded and redoes at most the one in flight when it stopped."""

from __future__ import annotations

import functools
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core.batch_loop import record_batches
from groundset.core.errors import PluginError
from groundset.core.interfaces import Backend, Strategy, Validator
from groundset.core.phases import mark
from groundset.core.records import (
    Candidate,
    Document,
    Generation,
    GenerationParams,
    ParsedCandidate,
    PlannedPrompt,
    Prompt,
    content_hash,
)
from groundset.core.rows import as_json, candidate_row, document_row, prompt_row
from groundset.core.scoring import BatchScores
from groundset.core.settings import Settings
from groundset.core.store import Store
from groundset.core.threads import DaemonThreadPool

__all__ = [
    "BatchReport",
    "RunPlugins",
    "RunSummary",
    "WorkItem",
    "execute_plan",
    "plan_round_work",
    "plan_work",
]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One prompt to complete: the unit of resumption, identified by a content hash."""

    work_id: str
    batch_index: int
    sample_index: int
    planned: PlannedPrompt


@dataclass(frozen=True)
class RunPlugins:
    """The plugin instances one run uses."""

    strategy: Strategy
    backend: Backend
    validators: tuple[Validator, ...]


@dataclass(frozen=True)
class BatchReport:
    """What one recorded batch produced, for progress displays."""

    batch_index: int
    prompts: int
    candidates: int
    parse_failures: int
    #: prompts the backend failed on (recorded as ``error`` rows, retried by the next run)
    errors: int = 0
    #: validators that raised on this batch (recorded in ``validator_failures``)
    failed_validators: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    """The outcome of :func:`execute_plan`."""

    run_id: str
    planned: int
    already_done: int = 0
    generated: int = 0
    candidates: int = 0
    parse_failures: int = 0
    errors: int = 0
    seconds: float = 0.0
    resumed: bool = False
    batches: list[BatchReport] = field(default_factory=list)
    #: runs toward a target: candidates accepted at the end, and why it stopped short
    accepted: int | None = None
    stopped_early: str | None = None

    def add(self, report: BatchReport) -> None:
        self.batches.append(report)
        self.generated += report.prompts
        self.candidates += report.candidates
        self.parse_failures += report.parse_failures
        self.errors += report.errors


def plan_work(
    run_id: str, strategy: Strategy, documents: Sequence[Document], settings: Settings
) -> list[WorkItem]:
    """The whole plan, deterministic for a config: same prompts, ids and batches every time."""
    rng = random.Random(settings.run.seed)
    planned = strategy.plan(documents, settings.run.samples_per_document, rng)
    seen: dict[str, int] = {}
    items = []
    for index, plan in enumerate(planned):
        doc_id = plan.document.document_id
        sample = seen[doc_id] = seen.get(doc_id, -1) + 1
        work_id = content_hash("work", run_id, doc_id, strategy.strategy_id, sample)[:32]
        items.append(WorkItem(work_id, index // settings.run.batch_size, sample, plan))
    return items


#: batches handed to a server-bound backend at once: the one being generated and the next
_LOOKAHEAD = 2


#: batch numbers each round of a bootstrapping run may use: round r has batches r * STRIDE + i
ROUND_STRIDE = 100_000


def plan_round_work(
    run_id: str,
    strategy: Strategy,
    round_index: int,
    accepted: Sequence[dict[str, str]],
    settings: Settings,
) -> list[WorkItem]:
    """Round ``round_index`` of a bootstrapping run. Its batches are numbered after every
    earlier round's (rounds have the same size), so batch order is generation order."""
    rng = random.Random(content_hash("round", settings.run.seed, round_index))
    planned = strategy.plan_round(round_index, accepted, rng)
    if len(planned) > settings.run.batch_size * ROUND_STRIDE:
        raise PluginError(f"strategy {strategy.strategy_id!r} planned too many prompts a round")
    items = []
    for index, plan in enumerate(planned):
        work_id = content_hash("work", run_id, strategy.strategy_id, "round", round_index, index)
        batch = round_index * ROUND_STRIDE + index // settings.run.batch_size
        items.append(WorkItem(work_id[:32], batch, index, plan))
    return items


def batch_seed(seed: int, batch_index: int) -> int:
    """A per-batch sampling seed, so a resumed batch samples exactly as it would have."""
    return int(content_hash("seed", seed, batch_index)[:8], 16) % (2**31)


def _candidates(run_id: str, item: WorkItem, generation: Generation, strategy: Strategy):
    """(index, candidate) pairs of one generation; a generation the backend could not produce
    gives none (it is recorded as one ``error`` row and retried by the next run)."""
    if generation.error is not None:
        return
    parsed = strategy.parse(generation) or [
        ParsedCandidate({}, generation.text, "parser returned no candidates")
    ]
    for index, p in enumerate(parsed):
        candidate_id = content_hash("candidate", item.work_id, index)[:32]
        yield (
            index,
            Candidate(
                candidate_id, run_id, item.work_id, item.planned.document, p.fields, p.raw, p.error
            ),
        )


def _error_candidate(run_id: str, item: WorkItem, generation: Generation) -> Candidate:
    candidate_id = content_hash("candidate", item.work_id, 0)[:32]
    return Candidate(candidate_id, run_id, item.work_id, item.planned.document, {}, generation.text)


#: a batch's prompts, rendered when it runs, and the backend's generations for them in order
Generated = tuple[list[Prompt], list[Generation]]


def generate_batch(batch: list[WorkItem], plugins: RunPlugins, settings: Settings) -> Generated:
    """Render one batch's prompts and generate them."""
    return _generate(batch, plugins, batch_params(batch, plugins.strategy, settings))


def _generate(batch: list[WorkItem], plugins: RunPlugins, params: GenerationParams) -> Generated:
    mark("generate", batch[0].batch_index)
    prompts = [item.planned.prompt for item in batch]
    return prompts, plugins.backend.generate(prompts, params)


@dataclass
class _Recorded:
    """What the store already holds for the running plan, so a batch sends only what is new:
    each document once, and a delete of earlier error rows only for prompts that have them."""

    documents: set[str] = field(default_factory=set)
    error_work_ids: set[str] | None = None  # None: unknown, replace every prompt's error rows


@dataclass
class BuiltBatch:
    """One batch's generations parsed into candidate rows, before any validator ran."""

    batch: list[WorkItem]
    prompts: list[Prompt]
    rows: list[dict[str, Any]]
    candidates: list[Candidate]
    errors: int


def build_batch(
    run_id: str,
    batch: list[WorkItem],
    generated: Generated,
    strategy: Strategy,
    params: GenerationParams,
    backend_id: str = "",
) -> BuiltBatch:
    """Parse a batch's generations into candidate rows (an engine-independent step: the local
    engine and the Ray stages call it with the same inputs, so they write the same rows)."""
    prompts, generations = generated
    if len(generations) != len(batch):
        raise PluginError(
            f"backend {backend_id!r} returned {len(generations)} generations"
            f" for {len(batch)} prompts"
        )
    stop = params.stop
    params_json = as_json({k: v for k, v in vars(params).items() if k != "stop"} | {"stop": stop})
    rows, candidates, errors = [], [], 0
    for item, prompt, generation in zip(batch, prompts, generations, strict=True):
        row = functools.partial(
            candidate_row,
            batch_index=item.batch_index,
            sample_index=item.sample_index,
            prompt_id=prompt.prompt_id,
            generation=generation,
            params=params_json,
        )
        if generation.error is not None:
            errors += 1
            rows.append(row(_error_candidate(run_id, item, generation), candidate_index=0))
        for index, cand in _candidates(run_id, item, generation, strategy):
            candidates.append(cand)
            rows.append(row(cand, candidate_index=index))
    return BuiltBatch(batch, prompts, rows, candidates, errors)


def record_built(
    store: Store,
    run_id: str,
    built: BuiltBatch,
    scored: BatchScores,
    recorded: _Recorded | None = None,
) -> BatchReport:
    """Record one scored batch in one transaction: each document once per run, and the earlier
    error rows of the batch's prompts replaced only where there are some."""
    batch = built.batch
    recorded = recorded or _Recorded()
    new_documents = {
        item.planned.document.document_id: item.planned.document
        for item in batch
        if item.planned.document.document_id not in recorded.documents
    }
    documents = [document_row(document) for document in new_documents.values()]
    prompt_rows = [prompt_row(p) for p in built.prompts]
    errors_known = recorded.error_work_ids
    retried = errors_known is None or any(i.work_id in errors_known for i in batch)
    store.record_batch(
        run_id,
        documents,
        prompt_rows,
        built.rows,
        scored.scores,
        scored.details,
        scored.failures,
        replace_errors=retried,
    )
    recorded.documents.update(new_documents)  # only once they are committed
    parse_failures = sum(1 for c in built.candidates if not c.parsed)
    return BatchReport(
        batch[0].batch_index,
        len(batch),
        len(built.candidates),
        parse_failures,
        built.errors,
        scored.failed_validators,
    )


def batch_params(batch: list[WorkItem], strategy: Strategy, settings: Settings) -> GenerationParams:
    """The sampling parameters of one batch: the same wherever and whenever it runs."""
    return settings.generation.params(
        batch_seed(settings.run.seed, batch[0].batch_index), strategy.stop_sequences()
    )


def run_batch(
    store: Store,
    run_id: str,
    batch: list[WorkItem],
    plugins: RunPlugins,
    settings: Settings,
    generated: Generated | None = None,
    recorded: _Recorded | None = None,
) -> BatchReport:
    """Generate (unless ``generated`` is given), parse, score and record one batch, in one
    transaction."""
    params = batch_params(batch, plugins.strategy, settings)
    generated = generated or _generate(batch, plugins, params)
    built = build_batch(
        run_id, batch, generated, plugins.strategy, params, plugins.backend.backend_id
    )
    mark("validate", batch[0].batch_index)
    scored = BatchScores().add(plugins.validators, built.candidates, settings.run.fails_closed)
    return record_built(store, run_id, built, scored, recorded)


def _generations(
    batches: list[list[WorkItem]], plugins: RunPlugins, settings: Settings
) -> Iterator[tuple[list[WorkItem], Generated | None]]:
    """Each batch with its generations. A backend that waits on a server
    (``overlaps_validation``) is handed the next batch while this one is still in flight, and
    generates it while this one is parsed, scored and recorded: its requests never wait for a
    batch's slowest prompt or for the validators. A local model generates batch by batch, since
    it would compete with the validators for the same cores."""
    if len(batches) < 2 or not plugins.backend.overlaps_validation:  # asked only with work
        for batch in batches:
            yield batch, None
        return
    ahead = DaemonThreadPool(_LOOKAHEAD, "groundset-ahead")
    try:
        pending = deque(
            ahead.submit(generate_batch, batch, plugins, settings) for batch in batches[:_LOOKAHEAD]
        )
        for index, batch in enumerate(batches):
            generated = pending.popleft().result()
            if index + _LOOKAHEAD < len(batches):
                following = batches[index + _LOOKAHEAD]
                pending.append(ahead.submit(generate_batch, following, plugins, settings))
            yield batch, generated
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)


def replay_recorded(store: Store, run_id: str, validators: Sequence[Validator]) -> None:
    """Give stateful validators the run's recorded candidates, in generation order, so a
    resumed run scores new ones as an uninterrupted run would have."""
    stateful = [v for v in validators if v.stateful]
    if not stateful:
        return
    from groundset.core.rescoring import recorded_candidates

    recorded = recorded_candidates(store, run_id)
    for validator in stateful:
        validator.replay([c for c in recorded if c.parsed or validator.scores_parse_failures])


def pending_work(
    store: Store, run_id: str, items: list[WorkItem], done: set[str] | None
) -> tuple[RunSummary, _Recorded, dict[int, list[WorkItem]]]:
    """What a run still has to do, by batch, with its summary so far and what the store holds:
    prompts recorded as backend errors count as not done (the run retries them)."""
    if done is None:
        done = store.completed_work_ids(run_id)
    recorded = _Recorded(error_work_ids=store.error_work_ids(run_id))
    summary = RunSummary(run_id, planned=len(items))
    summary.already_done = sum(1 for i in items if i.work_id in done)
    batches: dict[int, list[WorkItem]] = {}
    for item in items:
        if item.work_id not in done:
            batches.setdefault(item.batch_index, []).append(item)
    return summary, recorded, batches


def execute_plan(
    store: Store,
    run_id: str,
    items: list[WorkItem],
    plugins: RunPlugins,
    settings: Settings,
    on_batch: Callable[[BatchReport], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    final: bool = True,
    replay: bool = True,
    done: set[str] | None = None,
) -> RunSummary:
    """Run every batch not yet recorded, or until ``should_stop()`` says so after a batch; the
    run's status says how it ended (``final=False`` leaves it running, for a run of several
    plans). Prompts recorded as backend errors count as not recorded: this run retries them and
    replaces their rows."""
    summary, recorded, batches = pending_work(store, run_id, items, done)
    started = time.perf_counter()
    if replay and batches:
        replay_recorded(store, run_id, plugins.validators)

    def record(pair: tuple[list[WorkItem], Generated | None]) -> BatchReport:
        report = run_batch(store, run_id, pair[0], plugins, settings, pair[1], recorded)
        summary.add(report)
        return report

    try:
        generations = _generations(list(batches.values()), plugins, settings)
        record_batches(store, run_id, generations, record, on_batch, should_stop=should_stop)
    finally:
        summary.seconds = time.perf_counter() - started
    if final:
        store.set_run_status(run_id, "complete")
    return summary
