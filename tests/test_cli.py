"""The command line: run, runs, sql, export, plugins, and one-line errors for user mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from tests.report_helpers import COPY, GOOD  # the mock model's outputs, one copied

BAD = "Sorry, no."
#: the Red Hat acquisition document, four samples: the mock answers GOOD, COPY, BAD, GOOD
ONE_DOCUMENT = ("--limit-documents", "1", "--samples", "4")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def ran(tmp_path, write_config, mock_backend) -> Path:
    db = tmp_path / "s.duckdb"
    config = write_config(f'[backends.mock]\noutputs = ["{GOOD}", "{COPY}", "{BAD}"]\n')
    result = invoke("run", str(config), "--db", str(db), "--no-progress", *ONE_DOCUMENT)
    assert result.exit_code == 0, result.output
    assert "4 prompts -> 4 candidates (3 parsed, 1 parse failure)" in result.output
    assert "accepted (all default thresholds): 2" in result.output
    return db


def test_rerun_resumes_and_adds_nothing(ran, tmp_path, mock_backend):
    config = tmp_path / "cfg.toml"
    result = invoke("run", str(config), "--db", str(ran), "--no-progress", *ONE_DOCUMENT)
    assert result.exit_code == 0
    assert "4 prompts were already recorded" in result.output
    assert "0 prompts -> 0 candidates" in result.output


def test_runs_lists_counts_and_pass_rates(ran):
    result = invoke("runs", "--db", str(ran), "--format", "json")
    rows = json.loads(result.output)
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["status"], row["candidates"], row["parsed"]) == (
        "test",
        "complete",
        4,
        3,
    )
    assert "format" in row["pass_rates"] and "overlap" in row["pass_rates"]
    # GOOD passes everything; COPY is a verbatim copy; BAD does not parse
    assert row["accepted"] == 2


def test_sql_runs_a_query_against_the_store(ran):
    result = invoke(
        "sql",
        "SELECT count(*) AS n FROM candidate_scores WHERE NOT parse_ok",
        "--db",
        str(ran),
        "--format",
        "csv",
    )
    assert result.output.splitlines() == ["n", "1"]


def test_sql_error_is_one_line_with_exit_code_2(ran):
    result = CliRunner().invoke(cli, ["sql", "SELECT nope FROM candidates", "--db", str(ran)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: SQL error:")
    assert "Traceback" not in result.output


def test_export_applies_thresholds_as_parameters(ran, tmp_path):
    out = tmp_path / "qa.jsonl"
    result = invoke(
        "export",
        "--db",
        str(ran),
        "--run",
        "latest",
        "--min",
        "overlap.token_precision=0.8",
        "--max",
        "overlap.verbatim_copy=0",
        "--format",
        "jsonl",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["overlap.token_precision"] >= 0.8 for r in rows)
    assert {r["question"] for r in rows} == {"How much did IBM pay for Red Hat?"}
    assert "document" in rows[0] and "candidate_id" in rows[0]


def test_export_parquet_fields_only(ran, tmp_path):
    out = tmp_path / "qa.parquet"
    result = invoke("export", "--db", str(ran), "-o", str(out), "--fields-only")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["question", "answer"]
    assert table.num_rows == 3


def test_export_rejects_an_unknown_metric_without_running_sql(ran, tmp_path):
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(
        cli, ["export", "--db", str(ran), "-o", str(out), "--min", 'x" OR 1=1 --=0']
    )
    assert result.exit_code == 2
    assert "unknown metric" in result.output and not out.exists()


def test_export_refuses_a_name_no_format_ends_in_and_says_when_nothing_passed(ran, tmp_path):
    out = tmp_path / "qa.txt"
    result = CliRunner().invoke(cli, ["export", "--db", str(ran), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "no export format has this suffix" in result.output and ".jsonl (jsonl)" in result.output

    out = tmp_path / "none.jsonl"
    args = ["export", "--db", str(ran), "-o", str(out), "--min", "overlap.token_precision=2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and out.read_text() == ""
    assert "exported 0 candidates" in result.output and "no candidate met the filters" in (
        result.output
    )


def test_export_records_what_was_exported(ran, tmp_path):
    invoke("export", "--db", str(ran), "-o", str(tmp_path / "a.jsonl"), "--min", "format.ok=1")
    rows = json.loads(
        invoke(
            "sql", "SELECT format, rows, filters FROM exports", "--db", str(ran), "--format", "json"
        ).output
    )
    assert rows[0]["format"] == "jsonl" and rows[0]["rows"] == 3
    assert json.loads(rows[0]["filters"])["min"] == ["format.ok=1"]


def test_plugins_lists_builtins_with_versions_and_hooks():
    data = json.loads(invoke("plugins", "--json").output)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["groundset.validators.overlap"]["hooks"] == ["register_validators"]
    assert names["groundset.backends.huggingface"]["registered"] == {"backend": ["huggingface"]}
    assert all(p["version"] for p in data["plugins"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[run]\nbatch_sise = 3\n", "unknown option 'batch_sise'"),
        (
            "[generation]\ntemperature = 'hot'\n",
            "[generation].temperature: expected a number, got the string 'hot'",
        ),
        ("[nonsense]\n", "unknown section [nonsense]"),
        ("[strategies.grounded_qa]\nprompt_format = 'poem'\n", "prompt_format"),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, mock_backend, extra, message):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[documents]\npath = "docs.jsonl"\n{extra}'.replace("[run]\n", "[run]\nbackend='mock'\n")
    )
    (tmp_path / "docs.jsonl").write_text('{"text": "A document."}\n')
    result = CliRunner().invoke(cli, ["run", str(config), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert str(config) in result.output or "strategies.grounded_qa" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_malformed_toml_names_the_file(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("[run\n")
    result = CliRunner().invoke(cli, ["run", str(config)])
    assert result.exit_code == 2 and f"{config}: invalid TOML" in result.output


def test_missing_documents_file_is_named(tmp_path, write_config, mock_backend):
    config = write_config(documents=tmp_path / "absent.jsonl")
    result = CliRunner().invoke(cli, ["run", str(config), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "absent.jsonl not found" in result.output


def test_an_out_of_range_flag_is_blamed_on_the_flag(tmp_path, write_config, mock_backend):
    args = ["run", str(write_config()), "--db", str(tmp_path / "s.duckdb"), "--samples", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Invalid value for '--samples'" in result.output


def test_bad_jsonl_line_is_named_and_recorded_rows_stay(ran, tmp_path, write_config, mock_backend):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "Fine document."}\n{"text": "broken\n')
    result = CliRunner().invoke(
        cli, ["run", str(write_config(documents=docs, name="b.toml")), "--db", str(ran)]
    )
    assert result.exit_code == 2
    assert f"{docs}:2: invalid JSON" in result.output
    count = invoke("sql", "SELECT count(*) FROM candidates", "--db", str(ran), "--format", "csv")
    assert count.output.splitlines()[1] == "4"


def test_queries_without_a_store_say_how_to_make_one(tmp_path):
    result = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2 and "run `groundset run CONFIG` first" in result.output


def test_a_store_held_by_another_process_is_a_clear_error(ran, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("GROUNDSET_READ_WAIT_S", "1")

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(ran)!r}); print('ready', flush=True);"
            " time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(cli, ["runs", "--db", str(ran)])
    finally:
        holder.kill()
    assert result.exit_code == 2
    assert "is in use by another process" in result.output
