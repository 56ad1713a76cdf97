"""The training script's second stage: which pairs it replays from the first."""

import pytest

pytest.importorskip("torch")
train = pytest.importorskip("training.nli.train")
data = pytest.importorskip("training.nli.data")


def _pairs(source: str, count: int) -> list:
    return [data.Example(f"p{i}", f"h{i}", "neutral", source, "") for i in range(count)]


def test_a_second_stage_keeps_every_document_pair_and_a_seeded_share_of_the_rest():
    sentence, document = _pairs("esnli", 200), _pairs("grounding_fib", 30)
    kept = train.replayed(sentence + document, 0.25, seed=13)
    assert [e for e in kept if e.source == "grounding_fib"] == document
    replayed = [e for e in kept if e.source == "esnli"]
    assert len(replayed) == 50 and len(set(replayed)) == 50
    assert train.replayed(sentence + document, 0.25, seed=13) == kept
    assert train.replayed(sentence + document, 0.25, seed=14) != kept
    assert train.replayed(sentence + document, 1.0, seed=13) == sentence + document


def test_a_negative_share_is_refused():
    with pytest.raises(SystemExit, match="--replay"):
        train.replayed(_pairs("esnli", 3), -0.5, seed=13)
