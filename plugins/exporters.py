"""Built-in export formats: JSON Lines and Parquet. Rows arrive as flat dicts from the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from groundset.core import Exporter, Register, hookimpl

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["JsonlExporter", "ParquetExporter"]


class JsonlExporter(Exporter):
    """One JSON object per line, UTF-8, non-ASCII kept as is."""

    exporter_id = "jsonl"
    suffix = ".jsonl"
    description = "JSON Lines, one candidate per line"

    def write(self, table: pa.Table, path: Path) -> None:
        with path.open("w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


class ParquetExporter(Exporter):
    """A Parquet file (zstd), typed columns for scores."""

    exporter_id = "parquet"
    suffix = ".parquet"
    description = "Apache Parquet, one row per candidate"

    def write(self, table: pa.Table, path: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(table, path, compression="zstd")


@hookimpl
def register_exporters(register: Register) -> None:
    register(JsonlExporter)
    register(ParquetExporter)
