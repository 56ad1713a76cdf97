"""The dedup validator against an exact all-pairs reference of Alpaca's ROUGE-L filter.

The reference scores every new instruction against the whole pool, like Alpaca, with rouge_score's
tokenizer and an LCS dynamic programme vectorised over the pool (rouge_score's own pure-Python
table would take minutes for a few thousand instructions); rouge_score itself then checks the
reference on every query's best pair and on random pairs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from groundset.core import Candidate, ConfigError, Document
from groundset.validators.dedup import DedupValidator, register_validators, seed_instructions

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

THRESHOLD = 0.7
TOP = 10
#: the pure ROUGE-L rule, as the reference loops compute it (no format filters on the pool)
PLAIN = DedupValidator.Options(alpaca_filters=False)
DOC = Document("dedup test")
_WORD_TEXT = (
    "time person year way day thing man world life hand part child eye woman place work week case "
    "point government company number group problem fact have do say get make go know take see "
    "come think look want give use find tell ask seem feel try leave call good new first last "
    "long great little own other old right big high different small large next early young "
    "important few public bad same able to of in for on with at by from up about into over after "
    "the and a that it not he as you this but his they her she or an will my one all would there "
    "their what so out if who which me when can like no just him people your some could them than "
    "then now only its also back two how our well even because any these most us water river "
    "story poem list email recipe city music summary reason table"
)
WORDS = _WORD_TEXT.split()
EDGE_CASES = (
    "",
    "   ",
    "?!? ... ---",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 of the caf\u00e9",
    "\u212aeep the \u212aids busy with a list of games",  # Kelvin signs lowercase to "k"
    "\u0130stanbul or Ankara: which city is larger?",
    "the the the the cat the the",
    "the the the cat",
    "Add 12 and 30, then 12 and 30 again.",
    "Write a poem.",
    "write a POEM!!",
)


def _edit(words: list[str], edits: int, rng: random.Random) -> list[str]:
    """Substitutions, deletions, swaps and moves: planted near-duplicates."""
    words = list(words)
    for _ in range(edits):
        op, at = rng.randrange(4), rng.randrange(len(words))
        if op == 0:
            words[at] = rng.choice(WORDS)
        elif op == 1 and len(words) > 2:
            del words[at]
        elif op == 2 and at + 1 < len(words):
            words[at], words[at + 1] = words[at + 1], words[at]
        else:
            words.insert(rng.randrange(len(words) + 1), words.pop(at))
    return words


def _variation(source: str, rng: random.Random) -> str:
    """Edit levels spread around the 0.7 boundary: 5-50% of the words touched."""
    words = source.split()
    edits = max(1, round(len(words) * rng.uniform(0.05, 0.5)))
    return " ".join(_edit(words, edits, rng))


def make_instructions(count: int, seeds: Sequence[str]) -> list[str]:
    """Seed variations, unrelated word-list sentences, variations of earlier ones, edge cases."""
    rng = random.Random(20240611)
    out: list[str] = [seeds[0], seeds[1].upper() + "!!!"]
    long_text = " ".join(rng.choice(WORDS) for _ in range(70))
    out += [long_text, _variation(long_text, rng)]
    while len(out) < count:
        kind = rng.random()
        if kind < 0.3:
            out.append(_variation(rng.choice(seeds), rng))
        elif kind < 0.6:
            out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))))
        else:
            out.append(_variation(rng.choice(out), rng))
    for i, text in enumerate(EDGE_CASES):
        out.insert(40 + 97 * i, text)
    return out


def candidates_for(texts: Sequence[str], field: str = "instruction") -> list[Candidate]:
    return [
        Candidate(f"c{i:05d}", "test", f"w{i}", DOC, {field: text}, text)
        for i, text in enumerate(texts)
    ]


def _lcs_all(query: Sequence[int], pool: np.ndarray) -> np.ndarray:
    """LCS length of ``query`` with every padded row of ``pool`` (pad -1 never matches): the DP
    row recurrence c[j] = max(c[j-1], p[j], p[j-1] + match) is a running max, so each query token
    updates all rows at once."""
    previous = np.zeros((pool.shape[0], pool.shape[1] + 1), dtype=np.int16)
    for token in query:
        local = np.maximum(previous[:, 1:], previous[:, :-1] + (pool == token))
        current = np.zeros_like(previous)
        np.maximum.accumulate(local, axis=1, out=current[:, 1:])
        previous = current
    return previous[:, -1]


class PaddedPool:
    """Pool token ids in padded matrices, one per power-of-two width, so the DP's cost follows
    each row's length rather than the longest instruction's."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buckets: dict[int, tuple[np.ndarray, list[int]]] = {}
        self.lengths: list[int] = []

    def add(self, ids: Sequence[int]) -> None:
        width = max(8, 1 << max(len(ids) - 1, 0).bit_length())
        if width not in self.buckets:
            self.buckets[width] = (np.full((self.capacity, width), -1, dtype=np.int32), [])
        matrix, rows = self.buckets[width]
        matrix[len(rows), : len(ids)] = ids
        rows.append(len(self.lengths))
        self.lengths.append(len(ids))

    def lcs(self, query: Sequence[int]) -> np.ndarray:
        out = np.zeros(len(self.lengths), dtype=np.int64)
        for matrix, rows in self.buckets.values():
            out[rows] = _lcs_all(query, matrix[: len(rows)])
        return out


