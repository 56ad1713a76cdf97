"""How close each model-based validator gets to the raw speed of its model on the same inputs.

For every validator, the same candidates are scored twice: through ``validator.score`` (the real
path: sentence splitting, caching, batching, aggregation) and as the bare model calls that path
needs (the texts or pairs, encoded in the same batches). The ratio is validator candidates/s over
raw candidates/s; the target is >= 0.9.

    python bench/validator_speed.py [--candidates 256] [--batch 64] [--validators a,b]
        [--items seed|grounding_eval] [--nli "windows=sentences,aggregate=min,..."]

Candidates are built from the seed documents with answers taken from their sentences, so the
inputs are realistic in length; with ``--items grounding_eval``, they are the question/answer
items of ``bench/grounding_eval`` with their documents. ``--nli`` sets ``grounding_nli``'s
options (to time earlier settings against the defaults). Results print as a table; ``--json
FILE`` saves them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from groundset.core import Candidate, Document
from groundset.validators.grounding_embedding import GroundingEmbeddingValidator
from groundset.validators.grounding_nli import GroundingNliOptions, GroundingNliValidator
from groundset.validators.models import embedder
from groundset.validators.nli import nli_model
from groundset.validators.relevance import RelevanceValidator
from groundset.validators.sentences import split_sentences

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.grounding.held_out import parse_settings  # noqa: E402


def make_candidates(count: int) -> list[Candidate]:
    """Answers of one or two document sentences; documents repeat as in a real run."""
    lines = (ROOT / "examples" / "seed-documents.jsonl").read_text().splitlines()
    documents = [Document(**json.loads(line)) for line in lines]
    out = []
    for i in range(count):
        doc = documents[i % len(documents)]
        sentences = split_sentences(doc.text)
        answer = " ".join(sentences[i % len(sentences) : i % len(sentences) + 1 + i % 2])
        fields = {"question": f"What does the document say about {doc.title or 'it'}?",
                  "answer": answer}  # fmt: skip
        out.append(Candidate(f"c{i}", "bench", f"w{i}", doc, fields, answer))
    return out


def grounding_eval_candidates(count: int) -> list[Candidate]:
    """The items of ``bench/grounding_eval`` (answers of one to three sentences to questions on
    press releases and articles), repeated up to ``count``."""
    folder = ROOT / "bench" / "grounding_eval"
    documents = {}
    for line in (folder / "documents.jsonl").read_text().splitlines():
        row = json.loads(line)
        documents[row["id"]] = Document(text=row["text"], title=row.get("title"))
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    out = []
    for i in range(count):
        item = items[i % len(items)]
        fields = {"question": item["question"], "answer": item["answer"]}
        out.append(Candidate(f"c{i}", "bench", f"w{i}", documents[item["document_id"]], fields,
                             item["answer"]))  # fmt: skip
    return out


NLI_SETTINGS: dict[str, object] = {}


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best of ``repeat`` wall times (the first call also warms caches and threads)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def batches(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def relevance(cands: list[Candidate], batch: int) -> tuple[float, float]:
    validator, model = RelevanceValidator(), embedder()

    def raw() -> None:
        for part in batches(cands, batch):
            model.encode([c.fields["question"] for c in part] + [c.fields["answer"] for c in part])

    return timed(lambda: [validator.score(p) for p in batches(cands, batch)]), timed(raw)


def grounding_embedding(cands: list[Candidate], batch: int) -> tuple[float, float]:
    validator, model = GroundingEmbeddingValidator(), embedder()
    model.document_sentences([c.document for c in cands], split_sentences)  # cached in both

    def raw() -> None:
        for part in batches(cands, batch):
            model.encode([s for c in part for s in split_sentences(c.fields["answer"])])

    return timed(lambda: [validator.score(p) for p in batches(cands, batch)]), timed(raw)


PAIRS: dict[str, int] = {}


def grounding_nli(cands: list[Candidate], batch: int) -> tuple[float, float]:
    """The validator against bare onnxruntime on the same claim-window pairs: tokenised up
    front (not timed), sorted by length, in batches of 32, the fastest way to run the model."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    validator = GroundingNliValidator(GroundingNliOptions(**NLI_SETTINGS))  # type: ignore[arg-type]
    pairs = [(w, c) for cand in cands for c in validator._claims(cand)[0]
             for w in validator._windows(cand.document)]  # fmt: skip
    PAIRS["grounding_nli"] = len(pairs)
    windows = validator.options.windows
    print(f"grounding_nli: {len(pairs)} claim-window pairs ({len(pairs) / len(cands):.1f} per"
          f" candidate, {windows})")  # fmt: skip
    folder = Path(nli_model().name)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_padding()
    session_options = ort.SessionOptions()
    if os.environ.get("GROUNDSET_THREADS"):
        session_options.intra_op_num_threads = int(os.environ["GROUNDSET_THREADS"])
    session = ort.InferenceSession(str(folder / "model.onnx"), session_options)
    ordered = sorted(pairs, key=lambda p: len(p[0]) + len(p[1]))
    feeds = []
    for part in batches(ordered, 32):
        encoded = tokenizer.encode_batch(list(part))
        feeds.append({name: np.array([getattr(e, attr) for e in encoded], dtype=np.int64)
                      for name, attr in (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                                         ("token_type_ids", "type_ids"))})  # fmt: skip

    def raw() -> None:
        for feed in feeds:
            session.run(None, feed)

    return timed(lambda: [validator.score(p) for p in batches(cands, batch)], 1), timed(raw, 1)


