"""Evaluate an NLI model folder (``model.onnx`` + ``config.json`` + ``tokenizer.json``) on the
held-out test files: 3-way accuracy, 2-way accuracy (entailment vs not entailment) and the
AUROC of P(entailment) for that 2-way task, per source; plus throughput. With ``--against``,
the same pairs go through a second model and the two are compared pair by pair (McNemar test
and a bootstrap interval of the difference): the evidence for replacing the shipped model.

Usage::

    python -m training.nli.evaluate /tmp/nli-model [--threads 2] [--json metrics.json]
    python -m training.nli.evaluate /tmp/nli-model --against validators/data/nli

With ``--against``, both models also go through ``grounding_nli`` on the document-level test
splits of ``../shared/data/grounding`` (and the sentence-level ones as grounding pairs), each
with its own gate: this model with the validator's defaults (``--grounding``,
``--grounding-threshold``), the other with the gate groundset shipped with its previous model
(``--against-grounding``, ``--against-grounding-threshold``). The paired difference in
balanced accuracy at those thresholds, pooled over the new splits and per source, is the
evidence a replacement must hold (``training.grounding.held_out``).

Needs onnxruntime, tokenizers and numpy only for the pairs (no torch); the grounding
comparison runs groundset's validator. The WiCE premises are built exactly as
in training (``data.select_evidence`` with the model's own tokenizer and ``max_length``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.nli.data import LABEL2ID, Example, load_held_out

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Maps a list of (premise, hypothesis) pairs to an (n, 3) array of probabilities in the model's
#: own label order.
#: How groundset gated its previous model (sha256 3a2e0748...): P(e) - P(c) of the least
#: supported claim, at 0.
PREVIOUS_GROUNDING = "aggregate=min,metric=score"
Predictor = Callable[[list[tuple[str, str]]], np.ndarray]


@dataclass
class OnnxNli:
    """An onnxruntime session with its tokenizer and label order."""

    session: Any
    tokenizer: Any
    id2label: dict[int, str]
    max_length: int
    input_names: frozenset[str]

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Probabilities for one batch (padded to its longest pair)."""
        encoded = self.tokenizer.encode_batch(pairs)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        logits = self.session.run(None, feed)[0]
        return softmax(logits)

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens of a text without special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def load_onnx(folder: Path, threads: int = 2, file_name: str = "model.onnx") -> OnnxNli:
    """Open a model folder with onnxruntime on CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    max_length = int(config["max_length"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(folder / file_name), options, providers=["CPUExecutionProvider"]
    )
    id2label = {int(k): str(v) for k, v in config["id2label"].items()}
    names = frozenset(i.name for i in session.get_inputs())
    return OnnxNli(session, tokenizer, id2label, max_length, names)


def predict_sorted(
    predict: Predictor, pairs: Sequence[tuple[str, str]], batch_size: int
) -> np.ndarray:
    """Probabilities for all pairs, batched by length (less padding), in the input order."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = np.zeros((len(pairs), 3), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = predict([pairs[i] for i in idx])
    return out


