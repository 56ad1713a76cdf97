from groundset.core import Candidate, Document
from groundset.core.testing import check_validator

from groundset_example import AnswerLengthRatio


def candidate(answer: str, document: str = "One two three four.") -> Candidate:
    fields = {"question": "Why?", "answer": answer}
    return Candidate("c1", "r1", "w1", Document(document), fields, raw_output=answer)


def test_length_ratio_keeps_the_validator_contract():
    check_validator(AnswerLengthRatio())
    check_validator(AnswerLengthRatio(), [candidate("één twee"), candidate("x", document="")])


def test_ratio_is_answer_words_over_document_words_capped_at_one():
    scores = AnswerLengthRatio().score(
        [candidate("one two"), candidate("one two three four five"), candidate("x", document="")]
    )
    assert scores == [{"ratio": 0.5}, {"ratio": 1.0}, {"ratio": 0.0}]


def test_the_field_option_picks_what_to_measure():
    validator = AnswerLengthRatio(AnswerLengthRatio.Options(field="question"))
    assert validator.score([candidate("one two")]) == [{"ratio": 0.25}]