@dataclass
class Reference:
    """Per instruction: the max F and the top-k (score, pool index), or None for empty texts;
    (new, pool text, F) pairs for rouge_score to confirm; the final pool."""

    results: list[tuple[float, list[tuple[float, int]]] | None]
    checks: list[tuple[str, str, float]]
    pool: list[str]


def all_pairs_reference(texts: Sequence[str], seeds: Sequence[str]) -> Reference:
    """Alpaca's loop: each instruction against the whole pool; kept ones (max <= 0.7) join it.
    F is computed as rouge_score does, ``2 * p * r / (p + r)``, in the same float operations."""
    tokenize = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)._tokenizer.tokenize
    vocabulary: dict[str, int] = {}
    padded, pool = PaddedPool(len(seeds) + len(texts)), []
    rng = random.Random(7)

    def add(text: str, ids: list[int]) -> None:
        padded.add(ids)
        pool.append(text)

    def ids_of(text: str) -> list[int]:
        return [vocabulary.setdefault(token, len(vocabulary)) for token in tokenize(text)]

    for seed in seeds:
        add(seed, ids_of(seed))
    results: list[tuple[float, list[tuple[float, int]]] | None] = []
    checks: list[tuple[str, str, float]] = []
    for text in texts:
        if not text.strip():
            results.append(None)
            continue
        ids, size = ids_of(text), len(pool)
        scores = np.zeros(size)
        if ids and size:
            lcs, lengths = padded.lcs(ids), np.maximum(padded.lengths, 1)
            precision, recall = lcs / lengths, lcs / len(ids)
            with np.errstate(invalid="ignore", divide="ignore"):
                scores = np.where(lcs > 0, 2 * precision * recall / (precision + recall), 0.0)
        order = np.lexsort((np.arange(size), -scores))[:TOP]
        top = [(float(scores[i]), int(i)) for i in order if scores[i] > 0]
        best = float(scores.max()) if size else 0.0
        for i in [int(order[0]), rng.randrange(size), rng.randrange(size)] if size else []:
            checks.append((text, pool[i], float(scores[i])))
        results.append((best, top))
        if best <= THRESHOLD:
            add(text, ids)
    return Reference(results, checks, pool)


@pytest.fixture(scope="module")
def seeds() -> list[str]:
    return seed_instructions()


@pytest.fixture(scope="module")
def texts(seeds: list[str]) -> list[str]:
    return make_instructions(2200, seeds)


@pytest.fixture(scope="module")
def reference(texts: list[str], seeds: list[str]) -> Reference:
    return all_pairs_reference(texts, seeds)


def score_in_batches(validator: DedupValidator, cands: Sequence[Candidate], sizes: Sequence[int]):
    """Score in batches of varying size (cycling through ``sizes``), in order."""
    rows, start, turn = [], 0, 0
    while start < len(cands):
        size = sizes[turn % len(sizes)]
        rows.extend(validator.score(cands[start : start + size]))
        start, turn = start + size, turn + 1
    return rows


