"""The format validator: parse status, word-count bounds, question shape and placeholder text."""

from __future__ import annotations

import pytest

from groundset.core import Candidate, ConfigError, Document
from groundset.validators.format import (
    FormatValidator,
    count_words,
    is_question,
    register_validators,
)

DOCUMENT = Document(text="IBM acquired Red Hat in 2019 for $34 billion.")


def _candidate(
    question: str | None = "How much did IBM pay for Red Hat?",
    answer: str | None = "About $34 billion in cash.",
    parse_error: str | None = None,
) -> Candidate:
    fields = {}
    if question is not None:
        fields["question"] = question
    if answer is not None:
        fields["answer"] = answer
    if parse_error is not None:
        fields = {}
    return Candidate(
        candidate_id="c1",
        run_id="r1",
        work_id="w1",
        document=DOCUMENT,
        fields=fields,
        raw_output="raw",
        parse_error=parse_error,
    )


def _score(candidate: Candidate, **options: object) -> dict[str, float]:
    validator = FormatValidator(FormatValidator.Options(**options))
    [scores] = validator.score([candidate])
    return scores


def test_good_pair_passes_every_check() -> None:
    assert _score(_candidate()) == {
        "parsed": 1.0,
        "question_words": 8.0,
        "answer_words": 5.0,
        "length_ok": 1.0,
        "is_question": 1.0,
        "no_placeholder": 1.0,
        "ok": 1.0,
    }


def test_declared_metrics_are_the_returned_keys() -> None:
    declared = {metric.name for metric in FormatValidator.metrics}
    assert declared == set(_score(_candidate())) | set(_score(_task("Name three colors please.")))
    assert set(_score(_candidate(parse_error="no [answer] marker"))) <= declared
    [ok] = [m for m in FormatValidator.metrics if m.name == "ok"]
    assert ok.default_threshold == 1.0 and ok.higher_is_better
    thresholds = [m.name for m in FormatValidator.metrics if m.default_threshold is not None]
    assert thresholds == ["ok"]


def test_parse_failure_scores_only_parsed_and_ok() -> None:
    assert FormatValidator.scores_parse_failures is True
    assert _score(_candidate(parse_error="empty answer")) == {"parsed": 0.0, "ok": 0.0}


def test_missing_field_counts_as_empty_text() -> None:
    scores = _score(_candidate(answer=None))
    assert scores["answer_words"] == 0.0
    assert scores["length_ok"] == 0.0
    assert scores["ok"] == 0.0
    scores = _score(_candidate(question=None))
    assert scores["question_words"] == 0.0 and scores["is_question"] == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How much did IBM pay?", 5),
        ("  IBM  paid $190.00 per share  - in cash . ", 7),  # lone "-" and "." are no words
        ("", 0),
        ("Red Hat\u2019s hybrid cloud", 4),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How much did IBM pay for Red Hat?", True),
        ("When did IBM acquire Red Hat", True),  # interrogative, no question mark
        ("Is Watson NLP open source", True),  # auxiliary
        ("Does it support gRPC", True),
        ("IBM paid how much?", True),  # question mark
        ('"What is OpenShift?"', True),  # quoted
        ("**What is OpenShift?**", True),  # markdown bold
        ("\u00bfQu\u00e9 es OpenShift", True),  # Spanish opening mark
        ("Describe the acquisition of Red Hat.", False),  # an instruction, not a question
        ("IBM acquired Red Hat.", False),
        ("Whatever happened next.", False),  # "whatever" is not "what"
        ("", False),
    ],
)
def test_is_question(question: str, expected: bool) -> None:
    assert is_question(question) is expected
    scores = _score(_candidate(question=question))
    assert scores["is_question"] == (1.0 if expected else 0.0)


@pytest.mark.parametrize(
    ("question", "answer", "length_ok"),
    [
        ("What did IBM buy?", "Red Hat.", 1.0),  # 4 and 2 words: at the minimums
        ("What IBM?", "Red Hat.", 0.0),  # 2-word question
        ("What did IBM buy?", "Hat.", 0.0),  # 1-word answer
        ("What did IBM buy?", " ".join(["word"] * 200), 1.0),  # exactly the maximum
        ("What did IBM buy?", " ".join(["word"] * 201), 0.0),
        ("Why " + "very " * 59 + "so?", "Red Hat.", 0.0),  # 61-word question
    ],
)
def test_length_bounds_are_inclusive(question: str, answer: str, length_ok: float) -> None:
    scores = _score(_candidate(question=question, answer=answer))
    assert scores["length_ok"] == length_ok
    assert scores["ok"] == length_ok


