"""Built-in export formats: JSON Lines, Parquet, and Alpaca's JSON (what instruction-tuning
scripts read). Rows arrive as an Arrow table from the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from groundset.core import ConfigError, Exporter, Register, hookimpl

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["AlpacaExporter", "JsonlExporter", "ParquetExporter"]

ALPACA_FIELDS = ("instruction", "input", "output")


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


class AlpacaExporter(Exporter):
    """Stanford Alpaca's ``alpaca_data.json``: one JSON list of ``{"instruction", "input",
    "output"}`` objects and nothing else, as fine-tuning scripts expect."""

    exporter_id = "alpaca"
    suffix = ".json"
    description = "Alpaca's JSON list of instruction, input, output"

    def write(self, table: pa.Table, path: Path) -> None:
        missing = [name for name in ALPACA_FIELDS if name not in table.column_names]
        if missing:
            raise ConfigError(
                f"the alpaca format needs the fields instruction, input and output; this run's"
                f" candidates lack {', '.join(missing)} (export self_instruct runs, or use jsonl)"
            )
        rows = [
            {name: row[name] or "" for name in ALPACA_FIELDS}
            for row in table.select(list(ALPACA_FIELDS)).to_pylist()
        ]
        with path.open("w", encoding="utf-8") as handle:
            json.dump(rows, handle, ensure_ascii=False, indent=4)
            handle.write("\n")


@hookimpl
def register_exporters(register: Register) -> None:
    register(JsonlExporter)
    register(ParquetExporter)
    register(AlpacaExporter)
