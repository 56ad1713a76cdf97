"""Reading datasets people already have, for ``groundset score``: JSON Lines, CSV, Parquet, or
a Hugging Face dataset folder (``save_to_disk``), read with pyarrow so no extra package is
needed. Each row comes with its line or row number, so a bad row can be named."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from groundset.core.errors import InputError

__all__ = ["FORMATS", "Row", "column_names", "detect_format", "json_lines", "read_rows"]

FORMATS = ("jsonl", "csv", "parquet", "hf")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}

Row = tuple[int, dict[str, Any] | None, str | None]


def column_names(rows: Sequence[dict[str, Any]], limit: int = 12) -> str:
    """The columns the first rows of a file have, for an error that names what is there."""
    names = list(dict.fromkeys(name for row in rows[:100] for name in row))
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or list(path.glob("*.arrow")):
            return "hf"
        raise InputError(f"{path}: a folder, but not a Hugging Face dataset (no *.arrow files)")
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown format; pass --format ({', '.join(FORMATS)})")
    return fmt


def read_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    """(number, row, None) per row, or (number, None, reason) for a row that cannot be read;
    JSONL and CSV count file lines (from 1), Parquet and datasets count rows (from 1)."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    fmt = fmt or detect_format(path)
    readers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "hf": _hf}
    if fmt not in readers:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return readers[fmt](path)


def json_lines(handle: BinaryIO) -> Iterator[Row]:
    """(line number, object, None) for each non-blank line of a JSON Lines file opened in
    binary mode, or (line number, None, reason) for a line that is not UTF-8, not JSON or not
    an object: each line fails alone, and the caller decides whether that stops the file. A
    byte-order mark before the first line is skipped."""
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, None, f"not UTF-8 (byte {error.start + 1} of the line)"
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, None, f"invalid JSON ({error.msg})"
            continue
        if isinstance(row, dict):
            yield number, row, None
        else:
            yield number, None, f"expected a JSON object, got {type(row).__name__}"


def _jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        yield from json_lines(handle)


def _csv(path: Path) -> Iterator[Row]:
    """A spreadsheet's "CSV UTF-8" export starts with a byte-order mark: it is not part of the
    first column's name. A file in another encoding is refused whole, at its first bad line
    (a CSV line can hold several rows' worth of quoted newlines, so rows cannot fail alone)."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        raise InputError(
            f"{path}:{line}: not UTF-8 (byte {column} of the line); save the file as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        yield reader.line_num, dict(row), None


def _arrow_rows(table: Any) -> Iterator[Row]:
    for batch in table.to_batches(max_chunksize=1024):
        yield from ((0, row, None) for row in batch.to_pylist())


def _numbered(rows: Iterator[Row]) -> Iterator[Row]:
    for number, (_, row, error) in enumerate(rows, start=1):
        yield number, row, error


def _parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InputError(f"{path}: cannot read Parquet: {error}") from None
    return _numbered(_arrow_rows(table))


def _hf(path: Path) -> Iterator[Row]:
    """A ``Dataset.save_to_disk`` folder: Arrow IPC stream files, in the order state.json
    lists them."""
    import pyarrow as pa

    state = path / "state.json"
    names = (
        [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        if state.exists()
        else sorted(p.name for p in path.glob("*.arrow"))
    )
    tables = []
    for name in names:
        try:
            with pa.memory_map(str(path / name)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
        except Exception as error:
            raise InputError(f"{path / name}: cannot read dataset file: {error}") from None
    return _numbered(r for table in tables for r in _arrow_rows(table))
