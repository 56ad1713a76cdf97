"""NLI cross-encoders for the grounding validator: an int8 ONNX model folder run by onnxruntime
(the packaged default), or any sentence-transformers ``CrossEncoder`` (a local folder or a hub
id). Each model loads once per process; every call is batched.

Both kinds return, per (premise, hypothesis) pair, the probabilities of entailment and
contradiction, found through the model's own ``id2label`` so any label order works.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from groundset.core import ConfigError, DaemonThreadPool
from groundset.core.quiet_loading import quiet_loading

__all__ = ["DEFAULT_NLI_MODEL", "NliModel", "default_nli_path", "model_folder", "nli_model"]

#: The ``model`` value meaning groundset's own NLI model, shipped inside the package.
DEFAULT_NLI_MODEL = "groundset-nli"
_LOCK = threading.Lock()


def default_nli_path() -> Path:
    """The packaged model folder (``model.onnx``, ``config.json``, ``tokenizer.json``)."""
    return Path(str(resources.files("groundset.validators") / "data" / "nli"))


def model_folder(model: str = DEFAULT_NLI_MODEL) -> Path:
    """The folder a ``model`` value names, without loading it: the packaged one for
    ``groundset-nli``, else the path given (which for a hub id does not exist)."""
    return default_nli_path() if model == DEFAULT_NLI_MODEL else Path(model).expanduser()


def _labels(config: dict[str, Any], where: str) -> tuple[int, int]:
    """Indices of the entailment and contradiction classes in the model's output."""
    names = {int(k): str(v).lower() for k, v in config.get("id2label", {}).items()}
    found = {}
    for index, name in names.items():
        for label in ("entail", "contradict"):
            if name.startswith(label):
                found[label] = index
    if len(found) != 2:
        raise ConfigError(
            f"NLI model {where}: id2label {names} must name entailment and contradiction classes"
        )
    return found["entail"], found["contradict"]


class NliModel:
    """Entailment and contradiction probabilities for premise/hypothesis pairs."""

    def __init__(
        self,
        predict: Any,
        labels: tuple[int, int],
        max_length: int,
        name: str,
        per_pair: bool = False,
    ) -> None:
        self._predict = predict
        self.entail_index, self.contradict_index = labels
        self.max_length = max_length
        self.name = name
        #: score every pair on its own: a dynamically quantised model quantises activations
        #: per batch tensor, so in a batch a pair's scores would depend on its neighbours (by
        #: up to 0.29 in P(e) - P(c) with the packaged model); alone they are the same in every
        #: run, at about the same speed for sentence-sized pairs
        self.per_pair = per_pair

    def probabilities(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> Any:
        """An (n, 2) array: P(entailment), P(contradiction) per pair. Pairs are batched by
        length, so a batch pads to a similar length instead of to its longest outlier; a
        ``per_pair`` model scores each pair alone."""
        import numpy as np

        if not pairs:
            return np.zeros((0, 2), dtype=np.float32)
        if self.per_pair:  # one call: the model scores each pair alone, in parallel
            return self._predict(list(pairs))[:, [self.entail_index, self.contradict_index]]
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        probs = np.empty((len(pairs), 2), dtype=np.float32)
        columns = [self.entail_index, self.contradict_index]
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            probs[chosen] = self._predict([pairs[i] for i in chosen])[:, columns]
        return probs


def _softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _onnx(folder: Path, device: str) -> NliModel:
    """onnxruntime session + fast tokenizer; threads follow the CPU count unless limited by
    ``GROUNDSET_THREADS``.

    A dynamically quantised model on the CPU scores each pair alone (see ``NliModel.per_pair``),
    on as many single-threaded inference streams as there are threads: for sentence-sized
    pairs that is faster than one batched stream using every thread (208 vs 192 pairs/s on 2
    cores), since a single pair's matrices are too small to split well between threads.
    """
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    max_length = int(config.get("max_length", 256))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    tokenizer.enable_padding()
    quantization = str(config.get("onnx", {}).get("quantization", "")).lower()
    per_pair = "dynamic" in quantization and not device.startswith("cuda")
    threads = int(os.environ.get("GROUNDSET_THREADS") or 0) or os.cpu_count() or 1
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1 if per_pair else threads
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device.startswith("cuda")
        else ["CPUExecutionProvider"]
    )
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=providers)
    inputs = {i.name for i in session.get_inputs()}

    def feed(encoded: Sequence[Any]) -> dict[str, Any]:
        arrays = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        return {k: v for k, v in arrays.items() if k in inputs}

    def predict(pairs: list[tuple[str, str]]) -> Any:
        (logits,) = session.run(None, feed(tokenizer.encode_batch(pairs)))[:1]
        return _softmax(logits)

    if not per_pair:
        return NliModel(predict, _labels(config, str(folder)), max_length, str(folder))
    streams = DaemonThreadPool(threads, "groundset-nli")
    tokenizer.no_padding()  # a pair alone is never padded

    def predict_each(pairs: list[tuple[str, str]]) -> Any:
        encoded = tokenizer.encode_batch(pairs)  # one call: tokenizers parallelises it
        runs = [streams.submit(session.run, None, feed([e])) for e in encoded]
        return _softmax(np.concatenate([run.result()[0] for run in runs]))

    labels = _labels(config, str(folder))
    return NliModel(predict_each, labels, max_length, str(folder), per_pair=True)


def _cross_encoder(source: str, device: str) -> NliModel:
    from sentence_transformers import CrossEncoder

    with quiet_loading():
        model = CrossEncoder(source, device=None if device == "auto" else device)
    config = model.model.config.to_dict()
    max_length = int(model.max_length or 512)

    def predict(pairs: list[tuple[str, str]]) -> Any:
        import numpy as np

        logits = model.predict(pairs, convert_to_numpy=True, show_progress_bar=False)
        return _softmax(np.asarray(logits, dtype=np.float32))

    return NliModel(predict, _labels(config, source), max_length, source)


@functools.cache
def _load(source: str, device: str) -> NliModel:
    folder = Path(source)
    if (folder / "model.onnx").exists():
        return _onnx(folder, device)
    return _cross_encoder(source, device)


def nli_model(model: str = DEFAULT_NLI_MODEL, device: str = "auto") -> NliModel:
    """The shared NLI model: ``groundset-nli`` (packaged), a folder, or a hub id."""
    path = model_folder(model)
    if model == DEFAULT_NLI_MODEL:
        if not (path / "model.onnx").exists():
            raise ConfigError(f"the packaged NLI model is missing from {path}: reinstall groundset")
        source = str(path)
    else:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        if not path.exists() and (offline or "/" not in model):
            raise ConfigError(
                f"NLI model {model!r} not found: give a model folder, a hub id where a hub is"
                f" reachable, or {DEFAULT_NLI_MODEL!r} (packaged)"
            )
        source = str(path) if path.exists() else model
    with _LOCK:
        return _load(source, device)
