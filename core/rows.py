"""The rows groundset writes, one builder per table. Every column a command writes is named here
and nowhere else: adding a column to a table is a migration (``core/migrations.py``) plus a line
in the one function below that fills it, and every command that writes the table gets it."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from groundset.core.records import Candidate, Document, Generation, Metric, Prompt

__all__ = [
    "as_json",
    "candidate_row",
    "details_row",
    "document_row",
    "export_row",
    "failure_row",
    "groundset_version",
    "label_row",
    "metric_rows",
    "prompt_row",
    "run_row",
    "score_rows",
    "versions",
]

#: built once: ``json.dumps`` with options builds an encoder on every call
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def as_json(value: Any) -> str:
    return _JSON_ENCODER.encode(value)


#: the packages whose versions decide a run's rows, recorded with it
_VERSIONED = ("groundset", "duckdb", "pluggy", "torch", "transformers", "gguf")


def groundset_version() -> str:
    """The installed groundset's version, recorded with runs, schemas, policies and results."""
    try:
        return importlib.metadata.version("groundset")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a run's rows, recorded with it."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def run_row(
    run_id: str,
    name: str | None,
    *,
    strategy: str,
    backend: str,
    model_id: str,
    validators: list[str],
    fields: list[str],
    config: dict[str, Any],
    planned: int,
) -> dict[str, Any]:
    """A run as ``Store.start_run`` records it (the JSON columns are encoded there)."""
    return {
        "run_id": run_id,
        "name": name,
        "strategy": strategy,
        "backend": backend,
        "model_id": model_id,
        "validators": validators,
        "fields": fields,
        "config": config,
        "versions": versions(),
        "planned": planned,
    }


def document_row(document: Document) -> dict[str, Any]:
    return {
        "document_id": document.document_id,
        "title": document.title,
        "text": document.text,
        "source": document.source,
        "metadata": as_json(document.metadata),
    }


def prompt_row(prompt: Prompt) -> dict[str, Any]:
    messages = as_json(list(prompt.messages)) if prompt.messages is not None else None
    return {"prompt_id": prompt.prompt_id, "text": prompt.text, "messages": messages}


def candidate_row(
    candidate: Candidate,
    *,
    candidate_index: int,
    batch_index: int,
    sample_index: int,
    prompt_id: str | None,
    generation: Generation | None = None,
    params: str | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """A candidate with where it came from: the generation that produced it (none for a row
    of a scored file, whose ``model_id`` the user names)."""
    if generation is not None and generation.error is not None:
        status = "error"
    else:
        status = "ok" if candidate.parsed else "parse_failed"
    return {
        "candidate_id": candidate.candidate_id,
        "run_id": candidate.run_id,
        "work_id": candidate.work_id,
        "candidate_index": candidate_index,
        "batch_index": batch_index,
        "sample_index": sample_index,
        "document_id": candidate.document.document_id,
        "prompt_id": prompt_id,
        "fields": as_json(candidate.fields) if status == "ok" else None,
        "raw_output": candidate.raw_output,
        "parse_ok": status == "ok",
        "parse_error": candidate.parse_error,
        "status": status,
        "error": generation.error if generation is not None else None,
        "model_id": generation.model_id if generation is not None else model_id,
        "params": params,
        "input_tokens": generation.input_tokens if generation is not None else None,
        "output_tokens": generation.output_tokens if generation is not None else None,
        "latency_s": generation.latency_s if generation is not None else None,
        "stop_reason": generation.stop_reason if generation is not None else None,
    }


def _scored(candidate: Candidate, validator_id: str, version: str) -> dict[str, Any]:
    return {
        "candidate_id": candidate.candidate_id,
        "run_id": candidate.run_id,
        "validator": validator_id,
        "validator_version": version,
    }


def score_rows(
    candidate: Candidate, validator_id: str, version: str, result: dict[str, float]
) -> list[dict[str, Any]]:
    """The long-format ``scores`` rows of one validator's result for one candidate."""
    head = _scored(candidate, validator_id, version)
    return [head | {"metric": metric, "value": float(value)} for metric, value in result.items()]


def details_row(
    candidate: Candidate, validator_id: str, version: str, details: dict[str, Any]
) -> dict[str, Any]:
    text = json.dumps(details, ensure_ascii=False, sort_keys=True)
    return _scored(candidate, validator_id, version) | {"details": text}


def failure_row(
    candidate: Candidate, validator_id: str, version: str, error: str, fail_closed: bool
) -> dict[str, Any]:
    """A validator that failed on the candidate's batch; ``fail_closed``: it counts as
    rejected until the validator scores it."""
    head = _scored(candidate, validator_id, version)
    return head | {"error": error, "fail_closed": fail_closed}


def metric_rows(declarations: Sequence[tuple[str, str, Sequence[Metric]]]) -> list[dict[str, Any]]:
    """What each validator declared, one row per metric: ``(validator_id, version, metrics)``."""
    return [
        {
            "validator": validator_id,
            "metric": m.name,
            "description": m.description,
            "low": m.low,
            "high": m.high,
            "higher_is_better": m.higher_is_better,
            "default_threshold": m.default_threshold,
            "validator_version": version,
        }
        for validator_id, version, metrics in declarations
        for m in metrics
    ]


def export_row(
    run_id: str,
    path: Path,
    exporter_id: str,
    filters: dict[str, Any],
    rows: int,
    *,
    policy: str | None,
    policy_version: str | None,
    sha256: str,
    provenance: bool,
    labelled: int | None = None,
    precision: tuple[float | None, float | None, float | None] = (None, None, None),
) -> dict[str, Any]:
    """One export: where, in which format, with which filters, the file's hash, and what it is
    worth on people's labels (``precision``: the share of good ones, low, high)."""
    return {
        "export_id": uuid.uuid4().hex,
        "run_id": run_id,
        "path": str(path),
        "format": exporter_id,
        "filters": as_json(filters),
        "rows": rows,
        "policy": policy,
        "policy_version": policy_version,
        "sha256": sha256,
        "provenance": provenance,
        "labelled": labelled,
        "precision": precision[0],
        "precision_low": precision[1],
        "precision_high": precision[2],
    }


def label_row(
    candidate_id: str,
    run_id: str,
    value: int,
    *,
    aspect: str,
    labeller: str,
    source: str,
    origin: str | None = None,
    note: str | None = None,
    weight: float | None = None,
    sampling: str | None = None,
) -> dict[str, Any]:
    """A person's verdict on a candidate (1 good, 0 bad): ``source`` says how it arrived
    (``review``, ``import``, ``score``) and ``origin`` where from (a file and line); a label
    the review queue drew carries its sampling ``weight`` and phase."""
    return {
        "candidate_id": candidate_id,
        "run_id": run_id,
        "aspect": aspect,
        "value": value,
        "labeller": labeller,
        "note": note,
        "source": source,
        "origin": origin,
        "weight": weight,
        "sampling": sampling,
    }
