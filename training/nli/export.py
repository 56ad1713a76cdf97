"""Export a fine-tuned sequence classifier to ONNX and quantise it to int8.

- ``export_onnx``: TorchScript-based ``torch.onnx.export`` (opset 17), inputs ``input_ids``,
  ``attention_mask``, ``token_type_ids`` (int64) with dynamic batch and sequence axes, one
  output ``logits`` (batch, 3). Eager attention is used for the trace.
- ``quantize_int8``: onnxruntime dynamic quantisation (int8 weights, activations quantised at
  run time) of MatMul and Gather (the embeddings), per channel. Per-tensor weights cost 7
  points of 2-way accuracy on the WiCE dev split (0.63 vs 0.70 fp32) at the same size and
  speed; per channel matched fp32 on every dev source.
- ``write_model_folder``: the deliverable folder (``model.onnx``, ``config.json``, tokenizer
  files).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
OPSET = 17


class _LogitsOnly(torch.nn.Module):
    """Wraps a Hugging Face classifier so the traced graph returns the logits tensor only."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.logits


def export_onnx(checkpoint: Path, path: Path) -> Path:
    """Trace the saved checkpoint (a ``save_pretrained`` folder) into an fp32 ONNX file."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, attn_implementation="eager"
    ).eval()
    sample = torch.tensor([[101, 2023, 2003, 102, 2009, 2003, 102]], dtype=torch.long)
    args = (sample, torch.ones_like(sample), torch.tensor([[0, 0, 0, 0, 1, 1, 1]]))
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["logits"] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            _LogitsOnly(model),
            args,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of MatMul and Gather weights (per channel) with onnxruntime."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gather"],
        per_channel=True,
    )
    return target


def _tokenizer_json(source: Path, target: Path, max_length: int) -> None:
    """Copy tokenizer.json with pair truncation at ``max_length`` and no fixed padding."""
    data = json.loads(source.read_text(encoding="utf-8"))
    data["truncation"] = {
        "direction": "Right",
        "max_length": max_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    data["padding"] = None
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def copy_tokenizer(checkpoint: Path, base_model: Path, folder: Path, max_length: int) -> None:
    """Tokenizer files from the checkpoint, falling back to the base model folder."""
    for name in TOKENIZER_FILES:
        source = checkpoint / name if (checkpoint / name).exists() else base_model / name
        if name == "tokenizer.json":
            _tokenizer_json(source, folder / name, max_length)
        elif name == "tokenizer_config.json":
            config = json.loads(source.read_text(encoding="utf-8"))
            config["model_max_length"] = max_length
            config["max_length"] = max_length
            config["truncation_strategy"] = "longest_first"
            (folder / name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(source, folder / name)


def write_config(checkpoint: Path, folder: Path, max_length: int, extra: dict[str, Any]) -> None:
    """The Hugging Face config of the checkpoint plus ``max_length`` and export details."""
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    config["max_length"] = max_length
    config.update(extra)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def write_model_folder(
    checkpoint: Path, base_model: Path, work: Path, folder: Path, max_length: int
) -> Path:
    """Export, quantise and lay out the deliverable folder; returns the int8 model path."""
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(checkpoint, work / "model-fp32.onnx")
    int8 = quantize_int8(fp32, folder / "model.onnx")
    copy_tokenizer(checkpoint, base_model, folder, max_length)
    extra = {
        "onnx": {
            "opset": OPSET,
            "inputs": list(INPUT_NAMES),
            "output": "logits",
            "quantization": "onnxruntime dynamic int8 (QInt8 per-channel weights; MatMul, Gather)",
        }
    }
    write_config(checkpoint, folder, max_length, extra)
    return int8
