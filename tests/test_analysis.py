"""Accept policies, threshold sweeps, run comparison, and every export format loaded back with
the libraries users load them with (pandas, pyarrow, Hugging Face datasets)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.errors import ConfigError
from groundset.core.policies import Condition, parse_policies
from groundset.core.store import Store

GOOD = "[question]: How much did IBM pay for Red Hat?\\n[answer]: IBM paid $190.00 per share."
COPY = (
    "[question]: What did IBM and Red Hat announce?\\n[answer]: IBM and Red Hat announced today"
    " that they have closed the transaction under which IBM acquired all of the issued and"
    " outstanding common shares of Red Hat"
)
SHORT = "[question]: Red Hat?\\n[answer]: IBM bought it for $34 billion."
BAD = "Sorry, no."

POLICIES = """
[accept.strict]
description = "well formed and not copied"
all = ["format.ok >= 1", "overlap.verbatim_copy <= 0"]

[accept.either]
any = ["overlap.token_precision >= 0.99", "format.question_words <= 3"]

[accept.by_strategy]
all = ["format.ok >= 1"]
[accept.by_strategy.strategies.grounded_qa]
all = ["overlap.verbatim_copy >= 1"]
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def ran(tmp_path, write_config, mock_backend) -> tuple[Path, Path]:
    db = tmp_path / "s.duckdb"
    outputs = json.dumps([GOOD, COPY, SHORT, BAD]).replace("\\\\n", "\\n")
    config = write_config(f"[backends.mock]\noutputs = {outputs}\n{POLICIES}")
    result = invoke("run", str(config), "--db", str(db), "--no-progress",
                    "--limit-documents", "1", "--samples", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    return db, config


def _sql(db: Path, query: str, params=None) -> list[tuple]:
    with Store(db, read_only=True) as store:
        return store.query(query, params).rows


def _expected(db: Path, where: str) -> set[str]:
    return {r[0] for r in _sql(db, f"SELECT candidate_id FROM candidate_scores WHERE {where}")}


def _accepted(db: Path, policy: str) -> set[str]:
    return {r[0] for r in _sql(db, "SELECT candidate_id FROM accepted WHERE policy = ?", [policy])}


# --- policies --------------------------------------------------------------------------------


def test_a_policy_records_exactly_the_candidates_its_rules_pass(ran):
    db, config = ran
    result = invoke("accept", str(config), "--policy", "strict", "--db", str(db))
    assert result.exit_code == 0, result.output
    expected = _expected(db, 'parse_ok AND "format.ok" >= 1 AND "overlap.verbatim_copy" <= 0')
    assert _accepted(db, "strict") == expected and 0 < len(expected) < 8
    assert f"{len(expected)} of 8 candidates" in result.output
    [(definition,)] = _sql(db, "SELECT definition FROM policies WHERE policy = 'strict'")
    assert json.loads(definition)["all"] == ["format.ok >= 1", "overlap.verbatim_copy <= 0"]


def test_any_is_or_and_a_missing_score_fails(ran):
    db, config = ran
    invoke("accept", str(config), "--policy", "either", "--db", str(db))
    expected = _expected(
        db, 'parse_ok AND ("overlap.token_precision" >= 0.99 OR "format.question_words" <= 3)'
    )
    assert _accepted(db, "either") == expected and expected


def test_per_strategy_rules_replace_the_default_ones(ran):
    db, config = ran
    invoke("accept", str(config), "--policy", "by_strategy", "--db", str(db))
    assert _accepted(db, "by_strategy") == _expected(
        db, 'parse_ok AND "overlap.verbatim_copy" >= 1'
    )


def test_the_policy_is_found_in_the_runs_own_config(ran):
    db, _ = ran
    assert invoke("accept", "--policy", "strict", "--db", str(db)).exit_code == 0
    assert _accepted(db, "strict")


def test_a_changed_policy_is_a_new_version_and_the_view_follows_it(ran, tmp_path):
    db, config = ran
    invoke("accept", str(config), "--policy", "strict", "--db", str(db))
    looser = tmp_path / "looser.toml"
    looser.write_text('[accept.strict]\nall = ["format.parsed >= 1"]\n')
    invoke("accept", str(looser), "--policy", "strict", "--db", str(db))
    assert len(_sql(db, "SELECT * FROM policies WHERE policy = 'strict'")) == 2
    assert _accepted(db, "strict") == _expected(db, "parse_ok")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[accept.x]\nall = ["format.ok >> 1"]', "is not a condition like"),
        ('[accept.x]\nsome = ["format.ok >= 1"]', "unknown key 'some'"),
        ("[accept.x]\ndescription = 'empty'", "no conditions"),
        ('[accept.x]\nall = "format.ok >= one"', "is not a condition like"),
    ],
)
def test_malformed_policies_name_the_file_and_key(toml, message):
    import tomllib

    with pytest.raises(ConfigError, match=message) as raised:
        parse_policies(tomllib.loads(toml), "p.toml")
    assert "p.toml: [accept.x]" in str(raised.value)


