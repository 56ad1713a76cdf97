"""The ``judge`` validator: a language model grades groundedness and relevance, through any
registered backend (a local model, watsonx, an OpenAI-compatible server).

The rubric asks for two 1-5 ratings in a fixed format; they are mapped onto [0, 1]. A reply
that does not contain both ratings is recorded as unparsed (``parsed = 0``) with whatever rating
it did contain, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core import (
    Backend,
    Candidate,
    Metric,
    Prompt,
    Register,
    Validator,
    hookimpl,
)
from groundset.validators.llm_calls import judge_backend, judge_params

__all__ = ["RUBRIC", "JudgeValidator", "parse_judgement", "register_validators"]

RUBRIC = """You are grading a question and answer that were written from a document.

Document:
{document}

Question: {question}
Answer: {answer}

Rate the answer on two criteria, each with a whole number from 1 to 5.
Groundedness: 5 means every statement in the answer is supported by the document; 3 means some \
statements are supported and some are not; 1 means the answer is unsupported by or contradicts \
the document.
Relevance: 5 means the answer directly and completely answers the question; 3 means it answers \
only part of it; 1 means it does not answer the question.
Reply in exactly this format and nothing else:
Groundedness: <1-5>
Relevance: <1-5>"""

_RATING = r"\s*(?:\*\*)?\s*[:=\-]?\s*(?:\*\*)?\s*([1-5](?:\.\d+)?)(?:\s*/\s*5)?"
_PATTERNS = {
    "groundedness": re.compile(r"grounded(?:ness)?" + _RATING, re.I),
    "relevance": re.compile(r"relevan(?:ce|t)" + _RATING, re.I),
}


def parse_judgement(text: str) -> dict[str, float]:
    """Ratings found in a judge's reply, scaled from 1-5 to 0-1, plus ``parsed``."""
    result: dict[str, float] = {}
    for metric, pattern in _PATTERNS.items():
        match = pattern.search(text)
        if match:
            result[metric] = (min(max(float(match.group(1)), 1.0), 5.0) - 1.0) / 4.0
    result["parsed"] = 1.0 if len(result) == len(_PATTERNS) else 0.0
    return result


@dataclass(frozen=True)
class JudgeOptions:
    """``backend`` and ``backend_options``: the judging model; ``rubric``: a prompt with
    ``{document}``, ``{question}`` and ``{answer}`` (default: :data:`RUBRIC`); ``cache``: keep
    every reply in the response cache (``cache_path``, or the default file), so scoring the same
    candidates again with the same judge makes no call."""

    backend: str = "huggingface"
    backend_options: dict[str, Any] = field(default_factory=dict)
    rubric: str = RUBRIC
    question_field: str = "question"
    answer_field: str = "answer"
    max_document_chars: int = 6000
    max_new_tokens: int = 24
    temperature: float = 0.0
    seed: int = 0
    cache: bool = True
    cache_path: str = ""


class JudgeValidator(Validator):
    """LLM-as-judge: groundedness and relevance on a 1-5 rubric, scaled to [0, 1]."""

    validator_id = "judge"
    cost = "llm"
    version = "1"
    description = "A language model rates groundedness and relevance (any backend)"
    Options = JudgeOptions
    operational_options = ("cache", "cache_path")
    metrics = (
        Metric("groundedness", "Judge's groundedness rating, 1-5 mapped to 0-1.",
               default_threshold=0.75),
        Metric("relevance", "Judge's relevance rating, 1-5 mapped to 0-1."),
        Metric("parsed", "1 when the reply contained both ratings, else 0."),
    )  # fmt: skip

    def __init__(self, options: JudgeOptions | None = None) -> None:
        super().__init__(options)
        self._backend: Backend | None = None

    def _prompt(self, candidate: Candidate) -> Prompt:
        text = self.options.rubric.format(
            document=candidate.document.text[: self.options.max_document_chars],
            question=candidate.fields.get(self.options.question_field, ""),
            answer=candidate.fields.get(self.options.answer_field, ""),
        )
        return Prompt(text, messages=({"role": "user", "content": text},))

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        if self._backend is None:
            self._backend = judge_backend(self.options)
        params = judge_params(self.options, self.options.max_new_tokens)
        replies = self._backend.generate([self._prompt(c) for c in candidates], params)
        return [parse_judgement("" if r.error else r.text) for r in replies]


@hookimpl
def register_validators(register: Register) -> None:
    register(JudgeValidator)
