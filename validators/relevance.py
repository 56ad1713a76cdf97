"""The ``relevance`` validator: does the answer address the question?

``cosine`` embeds question and answer with a sentence-transformers model and takes their cosine
similarity. ``ragas`` adds Ragas' answer-relevancy method: a model backend writes questions that
the answer would answer, and the score is their mean cosine similarity to the real question (an
evasive or off-topic answer yields questions unlike the one asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core import (
    Backend,
    Candidate,
    ConfigError,
    GenerationParams,
    Metric,
    Prompt,
    Register,
    Validator,
    create_backend,
    hookimpl,
)
from groundset.validators.models import DEFAULT_EMBEDDING_MODEL, embedder

__all__ = ["RAGAS_PROMPT", "RelevanceValidator", "register_validators"]

#: Question generation for the ``ragas`` method (after Ragas' answer-relevancy prompt).
RAGAS_PROMPT = (
    "Generate a question for the given answer. Write only the question.\n\n"
    "answer: {answer}\nquestion:"
)
METHODS = ("cosine", "ragas")


@dataclass(frozen=True)
class RelevanceOptions:
    """``model``: sentence-transformers model (default: the packaged all-MiniLM-L6-v2);
    ``method``: ``cosine``, or ``ragas`` to also generate questions with ``backend``."""

    question_field: str = "question"
    answer_field: str = "answer"
    model: str = DEFAULT_EMBEDDING_MODEL
    device: str = "auto"
    method: str = "cosine"
    backend: str = "huggingface"
    backend_options: dict[str, Any] = field(default_factory=dict)
    questions: int = 3
    max_new_tokens: int = 48
    temperature: float = 0.7
    seed: int = 0


class RelevanceValidator(Validator):
    """Embedding similarity of question and answer, and optionally Ragas answer relevancy."""

    validator_id = "relevance"
    cost = "embedding"
    version = "1"
    description = "Does the answer address the question (embedding cosine; Ragas method)"
    Options = RelevanceOptions
    metrics = (
        Metric("cosine", "Cosine similarity of question and answer embeddings.", -1.0, 1.0,
               default_threshold=0.2),
        Metric("ragas_answer_relevancy", "Mean cosine similarity of the real question to "
               "questions a model generated from the answer (method = 'ragas').", -1.0, 1.0),
    )  # fmt: skip

    def __init__(self, options: RelevanceOptions | None = None) -> None:
        super().__init__(options)
        if self.options.method not in METHODS:
            raise ConfigError(
                f"validators.relevance.method: expected one of {', '.join(METHODS)},"
                f" got {self.options.method!r}"
            )
        self._backend: Backend | None = None

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        model = embedder(self.options.model, self.options.device)
        questions = [c.fields.get(self.options.question_field, "") for c in candidates]
        answers = [c.fields.get(self.options.answer_field, "") for c in candidates]
        vectors = model.encode(questions + answers)
        q, a = vectors[: len(candidates)], vectors[len(candidates) :]
        results = [{"cosine": float(x @ y)} for x, y in zip(q, a, strict=True)]
        if self.options.method == "ragas":
            for result, value in zip(results, self._ragas(q, answers), strict=True):
                result["ragas_answer_relevancy"] = value
        return results

    def _ragas(self, question_vectors: Any, answers: list[str]) -> list[float]:
        """Generate ``questions`` questions per answer in one backend batch, then compare."""
        if self._backend is None:
            self._backend = create_backend(self.options.backend, self.options.backend_options)
        n = self.options.questions
        prompts = [Prompt(RAGAS_PROMPT.format(answer=a)) for a in answers for _ in range(n)]
        params = GenerationParams(temperature=self.options.temperature, top_p=1.0,
                                  max_new_tokens=self.options.max_new_tokens,
                                  seed=self.options.seed, stop=("\n",))  # fmt: skip
        texts = [
            g.text.strip() if not g.error else "" for g in self._backend.generate(prompts, params)
        ]
        generated = embedder(self.options.model, self.options.device).encode(texts)
        return [
            float((generated[i * n : (i + 1) * n] @ question_vectors[i]).mean())
            for i in range(len(answers))
        ]


@hookimpl
def register_validators(register: Register) -> None:
    register(RelevanceValidator)
