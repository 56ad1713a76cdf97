"""Load the shared NLI data into (premise, hypothesis, label, source) examples with fixed splits.

Files (``shared/data/nli``, see its NOTICE for licences and citations):

- ``esnli_dev`` / ``esnli_test``: SNLI pairs with e-SNLI explanations (only the pairs are used).
- ``cad_train`` / ``cad_dev`` / ``cad_test``: counterfactually augmented SNLI pairs.
- ``wice_claim_dev`` / ``wice_claim_test``: Wikipedia claims with their evidence chunks.

Splits (deterministic for a given seed):

- held-out: each source's own test file (``esnli_test``, ``cad_test``, ``wice_claim_test``);
  never trained on, never used for model selection.
- dev (model selection): a premise-grouped slice of ``esnli_dev``, all of ``cad_dev`` and an
  article-grouped slice of ``wice_claim_dev``.
- train: the rest of ``esnli_dev`` and ``wice_claim_dev``, all of ``cad_train``; any e-SNLI
  premise that also occurs in a held-out file is dropped from train and dev.

WiCE labels: ``supported`` -> entailment; ``partially_supported`` and ``not_supported`` ->
neutral. WiCE does not annotate refutation: ``not_supported`` means the evidence does not
support the claim (SNLI's "neutral"), and a partially supported claim has at least one
sub-claim the evidence does not back, while the rest is entailed. Calling either
"contradiction" would teach the model that missing information is a contradiction, against the
SNLI data it also learns from. Both are "not entailed", which is what a grounding check needs.

WiCE premises are lists of evidence chunks (median 17, about 250 words): longer than the model's
window. ``select_evidence`` keeps the chunks that share the most content words with the claim,
within the model's token budget, in their original order, so the least relevant text is dropped
instead of whatever comes last.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LABELS: tuple[str, ...] = ("contradiction", "entailment", "neutral")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
HELD_OUT: tuple[str, ...] = ("esnli_test", "cad_test", "wice_claim_test")
WICE_LABELS: dict[str, str] = {
    "supported": "entailment",
    "partially_supported": "neutral",
    "not_supported": "neutral",
}

TokenCounter = Callable[[str], int]
TOKENS_PER_WORD = 1.6  # WordPiece tokens per word on WiCE's Wikipedia text, measured

_WORD = re.compile(r"[A-Za-z0-9]+")
_SPACED_PUNCT = re.compile(r" ([.,;:!?'](?:\s|$))")
_STOPWORD_TEXT = """a an the of in on at to for from by with and or but is are was were be been
    being has have had do does did it its this that these those as he she they his her their
    him them who which what when where there than then so not no also into over after before
    about up out more most such can could will would may might one two new first i you we our
    your"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Example:
    """One premise/hypothesis pair with its 3-way label and where it came from."""

    premise: str
    hypothesis: str
    label: str
    source: str
    group: str = field(default="", compare=False)

    @property
    def label_id(self) -> int:
        return LABEL2ID[self.label]


@dataclass
class Splits:
    """Train, dev (model selection) and held-out (reporting only) examples."""

    train: list[Example]
    dev: list[Example]
    held_out: list[Example]
    wice_train_records: list[dict] = field(default_factory=list)
    dropped_for_leakage: int = 0
    wice_dev_records: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of examples per split and source."""
        out: dict[str, dict[str, int]] = {}
        for name in ("train", "dev", "held_out"):
            out[name] = count_by_source(getattr(self, name))
        return out


def default_data_dir() -> Path:
    """``$GROUNDSET_NLI_DATA`` or ``shared/data/nli`` beside the repository."""
    env = os.environ.get("GROUNDSET_NLI_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "nli"


def read_jsonl(path: Path) -> list[dict]:
    """All JSON objects of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def detokenize(text: str) -> str:
    """Undo SNLI's spaces before punctuation ("a dog ." -> "a dog.")."""
    return _SPACED_PUNCT.sub(r"\1", " ".join(text.split())).strip()