def test_reference_agrees_with_rouge_score(reference: Reference) -> None:
    """Every query's best pair and two random pairs, through rouge_score's public API."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    assert len(reference.checks) > 6000
    for new, old, value in reference.checks:
        assert scorer.score(new, old)["rougeL"].fmeasure == value, (new, old)


def test_matches_the_all_pairs_rule_exactly(texts: list[str], reference: Reference) -> None:
    rows = score_in_batches(DedupValidator(PLAIN), candidates_for(texts), [1, 7, 64, 250, 3])
    compared = [(row, ref) for row, ref in zip(rows, reference.results, strict=True) if ref]
    assert all(row == {} for row, ref in zip(rows, reference.results, strict=True) if not ref)
    agree = sum((row["max_rouge_l"] > THRESHOLD) == (ref[0] > THRESHOLD) for row, ref in compared)
    print(f"dedup: decisions agree on {agree}/{len(compared)} instructions")
    assert agree == len(compared)
    assert [row["max_rouge_l"] for row, _ in compared] == [ref[0] for _, ref in compared]
    assert [row["duplicate"] for row, _ in compared] == [float(r[0] > 0.7) for _, r in compared]
    kept = sum(ref[0] <= THRESHOLD for _, ref in compared)
    assert 0.2 * len(compared) < kept < 0.9 * len(compared)  # both sides of the boundary
    near = sum(0.6 < ref[0] <= 0.8 for _, ref in compared)
    assert near > 200  # plenty of instructions near the boundary


def test_most_similar_is_the_exact_top_k(texts: list[str], reference: Reference) -> None:
    rows = DedupValidator(PLAIN).score(candidates_for(texts))
    for row, ref in zip(rows, reference.results, strict=True):
        if ref:
            expected = [{"text": reference.pool[i], "rouge_l": s} for s, i in ref[1]]
            assert row["details"]["most_similar"] == expected


def test_replay_then_score_equals_scoring_in_one_go(texts: list[str]) -> None:
    cands = candidates_for(texts)
    whole = DedupValidator(PLAIN).score(cands)
    for split in (1, 1300):
        validator = DedupValidator(PLAIN)
        validator.replay(cands[:split])
        assert score_in_batches(validator, cands[split:], [32, 5]) == whole[split:]


def test_unparsed_or_empty_candidates_get_no_metrics_and_stay_out_of_the_pool() -> None:
    text = "Write a haiku about the sea at night."
    unparsed = Candidate("c0", "r", "w0", DOC, {"instruction": text}, text, parse_error="no JSON")
    missing = Candidate("c1", "r", "w1", DOC, {"other": text}, text)
    blank = Candidate("c2", "r", "w2", DOC, {"instruction": "  "}, "  ")
    validator = DedupValidator(PLAIN)
    assert validator.score([unparsed, missing, blank]) == [{}, {}, {}]
    validator.replay([unparsed])
    (row,) = validator.score(candidates_for([text]))
    assert row["duplicate"] == 0.0
    assert row["max_rouge_l"] < 0.7


def test_field_option_compares_another_field() -> None:
    questions = [
        "What year did the first moon landing happen?",
        "When did the moon landing happen?",
    ]
    validator = DedupValidator(
        DedupValidator.Options(alpaca_filters=False, field="question", seed_tasks=False)
    )
    rows = validator.score(candidates_for(questions, field="question"))
    assert rows[0] == {"max_rouge_l": 0.0, "duplicate": 0.0, "details": {"most_similar": []}}
    assert rows[1]["max_rouge_l"] == pytest.approx(2 * 5 / (8 + 6))
    assert rows[1]["details"]["most_similar"][0]["text"] == questions[0]
    assert DedupValidator(DedupValidator.Options(alpaca_filters=False, seed_tasks=False)).score(
        candidates_for(questions, field="question")
    ) == [{}, {}]


def test_seed_tasks_are_in_the_pool(seeds: list[str]) -> None:
    assert len(seeds) == 175
    (row,) = DedupValidator(PLAIN).score(candidates_for([seeds[42]]))
    assert row["max_rouge_l"] == 1.0
    assert row["duplicate"] == 1.0
    assert row["details"]["most_similar"][0] == {"text": seeds[42], "rouge_l": 1.0}
    assert len(row["details"]["most_similar"]) == TOP
    (alone,) = DedupValidator(
        DedupValidator.Options(alpaca_filters=False, seed_tasks=False, most_similar=0)
    ).score(candidates_for([seeds[42]]))
    assert alone == {"max_rouge_l": 0.0, "duplicate": 0.0, "details": {"most_similar": []}}


def test_threshold_option_decides_who_joins_the_pool() -> None:
    texts = ["write a short poem about the sea", "write a short poem about the moon", "the moon"]
    strict = DedupValidator(
        DedupValidator.Options(alpaca_filters=False, threshold=0.5, seed_tasks=False)
    )
    assert [r["duplicate"] for r in strict.score(candidates_for(texts))] == [0.0, 1.0, 0.0]
    loose = DedupValidator(
        DedupValidator.Options(alpaca_filters=False, threshold=0.9, seed_tasks=False)
    )
    rows = loose.score(candidates_for(texts))
    assert [r["duplicate"] for r in rows] == [0.0, 0.0, 0.0]
    assert rows[2]["max_rouge_l"] == pytest.approx(2 * 2 / (7 + 2))  # against the kept "moon"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"most_similar": -1}, "most_similar"),
        ({"field": ""}, "field"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DedupValidator(DedupValidator.Options(alpaca_filters=False, **options))


def test_registers_itself() -> None:
    registered: list[type] = []
    register_validators(registered.append)
    assert registered == [DedupValidator]
    assert DedupValidator.validator_id == "dedup"
    assert DedupValidator.stateful is True
    (metric,) = [m for m in DedupValidator.metrics if m.default_threshold is not None]
    assert (metric.name, metric.default_threshold, metric.higher_is_better) == (
        "max_rouge_l",
        0.7,
        False,
    )


def test_with_alpacas_filters_only_tasks_alpaca_keeps_join_the_pool():
    drawn = "Draw a simple diagram of the water cycle for children."
    again = "Draw a simple diagram of the water cycle for kids."
    gated = DedupValidator(DedupValidator.Options(seed_tasks=False))
    first, second = gated.score(candidates_for([drawn, again]))
    assert first["max_rouge_l"] == 0.0 and second["max_rouge_l"] == 0.0  # drawn was not kept
    plain = DedupValidator(DedupValidator.Options(seed_tasks=False, alpaca_filters=False))
    _, duplicate = plain.score(candidates_for([drawn, again]))
    assert duplicate["max_rouge_l"] > THRESHOLD and duplicate["duplicate"] == 1.0
