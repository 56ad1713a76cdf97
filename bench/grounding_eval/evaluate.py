"""Measure how well groundset validators separate grounded answers from ungrounded ones.

Scores every item of the grounding evaluation set (``documents.jsonl`` and ``items.jsonl`` next to
this script) with the requested validators, then reports for every metric they declare:

- AUROC on the dev and the test split (rank-based, ties count half; oriented by the metric's
  ``higher_is_better``),
- the threshold that maximises balanced accuracy on dev (Youden's J) and the balanced accuracy that
  threshold gets on test, so no number on test was tuned on test,
- balanced accuracy on test at the metric's declared ``default_threshold``, when it has one,
- the share of each answer kind that passes the dev threshold on test (where a metric fails: a
  lexical metric passes most ``fact_changed`` answers),
- scoring speed per validator (candidates per second; model loading, with a first warm-up call
  on one candidate, is timed apart).

A metric a validator leaves out for a candidate counts as failing that candidate.

    python bench/grounding_eval/evaluate.py --validators overlap,format
    python bench/grounding_eval/evaluate.py --validators overlap,grounding_nli \\
        --set grounding_nli.batch_size=8 --out results.json --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# The steps are sibling modules, imported as a script imports them; this line also finds them
# under ``python -m bench.grounding_eval.evaluate``.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_report import report, results_json, set_counts
from eval_runs import ValidatorRun, add_settings_option, parse_settings, run_validator
from eval_set import HERE, build_candidates, load_set
from eval_stats import MetricResult, evaluate_run

from groundset.core import GroundsetError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Score the grounding evaluation set with validators and report how well "
        "each metric separates grounded from ungrounded answers."
    )
    parser.add_argument(
        "--validators", default="overlap,format", help="comma-separated validator ids"
    )
    add_settings_option(parser)
    parser.add_argument("--out", type=Path, help="write metrics and per-item scores as JSON")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--batch-size", type=int, default=32, help="candidates per score() call")
    parser.add_argument("--data", type=Path, default=HERE, help="folder with the set's files")
    parser.add_argument(
        "--entry-points", action="store_true", help="also load installed third-party plugins"
    )
    parser.add_argument("--progress", action="store_true", help="print a line per batch")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    validator_ids = [v.strip() for v in args.validators.split(",") if v.strip()]
    settings = parse_settings(args.settings, validator_ids)
    documents, items = load_set(args.data)
    candidates = build_candidates(items, documents)
    runs: dict[str, ValidatorRun] = {}
    results: list[MetricResult] = []
    failed = []
    for validator_id in validator_ids:
        print(f"scoring {len(candidates)} candidates with {validator_id} ...", file=sys.stderr)
        try:
            run = run_validator(
                validator_id,
                settings[validator_id],
                candidates,
                args.batch_size,
                args.entry_points,
                args.progress,
            )
        except GroundsetError as error:  # unknown validator, bad option, missing model
            print(f"error: {validator_id}: {error}", file=sys.stderr)
            failed.append(validator_id)
            continue
        runs[validator_id] = run
        results.extend(evaluate_run(validator_id, run, items))
    if not runs:
        return 2
    print(report(runs, results, args.markdown, set_counts(items)))
    if args.out:
        args.out.write_text(json.dumps(results_json(runs, results, items), indent=1) + "\n")
        print(f"\nwrote {args.out}", file=sys.stderr)
    if failed:
        print(f"error: not evaluated: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