def premise_key(text: str) -> str:
    """A normalised premise used to group pairs and to detect overlap between files."""
    return " ".join(_WORD.findall(text.lower()))


def count_by_source(examples: Iterable[Example]) -> dict[str, int]:
    """Number of examples per source tag."""
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.source] = counts.get(example.source, 0) + 1
    return dict(sorted(counts.items()))


def snli_examples(rows: Iterable[dict], source: str) -> list[Example]:
    """SNLI-style rows (premise, hypothesis, label) as examples grouped by premise."""
    out = []
    for row in rows:
        label = str(row["label"]).strip().lower()
        if label not in LABEL2ID:
            continue
        premise = detokenize(row["premise"])
        out.append(
            Example(premise, detokenize(row["hypothesis"]), label, source, premise_key(premise))
        )
    return out


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry content (no stopwords, no single letters)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def clean_evidence(chunk: str) -> str:
    """Strip WiCE's page markup: the "(meta data) TITLE:" prefix and markdown heading marks."""
    text = chunk.replace("(meta data) TITLE:", "").strip()
    text = text.lstrip("#").strip()
    return " ".join(text.split())


def _relevance(sentence: str, claim_words: set[str]) -> float:
    words = content_words(sentence)
    if not words:
        return 0.0
    hits = words & claim_words
    digits = sum(1 for w in hits if any(c.isdigit() for c in w))
    return (len(hits) + digits) / math.sqrt(len(words))


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of the WordPiece length of a text."""
    return math.ceil(TOKENS_PER_WORD * len(text.split()))


def premise_budget(claim: str, max_length: int, count: TokenCounter) -> int:
    """Tokens left for the premise once [CLS], [SEP] x2 and the claim are in (at least 32)."""
    return max(32, max_length - 3 - count(claim))


def select_evidence(
    chunks: Sequence[str], claim: str, budget: int, count: TokenCounter = estimate_tokens
) -> str:
    """Join the chunks most relevant to the claim (shared content words, numbers twice) that fit
    in ``budget`` tokens, in their original order; everything when it all fits."""
    cleaned = [c for c in (clean_evidence(x) for x in chunks) if c]
    sizes = [count(c) for c in cleaned]
    if sum(sizes) <= budget:
        return " ".join(cleaned)
    claim_words = content_words(claim)
    order = sorted(range(len(cleaned)), key=lambda i: (-_relevance(cleaned[i], claim_words), i))
    chosen: list[int] = []
    used = 0
    for i in order:
        if used + sizes[i] <= budget:
            chosen.append(i)
            used += sizes[i]
    if not chosen:  # even the best chunk is longer than the budget: the tokenizer truncates it
        return cleaned[order[0]]
    return " ".join(cleaned[i] for i in sorted(chosen))


def wice_examples(
    rows: Iterable[dict], source: str, max_length: int, count: TokenCounter = estimate_tokens
) -> list[Example]:
    """WiCE claim rows as examples; the premise is the selected evidence, grouped by article."""
    out = []
    for row in rows:
        claim = row["claim"].strip()
        budget = premise_budget(claim, max_length, count)
        premise = select_evidence(row["evidence"], claim, budget, count)
        group = str(row.get("meta", {}).get("claim_title", claim))
        out.append(Example(premise, claim, WICE_LABELS[row["label"]], source, group))
    return out


def wice_premises(
    row: dict, claim: str, max_length: int, count: TokenCounter = estimate_tokens
) -> list[str]:
    """The premises a WiCE claim is trained against: the evidence selected for it within the
    token budget, and its annotated oracle chunks alone when there are any."""
    budget = premise_budget(claim, max_length, count)
    premises = [select_evidence(row["evidence"], claim, budget, count)]
    meta = row.get("meta", {})
    oracle = set(meta.get("oracle_idx") or [])
    pairs = zip(row["evidence"], meta.get("chunk_idx", []), strict=False)
    chunks = [chunk for chunk, idx in pairs if idx in oracle]
    if chunks:
        premises.append(select_evidence(chunks, claim, budget, count))
    return list(dict.fromkeys(premises))


def wice_oracle_examples(
    rows: Iterable[dict], max_length: int, count: TokenCounter = estimate_tokens
) -> list[Example]:
    """Extra train pairs: a claim against only its annotated oracle chunks (when given).

    Short, focused premises like a grounding check's; the label stays the claim's label.
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        meta = row.get("meta", {})
        oracle = set(meta.get("oracle_idx") or [])
        pairs = zip(row["evidence"], meta.get("chunk_idx", []), strict=False)
        chunks = [chunk for chunk, idx in pairs if idx in oracle]
        if not chunks:
            continue
        claim = row["claim"].strip()
        premise = select_evidence(chunks, claim, premise_budget(claim, max_length, count), count)
        if (premise, claim) in seen:
            continue
        seen.add((premise, claim))
        label = WICE_LABELS[row["label"]]
        out.append(Example(premise, claim, label, "wice_oracle", str(meta.get("claim_title"))))
    return out


