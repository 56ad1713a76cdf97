"""groundset's own NLI model: shipped in the package, loaded offline, and right on the cases
that matter for grounding (a copied fact is entailed, a changed number is not)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core import Candidate, Document
from groundset.core.cli import cli
from groundset.validators.grounding_nli import GroundingNliValidator
from groundset.validators.nli import default_nli_path, nli_model

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCUMENT = Document(
    text="The museum opened in 1994 and received 2.3 million visitors last year. Entry is free"
    " on the first Sunday of every month. The west wing closes for repairs in March."
)
DEFAULT = next(m for m in GroundingNliValidator.metrics if m.default_threshold is not None)
THRESHOLD = DEFAULT.default_threshold


def score(answer: str, check_numbers: bool = False) -> dict[str, float]:
    """The validator's scores; by default the model's judgement alone, without the number
    check, which would settle every changed-number case here by itself."""
    candidate = Candidate("c", "r", "w", DOCUMENT, {"question": "?", "answer": answer}, answer)
    options = GroundingNliValidator.Options(check_numbers=check_numbers)
    return GroundingNliValidator(options).score([candidate])[0]


def test_the_model_ships_in_the_package_and_matches_its_card():
    folder = default_nli_path()
    assert {"model.onnx", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    card = (DOCS / "nli-model.md").read_text()
    assert digest in card, "update the sha256 in docs/nli-model.md"
    assert (folder / "model.onnx").stat().st_size < 30_000_000


def test_it_loads_offline_and_reads_its_label_order():
    model = nli_model()
    config = json.loads((default_nli_path() / "config.json").read_text())
    labels = {int(k): v.lower() for k, v in config["id2label"].items()}
    assert labels[model.entail_index].startswith("entail")
    assert labels[model.contradict_index].startswith("contradict")


def test_a_copied_sentence_is_entailed():
    result = score("The museum opened in 1994.")
    assert result[DEFAULT.name] >= THRESHOLD and result["entailment"] > 0.5


def test_a_changed_number_is_rejected():
    copied = score("The museum opened in 1994.")
    swapped = score("The museum opened in 1949.")
    assert swapped[DEFAULT.name] < THRESHOLD <= copied[DEFAULT.name]


def test_changed_numbers_lower_entailment_even_when_they_pass():
    """The model's known weakness (see docs/nli-model.md): some changed figures still clear the
    default threshold, but every one scores far below the copied fact."""
    copied = score("The museum opened in 1994.")["entailment"]
    for changed in ("The museum opened in 2004.", "The museum opened in 1949."):
        assert score(changed)["entailment"] < copied - 0.3


def test_the_number_check_rejects_a_year_the_document_does_not_state():
    nearby = score("The museum opened in 1995.", check_numbers=True)
    assert nearby["entailment"] == 0.0 and nearby["score"] == -1.0
    assert nearby["numbers_found"] == 0.0
    assert nearby["details"]["numbers_not_found"] == ["1995"]
    copied = score("The museum opened in 1994.", check_numbers=True)
    unchecked = score("The museum opened in 1994.")
    assert copied.pop("details") == unchecked.pop("details")  # the same window decided it
    assert copied == pytest.approx({**unchecked, "numbers_found": 1.0})


def test_the_number_check_rejects_a_month_the_document_does_not_name():
    moved = score("The west wing closes for repairs in April.", check_numbers=True)
    assert moved["entailment"] == 0.0 and moved["score"] == -1.0
    assert moved["details"]["numbers_not_found"] == ["April"]
    named = score("The west wing closes for repairs in March.", check_numbers=True)
    assert named["numbers_found"] == 1.0 and "numbers_not_found" not in named["details"]


def test_the_number_check_reads_numbers_written_another_way():
    restated = score("It had 2,300,000 visitors last year; entry is free one Sunday a month.",
                     check_numbers=True)  # fmt: skip
    assert restated["numbers_found"] == 1.0
    assert score("It had about 2 million visitors.", check_numbers=True)["numbers_found"] == 1.0
    assert score("It had 3 million visitors.", check_numbers=True)["numbers_found"] == 0.0


def score_with(answer: str, **options: object) -> dict[str, float]:
    candidate = Candidate("c", "r", "w", DOCUMENT, {"question": "?", "answer": answer}, answer)
    found = GroundingNliValidator.Options(check_numbers=False, **options)  # type: ignore[arg-type]
    return GroundingNliValidator(found).score([candidate])[0]


def test_one_unsupported_sentence_in_a_short_answer_sinks_it():
    grounded = score("The museum opened in 1994. Entry is free on the first Sunday.")
    padded = score("The museum opened in 1994. It was designed by Frank Gehry.")
    contradicted = score("The museum opened in 1994. Entry is never free.")
    assert padded[DEFAULT.name] < THRESHOLD <= grounded[DEFAULT.name]
    assert contradicted[DEFAULT.name] < THRESHOLD
    # a contradiction is told from a claim the document does not mention
    assert contradicted["contradiction"] > 0.5 > padded["contradiction"]
    # the default combines the least supported claim with the mean over claims
    claims = [c["entailment"] for c in padded["details"]["claims"]]
    least, mean = min(claims), sum(claims) / len(claims)
    assert padded[DEFAULT.name] == pytest.approx((least + mean) / 2, abs=1e-4)
    alone = score_with("The museum opened in 1994. It was designed by Frank Gehry.",
                       aggregate="min")  # fmt: skip
    assert alone[DEFAULT.name] == pytest.approx(least, abs=1e-4)
    assert alone[DEFAULT.name] < padded[DEFAULT.name]


def test_commentary_around_a_claim_changes_nothing():
    bare = score("The museum opened in 1994.")
    framed = score("Based on the passage, the museum opened in 1994. I hope this helps!")
    assert framed[DEFAULT.name] == pytest.approx(bare[DEFAULT.name])
    assert framed["details"]["set_aside"] == [{"sentence": "I hope this helps!", "why": "help"}]
    assert [c["claim"] for c in framed["details"]["claims"]] == ["The museum opened in 1994."]
    # checked as written, the commentary is a claim the document does not entail
    raw = score_with("Based on the passage, the museum opened in 1994. I hope this helps!",
                     claims_only=False)  # fmt: skip
    assert raw[DEFAULT.name] < framed[DEFAULT.name]


def test_an_abstention_alone_is_not_grounded():
    result = score("I could not find the opening year in the passages.")
    assert result["entailment"] == 0.0 and result["score"] == -1.0
    assert result[DEFAULT.name] < THRESHOLD and result["details"]["no_claims"] is True
    assert result["details"]["set_aside"][0]["why"] == "abstention"


def test_score_command_records_every_row_with_nli_scores(tmp_path):
    data = tmp_path / "answers.jsonl"
    rows = [{"document": DOCUMENT.text, "answer": a} for a in
            ("The museum opened in 1994.", "The museum opened in 1949.", "")]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(
        cli,
        [
            "score",
            str(data),
            "--db",
            str(db),
            "--question-field",
            "",
            "--validators",
            "grounding_nli",
            "--set",
            "validators.grounding_nli.check_numbers=false",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 rows, 1 could not be scored" in result.output
    assert re.search(r"grounding_nli\s+1/2 pass", result.output)
    query = (
        f'SELECT "grounding_nli.{DEFAULT.name}" AS s FROM candidate_scores ORDER BY sample_index'
    )
    out = CliRunner().invoke(cli, ["sql", query, "--db", str(db), "--format", "json"]).output
    values = [r["s"] for r in json.loads(out)]
    assert values[0] >= THRESHOLD > values[1] and values[2] is None


def test_score_command_records_the_numbers_an_answer_invents(tmp_path):
    data = tmp_path / "answers.csv"
    data.write_text(
        "document,answer\n"
        f'"{DOCUMENT.text}","It opened in 1994 with 2,300,000 visitors."\n'
        f'"{DOCUMENT.text}","It opened in 1995 with 2.5 million visitors."\n'
    )
    db = tmp_path / "s.duckdb"
    args = ["score", str(data), "--db", str(db), "--question-field", "", "--validators",
            "grounding_nli", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    query = (
        "SELECT s.\"grounding_nli.numbers_found\" AS found, d.details->'numbers_not_found' AS lost"
        " FROM candidate_scores s LEFT JOIN score_details d USING (candidate_id)"
        " ORDER BY s.sample_index"
    )
    out = CliRunner().invoke(cli, ["sql", query, "--db", str(db), "--format", "json"]).output
    rows = json.loads(out)
    assert rows[0]["found"] == 1.0 and rows[0]["lost"] is None
    assert rows[1]["found"] == 0.0 and json.loads(rows[1]["lost"]) == ["1995", "2.5 million"]


@pytest.mark.parametrize("name", ["model.onnx", "config.json", "tokenizer.json"])
def test_model_files_are_package_data(name):
    import tomllib

    pyproject = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["groundset.validators"]
    assert any(Path("data/nli", name).match(p) for p in patterns)
