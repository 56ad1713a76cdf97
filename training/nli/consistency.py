"""A factual-consistency set for choosing how ``grounding_nli`` aggregates and where its default
threshold sits: faithful claims against the same claims with one fact changed.

Built only from documents the model never trains on, the held-out WiCE test file:

- ``claim``: a claim that the WiCE annotators marked as supported by its Wikipedia evidence,
  written by a person (a paraphrase, not a copy of a document sentence), against the union of
  its evidence chunks in page order (a document of about 250-400 words). Its inconsistent twin
  is the same claim with one fact changed: a number, a month, a name from the document, a
  negation or an antonym (``synthetic.EDIT_CLAIM``).
- ``summary``: three sentences of the same document, each lightly rewritten the way a summary
  rewrites (a clause dropped, an adverbial moved, or copied), joined into one text. Its
  inconsistent twin has one of the three sentences with one fact changed, so a single bad
  claim among good ones must sink the score, and the aggregation over claims matters.

Every faithful item has exactly one edited twin, so the set is balanced by construction and a
score can only separate the two by the changed fact. Documents are split 50/50 into ``dev``
(choose the aggregation and the threshold) and ``test`` (report) by a hash of the article title.

    python -m training.nli.consistency [--model DIR] [--json OUT] [--markdown]

scores every item with the packaged model (or ``--model``) through the validator's own windows
and claim splitting, for every aggregation variant (each with and without the validator's
number check, `` +numbers``), and prints AUROC and balanced accuracy. ``--validator`` also runs
``grounding_nli`` itself at its default threshold, on this set and on ``near_numbers``: one or
two sentences with a number copied from each document, against the same sentences with one
number moved to a nearby value the document does not state.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.nli import synthetic
from training.nli.data import clean_evidence, default_data_dir, read_jsonl, stable_fraction
from training.nli.evaluate import _round, auroc

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SEED = 29
SUMMARY_SHARE = 0.5  # documents that also give a summary pair (scoring cost)
ENTAIL_REWRITES = (synthetic.drop_clause, synthetic.move_adverbial)


@dataclass(frozen=True)
class Item:
    """One document and one text to check against it; ``label`` 1 = faithful."""

    id: str
    kind: str  # claim | summary
    edit: str  # "" for faithful items, else the edit's name
    label: int
    split: str
    document: str
    text: str


def _documents(rows: Sequence[dict]) -> dict[str, dict[int, str]]:
    """Evidence chunks per WiCE claim id, merged over the file's evidence samples."""
    out: dict[str, dict[int, str]] = {}
    for row in rows:
        meta = row.get("meta", {})
        indices = meta.get("chunk_idx") or range(len(row["evidence"]))
        chunks = out.setdefault(str(meta.get("id")), {})
        for idx, chunk in zip(indices, row["evidence"], strict=False):
            text = clean_evidence(chunk)
            if text:
                chunks[int(idx)] = text
    return out


def _edit(text: str, doc: synthetic.Document, rng: random.Random) -> tuple[str, str] | None:
    transforms = list(synthetic.EDIT_CLAIM)
    rng.shuffle(transforms)
    for transform in transforms:
        edited = transform(text, doc, rng)
        if edited and edited != text:
            return edited, transform.__name__
    return None


def _rewrite(sentence: str, doc: synthetic.Document, rng: random.Random) -> str:
    for transform in rng.sample(ENTAIL_REWRITES, len(ENTAIL_REWRITES)):
        rewritten = transform(sentence, doc, rng)
        if rewritten:
            return rewritten
    return sentence


def build(data_dir: Path | None = None, seed: int = SEED) -> list[Item]:
    """The faithful/edited pairs from ``wice_claim_test.jsonl``, in a fixed order."""
    rows = read_jsonl(Path(data_dir or default_data_dir()) / "wice_claim_test.jsonl")
    rng = random.Random(seed)
    docs = _documents(rows)
    items: list[Item] = []
    seen: set[str] = set()
    for row in rows:
        meta = row.get("meta", {})
        key = str(meta.get("id"))
        if key in seen:
            continue
        seen.add(key)
        sentences = tuple(text for _, text in sorted(docs[key].items()))
        doc = synthetic.Document(sentences, rich=True)
        document = " ".join(sentences)
        title = str(meta.get("claim_title", key))
        split = "dev" if stable_fraction(title, seed) < 0.5 else "test"
        supported = [r for r in rows if r["meta"].get("id") == key and r["label"] == "supported"]
        if supported:
            claim = supported[0]["claim"].strip()
            edited = _edit(claim, doc, rng)
            if edited:
                items.append(Item(f"{key}-claim", "claim", "", 1, split, document, claim))
                items.append(
                    Item(f"{key}-claim-edit", "claim", edited[1], 0, split, document, edited[0])
                )
        good = [s for s in sentences if synthetic._good_sentence(s)]
        if len(good) < 3 or stable_fraction(key, seed + 1) >= SUMMARY_SHARE:
            continue
        picked = sorted(rng.sample(range(len(good)), 3))
        parts = [_rewrite(good[i], doc, rng) for i in picked]
        target = rng.randrange(3)
        edited = _edit(parts[target], doc, rng)
        if not edited:
            continue
        bad = list(parts)
        bad[target] = edited[0]
        items.append(Item(f"{key}-summary", "summary", "", 1, split, document, " ".join(parts)))
        items.append(
            Item(f"{key}-summary-edit", "summary", edited[1], 0, split, document, " ".join(bad))
        )
    return items


