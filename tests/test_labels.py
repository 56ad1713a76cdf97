"""Human labels in the store: imported from files keyed by candidate id or by the line of a
scored file, recorded while a labelled dataset is scored, exported again; history kept, the
newest label per (candidate, aspect, labeller) counting; bad files refused whole, by line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.store import Store

ROWS = [
    {"document": f"The plant in Site {i} opened in {1990 + i}.",
     "answer": f"It opened in {1990 + i}.", "human": ["good", "bad", "1", "0"][i % 4]}
    for i in range(6)
]  # fmt: skip


def invoke(*args: object, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with Store(db, read_only=True) as store:
        return store.query(sql, params).rows


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def scored(tmp_path) -> Path:
    """A store with one `groundset score` run of six rows, labelled in the `human` column."""
    db = tmp_path / "s.duckdb"
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    invoke("score", data, "--db", db, "--validators", "overlap", "--question-field", "",
           "--label-field", "human", "--labeller", "ann", "--no-progress")  # fmt: skip
    return db


def test_score_records_a_labelled_datasets_labels_with_its_rows(scored):
    labels = rows(scored, "SELECT c.sample_index, l.value, l.labeller, l.source, l.aspect"
                  " FROM labels l JOIN candidates c USING (candidate_id) ORDER BY 1")  # fmt: skip
    assert labels == [(i + 1, [1, 0, 1, 0][i % 4], "ann", "score", "overall") for i in range(6)]
    origins = rows(scored, "SELECT origin FROM labels ORDER BY seq")
    assert origins[0][0].endswith("data.jsonl:1")
    check = invoke("check", "--db", scored)
    assert "ok" in check.output


def test_import_by_candidate_id_keeps_history_and_the_newest_label_counts(scored, tmp_path):
    first = rows(scored, "SELECT candidate_id FROM candidates ORDER BY sample_index LIMIT 2")
    (a,), (b,) = first
    file = tmp_path / "mine.csv"
    with file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["candidate_id", "label", "note", "aspect"])
        writer.writeheader()
        writer.writerow({"candidate_id": a, "label": "0", "note": "wrong year", "aspect": ""})
        writer.writerow({"candidate_id": b, "label": "true", "note": "", "aspect": "grounded"})
    out = invoke("labels", "import", file, "--db", scored, "--labeller", "ann").output
    assert "recorded 2 labels" in out
    assert "1 label changed an earlier label of the same labeller" in out  # a was good
    latest = rows(scored, "SELECT candidate_id, aspect, value, note FROM latest_labels"
                  " WHERE candidate_id IN (?, ?) ORDER BY candidate_id, aspect", a, b)  # fmt: skip
    assert (a, "overall", 0, "wrong year") in latest and (b, "grounded", 1, None) in latest
    assert rows(scored, "SELECT count(*) FROM labels WHERE candidate_id = ?", a) == [(2,)]


def test_import_by_the_line_of_the_scored_file(scored, tmp_path):
    file = write_jsonl(tmp_path / "by-line.jsonl", [{"line": 3, "label": 0, "labeller": "bob"}])
    invoke("labels", "import", file, "--run", "latest", "--db", scored)
    assert rows(scored, "SELECT c.sample_index, l.value FROM latest_labels l JOIN candidates c"
                " USING (candidate_id) WHERE l.labeller = 'bob'") == [(3, 0)]  # fmt: skip


def test_export_writes_the_latest_labels_and_they_import_again(scored, tmp_path):
    out = tmp_path / "labels.jsonl"
    assert "exported 6 labels" in invoke("labels", "export", "-o", out, "--db", scored).output
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["label"] for e in exported} == {0, 1} and exported[0]["labeller"] == "ann"
    for suffix in ("csv", "parquet"):
        invoke("labels", "export", "-o", tmp_path / f"labels.{suffix}", "--db", scored)
    again = invoke("labels", "import", tmp_path / "labels.parquet", "--db", scored).output
    assert "recorded 6 labels" in again and "changed" not in again


GOOD = {"candidate_id": "X", "label": 1}


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([GOOD, {"candidate_id": "nope", "label": 1}],
         "bad.jsonl:2: no candidate with candidate_id 'nope'"),
        ([GOOD, {"candidate_id": "X", "label": "maybe"}], "bad.jsonl:2: label 'maybe' is not 1/0"),
        ([GOOD, {"candidate_id": "X", "label": 1, "aspect": "style"}],
         "bad.jsonl:2: aspect 'style' is not one of overall, grounded"),
        ([{"id": "X", "label": 1}], "no row has the column 'candidate_id'; its columns: id, label"),
        ([GOOD, {"candidate_id": "X", "label": 0}],
         "bad.jsonl:2: ann labels candidate X (overall) 0, but"),
    ],
    ids=["unknown candidate", "bad value", "bad aspect", "wrong columns", "conflict"],
)  # fmt: skip
def test_a_bad_label_file_is_refused_whole_in_one_line(scored, tmp_path, records, message):
    known = rows(scored, "SELECT candidate_id FROM candidates LIMIT 1")[0][0]
    records = [{k: known if v == "X" else v for k, v in r.items()} for r in records]
    file = write_jsonl(tmp_path / "bad.jsonl", records)
    before = rows(scored, "SELECT count(*) FROM labels")
    result = invoke("labels", "import", file, "--db", scored, "--labeller", "ann", ok=False)
    assert result.exit_code == 2, result.output
    assert message.replace("X", known) in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert rows(scored, "SELECT count(*) FROM labels") == before  # nothing recorded


def test_score_refuses_a_label_column_with_a_bad_value_before_recording(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", [*ROWS[:2], {**ROWS[2], "human": "unsure"}])
    db = tmp_path / "s.duckdb"
    result = invoke("score", data, "--db", db, "--validators", "overlap", "--question-field", "",
                    "--label-field", "human", "--no-progress", ok=False)  # fmt: skip
    assert result.exit_code == 2 and "data.jsonl:3: label 'unsure' is not 1/0" in result.output
    assert not db.exists()
    missing = invoke("score", data, "--db", db, "--question-field", "", "--label-field", "gold",
                     ok=False)  # fmt: skip
    assert "no row has the field 'gold' (--label-field)" in missing.output


def test_check_finds_a_label_of_no_candidate(scored):
    with Store(scored) as store:
        store.db.execute(
            "INSERT INTO labels (candidate_id, run_id, value, labeller, source)"
            " VALUES ('ghost', 'r', 1, 'ann', 'import')"
        )
    result = invoke("check", "--db", scored, ok=False)
    assert result.exit_code == 1 and "labels.candidate_id -> candidates" in result.output
