"""The ``grounding_embedding`` validator: is every answer sentence close to some document
sentence? Each answer sentence takes its best cosine similarity over the document's sentences;
the candidate gets the minimum (its least supported sentence) and the mean.

Embeddings catch answers taken from another document or off topic; they are blind to a changed
number or name inside an otherwise copied sentence (that is what ``grounding_nli`` is for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from groundset.core import Candidate, Metric, Register, Validator, hookimpl
from groundset.validators.models import DEFAULT_EMBEDDING_MODEL, embedder
from groundset.validators.sentences import split_claims, split_sentences

__all__ = ["GroundingEmbeddingValidator", "register_validators"]


@dataclass(frozen=True)
class GroundingEmbeddingOptions:
    """``model``: sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""

    field: str = "answer"
    model: str = DEFAULT_EMBEDDING_MODEL
    device: str = "auto"


class GroundingEmbeddingValidator(Validator):
    """Per answer sentence, the best cosine similarity to a document sentence."""

    validator_id = "grounding_embedding"
    cost = "embedding"
    version = "1"
    description = "Every answer sentence close to some document sentence (embeddings)"
    Options = GroundingEmbeddingOptions
    metrics = (
        Metric("min_similarity", "Least supported answer sentence: min over answer sentences of "
               "the max cosine to any document sentence.", -1.0, 1.0, default_threshold=0.45),
        Metric("mean_similarity", "Mean over answer sentences of the max cosine to any "
               "document sentence.", -1.0, 1.0),
    )  # fmt: skip

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        model = embedder(self.options.model, self.options.device)
        documents = model.document_sentences([c.document for c in candidates], split_sentences)
        claims = [split_claims(c.fields.get(self.options.field, "")) for c in candidates]
        vectors = model.encode([s for group in claims for s in group])
        # one matrix product per document, not per candidate: on a GPU the model is fast
        # enough that small per-candidate products became a tenth of the time
        by_document: dict[int, tuple[Any, list[int]]] = {}  # cached entry -> (vectors, rows)
        spans, start = [], 0
        for group, (_, doc_vectors) in zip(claims, documents, strict=True):
            spans.append((start, start + len(group)))
            if group and len(doc_vectors):
                rows = by_document.setdefault(id(doc_vectors), (doc_vectors, []))[1]
                rows.extend(range(start, start + len(group)))
            start += len(group)
        best_of = np.full(len(vectors), -1.0)
        for doc_vectors, rows in by_document.values():
            best_of[rows] = (vectors[rows] @ doc_vectors.T).max(axis=1)
        results = []
        for group, (begin, end), (_, doc_vectors) in zip(claims, spans, documents, strict=True):
            if not group or len(doc_vectors) == 0:
                results.append({"min_similarity": -1.0, "mean_similarity": -1.0})
                continue
            best = best_of[begin:end]
            results.append({"min_similarity": float(best.min()),
                            "mean_similarity": float(best.mean())})  # fmt: skip
        return results


@hookimpl
def register_validators(register: Register) -> None:
    register(GroundingEmbeddingValidator)
