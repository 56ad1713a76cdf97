"""The paired comparison that decides whether a newly trained NLI model replaces the shipped one."""

import numpy as np
import pytest

evaluate = pytest.importorskip("training.nli.evaluate")
from training.nli.data import LABEL2ID, Example  # noqa: E402

ENTAIL, NEUTRAL, CONTRA = LABEL2ID["entailment"], LABEL2ID["neutral"], LABEL2ID["contradiction"]


def _examples(labels: list[int], source: str) -> list[Example]:
    names = {i: name for name, i in LABEL2ID.items()}
    return [
        Example(f"premise {i}", f"claim {i}", names[label], source)
        for i, label in enumerate(labels)
    ]


def _probs(predicted: list[int]) -> np.ndarray:
    probs = np.full((len(predicted), 3), 0.1)
    probs[np.arange(len(predicted)), predicted] = 0.8
    return probs


def test_mcnemar_counts_only_the_pairs_the_models_disagree_on():
    assert evaluate.mcnemar_p(0, 0) == 1.0
    assert evaluate.mcnemar_p(10, 0) == pytest.approx(2 / 2**10)
    assert evaluate.mcnemar_p(3, 7) == evaluate.mcnemar_p(7, 3)
    assert evaluate.mcnemar_p(5, 5) == 1.0
    assert evaluate.mcnemar_p(600, 400) < 1e-9  # large counts stay exact, without overflow


def test_a_model_right_where_the_other_is_wrong_is_better_and_the_interval_says_so():
    gold = [ENTAIL, NEUTRAL, CONTRA] * 20
    examples = _examples(gold, "esnli_test")
    better = list(gold)
    worse = list(gold)
    for i in range(0, 60, 3):  # B calls 20 entailed claims neutral
        worse[i] = NEUTRAL
    out = evaluate.paired_comparison(_probs(better), _probs(worse), examples, resamples=500)
    two_way = out["esnli_test 2way"]
    assert (two_way["a"], two_way["only_a"], two_way["only_b"]) == (1.0, 20, 0)
    assert two_way["b"] == pytest.approx(40 / 60, abs=1e-4)
    assert two_way["mcnemar_p"] < 1e-5
    assert 0 < two_way["diff_ci95"][0] <= two_way["diff_ci95"][1]
    assert out["all 3way"]["only_a"] == 20


def test_neutral_and_contradiction_are_one_class_in_the_two_way_task():
    gold = [CONTRA] * 30
    examples = _examples(gold, "cad_test")
    out = evaluate.paired_comparison(_probs([CONTRA] * 30), _probs([NEUTRAL] * 30), examples)
    assert out["cad_test 2way"]["only_a"] == out["cad_test 2way"]["only_b"] == 0
    assert out["cad_test 2way"]["mcnemar_p"] == 1.0
    assert out["cad_test 3way"]["only_a"] == 30


def test_sources_are_compared_apart_and_together():
    examples = _examples([ENTAIL] * 10, "esnli_test") + _examples([ENTAIL] * 10, "wice_claim_test")
    a = _probs([ENTAIL] * 20)
    b = _probs([ENTAIL] * 10 + [NEUTRAL] * 10)
    out = evaluate.paired_comparison(a, b, examples, resamples=200)
    assert out["esnli_test 2way"]["only_a"] == 0
    assert out["wice_claim_test 2way"]["only_a"] == 10
    assert out["all 2way"]["n"] == 20 and out["all 2way"]["only_a"] == 10


def test_selection_on_grounding_sources_is_not_won_by_calling_everything_neutral():
    loop = pytest.importorskip("training.nli.loop")
    # a grounding dev source: 1 supported in 5, as the document-level sets mostly are
    gold = [ENTAIL] + [NEUTRAL] * 4
    examples = _examples(gold, "grounding_fib")
    lazy = evaluate.source_metrics(_probs([NEUTRAL] * 5), examples)
    assert lazy["acc_2way"] == 0.8 and lazy["ba_2way"] == 0.5  # accuracy rewards the skew
    right = evaluate.source_metrics(_probs(gold), examples)
    assert right["ba_2way"] == 1.0
    nli = {"n": 5, "acc_3way": 0.7, "acc_2way": 0.8}
    score_lazy = loop.selection_score({"cad": nli, "grounding_fib": lazy})
    score_right = loop.selection_score({"cad": nli, "grounding_fib": right})
    assert score_right > score_lazy
    # without grounding sources the score is the NLI sources' alone, as before
    assert loop.selection_score({"cad": nli}) == pytest.approx(0.75)


def test_grounding_comparison_pools_the_new_splits_and_reports_every_source():
    held_out = pytest.importorskip("training.grounding.held_out")
    pairs = [held_out.Pair("frank", "news", "d", "a", i % 2) for i in range(40)]
    pairs += [held_out.Pair("esnli", "nli", "d", "a", i % 2) for i in range(40)]
    labels = np.array([p.label for p in pairs], dtype=float)
    right = labels - 0.5  # passes exactly the supported rows
    wrong_on_frank = right.copy()
    wrong_on_frank[:20] = 0.5  # passes every one of frank's first 20 rows
    out = held_out.paired(pairs, right, wrong_on_frank, 0.0, resamples=200)
    assert out["rows"] == 40  # e-SNLI is an old split: not pooled
    assert out["difference"] == pytest.approx(0.25)  # frank: 10 of 20 unsupported rows pass
    assert 0 < out["low"] <= out["difference"] <= out["high"]
    assert out["sources"]["esnli"]["difference"] == 0.0
    assert out["sources"]["frank"]["difference"] == pytest.approx(0.25)
