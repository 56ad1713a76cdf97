"""The LLM grounding judge: its prompts go through a real backend plugin, its replies are read
strictly (a verdict without evidence in the document is not support), and an unreadable reply
is kept with the reason instead of guessed."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from groundset.core import (
    Backend,
    Candidate,
    ConfigError,
    Document,
    Generation,
    hookimpl,
)
from groundset.core.scoring import score_candidates
from groundset.core.testing import registered_plugin
from groundset.validators.grounding_judge import (
    MINICHECK_SYSTEM,
    GroundingJudgeValidator,
    parse_minicheck,
    parse_statements,
    parse_verdicts,
)

DOCUMENT = "The museum opened in 1994. Entry is free on the first Sunday of every month."


class Scripted(Backend):
    """Answers each prompt by what it asks: statements, verdicts or a MiniCheck Yes/No."""

    backend_id = "scripted"
    replies: ClassVar[dict[str, str]] = {}
    prompts: ClassVar[list[str]] = []

    def generate(self, prompts, params):
        out = []
        for prompt in prompts:
            Scripted.prompts.append(prompt.text)
            reply = next((r for key, r in Scripted.replies.items() if key in prompt.text), "")
            out.append(Generation(reply, "scripted-model"))
        return out


class Plugin:
    @hookimpl
    def register_backends(self, register):
        register(Scripted)


@pytest.fixture(autouse=True)
def scripted():
    Scripted.replies, Scripted.prompts = {}, []
    with registered_plugin(Plugin(), "grounding-judge-test"):
        yield


def judge(**options) -> GroundingJudgeValidator:
    return GroundingJudgeValidator(GroundingJudgeValidator.Options(backend="scripted", **options))


def candidate(answer: str) -> Candidate:
    return Candidate("c", "r", "w", Document(text=DOCUMENT), {"question": "When?",
                     "answer": answer}, answer)  # fmt: skip


def test_claims_counts_a_statement_supported_only_with_a_quote_from_the_document():
    statements = ["The museum opened in 1994.", "Entry is always free.", "The museum has a cafe."]
    verdicts = [
        {"statement": 1, "supported": True, "quote": "The museum opened in 1994"},
        {"statement": 2, "supported": True, "quote": "Entry is always free"},
        {"statement": 3, "supported": False, "quote": ""},
    ]
    Scripted.replies = {
        "Break the answer": json.dumps(statements),
        "For each numbered statement": json.dumps(verdicts),
    }
    answer = "It opened in 1994; entry is always free; it has a cafe."
    [result] = judge().score([candidate(answer)])
    assert result["supported"] == pytest.approx(1 / 3)
    assert result["statements"] == 3 and result["parsed"] == 1
    checked = result["details"]["statements"]
    assert [c["supported"] for c in checked] == [True, False, False]
    assert checked[1]["reason"] == "quote not in the document"
    # the statements reached the second call, numbered, with the document
    assert "1. The museum opened in 1994." in Scripted.prompts[1]
    assert DOCUMENT in Scripted.prompts[1]


@pytest.mark.parametrize(
    ("replies", "step", "reason"),
    [
        ({"Break the answer": "Sure! The answer says it opened in 1994."}, "statements",
         "no JSON list in the reply"),
        ({"Break the answer": '["The museum opened in 1994."]',
          "For each numbered statement": "[{\"statement\": 1, \"supported\": tru"},
         "verdicts", "no JSON list in the reply"),
        ({"Break the answer": '["A.", "B."]',
          "For each numbered statement": '[{"statement": 1, "supported": true, "quote": "x"}]'},
         "verdicts", "1 verdicts for 2 statements"),
    ],
)  # fmt: skip
def test_claims_keeps_an_unreadable_reply_with_its_reason_and_no_score(replies, step, reason):
    Scripted.replies = replies
    validator = judge()
    rows = score_candidates([validator], [candidate("It opened in 1994.")])
    metrics = {r["metric"]: r["value"] for r in rows}
    assert "supported" not in metrics and metrics["parsed"] == 0.0
    [result] = validator.score([candidate("It opened in 1994.")])
    assert result["details"]["unread"] == step and result["details"]["reason"] == reason
    assert result["details"]["reply"] == list(replies.values())[-1]


def test_minicheck_asks_each_claim_against_each_chunk_in_its_format():
    Scripted.replies = {"Claim: The museum opened in 1994.": "Yes", "Claim: It has a cafe.": "No"}
    [result] = judge(method="minicheck", chunk_tokens=8).score(
        [candidate("The museum opened in 1994. It has a cafe. I hope this helps!")]
    )
    assert result["supported"] == 0.5 and result["statements"] == 2
    assert [c["supported"] for c in result["details"]["claims"]] == [True, False]
    chunks = 2  # 8 estimated tokens: one sentence a chunk
    assert len(Scripted.prompts) == 2 * chunks  # two claims x two chunks; the closing set aside
    assert all(p.startswith(MINICHECK_SYSTEM) for p in Scripted.prompts)


def test_minicheck_without_a_readable_verdict_gives_no_score():
    Scripted.replies = {"Claim:": "The claim seems plausible."}
    [result] = judge(method="minicheck").score([candidate("The museum opened in 1994.")])
    assert "supported" not in result and result["parsed"] == 0.0
    assert result["details"]["unread"][0]["reply"] == "The claim seems plausible."


def test_replies_are_read_strictly():
    assert parse_minicheck("Yes.") is True and parse_minicheck(" no") is False
    assert parse_minicheck("Yesterday") is None and parse_minicheck(None) is None
    assert parse_statements('```json\n["A.", "B."]\n```') == (["A.", "B."], "")
    assert parse_statements("[]") == (None, "no statements listed")
    assert parse_verdicts(None, 1) == (None, "the backend failed the call")


def test_an_unknown_method_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"validators\.grounding_judge\.method"):
        judge(method="vibes")


@pytest.mark.model
def test_a_run_records_the_judges_verdicts_with_the_local_model(tmp_path, mock_backend):
    """The mechanics end to end: a run generates with the mock backend, the judge asks the real
    local model, and what it said is in the store with the verdict per claim."""
    from click.testing import CliRunner

    from groundset.core.cli import cli

    documents = tmp_path / "docs.jsonl"
    documents.write_text(json.dumps({"id": "d1", "text": DOCUMENT}) + "\n")
    config = tmp_path / "cfg.toml"
    config.write_text(f"""
[run]
name = "judged"
backend = "mock"
validators = ["format", "grounding_judge"]
samples_per_document = 2

[documents]
path = "{documents}"

[backends.mock]
outputs = ["[question]: When did it open?\\n[answer]: The museum opened in 1994."]

[validators.grounding_judge]
method = "minicheck"
""")
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["run", str(config), "--db", str(db)])
    assert result.exit_code == 0, result.output
    query = (
        'SELECT s."grounding_judge.parsed" AS parsed, s."grounding_judge.statements" AS n,'
        " d.details FROM candidate_scores s JOIN score_details d USING (candidate_id)"
        " WHERE d.validator = 'grounding_judge'"
    )
    out = CliRunner().invoke(cli, ["sql", query, "--db", str(db), "--format", "json"])
    rows = json.loads(out.output)
    assert len(rows) == 2 and all(r["n"] == 1 for r in rows)
    for row in rows:
        details = json.loads(row["details"])
        assert details["method"] == "minicheck"
        assert [c["claim"] for c in details["claims"]] == ["The museum opened in 1994."]
        # a 135M model rarely answers Yes or No: either way, what it said is kept
        assert row["parsed"] == 1.0 or details["unread"][0]["reply"] is not None
