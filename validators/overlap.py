"""Lexical grounding of an answer in its document: how much of the answer's wording comes from the
document, whether it follows one passage, and whether it merely copies a passage verbatim.

Pure Python and linear-ish in document length: a run scores thousands of candidates against
documents of several thousand tokens, so each document is tokenized and indexed once per batch.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from groundset.core import Candidate, ConfigError, Document, Metric, Validator, hookimpl

__all__ = [
    "OverlapValidator",
    "longest_common_span",
    "register_validators",
    "rouge_l",
    "split_sentences",
]

_WHERE = "validators.overlap"
_TOKEN = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
#: Bounds on the LCS work per sentence: longer "sentences" (tables, lists without full stops)
#: and very long answers are truncated; ROUGE-L of such texts says little anyway.
_MAX_SENTENCE_TOKENS = 300
_MAX_ANSWER_TOKENS = 1000
_METRICS = (
    "token_precision",
    "token_recall",
    "rouge_l",
    "copy_ratio",
    "verbatim_copy",
)


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? followed by whitespace, and at line breaks (titles, list items)."""
    return [part for part in _SENTENCE_END.split(text) if part.strip()]


def _match_masks(a: Sequence[str]) -> dict[str, int]:
    """For each token, the positions where ``a`` has it, as bits of one int."""
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks


def _lcs_length(masks: dict[str, int], length: int, b: Sequence[str]) -> int:
    """Longest common subsequence of ``a`` (given as its match masks and length) and ``b``,
    bit-parallel (Crochemore et al. 2001; Hyyro 2004): the DP row over ``a`` lives in the bits of
    one int and each token of ``b`` updates all of it at once. Exact like the O(n*m)
    rolling-array DP, but one big-int step per token of ``b`` instead of ``len(a)`` Python steps,
    which is what makes thousands of sentences per answer affordable."""
    full = (1 << length) - 1
    row = full
    for token in b:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return length - row.bit_count()


def _f_measure(lcs: int, candidate_length: int, reference_length: int) -> float:
    """ROUGE-L F with beta = 1: the harmonic mean of LCS precision and recall."""
    if lcs == 0:
        return 0.0
    precision, recall = lcs / candidate_length, lcs / reference_length
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L F-measure (beta = 1) between two token sequences."""
    if not candidate or not reference:
        return 0.0
    lcs = _lcs_length(_match_masks(candidate), len(candidate), reference)
    return _f_measure(lcs, len(candidate), len(reference))


def longest_common_span(answer: Sequence[str], positions: dict[str, list[int]]) -> int:
    """Longest run of answer tokens that appears contiguously in the document. ``positions`` maps
    each document token to where it occurs, so work is proportional to matching positions, not to
    answer length times document length."""
    best = 0
    previous: dict[int, int] = {}
    for token in answer:
        current = {j: previous.get(j - 1, 0) + 1 for j in positions.get(token, ())}
        if current:
            best = max(best, max(current.values()))
        previous = current
    return best


@dataclass
class _IndexedDocument:
    """A document's tokens, counts, sentence tokens and token positions, built once per batch."""

    tokens: list[str]
    counts: Counter[str]
    sentences: list[list[str]]
    positions: dict[str, list[int]]


def _document_text(document: Document) -> str:
    """The text the strategy grounded the answer in: the title line is part of it."""
    text = document.text
    if document.title and not text.startswith(document.title):
        return f"{document.title}\n{text}"
    return text


class OverlapValidator(Validator):
    """Token overlap between an answer and its document.

    ``token_precision`` defaults to a 0.45 threshold, the best balanced accuracy on the dev half
    of ``bench/grounding_eval`` (0.46): grounded answers, paraphrases included, reuse most of the
    document's words, while answers from another document or off topic reuse few of them.
    """

    validator_id = "overlap"
    cost = "lexical"
    version = "1"
    description = "Lexical grounding of the answer in the document, and verbatim-copy detection."
    metrics = (
        Metric(
            "token_precision",
            "Share of answer tokens found in the document (clipped counts, like BLEU-1).",
            default_threshold=0.45,
        ),
        Metric("token_recall", "Share of document tokens the answer covers (clipped counts)."),
        Metric("rouge_l", "ROUGE-L F1 between the answer and its best-matching document sentence."),
        Metric(
            "copy_ratio",
            "Longest token span shared verbatim with the document / answer tokens (1 = substring).",
        ),
        Metric(
            "verbatim_copy",
            "1 when copy_ratio >= copy_threshold on an answer of >= min_copy_tokens tokens.",
            higher_is_better=False,
            default_threshold=0.0,
        ),
    )

    @dataclass(frozen=True)
    class Options:
        """``field``: the candidate field to score; ``copy_threshold`` and ``min_copy_tokens``:
        when an answer counts as a verbatim copy; ``lowercase``: compare tokens case-blind."""

        field: str = "answer"
        copy_threshold: float = 0.95
        min_copy_tokens: int = 8
        lowercase: bool = True

    def __init__(self, options: OverlapValidator.Options | None = None) -> None:
        super().__init__(options)
        if not 0.0 <= self.options.copy_threshold <= 1.0:
            raise ConfigError(f"{_WHERE}.copy_threshold: must be between 0 and 1")
        if self.options.min_copy_tokens < 0:
            raise ConfigError(f"{_WHERE}.min_copy_tokens: must be 0 or more")

    def tokens(self, text: str) -> list[str]:
        return _TOKEN.findall(text.lower() if self.options.lowercase else text)

    def _index(self, document: Document) -> _IndexedDocument:
        text = _document_text(document)
        tokens = self.tokens(text)
        positions: dict[str, list[int]] = defaultdict(list)
        for position, token in enumerate(tokens):
            positions[token].append(position)
        sentences = [self.tokens(s)[:_MAX_SENTENCE_TOKENS] for s in split_sentences(text)]
        return _IndexedDocument(tokens, Counter(tokens), [s for s in sentences if s], positions)

    def _best_rouge(self, answer: list[str], document: _IndexedDocument) -> float:
        """Max over sentences; sentences sharing no token with the answer score 0 and are
        skipped, and the answer's match masks are built once for all sentences."""
        capped = answer[:_MAX_ANSWER_TOKENS]
        masks = _match_masks(capped)
        best = 0.0
        for sentence in document.sentences:
            if masks.keys() & sentence:
                lcs = _lcs_length(masks, len(capped), sentence)
                best = max(best, _f_measure(lcs, len(capped), len(sentence)))
        return best

    def _score_one(self, answer_text: str, document: _IndexedDocument) -> dict[str, float]:
        answer = self.tokens(answer_text)
        if not answer or not document.tokens:
            return dict.fromkeys(_METRICS, 0.0)
        shared = sum((Counter(answer) & document.counts).values())
        copy_ratio = longest_common_span(answer, document.positions) / len(answer)
        copied = copy_ratio >= self.options.copy_threshold
        copied = copied and len(answer) >= self.options.min_copy_tokens
        return {
            "token_precision": shared / len(answer),
            "token_recall": shared / len(document.tokens),
            "rouge_l": self._best_rouge(answer, document),
            "copy_ratio": copy_ratio,
            "verbatim_copy": 1.0 if copied else 0.0,
        }

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        indexed: dict[str, _IndexedDocument] = {}
        results = []
        for candidate in candidates:
            key = candidate.document.document_id
            if key not in indexed:
                indexed[key] = self._index(candidate.document)
            answer = candidate.fields.get(self.options.field, "")
            results.append(self._score_one(answer, indexed[key]))
        return results


@hookimpl
def register_validators(register: Callable[[type], object]) -> None:
    register(OverlapValidator)
