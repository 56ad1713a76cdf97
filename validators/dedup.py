"""Near-duplicate filter of Self-Instruct and Stanford Alpaca, exact but not all-pairs.

Alpaca keeps a generated instruction only when its ROUGE-L F-measure (``rouge_score``'s
``rougeL``, no stemming) against every instruction already in the pool (the 175 seed tasks and
every instruction kept so far) is at most 0.7, and scores each new instruction against the whole
pool: O(N^2) LCS computations. The result depends on order (a kept instruction can reject later
ones), so this validator is stateful: candidates are compared with the pool in the order the
engine hands them over, and each one that passes joins the pool.

Here the same maximum comes from branch and bound. ROUGE-L F = 2 * LCS / (len(a) + len(b)) and
the LCS is at most the multiset intersection M of the two token lists, so 2 * M / (len(a) +
len(b)) bounds F from above. An inverted index over token occurrences ("the" as its first,
second, ... occurrence, so multiset intersection becomes set intersection) gives M for the whole
pool in one numpy ``bincount``; exact LCS (bit-parallel) is then computed only for pool entries in
decreasing bound order until no bound left can beat the best scores found. The maximum, and so
every keep/reject decision, is exactly Alpaca's, float for float; so are the top-k listed.
"""

from __future__ import annotations

import heapq
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from groundset.core import Candidate, ConfigError, Metric, Validator, hookimpl

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DedupValidator",
    "register_validators",
    "rouge_l_fmeasure",
    "rouge_tokens",
    "seed_instructions",
]