def test_an_unknown_metric_or_policy_is_one_line(ran):
    db, config = ran
    bad = config.parent / "bad.toml"
    bad.write_text('[accept.typo]\nall = ["format.okay >= 1"]\n')
    result = CliRunner().invoke(cli, ["accept", str(bad), "--policy", "typo", "--db", str(db)])
    assert result.exit_code == 2 and "unknown metric 'format.okay'" in result.output
    result = CliRunner().invoke(cli, ["accept", "--policy", "nope", "--db", str(db)])
    assert result.exit_code == 2 and "no policy 'nope'" in result.output


def test_condition_parsing():
    assert Condition.parse("a.b>=0.5", "w") == Condition("a.b", ">=", 0.5)
    assert str(Condition.parse(" dedup.max_rouge_l <= 0.7 ", "w")) == "dedup.max_rouge_l <= 0.7"


# --- sweep and compare -----------------------------------------------------------------------


def test_sweep_counts_what_passes_at_each_threshold_given_the_others(ran, tmp_path):
    db, _ = ran
    result = invoke("sweep", "overlap.token_precision", "--db", str(db), "--format", "json",
                    "--steps", "4")  # fmt: skip
    rows = json.loads(result.output)
    others = _sql(
        db,
        'SELECT "overlap.token_precision" FROM candidate_scores cs WHERE parse_ok AND NOT EXISTS'
        " (SELECT 1 FROM validator_results v WHERE v.candidate_id = cs.candidate_id"
        " AND v.validator <> 'overlap' AND NOT v.passed)",
    )
    values = [v for (v,) in others]
    for row in rows:
        threshold = float(row["threshold"])
        assert row["passing"] == sum(1 for v in values if v >= threshold - 1e-6)
    assert rows[0]["passing"] == len(values)  # the lowest threshold passes all of them
    html = tmp_path / "sweep.html"
    invoke("sweep", "overlap.token_precision", "--db", str(db), "--html", str(html))
    assert 'class="plot"' in html.read_text() and "<polyline" in html.read_text()


def test_sweep_of_an_unknown_metric_is_one_line(ran):
    db, _ = ran
    result = CliRunner().invoke(cli, ["sweep", "overlap.nope", "--db", str(db)])
    assert result.exit_code == 2 and "unknown metric 'overlap.nope'" in result.output