def stable_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by the key and the seed (independent of Python's hash seed)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return int(digest[:12], 16) / float(1 << 48)


def split_by_group(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Train/dev split that keeps every group (premise or article) on one side."""
    train, dev = [], []
    for example in examples:
        side = dev if stable_fraction(example.group, seed) < dev_fraction else train
        side.append(example)
    return train, dev


def _split_rows_by_article(rows: list[dict], dev_fraction: float, seed: int) -> tuple[list, list]:
    train, dev = [], []
    for row in rows:
        title = str(row.get("meta", {}).get("claim_title", row["claim"]))
        (dev if stable_fraction(title, seed) < dev_fraction else train).append(row)
    return train, dev


def load_held_out(
    data_dir: Path | None = None, max_length: int = 160, count: TokenCounter = estimate_tokens
) -> list[Example]:
    """The three test files: the only examples metrics are reported on."""
    root = Path(data_dir) if data_dir else default_data_dir()
    wice = read_jsonl(root / "wice_claim_test.jsonl")
    return (
        snli_examples(read_jsonl(root / "esnli_test.jsonl"), "esnli_test")
        + snli_examples(read_jsonl(root / "cad_test.jsonl"), "cad_test")
        + wice_examples(wice, "wice_claim_test", max_length, count)
    )


def load_splits(
    data_dir: Path | None = None,
    seed: int = 13,
    max_length: int = 160,
    count: TokenCounter = estimate_tokens,
    esnli_dev_fraction: float = 0.1,
    wice_dev_fraction: float = 0.2,
) -> Splits:
    """Read every file and build the train / dev / held-out splits."""
    root = Path(data_dir) if data_dir else default_data_dir()
    held_out = load_held_out(root, max_length, count)
    held_keys = {premise_key(e.premise) for e in held_out}
    esnli = snli_examples(read_jsonl(root / "esnli_dev.jsonl"), "esnli")
    kept = [e for e in esnli if e.group not in held_keys]
    esnli_train, esnli_dev = split_by_group(kept, esnli_dev_fraction, seed)
    wice_rows = read_jsonl(root / "wice_claim_dev.jsonl")
    wice_train_rows, wice_dev_rows = _split_rows_by_article(wice_rows, wice_dev_fraction, seed)
    train = (
        esnli_train
        + snli_examples(read_jsonl(root / "cad_train.jsonl"), "cad")
        + wice_examples(wice_train_rows, "wice", max_length, count)
        + wice_oracle_examples(wice_train_rows, max_length, count)
    )
    dev = (
        esnli_dev
        + snli_examples(read_jsonl(root / "cad_dev.jsonl"), "cad")
        + wice_examples(wice_dev_rows, "wice", max_length, count)
    )
    return Splits(train, dev, held_out, wice_train_rows, len(esnli) - len(kept), wice_dev_rows)


def shuffled(examples: Sequence[Example], seed: int) -> list[Example]:
    """A copy in a seeded random order."""
    out = list(examples)
    random.Random(seed).shuffle(out)
    return out
