"""LLM grounding judges on any real endpoint, against the labelled document-level sets: balanced
accuracy at each method's default threshold, per source and averaged over domains, with the
calls each method made.

    python bench/judge_eval.py --backend watsonx \\
        --backend-option model_id=ibm/granite-3-3-8b-instruct \\
        --backend-option 'api_key="$env:WATSONX_APIKEY"' --backend-option project_id=... \\
        [--methods claims,minicheck,judge] [--split dev] [--per-source 40] [--json out.json]
    python bench/judge_eval.py --backend openai \\
        --backend-option base_url=http://localhost:8000/v1 \\
        --backend-option model=bespoke-minicheck --methods minicheck

Rows: every ``*_{split}`` file of ``../shared/data/grounding`` (a document and a claim, summary
or response, labelled supported or not), a seeded label-stratified sample of ``--per-source``
each; the claim is the answer. Methods: ``grounding_judge``'s ``claims`` and ``minicheck``, and
``judge`` (its groundedness rating). Each validator runs with its own defaults and the response
cache, so a second run of the same command makes no call. Choose thresholds on ``dev``; report
``test`` once, at the thresholds chosen.

Offline, ``--backend huggingface`` runs the mechanics with the small local model; its verdicts
are near chance and say nothing about a capable judge.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent / "grounding_eval"))

from eval_runs import parse_value
from eval_stats import auroc, balanced_accuracy

from groundset.core import Candidate, Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "grounding"
SEED = 13
#: method -> (validator, extra options, metric)
METHODS = {
    "claims": ("grounding_judge", {"method": "claims"}, "supported"),
    "minicheck": ("grounding_judge", {"method": "minicheck"}, "supported"),
    "judge": ("judge", {}, "groundedness"),
}


def load_rows(folder: Path, split: str, per_source: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    files = sorted(folder.glob(f"*_{split}.jsonl.gz"))
    if not files:
        raise SystemExit(f"judge_eval: no *_{split}.jsonl.gz in {folder}")
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            found = [json.loads(line) for line in lines]
        rng = random.Random(f"{SEED}:{path.name}")
        by_label = {label: [r for r in found if r["label"] == label] for label in (0, 1)}
        for label, group in by_label.items():
            rows += rng.sample(group, min(len(group), (per_source + 1 - label) // 2))
    return rows


def build(method: str, backend: str, options: dict[str, Any]) -> tuple[Any, str]:
    from groundset.core.factory import create_plugin

    validator_id, extra, metric = METHODS[method]
    table = {"backend": backend, "backend_options": options, **extra}
    return create_plugin("validator", validator_id, table), metric


def evaluate(
    method: str, rows: Sequence[dict[str, Any]], backend: str, options: dict[str, Any]
) -> dict[str, Any]:
    validator, metric = build(method, backend, options)
    declared = next(m for m in validator.metrics if m.name == metric)
    candidates = [
        Candidate(str(i), "judge-eval", str(i), Document(text=r["document"]),
                  {"question": "", "answer": r["claim"]}, r["claim"])
        for i, r in enumerate(rows)
    ]  # fmt: skip
    started = time.perf_counter()
    values: list[float | None] = []
    step = 8
    for i in range(0, len(candidates), step):
        results = validator.score(candidates[i : i + step])
        values += [r.get(metric) for r in results]
        print(f"  {method}: {len(values)}/{len(candidates)}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    backend_used = validator._backend
    out: dict[str, Any] = {
        "metric": f"{validator.validator_id}.{metric}",
        "threshold": declared.default_threshold,
        "seconds": round(seconds, 1),
        "calls": getattr(backend_used, "calls", None),
        "cache_hits": getattr(backend_used, "hits", None),
        "unread": sum(v is None for v in values) / len(values),
        "sources": {},
    }
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row["source"], []).append(i)
        groups.setdefault(f"domain:{row['domain']}", []).append(i)
    for name, idx in sorted(groups.items()):
        out["sources"][name] = _quality(
            [values[i] for i in idx], [rows[i]["label"] for i in idx], declared.default_threshold
        )
    domains = [v["ba"] for k, v in out["sources"].items() if k.startswith("domain:")]
    out["mean_domain_ba"] = round(sum(domains) / len(domains), 3) if domains else None
    return out


def _quality(values: list[float | None], labels: list[int], threshold: float | None) -> dict:
    """An unread reply is a rejection at the threshold (what a policy does with a missing
    score) and is left out of the AUROC."""
    scored = [(v, y) for v, y in zip(values, labels, strict=True) if v is not None]
    ranked = auroc([v for v, _ in scored], [y for _, y in scored]) if scored else None
    passed = [v is not None and threshold is not None and v >= threshold for v in values]
    ba = balanced_accuracy(passed, labels) if threshold is not None else None
    return {"rows": len(values), "auroc": _r(ranked), "ba": _r(ba),
            "pass_rate": _r(sum(passed) / len(passed))}  # fmt: skip


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True)
    parser.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the backend (TOML value; repeatable)")  # fmt: skip
    parser.add_argument("--methods", default="claims,minicheck,judge")
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--per-source", type=int, default=40)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    for pair in args.backend_option:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--backend-option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(value.strip())
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")
    rows = load_rows(args.data, args.split, args.per_source)
    print(f"{len(rows)} {args.split} rows", file=sys.stderr)
    found = {m: evaluate(m, rows, args.backend, options) for m in methods}
    result = {"backend": args.backend, "split": args.split, "per_source": args.per_source,
              "methods": found}  # fmt: skip
    for method, found in result["methods"].items():
        print(f"{method} ({found['metric']} at {found['threshold']}): mean domain BA"
              f" {found['mean_domain_ba']}, {found['calls']} calls, {found['cache_hits']} from"
              f" the cache, {found['unread']:.0%} unread, {found['seconds']} s")  # fmt: skip
        for name, q in found["sources"].items():
            print(f"  {name:<24} rows {q['rows']:>4}  AUROC {q['auroc']}  BA {q['ba']}"
                  f"  pass {q['pass_rate']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