_WHERE = "validators.dedup"
#: rouge_score's tokenizer keeps maximal runs of these after lowercasing
_TOKEN = re.compile(r"[a-z0-9]+")
#: bounds within this of the best score are still checked exactly, so float rounding of the
#: bound can never hide a pair whose exact score rounds to the best (or above the threshold)
_SLACK = 1e-9
_UNKNOWN = -1


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's default tokenizer without stemmer: ``text.lower()``, non-[a-z0-9] runs become
    spaces, split, drop empty tokens. Maximal [a-z0-9] runs of the lowercased text are the same
    tokens; lowercasing first matters (the Kelvin sign lowercases to an ASCII "k")."""
    return _TOKEN.findall(text.lower())


def rouge_l_fmeasure(lcs: int, new_length: int, pool_length: int) -> float:
    """ROUGE-L F the way Alpaca gets it, ``_score_lcs(new_tokens, pool_tokens).fmeasure``: the
    same float operations in the same order, so a pair right at the threshold rounds the same."""
    if lcs == 0:
        return 0.0
    precision = lcs / pool_length
    recall = lcs / new_length
    return 2 * precision * recall / (precision + recall)


def _match_masks(ids: Sequence[int]) -> dict[int, int]:
    """For each token id, the positions where it occurs, as bits of one int."""
    masks: dict[int, int] = {}
    for position, token in enumerate(ids):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks


def _lcs_length(masks: dict[int, int], length: int, other: Sequence[int]) -> int:
    """Exact LCS length, bit-parallel (Hyyro 2004): one big-int step per token of ``other``
    instead of ``length`` Python steps of the DP table rouge_score fills."""
    full = (1 << length) - 1
    row = full
    for token in other:
        matches = masks.get(token)
        if matches:  # a token the other side lacks leaves the row as it is
            matches &= row
            row = ((row + matches) | (row - matches)) & full
    return length - row.bit_count()


def _occurrences(ids: Sequence[int]) -> list[tuple[int, int]]:
    """(token, n) for the n-th occurrence of each token: two such sets intersect in exactly the
    multiset intersection of the token lists."""
    seen: dict[int, int] = {}
    keys = []
    for token in ids:
        count = seen.get(token, 0)
        seen[token] = count + 1
        keys.append((token, count))
    return keys


def seed_instructions() -> list[str]:
    """The instructions of Self-Instruct's 175 seed tasks, in file order: Alpaca's initial pool."""
    from groundset.plugins.self_instruct import load_seed_tasks

    return [task.instruction for task in load_seed_tasks()]


class _Growing:
    """An int32 array that grows by doubling, so appending one entry is O(1) amortised and the
    filled part is a view, never a copy."""

    def __init__(self, np_module: Any) -> None:
        self._np = np_module
        self.data = np_module.empty(4, dtype=np_module.int32)
        self.size = 0

    def append(self, value: int) -> None:
        if self.size == self.data.shape[0]:
            self.data = self._np.concatenate([self.data, self._np.empty_like(self.data)])
        self.data[self.size] = value
        self.size += 1

    def view(self) -> np.ndarray:
        return self.data[: self.size]


class _Pool:
    """The instructions a new one is compared with: texts, token ids for exact LCS, and an
    inverted index from token occurrence to pool entries for the upper bound."""

    def __init__(self) -> None:
        import numpy

        self._np = numpy
        self.texts: list[str] = []
        self._ids: list[list[int]] = []
        self._lengths = _Growing(numpy)
        self._vocabulary: dict[str, int] = {}
        self._columns: dict[tuple[int, int], int] = {}
        self._postings: list[_Growing] = []

    def add(self, text: str, words: Sequence[str]) -> None:
        entry = len(self.texts)
        ids = [self._vocabulary.setdefault(word, len(self._vocabulary)) for word in words]
        self.texts.append(text)
        self._ids.append(ids)
        self._lengths.append(len(ids))
        for key in _occurrences(ids):
            column = self._columns.setdefault(key, len(self._postings))
            if column == len(self._postings):
                self._postings.append(_Growing(self._np))
            self._postings[column].append(entry)

    def _bounds(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Pool entries sharing a token with ``ids`` and 2 * M / (len + len) for each: an upper
        bound on their ROUGE-L F (entries sharing none score exactly 0)."""
        np = self._np
        columns = [self._columns.get(key) for key in _occurrences(ids) if key[0] != _UNKNOWN]
        hits = [self._postings[c].view() for c in columns if c is not None]
        if not hits:
            return np.empty(0, dtype=np.intp), np.empty(0)
        shared = np.bincount(np.concatenate(hits))
        entries = np.flatnonzero(shared)
        bounds = 2.0 * shared[entries] / (len(ids) + self._lengths.view()[entries])
        return entries, bounds

    def _ids_of(self, words: Sequence[str]) -> list[int]:
        return [self._vocabulary.get(word, _UNKNOWN) for word in words]

    def nearest(self, words: Sequence[str], count: int) -> list[tuple[float, int]]:
        """The exact top ``count`` (score, entry), best first, ties in pool order.

        The ``count`` highest bounds are scored first; after that an entry is scored only while
        its bound can still reach the ``count``-th best score, so every entry left out scores
        below all of those listed. Entries sharing no token with ``words`` score 0 and are never
        listed."""
        ids = self._ids_of(words)
        entries, bounds = self._bounds(ids)
        masks, length = _match_masks(ids), len(ids)
        first = self._top(bounds, count)
        kept: list[tuple[float, int]] = []  # min-heap of (score, -entry): worst listed on top
        for i in first:
            entry = int(entries[i])
            self._push(kept, count, (self._score(masks, length, entry), -entry))
        if len(kept) == count:  # else the first round scored every entry
            bounds[first] = -1.0
            floor = kept[0][0]
            for i in self._above(bounds, floor - _SLACK):
                if bounds[i] < floor - _SLACK:
                    break
                entry = int(entries[i])
                floor = self._push(kept, count, (self._score(masks, length, entry), -entry))
        return [(score, -negative) for score, negative in sorted(kept, reverse=True)]

    @staticmethod
    def _push(heap: list[tuple[float, int]], count: int, item: tuple[float, int]) -> float:
        """Keep the ``count`` best items; return the worst kept score (the bar to beat)."""
        if len(heap) < count:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)
        return heap[0][0]

    def exceeds(self, words: Sequence[str], threshold: float) -> bool:
        """Whether some entry scores above ``threshold``: only entries whose bound comes within
        the slack of it are scored, and the first one above stops the search."""
        ids = self._ids_of(words)
        entries, bounds = self._bounds(ids)
        masks, length = _match_masks(ids), len(ids)
        for i in self._above(bounds, threshold - _SLACK):
            if self._score(masks, length, int(entries[i])) > threshold:
                return True
        return False

    def _score(self, masks: dict[int, int], length: int, entry: int) -> float:
        other = self._ids[entry]
        return rouge_l_fmeasure(_lcs_length(masks, length, other), length, len(other))

    def _top(self, bounds: np.ndarray, count: int) -> np.ndarray:
        """Positions of the ``count`` highest bounds, in no particular order (linear time)."""
        if bounds.size <= count:
            return self._np.arange(bounds.size)
        return self._np.argpartition(-bounds, count - 1)[:count]

    def _above(self, bounds: np.ndarray, floor: float) -> np.ndarray:
        """Positions of bounds >= ``floor``, highest first: usually a handful of the pool."""
        np = self._np
        candidates = np.flatnonzero(bounds >= floor)
        return candidates[np.argsort(-bounds[candidates], kind="stable")]


