"""Generation cost per document of a Llama-3.1-8B-architecture model (random bf16 weights) with
the real grounded_qa prompts, through groundset's huggingface backend code, in one run.

    python bench/gen_8b.py --tokenizer .gpu/models/smollm2-135m --json out.json   # on a GPU
    python bench/gen_8b.py --tokenizer .gpu/models/smollm2-135m --tiny --device cpu \\
        --batches 2 --new-tokens 8                                                 # a quick check

No 8B weights exist offline, and throughput depends on the architecture, not on the weights: the
model is ``LlamaForCausalLM`` built from Llama-3.1-8B's configuration (written below), its
random weights created directly on the device in bf16 (no fp32 CPU copy, nothing written to
disk). The prompts are grounded_qa's (default options: chat format, the seed's examples) for
``examples/seed-documents.jsonl``, cycled to the batch size, and tokenised by the backend's own
``_encode`` with the SmolLM2 tokenizer (``bench/gpu.py --prepare``), the only fast tokenizer
available offline: Llama 3's 128k-token vocabulary would give somewhat fewer prompt tokens for
the same text. Token ids the tokenizer lacks (49152 and up) are suppressed in generation so the
stop strings and decoding work; the model still computes all 128256 logits.

Every batch runs the settings the backend passes to ``model.generate`` (``_generate_kwargs``:
sampling at the default temperature 0.7, the strategy's stop strings, left padding, the default
cache), forced to ``--new-tokens`` new tokens for every row (``min_new_tokens``). ``raw`` times
``model.generate`` on the backend's padded batch; ``backend`` times ``HuggingFaceBackend.generate``
on the same prompts (encode, pad, generate, decode) with the same in-memory model handed to it,
so no 16 GB checkpoint is written and read back. One warm-up, then one timed call per row
(``--repeat``); ``--budget-s`` skips rows that would not finish in time. The JSON file is
rewritten after every row, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
STARTED = time.perf_counter()

#: meta-llama/Llama-3.1-8B's config.json (rope_scaling included), without its token ids
LLAMA_31_8B: dict[str, Any] = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}  # fmt: skip
#: --tiny: the same shape of model, small enough for a CPU check of the script
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}  # fmt: skip


def elapsed() -> float:
    return time.perf_counter() - STARTED


def load_documents(path: Path) -> list[Any]:
    from groundset.core import Document

    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [Document(text=row["text"], title=row.get("title")) for row in rows]


def render_prompts(path: Path) -> list[Any]:
    """One grounded_qa prompt per document, with the strategy's default options."""
    from groundset.plugins.grounded_qa import GroundedQA

    strategy = GroundedQA()
    planned = strategy.plan(load_documents(path), 1, random.Random(0))
    return [p.prompt for p in planned]


def build_model(torch: Any, transformers: Any, tiny: bool, device: Any) -> Any:
    """LlamaForCausalLM with random bf16 weights made on ``device`` (no fp32 CPU copy)."""
    values = copy.deepcopy(dict(LLAMA_31_8B, **(TINY if tiny else {})))  # the config edits dicts
    values.pop("torch_dtype")
    config = transformers.LlamaConfig(**values)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = transformers.LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    return model


def sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(torch: Any, device: Any, fn: Any, repeat: int) -> tuple[float, Any, float | None]:
    """(best seconds, last result, peak GiB allocated) of ``repeat`` calls of ``fn``."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    best, result = float("inf"), None
    for _ in range(repeat):
        sync(torch, device)
        started = time.perf_counter()
        result = fn()
        sync(torch, device)
        best = min(best, time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return best, result, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=ROOT / ".gpu/models/smollm2-135m",
                        help="a folder with a fast tokenizer (bench/gpu.py --prepare)")  # fmt: skip
    parser.add_argument("--documents", type=Path, default=ROOT / "examples/seed-documents.jsonl")
    parser.add_argument("--batches", default="16,32,64", help="batch sizes for raw generate")
    parser.add_argument("--backend-batch", type=int, default=32,
                        help="batch of the backend-vs-raw comparison (0: skip it)")  # fmt: skip
    parser.add_argument("--new-tokens", type=int, default=256, help="max = min new tokens")
    parser.add_argument("--repeat", type=int, default=1, help="timed calls per row (best)")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="skip rows that would end later than this from the start")  # fmt: skip
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny model: check the script")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch
    import transformers

    from groundset.backends.huggingface import (
        HuggingFaceBackend,
        HuggingFaceOptions,
        _describe,
        _generate_kwargs,
        _left_pad,
    )
    from groundset.core import GenerationParams
    from groundset.plugins.grounded_qa import GroundedQA

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gen_8b: no CUDA device")
        return 1
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"[{elapsed():.0f}s] {card}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}", flush=True)  # fmt: skip

    tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer)
    started = time.perf_counter()
    model = build_model(torch, transformers, args.tiny, device)
    build_s = time.perf_counter() - started
    sync(torch, device)
    parameters = sum(p.numel() for p in model.parameters())
    # ids the tokenizer cannot decode (nor the stop-string check look up) are never sampled
    vocab = model.config.vocab_size
    if len(tokenizer) < vocab:
        model.generation_config.suppress_tokens = list(range(len(tokenizer), vocab))
    loaded = _describe(model, tokenizer, device)
    backend = HuggingFaceBackend(HuggingFaceOptions(model=str(args.tokenizer), device=str(device)))
    backend._loaded = loaded  # the model made above, instead of loading one from a folder
    print(f"[{elapsed():.0f}s] model: {parameters / 1e9:.2f}B parameters, "
          f"{next(model.parameters()).dtype}, built in {build_s:.1f}s", flush=True)  # fmt: skip

    prompts = render_prompts(args.documents)
    rows = [backend._encode(p) for p in prompts]
    lengths = [len(r) for r in rows]
    stop = GroundedQA().stop_sequences()
    new = args.new_tokens
    params = GenerationParams(max_new_tokens=new, min_new_tokens=new, stop=stop, seed=0)
    kwargs = _generate_kwargs(params, loaded)

    # random weights in bf16 could overflow; sampling from non-finite logits would fail on CUDA
    with torch.inference_mode():
        probe = torch.tensor([rows[0]], device=device)
        finite = bool(torch.isfinite(model(probe, logits_to_keep=1).logits).all())
    if not finite:
        kwargs["do_sample"] = False
        for key in ("temperature", "top_p", "top_k"):
            kwargs.pop(key, None)
    shown = {k: v for k, v in kwargs.items() if k != "tokenizer"}
    print(f"[{elapsed():.0f}s] prompt tokens per document {lengths} (mean "
          f"{sum(lengths) / len(lengths):.0f}); generate {shown}", flush=True)  # fmt: skip

    results: dict[str, Any] = {
        "device": card,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": "LlamaForCausalLM, Llama-3.1-8B config" + (" (--tiny)" if args.tiny else ""),
        "config": copy.deepcopy(dict(LLAMA_31_8B, **(TINY if args.tiny else {}))),
        "parameters": parameters,
        "weights": "random (torch init), bf16, made on the device",
        "build_s": round(build_s, 2),
        "tokenizer": f"{args.tokenizer.name} (SmolLM2, {len(tokenizer)} tokens); Llama 3's "
        "would count somewhat fewer prompt tokens",
        "prompts": "grounded_qa default options (chat, seed examples) for "
        f"{args.documents.name}, cycled to the batch",
        "prompt_tokens_per_document": lengths,
        "logits_finite": finite,
        "generate_kwargs": {
            k: list(v) if isinstance(v, (list, tuple)) else v for k, v in shown.items()
        },
        "rows": [],
        "skipped": [],
    }

    def write() -> None:
        if args.json:
            results["date"] = time.strftime("%Y-%m-%d")
            args.json.write_text(json.dumps(results, indent=2) + "\n")

    def batch_of(size: int) -> tuple[list[Any], list[list[int]]]:
        picked = [i % len(prompts) for i in range(size)]
        return [prompts[i] for i in picked], [rows[i] for i in picked]

    def raw(size: int) -> Any:
        _, ids = batch_of(size)
        input_ids, attention_mask = _left_pad(torch, ids, loaded.pad_id, device)
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        width = input_ids.shape[1]
        return width, output.shape[1] - width

    def through_backend(size: int) -> Any:
        batch, ids = batch_of(size)
        generations = backend.generate(batch, params)
        errors = [g.error for g in generations if g.error]
        if errors:
            raise RuntimeError(f"backend errors: {errors[:2]}")
        return max(len(r) for r in ids), sum(g.output_tokens or 0 for g in generations)

    # warm-up: kernels, allocator, the stop-string tables
    warm_kwargs = dict(kwargs, max_new_tokens=4, min_new_tokens=4)
    input_ids, attention_mask = _left_pad(torch, rows, loaded.pad_id, device)
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=input_ids, attention_mask=attention_mask, **warm_kwargs)
    sync(torch, device)
    print(f"[{elapsed():.0f}s] warm-up {time.perf_counter() - started:.1f}s", flush=True)

    plan = [("raw", int(b)) for b in args.batches.split(",") if b.strip()]
    if args.backend_batch:
        plan.append(("backend", args.backend_batch))
    last: tuple[int, float] | None = None
    for path, size in plan:
        if last is not None:  # time grows at most linearly with the batch
            predicted = last[1] * max(1.0, size / last[0]) * args.repeat
            if elapsed() + predicted > args.budget_s:
                results["skipped"].append({"path": path, "batch": size, "predicted_s": predicted})
                print(f"[{elapsed():.0f}s] skip {path} batch {size}: needs ~{predicted:.0f}s, "
                      f"past the {args.budget_s:.0f}s budget", flush=True)  # fmt: skip
                write()
                continue
        call = functools.partial(raw if path == "raw" else through_backend, size)
        seconds, (width, produced), peak = timed(torch, device, call, args.repeat)
        last = (size, seconds / args.repeat if args.repeat > 1 else seconds)
        steps = produced if path == "raw" else new
        row = {
            "path": path,
            "batch": size,
            "prompt_tokens_mean": round(sum(len(r) for r in batch_of(size)[1]) / size, 1),
            "padded_width": width,
            "new_tokens": steps,
            "seconds": round(seconds, 3),
            "prompts_per_s": round(size / seconds, 3),
            "output_tokens_per_s": round(size * new / seconds, 1),
            "ms_per_step": round(1000 * seconds / steps, 2),
            "peak_gib": round(peak, 2) if peak is not None else None,
            "s_per_document": round(seconds / size, 4),
            "device_hours_per_million_documents": round(seconds / size * 1e6 / 3600, 1),
        }
        if path == "backend":
            row["output_tokens_counted"] = produced  # cut at stop strings, as recorded
        results["rows"].append(row)
        print(f"[{elapsed():.0f}s] {path} batch {size}: {row['seconds']}s, "
              f"{row['prompts_per_s']} prompts/s, {row['output_tokens_per_s']} output tok/s, "
              f"peak {row['peak_gib']} GiB, {row['s_per_document']} s/document",
              flush=True)  # fmt: skip
        write()

    by = {(r["path"], r["batch"]): r for r in results["rows"]}
    pair = by.get(("raw", args.backend_batch)), by.get(("backend", args.backend_batch))
    if pair[0] and pair[1]:
        results["backend_vs_raw"] = round(pair[0]["seconds"] / pair[1]["seconds"], 3)
    write()
    raws = [r for r in results["rows"] if r["path"] == "raw"]
    best = min(raws, key=lambda r: r["s_per_document"]) if raws else None
    mean = sum(lengths) // len(lengths)
    summary = f"gen_8b: {card}, {parameters / 1e9:.2f}B, prompts ~{mean} tok, {new} new tok"
    if best:
        hours = best["device_hours_per_million_documents"]
        summary += (f": best batch {best['batch']} {best['prompts_per_s']} prompts/s,"
                    f" {best['output_tokens_per_s']} tok/s, {best['s_per_document']} s/document,"
                    f" {hours} device-h per 1M documents")  # fmt: skip
    if "backend_vs_raw" in results:
        summary += f"; backend/raw {results['backend_vs_raw']} at batch {args.backend_batch}"
    print(summary, flush=True)
    return 0 if raws else 1


if __name__ == "__main__":
    sys.exit(main())
