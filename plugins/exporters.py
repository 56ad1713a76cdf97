"""Built-in export formats: JSON Lines, Parquet, CSV, Alpaca's JSON and chat messages JSONL
(what instruction-tuning scripts and fine-tuning tools read). Rows arrive as an Arrow table from
the store: the generated fields, then provenance unless the export is fields-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from groundset.core import ConfigError, Exporter, Register, hookimpl

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["AlpacaExporter", "ChatExporter", "CsvExporter", "JsonlExporter", "ParquetExporter"]

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


class CsvExporter(Exporter):
    """CSV with a header row (RFC 4180 quoting), UTF-8: opens in spreadsheets and pandas."""

    exporter_id = "csv"
    suffix = ".csv"
    description = "CSV with a header, one candidate per row"

    def write(self, table: pa.Table, path: Path) -> None:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)


class ChatExporter(Exporter):
    """One ``{"messages": [...]}`` conversation per line: system, user and assistant turns, the
    format fine-tuning tools (TRL, OpenAI, Axolotl) take. Instruction tasks become the
    instruction (and input) as the user turn and the output as the assistant's; question/answer
    pairs the question and answer, with the document as the system turn when it is exported.
    Provenance columns, when present, are kept beside ``messages``."""

    exporter_id = "chat"
    suffix = ".chat.jsonl"
    description = "Chat messages JSONL (system/user/assistant), for fine-tuning tools"

    def write(self, table: pa.Table, path: Path) -> None:
        names = set(table.column_names)
        if {"instruction", "output"} <= names:
            turns = _instruction_turns
        elif {"question", "answer"} <= names:
            turns = _qa_turns
        else:
            raise ConfigError(
                "the chat format needs instruction/output or question/answer fields; this run's"
                " candidates have neither (use jsonl)"
            )
        dropped = {"instruction", "input", "output", "question", "answer"}
        with path.open("w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                record = {"messages": turns(row)}
                record |= {k: v for k, v in row.items() if k not in dropped and k != "document"}
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _instruction_turns(row: dict) -> list[dict[str, str]]:
    user = row["instruction"] or ""
    if row.get("input"):
        user += "\n\n" + row["input"]
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": row["output"] or ""},
    ]


def _qa_turns(row: dict) -> list[dict[str, str]]:
    turns = []
    if row.get("document"):
        system = "Answer the question from this document.\n\n" + row["document"]
        turns.append({"role": "system", "content": system})
    turns.append({"role": "user", "content": row["question"] or ""})
    turns.append({"role": "assistant", "content": row["answer"] or ""})
    return turns


@hookimpl
def register_exporters(register: Register) -> None:
    register(JsonlExporter)
    register(ParquetExporter)
    register(AlpacaExporter)
    register(CsvExporter)
    register(ChatExporter)
