"""Offline sentence splitting: nltk's Punkt with packaged English parameters."""

from __future__ import annotations

from groundset.validators.sentences import _tokenizer, split_claims, split_sentences


def test_punkt_is_used_offline_and_knows_abbreviations():
    assert _tokenizer() is not None
    text = "Dr. Smith paid $3.5 million in Jan. 2020. He left. The U.S. office closed."
    assert split_sentences(text) == [
        "Dr. Smith paid $3.5 million in Jan. 2020.",
        "He left.",
        "The U.S. office closed.",
    ]


def test_paragraph_breaks_always_split_and_blank_text_has_no_sentences():
    assert split_sentences("A title\n\nBody one. Body two.") == [
        "A title",
        "Body one.",
        "Body two.",
    ]
    assert split_sentences("  \n ") == []


def test_short_sentences_join_the_next_claim():
    assert split_claims("No. Telescopes are not needed.") == ["No. Telescopes are not needed."]
    assert split_claims("The museum opened in 1994. It works.") == [
        "The museum opened in 1994. It works."
    ]
    assert split_claims("Yes.") == ["Yes."]