def to_canonical(probs: np.ndarray, id2label: dict[int, str]) -> np.ndarray:
    """Reorder columns from the model's label order to ``data.LABELS`` order."""
    columns = [0] * len(LABEL2ID)
    for index, name in id2label.items():
        columns[LABEL2ID[name.lower()]] = index
    return probs[:, columns]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (rank formulation, ties averaged); None with one class only."""
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def source_metrics(probs: np.ndarray, examples: Sequence[Example]) -> dict[str, Any]:
    """Accuracies and AUROC for one source; ``probs`` in ``data.LABELS`` order."""
    gold = np.array([e.label_id for e in examples])
    pred = probs.argmax(axis=1)
    entail = LABEL2ID["entailment"]
    is_entail = gold == entail
    return {
        "n": len(examples),
        "acc_3way": round(float((pred == gold).mean()), 4),
        "acc_2way": round(float(((pred == entail) == is_entail).mean()), 4),
        "ba_2way": _round(balanced_2way(pred == entail, is_entail)),
        "auroc_entail": _round(auroc(probs[:, entail], is_entail)),
        "predicted": {name: int((pred == i).sum()) for name, i in LABEL2ID.items()},
    }


def balanced_2way(passed: np.ndarray, positive: np.ndarray) -> float | None:
    """Entailment against the rest, by the mean of the two classes' recalls: on a set that is
    mostly "not entailed", a model that never says entailment scores 0.5, not the set's skew."""
    if positive.all() or not positive.any():
        return None
    return float((passed[positive].mean() + (~passed[~positive]).mean()) / 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def predict_examples(
    predict: Predictor,
    id2label: dict[int, str],
    examples: Sequence[Example],
    batch_size: int = 64,
) -> np.ndarray:
    """Probabilities in ``data.LABELS`` order, one row per example."""
    pairs = [(e.premise, e.hypothesis) for e in examples]
    return to_canonical(predict_sorted(predict, pairs, batch_size), id2label)


def evaluate(
    predict: Predictor,
    id2label: dict[int, str],
    examples: Sequence[Example],
    batch_size: int = 64,
) -> dict[str, dict[str, Any]]:
    """Per-source metrics plus their unweighted mean ("macro")."""
    return metrics_by_source(predict_examples(predict, id2label, examples, batch_size), examples)


def metrics_by_source(probs: np.ndarray, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
    """``source_metrics`` for every source, plus their unweighted mean ("macro")."""
    out: dict[str, dict[str, Any]] = {}
    for source in sorted({e.source for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.source == source]
        out[source] = source_metrics(probs[idx], [examples[i] for i in idx])
    out["macro"] = {
        key: round(float(np.mean([m[key] for m in out.values()])), 4)
        for key in ("acc_3way", "acc_2way")
    }
    return out


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar test on the pairs that one model gets right and the other wrong:
    how likely a split at least this uneven is if each of them were equally likely to be the
    one that is right. Pairs both get right or both get wrong say nothing about which is
    better, which is why a paired test needs far fewer pairs than comparing two accuracies."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_comparison(
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    examples: Sequence[Example],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Model A against model B on the same examples, per source and over all of them: both
    accuracies (3-way and 2-way), how many pairs only one of them gets right, the McNemar p
    and a bootstrap 95% interval of A's accuracy minus B's (resampling pairs)."""
    gold = np.array([e.label_id for e in examples])
    entail = LABEL2ID["entailment"]
    pred_a, pred_b = probs_a.argmax(axis=1), probs_b.argmax(axis=1)
    right = {
        "3way": (pred_a == gold, pred_b == gold),
        "2way": ((pred_a == entail) == (gold == entail), (pred_b == entail) == (gold == entail)),
    }
    sources = np.array([e.source for e in examples])
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Any]] = {}
    for source in [*sorted(set(sources.tolist())), "all"]:
        idx = np.arange(len(examples)) if source == "all" else np.flatnonzero(sources == source)
        draws = rng.integers(0, len(idx), size=(resamples, len(idx)), dtype=np.int32)
        for task, (a_all, b_all) in right.items():
            a, b = a_all[idx], b_all[idx]
            gain = a.astype(np.int8) - b.astype(np.int8)
            boot = gain[draws].mean(axis=1)
            only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
            out[f"{source} {task}"] = {
                "n": len(idx),
                "a": round(float(a.mean()), 4),
                "b": round(float(b.mean()), 4),
                "only_a": only_a,
                "only_b": only_b,
                "mcnemar_p": float(f"{mcnemar_p(only_a, only_b):.2g}"),
                "diff_ci95": [round(float(np.percentile(boot, q)), 4) for q in (2.5, 97.5)],
            }
    return out


def throughput(predict: Predictor, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> float:
    """Pairs per second over batches in the given order (one warm-up batch not counted)."""
    batches = [list(pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]
    predict(batches[0])
    start = time.perf_counter()
    for batch in batches:
        predict(batch)
    return round(len(pairs) / (time.perf_counter() - start), 1)


def speed_report(predict: Predictor, examples: Sequence[Example], batch_size: int = 32) -> dict:
    """Throughput on the first 1024 e-SNLI test pairs and the first 256 WiCE test pairs."""
    out = {}
    for source, limit in (("esnli_test", 1024), ("wice_claim_test", 256)):
        pairs = [(e.premise, e.hypothesis) for e in examples if e.source == source][:limit]
        if pairs:
            out[f"{source}_pairs_per_s"] = throughput(predict, pairs, batch_size)
    out["batch_size"] = batch_size
    return out


SANITY_PREMISE = (
    "IBM acquired Red Hat for $190.00 per share in cash, a total equity value of about $34 billion."
)
SANITY_HYPOTHESES = (
    ("IBM paid $190.00 per share for Red Hat.", "entailment"),
    ("IBM paid $250.00 per share for Red Hat.", "contradiction"),
    ("Red Hat was founded in 1993.", "neutral"),
)


def sanity_check(predict: Predictor, id2label: dict[int, str]) -> list[dict[str, Any]]:
    """Probabilities on three hand-made pairs (expected: entailment, contradiction, neutral)."""
    pairs = [(SANITY_PREMISE, h) for h, _ in SANITY_HYPOTHESES]
    probs = predict(pairs)
    return [
        {
            "hypothesis": hypothesis,
            "expected": expected,
            "predicted": id2label[int(row.argmax())],
            "probs": {id2label[i]: round(float(p), 4) for i, p in enumerate(row)},
        }
        for (hypothesis, expected), row in zip(SANITY_HYPOTHESES, probs, strict=True)
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", type=Path, default=None, help="shared/data/nli folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--file", default="model.onnx", help="ONNX file inside the folder")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="another model folder (the shipped one, say): compare the two pair by pair",
    )
    parser.add_argument(
        "--grounding",
        default="",
        help="with --against: grounding_nli settings this model is judged with on the "
        "document-level test splits (default: the validator's defaults)",
    )
    parser.add_argument("--grounding-threshold", type=float, default=None)
    parser.add_argument(
        "--against-grounding",
        default=PREVIOUS_GROUNDING,
        help="the settings the --against model is judged with (default: the gate groundset "
        f"shipped with its previous model, {PREVIOUS_GROUNDING!r})",
    )
    parser.add_argument("--against-grounding-threshold", type=float, default=0.0)
    parser.add_argument(
        "--grounding-per-source", type=int, default=1000, help="0: skip the grounding splits"
    )
    args = parser.parse_args(argv)
    if args.against:  # before the first model's minutes of work
        needed = ("model.onnx", "config.json", "tokenizer.json")
        missing = [f for f in needed if not (args.against / f).exists()]
        if missing:
            raise SystemExit(
                f"--against {args.against}: not a model folder (no {', '.join(missing)})"
            )
    model = load_onnx(args.model_dir, args.threads, args.file)
    examples = load_held_out(args.data, model.max_length, model.count_tokens)
    probs = predict_examples(model.predict, model.id2label, examples)
    result: dict[str, Any] = {"held_out": metrics_by_source(probs, examples)}
    if args.against:
        result["against"] = compare_with(args.against, probs, examples, args)
        result["grounding"] = compare_grounding(args)
    result["sanity"] = sanity_check(model.predict, model.id2label)
    if not args.no_speed:
        result["speed"] = speed_report(model.predict, examples, args.batch_size)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


def compare_with(
    folder: Path, probs: np.ndarray, examples: list[Example], args: argparse.Namespace
) -> dict[str, Any]:
    """The paired comparison of the evaluated model (A) with the model in ``folder`` (B)."""
    missing = [
        f for f in ("model.onnx", "config.json", "tokenizer.json") if not (folder / f).exists()
    ]
    if missing:
        raise SystemExit(f"--against {folder}: not a model folder (no {', '.join(missing)})")
    other = load_onnx(folder, args.threads)
    other_examples = load_held_out(args.data, other.max_length, other.count_tokens)
    if [(e.hypothesis, e.label_id) for e in other_examples] != [
        (e.hypothesis, e.label_id) for e in examples
    ]:
        raise SystemExit(f"--against {folder}: its held-out claims differ from this model's")
    other_probs = predict_examples(other.predict, other.id2label, other_examples)
    return {
        "a": str(args.model_dir),
        "b": str(folder),
        "paired": paired_comparison(probs, other_probs, examples),
    }


def compare_grounding(args: argparse.Namespace) -> dict[str, Any] | str:
    """The two models through ``grounding_nli`` on the document-level test splits, each with
    its own settings and threshold: the paired difference in balanced accuracy, pooled over
    the new splits and per source (``training.grounding.held_out``)."""
    from training.grounding import held_out

    shared = args.data.parent if args.data else held_out.SHARED
    if not args.grounding_per_source:
        return "skipped (--grounding-per-source 0)"
    if not (shared / "grounding").is_dir():
        return f"skipped (no {shared / 'grounding'})"
    pairs = held_out.load_test(shared, args.grounding_per_source)
    settings = {
        "new": (_with_model(args.model_dir, args.grounding), args.grounding_threshold),
        "against": (_with_model(args.against, args.against_grounding),
                    args.against_grounding_threshold),
    }  # fmt: skip
    found = held_out.compare(pairs, settings, held_out.CACHE, args.grounding_per_source)
    print(held_out.markdown(found), file=sys.stderr)
    print(held_out.paired_markdown(found["paired_new_minus_against"]), file=sys.stderr)
    return found


def _with_model(folder: Path, settings: str) -> str:
    return ",".join(filter(None, [f"model={folder.resolve()}", settings]))


if __name__ == "__main__":
    main()
