"""The overlap validator: token precision/recall, sentence ROUGE-L and verbatim-copy detection,
checked against values computed by hand."""

from __future__ import annotations

import random
import time

import pytest

from groundset.core import Candidate, ConfigError, Document
from groundset.plugins.grounded_qa import load_examples
from groundset.validators.overlap import (
    OverlapValidator,
    longest_common_span,
    register_validators,
    rouge_l,
    split_sentences,
)

CAT = "The cat sat on the mat."


def _candidate(answer: str | None, text: str = CAT, title: str | None = None) -> Candidate:
    fields = {"question": "What happened?"}
    if answer is not None:
        fields["answer"] = answer
    return Candidate("c1", "r1", "w1", Document(text=text, title=title), fields, "raw")


def _score(answer: str | None, text: str = CAT, **options: object) -> dict[str, float]:
    [scores] = OverlapValidator(OverlapValidator.Options(**options)).score(
        [_candidate(answer, text)]
    )
    return scores


def test_precision_recall_and_rouge_of_a_known_sentence() -> None:
    # answer: the cat sat on a hat (6); document: the cat sat on the mat (6)
    # shared with clipping: the, cat, sat, on = 4; LCS "the cat sat on" = 4
    scores = _score("The cat sat on a hat.")
    assert scores["token_precision"] == pytest.approx(4 / 6)
    assert scores["token_recall"] == pytest.approx(4 / 6)
    assert scores["rouge_l"] == pytest.approx(4 / 6)  # P = R = 4/6, so F = 4/6
    assert scores["copy_ratio"] == pytest.approx(4 / 6)
    assert scores["verbatim_copy"] == 0.0


def test_counts_are_clipped_like_bleu() -> None:
    # "the" three times in the answer but twice in the document counts twice
    scores = _score("the the the cat")
    assert scores["token_precision"] == pytest.approx(3 / 4)
    assert scores["token_recall"] == pytest.approx(3 / 6)


def test_rouge_l_takes_the_best_single_sentence() -> None:
    text = "Dogs bark loudly. Birds fly."
    # sentence 1: LCS 1, P 1/2, R 1/3 -> F 0.4; sentence 2: LCS 1, P 1/2, R 1/2 -> F 0.5
    scores = _score("dogs fly", text)
    assert scores["rouge_l"] == pytest.approx(0.5)
    assert scores["token_precision"] == 1.0
    assert _score("Birds fly", text)["rouge_l"] == 1.0


def test_rouge_l_function() -> None:
    assert rouge_l(["a", "b", "c", "d"], ["a", "c", "d", "e", "f"]) == pytest.approx(
        2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5)
    )
    assert rouge_l([], ["a"]) == 0.0
    assert rouge_l(["x"], ["a"]) == 0.0


def test_split_sentences() -> None:
    text = "Title line\nIt cost $3.5 billion. Really! Why?  Yes\n\nLast"
    assert split_sentences(text) == [
        "Title line",
        "It cost $3.5 billion.",
        "Really!",
        "Why?",
        "Yes",
        "Last",
    ]


def test_substring_answer_has_copy_ratio_one() -> None:
    scores = _score("sat on the mat")
    assert scores["copy_ratio"] == 1.0
    assert scores["token_precision"] == 1.0
    assert scores["verbatim_copy"] == 0.0  # 4 tokens: too short to call a copy


LONG = (
    "Red Hat was founded in 1993. IBM announced today that it has closed the transaction under "
    "which it acquired all of the issued and outstanding common shares of Red Hat. Together the "
    "companies will accelerate innovation with a hybrid multicloud platform."
)


def test_verbatim_copy_is_flagged_and_a_paraphrase_is_not() -> None:
    copied = _score(
        "IBM announced today that it has closed the transaction under which it acquired all of"
        " the issued and outstanding common shares of Red Hat. Together the companies will",
        LONG,
    )
    assert copied["copy_ratio"] == 1.0
    assert copied["verbatim_copy"] == 1.0
    paraphrase = _score("IBM closed the deal and now owns all the shares of Red Hat.", LONG)
    assert paraphrase["verbatim_copy"] == 0.0
    assert paraphrase["copy_ratio"] < 0.5


def test_copy_threshold_and_min_tokens_options() -> None:
    answer = "it has closed the transaction under which it bought all of the issued shares"
    # 14 tokens; the longest shared span "it has closed the transaction under which it" is 8
    assert _score(answer, LONG)["copy_ratio"] == pytest.approx(8 / 14)
    assert _score(answer, LONG)["verbatim_copy"] == 0.0
    assert _score(answer, LONG, copy_threshold=0.5)["verbatim_copy"] == 1.0
    assert _score(answer, LONG, copy_threshold=0.5, min_copy_tokens=15)["verbatim_copy"] == 0.0


def test_an_extractive_answer_is_not_called_a_copy_but_a_copied_title_is() -> None:
    """The seed's own first answer reuses most of one sentence in its own words: extractive,
    not a copy, so the default keeps it. An answer that is just a run of the document's words
    (here, its title) is flagged."""
    answer = (
        "IBM acquired Red Hat for $190.00 per share in cash, representing a total equity value"
        " of approximately $34 billion."
    )
    scores = _score(
        answer,
        LONG.replace(
            "1993.",
            "1993. It paid $190.00 per share in cash,"
            " representing a total equity value of approximately"
            " $34 billion.",
        ),
    )
    assert scores["copy_ratio"] >= 0.75
    assert scores["verbatim_copy"] == 0.0
    title = "IBM Closes Landmark Acquisition of Red Hat; Defines Open, Hybrid Cloud Future"
    [copied] = OverlapValidator().score([_candidate(title, LONG, title=title)])
    assert copied["copy_ratio"] == 1.0 and copied["verbatim_copy"] == 1.0


