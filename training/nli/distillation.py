"""Distillation: a teacher's soft labels for the training pairs (computed from a fine-tuned
checkpoint, or read back from the file a run saved) and the loss a student learns from them.
``train --teacher`` uses it; ``distill`` is the recipe that makes the teacher."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from training.nli import evaluate as ev
from training.nli.data import LABELS, Example
from training.nli.model import load_checkpoint, torch_predictor


def teacher_log_probs(
    folder: Path, examples: Sequence[Example], max_length: int, device: torch.device
) -> np.ndarray:
    """The teacher's log-probabilities (LABELS order) for every training pair, computed once.

    Log-probabilities serve as the teacher's logits: a softmax at any temperature gives the
    same distribution from either. The teacher brings its own tokenizer, so any encoder that
    an earlier run fine-tuned can teach.
    """
    from transformers import AutoTokenizer

    model = load_checkpoint(folder, device).eval()
    labels = {int(k): v.lower() for k, v in model.config.id2label.items()}
    if sorted(labels.values()) != sorted(LABELS):
        raise SystemExit(f"--teacher {folder}: labels {labels} are not {list(LABELS)}")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    predict = torch_predictor(model, tokenizer, max_length, device)
    pairs = [(e.premise, e.hypothesis) for e in examples]
    probs = ev.to_canonical(ev.predict_sorted(predict, pairs, 128), labels)
    del model
    return np.log(np.clip(probs, 1e-12, 1.0)).astype(np.float32)


def pairs_fingerprint(examples: Sequence[Example]) -> str:
    """SHA-256 of the training pairs in order: saved teacher labels fit only this list."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.premise}\x1f{e.hypothesis}\x1e".encode())
    return digest.hexdigest()


def teacher_labels(
    teacher: Path, examples: Sequence[Example], max_length: int, device: torch.device, work: Path
) -> np.ndarray:
    """The teacher's log-probabilities for every pair: computed from a checkpoint folder and
    saved to ``<work>/teacher_log_probs.npz``, or read from such a file.

    The file lets a machine without a GPU train students of a teacher that only a GPU can
    train: the student's own training is what runs on the CPU.
    """
    fingerprint = pairs_fingerprint(examples)
    if teacher.is_file():
        saved = np.load(teacher)
        if str(saved["fingerprint"]) != fingerprint:
            raise SystemExit(
                f"--teacher {teacher}: labels for other training pairs (same data, seed and"
                " data flags needed)"
            )
        return saved["log_probs"]
    log_probs = teacher_log_probs(teacher, examples, max_length, device)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / "teacher_log_probs.npz", log_probs=log_probs, fingerprint=fingerprint)
    return log_probs


def distilled_rows(log_probs: np.ndarray, examples: Sequence[Example], sources: str) -> np.ndarray:
    """The teacher's rows for the examples of ``sources`` (all when empty), NaN elsewhere.

    Why a choice of sources: a teacher is only as good as its own training. An all-mpnet
    teacher taught a student to call claims with one changed number "neutral" rather than
    "contradiction" (training/nli/README.md); the synthetic and edited claims can keep their
    gold labels while the teacher shapes the rest.
    """
    wanted = {s.strip() for s in sources.split(",") if s.strip()}
    unknown = wanted - {e.source for e in examples}
    if unknown:
        raise SystemExit(f"--distill-sources: no train pairs from {sorted(unknown)}")
    out = log_probs.astype(np.float32, copy=True)
    if wanted:
        out[[e.source not in wanted for e in examples]] = np.nan
    return out


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """alpha x cross-entropy on the gold labels + (1 - alpha) x T^2 x KL(teacher || student)
    at temperature T (Hinton et al. 2015), per pair, averaged over the batch: the teacher's soft
    labels say how wrong each wrong class is, which one gold label per pair cannot. Pairs whose
    teacher row is NaN (not distilled) count their cross-entropy alone."""
    hard = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    taught = ~torch.isnan(teacher[:, 0])
    target = torch.log_softmax(torch.nan_to_num(teacher) / temperature, dim=-1)
    soft = torch.nn.functional.kl_div(
        torch.log_softmax(logits / temperature, dim=-1), target, reduction="none", log_target=True
    ).sum(dim=-1)
    mixed = alpha * hard + (1.0 - alpha) * temperature**2 * soft
    return torch.where(taught, mixed, hard).mean()
