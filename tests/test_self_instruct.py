"""The self_instruct strategy: Alpaca's prompt, the task parser, bootstrapping toward a target
(with resumption), and the Alpaca export."""

from __future__ import annotations

import hashlib
import json
import random
from importlib import resources
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from groundset.core import Generation, content_hash, hookimpl
from groundset.core.cli import cli
from groundset.core.store import Store
from groundset.core.testing import MockBackend, registered_plugin
from groundset.plugins.self_instruct import (
    SelfInstruct,
    Task,
    encode_prompt,
    load_seed_tasks,
    parse_tasks,
)

SEEDS = "self_instruct_seed_tasks.jsonl"
#: sha256 of Self-Instruct's data/seed_tasks.jsonl as ../shared/data holds it (its NOTICE)
SEEDS_SHA256 = "7779004fa198fdf27cf70a159363879d8a26c53329e11b436af17b3941875f48"

# A completion as a model continues "4. Instruction:": three whole tasks, then one cut short.
COMPLETION = """ Classify the sentiment of the following review as positive or negative.
4. Input:
The soup was cold and the waiter ignored us for an hour.
4. Output:
Negative
###
5. Instruction: List three renewable sources of energy.
5. Input:
<noinput>
5. Output:
Solar, wind and hydroelectric power.
###
6. Instruction: Rewrite the sentence in the passive voice.
6. Input:
The committee approved the new budget.
6. Output:
The new budget was approved by the committee.
###
7. Instruction: Explain why the sky looks blue during the day.
7. Input:
<noinput>
7. Output:
Sunlight is scattered by the molecules of the air, and blue"""


def _generation(text: str, stop_reason: str | None = "stop") -> Generation:
    return Generation(text=text, model_id="m", stop_reason=stop_reason)


def test_the_packaged_seed_tasks_are_the_175_of_self_instruct():
    packaged = resources.files("groundset.plugins") / "data" / SEEDS
    assert hashlib.sha256(packaged.read_bytes()).hexdigest() == SEEDS_SHA256  # unchanged
    tasks = load_seed_tasks()
    assert len(tasks) == 175
    assert sum(1 for t in tasks if not t.input) == 50


def test_the_pinned_seed_tasks_are_those_of_the_shared_folder(requires_shared):
    shared = requires_shared(f"data/{SEEDS}")
    assert hashlib.sha256(shared.read_bytes()).hexdigest() == SEEDS_SHA256
    assert load_seed_tasks() == load_seed_tasks(shared)


def test_the_prompt_is_alpacas_with_numbered_examples():
    strategy = SelfInstruct()
    examples = [Task("Say hi.", "", "Hi!"), Task("Add the numbers:", "2 and 3", "5")]
    prompt = encode_prompt(strategy.header, examples)
    assert prompt.startswith("You are asked to come up with a set of 20 diverse task instructions.")
    assert "instrucitons" in prompt  # Alpaca's prompt word for word, typos included
    assert prompt.endswith(
        "List of 20 tasks:\n###\n1. Instruction: Say hi.\n1. Input:\n<noinput>\n1. Output:\nHi!\n"
        "###\n2. Instruction: Add the numbers\n2. Input:\n2 and 3\n2. Output:\n5\n"
        "###\n3. Instruction:"
    )


def test_a_round_samples_k_examples_and_mixes_in_accepted_machine_tasks():
    strategy = SelfInstruct(SelfInstruct.Options(num_examples=3, machine_examples=1))
    accepted = [{"instruction": "A machine task only.", "input": "", "output": "x"}]
    first = strategy.plan_round(0, [], random.Random(1))
    later = strategy.plan_round(1, accepted, random.Random(1))
    assert len(first) == len(later) == 8
    assert all(p.prompt.text.count("Instruction:") == 4 for p in first + later)
    assert not any("A machine task only." in p.prompt.text for p in first)
    assert all("A machine task only." in p.prompt.text for p in later)
    again = strategy.plan_round(1, accepted, random.Random(1))
    assert [p.prompt.text for p in again] == [p.prompt.text for p in later]


def test_every_task_in_a_completion_is_parsed_and_a_cut_off_one_is_kept_as_a_failure():
    tasks = parse_tasks(COMPLETION, stop_reason="length")
    assert [t.ok for t in tasks] == [True, True, True, False]
    assert tasks[0].fields == {
        "instruction": "Classify the sentiment of the following review as positive or negative.",
        "input": "The soup was cold and the waiter ignored us for an hour.",
        "output": "Negative",
    }
    assert tasks[1].fields["input"] == ""  # <noinput>
    assert tasks[3].error == "cut off by the length limit"
    assert "Explain why the sky looks blue" in tasks[3].raw


