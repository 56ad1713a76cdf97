"""The training loop: pairs tokenised once, length-bucketed batches, AdamW with linear warm-up
and decay to the step or time budget, dev evaluation every ``--eval-every`` steps, and the best
weights kept (and saved, so ``--from-checkpoint`` can finish an interrupted run)."""

from __future__ import annotations

import argparse
import copy
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from training.nli import evaluate as ev
from training.nli.data import Example
from training.nli.distillation import distillation_loss
from training.nli.model import ID2LABEL, pick_device, save_checkpoint, torch_predictor


@dataclass
class Encoded:
    """Token ids of the training pairs (unpadded) and their labels."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None  # None for encoders without segments (MPNet)
    labels: list[int]
    # (n, 3) in LABELS order, for distillation; NaN rows learn from their gold label alone
    teacher_log_probs: np.ndarray | None = None


@dataclass
class History:
    """What happened during training."""

    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    best_step: int = 0
    best_score: float = -1.0
    evals: list[dict[str, Any]] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def encode(tokenizer: Any, examples: Sequence[Example], max_length: int) -> Encoded:
    """Tokenise premise/hypothesis pairs, truncating the longer side first."""
    batch = tokenizer(
        [e.premise for e in examples],
        [e.hypothesis for e in examples],
        truncation="longest_first",
        max_length=max_length,
    )
    types = batch.get("token_type_ids")
    return Encoded(batch["input_ids"], types, [e.label_id for e in examples])


def length_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within pools of 50 batches, split,
    shuffle the batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(data: Encoded, idx: Sequence[int], device: torch.device) -> dict[str, torch.Tensor]:
    """Pad one batch to its longest pair."""
    width = max(len(data.input_ids[i]) for i in idx)
    ids = torch.zeros((len(idx), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, i in enumerate(idx):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        if data.token_type_ids is not None:
            types[row, :n] = torch.tensor(data.token_type_ids[i])
        mask[row, :n] = 1
    labels = torch.tensor([data.labels[i] for i in idx])
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if data.token_type_ids is not None:
        batch["token_type_ids"] = types
    if data.teacher_log_probs is not None:
        batch["teacher_log_probs"] = torch.from_numpy(data.teacher_log_probs[list(idx)])
    return {k: v.to(device) for k, v in batch.items()}


def lr_factor(step: int, total_steps: int, elapsed: float, budget: float, warmup: int) -> float:
    """Linear warm-up, then linear decay to zero at whichever budget (steps, time) ends first."""
    if step < warmup:
        return (step + 1) / warmup
    progress = step / max(total_steps, 1)
    if budget > 0:
        progress = max(progress, elapsed / budget)
    return max(0.0, 1.0 - progress)


def selection_score(metrics: dict[str, dict[str, Any]]) -> float:
    """Mean over dev sources of (3-way accuracy + 2-way accuracy) / 2. With document-level
    grounding sources (``--grounding``), half the score is theirs: the mean over them of
    (balanced 2-way accuracy + AUROC of P(entailment)) / 2, which a model that calls everything
    "neutral" cannot win on sets that are mostly unsupported, and which does not let their
    number (nine) outvote the three NLI sources."""
    nli = [
        m for name, m in metrics.items() if name != "macro" and not name.startswith("grounding_")
    ]
    score = float(np.mean([(m["acc_3way"] + m["acc_2way"]) / 2 for m in nli]))
    grounding = [
        ((m["ba_2way"] or 0.5) + (m["auroc_entail"] or 0.5)) / 2
        for name, m in metrics.items()
        if name.startswith("grounding_")
    ]
    return (score + float(np.mean(grounding))) / 2 if grounding else score


def dev_eval(model: Any, tokenizer: Any, dev: list[Example], args: argparse.Namespace) -> dict:
    model.eval()
    predict = torch_predictor(model, tokenizer, args.max_length, pick_device(args.device))
    metrics = ev.evaluate(predict, ID2LABEL, dev, batch_size=64)
    model.train()
    return metrics


def _summary(metrics: dict[str, dict[str, Any]]) -> str:
    parts = [
        f"{name} {m['acc_3way']:.3f}/{m['acc_2way']:.3f}"
        for name, m in metrics.items()
        if name != "macro"
    ]
    return " | ".join(parts) + " (3-way/2-way)"


def train_loop(
    model: Any, tokenizer: Any, data: Encoded, dev: list[Example], args: argparse.Namespace
) -> tuple[dict[str, torch.Tensor], History]:
    """Train until the epoch, step or time budget ends; returns the best state on dev."""
    device = pick_device(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    lengths = [len(x) for x in data.input_ids]
    steps_per_epoch = -(-len(lengths) // args.batch_size)
    total_steps = int(steps_per_epoch * args.epochs)
    budget = args.minutes * 60.0
    history = History()
    best_state = copy.deepcopy(model.state_dict())
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    start = time.perf_counter()
    if getattr(args, "init_from", None):  # a second stage keeps its start unless it improves
        best_state = _maybe_keep(model, tokenizer, dev, args, history, best_state, start)
    model.train()
    epoch = 0
    while history.steps < total_steps:
        for idx in length_batches(lengths, args.batch_size, args.seed + epoch):
            elapsed = time.perf_counter() - start
            if history.steps >= total_steps or (budget > 0 and elapsed >= budget):
                total_steps = history.steps  # ends the outer loop too
                break
            factor = lr_factor(history.steps, total_steps, elapsed, budget, args.warmup_steps)
            batch = collate(data, idx, device)
            loss = _step(model, optimizer, batch, args.lr * factor, use_bf16, args)
            history.steps += 1
            history.examples += len(idx)
            if history.steps % 25 == 0:
                rate = history.examples / (time.perf_counter() - start)
                log(
                    f"step {history.steps} epoch {epoch} loss {loss:.4f} "
                    f"lr {args.lr * factor:.2e} {rate:.1f} ex/s"
                )
            if history.steps % args.eval_every == 0:
                best_state = _maybe_keep(model, tokenizer, dev, args, history, best_state, start)
        epoch += 1
    history.seconds = time.perf_counter() - start
    best_state = _maybe_keep(model, tokenizer, dev, args, history, best_state, start)
    return best_state, history


def _step(
    model: Any,
    optimizer: Any,
    batch: dict[str, torch.Tensor],
    lr: float,
    use_bf16: bool,
    args: argparse.Namespace,
) -> float:
    """One optimisation step at learning rate ``lr``; returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    device_type = batch["input_ids"].device.type
    teacher = batch.pop("teacher_log_probs", None)
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_bf16):
        if teacher is None:
            loss = model(**batch).loss
        else:
            labels = batch.pop("labels")
            # The model's columns are LABELS order: load_base builds id2label from LABELS.
            logits = model(**batch).logits.float()
            loss = distillation_loss(
                logits, labels, teacher, args.distill_alpha, args.distill_temperature
            )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _maybe_keep(
    model: Any,
    tokenizer: Any,
    dev: list[Example],
    args: argparse.Namespace,
    history: History,
    best_state: dict[str, torch.Tensor],
    start: float,
) -> dict[str, torch.Tensor]:
    """Evaluate on dev; return a copy of the weights when they beat the best so far."""
    if history.evals and history.evals[-1]["step"] == history.steps:
        return best_state
    metrics = dev_eval(model, tokenizer, dev, args)
    score = selection_score(metrics)
    elapsed = round(time.perf_counter() - start, 1)
    history.evals.append(
        {"step": history.steps, "seconds": elapsed, "score": round(score, 4), "dev": metrics}
    )
    log(f"dev @ step {history.steps}: score {score:.4f} :: {_summary(metrics)}")
    if score > history.best_score:
        history.best_score, history.best_step = score, history.steps
        # On disk too: a run stopped later can still be exported with --from-checkpoint.
        history.seconds = time.perf_counter() - start
        save_checkpoint(model, tokenizer, args, training_summary(history, 0.0) | {"partial": True})
        return {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    return best_state


def training_summary(history: History, prep_seconds: float) -> dict[str, Any]:
    """What ``metrics.json`` records about the training loop."""
    return {
        "seconds": round(history.seconds, 1),
        "steps": history.steps,
        "examples_seen": history.examples,
        "examples_per_s": round(history.examples / max(history.seconds, 1e-9), 1),
        "best_step": history.best_step,
        "best_dev_score": round(history.best_score, 4),
        "dev_history": history.evals,
        "data_prep_seconds": round(prep_seconds, 1),
    }
