"""Choose how ``grounding_nli`` checks a document, on dev splits only: the windows (single
sentences, or chunks of up to N estimated tokens), whether non-claim sentences are set aside,
how claim scores combine (min or mean), and the default threshold, the one that maximises
balanced accuracy averaged over dev domains rather than over pooled rows, so the largest source
does not decide for the others. Steadiness first: a combination is chosen only if no dev source
loses more than ``--max-loss`` (0.01) balanced accuracy against the baseline, half the 2 points
a source may lose on test, since dev figures move on unseen data; and no corpus within a source
(BEGIN's Wizard of Wikipedia, CMU-DoG and Topical-Chat responses; FRANK's and FIB's news
outlets) more than ``--max-corpus-loss`` (0.02): a source's pooled figure can hide a loss on
one corpus behind gains on another, and a test split may hold one corpus only (BEGIN's does).
The baseline is ``--against`` (scheme,filter,aggregation,threshold; by default the
sentence-level settings ``grounding_nli`` first shipped with) scored by ``--against-model``
(by default ``--model``): to judge a new model, give the shipped model and settings.

    python -m training.grounding.select [--per-source 1200] [--model groundset-nli]
        [--schemes sentences,chunks48,chunks64] [--filters 0,1] [--aggregations min,mean]
        [--max-loss 0.01] [--max-corpus-loss 0.02] [--json bench/grounding_select.json]
        [--against-model groundset-nli --against chunks64,1,min,0] [--cache DIR]

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
#: the settings grounding_nli first shipped with: single sentences, every sentence a claim, the
#: least supported, threshold 0
BASELINE = "sentences,0,min,0"
SEED = 13


@dataclass
class Row:
    source: str
    domain: str
    document: str
    claim: str
    label: int
    #: the corpus within the source where ``origin`` names one (BEGIN's wow / cmu / tc, FRANK's
    #: bbc / cnndm, FIB's xsum / cnn_dm); "" otherwise
    corpus: str = ""
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
            rows.append(Row(r["source"], r["domain"], r["document"], r["claim"], int(r["label"]),
                            corpus_of(r)))  # fmt: skip
    return rows


#: the fewest dev rows a corpus needs to be guarded on its own
CORPUS_ROWS = 200
#: sources whose ``origin`` (source:corpus:...) names the corpus a row comes from
CORPUS_SOURCES = ("begin", "frank", "fib")


def corpus_of(row: dict[str, Any]) -> str:
    parts = str(row.get("origin", "")).split(":")
    return parts[1] if row["source"] in CORPUS_SOURCES and len(parts) > 2 else ""


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
    """A model by its file's digest, so two folders with the same name (``/tmp/a/model``,
    ``/tmp/b/model``), or the packaged model before and after it is replaced, never share
    scores; a hub id by name."""
    from groundset.validators.nli import model_folder

    folder = model_folder(model)
    onnx = folder / "model.onnx"
    if not onnx.exists():
        return Path(model).name
    from groundset.core.records import file_sha256

    return f"{folder.name}-{file_sha256(onnx)[:16]}"


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


def by_corpus(rows: list[Row], scores: Any, threshold: float, least: int) -> dict[str, float]:
    """Balanced accuracy at ``threshold`` per corpus within a source (``begin/wow``), for
    corpora of at least ``least`` rows: a source's pooled figure can hide a loss on one corpus
    behind gains on another, and a test split may hold one corpus only."""
    import numpy as np

    found: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.corpus:
            found.setdefault(f"{row.source}/{row.corpus}", []).append(i)
    labels = np.array([row.label for row in rows])
    return {
        group: round(balanced_accuracy(scores[idx], labels[idx], threshold), 3)
        for group, idx in sorted(found.items())
        if len(idx) >= least
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
        "corpora_ba": by_corpus(rows, scores, t, CORPUS_ROWS),
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
                             " baseline at its threshold")  # fmt: skip
    parser.add_argument("--max-corpus-loss", type=float, default=0.02,
                        help="the most any corpus within a source may lose (BEGIN's WoW,"
                             f" CMU-DoG, Topical-Chat; {CORPUS_ROWS}+ dev rows each)")  # fmt: skip
    parser.add_argument("--against-model", default="",
                        help="the baseline's model (default: --model)")  # fmt: skip
    parser.add_argument("--against", default=BASELINE,
                        help="the baseline's scheme,filter,aggregation,threshold (default:"
                             " grounding_nli's first, sentence-level settings)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = load_dev(args.data, args.per_source)
    print(f"{len(rows)} dev rows", file=sys.stderr)
    scheme_b, filter_b, how_b, threshold_b = args.against.split(",")
    against_model = args.against_model or args.model
    baseline = None
    if against_model != args.model:  # the baseline's model scores first, then makes way
        score_rows(rows, [scheme_b], PairCache(args.cache, against_model))
        baseline = np.array([row_score(r, scheme_b, filter_b == "1", how_b) for r in rows])
        for row in rows:
            row.scores.clear()
    schemes = args.schemes.split(",")
    base = sorted({part for scheme in schemes for part in scheme.split("+")} | {scheme_b})
    cache = PairCache(args.cache, args.model)
    score_rows(rows, base + [s for s in schemes if s not in base], cache)
    if baseline is None:
        baseline = np.array([row_score(r, scheme_b, filter_b == "1", how_b) for r in rows])
    results: dict[str, Any] = {}
    if args.against == BASELINE and against_model == args.model:
        name = "shipped (sentences, every sentence, min, threshold 0)"  # the name it always had
    else:
        name = f"baseline ({against_model}: {args.against})"
    results[name] = summarise(rows, baseline, float(threshold_b))
    for scheme in schemes:
        for filtered in (f == "1" for f in args.filters.split(",")):
            for how in args.aggregations.split(","):
                name = f"{scheme}, {'claims only' if filtered else 'every sentence'}, {how}"
                scores = np.array([row_score(r, scheme, filtered, how) for r in rows])
                results[name] = summarise(rows, scores)
    first = next(iter(results.values()))
    for r in results.values():
        r["worst_source_loss"] = round(max(first["sources_ba"][k] - v
                                           for k, v in r["sources_ba"].items()), 3)  # fmt: skip
        losses = [first["corpora_ba"][k] - v for k, v in r["corpora_ba"].items()
                  if k in first["corpora_ba"]]  # fmt: skip
        r["worst_corpus_loss"] = round(max(losses, default=0.0), 3)
    width = max(len(k) for k in results)
    domains = list(next(iter(results.values()))["domains"])
    heads = "  ".join(f"{d[:8]:>13}" for d in domains)
    print(f"{'':{width}}  thr   meanBA minAUC loss  corp {heads}")
    for name, r in results.items():
        cells = "  ".join(
            f"{r['domains'][d]['auroc']:.2f}/{r['domains'][d]['ba']:.2f}/{r['domains'][d]['pass_rate']:.2f}"
            for d in domains
        )
        print(f"{name:{width}}  {r['threshold']:+.2f} {r['mean_domain_ba']:.3f}  "
              f"{r['min_domain_auroc']:.2f}  {r['worst_source_loss']:+.2f}"
              f" {r['worst_corpus_loss']:+.2f} {cells}")  # fmt: skip
    steady = {k: r for k, r in list(results.items())[1:]
              if r["worst_source_loss"] <= args.max_loss
              and r["worst_corpus_loss"] <= args.max_corpus_loss}  # fmt: skip
    choice = max(steady, key=lambda k: steady[k]["mean_domain_ba"]) if steady else None
    print(
        f"choice (best mean domain balanced accuracy, no dev source losing more than"
        f" {args.max_loss:g}, no corpus more than {args.max_corpus_loss:g}): {choice}"
    )
    if args.json:
        payload = {"rows": len(rows), "per_source": args.per_source, "model": args.model,
                   "against_model": against_model, "against": args.against,
                   "max_loss": args.max_loss, "max_corpus_loss": args.max_corpus_loss,
                   "choice": choice, "results": results}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
