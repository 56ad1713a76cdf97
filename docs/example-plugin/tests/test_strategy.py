import random

from groundset.core import Document, Generation, GenerationParams, Prompt
from groundset.core.testing import MockBackend, check_strategy

from groundset_example import OneQuestion

DOCUMENTS = [Document("One. Two. Three. Four."), Document("Five! Six?")]


def test_one_question_keeps_the_strategy_contract():
    check_strategy(OneQuestion())
    check_strategy(OneQuestion(), DOCUMENTS)


def test_the_plan_is_samples_prompts_per_document_chosen_by_the_rng():
    plan = OneQuestion().plan(DOCUMENTS, 3, random.Random(7))
    assert [p.document for p in plan] == [DOCUMENTS[0]] * 3 + [DOCUMENTS[1]] * 3
    assert plan == OneQuestion().plan(DOCUMENTS, 3, random.Random(7))
    assert plan != OneQuestion().plan(DOCUMENTS, 3, random.Random(8))


def test_parse_keeps_pairs_and_explains_failures():
    outputs = ("[question]: Why\n is it?\n[answer]: Because.\n\nThe end.", "No pair.")
    backend = MockBackend(MockBackend.Options(outputs=outputs))
    good, bad = backend.generate([Prompt("a"), Prompt("b")], GenerationParams())
    [pair] = OneQuestion().parse(good)
    assert pair.fields == {"question": "Why is it?", "answer": "Because."}
    [failed] = OneQuestion().parse(bad)
    assert failed.error == "no [question]: ... [answer]: ..." and failed.raw == "No pair."
    [error] = OneQuestion().parse(Generation("", "m", error="timeout"))
    assert error.error == "backend error: timeout"
