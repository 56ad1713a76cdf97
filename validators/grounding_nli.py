"""The ``grounding_nli`` validator: is the answer entailed by the document?

Document-level, as MiniCheck and AlignScore check long documents: the document is cut into
chunks of whole sentences (``validators.chunks``), each claim of the answer is checked against
every chunk, and a claim counts as supported by its best chunk. Sentences that state nothing
about the document (abstentions, offers of help, framing) are set aside and recorded rather
than checked (``validators.claims``).

The model (``groundset-nli``, docs/nli-model.md) was trained on sentence-level NLI and then on
document-level claims, where "not supported" is mostly learned as neutral rather than as
contradiction; so the gate is P(entailment) alone, not P(e) - P(c). The candidate's value is
the average of its least supported claim and the mean over its claims (``min+mean``): one
unsupported claim pulls a short answer under the threshold, while one paraphrase the model
misses does not sink a five-sentence summary.

These defaults were chosen on the dev splits of ``../shared/data/grounding`` (news summaries,
dialogue responses, QA claims, science, Wikipedia) by balanced accuracy averaged over domains,
among the settings with which no dev source lost more than a point, and no corpus within a
source more than two, against the previous model and settings
(``python -m training.grounding.select``): chunks of 64 estimated tokens, claims only,
``entailment`` over ``min+mean``, threshold 0.38. Held-out figures per source and domain are in
docs/nli-model.md (``python -m training.grounding.held_out``).

A claim that states a number or a month the document does not (``check_numbers``, on by
default) counts as unsupported whatever the model says: the model let 42% of copied sentences
with a figure moved nearby pass, and 56-62% with a month moved, and whether a number is in the
document is a fact, not a judgement (``groundset.validators.numbers``).

The hypothesis is the answer alone by default: prepending the question made a prototype much
worse at telling grounded from hallucinated answers (AUROC 0.88 vs 0.55), because the question's
words are always "supported" and dilute the claim.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from groundset.core import Candidate, ConfigError, Document, Metric, Register, Validator, hookimpl
from groundset.validators.chunks import document_chunks
from groundset.validators.claims import answer_claims
from groundset.validators.models import pick_device
from groundset.validators.nli import DEFAULT_NLI_MODEL, nli_model
from groundset.validators.numbers import check_numbers
from groundset.validators.sentences import split_claims, split_sentences

__all__ = ["GroundingNliValidator", "document_windows", "register_validators"]

HYPOTHESES = ("answer", "question_answer")
WINDOWS = ("chunks", "sentences")
AGGREGATES = ("min", "mean", "min+mean")
#: ``entailment``'s default threshold, chosen on dev with the default settings
DEFAULT_THRESHOLD = 0.38


@dataclass(frozen=True)
class GroundingNliOptions:
    """``model``: ``groundset-nli`` (packaged), an NLI model folder, or a hub id;
    ``hypothesis``: ``answer`` or ``question_answer``; ``windows``: ``chunks`` of whole sentences
    up to ``chunk_tokens`` estimated tokens, each starting ``chunk_overlap`` sentences before the
    last ended, or ``sentences`` (with ``window_sentences`` > 1, also runs of that many);
    ``claims_only``: sentences that state nothing about the document (abstentions, offers of
    help, framing) are set aside and recorded, and source lead-ins ("Based on the passages, ")
    cut; ``aggregate``: how claim scores combine (``min``, ``mean``, ``min+mean``, their
    average); ``check_numbers``: a claim stating a number or month that the document does not
    state is unsupported (entailment 0, score -1); ``max_claims``: claims checked at most (0:
    all; the rest are counted in ``unchecked``)."""

    model: str = DEFAULT_NLI_MODEL
    device: str = "auto"
    question_field: str = "question"
    answer_field: str = "answer"
    hypothesis: str = "answer"
    windows: str = "chunks"
    chunk_tokens: int = 64
    chunk_overlap: int = 1
    window_sentences: int = 1
    claims_only: bool = True
    aggregate: str = "min+mean"
    check_numbers: bool = True
    max_claims: int = 0
    batch_size: int = 32


@functools.lru_cache(maxsize=4096)
def _windows(text: str, size: int) -> tuple[str, ...]:
    sentences = split_sentences(text)
    windows = list(sentences)
    if size > 1 and len(sentences) > 1:
        last = max(len(sentences) - size + 1, 1)
        windows += [" ".join(sentences[i : i + size]) for i in range(last)]
    return tuple(dict.fromkeys(windows))


def document_text(document: Document) -> str:
    """The text the answer is checked against: the title too, when the text does not start
    with it."""
    text = document.text
    if document.title and not text.startswith(document.title):
        text = f"{document.title}\n\n{text}"
    return text


def document_windows(document: Document, size: int) -> tuple[str, ...]:
    """Every sentence, and every run of ``size`` sentences when ``size`` > 1; computed once per
    document (and cached: the same document serves many candidates)."""
    return _windows(document_text(document), size)


class GroundingNliValidator(Validator):
    """Entailment of each answer claim by its best document window (NLI cross-encoder)."""

    validator_id = "grounding_nli"
    cost = "cross-encoder"
    version = "5"
    description = "Answer entailed by the document: each claim against its best document chunk"
    Options = GroundingNliOptions
    metrics = (
        Metric("entailment", "The highest entailment probability of each answer claim over "
               "document chunks, combined over claims as `aggregate` says (by default the "
               "average of the least supported claim and the mean over claims); 0 for a claim "
               "stating a number or month the document does not, and for an answer with no "
               "claim to check.", 0.0, 1.0, default_threshold=DEFAULT_THRESHOLD),
        Metric("contradiction", "Most contradicted claim: max over answer claims of the "
               "contradiction probability at the claim's best window.", 0.0, 1.0,
               higher_is_better=False),
        Metric("score", "P(entailment) - P(contradiction) of each answer claim at its best "
               "document chunk, combined over claims as `aggregate` says; -1 for a claim "
               "stating a number or month the document does not, and for an answer with no "
               "claim to check. The previous model's gate (>= 0 with aggregate = \"min\"); "
               "the present model learned 'not supported' as neutral, so it sits near 0 on "
               "unsupported claims.", -1.0, 1.0),
        Metric("numbers_found", "Share of the numbers and months the answer states that the "
               "document states too (1 when it states none; hedged numbers such as 'about 30' "
               "are not checked; absent with check_numbers off). Those not found are in "
               "score_details.", 0.0, 1.0),
        Metric("unchecked", "Share of the answer's claims left unchecked because of "
               "max_claims (0 when every claim was checked; how many is in score_details).",
               0.0, 1.0, higher_is_better=False),
    )  # fmt: skip

    def __init__(self, options: GroundingNliOptions | None = None) -> None:
        super().__init__(options)
        choices = {"hypothesis": HYPOTHESES, "windows": WINDOWS, "aggregate": AGGREGATES}
        for name, allowed in choices.items():
            if getattr(self.options, name) not in allowed:
                raise ConfigError(
                    f"validators.grounding_nli.{name}: expected one of {', '.join(allowed)},"
                    f" got {getattr(self.options, name)!r}"
                )
        for name in ("window_sentences", "chunk_tokens"):
            if getattr(self.options, name) < 1:
                raise ConfigError(f"validators.grounding_nli.{name}: must be at least 1")
        for name in ("chunk_overlap", "max_claims"):
            if getattr(self.options, name) < 0:
                raise ConfigError(f"validators.grounding_nli.{name}: must be 0 or more")

    def _claims(self, candidate: Candidate) -> tuple[list[str], list[dict[str, str]], int]:
        """The claims to check; the sentences set aside, with why; and how many claims
        ``max_claims`` left unchecked."""
        answer = candidate.fields.get(self.options.answer_field, "")
        aside: list[dict[str, str]] = []
        if self.options.claims_only:
            claims, set_aside = answer_claims(answer)
            aside = [{"sentence": c.sentence, "why": c.reason or ""} for c in set_aside]
        else:
            claims = split_claims(answer)
        limit = self.options.max_claims
        if limit and len(claims) > limit:
            return claims[:limit], aside, len(claims) - limit
        return claims, aside, 0

    def _windows(self, document: Document) -> tuple[str, ...]:
        if self.options.windows == "sentences":
            return document_windows(document, self.options.window_sentences)
        text = document_text(document)
        return document_chunks(text, self.options.chunk_tokens, self.options.chunk_overlap)

    def _hypotheses(self, candidate: Candidate, claims: list[str]) -> list[str]:
        if self.options.hypothesis == "question_answer":
            question = candidate.fields.get(self.options.question_field, "")
            return [f"{question} {claim}" for claim in claims]
        return claims

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        model = nli_model(self.options.model, pick_device(self.options.device))
        plan = []
        pairs: list[tuple[str, str]] = []
        for candidate in candidates:
            claims, aside, unchecked = self._claims(candidate)
            windows = self._windows(candidate.document)
            numbers = self._numbers(candidate, claims)
            plan.append(_Plan(claims, windows, len(pairs), numbers, aside, unchecked))
            pairs.extend((w, h) for h in self._hypotheses(candidate, claims) for w in windows)
        probs = model.probabilities(pairs, self.options.batch_size)
        return [_aggregate(probs, entry, self.options.aggregate) for entry in plan]

    def _numbers(self, candidate: Candidate, claims: list[str]) -> list[NumberCheck] | None:
        """Per claim: how many numbers and months it states, and those the document does not."""
        if not self.options.check_numbers:
            return None
        document = document_text(candidate.document)
        return [check_numbers(claim, document) for claim in claims]


NumberCheck = tuple[int, list[str]]


@dataclass(frozen=True)
class _Plan:
    """One candidate's share of the batch's pairs: its claims against its windows, from
    ``start``."""

    claims: list[str]
    windows: tuple[str, ...]
    start: int
    numbers: list[NumberCheck] | None
    aside: list[dict[str, str]]
    unchecked: int


def _combine(values: Any, how: str) -> float:
    """Claim scores as one: the least supported (``min``), the average (``mean``), or the
    average of the two."""
    if how == "min":
        return float(values.min())
    if how == "mean":
        return float(values.mean())
    return float((values.min() + values.mean()) / 2)


def _aggregate(probs: Any, plan: _Plan, how: str = "min") -> dict[str, Any]:
    total = len(plan.claims) + plan.unchecked
    out: dict[str, Any] = {"unchecked": plan.unchecked / total if total else 0.0}
    details: dict[str, Any] = {}
    if plan.aside:
        details["set_aside"] = plan.aside
    if plan.unchecked:
        details["unchecked_claims"] = plan.unchecked
    claims, windows = len(plan.claims), len(plan.windows)
    if plan.numbers is not None:
        stated = sum(n for n, _ in plan.numbers)
        missing = [text for _, texts in plan.numbers for text in texts]
        out["numbers_found"] = 1.0 if stated == 0 else 1.0 - len(missing) / stated
        if missing:
            details["numbers_not_found"] = missing
    if claims == 0 or windows == 0:
        details["no_claims"] = True  # nothing about the document to check: not grounded
        return {"entailment": 0.0, "contradiction": 0.0, "score": -1.0, **out, **_as(details)}
    grid = probs[plan.start : plan.start + claims * windows].reshape(claims, windows, 2)
    support = grid[:, :, 0] - grid[:, :, 1]
    best = support.argmax(axis=1)
    rows = range(claims)
    decided = grid[:, :, 0].argmax(axis=1)  # the chunk that decides each claim's entailment
    entailment = grid[rows, decided, 0]
    claim_score = support[rows, best].copy()
    if plan.numbers is not None:  # a claim stating a number the document lacks is unsupported
        invented = [bool(texts) for _, texts in plan.numbers]
        entailment[invented] = 0.0
        claim_score[invented] = -1.0
    # the evidence a reviewer checks: each claim, the chunk that decided its entailment (the
    # default gate), and its scores
    details["claims"] = [
        {
            "claim": text,
            "window": plan.windows[int(decided[i])],
            "entailment": round(float(entailment[i]), 4),
            "score": round(float(claim_score[i]), 4),
        }
        for i, text in enumerate(plan.claims)
    ]
    return {
        "entailment": _combine(entailment, how),
        "contradiction": float(grid[rows, best, 1].max()),
        "score": _combine(claim_score, how),
        **out,
        **_as(details),
    }


def _as(details: dict[str, Any]) -> dict[str, Any]:
    return {"details": details} if details else {}


@hookimpl
def register_validators(register: Register) -> None:
    register(GroundingNliValidator)