class DedupValidator(Validator):
    """ROUGE-L near-duplicates against the run's pool, with Alpaca's keep/reject rule.

    ``max_rouge_l`` is the exact maximum over the pool (default threshold 0.7: pass when <= 0.7,
    Alpaca's rule); ``duplicate`` says whether it exceeded the configured ``threshold``, which is
    also what decides whether the candidate joins the pool. Stateful: the engine replays the run's
    earlier candidates (:meth:`replay`) and then scores batches in candidate-id order, so a
    resumed run rebuilds the same pool. ``details`` lists the ``most_similar`` pool instructions
    with the highest scores (exact; ties in pool order), as Alpaca records them."""

    validator_id = "dedup"
    cost = "lexical"
    version = "1"
    stateful = True
    description = "ROUGE-L near-duplicates against seed tasks and earlier kept candidates (Alpaca)."
    metrics = (
        Metric(
            "max_rouge_l",
            "Highest ROUGE-L F (rouge_score rougeL, no stemming) against the seed tasks and every "
            "earlier kept candidate; Self-Instruct and Alpaca reject above 0.7.",
            higher_is_better=False,
            default_threshold=0.7,
        ),
        Metric(
            "duplicate",
            "1 when max_rouge_l > the dedup threshold option (the candidate does not join the"
            " pool).",
            higher_is_better=False,
        ),
    )

    @dataclass(frozen=True)
    class Options:
        """``field``: the candidate field compared ("question" for grounded Q&A); ``threshold``:
        above it a candidate is a duplicate and stays out of the pool; ``seed_tasks``: start the
        pool with Self-Instruct's 175 seed instructions; ``most_similar``: how many similar pool
        instructions ``details`` lists."""

        field: str = "instruction"
        threshold: float = 0.7
        seed_tasks: bool = True
        most_similar: int = 10
        #: join the pool only when Alpaca's other filters (the ``format`` validator's instruction
        #: checks, default options) pass too, so the pool is what Alpaca would have kept
        alpaca_filters: bool = True

    def __init__(self, options: DedupValidator.Options | None = None) -> None:
        super().__init__(options)
        if not self.options.field:
            raise ConfigError(f"{_WHERE}.field: name the candidate field to compare")
        if not 0.0 <= self.options.threshold <= 1.0:
            raise ConfigError(f"{_WHERE}.threshold: must be between 0 and 1")
        if self.options.most_similar < 0:
            raise ConfigError(f"{_WHERE}.most_similar: must be 0 or more")
        if importlib.util.find_spec("numpy") is None:
            raise ConfigError(f'{_WHERE}: needs numpy: pip install numpy (or "groundset[local]")')
        self._pool: _Pool | None = None
        self._format: Any = None
        if self.options.alpaca_filters:
            from groundset.validators.format import FormatValidator

            self._format = FormatValidator()

    def _joins(self, text: str) -> bool:
        """Whether a candidate that is no duplicate joins the pool."""
        if self._format is None:
            return True
        return self._format.instruction_checks(text.strip())["ok"] == 1.0

    def _ready_pool(self) -> _Pool:
        """Built on first use, so constructing the validator loads neither numpy nor seeds."""
        if self._pool is None:
            pool = _Pool()
            if self.options.seed_tasks:
                for text in seed_instructions():
                    pool.add(text, rouge_tokens(text))
            self._pool = pool
        return self._pool

    def _text(self, candidate: Candidate) -> str | None:
        """The compared text, or None when there is nothing to compare (no metrics then)."""
        if not candidate.parsed:
            return None
        text = candidate.fields.get(self.options.field)
        return text if isinstance(text, str) and text.strip() else None

    def replay(self, candidates: Sequence[Candidate]) -> None:
        """Rebuild the pool from a run's earlier candidates, in order, exactly as scoring them
        would; only the keep/reject decision is needed, which prunes far more than the maximum."""
        pool = self._ready_pool()
        for candidate in candidates:
            text = self._text(candidate)
            if text is not None:
                words = rouge_tokens(text)
                if self._joins(text) and not pool.exceeds(words, self.options.threshold):
                    pool.add(text, words)

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        pool = self._ready_pool()
        return [self._score_one(pool, candidate) for candidate in candidates]

    def _score_one(self, pool: _Pool, candidate: Candidate) -> dict[str, Any]:
        text = self._text(candidate)
        if text is None:
            return {}
        words = rouge_tokens(text)
        nearest = pool.nearest(words, max(1, self.options.most_similar))
        best = nearest[0][0] if nearest else 0.0
        duplicate = best > self.options.threshold
        similar = [{"text": pool.texts[entry], "rouge_l": score} for score, entry in nearest]
        if not duplicate and self._joins(text):
            pool.add(text, words)
        return {
            "max_rouge_l": best,
            "duplicate": 1.0 if duplicate else 0.0,
            "details": {"most_similar": similar[: self.options.most_similar]},
        }


@hookimpl
def register_validators(register: Callable[[type], object]) -> None:
    register(DedupValidator)
