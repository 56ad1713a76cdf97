"""`groundset score`: datasets people already have, recorded and scored as runs of their own."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from groundset.core.cli import cli

ROWS = [
    {"document": "IBM acquired Red Hat for $190.00 per share in cash, about $34 billion.",
     "question": "How much did IBM pay for Red Hat?", "answer": "IBM paid $190.00 per share."},
    {"document": "The Watson NLP containers support REST and gRPC interfaces.",
     "question": "Which interfaces do the containers offer?", "answer": "REST and gRPC."},
]  # fmt: skip


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sql(db, query: str) -> list[dict]:
    return json.loads(invoke("sql", query, "--db", str(db), "--format", "json").output)


def test_jsonl_rows_are_scored_and_bad_rows_recorded_with_their_line(tmp_path):
    data = tmp_path / "mine.jsonl"
    lines = [json.dumps(r) for r in ROWS] + ['{"document": "x", "question": "q"}', "{broken"]
    data.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.duckdb"
    result = invoke(
        "score", str(data), "--db", str(db), "--validators", "overlap,relevance", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert "4 rows, 2 could not be scored" in result.output
    assert "line 3: missing field 'answer'" in result.output
    assert "line 4: invalid JSON" in result.output
    rows = sql(
        db,
        'SELECT question, "overlap.token_precision" AS p, "relevance.cosine" AS r,'
        " parse_ok, raw_output FROM candidate_scores ORDER BY sample_index",
    )
    assert [r["parse_ok"] for r in rows] == [True, True, False, False]
    assert rows[0]["p"] == pytest.approx(5 / 6) and rows[0]["r"] > 0.3  # "paid" is not there
    assert json.loads(rows[0]["raw_output"]) == ROWS[0]
    sources = sql(
        db,
        "SELECT d.source FROM candidates JOIN documents d USING (document_id)"
        " WHERE parse_ok ORDER BY sample_index",
    )
    assert [s["source"] for s in sources] == [f"{data}:1", f"{data}:2"]
    runs = sql(db, "SELECT name, strategy, status FROM runs")
    assert runs == [{"name": "mine", "strategy": "score", "status": "complete"}]


def test_scoring_the_same_file_again_resumes(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    db = tmp_path / "s.duckdb"
    for _ in range(2):
        invoke("score", str(data), "--db", str(db), "--validators", "overlap", "--no-progress")
    assert sql(db, "SELECT count(*) AS n FROM candidates")[0]["n"] == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet", "hf"])
def test_other_formats_and_column_mapping(tmp_path, fmt):
    renamed = [{"ctx": r["document"], "reply": r["answer"]} for r in ROWS]
    if fmt == "csv":
        path = tmp_path / "data.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, ["ctx", "reply"])
            writer.writeheader()
            writer.writerows(renamed)
    elif fmt == "parquet":
        path = tmp_path / "data.parquet"
        pq.write_table(pa.Table.from_pylist(renamed), path)
    else:  # the layout of datasets' save_to_disk: Arrow IPC stream files and state.json
        path = tmp_path / "dataset"
        path.mkdir()
        table = pa.Table.from_pylist(renamed)
        with pa.OSFile(str(path / "data-00000-of-00001.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:  # fmt: skip
            writer.write_table(table)
        (path / "state.json").write_text(
            json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]})
        )
        (path / "dataset_info.json").write_text("{}")
    db = tmp_path / "s.duckdb"
    result = invoke(
        "score",
        str(path),
        "--db",
        str(db),
        "--document-field",
        "ctx",
        "--answer-field",
        "reply",
        "--question-field",
        "",
        "--validators",
        "overlap",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    rows = sql(
        db,
        'SELECT answer, "overlap.token_precision" AS p FROM candidate_scores ORDER BY sample_index',
    )
    assert [r["answer"] for r in rows] == [r["reply"] for r in renamed]
    assert all(r["p"] > 0.5 for r in rows)


def test_unknown_file_format_is_a_one_line_error(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    result = CliRunner().invoke(cli, ["score", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "unknown format; pass --format" in result.output


def test_the_progress_bar_counts_the_rows_of_the_file(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    db = tmp_path / "s.duckdb"
    first = invoke("score", str(data), "--db", str(db), "--validators", "overlap", "--progress")
    assert "0/2" in first.output and "2/2" in first.output
    again = invoke("score", str(data), "--db", str(db), "--validators", "overlap", "--progress")
    assert "(resumed)" in again.output and "2/2" in again.output and "0/2" not in again.output
    assert "new validators" not in again.output  # nothing new: no second bar
    more = invoke("score", str(data), "--db", str(db), "--validators", "overlap,relevance",
                  "--progress")  # fmt: skip
    assert "new validators" in more.output and "4/4" in more.output  # 2 rows x 2 validators


def _score(tmp_path, data, *extra: str):
    db = tmp_path / "s.duckdb"
    args = ["score", str(data), "--db", str(db), "--no-progress", *extra]
    return CliRunner().invoke(cli, args), db


def test_a_line_that_is_not_utf8_fails_alone_and_a_byte_order_mark_is_no_trouble(tmp_path):
    data = tmp_path / "mine.jsonl"
    latin1 = (
        json.dumps(ROWS[1], ensure_ascii=False).replace("gRPC.", "caf\u00e9.").encode("latin-1")
    )
    data.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n" + latin1 + b"\n")
    result, db = _score(tmp_path, data, "--validators", "overlap")
    assert result.exit_code == 0, result.output
    assert "2 rows, 1 could not be scored" in result.output
    assert "line 2: not UTF-8 (byte" in result.output
    assert sql(db, "SELECT parse_ok FROM candidates ORDER BY sample_index") == [
        {"parse_ok": True}, {"parse_ok": False}
    ]  # fmt: skip


def test_a_csv_in_another_encoding_is_refused_naming_its_line_and_a_bom_is_not_a_column(tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("document,question,answer\nok,q,a\ncaf\u00e9,q,a\n".encode("latin-1"))
    result, db = _score(tmp_path, bad, "--validators", "overlap")
    assert result.exit_code == 2
    assert f"{bad}:3: not UTF-8 (byte 4 of the line)" in result.output
    assert "Traceback" not in result.output and not db.exists()

    excel = tmp_path / "excel.csv"
    with excel.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    result, db = _score(tmp_path, excel, "--validators", "overlap")
    assert result.exit_code == 0 and "2 rows, 0 could not be scored" in result.output


def test_a_column_no_row_has_is_a_mistake_in_the_command_and_nothing_is_recorded(tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("ctx,q,a\nsome text,what?,text\n")
    result, db = _score(tmp_path, data, "--validators", "overlap")
    assert result.exit_code == 2
    assert "no row has the field 'document' (--document-field); its fields: ctx, q, a" in (
        result.output
    )
    result, db = _score(tmp_path, data, "--document-field", "ctx", "--answer-field", "a",
                        "--validators", "overlap")  # fmt: skip
    assert "no row has the field 'question'" in result.output
    assert "--question-field '' if it has no questions" in result.output
    assert not db.exists()

    result, db = _score(tmp_path, data, "--document-field", "ctx", "--answer-field", "a",
                        "--question-field", "q", "--validators", "overlap")  # fmt: skip
    assert result.exit_code == 0 and "1 row, 0 could not be scored" in result.output


def test_an_empty_file_and_a_batch_size_of_zero_are_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result, db = _score(tmp_path, empty, "--validators", "overlap")
    assert result.exit_code == 2 and "empty.jsonl: no rows to score" in result.output
    assert not db.exists()

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result, _ = _score(tmp_path, data, "--validators", "overlap", "--batch-size", "0")
    assert result.exit_code == 2 and "--batch-size" in result.output


def test_relevance_needs_questions(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result, _ = _score(tmp_path, data, "--question-field", "", "--validators", "relevance")
    assert result.exit_code == 2
    assert "relevance scores an answer against its question" in result.output


def test_a_db_that_is_not_a_store_is_refused_and_left_as_it_was(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    before = data.read_bytes()
    result = CliRunner().invoke(cli, ["score", str(data), "--db", str(data), "--no-progress",
                                      "--validators", "overlap"])  # fmt: skip
    assert result.exit_code != 0
    assert "not a groundset store (not a DuckDB database file)" in result.output
    assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.jsonl"]  # no lock file left


def test_scoring_again_with_another_validator_scores_the_recorded_rows_with_it(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + '{"document": "x"}\n')
    _score(tmp_path, data, "--validators", "overlap")
    result, db = _score(tmp_path, data, "--validators", "overlap,relevance")
    assert result.exit_code == 0, result.output
    assert "(resumed)" in result.output
    assert "scored 2 recorded rows with the validators new to the run" in result.output
    assert "relevance            2/2 pass" in result.output
    rows = sql(db, 'SELECT "relevance.cosine" AS r FROM candidate_scores WHERE parse_ok')
    assert len(rows) == 2 and all(r["r"] is not None for r in rows)

    again, _ = _score(tmp_path, data, "--validators", "overlap,relevance")
    assert "(resumed)" in again.output and "recorded rows" not in again.output


def test_sweep_says_when_the_run_has_no_scores_for_the_metric(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    other = tmp_path / "other.jsonl"
    other.write_text(data.read_text())
    _score(tmp_path, data, "--validators", "overlap,relevance")
    _, db = _score(tmp_path, other, "--validators", "overlap")
    sweep = CliRunner().invoke(
        cli, ["sweep", "relevance.cosine", "--run", "other", "--db", str(db)]
    )
    assert sweep.exit_code == 0
    assert "no relevance.cosine scores in run" in sweep.output
    assert "--validators relevance` adds them" in sweep.output


def test_set_takes_options_of_the_validators_being_scored_only(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    result, _ = _score(tmp_path, data, "--validators", "overlap", "--set", "run.batch_size=8")
    assert result.exit_code == 2 and "score takes validator options only" in result.output
    result, _ = _score(tmp_path, data, "--validators", "overlap",
                       "--set", "validators.overlpa.min_precision=0.5")  # fmt: skip
    assert result.exit_code == 2
    assert "'overlpa' is not among the validators scored (overlap)" in result.output


def test_a_run_name_that_several_runs_share_picks_the_newest_and_says_so(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    _score(tmp_path, data, "--validators", "overlap")
    _, db = _score(tmp_path, data, "--validators", "overlap", "--model-id", "another-model")
    newest = sql(db, "SELECT run_id FROM runs WHERE model_id = 'another-model'")[0]["run_id"]
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["export", "--run", "mine", "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"run name 'mine' matches 2 runs; using the newest, {newest[:12]}" in result.output
    assert f"of run {newest}" in result.output
