"""The model-based validators with their real offline models on small inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from groundset.core import Candidate, ConfigError, Document
from groundset.core.scoring import score_candidates
from groundset.validators.grounding_embedding import GroundingEmbeddingValidator
from groundset.validators.grounding_nli import (
    GroundingNliValidator,
    _aggregate,
    _Plan,
    document_windows,
)
from groundset.validators.judge import JudgeValidator, parse_judgement
from groundset.validators.models import embedder
from groundset.validators.relevance import RelevanceValidator

RED_HAT = Document(
    title="IBM Closes Landmark Acquisition of Red Hat",
    text=(
        "IBM and Red Hat announced today that they have closed the transaction under which IBM"
        " acquired all of the issued and outstanding common shares of Red Hat for $190.00 per"
        " share in cash, representing a total equity value of approximately $34 billion. The"
        " acquisition redefines the cloud market for business. Together, IBM and Red Hat will"
        " offer a next-generation hybrid multicloud platform based on Linux and Kubernetes."
    ),
)
QUESTION = "How much did IBM pay for Red Hat?"
GROUNDED = "IBM paid $190.00 per share in cash, about $34 billion in total."
OTHER_DOCUMENT = "The Watson NLP containers provide REST and gRPC interfaces."
UNRELATED = "Bananas are a good source of potassium and fibre."


def candidate(answer: str, question: str = QUESTION, document: Document = RED_HAT) -> Candidate:
    return Candidate(
        f"c-{answer[:10]}", "r", "w", document, {"question": question, "answer": answer}, answer
    )


def test_relevance_prefers_an_answer_to_the_question():
    scores = RelevanceValidator().score([candidate(GROUNDED), candidate(UNRELATED)])
    assert set(scores[0]) == {"cosine"}
    assert scores[0]["cosine"] > 0.4 > scores[1]["cosine"]
    assert all(-1.0 <= s["cosine"] <= 1.0 for s in scores)


def test_relevance_rejects_an_unknown_method():
    with pytest.raises(ConfigError, match=r"validators\.relevance\.method"):
        RelevanceValidator(RelevanceValidator.Options(method="vibes"))


def test_grounding_embedding_separates_grounded_from_other_documents():
    scores = GroundingEmbeddingValidator().score(
        [candidate(GROUNDED), candidate(OTHER_DOCUMENT), candidate(UNRELATED)]
    )
    assert scores[0]["min_similarity"] > 0.5
    assert scores[0]["min_similarity"] > scores[1]["min_similarity"] > scores[2]["min_similarity"]


def test_grounding_embedding_min_is_the_least_supported_sentence():
    [score] = GroundingEmbeddingValidator().score([candidate(f"{GROUNDED} {UNRELATED}")])
    assert score["min_similarity"] < score["mean_similarity"]


def test_document_sentences_are_encoded_once_per_document(monkeypatch):
    model = embedder()
    calls: list[int] = []
    original = model.encode
    monkeypatch.setattr(
        model, "encode", lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)
    )
    document = Document(text="A first sentence here. A second one there. And a third.")
    validator = GroundingEmbeddingValidator()
    validator.score([candidate("A first sentence.", document=document)] * 3)
    validator.score([candidate("A second one.", document=document)])
    # one call for the document's three sentences, one per batch for the answers
    assert calls == [3, 3, 1]


def test_document_windows_are_sentences_and_runs_of_sentences():
    document = Document(text="One. Two. Three. Four.")
    assert document_windows(document, 1) == ("One.", "Two.", "Three.", "Four.")
    assert document_windows(document, 3)[4:] == ("One. Two. Three.", "Two. Three. Four.")


def plan(claims, windows, numbers=None, aside=(), unchecked=0) -> _Plan:
    return _Plan(list(claims), tuple(windows), 0, numbers, list(aside), unchecked)


def test_nli_aggregation_takes_each_claims_best_window_and_combines_the_claims():
    # two claims x three windows; columns: P(entailment), P(contradiction)
    grid = np.array([[0.9, 0.05], [0.1, 0.1], [0.2, 0.7],
                     [0.3, 0.1], [0.4, 0.5], [0.2, 0.2]], dtype=np.float32)  # fmt: skip
    entry = plan(["A.", "B."], ("W1.", "W2.", "W3."), numbers=[(0, []), (1, [])])
    # claim 1: best window W1 (0.85); claim 2: W1 too, max(0.2, -0.1, 0.0)
    least = _aggregate(grid, entry, "min")
    assert least["score"] == pytest.approx(0.2)
    assert least["entailment"] == pytest.approx(0.4)  # claim 2's highest entailment
    assert least["contradiction"] == pytest.approx(0.1)  # at each claim's best window
    assert least["numbers_found"] == 1.0 and least["unchecked"] == 0.0
    assert _aggregate(grid, entry, "mean")["score"] == pytest.approx((0.85 + 0.2) / 2)
    both = _aggregate(grid, entry, "min+mean")  # the least supported claim and the mean
    assert both["score"] == pytest.approx((0.2 + (0.85 + 0.2) / 2) / 2)
    assert both["entailment"] == pytest.approx((0.4 + (0.9 + 0.4) / 2) / 2)
    # the evidence a reviewer sees: the window that decided each claim's entailment (the
    # default gate: claim 2's is W2, though P(e) - P(c) is highest at W1), and its scores
    evidence = both["details"]["claims"]
    assert [(e["claim"], e["window"]) for e in evidence] == [("A.", "W1."), ("B.", "W2.")]
    assert [e["entailment"] for e in evidence] == pytest.approx([0.9, 0.4])
    assert [e["score"] for e in evidence] == pytest.approx([0.85, 0.2])


def test_nli_aggregation_fails_a_claim_stating_a_number_the_document_lacks():
    grid = np.array([[0.9, 0.05], [0.8, 0.1]], dtype=np.float32)  # two claims x one window
    claims, windows = ["It opened in 1995.", "It is open."], ("It opened in 1994.",)
    result = _aggregate(grid, plan(claims, windows, [(2, ["1995"]), (0, [])]), "min")
    assert result["score"] == -1.0 and result["entailment"] == 0.0
    assert result["contradiction"] == pytest.approx(0.1)  # the model's own, unchanged
    assert result["numbers_found"] == 0.5
    assert result["details"]["numbers_not_found"] == ["1995"]
    assert [e["score"] for e in result["details"]["claims"]] == [-1.0, pytest.approx(0.7)]
    unchecked = _aggregate(grid, plan(claims, windows), "min")
    assert unchecked["score"] == pytest.approx(0.7) and "numbers_found" not in unchecked


def test_an_answer_with_nothing_to_check_is_not_grounded_and_says_why():
    aside = [{"sentence": "I could not find that in the passages.", "why": "abstention"}]
    result = _aggregate(np.zeros((0, 2), dtype=np.float32), plan([], ("W.",), aside=aside))
    assert result["score"] == -1.0 and result["entailment"] == 0.0
    assert result["details"]["no_claims"] is True and result["details"]["set_aside"] == aside


def test_claims_past_max_claims_are_counted_as_unchecked():
    sentences = " ".join(f"Claim number {word} is here." for word in "abcdefghij")
    candidate = Candidate("c", "r", "w", Document(text="x"), {"answer": sentences}, sentences)
    options = GroundingNliValidator.Options(max_claims=4)
    claims, aside, unchecked = GroundingNliValidator(options)._claims(candidate)
    assert len(claims) == 4 and unchecked == 6 and aside == []
    grid = np.tile(np.array([[0.9, 0.0]], dtype=np.float32), (4, 1))
    result = _aggregate(grid, plan(claims, ("x",), unchecked=unchecked))
    assert result["unchecked"] == pytest.approx(0.6)
    assert result["details"]["unchecked_claims"] == 6
    every = GroundingNliValidator()._claims(candidate)  # by default every claim is checked
    assert len(every[0]) == 10 and every[2] == 0


def test_nli_splits_long_documents_into_overlapping_chunks():
    document = Document(
        text=" ".join(f"Sentence {i} says something about item {i}." for i in range(40))
    )
    validator = GroundingNliValidator(GroundingNliValidator.Options(chunk_tokens=40))
    chunks = validator._windows(document)
    assert len(chunks) > 5
    for before, after in itertools.pairwise(chunks):  # one sentence of overlap
        assert before.split(". ")[-1] == after.split(". ")[0] + "."
    assert " ".join(chunks).count("item 39.") == 1 and "item 0." in chunks[0]
    sentences = GroundingNliValidator(GroundingNliValidator.Options(windows="sentences"))
    assert sentences._windows(document) == document_windows(document, 1)


@pytest.mark.parametrize(
    ("option", "value"),
    [("hypothesis", "both"), ("windows", "pages"), ("aggregate", "max"), ("chunk_tokens", 0)],
)
def test_nli_rejects_a_bad_option(option, value):
    with pytest.raises(ConfigError, match=rf"validators\.grounding_nli\.{option}"):
        GroundingNliValidator(GroundingNliValidator.Options(**{option: value}))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Groundedness: 5\nRelevance: 4", {"groundedness": 1.0, "relevance": 0.75, "parsed": 1}),
        (
            "**Groundedness**: 3/5, **Relevance**: 1/5",
            {"groundedness": 0.5, "relevance": 0.0, "parsed": 1},
        ),
        ("groundedness = 2 relevant: 5", {"groundedness": 0.25, "relevance": 1.0, "parsed": 1}),
        ("Groundedness: 4", {"groundedness": 0.75, "parsed": 0}),
        ("I think the answer is fine.", {"parsed": 0}),
    ],
)
def test_judge_replies_are_parsed_or_recorded_as_unparsed(reply, expected):
    assert parse_judgement(reply) == expected


@pytest.mark.model
def test_judge_runs_through_the_real_default_model():
    judge = JudgeValidator(JudgeValidator.Options(max_new_tokens=12))
    scores = score_candidates([judge], [candidate(GROUNDED), candidate(UNRELATED)])
    by_metric: dict[str, list[float]] = {}
    for row in scores:
        by_metric.setdefault(row["metric"], []).append(row["value"])
    assert by_metric["parsed"] and len(by_metric["parsed"]) == 2
    assert all(0.0 <= v <= 1.0 for values in by_metric.values() for v in values)


@pytest.mark.model
def test_ragas_relevancy_generates_questions_with_a_real_backend():
    options = RelevanceValidator.Options(method="ragas", questions=2, max_new_tokens=16)
    [score] = RelevanceValidator(options).score([candidate(GROUNDED)])
    assert set(score) == {"cosine", "ragas_answer_relevancy"}
    assert -1.0 <= score["ragas_answer_relevancy"] <= 1.0