def test_compare_puts_two_runs_side_by_side(ran, write_config, tmp_path):
    db, _ = ran
    other = write_config(f'[backends.mock]\noutputs = ["{GOOD}"]\n', name="other.toml")
    invoke("run", str(other), "--db", str(db), "--no-progress", "--name", "other",
           "--limit-documents", "1", "--samples", "8")  # fmt: skip
    result = invoke("compare", "test", "other", "--db", str(db), "--format", "json")
    rows = {r["quantity"]: r for r in json.loads(result.output)}
    runs = [k for k in rows["candidates"] if k != "quantity"]
    assert len(runs) == 2
    assert [rows["candidates"][r] for r in runs] == [8, 8]
    parsed = {r: rows["parsed %"][r] for r in runs}
    assert sorted(parsed.values()) == [75.0, 100.0]
    assert "format pass %" in rows and "overlap.token_precision mean" in rows


# --- exports ---------------------------------------------------------------------------------


def _export(db: Path, name: str, *args: str) -> Path:
    out = db.parent / name
    result = invoke("export", "--db", str(db), "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("provenance", [True, False], ids=["provenance", "fields-only"])
def test_every_export_loads_with_pandas_pyarrow_and_datasets(ran, provenance):
    import datasets
    import pandas as pd
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    db, config = ran
    invoke("accept", str(config), "--policy", "strict", "--db", str(db))
    expected = len(_accepted(db, "strict"))
    extra = () if provenance else ("--fields-only",)
    readers = {
        "out.jsonl": (lambda p: pd.read_json(p, lines=True), pajson.read_json, "json"),
        "out.parquet": (pd.read_parquet, pq.read_table, "parquet"),
        "out.csv": (pd.read_csv, pacsv.read_csv, "csv"),
        "out.chat.jsonl": (lambda p: pd.read_json(p, lines=True), pajson.read_json, "json"),
    }
    loaded = {}
    for name, (with_pandas, with_pyarrow, builder) in readers.items():
        path = _export(db, name, "--policy", "strict", *extra)
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
        loaded[name.split(".")[1]] = (with_pandas(path), with_pyarrow(path), dataset)
    for name, (frame, table, dataset) in loaded.items():
        assert len(frame) == table.num_rows == len(dataset) == expected, name
        if name == "chat":
            first = dataset[0]["messages"]
            roles = [m["role"] for m in first]
            assert roles == (
                ["system", "user", "assistant"] if provenance else ["user", "assistant"]
            )
            assert first[-2]["content"].endswith("?")
        else:
            assert {"question", "answer"} <= set(frame.columns), name
            assert ("format.ok" in frame.columns) == provenance, name
    records = _sql(db, "SELECT format, rows, policy, policy_version, sha256, provenance, path"
                   " FROM exports ORDER BY created_at")  # fmt: skip
    assert [r[0] for r in records] == ["jsonl", "parquet", "csv", "chat"]
    for _, rows, policy, version, sha, with_provenance, path in records:
        assert rows == expected and policy == "strict" and version
        assert sha == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert with_provenance == provenance


def test_alpaca_export_of_question_answer_pairs_is_refused_with_a_reason(ran):
    db, _ = ran
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "-o", str(db.parent / "a.json")])
    assert result.exit_code == 2 and "needs the fields instruction, input and output" in (
        result.output
    )


def test_export_by_a_policy_not_applied_yet_says_how(ran):
    db, _ = ran
    result = CliRunner().invoke(
        cli, ["export", "--db", str(db), "-o", str(db.parent / "x.jsonl"), "--policy", "strict"]
    )
    assert result.exit_code == 2 and "groundset accept [CONFIG] --policy strict" in result.output


def test_the_report_counts_what_the_policy_accepted(ran):
    db, config = ran
    invoke("accept", str(config), "--policy", "strict", "--db", str(db))
    result = invoke("report", "--db", str(db), "--policy", "strict")
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.output.splitlines() if x.strip().startswith("accepted")]
    assert line.split()[1] == str(len(_accepted(db, "strict"))) and "policy:strict" in line
    missing = CliRunner().invoke(cli, ["report", "--db", str(db), "--policy", "lenient"])
    assert missing.exit_code == 2 and "groundset accept [CONFIG] --policy lenient" in missing.output
