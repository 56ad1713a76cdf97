"""Choose how ``grounding_nli`` checks a document, on dev splits only: the windows (single
sentences, or chunks of up to N estimated tokens), whether non-claim sentences are set aside,
how claim scores combine (min or mean), and the default threshold, the one that maximises
balanced accuracy averaged over dev domains rather than over pooled rows, so the largest source
does not decide for the others. Steadiness first: a combination is chosen only if no dev source
loses more than ``--max-loss`` (0.01) balanced accuracy against the shipped settings, half
the 2 points a source may lose on test, since dev figures move on unseen data.

    python -m training.grounding.select [--per-source 1200] [--model groundset-nli]
        [--schemes sentences,chunks48,chunks64] [--filters 0,1] [--aggregations min,mean]
        [--max-loss 0.01] [--json bench/grounding_select.json] [--cache DIR]

Rows come from every ``*_dev`` file of ``../shared/data/grounding`` (at most ``--per-source``
of each, label-stratified, seeded); ``*_test`` files are never read. Every (window, claim)
pair is scored once by the NLI model and cached, so trying more combinations is free.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from training.nli.consistency import balanced_accuracy
from training.nli.evaluate import auroc as ev_auroc

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "grounding"
CACHE = REPO / "bench" / ".cache" / "grounding_select"
SEED = 13


@dataclass
class Row:
    source: str
    domain: str
    document: str
    claim: str
    label: int
    #: per window scheme and claim variant: per checked claim, (P(e) - P(c), P(e)) at its best
    #: window
    scores: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: per claim variant (``raw``: every sentence; ``cut``: claims only), per claim: states a
    #: number or month the document does not
    invented: dict[str, list[bool]] = field(default_factory=dict)


def load_dev(data: Path, per_source: int, seed: int = SEED) -> list[Row]:
    """At most ``per_source`` rows of each dev file, half of them supported where possible."""
    rows: list[Row] = []
    for path in sorted(data.glob("*_dev.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            found = [json.loads(line) for line in lines]
        rng = random.Random(f"{seed}:{path.name}")
        by_label = {v: [r for r in found if r["label"] == v] for v in (0, 1)}
        for group in by_label.values():
            rng.shuffle(group)
        take = min(len(by_label[1]), per_source // 2)
        take0 = min(len(by_label[0]), per_source - take)
        take = min(len(by_label[1]), per_source - take0)
        for r in by_label[1][:take] + by_label[0][:take0]:
            rows.append(Row(r["source"], r["domain"], r["document"], r["claim"], int(r["label"])))
    return rows


def claim_plan(row: Row) -> tuple[list[str], list[str]]:
    """The answer's sentences as claims (every one), and its claims as the validator's claim
    filter finds them (non-claims set aside, lead-ins cut off)."""
    from groundset.validators.claims import answer_claims
    from groundset.validators.numbers import check_numbers
    from groundset.validators.sentences import split_claims

    sentences, (claims, _) = split_claims(row.claim), answer_claims(row.claim)
    for variant, texts in (("raw", sentences), ("cut", claims)):
        row.invented[variant] = [bool(check_numbers(t, row.document)[1]) for t in texts]
    return sentences, claims


def windows(document: str, scheme: str) -> tuple[str, ...]:
    """``sentences``, ``chunks64`` (chunks of up to 64 estimated tokens), or several joined by
    ``+`` (a claim's best window among all of them)."""
    from groundset.validators.chunks import document_chunks
    from groundset.validators.sentences import split_sentences

    if "+" in scheme:
        return tuple(
            dict.fromkeys(w for part in scheme.split("+") for w in windows(document, part))
        )
    if scheme == "sentences":
        return tuple(dict.fromkeys(split_sentences(document)))
    return document_chunks(document, int(scheme.removeprefix("chunks")), 1)


def cache_name(model: str) -> str:
    """The packaged model by name; a model folder by its file's digest, so two folders with the
    same name (``/tmp/a/model``, ``/tmp/b/model``) never share scores."""
    onnx = Path(model) / "model.onnx"
    if not onnx.exists():
        return Path(model).name
    from groundset.core.records import file_sha256

    return f"{Path(model).name}-{file_sha256(onnx)[:16]}"


class PairCache:
    """(premise, hypothesis) -> (P(e), P(c)), scored once by the model and kept on disk."""

    def __init__(self, folder: Path, model: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{cache_name(model)}.pkl"
        self.model_name = model
        self.known: dict[tuple[str, str], tuple[float, float]] = {}
        if self.path.exists():
            self.known = pickle.loads(self.path.read_bytes())

    def score(self, pairs: Sequence[tuple[str, str]]) -> None:
        from groundset.validators.nli import nli_model

        todo = list(dict.fromkeys(p for p in pairs if p not in self.known))
        if not todo:
            return
        model = nli_model(self.model_name, "cpu")
        started, step = time.perf_counter(), 2000
        for i in range(0, len(todo), step):
            part = todo[i : i + step]
            probs = model.probabilities(part, 32)
            found = zip(part, probs, strict=True)
            self.known.update((p, (float(a), float(b))) for p, (a, b) in found)
            done = i + len(part)
            rate = done / (time.perf_counter() - started)
            print(f"  {done}/{len(todo)} pairs, {rate:.0f}/s", file=sys.stderr, flush=True)
            self.path.write_bytes(pickle.dumps(self.known))

    def __getitem__(self, pair: tuple[str, str]) -> tuple[float, float]:
        return self.known[pair]


def score_rows(rows: list[Row], schemes: Sequence[str], cache: PairCache) -> None:
    """Every claim sentence (as written and with its lead-in cut) against every window."""
    plans = [claim_plan(row) for row in rows]
    for scheme in schemes:
        pairs = []
        for row, (sentences, stripped) in zip(rows, plans, strict=True):
            for w in windows(row.document, scheme):
                pairs.extend((w, h) for h in dict.fromkeys(sentences + stripped))
        print(f"{scheme}: {len(pairs)} pairs", file=sys.stderr, flush=True)
        cache.score(pairs)
        for row, (sentences, stripped) in zip(rows, plans, strict=True):
            found = windows(row.document, scheme)
            for variant, texts in (("raw", sentences), ("cut", stripped)):
                best = []
                for text in texts:
                    probs = [cache[(w, text)] for w in found]
                    best.append(max(((e - c), e) for e, c in probs) if probs else (-1.0, 0.0))
                row.scores[f"{scheme}/{variant}"] = best


AGGREGATIONS = ("min", "mean", "min+mean", "share")


def row_score(row: Row, scheme: str, filtered: bool, how: str, numbers: bool = True) -> float:
    """The candidate's score under one combination: claims' best (P(e) - P(c)), a claim
    stating an unknown number -1, set-aside sentences left out (with ``filtered``), combined
    by min or mean; -1 when no claim is left."""
    import numpy as np

    variant = "cut" if filtered else "raw"
    best, invented = row.scores[f"{scheme}/{variant}"], row.invented[variant]
    if how.startswith("e:"):  # the entailment probability instead of P(e) - P(c)
        how, best = how[2:], [(e, e) for _, e in best]
    values = []
    for i, (score, _) in enumerate(best):
        values.append(-1.0 if numbers and invented[i] else score)
    if not values:
        return -1.0
    if how == "min":
        return float(np.min(values))
    if how == "mean":
        return float(np.mean(values))
    if how == "min+mean":
        return float((np.min(values) + np.mean(values)) / 2)
    return float(np.mean(np.array(values) >= 0) * 2 - 1)  # share supported, on [-1, 1]


def auroc(scores: Any, labels: Any) -> float | None:
    return ev_auroc(scores, labels == 1)


def by_domain(rows: list[Row], scores: Any) -> dict[str, tuple[Any, Any]]:
    import numpy as np

    found: dict[str, tuple[list[float], list[int]]] = {}
    for row, s in zip(rows, scores, strict=True):
        found.setdefault(row.domain, ([], []))
        found[row.domain][0].append(s)
        found[row.domain][1].append(row.label)
    return {d: (np.array(s), np.array(y)) for d, (s, y) in sorted(found.items())}


def domain_threshold(domains: dict[str, tuple[Any, Any]]) -> tuple[float, float]:
    """The threshold maximising balanced accuracy averaged over domains, and that average."""
    import numpy as np

    candidates = np.unique(np.concatenate([s for s, _ in domains.values()]))
    candidates = np.unique(np.round(candidates, 3))
    best = (-1.0, 0.0)
    for t in candidates:
        mean = float(np.mean([balanced_accuracy(s, y, t) for s, y in domains.values()]))
        if mean > best[0]:
            best = (mean, float(t))
    return best[1], best[0]


def by_source(rows: list[Row], scores: Any, threshold: float) -> dict[str, float]:
    """Balanced accuracy at ``threshold`` per source."""
    import numpy as np

    found: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        found.setdefault(row.source, []).append(i)
    labels = np.array([row.label for row in rows])
    return {
        source: round(balanced_accuracy(scores[idx], labels[idx], threshold), 3)
        for source, idx in sorted(found.items())
    }


def summarise(rows: list[Row], scores: Any, threshold: float | None = None) -> dict[str, Any]:
    import numpy as np

    domains = by_domain(rows, scores)
    chosen, mean_ba = domain_threshold(domains)
    t = chosen if threshold is None else threshold
    per = {
        d: {
            "rows": len(y),
            "auroc": _r(auroc(s, y)),
            "ba": _r(balanced_accuracy(s, y, t)),
            "pass_rate": _r(float((s >= t).mean())),
        }
        for d, (s, y) in domains.items()
    }
    return {
        "threshold": round(t, 3),
        "mean_domain_ba": _r(float(np.mean([v["ba"] for v in per.values()]))),
        "min_domain_auroc": _r(min(v["auroc"] for v in per.values() if v["auroc"] is not None)),
        "mean_domain_auroc": _r(
            float(np.mean([v["auroc"] for v in per.values() if v["auroc"] is not None]))
        ),
        "domains": per,
        "sources_ba": by_source(rows, scores, t),
        "best_mean_domain_ba": _r(mean_ba),
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def main(argv: Sequence[str] | None = None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-source", type=int, default=1200)
    parser.add_argument("--model", default="groundset-nli")
    parser.add_argument(
        "--schemes",
        default="sentences,chunks32,chunks48,chunks64,chunks96",
        help="window schemes: sentences, chunksN, or several joined by +",
    )
    parser.add_argument(
        "--aggregations",
        default="min,mean,min+mean",
        help="min, mean, min+mean, share; e:HOW uses P(e) alone",
    )
    parser.add_argument("--filters", default="0,1", help="0: every sentence, 1: claims only")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--max-loss", type=float, default=0.01,
                        help="the most balanced accuracy any dev source may lose against the"
                             " shipped settings at their threshold")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = load_dev(args.data, args.per_source)
    print(f"{len(rows)} dev rows", file=sys.stderr)
    schemes = args.schemes.split(",")
    base = sorted({part for scheme in schemes for part in scheme.split("+")} | {"sentences"})
    cache = PairCache(args.cache, args.model)
    score_rows(rows, base + [s for s in schemes if s not in base], cache)
    results: dict[str, Any] = {}
    shipped = np.array([row_score(r, "sentences", False, "min") for r in rows])
    results["shipped (sentences, every sentence, min, threshold 0)"] = summarise(rows, shipped, 0.0)
    for scheme in schemes:
        for filtered in (f == "1" for f in args.filters.split(",")):
            for how in args.aggregations.split(","):
                name = f"{scheme}, {'claims only' if filtered else 'every sentence'}, {how}"
                scores = np.array([row_score(r, scheme, filtered, how) for r in rows])
                results[name] = summarise(rows, scores)
    shipped_sources = next(iter(results.values()))["sources_ba"]
    for r in results.values():
        r["worst_source_loss"] = round(max(shipped_sources[k] - v
                                           for k, v in r["sources_ba"].items()), 3)  # fmt: skip
    width = max(len(k) for k in results)
    domains = list(next(iter(results.values()))["domains"])
    print(f"{'':{width}}  thr   meanBA minAUC loss " + "  ".join(f"{d[:8]:>13}" for d in domains))
    for name, r in results.items():
        cells = "  ".join(
            f"{r['domains'][d]['auroc']:.2f}/{r['domains'][d]['ba']:.2f}/{r['domains'][d]['pass_rate']:.2f}"
            for d in domains
        )
        print(f"{name:{width}}  {r['threshold']:+.2f} {r['mean_domain_ba']:.3f}  "
              f"{r['min_domain_auroc']:.2f}  {r['worst_source_loss']:+.2f} {cells}")  # fmt: skip
    steady = {k: r for k, r in list(results.items())[1:]
              if r["worst_source_loss"] <= args.max_loss}  # fmt: skip
    choice = max(steady, key=lambda k: steady[k]["mean_domain_ba"]) if steady else None
    print(f"choice (best mean domain balanced accuracy, no dev source losing more than"
          f" {args.max_loss:g}): {choice}")  # fmt: skip
    if args.json:
        payload = {"rows": len(rows), "per_source": args.per_source, "model": args.model,
                   "max_loss": args.max_loss, "choice": choice, "results": results}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
