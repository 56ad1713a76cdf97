"""Exporting a run: which candidates (thresholds, a policy), in which format, written so that a
killed export never leaves half a file, and recorded in ``exports`` with its filters and sha256.
The ``export`` command only turns its flags into an :class:`ExportRequest`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from groundset.core.calibration import Estimate
from groundset.core.errors import ConfigError
from groundset.core.manager import LoadedPlugins
from groundset.core.phases import mark
from groundset.core.records import file_sha256
from groundset.core.rows import export_row
from groundset.core.store import Store, quote_identifier

__all__ = [
    "ExportRequest",
    "ExportResult",
    "Threshold",
    "export_query",
    "export_run",
    "exporter_for",
]


@dataclass(frozen=True)
class Threshold:
    """``--min METRIC=VALUE`` or ``--max METRIC=VALUE``."""

    metric: str
    value: float
    minimum: bool
    #: as the user wrote it, recorded with the export
    text: str = ""

    @classmethod
    def parse(cls, text: str, minimum: bool) -> Threshold:
        flag = "--min" if minimum else "--max"
        metric, sep, raw = text.rpartition("=")
        try:
            value = float(raw)
        except ValueError:
            value = None
        if not sep or not metric.strip() or value is None:
            raise ConfigError(f"{flag} {text!r}: expected METRIC=NUMBER, e.g. overlap.rouge_l=0.5")
        return cls(metric.strip(), value, minimum, text)


def export_query(
    store: Store,
    run_id: str,
    thresholds: Sequence[Threshold],
    include_failed: bool = False,
    fields_only: bool = False,
    policy: str | None = None,
) -> tuple[str, list[object]]:
    """SQL and parameters selecting one run's candidates that meet every threshold (and pass
    ``policy``, as last recorded by ``groundset accept``)."""
    metrics = set(store.metric_columns())
    conditions: list[str] = ["cs.run_id = ?", "cs.status <> 'error'"]
    params: list[object] = [run_id]
    if not include_failed:
        conditions.append("cs.parse_ok")
    if policy is not None:
        recorded = store.query(
            "SELECT count(*) FROM policy_results WHERE policy = ? AND run_id = ?", [policy, run_id]
        ).rows[0][0]
        if not recorded:
            raise ConfigError(
                f"policy {policy!r} has not been applied to run {run_id}: run"
                f" `groundset accept [CONFIG] --policy {policy} --run {run_id}` first (CONFIG:"
                f" the file with [accept.{policy}], if not the run's own)"
            )
        conditions.append(
            "cs.candidate_id IN (SELECT candidate_id FROM accepted WHERE policy = ? AND run_id = ?)"
        )
        params += [policy, run_id]
    for t in thresholds:
        if t.metric not in metrics:
            known = ", ".join(sorted(metrics)) or "none recorded yet"
            raise ConfigError(f"unknown metric {t.metric!r} (known: {known})")
        conditions.append(f"{quote_identifier(t.metric)} {'>=' if t.minimum else '<='} ?")
        params.append(t.value)
    fields, validators = _run_fields(store, run_id)
    field_sql = [f"cs.fields->>'{f}' AS {quote_identifier(f)}" for f in fields if "'" not in f]
    provenance = [
        "d.text AS document", "cs.document_title", "cs.document_id", "cs.candidate_id",
        "cs.run_id", "cs.model_id", "cs.parse_ok", "cs.parse_error",
    ]  # fmt: skip
    run_metrics = sorted(m for m in metrics if m.split(".", 1)[0] in validators)
    scores = [f"cs.{quote_identifier(m)}" for m in run_metrics]
    columns = field_sql if fields_only else [*field_sql, *provenance, *scores]
    sql = (
        f"SELECT {', '.join(columns)} FROM candidate_scores cs"
        f" JOIN documents d USING (document_id)"
        f" WHERE {' AND '.join(conditions)} ORDER BY cs.batch_index, cs.work_id, cs.candidate_index"
    )
    return sql, params


def _run_fields(store: Store, run_id: str) -> tuple[list[str], list[str]]:
    """The run's strategy fields and validator ids."""
    rows = store.query("SELECT fields, validators FROM runs WHERE run_id = ?", [run_id]).rows
    if not rows:
        return [], []
    return json.loads(rows[0][0] or "[]"), json.loads(rows[0][1] or "[]")


