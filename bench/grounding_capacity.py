"""What a grounding model's capacity buys: held-out quality against candidates/s on this
machine's CPU cores, for each model (and settings) given, in a table and a plot.

    python bench/grounding_capacity.py \\
        --row "shipped, sentences=windows=sentences,claims_only=false,max_claims=8" \\
        --row "shipped, chunks=" --row "grounding 4L=model=/tmp/nli-grounding" \\
        [--per-source 1000] [--json bench/grounding_capacity.json] \\
        [--svg bench/grounding_capacity.svg]

Each ``--row`` is ``NAME=OPTIONS``, the options of ``grounding_nli`` as ``--set`` reads them
(``model=FOLDER`` for another model, ``metric=NAME`` to read another metric), and
``threshold=X`` for a model whose default threshold differs from the validator's (chosen on dev
splits, never here). For each row:

- **quality**, on every held-out test split, old and new (``training.grounding.held_out``'s rows
  and its score cache: a seeded sample of ``--per-source`` rows each): balanced accuracy at the
  row's threshold averaged over domains, the worst domain's, and the pooled AUROC. Nothing is
  chosen on it.
- **speed**, through ``validator.score`` in batches of 64 on the 256 candidates of
  ``bench/grounding_eval`` (answers of 1-3 sentences over press releases and articles) and on up to
  64 long documents (the longest documents of the grounding train and dev files, 600 words or
  more, one claim each).
- the model file's size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from validator_speed import grounding_eval_candidates  # noqa: E402

from training.grounding import held_out  # noqa: E402

LONG_WORDS = 600


def long_candidates(shared: Path, count: int) -> list[Any]:
    """The ``count`` longest documents of the train and dev files with one of their claims."""
    from groundset.core import Candidate, Document

    rows = []
    for path in sorted((shared / "grounding").glob("*_*.jsonl.gz")):
        if path.name.endswith("_test.jsonl.gz"):
            continue
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                if len(row["document"].split()) >= LONG_WORDS:
                    rows.append(row)
    seen: set[str] = set()
    rows.sort(key=lambda r: -len(r["document"]))
    picked = []
    for row in rows:
        if row["document"] not in seen:
            seen.add(row["document"])
            picked.append(row)
        if len(picked) == count:
            break
    return [
        Candidate(f"l{i}", "bench", f"w{i}", Document(text=r["document"]), {"answer": r["claim"]},
                  r["claim"])
        for i, r in enumerate(picked)
    ]  # fmt: skip


def speed(options: dict[str, Any], candidates: Sequence[Any], batch: int = 64) -> float:
    """Candidates/s through ``validator.score``, after a warm-up batch."""
    from groundset.validators.grounding_nli import GroundingNliValidator

    validator = GroundingNliValidator(GroundingNliValidator.Options(**options))
    validator.score(candidates[:8])
    started = time.perf_counter()
    for i in range(0, len(candidates), batch):
        validator.score(candidates[i : i + batch])
    return len(candidates) / (time.perf_counter() - started)


def quality(
    pairs: Sequence[Any], text: str, threshold: float, name: str, cap: int
) -> dict[str, Any]:
    import numpy as np

    values, _ = held_out.cached_score(pairs, text, name, held_out.CACHE, cap)
    result = held_out.table(pairs, values, threshold)
    labels = np.array([p.label for p in pairs])
    domains = result["domain"]
    return {
        "mean_domain_ba": round(float(np.mean([d["ba"] for d in domains.values()])), 3),
        "worst_domain_ba": min(d["ba"] for d in domains.values()),
        "auroc": held_out._r(held_out.auroc(values, labels)),
        "domains": {k: {"auroc": d["auroc"], "ba": d["ba"]} for k, d in domains.items()},
    }


def model_megabytes(options: dict[str, Any]) -> float:
    return round((held_out.model_folder(options) / "model.onnx").stat().st_size / 1e6, 1)


def redraw(json_path: Path, svg_path: Path) -> None:
    """The plot again from a saved ``--json`` (no measuring)."""
    svg_path.write_text(svg(json.loads(json_path.read_text())["rows"], "grounding_eval_cps"))


def svg(rows: list[dict[str, Any]], key: str) -> str:
    """Mean domain balanced accuracy against candidates/s (log scale), one point per row."""
    import math

    width, height, pad = 640, 400, 60
    xs = [math.log10(r[key]) for r in rows]
    ys = [r["quality"]["mean_domain_ba"] for r in rows]
    x0, x1 = min(xs) - 0.15, max(xs) + 0.15
    y0, y1 = min(ys) - 0.02, max(ys) + 0.02

    def px(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def py(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">candidates/s, '
             f'{key.replace("_cps", "").replace("_", " ")} (log scale, 2 CPU cores)</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" '
             'text-anchor="middle">held-out balanced accuracy at its threshold, mean over '
             'domains</text>']  # fmt: skip
    for value in (v * 10**e for e in range(-1, 4) for v in (1, 2, 3, 4, 5, 6, 8)):
        if x0 <= math.log10(value) <= x1:
            parts.append(f'<text x="{px(math.log10(value)):.0f}" y="{height - pad + 16}" '
                         f'text-anchor="middle">{value:g}</text>')  # fmt: skip
    for tick in range(math.ceil(y0 * 50), math.floor(y1 * 50) + 1):
        parts.append(f'<text x="{pad - 6}" y="{py(tick / 50) + 4:.0f}" '
                     f'text-anchor="end">{tick / 50:.2f}</text>')  # fmt: skip
    for row, x, y in zip(rows, xs, ys, strict=True):
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="#1f77b4"/>')
        right = px(x) > width / 2  # labels run towards the middle, inside the frame
        anchor = "end" if right else "start"
        parts.append(f'<text x="{px(x) + (-8 if right else 8):.1f}" y="{py(y) - 6:.1f}" '
                     f'text-anchor="{anchor}">{row["name"]}</text>')  # fmt: skip
    return "\n".join([*parts, "</svg>"]) + "\n"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model / settings | threshold | held-out BA at it, mean (worst) domain | AUROC | "
             "c/s, grounding_eval | c/s, long documents | MB |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        q = r["quality"]
        lines.append(f"| {r['name']} | {r['threshold']:+.2f} | "
                     f"{q['mean_domain_ba']:.3f} ({q['worst_domain_ba']:.3f}) | "
                     f"{q['auroc']:.3f} | {r['grounding_eval_cps']:.1f} | {r['long_cps']:.1f} | "
                     f"{r['megabytes']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", action="append", required=True, help="NAME=OPTIONS")
    parser.add_argument("--shared", type=Path, default=held_out.SHARED)
    parser.add_argument("--per-source", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--svg", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.shared / "grounding").is_dir():
        print(f"grounding capacity: no {args.shared / 'grounding'}", file=sys.stderr)
        return 1
    pairs = held_out.load_test(args.shared, args.per_source)
    short = grounding_eval_candidates(256)
    long = long_candidates(args.shared, 64)
    rows = []
    for spec in args.row:
        name, _, text = spec.partition("=")
        options = held_out.parse_settings(text)
        given = options.pop("threshold", None)
        threshold = held_out.default_threshold(options) if given is None else float(given)
        options.pop("metric", None)  # what quality reads; the speed is the same
        text = ",".join(part for part in text.split(",") if not part.startswith("threshold="))
        row = {"name": name, "options": text or "(defaults)", "threshold": threshold,
               "quality": quality(pairs, text, threshold, name, args.per_source),
               "grounding_eval_cps": round(speed(options, short), 1),
               "long_cps": round(speed(options, long), 2),
               "megabytes": model_megabytes(options)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(markdown(rows))
    meta = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "per_source": args.per_source,
        "test_rows": len(pairs),
        "long_documents": len(long),
        "long_words_median": sorted(len(c.document.text.split()) for c in long)[len(long) // 2],
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.svg:
        args.svg.write_text(svg(rows, "grounding_eval_cps"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
