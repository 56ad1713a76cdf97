"""People's labels on candidates: what a validator's scores are measured against on the user's own
documents. A label is 1 (good) or 0 (bad) for one aspect of one candidate, by one labeller;
labels are only ever added, and the newest per (candidate, aspect, labeller) counts
(``latest_labels``). They arrive from a file (``groundset labels import``), from a labelled
dataset as it is scored (``groundset score --label-field``), and leave as a file (``groundset
labels export``). A file is checked whole before anything is recorded: one bad row refuses it,
naming the file and line, so a half-imported file never needs untangling."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from groundset.core.dataset_files import Row, column_names, read_rows
from groundset.core.errors import InputError
from groundset.core.rows import label_row
from groundset.core.store import Store

__all__ = [
    "ASPECTS",
    "LabelImport",
    "default_labeller",
    "export_labels",
    "import_labels",
    "label_value",
    "read_labels",
]

#: what a label judges: the candidate as a whole, or one quality of it
ASPECTS = ("overall", "grounded", "relevant", "well_formed")
#: the words a label file may use for good (1) and bad (0)
_VALUES = {"1": 1, "0": 0, "true": 1, "false": 0, "good": 1, "bad": 0, "yes": 1, "no": 0}
_EXPORT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def default_labeller() -> str:
    """The labeller's name when none is given: the user's login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "unknown"


def label_value(value: Any, where: str) -> int:
    """1 or 0 from what a file may hold (1/0, true/false, good/bad, yes/no); anything else is
    refused, naming ``where`` (the file and line)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _VALUES:
        return _VALUES[value.strip().lower()]
    raise InputError(f"{where}: label {value!r} is not 1/0 (or good/bad)")


@dataclass(frozen=True)
class LabelImport:
    """What an import recorded: labels, the runs they belong to, and how many replace an
    earlier label of the same labeller with another value."""

    labels: int
    runs: int
    changed: int


def _check_aspect(aspect: str, where: str) -> str:
    if aspect not in ASPECTS:
        raise InputError(f"{where}: aspect {aspect!r} is not one of {', '.join(ASPECTS)}")
    return aspect


def _keys(store: Store, path: Path, rows: Sequence[Row], run_ref: str | None) -> dict[Any, Any]:
    """Key in the file -> (candidate_id, run_id): candidate ids, or, with ``run_ref``, the line
    numbers of the file ``groundset score`` recorded as that run."""
    if run_ref is None:
        wanted = sorted({str(r["candidate_id"]) for _, r, _ in rows if r and "candidate_id" in r})
        found = store.query(
            "SELECT candidate_id, run_id FROM candidates WHERE list_contains(?, candidate_id)",
            [wanted],
        ).rows
        return {cid: (cid, run) for cid, run in found}
    run_id = store.resolve_run(run_ref)
    strategy = store.query("SELECT strategy FROM runs WHERE run_id = ?", [run_id]).rows[0][0]
    if strategy != "score":
        raise InputError(
            f"{path}: --run {run_ref} was not recorded by `groundset score`, so it has no lines"
            " to key labels by; key them by a candidate_id column instead"
        )
    found = store.query(
        "SELECT sample_index, candidate_id FROM candidates WHERE run_id = ?", [run_id]
    ).rows
    return {line: (cid, run_id) for line, cid in found}


def _key(value: Any, key: str) -> Any:
    """A row's key as the store holds it: line numbers as integers (CSV gives text)."""
    if key == "line":
        text = str(value).strip()
        return int(text) if text.isdigit() else None
    return None if value is None else str(value)