def test_custom_bounds_and_field_names() -> None:
    candidate = Candidate(
        "c", "r", "w", DOCUMENT, {"instruction": "Why?", "output": "Because."}, ""
    )
    scores = _score(
        candidate,
        question_field="instruction",
        answer_field="output",
        min_question_words=1,
        min_answer_words=1,
    )
    assert scores["question_words"] == 1.0 and scores["answer_words"] == 1.0
    assert scores["ok"] == 1.0


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What does the [document] say?", "It says things."),
        ("What did IBM buy?", "[answer]: Red Hat."),
        ("What did IBM buy?", "Lorem Ipsum dolor sit amet."),
        ("What did IBM buy?", "TODO: fill this in."),
        ("What did IBM buy?", "The company XXX for money."),
        ("Your question here?", "Red Hat and more."),
        ("What did IBM buy?", "Red Hat.<|im_end|>"),
        ("What did IBM buy?", "[Insert answer here]"),
        ("What is {question}?", "Red Hat and more."),
    ],
)
def test_placeholders_are_flagged(question: str, answer: str) -> None:
    scores = _score(_candidate(question=question, answer=answer))
    assert scores["no_placeholder"] == 0.0
    assert scores["ok"] == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "Use INSERT INTO to add rows.",  # "insert" is an ordinary word
        'It returns {"status": "ok"} as JSON.',  # braces in technical answers
        "Sizes range from S to XXXL.",  # "xxx" only as a whole word
        "Todo el mundo lo usa.",  # Spanish "todo" is not a TODO marker
        "The answer is in the document.",  # the words, without brackets
    ],
)
def test_ordinary_text_is_not_a_placeholder(answer: str) -> None:
    assert _score(_candidate(answer=answer))["no_placeholder"] == 1.0


def test_placeholders_option_replaces_the_defaults() -> None:
    candidate = _candidate(answer="About $34 billion, see TBD.")
    assert _score(candidate)["no_placeholder"] == 1.0
    assert _score(candidate, placeholders=("tbd",))["no_placeholder"] == 0.0
    assert _score(_candidate(answer="[answer] x y"), placeholders=())["no_placeholder"] == 1.0


def test_bad_bounds_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"validators\.format\.min_answer_words"):
        FormatValidator(FormatValidator.Options(min_answer_words=10, max_answer_words=5))


def test_scores_a_batch_in_order() -> None:
    candidates = [_candidate(), _candidate(parse_error="empty output"), _candidate(question="x")]
    scores = FormatValidator().score(candidates)
    assert [s["ok"] for s in scores] == [1.0, 0.0, 0.0]


def test_registers_itself() -> None:
    registered: list[type] = []
    register_validators(registered.append)
    assert registered == [FormatValidator]
    assert FormatValidator.validator_id == "format"


# --- instruction tasks: Alpaca's filters, each a metric ---------------------------------------


def _task(instruction: str, **options) -> Candidate:
    fields = {"instruction": instruction, "input": "", "output": "An output."}
    return Candidate("c2", "r1", "w2", DOCUMENT, fields, "raw")


def _score_task(instruction: str, **options) -> dict[str, float]:
    return FormatValidator(FormatValidator.Options(**options)).score([_task(instruction)])[0]


ALPACA_CASES = [
    ("Give three tips for staying healthy.", None),
    ("Hello there friend", "instruction_length_ok"),  # 3 words: Alpaca drops <= 3
    (" ".join(["word"] * 151), "instruction_length_ok"),
    (" ".join(["word"] * 150), None),
    ("Describe the image of a sunset.", "no_blacklisted_word"),
    ("Explain how to go to the station.", "no_blacklisted_word"),
    ("Plot the sales numbers for 2020.", "no_blacklisted_word"),
    ("Explain how mapping functions work.", None),  # "map" only as a whole word
    ("Write a program that sorts a list.", "no_banned_prefix"),
    ("Write a poem about the sea.", None),
    ('"Translate" this sentence into French.', "no_leading_punctuation"),
    ("¿Cómo se dice hello en español?", "ascii_start"),
]


@pytest.mark.parametrize(("instruction", "failing"), ALPACA_CASES)
def test_alpaca_filters_are_metrics_not_silent_drops(instruction: str, failing: str | None):
    scores = _score_task(instruction)
    checks = ["instruction_length_ok", "no_blacklisted_word", "no_banned_prefix",
              "no_leading_punctuation", "ascii_start"]  # fmt: skip
    assert [name for name in checks if scores[name] == 0.0] == ([failing] if failing else [])
    assert scores["ok"] == (0.0 if failing else 1.0)
    assert scores["instruction_words"] == len(instruction.split())
    assert "is_question" not in scores  # question checks are for question/answer pairs


def test_the_blacklist_and_bounds_are_options():
    assert _score_task("Describe the image of a sunset.", blacklist=())["ok"] == 1.0
    assert _score_task("Summarise this.", min_instruction_words=2)["ok"] == 1.0
    assert _score_task("Compose a haiku about rain.", banned_prefixes=("Compose",))["ok"] == 0.0
    assert _score_task("Describe the weather today.", blacklist=("weather",))["ok"] == 0.0
