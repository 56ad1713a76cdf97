"""FactCC-style synthetic claims made from train-side documents (Kryscinski et al. 2020).

A "document" is the evidence text of one WiCE train claim (its chunks in page order) or one
SNLI train premise. A sentence of it becomes a claim; the premise is a short window of the
document around it. Transformations and labels:

- entailment: the sentence copied; a clause dropped (parenthesis, appositive or relative clause,
  trailing clause, leading adverbial); a leading adverbial moved to the end.
- contradiction: a number or year changed (to another one from the same document when there is
  one), a month changed, a named entity swapped for another one of the same document, a
  negation added or removed, a word replaced by its antonym. Changed facts are contradictions.
- neutral: the sentence is removed from the window and then claimed (the document is on topic
  but no longer states it), the way an unsupported answer looks.

Everything is drawn from one ``random.Random(seed)``: the same inputs and seed give the same
examples. Only train-split text may be passed in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from training.nli.data import Example, clean_evidence, content_words

SOURCE = "synthetic"
WINDOW_WORDS = 70
_MONTH_TEXT = (
    "January February March April May June July August September October November December"
)
_MONTHS = tuple(_MONTH_TEXT.split())
_NUMBER_WORD_TEXT = "two three four five six seven eight nine ten eleven twelve"
_NUMBER_WORDS = tuple(_NUMBER_WORD_TEXT.split())
_ANTONYM_PAIRS = (
    ("increased", "decreased"),
    ("increase", "decrease"),
    ("before", "after"),
    ("first", "last"),
    ("largest", "smallest"),
    ("highest", "lowest"),
    ("won", "lost"),
    ("older", "younger"),
    ("earlier", "later"),
    ("north", "south"),
    ("east", "west"),
    ("above", "below"),
    ("male", "female"),
    ("public", "private"),
    ("major", "minor"),
    ("joined", "left"),
    ("opened", "closed"),
    ("began", "ended"),
    ("best", "worst"),
    ("early", "late"),
    ("inside", "outside"),
    ("man", "woman"),
    ("men", "women"),
    ("boy", "girl"),
    ("sitting", "standing"),
    ("day", "night"),
    ("young", "old"),
    ("empty", "full"),
    ("wet", "dry"),
    ("black", "white"),
    ("asleep", "awake"),
    ("indoors", "outdoors"),
    ("happy", "sad"),
)
_ANTONYMS = {a: b for a, b in _ANTONYM_PAIRS} | {b: a for a, b in _ANTONYM_PAIRS}
_CAPITAL_STOP_TEXT = (
    "The A An In On At He She It His Her They Their This That These After Before During As By "
    "For From With When While Its There Since Following According"
)
_CAPITAL_STOP = frozenset(_CAPITAL_STOP_TEXT.split())
_NAME_WORD = re.compile(r"^(?:[A-Z][a-z'\-]+|[A-Z]\.?|of|de|the)$")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20[0-3]\d)\b")
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])|(?<![\w.,])\d+(?:\.\d+)?\b")
_ENTITY = re.compile(r"\b[A-Z][\w'\-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'\-]*)*")
_AUX = re.compile(r"\b(is|was|are|were|can|will|could|would|should|does|did)\b(?! not\b)")
_PERFECT = re.compile(r"\b(has|have|had)\b(?= (?:been|\w+ed|\w+en)\b)")
_NOT = re.compile(r"\b(is|was|are|were|can|will|could|would|should|does|did|has|have|had) not\b")
_PAREN = re.compile(r" \([^()]{2,80}\)")
_APPOSITIVE = re.compile(
    r", (?:who|which|whose|where|with|including|now|then|also|born|known|located|formerly|"
    r"a|an|the|[a-z]+ed|[a-z]+ing)\b[^,]{2,80},"
)
_TRAILING = re.compile(
    r", (?:which|who|where|including|making|becoming|as|with|while|although|and|but)\b[^,]+\.$"
)
_LEADING = re.compile(
    r"^(In|On|At|During|After|Before|By|Since|From|As of|Following) ([^,]{2,40}), (.{12,})\.$"
)


@dataclass(frozen=True)
class Document:
    """Sentences of one train-side document, in order."""

    sentences: tuple[str, ...]
    rich: bool  # Wikipedia/web evidence (numbers, names) rather than an SNLI caption


Transform = Callable[[str, Document, random.Random], "str | None"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _good_sentence(text: str) -> bool:
    words = text.split()
    return 6 <= len(words) <= 45 and text.endswith(".") and "http" not in text and "|" not in text


def wice_documents(records: Sequence[dict]) -> list[Document]:
    """One document per WiCE claim id: the union of its evidence chunks in page order."""
    chunks: dict[str, dict[int, str]] = {}
    for row in records:
        meta = row.get("meta", {})
        key = str(meta.get("id", row["claim"]))
        indices = meta.get("chunk_idx") or list(range(len(row["evidence"])))
        for idx, chunk in zip(indices, row["evidence"], strict=False):
            chunks.setdefault(key, {})[int(idx)] = clean_evidence(chunk)
    docs = []
    for key in sorted(chunks):
        sentences = tuple(s for _, s in sorted(chunks[key].items()) if s)
        if any(_good_sentence(s) for s in sentences):
            docs.append(Document(sentences, rich=True))
    return docs


def snli_documents(premises: Sequence[str]) -> list[Document]:
    """One document per distinct SNLI premise."""
    unique = sorted({p for p in premises if _good_sentence(p)})
    return [Document((p,), rich=False) for p in unique]


# --- entailment-preserving edits -------------------------------------------------------------


def drop_clause(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Remove a parenthesis, an appositive, a trailing clause or a leading adverbial."""
    options = [sentence[: m.start()] + sentence[m.end() :] for m in _PAREN.finditer(sentence)]
    options += [
        sentence[: m.start()] + " " + sentence[m.end() :].lstrip()
        for m in _APPOSITIVE.finditer(sentence)
    ]
    options += [sentence[: m.start()] + "." for m in _TRAILING.finditer(sentence)]
    lead = _LEADING.match(sentence)
    if lead:
        options.append(_cap(lead.group(3)) + ".")
    options = [o for o in options if len(o.split()) >= 5 and o != sentence]
    return rng.choice(options) if options else None