RATIO_TARGET = 0.9

BENCHES = {"relevance": relevance, "grounding_embedding": grounding_embedding,
           "grounding_nli": grounding_nli}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--validators", default=",".join(BENCHES))
    parser.add_argument("--items", choices=("seed", "grounding_eval"), default="seed")
    parser.add_argument("--nli", default="", help="grounding_nli options: key=value,...")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    NLI_SETTINGS.update(parse_settings(args.nli))
    make = grounding_eval_candidates if args.items == "grounding_eval" else make_candidates
    cands = make(args.candidates)
    results = []
    print(f"{'validator':<22}{'validator c/s':>14}{'raw c/s':>10}{'ratio':>8}")
    for name in args.validators.split(","):
        try:
            validator_s, raw_s = BENCHES[name](cands, args.batch)
        except Exception as error:  # a missing optional model: report it, bench the rest
            print(f"{name:<22} skipped: {error}")
            continue
        row = {"validator": name, "validator_cps": len(cands) / validator_s,
               "raw_cps": len(cands) / raw_s, "ratio": raw_s / validator_s}  # fmt: skip
        results.append(row)
        print(f"{name:<22}{row['validator_cps']:>14.1f}{row['raw_cps']:>10.1f}{row['ratio']:>8.2f}")
        if name in PAIRS:
            row["pairs_per_s"] = PAIRS[name] / validator_s
            row["raw_pairs_per_s"] = PAIRS[name] / raw_s
            print(f"{'':<22}{row['pairs_per_s']:>14.1f}{row['raw_pairs_per_s']:>10.1f}"
                  " claim-window pairs/s")  # fmt: skip
    if args.json:
        meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "candidates": args.candidates, "batch": args.batch, "items": args.items,
                "nli": args.nli or "(defaults)"}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if not results:
        print("validator speed: nothing measured MISSED")
        return 1
    worst = min(results, key=lambda r: r["ratio"])
    pairs = [r["pairs_per_s"] for r in results if "pairs_per_s" in r]
    ok = worst["ratio"] >= RATIO_TARGET
    nli = f", grounding_nli {pairs[0]:.0f} pairs/s" if pairs else ""
    print(
        f"validator speed: lowest ratio {worst['ratio']:.2f} ({worst['validator']}, target >="
        f" {RATIO_TARGET}){nli} {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