# --- scoring ---------------------------------------------------------------------------------

WINDOWS = {"1": (1,), "1+2": (1, 2), "1+2+3": (1, 2, 3)}
CLAIM_SCORES = ("entailment", "support")  # max P(e) | max P(e) - P(c) over windows
OVER_CLAIMS = ("min", "mean")
NUMBERS = ("", " +numbers")  # with the number check, a claim stating a number the document
# does not state gets entailment 0 / support -1, as in grounding_nli


def _windows(document: str, sizes: Sequence[int]) -> list[str]:
    from groundset.validators.grounding_nli import _windows as validator_windows

    out: list[str] = []
    for size in sizes:
        out += [w for w in validator_windows(document, size) if w not in out]
    return out


def score_items(
    items: Sequence[Item],
    model: Any,
    batch_size: int = 32,
    variants: Sequence[str] = tuple(WINDOWS),
) -> dict[str, np.ndarray]:
    """Every variant's score per item. Pair probabilities are computed once and shared."""
    from groundset.validators.numbers import unsupported_numbers
    from groundset.validators.sentences import split_claims

    plans = []
    invented = []
    pairs: dict[tuple[str, str], int] = {}
    for item in items:
        claims = split_claims(item.text)
        invented.append(np.array([bool(unsupported_numbers(c, item.document)) for c in claims]))
        per_variant = {}
        for name in variants:
            sizes = WINDOWS[name]
            windows = _windows(item.document, sizes)
            grid = [[pairs.setdefault((w, c), len(pairs)) for w in windows] for c in claims]
            per_variant[name] = np.array(grid, dtype=np.int64)
        plans.append(per_variant)
    probs = model.probabilities(list(pairs), batch_size)
    out: dict[str, np.ndarray] = {}
    for name in variants:
        for claim_score in CLAIM_SCORES:
            for over in OVER_CLAIMS:
                for numbers in NUMBERS:
                    values = []
                    for plan, flags in zip(plans, invented, strict=True):
                        grid = probs[plan[name]]  # claims x windows x (entail, contradict)
                        per_window = (
                            grid[..., 0]
                            if claim_score == "entailment"
                            else (grid[..., 0] - grid[..., 1])
                        )
                        per_claim = per_window.max(axis=1)
                        if numbers:
                            per_claim[flags] = 0.0 if claim_score == "entailment" else -1.0
                        values.append(per_claim.min() if over == "min" else per_claim.mean())
                    key = f"windows={name} claim={claim_score} over={over}{numbers}"
                    out[key] = np.array(values)
    return out


def balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    passed = scores >= threshold
    return float((passed[labels == 1].mean() + (~passed[labels == 0]).mean()) / 2)


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the highest balanced accuracy (midpoints between sorted scores)."""
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    accuracies = [balanced_accuracy(scores, labels, t) for t in cuts]
    return float(cuts[int(np.argmax(accuracies))])


def report(items: Sequence[Item], scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per variant: AUROC on dev and test, the dev-chosen threshold and balanced accuracy."""
    labels = np.array([i.label for i in items])
    split = np.array([i.split for i in items])
    kind = np.array([i.kind for i in items])
    out: dict[str, Any] = {}
    for name, values in scores.items():
        dev, test = split == "dev", split == "test"
        threshold = best_threshold(values[dev], labels[dev])
        row: dict[str, Any] = {"threshold": round(threshold, 4)}
        for part, mask in (("dev", dev), ("test", test)):
            row[f"{part}_auroc"] = _round(auroc(values[mask], labels[mask] == 1))
            row[f"{part}_bacc"] = round(balanced_accuracy(values[mask], labels[mask], threshold), 4)
            for k in ("claim", "summary"):
                sub = mask & (kind == k)
                row[f"{part}_{k}_auroc"] = _round(auroc(values[sub], labels[sub] == 1))
        out[name] = row
    return out