def test_lowercase_option() -> None:
    assert _score("THE CAT")["token_precision"] == 1.0
    assert _score("THE CAT", lowercase=False)["token_precision"] == 0.0
    assert _score("The cat", lowercase=False)["token_precision"] == 1.0


@pytest.mark.parametrize("answer", ["", "   ", "!!!", None])
def test_empty_or_missing_answer_scores_zero(answer: str | None) -> None:
    scores = _score(answer)
    assert scores == dict.fromkeys(scores, 0.0)
    assert set(scores) == {m.name for m in OverlapValidator.metrics}


def test_declared_metrics_are_the_returned_keys() -> None:
    declared = [m.name for m in OverlapValidator.metrics]
    assert declared == ["token_precision", "token_recall", "rouge_l", "copy_ratio", "verbatim_copy"]
    assert set(_score("The cat sat.")) == set(declared)
    for metric in OverlapValidator.metrics:
        assert (metric.low, metric.high) == (0.0, 1.0)
    by_name = {m.name: m for m in OverlapValidator.metrics}
    assert by_name["token_precision"].default_threshold == 0.45
    assert by_name["verbatim_copy"].higher_is_better is False
    assert by_name["verbatim_copy"].default_threshold == 0.0


def test_title_is_part_of_the_document() -> None:
    candidate = _candidate(
        "Landmark acquisition", "IBM bought Red Hat.", title="Landmark acquisition"
    )
    [scores] = OverlapValidator().score([candidate])
    assert scores["token_precision"] == 1.0
    assert scores["rouge_l"] == 1.0  # the title line is a sentence of its own


def test_other_field_option() -> None:
    candidate = _candidate("nothing in common")
    [scores] = OverlapValidator(OverlapValidator.Options(field="question")).score([candidate])
    # question "What happened?" shares no token with the cat sentence
    assert scores["token_precision"] == 0.0


def test_seed_examples_pass_the_default_precision_threshold() -> None:
    examples = load_examples()
    candidates = [
        Candidate("c", "r", "w", Document(text=e.document), {"answer": e.answer}, "")
        for e in examples
    ]
    scores = OverlapValidator().score(candidates)
    assert all(s["token_precision"] >= 0.45 for s in scores)
    # "The Watson NLP containers support REST and gRPC.": "support" and "grpc" are not in the
    # document (which spells it "gRCP"), so 6 of 8 tokens
    assert scores[2]["token_precision"] == pytest.approx(6 / 8)
    # example 1 copies "Red Hat for $190.00 ... $34 billion" (18 of its 20 tokens) verbatim
    assert scores[0]["copy_ratio"] == pytest.approx(18 / 20)


def _naive_span(a: list[str], b: list[str]) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_longest_common_span_matches_brute_force() -> None:
    rng = random.Random(7)
    for _ in range(200):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 30))]
        positions: dict[str, list[int]] = {}
        for index, token in enumerate(b):
            positions.setdefault(token, []).append(index)
        assert longest_common_span(a, positions) == _naive_span(a, b)


def _naive_lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for token in a:
        diagonal = 0
        for j, other in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if token == other else max(row[j - 1], above)
            diagonal = above
    return row[len(b)]


def test_rouge_l_matches_a_plain_lcs_dynamic_program() -> None:
    rng = random.Random(3)
    for _ in range(500):
        a = [rng.choice("abcd") for _ in range(rng.randint(1, 15))]
        b = [rng.choice("abcd") for _ in range(rng.randint(1, 40))]
        lcs = _naive_lcs(a, b)
        expected = 0.0 if lcs == 0 else 2 * lcs / (len(a) + len(b))  # F1 with P=lcs/a, R=lcs/b
        assert rouge_l(a, b) == pytest.approx(expected)


def test_long_documents_are_fast() -> None:
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(300)] + ["the"] * 30
    words = [rng.choice(vocabulary) for _ in range(8000)]
    text = " ".join(w + ("." if i % 20 == 19 else "") for i, w in enumerate(words))
    answers = [" ".join(rng.choice(vocabulary) for _ in range(120)) for _ in range(20)]
    answers.append(" ".join(words[100:220]))
    candidates = [_candidate(answer, text) for answer in answers]
    start = time.perf_counter()
    scores = OverlapValidator().score(candidates)
    assert time.perf_counter() - start < 3.0  # about 0.15 s on a laptop
    assert scores[-1]["copy_ratio"] == 1.0 and scores[-1]["verbatim_copy"] == 1.0


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"validators\.overlap\.copy_threshold"):
        OverlapValidator(OverlapValidator.Options(copy_threshold=1.5))
    with pytest.raises(ConfigError, match=r"validators\.overlap\.min_copy_tokens"):
        OverlapValidator(OverlapValidator.Options(min_copy_tokens=-1))


def test_registers_itself() -> None:
    registered: list[type] = []
    register_validators(registered.append)
    assert registered == [OverlapValidator]
    assert OverlapValidator.validator_id == "overlap"
