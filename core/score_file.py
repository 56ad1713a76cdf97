"""``groundset score``: a dataset people already have becomes a run of its own, every row a
candidate with its file and row as provenance, scored by validators like a generated run, so
``sql``, ``export`` and ``validate`` work on it unchanged. Rows that cannot be read or lack a
field are recorded as failed candidates with the reason and the line; the rest are scored."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundset.core.batch_loop import record_batches
from groundset.core.dataset_files import Row, column_names, detect_format, read_rows
from groundset.core.errors import InputError
from groundset.core.interfaces import Validator
from groundset.core.labels import default_labeller, label_value
from groundset.core.records import Candidate, Document, content_hash
from groundset.core.rescoring import rescore_run
from groundset.core.rows import candidate_row, document_row, label_row, run_row
from groundset.core.scoring import BatchScores, declarations
from groundset.core.store import Store

__all__ = [
    "FieldMap",
    "ScoreSummary",
    "check_mapping",
    "read_dataset",
    "read_row_labels",
    "score_file",
]


@dataclass(frozen=True)
class FieldMap:
    """Which columns hold the document, the question (optional) and the answer."""

    document: str = "document"
    answer: str = "answer"
    question: str | None = "question"


@dataclass
class ScoreSummary:
    run_id: str
    rows: int = 0
    failures: int = 0
    resumed: bool = False
    rescored: int = 0  # resumed: candidates scored by a validator (version) new to the run
    errors: list[str] = field(default_factory=list)
    #: validator -> batches it failed on (recorded in ``validator_failures``)
    failed: Counter[str] = field(default_factory=Counter)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


#: how a value that is not text is named in a row's error (the file's terms, not Python's)
_KINDS = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}


def _text(row: dict[str, Any], column: str | None) -> tuple[str | None, str | None]:
    """(text, None), or (None, reason) when the column is missing, empty or not text. A null
    and a CSV row too short to reach the column count as missing."""
    if column is None:
        return "", None
    value = row.get(column)
    if value is None:
        return None, f"missing field {column!r}"
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) else f"not text ({_kind(value)})"
        return None, f"field {column!r} is {kind}"
    return value.strip(), None


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def check_mapping(path: Path, rows: Sequence[Row], fields: FieldMap) -> None:
    """A file with no rows, or a column that no row has, is a mistake in the command, not a
    file of bad rows: refuse it before anything is recorded, naming the columns there are."""
    readable = [row for _, row, _ in rows if row is not None]
    if not rows:
        raise InputError(f"{path}: no rows to score")
    if not readable:
        return  # every row fails on its own (not JSON, not UTF-8): recorded with its line
    for option, column in (("--document-field", fields.document),
                           ("--question-field", fields.question),
                           ("--answer-field", fields.answer)):  # fmt: skip
        if column is not None and not any(column in row for row in readable):
            names = column_names(readable)
            asked = column == fields.question
            hint = "; --question-field '' if it has no questions" if asked else ""
            raise InputError(f"{path}: no row has the field {column!r} ({option});"
                             f" its fields: {names}{hint}")  # fmt: skip


def _candidate(run_id: str, source: str, number: int, row: dict | None, error: str | None,
               fields: FieldMap) -> Candidate:  # fmt: skip
    values: dict[str, str] = {}
    document_text: str | None = ""
    if error is None:
        assert row is not None
        document_text, error = _text(row, fields.document)
        for name, column in (("question", fields.question), ("answer", fields.answer)):
            if error is None:
                text, error = _text(row, column)
                if column is not None:
                    values[name] = text or ""
    where = f"{source}:{number}"
    document = Document(text=document_text or "", source=where)
    work_id = content_hash("row", run_id, number)[:32]
    raw = json.dumps(row, ensure_ascii=False, default=str) if row is not None else ""
    reason = f"line {number}: {error}" if error else None
    return Candidate(content_hash("candidate", work_id, 0)[:32], run_id, work_id, document,
                     values if error is None else {}, raw, reason)  # fmt: skip


def _batches(items: Iterator[Candidate], size: int) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_row_labels(path: Path, rows: Sequence[Row], column: str) -> dict[int, int]:
    """Row number -> label (1/0) from ``column`` (``--label-field``), checked before any store is
    touched: a value that is not a label refuses the file, naming its line; a row without one
    is simply unlabelled."""
    if not any(row is not None and column in row for _, row, _ in rows):
        raise InputError(f"{path}: no row has the field {column!r} (--label-field)")
    labels = {}
    for number, row, _ in rows:
        raw = None if row is None else row.get(column)
        if raw is None or raw == "":
            continue
        labels[number] = label_value(raw, f"{path}:{number}")
    return labels


def read_dataset(path: Path, fields: FieldMap, fmt: str | None = None) -> list[Row]:
    """Every row of ``path``, checked against the mapping before any store is touched."""
    rows = list(read_rows(path, fmt))
    check_mapping(path, rows, fields)
    return rows


def score_file(
    store: Store,
    path: Path,
    validators: Sequence[Validator],
    fields: FieldMap,
    *,
    rows: list[Row] | None = None,
    fmt: str | None = None,
    name: str | None = None,
    model_id: str = "unknown",
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    labels: dict[int, int] | None = None,
    labeller: str | None = None,
) -> ScoreSummary:
    """Record and score every row of ``path`` (``rows``: as ``read_dataset`` read them); the
    same file and mapping resume the same run.
    ``on_plan(rows, already_recorded)`` is called once the file is read, before any scoring, so
    a progress bar can show a total; ``on_batch(rows)`` after every recorded batch. A resumed
    run with validators new to it calls ``on_plan`` once more, for the (row, validator)
    pairs of its re-scoring pass. ``labels`` (row number -> 1/0, from ``read_row_labels``) are
    recorded by ``labeller`` with their rows, in the same transaction."""
    fmt = fmt or detect_format(path)
    identity = {"file": str(path.resolve()), "sha256": _sha256(path), "format": fmt,
                "fields": vars(fields), "model_id": model_id}  # fmt: skip
    run_id = content_hash("score", identity)[:16]
    if rows is None:
        rows = read_dataset(path, fields, fmt)
    summary = ScoreSummary(run_id, rows=len(rows))
    summary.resumed = store.start_run(run_row(
        run_id, name or path.stem, strategy="score", backend="none", model_id=model_id,
        validators=[v.validator_id for v in validators],
        fields=["question", "answer"] if fields.question else ["answer"],
        config={"score": identity}, planned=len(rows),
    ))  # fmt: skip
    store.register_metrics(declarations(validators))
    done = store.completed_work_ids(run_id)
    candidates = (_candidate(run_id, str(path), n, r, e, fields) for n, r, e in rows)
    order = {content_hash("row", run_id, n)[:32]: (i, n) for i, (n, _, _) in enumerate(rows)}
    if on_plan is not None:
        on_plan(len(rows), len(done.intersection(order)))
    todo = (c for c in candidates if c.work_id not in done)

    def row_labels(batch: list[Candidate]) -> list[dict[str, Any]]:
        numbers = ((c, order[c.work_id][1]) for c in batch)
        who = labeller or default_labeller()
        return [
            label_row(c.candidate_id, run_id, (labels or {})[n], aspect="overall", labeller=who,
                      source="score", origin=f"{path}:{n}")
            for c, n in numbers if n in (labels or {})
        ]  # fmt: skip

    def record(batch: list[Candidate]) -> int:
        rows = [
            candidate_row(c, candidate_index=0, batch_index=order[c.work_id][0] // batch_size,
                          sample_index=order[c.work_id][1], prompt_id=None, model_id=model_id)
            for c in batch
        ]  # fmt: skip
        scored = BatchScores().add(validators, batch, fail_closed=True)
        documents = [document_row(c.document) for c in batch]
        store.record_batch(run_id, documents, [], rows, scored.scores, scored.details,
                           scored.failures, labels=row_labels(batch))  # fmt: skip
        summary.failed.update(scored.failed_validators)
        return len(batch)

    record_batches(store, run_id, _batches(todo, batch_size), record, on_batch)
    if summary.resumed:
        # Scoring the file again with another validator (or other options) must not stop at
        # "already recorded": what these exact validator versions have not scored yet is.
        def second_bar(total: int, done: int) -> None:  # only when there is work left
            if on_plan is not None and done < total:
                on_plan(total, done)

        rescored = rescore_run(store, run_id, validators, batch_size, on_batch, second_bar)
        summary.rescored = rescored.scored
        summary.failed.update(rescored.failed)
    store.set_run_status(run_id, "complete")
    failed = store.query(
        "SELECT parse_error FROM candidates WHERE run_id = ? AND NOT parse_ok"
        " ORDER BY batch_index, sample_index",
        [run_id],
    ).rows
    summary.failures, summary.errors = len(failed), [r[0] for r in failed]
    return summary
