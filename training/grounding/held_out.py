"""Held-out quality of ``grounding_nli`` on every test split, old and new: per source and per
domain, AUROC, balanced accuracy at the shipped default threshold and the pass rate there; and
a paired comparison of two settings (or two models) on the same rows, pooled over the new test
splits and per source.

    python -m training.grounding.held_out [--per-source 1000] [--json FILE] [--markdown]
        [--set model=/tmp/nli-model,...] [--threshold X]
        [--against "model=PREVIOUS,aggregate=min,metric=score"] [--against-threshold 0]

``--set`` and ``--against`` are validator options as ``groundset --set`` reads them, plus
``metric=NAME`` (the metric compared; by default the one gated on) and ``model=FOLDER``; each
side is read at its own threshold (by default its metric's default). ``--against`` defaults to
the gate groundset shipped with its previous model, P(e) - P(c) of the least supported claim
at 0; name that model's folder in it (``docs/nli-model.md`` says where to find the files).

It runs the validator itself, through ``score()``, so what is measured is what ships. The test
files are read here and nowhere else; nothing is chosen on them (``training.grounding.select``
chooses on dev). New sets: every ``*_test`` of ``../shared/data/grounding``. Old sets: the
held-out ``esnli_test``, ``cad_test`` and ``wice_claim_test`` of ``../shared/data/nli`` as
grounding pairs (premise or evidence as the document, hypothesis or claim as the answer;
entailment or "supported" is good). ``--per-source`` caps each file by a seeded random sample.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from training.grounding.select import auroc, balanced_accuracy
from training.nli.evaluate import PREVIOUS_GROUNDING as PREVIOUS
from training.nli.evaluate import balanced_2way

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
SEED = 13
CACHE = REPO / "bench" / ".cache" / "held_out"
#: the settings grounding_nli shipped with before document-level checking
SENTENCE_LEVEL = "windows=sentences,claims_only=false,aggregate=min,max_claims=8,metric=score"


@dataclass(frozen=True)
class Pair:
    source: str
    domain: str
    document: str
    answer: str
    label: int


def _sample(rows: list[Pair], cap: int, name: str) -> list[Pair]:
    if cap and len(rows) > cap:
        return random.Random(f"{SEED}:{name}").sample(rows, cap)
    return rows


def load_test(shared: Path, cap: int) -> list[Pair]:
    """Every held-out test file, as (document, answer, label) pairs."""
    found: list[Pair] = []
    for path in sorted((shared / "grounding").glob("*_test.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines]
        pairs = [Pair(r["source"], r["domain"], r["document"], r["claim"], int(r["label"]))
                 for r in rows]  # fmt: skip
        found += _sample(pairs, cap, path.name)
    nli = shared / "nli"
    for name in ("esnli_test", "cad_test"):
        rows = [json.loads(line) for line in (nli / f"{name}.jsonl").open(encoding="utf-8")]
        pairs = [Pair(name.removesuffix("_test"), "nli", r["premise"], r["hypothesis"],
                      int(r["label"] == "entailment")) for r in rows]  # fmt: skip
        found += _sample(pairs, cap, name)
    rows = [json.loads(line) for line in (nli / "wice_claim_test.jsonl").open(encoding="utf-8")]
    pairs = [Pair("wice", "wiki", " ".join(r["evidence"]), r["claim"],
                  int(r["label"] == "supported")) for r in rows]  # fmt: skip
    return found + _sample(pairs, cap, "wice_claim_test")


def parse_settings(text: str) -> dict[str, Any]:
    """``a=1,b=false,c=min`` as validator options, each value read as ``groundset --set``
    reads it (TOML, else a string)."""
    from groundset.core.settings import apply_override

    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        apply_override(options, item)
    return options


def score(pairs: Sequence[Pair], options: dict[str, Any], label: str) -> tuple[Any, float]:
    """A metric of ``grounding_nli`` for every pair (``metric=NAME`` in the settings; by default
    the one with a default threshold), and candidates per second."""
    import numpy as np

    from groundset.core import Candidate, Document
    from groundset.validators.grounding_nli import GroundingNliValidator

    options = dict(options)
    name = options.pop("metric", None)
    validator = GroundingNliValidator(GroundingNliValidator.Options(**options))
    metric = next(
        m
        for m in validator.metrics
        if m.name == name or (name is None and m.default_threshold is not None)
    )
    values = np.empty(len(pairs))
    started, step = time.perf_counter(), 64
    for i in range(0, len(pairs), step):
        part = pairs[i : i + step]
        candidates = [
            Candidate(str(i + j), "r", "w", Document(text=p.document), {"answer": p.answer}, "")
            for j, p in enumerate(part)
        ]
        for j, result in enumerate(validator.score(candidates)):
            values[i + j] = result[metric.name]
        if (i // step) % 20 == 0:
            rate = (i + len(part)) / (time.perf_counter() - started)
            print(f"  {label}: {i + len(part)}/{len(pairs)}, {rate:.1f}/s", file=sys.stderr,
                  flush=True)  # fmt: skip
    return values, len(pairs) / (time.perf_counter() - started)


def model_folder(options: dict[str, Any]) -> Path:
    """The folder of the NLI model the options name (the packaged one by default), without
    loading it."""
    from groundset.validators.nli import DEFAULT_NLI_MODEL
    from groundset.validators.nli import model_folder as folder_of

    return folder_of(options.get("model", DEFAULT_NLI_MODEL))


def default_threshold(options: dict[str, Any] | None = None) -> float:
    """The default threshold of the metric the settings score (``metric=NAME``; by default the
    one ``grounding_nli`` gates on)."""
    from groundset.validators.grounding_nli import GroundingNliValidator

    name = (options or {}).get("metric")
    metric = next(
        m
        for m in GroundingNliValidator.metrics
        if m.name == name or (name is None and m.default_threshold is not None)
    )
    if metric.name == "score" and metric.default_threshold is None:
        return 0.0  # where entailment outweighs contradiction: the previous model's gate
    if metric.default_threshold is None:
        raise SystemExit(f"metric={name} has no default threshold: give one")
    return metric.default_threshold


def cached_score(
    pairs: Sequence[Pair], text: str, label: str, cache: Path | None, cap: int
) -> tuple[Any, float]:
    """``score``, kept on disk per settings, model file and sample: comparing several models
    against one baseline scores the baseline once. The rate is the one first measured."""
    import hashlib

    import numpy as np

    options = parse_settings(text)
    if cache is None:
        return score(pairs, options, label)
    from groundset.core.records import file_sha256
    from groundset.validators.grounding_nli import GroundingNliValidator

    onnx = model_folder(options) / "model.onnx"
    key = json.dumps([sorted(options.items()), GroundingNliValidator.version, cap, len(pairs),
                      file_sha256(onnx) if onnx.exists() else options.get("model")],
                     default=str)  # fmt: skip
    path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        kept = np.load(path)
        print(f"  {label}: cached scores {path}", file=sys.stderr)
        return kept["values"], float(kept["rate"])
    values, rate = score(pairs, options, label)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, values=values, rate=rate)
    return values, rate


def table(pairs: Sequence[Pair], values: Any, threshold: float) -> dict[str, Any]:
    """Per source and per domain: rows, AUROC, balanced accuracy and pass rate at the
    threshold."""
    import numpy as np

    labels = np.array([p.label for p in pairs])
    out: dict[str, Any] = {}
    for key in ("source", "domain"):
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(pairs):
            groups.setdefault(getattr(p, key), []).append(i)
        out[key] = {
            name: {
                "rows": len(idx),
                "supported": int(labels[idx].sum()),
                "auroc": _r(auroc(values[idx], labels[idx])),
                "ba": _r(balanced_accuracy(values[idx], labels[idx], threshold)),
                "pass_rate": _r(float((values[idx] >= threshold).mean())),
            }
            for name, idx in sorted(groups.items())
        }
    return out


def paired(pairs: Sequence[Pair], a: Any, b: Any, threshold: float, resamples: int = 2000):
    """Balanced accuracy of ``a`` minus ``b`` on the pooled new test rows, with a bootstrap
    95 % interval over rows resampled within each source (so the sources keep their sizes);
    and the same per source, old and new, whose intervals say how much a small source's
    difference can mean (one row of DialFact's 24 moves its balanced accuracy 3 to 6 points)."""
    import numpy as np

    labels = np.array([p.label for p in pairs])
    passed_a, passed_b = a >= threshold, b >= threshold
    rng = np.random.default_rng(SEED)
    by_source: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_source.setdefault(p.source, []).append(i)
    new = {name: idx for name, idx in by_source.items() if _is_new(pairs[idx[0]])}

    def ba(passed: Any, y: Any) -> float:
        return balanced_2way(passed, y == 1) or 0.5

    def compare(groups: list[list[int]]) -> dict[str, Any]:
        rows = np.concatenate([np.array(g) for g in groups])
        point = ba(passed_a[rows], labels[rows]) - ba(passed_b[rows], labels[rows])
        diffs = []
        for _ in range(resamples):
            idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
            diffs.append(ba(passed_a[idx], labels[idx]) - ba(passed_b[idx], labels[idx]))
        low, high = np.percentile(diffs, [2.5, 97.5])
        return {"rows": len(rows), "difference": _r(point), "low": _r(float(low)),
                "high": _r(float(high))}  # fmt: skip

    pooled = compare(list(new.values()))
    pooled["sources"] = {name: compare([idx]) for name, idx in sorted(by_source.items())}
    return pooled


def _is_new(pair: Pair) -> bool:
    """A row of the document-level test splits (not e-SNLI, CAD or WiCE)."""
    return pair.domain != "nli" and pair.source != "wice"


def compare(
    pairs: Sequence[Pair],
    settings: dict[str, tuple[str, float | None]],
    cache: Path | None,
    cap: int,
) -> dict[str, Any]:
    """Each named setting's table at its threshold (the metric's default where None), and the
    paired difference of the first minus the second."""
    default = default_threshold()
    result: dict[str, Any] = {"per_source": cap, "threshold": default, "settings": {}}
    values, thresholds = {}, {}
    for name, (text, threshold) in settings.items():
        if threshold is None:
            threshold = default_threshold(parse_settings(text))
        thresholds[name] = threshold
        values[name], rate = cached_score(pairs, text, name, cache, cap)
        result["settings"][name] = {
            "options": text or "(defaults)",
            "threshold": thresholds[name],
            "candidates_per_s": round(rate, 1),
            "table": table(pairs, values[name], thresholds[name]),
        }
    first, second = list(settings)[:2]
    result["paired_new_minus_against"] = paired(
        pairs, values[first] - thresholds[first], values[second] - thresholds[second], 0.0
    )
    return result


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def _cell(value: float | None) -> str:
    """A figure for the table; "-" where it is undefined (AUROC on rows of one label)."""
    return "-" if value is None else f"{value:.2f}"


def markdown(result: dict[str, Any]) -> str:
    names = list(result["settings"])
    heads = " | ".join(f"{n}: AUROC / BA / pass" for n in names)
    lines = [f"| source | rows (supported) | {heads} |", "|---|---|" + "---|" * len(names)]
    for key in ("source", "domain"):
        first = result["settings"][names[0]]["table"][key]
        for group, row in first.items():
            cells = []
            for n in names:
                r = result["settings"][n]["table"][key][group]
                cells.append(" / ".join(_cell(r[k]) for k in ("auroc", "ba", "pass_rate")))
            label = group if key == "source" else f"**{group}** (domain)"
            lines.append(f"| {label} | {row['rows']} ({row['supported']}) | {' | '.join(cells)} |")
    return "\n".join(lines)


def paired_markdown(diff: dict[str, Any]) -> str:
    """The paired differences, pooled over the new test splits and per source."""
    lines = ["| rows | new minus against: balanced accuracy [95 % interval] |", "|---|---|"]
    lines.append(f"| pooled new test splits ({diff['rows']}) | {_difference(diff)} |")
    for name, row in diff.get("sources", {}).items():
        lines.append(f"| {name} ({row['rows']}) | {_difference(row)} |")
    return "\n".join(lines)


def _difference(row: dict[str, Any]) -> str:
    return f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--per-source", type=int, default=1000)
    parser.add_argument("--set", default="", help="settings measured: option=value,...")
    parser.add_argument(
        "--against", default=PREVIOUS, help="settings compared with (add model=FOLDER)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="threshold of --set (default: the metric's default)",
    )
    parser.add_argument(
        "--against-threshold",
        type=float,
        default=None,
        help="threshold of --against (default: the metric's default; 0 for score)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="scores kept per settings, model file and sample ('' for none)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    pairs = load_test(args.shared, args.per_source)
    print(f"{len(pairs)} held-out test rows", file=sys.stderr)
    settings = {
        "new": (args.set, args.threshold),
        "against": (args.against, args.against_threshold),
    }
    cache = Path(args.cache) if args.cache else None
    result = compare(pairs, settings, cache, args.per_source)
    print(markdown(result))
    print(paired_markdown(result["paired_new_minus_against"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