def at_threshold(
    items: Sequence[Item], values: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Balanced accuracy per split, and the share of edits caught per edit type, at a fixed
    threshold (the validator's default)."""
    labels = np.array([i.label for i in items])
    out: dict[str, dict[str, float]] = {}
    for part in ("dev", "test"):
        mask = np.array([i.split == part for i in items])
        row = {
            "bacc": round(balanced_accuracy(values[mask], labels[mask], threshold), 4),
            "faithful_passed": round(float((values[mask & (labels == 1)] >= threshold).mean()), 4),
        }
        for edit in sorted({i.edit for i in items if i.edit}):
            sub = mask & np.array([i.edit == edit for i in items])
            if sub.any():
                row[f"caught_{edit}"] = round(float((values[sub] < threshold).mean()), 4)
        out[part] = row
    return out


def validator_check(
    items: Sequence[Item], scores: dict[str, np.ndarray], model: str
) -> dict[str, Any]:
    """Score the items with ``grounding_nli`` set as this set chose it (sentence windows, every
    sentence a claim, the least supported deciding; only the model may differ) and check it
    computes what its variant here computes. The validator's defaults now check chunks and
    combine claims otherwise, chosen on the dev splits of ``../shared/data/grounding``
    (``training.grounding.select``)."""
    from groundset.core import Candidate, Document
    from groundset.validators.grounding_nli import GroundingNliOptions, GroundingNliValidator

    options = GroundingNliOptions(
        model=model, windows="sentences", claims_only=False, aggregate="min", max_claims=8
    )
    validator = GroundingNliValidator(options)
    # the gate this set chose: P(e) - P(c) at 0 (the gate is now chosen on document-level dev)
    metric = next(m for m in validator.metrics if m.name == "score")
    threshold = 0.0
    candidates = [
        Candidate(i.id, "consistency", i.id, Document(text=i.document), {"answer": i.text}, i.text)
        for i in items
    ]
    values = np.array([r[metric.name] for r in validator.score(candidates)])
    windows = "1" if options.window_sentences == 1 else f"1+{options.window_sentences}"
    claim = "support" if metric.name == "score" else "entailment"
    numbers = NUMBERS[1] if options.check_numbers else NUMBERS[0]
    variant = f"windows={windows} claim={claim} over=min{numbers}"
    # int8 activations are quantised per batch, so batch composition moves scores a little
    difference = float(np.abs(values - scores[variant]).max()) if variant in scores else None
    if difference is not None and difference > 0.05:
        raise SystemExit(f"grounding_nli differs from {variant} by {difference:.3f}")
    return {
        "metric": f"grounding_nli.{metric.name}",
        "threshold": threshold,
        "variant": variant,
        "max_difference_from_variant": difference,
        **at_threshold(items, values, threshold),
    }


NEAR_YEAR = (-3, -2, -1, 1, 2, 3)
NEAR_FACTOR = (0.8, 0.9, 1.1, 1.2, 1.25)


def near_number(sentence: str, document: str, rng: random.Random) -> str | None:
    """``sentence`` with one year or number moved to a nearby value that ``document`` does not
    state anywhere: the error a model makes when it misremembers a figure."""
    from groundset.validators.numbers import document_numbers

    known = document_numbers(document)
    matches = list(synthetic._YEAR.finditer(sentence)) or list(synthetic._NUMBER.finditer(sentence))
    rng.shuffle(matches)
    for m in matches:
        original = m.group(0)
        value = float(original.replace(",", ""))
        if synthetic._YEAR.fullmatch(original):
            options = [str(int(value) + step) for step in NEAR_YEAR]
        else:
            options = [synthetic._format_like(value * f, original) for f in NEAR_FACTOR]
        options = [o for o in options if o != original and float(o.replace(",", "")) not in known]
        if options:
            return sentence[: m.start()] + rng.choice(options) + sentence[m.end() :]
    return None


MONTHS = synthetic._MONTHS
_MONTH = re.compile(r"\b(" + "|".join(MONTHS) + r")\b")


def near_month(sentence: str, document: str, rng: random.Random) -> str | None:
    """``sentence`` with one month moved by one or two to a month ``document`` never names
    or dates."""
    from groundset.validators.numbers import document_numbers

    known = document_numbers(document)
    for m in rng.sample(list(_MONTH.finditer(sentence)), len(_MONTH.findall(sentence))):
        index = MONTHS.index(m.group(0))
        options = [
            MONTHS[(index + step) % 12]
            for step in (-2, -1, 1, 2)
            if f"month:{(index + step) % 12 + 1}" not in known
        ]
        if options:
            return sentence[: m.start()] + rng.choice(options) + sentence[m.end() :]
    return None


def near_number_items(items: Sequence[Item], seed: int = SEED, per_document: int = 2) -> list[Item]:
    """Sentences copied from the documents of ``items`` (faithful) and the same sentences with
    one number moved to a nearby value (edited), in the same dev/test split; then one sentence
    a document with a month, and the same with the month moved."""
    documents = {i.id.rsplit("-", 1)[0].removesuffix("-claim").removesuffix("-summary"): i
                 for i in items}  # fmt: skip
    numbers = _copied_pairs(documents, synthetic._NUMBER, near_number, "copy", per_document,
                            random.Random(seed))  # fmt: skip
    months = _copied_pairs(documents, _MONTH, near_month, "month", 1, random.Random(seed + 1))
    return numbers + months


def _copied_pairs(
    documents: dict[str, Item],
    pattern: re.Pattern[str],
    edit: Callable[[str, str, random.Random], str | None],
    kind: str,
    per_document: int,
    rng: random.Random,
) -> list[Item]:
    """Up to ``per_document`` sentences of each document that ``pattern`` finds, each copied
    (faithful) and edited by ``edit`` (named after it)."""
    from groundset.validators.sentences import split_sentences

    out: list[Item] = []
    for key, item in sorted(documents.items()):
        doc = item.document
        found = [s for s in split_sentences(doc) if len(s.split()) <= 40 and pattern.search(s)]
        for n, sentence in enumerate(rng.sample(found, min(per_document, len(found)))):
            edited = edit(sentence, doc, rng)
            if edited:
                out.append(Item(f"{key}-{kind}{n}", kind, "", 1, item.split, doc, sentence))
                out.append(Item(f"{key}-{kind}{n}-edit", kind, edit.__name__, 0, item.split, doc,
                                edited))  # fmt: skip
    return out


def near_number_check(items: Sequence[Item], model: str) -> dict[str, Any]:
    """``grounding_nli`` with its defaults, at its default gate, on copied sentences against the
    same with a number moved nearby, with and without its number check."""
    from groundset.core import Candidate, Document
    from groundset.validators.grounding_nli import GroundingNliOptions, GroundingNliValidator

    candidates = [
        Candidate(i.id, "consistency", i.id, Document(text=i.document), {"answer": i.text}, i.text)
        for i in items
    ]
    gate = next(m for m in GroundingNliValidator.metrics if m.default_threshold is not None)
    threshold = float(gate.default_threshold or 0.0)
    out: dict[str, Any] = {"items": counts(items), "metric": f"grounding_nli.{gate.name}",
                           "threshold": threshold}  # fmt: skip
    for check in (True, False):
        validator = GroundingNliValidator(GroundingNliOptions(model=model, check_numbers=check))
        values = np.array([r[gate.name] for r in validator.score(candidates)])
        out["with_number_check" if check else "model_alone"] = at_threshold(
            items, values, threshold
        )
    return out


def counts(items: Sequence[Item]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        key = f"{item.split}/{item.kind}/{'faithful' if item.label else 'edited'}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def markdown(table: dict[str, Any]) -> str:
    lines = [
        "| variant | dev AUROC | dev thr | dev bal. acc | test AUROC | test bal. acc |"
        " test AUROC claim / summary |",
        "|---|---|---|---|---|---|---|",
    ]

    def f(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for name, row in sorted(table.items(), key=lambda kv: -(kv[1]["dev_auroc"] or 0)):
        lines.append(
            f"| {name} | {f(row['dev_auroc'])} | {f(row['threshold'])} | {f(row['dev_bacc'])}"
            f" | {f(row['test_auroc'])} | {f(row['test_bacc'])}"
            f" | {f(row['test_claim_auroc'])} / {f(row['test_summary_auroc'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="groundset-nli", help="NLI model folder")
    parser.add_argument("--data", type=Path, default=None, help="shared/data/nli folder")
    parser.add_argument("--limit", type=int, default=0, help="first N items (smoke test)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--items", type=Path, default=None, help="write the items (JSONL) here")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument(
        "--windows", default=",".join(WINDOWS), help=f"variants to score: {', '.join(WINDOWS)}"
    )
    parser.add_argument(
        "--validator",
        action="store_true",
        help="also score with grounding_nli's defaults: the score it reports must equal its"
        " variant's, and balanced accuracy at its default threshold is printed; and check it on"
        " copied document sentences against the same with a number moved nearby",
    )
    args = parser.parse_args(argv)

    from groundset.validators.nli import nli_model

    items = build(args.data)
    if args.limit:
        items = items[: args.limit]
    if args.items:
        with args.items.open("w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(asdict(item)) + "\n")
    model = nli_model(args.model, "cpu")
    scores = score_items(items, model, variants=args.windows.split(","))
    table = report(items, scores)
    result = {"model": args.model, "items": counts(items), "variants": table}
    if args.validator:
        result["validator"] = validator_check(items, scores, args.model)
        result["near_numbers"] = near_number_check(near_number_items(items), args.model)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(table) if args.markdown else json.dumps(result, indent=2))
    if args.markdown and "validator" in result:
        print(json.dumps({k: result[k] for k in ("validator", "near_numbers")}, indent=2))


if __name__ == "__main__":
    main()