def test_a_last_task_that_ended_normally_is_kept():
    tasks = parse_tasks(COMPLETION + " light is scattered most.\n###\n", stop_reason="stop")
    assert [t.ok for t in tasks] == [True, True, True, True]
    assert tasks[3].fields["output"].endswith("scattered most.")


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        ("", ["no task in the output"]),
        ("   \n", ["no task in the output"]),
        (" Name a color.\n4. Output:\nBlue\n###", ["task 1: missing Input"]),
        (" Name a color.\n4. Input:\n<noinput>\n", ["task 1: missing Output"]),
        (
            " Name a color.\n4. Output:\nBlue\n4. Input:\nx\n###\n5. Instruction: Say hi.\n"
            "5. Input:\n<noinput>\n5. Output:\nHi",
            ["task 1: parts out of order", None],
        ),
        ("\n4. Input:\nx\n4. Output:\ny", ["task 1: empty instruction"]),
        ("I cannot come up with more tasks.", ["task 1: missing Input, Output"]),
    ],
)
def test_malformed_tasks_say_what_is_wrong(text, reasons):
    assert [t.error for t in parse_tasks(text)] == reasons


def test_a_backend_error_is_not_parsed():
    [failed] = SelfInstruct().parse(Generation("", "m", error="timed out"))
    assert failed.error == "backend error: timed out"


# --- bootstrapping toward a target, with the mock backend -----------------------------------


def _completion(n: int) -> str:
    """A completion with three distinct well-formed tasks and one the format validator fails."""
    return (
        f" Describe the history of city number {n} in two sentences.\n4. Input:\n<noinput>\n"
        f"4. Output:\nIt grew.\n###\n5. Instruction: Convert {n} kilometres into miles please.\n"
        f"5. Input:\n<noinput>\n5. Output:\nAbout {n * 0.62:.1f} miles.\n###\n"
        f"6. Instruction: Summarise the argument number {n} in one line.\n6. Input:\n"
        f"Argument {n} says more is better.\n6. Output:\nMore is better.\n###\n"
        f"7. Instruction: Draw a map of town {n}.\n7. Input:\n<noinput>\n7. Output:\nNo.\n###\n"
    )


class CountingBackend(MockBackend):
    """A completion that depends on the prompt alone (as a seeded model's would); dies at call
    ``die_at`` (to test resuming)."""

    backend_id = "counting"
    die_at: ClassVar[int | None] = None

    def generate(self, prompts, params):
        if self.die_at is not None and len(self.calls) + 1 >= self.die_at:
            raise RuntimeError("backend died")
        generations = super().generate(prompts, params)
        return [
            Generation(_completion(int(content_hash(p.text)[:5], 16)), g.model_id, 10, 20, 0.0,
                       "stop")
            for p, g in zip(prompts, generations, strict=True)
        ]  # fmt: skip


class CountingPlugin:
    @hookimpl
    def register_backends(self, register):
        register(CountingBackend)


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "si.toml"
    path.write_text(
        f"""
[run]
name = "si"
strategy = "self_instruct"
backend = "counting"
validators = ["format"]
batch_size = 2

[strategies.self_instruct]
prompts_per_round = 4
{extra}
""",
        encoding="utf-8",
    )
    return path


def _invoke(config: Path, db: Path, *args: str):
    return CliRunner().invoke(
        cli, ["run", str(config), "--db", str(db), "--no-progress", *args], catch_exceptions=False
    )


ACCEPTED = "SELECT count(*) FROM accepted_default"
ROWS = "SELECT candidate_id, work_id, batch_index, fields, status FROM candidates ORDER BY ALL"


def test_a_run_goes_on_until_the_target_is_accepted(tmp_path):
    db = tmp_path / "s.duckdb"
    with registered_plugin(CountingPlugin(), "counting"):
        result = _invoke(_config(tmp_path), db, "--target", "20")
    assert result.exit_code == 0, result.output
    with Store(db, read_only=True) as store:
        accepted = store.query(ACCEPTED).rows[0][0]
        batches = store.query("SELECT DISTINCT batch_index FROM candidates ORDER BY 1").rows
        rejected = store.query(
            'SELECT count(*) FROM candidate_scores WHERE "format.no_blacklisted_word" = 0'
        ).rows[0][0]
    # 3 of every 4 tasks pass; each batch of 2 prompts adds 6; it stops at the first batch >= 20
    assert accepted == 24
    assert [b for (b,) in batches] == [0, 1, 100_000, 100_001]  # two rounds of two batches
    assert rejected == 8  # the map-drawing tasks are kept and scored, not dropped


