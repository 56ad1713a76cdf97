"""Contract checks a plugin author runs against their own backend, strategy or validator, and
the sample inputs they use: ordinary, unicode, empty and unparsed ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

from groundset.core.interfaces import Backend, Strategy, Validator
from groundset.core.records import (
    Candidate,
    Document,
    Generation,
    GenerationParams,
    ParsedCandidate,
    Prompt,
)

__all__ = ["check_backend", "check_strategy", "check_validator", "sample_candidates"]

_UNICODE = "Zürich, 東京 and São Paulo: naïve café ✓ — “quoted” text"
_SAMPLE_DOCUMENTS = (
    Document(
        "IBM acquired Red Hat in 2019 for $34 billion. The deal closed on July 9, 2019.",
        title="Red Hat",
    ),
    Document(f"{_UNICODE}. The second sentence is plain ASCII.", title="Unicode"),
    Document("Short.", title=None),
)


def sample_candidates(fields: Sequence[str] = ("question", "answer")) -> list[Candidate]:
    """Candidates to check a validator with: ordinary, unicode, empty-field and unparsed ones."""
    values = [
        ("How much did IBM pay for Red Hat?", "IBM paid $34 billion for Red Hat in 2019."),
        (f"What does {_UNICODE} say?", f"It says {_UNICODE}."),
        ("Why?", ""),
    ]
    found = []
    for index, (document, texts) in enumerate(zip(_SAMPLE_DOCUMENTS, values, strict=True)):
        row = {name: texts[i % len(texts)] for i, name in enumerate(fields)}
        found.append(Candidate(f"c{index}", "r", f"w{index}", document, row, "raw"))
    found.append(
        Candidate("c9", "r", "w9", _SAMPLE_DOCUMENTS[0], {}, "no markers", "no [answer] marker")
    )
    return found


def check_validator(validator: Validator, candidates: Sequence[Candidate] | None = None) -> None:
    """Assert ``validator`` keeps its contract: an empty batch gives no results, every batch
    gives one dict per candidate whatever its size, only declared metrics come back, each a
    finite number in its declared range, and a batch scores the same as its candidates one by
    one (unless the validator is stateful). Messages name the validator."""
    who = f"validator {getattr(validator, 'validator_id', type(validator).__name__)!r}"
    assert validator.metrics, f"{who} declares no metrics"
    declared = {m.name: m for m in validator.metrics}
    for metric in validator.metrics:
        assert metric.low <= metric.high, f"{who}: metric {metric.name!r} has low > high"
        if metric.default_threshold is not None:
            assert metric.low <= metric.default_threshold <= metric.high, (
                f"{who}: the default threshold of {metric.name!r} is outside its range"
            )
    given = list(candidates) if candidates is not None else sample_candidates()
    chosen = [c for c in given if c.parsed or validator.scores_parse_failures]
    assert validator.score([]) == [], f"{who} returned results for an empty batch"
    results = validator.score(chosen)
    assert isinstance(results, list) and len(results) == len(chosen), (
        f"{who} returned {len(results)} results for {len(chosen)} candidates"
    )
    for candidate, result in zip(chosen, results, strict=True):
        assert isinstance(result, dict), f"{who} returned {type(result).__name__}, not a dict"
        for name, value in result.items():
            if name == "details":
                assert isinstance(value, dict), f"{who}: details must be a dict"
                continue
            assert name in declared, f"{who} returned undeclared metric {name!r}"
            assert isinstance(value, int | float) and not isinstance(value, bool), (
                f"{who}: {name!r} is {value!r}, not a number"
            )
            assert math.isfinite(value), f"{who}: {name!r} is {value!r}"
            metric = declared[name]
            assert metric.low <= value <= metric.high, (
                f"{who}: {name!r} = {value} for candidate {candidate.candidate_id} is outside"
                f" its declared range [{metric.low}, {metric.high}]"
            )
    if not validator.stateful:
        one_by_one = [validator.score([c])[0] for c in chosen]
        assert _rounded(one_by_one) == _rounded(results), (
            f"{who} scores a candidate differently alone than in a batch"
        )


def _rounded(results: list[dict]) -> list[dict]:
    return [
        {k: round(v, 6) for k, v in r.items() if k != "details" and isinstance(v, int | float)}
        for r in results
    ]


def check_backend(backend: Backend, prompts: Sequence[Prompt] | None = None) -> None:
    """Assert ``backend`` keeps its contract: no generations for no prompts, one per prompt in
    order for batches of 1 and several (chat and unicode prompts included), each with text or
    an error, and the backend's ``model_id``."""
    who = f"backend {getattr(backend, 'backend_id', type(backend).__name__)!r}"
    given = list(prompts) if prompts is not None else [
        Prompt("Say hello."),
        Prompt(f"Repeat: {_UNICODE}"),
        Prompt("Answer briefly.", ({"role": "user", "content": "Answer briefly."},)),
    ]  # fmt: skip
    params = GenerationParams(max_new_tokens=8, seed=1)
    backend.load()
    try:
        assert backend.generate([], params) == [], f"{who} returned generations for no prompts"
        for batch in ([given[0]], given):
            generations = backend.generate(batch, params)
            assert isinstance(generations, list) and len(generations) == len(batch), (
                f"{who} returned {len(generations)} generations for {len(batch)} prompts"
            )
            for generation in generations:
                assert isinstance(generation, Generation), f"{who} returned a non-Generation"
                assert isinstance(generation.text, str), f"{who}: Generation.text must be a str"
                assert generation.model_id, f"{who}: Generation.model_id is empty"
    finally:
        backend.close()


def check_strategy(strategy: Strategy, documents: Sequence[Document] | None = None) -> None:
    """Assert ``strategy`` keeps its contract: the same rng seed plans the same prompts, each
    planned for one of the documents; parsing any text (empty, unicode, junk) gives at least one
    candidate, with every declared field when it parsed and a reason when it did not."""
    import random

    who = f"strategy {getattr(strategy, 'strategy_id', type(strategy).__name__)!r}"
    docs = list(documents) if documents is not None else list(_SAMPLE_DOCUMENTS)
    first = strategy.plan(docs, 2, random.Random(7))
    again = strategy.plan(docs, 2, random.Random(7))
    assert [p.prompt for p in first] == [p.prompt for p in again], (
        f"{who} plans differently from the same rng: plans must use only the rng given"
    )
    if strategy.needs_documents:
        assert first, f"{who} planned no prompts for {len(docs)} documents"
        texts = {d.text for d in docs}
        assert all(p.document.text in texts for p in first), f"{who} planned for an unknown doc"
    for text in ("", "   ", _UNICODE, "[question]: x\n[answer]: y", "no structure at all"):
        parsed = strategy.parse(Generation(text, "check-model", stop_reason="stop"))
        assert parsed, f"{who} returned no candidate for {text!r}: return one with an error"
        for candidate in parsed:
            assert isinstance(candidate, ParsedCandidate), f"{who} returned a non-ParsedCandidate"
            if candidate.ok:
                missing = set(strategy.fields) - set(candidate.fields)
                assert not missing, f"{who}: parsed candidate lacks fields {sorted(missing)}"
            else:
                assert candidate.error, f"{who}: a failed candidate needs a reason"