@dataclass(frozen=True)
class ExportRequest:
    """What to export: one run's candidates meeting every threshold (and ``policy``), in the
    format ``fmt`` (``None``: the one whose suffix ends ``output``)."""

    output: Path
    run_ref: str = "latest"
    fmt: str | None = None
    thresholds: Sequence[Threshold] = field(default_factory=tuple)
    policy: str | None = None
    include_failed: bool = False
    fields_only: bool = False


@dataclass(frozen=True)
class ExportResult:
    run_id: str
    path: Path
    exporter_id: str
    rows: int
    #: exported candidates with an ``overall`` label, and the share of good ones among them
    labelled: int = 0
    precision: Estimate | None = None


def exporter_for(fmt: str | None, output: Path, loaded: LoadedPlugins) -> str:
    """The exporter named by ``fmt``, else the one whose suffix ends the file name (the
    longest: ``.chat.jsonl`` before ``.jsonl``)."""
    if fmt:
        return fmt
    suffixes = {
        i: loaded.registry.get("exporter", i).cls.suffix for i in loaded.registry.ids("exporter")
    }
    matching = [i for i, suffix in suffixes.items() if suffix and output.name.endswith(suffix)]
    if not matching:  # guessing would write, say, JSONL into "data.txt" without a word
        known = ", ".join(f"{suffix} ({i})" for i, suffix in sorted(suffixes.items()) if suffix)
        raise ConfigError(
            f"-o {output}: no export format has this suffix; end the name in {known},"
            " or pass --format"
        )
    return max(matching, key=lambda i: len(suffixes[i]))


def export_run(store: Store, request: ExportRequest, loaded: LoadedPlugins) -> ExportResult:
    """Write the request's candidates and record the export in the store."""
    path = request.output
    exporter_id = exporter_for(request.fmt, path, loaded)
    exporter_cls = loaded.registry.get("exporter", exporter_id).cls
    if not path.parent.exists():
        raise ConfigError(f"-o {path}: folder {path.parent} does not exist")
    run_id = store.resolve_run(request.run_ref)
    query, params = export_query(
        store, run_id, request.thresholds, request.include_failed, request.fields_only,
        request.policy,
    )  # fmt: skip
    table = store.arrow(query, params)
    _write_atomically(exporter_cls(), table, path)
    mark("exported", table.num_rows)
    filters = {
        "min": [t.text for t in request.thresholds if t.minimum],
        "max": [t.text for t in request.thresholds if not t.minimum],
        "include_failed": request.include_failed,
        "at": time.time(),
    }
    version = _policy_version(store, request.policy, run_id)
    worth = _worth(store, run_id, request, table)
    labelled, precision = worth if worth is not None else (0, None)
    estimate = (precision.value, precision.low, precision.high) if precision else (None,) * 3
    row = export_row(
        run_id, path.resolve(), exporter_id, filters, table.num_rows, policy=request.policy,
        policy_version=version, sha256=file_sha256(path), provenance=not request.fields_only,
        labelled=labelled, precision=estimate,
    )  # fmt: skip
    store.record_export(row)
    return ExportResult(run_id, path, exporter_id, table.num_rows, labelled, precision)


def _worth(
    store: Store, run_id: str, request: ExportRequest, table: pa.Table
) -> tuple[int, Estimate] | None:
    """The exported candidates' precision on their people's labels, if any is labelled."""
    if not store.query("SELECT 1 FROM labels WHERE run_id = ? LIMIT 1", [run_id]).rows:
        return None
    if "candidate_id" in table.column_names:  # the export's own provenance column
        ids = table.column("candidate_id").to_pylist()
    else:  # --fields-only left it out: select the same candidates again, ids only
        query, params = export_query(
            store, run_id, request.thresholds, request.include_failed, False, request.policy
        )
        ids = [r[0] for r in store.query(f"SELECT candidate_id FROM ({query})", params).rows]
    from groundset.core.calibration import labelled_precision

    return labelled_precision(store, ids)


def _policy_version(store: Store, policy: str | None, run_id: str) -> str | None:
    if policy is None:
        return None
    rows = store.query(
        "SELECT DISTINCT policy_version FROM accepted WHERE policy = ? AND run_id = ?",
        [policy, run_id],
    ).rows
    return rows[0][0] if rows else None


def _write_atomically(exporter: Any, table: Any, path: Path) -> None:
    """Write beside the target and rename over it: a killed export never leaves a half file,
    and never destroys the previous export at that path."""
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        mark("export", table.num_rows)
        exporter.write(table, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