def test_accepted_machine_tasks_join_the_examples_of_later_rounds(tmp_path):
    db = tmp_path / "s.duckdb"
    with registered_plugin(CountingPlugin(), "counting"):
        _invoke(_config(tmp_path), db, "--target", "20")
    with Store(db, read_only=True) as store:
        prompts = store.query(
            "SELECT DISTINCT c.batch_index, p.text FROM candidates c JOIN prompts p"
            " USING (prompt_id) ORDER BY 1"
        ).rows
    first_round = [text for batch, text in prompts if batch < 100_000]
    second_round = [text for batch, text in prompts if batch >= 100_000]
    assert not any("city number" in t or "kilometres" in t for t in first_round)
    assert all(("city number" in t) or ("kilometres" in t) or ("argument number" in t)
               for t in second_round)  # fmt: skip
    assert not any("Draw a map" in t for t in second_round)  # rejected tasks never do


def test_a_stopped_run_continues_toward_the_same_target(tmp_path, monkeypatch):
    db, reference = tmp_path / "s.duckdb", tmp_path / "ref.duckdb"
    config = _config(tmp_path)
    with registered_plugin(CountingPlugin(), "counting"):
        monkeypatch.setattr(CountingBackend, "die_at", 3)  # dies in the second round
        failed = CliRunner().invoke(cli, ["run", str(config), "--db", str(db), "--target", "20"])
        assert failed.exit_code != 0
        with Store(db, read_only=True) as store:
            assert 0 < store.query(ACCEPTED).rows[0][0] < 20
        monkeypatch.setattr(CountingBackend, "die_at", None)
        resumed = _invoke(config, db, "--target", "20")
        assert "so far" in resumed.output
        _invoke(config, reference, "--target", "20")
    with Store(db, read_only=True) as a, Store(reference, read_only=True) as b:
        assert a.query(ROWS).rows == b.query(ROWS).rows
        assert a.query(ACCEPTED).rows[0][0] == 24


def test_a_higher_target_extends_the_same_run(tmp_path):
    db = tmp_path / "s.duckdb"
    config = _config(tmp_path)
    with registered_plugin(CountingPlugin(), "counting"):
        _invoke(config, db, "--target", "10")
        _invoke(config, db, "--target", "30")
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM runs").rows[0][0] == 1
        assert store.query(ACCEPTED).rows[0][0] == 30
        total, distinct = store.query(
            "SELECT count(*), count(DISTINCT candidate_id) FROM candidates"
        ).rows[0]
    assert total == distinct


def test_a_target_needs_a_strategy_that_plans_in_rounds(tmp_path, write_config, mock_backend):
    result = CliRunner().invoke(
        cli, ["run", str(write_config()), "--db", str(tmp_path / "s.duckdb"), "--target", "5"]
    )
    assert result.exit_code == 2
    assert "run.target needs a strategy that plans in rounds" in result.output


def test_a_run_that_accepts_nothing_stops_instead_of_looping(tmp_path):
    db = tmp_path / "s.duckdb"
    extra = '\n[validators.format]\nblacklist = ["the", "of", "into", "in", "a", "map"]\n'
    with registered_plugin(CountingPlugin(), "counting"):
        result = _invoke(_config(tmp_path, extra), db, "--target", "5")
    assert "stopped at 0 of 5 accepted: 5 rounds in a row added no accepted" in result.output


def test_export_in_alpacas_format(tmp_path):
    db = tmp_path / "s.duckdb"
    with registered_plugin(CountingPlugin(), "counting"):
        _invoke(_config(tmp_path), db, "--target", "6")
    out = tmp_path / "alpaca_data.json"
    result = CliRunner().invoke(
        cli, ["export", "--db", str(db), "-o", str(out), "--min", "format.ok=1"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert len(rows) == 6 and all(set(r) == {"instruction", "input", "output"} for r in rows)
    import datasets
    import pandas as pd

    assert list(pd.read_json(out).columns) == ["instruction", "input", "output"]
    loaded = datasets.load_dataset("json", data_files=str(out), split="train")
    assert loaded.num_rows == 6 and loaded.column_names == ["instruction", "input", "output"]
    converted = [r for r in rows if r["instruction"].startswith("Convert ")]
    assert converted and all(r["input"] == "" and "miles" in r["output"] for r in converted)
