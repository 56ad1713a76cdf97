"""What ``grounding_nli`` checks: which sentences of an answer are claims, and how a document is
cut into chunks."""

from __future__ import annotations

import pytest

from groundset.validators.chunks import chunk_sentences, estimate_tokens
from groundset.validators.claims import answer_claims, not_a_claim, strip_lead_in


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        ("I could not find the year in the passages.", "abstention"),
        ("The passages do not mention when the plant opened.", "abstention"),
        ("There is no information about the CEO in the provided documents.", "abstention"),
        ("The plant's output is not mentioned in the passages.", "abstention"),
        ("The context does not provide enough information to answer.", "abstention"),
        ("Unfortunately, I cannot answer that.", "abstention"),
        ("I hope this helps!", "help"),
        ("Let me know if you have any other questions.", "help"),
        ("Here are the main points:", "framing"),
        ("The passages discuss various topics related to dogs.", "source"),
    ],
)
def test_sentences_that_state_nothing_about_the_document_are_set_aside(sentence, why):
    assert not_a_claim(sentence) == why
    claims, aside = answer_claims(sentence)
    assert claims == [] and [(c.sentence, c.reason) for c in aside] == [(sentence, why)]


@pytest.mark.parametrize(
    "sentence",
    [
        "It may have opened in 1998.",  # hedged, but it states a year
        "The plant employs 300 people.",
        "Hello, I love that game.",  # a remark in a dialogue is checked like any sentence
        "The document describes a plant in Ohio.",
        "No information leaked before the launch in March.",
        "The article was published in 2001.",
    ],
)
def test_claims_are_kept_even_when_uncertain_in_tone(sentence):
    assert not_a_claim(sentence) is None
    assert answer_claims(sentence) == ([sentence], [])


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        ("Based on the given passages, the plant opened in 1998.", "The plant opened in 1998."),
        ("According to the document, revenue rose.", "Revenue rose."),
        ("It is worth noting that the plant employs 300 people.", "The plant employs 300 people."),
        ("The passages say that he left in 1999.", "He left in 1999."),
        (
            "In summary, based on the passages, it appears that the plant closed in 2004.",
            "The plant closed in 2004.",
        ),
        ("The plant opened in 1998.", "The plant opened in 1998."),
    ],
)
def test_a_lead_in_naming_the_source_is_cut_off(sentence, claim):
    assert strip_lead_in(sentence) == claim


def test_each_sentence_is_classified_before_short_ones_are_joined():
    claims, aside = answer_claims("Great question. The plant opened in 1998. I hope this helps!")
    assert claims == ["The plant opened in 1998."]
    assert [c.reason for c in aside] == ["framing", "help"]
    # a short claim is still joined to the next one, as split_claims does
    assert answer_claims("No. It did not open in 1998.")[0] == ["No. It did not open in 1998."]
    assert answer_claims("")[0] == []


def test_tokens_are_estimated_like_wordpiece():
    assert estimate_tokens("The plant opened.") == 4  # three words and a full stop
    assert estimate_tokens("internationalisation") > 1  # split into pieces
    assert estimate_tokens("") == 0


def test_chunks_are_whole_sentences_within_the_budget_and_overlap_by_one():
    sentences = tuple(f"Sentence number {i} is here." for i in range(10))  # 6 tokens each
    chunks = chunk_sentences(sentences, budget=20)
    assert all(estimate_tokens(c) <= 20 for c in chunks)
    assert chunks[0] == " ".join(sentences[:3])
    assert chunks[1].startswith(sentences[2])  # starts one sentence before the last ended
    assert chunks[-1].endswith(sentences[-1])
    assert chunk_sentences(sentences, budget=1000) == (" ".join(sentences),)  # fits whole
    # a sentence over the budget is a chunk alone, and chunking still moves forward
    long = ("word " * 50).strip() + "."
    assert chunk_sentences(("A b c.", long, "D e f."), budget=10) == ("A b c.", long, "D e f.")
    assert chunk_sentences((), 48) == ()