def read_labels(
    store: Store,
    path: Path,
    *,
    run_ref: str | None = None,
    labeller: str | None = None,
    aspect: str = "overall",
    fmt: str | None = None,
) -> list[dict[str, Any]]:
    """Label rows from ``path``: a ``label`` column, and a ``candidate_id`` column (or, with
    ``run_ref``, a ``line`` column naming the line of the scored file); optional ``aspect``,
    ``labeller`` and ``note`` columns override the defaults. Any bad row refuses the file."""
    rows = list(read_rows(path, fmt))
    key = "line" if run_ref is not None else "candidate_id"
    readable = [row for _, row, _ in rows if row is not None]
    if not readable:
        raise InputError(f"{path}: no labels" + (f" ({rows[0][2]})" if rows else ""))
    for column in (key, "label"):
        if not any(column in row for row in readable):
            names = column_names(readable)
            raise InputError(f"{path}: no row has the column {column!r}; its columns: {names}")
    keys = _keys(store, path, rows, run_ref)
    labels: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
    for number, row, error in rows:
        where = f"{path}:{number}"
        if row is None:
            raise InputError(f"{where}: {error}")
        found = keys.get(_key(row.get(key), key))
        if row.get(key) in (None, ""):
            raise InputError(f"{where}: no {key}")
        if found is None:
            raise InputError(f"{where}: no candidate with {key} {row.get(key)!r} in the store")
        value = label_value(row.get("label"), where)
        candidate_id, run_id = found
        who = str(row.get("labeller") or labeller or default_labeller())
        what = _check_aspect(str(row.get("aspect") or aspect), where)
        note = str(row["note"]) if row.get("note") not in (None, "") else None
        new = label_row(candidate_id, run_id, value, aspect=what, labeller=who, source="import",
                        origin=where, note=note)  # fmt: skip
        earlier = labels.get((candidate_id, what, who))
        if earlier is not None and earlier[1]["value"] != value:
            raise InputError(
                f"{where}: {who} labels candidate {candidate_id} ({what}) {value}, but"
                f" {earlier[1]['origin']} labels it {earlier[1]['value']}"
            )
        labels[(candidate_id, what, who)] = (number, new)
    return [row for _, row in sorted(labels.values(), key=lambda item: item[0])]


def import_labels(store: Store, path: Path, **options: Any) -> LabelImport:
    """Read ``path`` whole (see :func:`read_labels`), then record its labels in one
    transaction."""
    labels = read_labels(store, path, **options)
    changed = _changed(store, labels)
    store.record_labels(labels)
    return LabelImport(len(labels), len({label["run_id"] for label in labels}), changed)


def _changed(store: Store, labels: list[dict[str, Any]]) -> int:
    """Labels that replace a different value from the same labeller."""
    ids = sorted({label["candidate_id"] for label in labels})
    latest = {
        (cid, aspect, who): value
        for cid, aspect, who, value in store.query(
            "SELECT candidate_id, aspect, labeller, value FROM latest_labels"
            " WHERE list_contains(?, candidate_id)",
            [ids],
        ).rows
    }
    return sum(
        1
        for label in labels
        if latest.get((label["candidate_id"], label["aspect"], label["labeller"]), label["value"])
        != label["value"]
    )


def export_labels(
    store: Store, path: Path, run_id: str | None = None, aspect: str | None = None
) -> int:
    """The latest labels (of one run, one aspect) as JSON Lines, CSV or Parquet, by suffix."""
    fmt = _EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"-o {path}: end the name in {', '.join(_EXPORT_FORMATS)}")
    if aspect is not None:
        _check_aspect(aspect, "--aspect")
    table = store.arrow(
        "SELECT candidate_id, run_id, aspect, value AS label, labeller, note, source, origin,"
        " created_at FROM latest_labels WHERE (? IS NULL OR run_id = ?)"
        " AND (? IS NULL OR aspect = ?) ORDER BY run_id, candidate_id, aspect, labeller",
        [run_id, run_id, aspect, aspect],
    )
    _write(table, path, fmt)
    return int(table.num_rows)


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        from groundset.core.rows import as_json

        with path.open("w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                row["created_at"] = row["created_at"].isoformat()
                handle.write(as_json(row) + "\n")
