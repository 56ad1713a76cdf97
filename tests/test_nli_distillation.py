"""The training script's distillation: the loss a student learns from a teacher's soft labels,
and batches for encoders with and without segment ids (the MPNet teacher has none)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
distillation = pytest.importorskip("training.nli.distillation")
loop = pytest.importorskip("training.nli.loop")


def test_alpha_one_is_plain_cross_entropy():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    labels = torch.tensor([0, 2])
    teacher = torch.log_softmax(torch.tensor([[0.0, 4.0, 0.0], [4.0, 0.0, 0.0]]), dim=-1)
    loss = distillation.distillation_loss(logits, labels, teacher, alpha=1.0, temperature=2.0)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_soft_part_vanishes_when_the_student_matches_the_teacher_and_pulls_towards_it():
    teacher = torch.log_softmax(torch.tensor([[1.0, 3.0, -2.0]]), dim=-1)
    labels = torch.tensor([1])
    matched = distillation.distillation_loss(
        teacher.clone(), labels, teacher, alpha=0.0, temperature=2.0
    )
    assert matched.item() == pytest.approx(0.0, abs=1e-6)

    student = torch.zeros((1, 3), requires_grad=True)
    distillation.distillation_loss(student, labels, teacher, alpha=0.0, temperature=2.0).backward()
    # Gradient descent raises the logit the teacher favours and lowers the one it rejects.
    assert student.grad[0, 1] < 0 < student.grad[0, 2]


def test_pairs_without_a_teacher_row_learn_from_their_gold_label_alone():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    labels = torch.tensor([0, 2])
    teacher = torch.log_softmax(torch.tensor([[0.0, 4.0, 0.0], [4.0, 0.0, 0.0]]), dim=-1)
    teacher[1] = float("nan")
    loss = distillation.distillation_loss(logits, labels, teacher, alpha=0.0, temperature=2.0)
    hard = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    soft_first = distillation.distillation_loss(logits[:1], labels[:1], teacher[:1], 0.0, 2.0)
    assert loss.item() == pytest.approx((soft_first.item() + hard[1].item()) / 2)
    assert not torch.isnan(loss)


def test_batches_carry_segments_only_when_the_encoder_has_them():
    with_types = loop.Encoded([[1, 2, 3], [4, 5]], [[0, 0, 1], [0, 1]], [1, 0])
    batch = loop.collate(with_types, [0, 1], torch.device("cpu"))
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]

    soft = np.log(np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]], dtype=np.float32))
    without = loop.Encoded([[1, 2, 3], [4, 5]], None, [1, 0], soft)
    batch = loop.collate(without, [1, 0], torch.device("cpu"))
    assert "token_type_ids" not in batch
    assert batch["labels"].tolist() == [0, 1]
    assert torch.allclose(batch["teacher_log_probs"], torch.from_numpy(soft[[1, 0]]))


def test_only_the_chosen_sources_keep_their_teacher_rows():
    from training.nli.data import Example

    examples = [
        Example("p", "h", "entailment", source, "g") for source in ("esnli", "synthetic", "cad")
    ]
    labels = np.log(np.full((3, 3), 1 / 3, dtype=np.float32))
    rows = distillation.distilled_rows(labels, examples, "esnli, cad")
    assert np.isnan(rows[1]).all() and not np.isnan(rows[[0, 2]]).any()
    assert not np.isnan(distillation.distilled_rows(labels, examples, "")).any()
    with pytest.raises(SystemExit, match="wice"):
        distillation.distilled_rows(labels, examples, "esnli,wice")


def test_saved_teacher_labels_fit_only_the_same_pairs_in_the_same_order():
    from training.nli.data import Example

    a = Example("A dog runs.", "An animal moves.", "entailment", "esnli", "g")
    b = Example("A cat sleeps.", "A cat is awake.", "contradiction", "esnli", "g")
    assert distillation.pairs_fingerprint([a, b]) == distillation.pairs_fingerprint([a, b])
    assert distillation.pairs_fingerprint([a, b]) != distillation.pairs_fingerprint([b, a])
    assert distillation.pairs_fingerprint([a]) != distillation.pairs_fingerprint([a, b])