def move_adverbial(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """ "In 1866, the museum was founded." -> "The museum was founded in 1866."."""
    lead = _LEADING.match(sentence)
    if not lead:
        return None
    head, rest = lead.group(1), lead.group(3)
    return f"{_cap(rest)} {head[0].lower()}{head[1:]} {lead.group(2)}."


def copy_sentence(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """The sentence itself."""
    return sentence


# --- fact-changing edits ---------------------------------------------------------------------


def _format_like(value: float, original: str) -> str:
    if "." in original:
        decimals = len(original.split(".")[1])
        return f"{value:,.{decimals}f}" if "," in original else f"{value:.{decimals}f}"
    return f"{round(value):,}" if "," in original else str(round(value))


def _other_number(original: str, pool: list[str], rng: random.Random) -> str:
    others = [p for p in pool if p != original]
    if others and rng.random() < 0.6:
        return rng.choice(others)
    value = float(original.replace(",", ""))
    for _ in range(10):
        factor = rng.choice((0.5, 0.7, 0.8, 1.25, 1.5, 2.0, 3.0))
        candidate = _format_like(max(value * factor, 1), original)
        if candidate != original:
            return candidate
    return _format_like(value + 1, original)


def swap_number(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Change a year, a number or a number word (to one from the document when possible)."""
    text = " ".join(doc.sentences)
    years = [m for m in _YEAR.finditer(sentence)]
    if years:
        m = rng.choice(years)
        pool = sorted({y for y in _YEAR.findall(text) if y != m.group(0)})
        new = (
            rng.choice(pool)
            if pool and rng.random() < 0.6
            else str(int(m.group(0)) + rng.choice((-10, -5, -3, -2, -1, 1, 2, 3, 5, 10)))
        )
        return sentence[: m.start()] + new + sentence[m.end() :]
    numbers = [m for m in _NUMBER.finditer(sentence)]
    if numbers:
        m = rng.choice(numbers)
        new = _other_number(m.group(0), sorted(set(_NUMBER.findall(text))), rng)
        return sentence[: m.start()] + new + sentence[m.end() :]
    words = [w for w in _NUMBER_WORDS if re.search(rf"\b{w}\b", sentence, re.IGNORECASE)]
    if words:
        word = rng.choice(words)
        new = rng.choice([w for w in _NUMBER_WORDS if w != word])
        return _replace_word(sentence, word, new)
    return None


def swap_month(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Change a month name."""
    found = [m for m in _MONTHS if re.search(rf"\b{m}\b", sentence)]
    if not found:
        return None
    month = rng.choice(found)
    return re.sub(
        rf"\b{month}\b", rng.choice([m for m in _MONTHS if m != month]), sentence, count=1
    )


def _entities(text: str) -> list[str]:
    spans = []
    for m in _ENTITY.finditer(text):
        span = m.group(0)
        words = span.split()
        if words[0] in _CAPITAL_STOP:
            words = words[1:]
        if not words or (len(words) == 1 and m.start() == 0) or words[0] in _MONTHS:
            continue
        if all(_NAME_WORD.match(w) for w in words):
            spans.append(" ".join(words))
    return spans


def swap_entity(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Replace a capitalised name with another name of the same document."""
    own = _entities(sentence)
    if not own:
        return None
    target = rng.choice(own)
    others = {e for s in doc.sentences for e in _entities(s)}
    pool = sorted(e for e in others if e not in sentence and target not in e and e not in target)
    same_size = [e for e in pool if abs(len(e.split()) - len(target.split())) <= 1]
    if not same_size:
        return None
    return sentence.replace(target, rng.choice(same_size), 1)


def negate(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Add "not" after an auxiliary, or remove an existing "not"."""
    existing = list(_NOT.finditer(sentence))
    if existing:
        m = rng.choice(existing)
        return sentence[: m.start()] + m.group(1) + sentence[m.end() :]
    spots = list(_AUX.finditer(sentence)) + list(_PERFECT.finditer(sentence))
    if not spots:
        return None
    m = rng.choice(spots)
    return sentence[: m.end()] + " not" + sentence[m.end() :]


def _replace_word(sentence: str, word: str, new: str) -> str:
    def keep_case(match: re.Match[str]) -> str:
        return _cap(new) if match.group(0)[0].isupper() else new

    return re.sub(rf"\b{word}\b", keep_case, sentence, count=1, flags=re.IGNORECASE)


def antonym(sentence: str, doc: Document, rng: random.Random) -> str | None:
    """Replace one word by its antonym."""
    words = [w for w in _ANTONYMS if re.search(rf"\b{w}\b", sentence, re.IGNORECASE)]
    if not words:
        return None
    word = rng.choice(sorted(words))
    return _replace_word(sentence, word, _ANTONYMS[word])


# --- assembling examples ---------------------------------------------------------------------

ENTAIL: tuple[tuple[Transform, float], ...] = (
    (copy_sentence, 0.08),
    (drop_clause, 0.2),
    (move_adverbial, 0.07),
)
CONTRADICT: tuple[tuple[Transform, float], ...] = (
    (swap_number, 0.13),
    (swap_month, 0.03),
    (swap_entity, 0.12),
    (negate, 0.08),
    (antonym, 0.05),
)
NEUTRAL_WEIGHT = 0.24


def window(
    doc: Document, index: int, rng: random.Random, max_words: int = WINDOW_WORDS
) -> list[int]:
    """Indices of the sentence and a random number of its neighbours (up to ``max_words``)."""
    chosen = [index]
    size = len(doc.sentences[index].split())
    wanted = rng.randint(1, 4)
    left, right = index - 1, index + 1
    while len(chosen) < wanted and (left >= 0 or right < len(doc.sentences)):
        pick = right if left < 0 or (right < len(doc.sentences) and rng.random() < 0.5) else left
        words = len(doc.sentences[pick].split())
        if size + words > max_words:
            break
        chosen.append(pick)
        size += words
        left, right = (left - 1, right) if pick == left else (left, right + 1)
    return sorted(chosen)


def _states_it_elsewhere(sentence: str, others: Sequence[str]) -> bool:
    words = content_words(sentence)
    if not words:
        return True
    return any(len(words & content_words(o)) / len(words) >= 0.6 for o in others)


def neutral_example(doc: Document, index: int, rng: random.Random) -> Example | None:
    """Claim a sentence after removing it from its window."""
    kept = [i for i in window(doc, index, rng) if i != index]
    if len(kept) < 1:
        return None
    others = [doc.sentences[i] for i in kept]
    claim = doc.sentences[index]
    if _states_it_elsewhere(claim, others):
        return None
    if rng.random() < 0.3:
        claim = drop_clause(claim, doc, rng) or claim
    return Example(" ".join(others), claim, "neutral", SOURCE, "synthetic")


def edited_example(
    doc: Document, index: int, transform: Transform, label: str, rng: random.Random
) -> Example | None:
    """Apply one edit to a sentence and pair it with a window that contains the original."""
    sentence = doc.sentences[index]
    claim = transform(sentence, doc, rng)
    if not claim or (label == "contradiction" and claim == sentence):
        return None
    premise = " ".join(doc.sentences[i] for i in window(doc, index, rng))
    return Example(premise, claim, label, SOURCE, "synthetic")


def _pick_kind(rng: random.Random) -> tuple[Transform | None, str]:
    table = [(t, w, "entailment") for t, w in ENTAIL] + [
        (t, w, "contradiction") for t, w in CONTRADICT
    ]
    table.append((None, NEUTRAL_WEIGHT, "neutral"))
    transform, _, label = rng.choices(table, weights=[w for _, w, _ in table])[0]
    return transform, label


def _one(docs: Sequence[Document], rng: random.Random) -> Example | None:
    transform, label = _pick_kind(rng)
    doc = rng.choice(docs)
    candidates = [i for i, s in enumerate(doc.sentences) if _good_sentence(s)]
    if not candidates:
        return None
    index = rng.choice(candidates)
    if transform is None:
        return neutral_example(doc, index, rng) if len(doc.sentences) > 1 else None
    return edited_example(doc, index, transform, label, rng)


def generate(
    rich_docs: Sequence[Document],
    plain_docs: Sequence[Document],
    n: int,
    seed: int = 13,
    plain_share: float = 0.2,
) -> list[Example]:
    """About ``n`` distinct synthetic examples; ``plain_share`` of them from SNLI premises."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out: list[Example] = []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        docs = plain_docs if plain_docs and rng.random() < plain_share else rich_docs
        example = _one(docs, rng) if docs else None
        if example and (example.premise, example.hypothesis) not in seen:
            seen.add((example.premise, example.hypothesis))
            out.append(example)
    return out


EDIT_CLAIM: tuple[Transform, ...] = (swap_number, swap_month, swap_entity, negate, antonym)


def edited_claims(
    records: Sequence[dict], seed: int, premise_for: Callable[[dict, str], list[str]]
) -> list[Example]:
    """Minimal pairs from human-written claims: a WiCE claim the evidence supports, with one
    fact changed (number, month, name, negation or antonym), against the same evidence.

    The edited claims are paraphrases, not copies of a document sentence, so the model cannot
    learn to spot an edit by matching the premise word for word; this is what a subtly wrong
    summary or answer looks like. ``premise_for(row, claim)`` returns the premises to pair the
    claim with (the selected evidence, the annotated oracle chunks).
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for row in records:
        if row.get("label") != "supported":
            continue
        claim = row["claim"].strip()
        doc = Document(tuple(clean_evidence(c) for c in row["evidence"]), rich=True)
        transforms = list(EDIT_CLAIM)
        rng.shuffle(transforms)
        for transform in transforms:
            edited = transform(claim, doc, rng)
            if edited and edited != claim:
                group = str(row.get("meta", {}).get("claim_title", claim))
                for premise in premise_for(row, edited):
                    out.append(Example(premise, edited, "contradiction", "claim_edit", group))
                break
    return out


def from_splits(
    wice_train_records: Sequence[dict],
    snli_train_premises: Sequence[str],
    n: int,
    seed: int,
    snli_share: float = 0.2,
) -> list[Example]:
    """Synthetic examples from the train side of the splits only; ``snli_share`` of them from
    e-SNLI premises."""
    return generate(
        wice_documents(wice_train_records),
        snli_documents(snli_train_premises),
        n,
        seed,
        snli_share,
    )
