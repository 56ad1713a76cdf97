"""Framework overhead: how fast groundset itself is when the models cost nothing, and what share
of a real run's time is groundset's own when they do.

    python bench/overhead.py [--candidates 20000] [--batch-size 64] [--profile FILE]
                             [--local-prompts 8] [--skip-local] [--json FILE]

``instant``: the mock backend (canned outputs, no wait) registered in process, the
``grounded_qa`` strategy on the packaged seed documents, the ``format`` and ``overlap``
validators, a fresh DuckDB file: plan, generate, parse, score and commit through the real
engine and store. Target: at least 2,000 candidates/s. ``--profile FILE`` writes a cProfile of
this run (``python -m pstats FILE``).

``local``: the default configuration (the packaged SmolLM2 model through the ``huggingface``
backend, the default validators). Time inside ``Backend.generate`` and inside the model-based
validators' ``score`` is model time; everything else (planning, prompts, parsing, the lexical
validators, the store) is framework time. Target: framework under 5 % of wall time.

Prints one summary line per part, and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from results import save

from groundset.core.runner import prepare_run, start_run
from groundset.core.settings import settings_from_config
from groundset.core.store import Store
from groundset.core.testing import MockBackendPlugin, registered_plugin

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "examples" / "seed-documents.jsonl"
INSTANT_TARGET = 2000.0  # candidates/s
FRAMEWORK_TARGET = 0.05  # share of wall time
MODEL_VALIDATORS = ("relevance", "grounding_embedding", "grounding_nli")
OUTPUTS = (
    "[question]: How much did IBM pay for Red Hat?\n[answer]: IBM paid $190.00 per share in cash.",
    "[question]: What does Watson NLP offer?\n[answer]: Watson NLP runs in containers.",
    "Sorry, I cannot help with that.",
    "[question]: When did the deal close?\n[answer]: The acquisition closed in July 2019.",
)


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def instant_settings(db: Path, candidates: int, batch_size: int) -> Any:
    per_document = -(-candidates // _count_lines(DOCUMENTS))
    config = {
        "run": {
            "name": "overhead",
            "backend": "mock",
            "validators": ["format", "overlap"],
            "batch_size": batch_size,
            "samples_per_document": per_document,
        },
        "documents": {"path": str(DOCUMENTS)},
        "store": {"db": str(db)},
        "backends": {"mock": {"outputs": list(OUTPUTS), "history": False}},
    }
    return settings_from_config(config, "<overhead bench>")


def run_instant(candidates: int, batch_size: int, profile: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, registered_plugin(MockBackendPlugin(), "bench"):
        db = Path(tmp) / "overhead.duckdb"
        settings = instant_settings(db, candidates, batch_size)
        started = time.perf_counter()
        prepared = prepare_run(settings)
        planned = time.perf_counter()
        profiler = cProfile.Profile() if profile else None
        with Store(db) as store:
            if profiler:
                profiler.enable()
            summary = start_run(prepared, store)
            if profiler:
                profiler.disable()
        wall = time.perf_counter() - started
        if profiler and profile:
            profiler.dump_stats(str(profile))
        with Store(db, read_only=True) as store:
            recorded = store.query("SELECT count(*) FROM candidates").rows[0][0]
            scores = store.query("SELECT count(*) FROM scores").rows[0][0]
        size = db.stat().st_size
    rate = recorded / wall
    return {
        "part": "instant",
        "candidates": recorded,
        "scores": scores,
        "batch_size": batch_size,
        "plan_s": round(planned - started, 3),
        "wall_s": round(wall, 3),
        "candidates_per_s": round(rate, 1),
        "target": INSTANT_TARGET,
        "ratio": round(rate / INSTANT_TARGET, 3),
        "bytes_per_candidate": round(size / recorded, 1),
        "profiled": profile is not None,
        "ok": rate >= INSTANT_TARGET and summary.candidates == recorded,
    }


class _Timed:
    """Wraps a bound method and adds its wall time to a shared total."""

    def __init__(self, method: Any, totals: dict[str, float], key: str) -> None:
        self.method, self.totals, self.key = method, totals, key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.method(*args, **kwargs)
        finally:
            self.totals[self.key] = self.totals.get(self.key, 0.0) + time.perf_counter() - started


def run_local(prompts: int, batch_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "local.duckdb"
        config = {
            "run": {"name": "overhead-local", "batch_size": batch_size},
            "documents": {"path": str(DOCUMENTS)},
            "store": {"db": str(db)},
        }
        config["run"]["samples_per_document"] = -(-prompts // _count_lines(DOCUMENTS))
        settings = settings_from_config(config, "<overhead bench>")
        totals: dict[str, float] = {}
        started = time.perf_counter()
        prepared = prepare_run(settings)
        prepared.items[:] = prepared.items[:prompts]
        plugins = prepared.plugins
        # loading a model is a model cost too, paid once a run
        plugins.backend.load = _Timed(plugins.backend.load, totals, "backend")  # type: ignore[method-assign]
        plugins.backend.generate = _Timed(plugins.backend.generate, totals, "backend")  # type: ignore[method-assign]
        for validator in plugins.validators:
            if validator.validator_id in MODEL_VALIDATORS:
                key = f"validator:{validator.validator_id}"
                validator.score = _Timed(validator.score, totals, key)  # type: ignore[method-assign]
        with Store(db) as store:
            plugins.backend.load()
            summary = start_run(prepared, store)
        wall = time.perf_counter() - started
    model = sum(totals.values())
    framework = (wall - model) / wall
    return {
        "part": "local",
        "model_id": plugins.backend.model_id,
        "prompts": summary.generated,
        "candidates": summary.candidates,
        "batch_size": batch_size,
        "wall_s": round(wall, 2),
        "model_s": {k: round(v, 2) for k, v in sorted(totals.items())},
        "framework_s": round(wall - model, 3),
        "framework_share": round(framework, 4),
        "target": FRAMEWORK_TARGET,
        "ok": framework < FRAMEWORK_TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile of the instant run")
    parser.add_argument("--local-prompts", type=int, default=8)
    parser.add_argument("--local-batch-size", type=int, default=4)
    parser.add_argument("--skip-local", action="store_true", help="only the instant part")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = [run_instant(args.candidates, args.batch_size, args.profile)]
    r = results[0]
    print(
        f"instant: {r['candidates']} candidates in {r['wall_s']} s ="
        f" {r['candidates_per_s']} candidates/s (target {INSTANT_TARGET:.0f}, ratio"
        f" {r['ratio']}), batch {r['batch_size']}, {r['bytes_per_candidate']} bytes/candidate"
        f" {'OK' if r['ok'] else 'MISSED'}"
    )
    if not args.skip_local:
        r = run_local(args.local_prompts, args.local_batch_size)
        results.append(r)
        print(
            f"local: {r['prompts']} prompts with {r['model_id']} in {r['wall_s']} s, model"
            f" {r['model_s']}, framework {r['framework_s']} s = {100 * r['framework_share']:.2f}%"
            f" of wall time (target < {100 * FRAMEWORK_TARGET:.0f}%)"
            f" {'OK' if r['ok'] else 'MISSED'}"
        )
    if args.json:
        save(args.json, {"results": results})
    ok = all(r["ok"] for r in results)
    share = "" if args.skip_local else f", framework {100 * results[-1]['framework_share']:.2f}%"
    print(
        f"overhead: {results[0]['candidates_per_s']} candidates/s (ratio {results[0]['ratio']}"
        f" to {INSTANT_TARGET:.0f}){share} {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
