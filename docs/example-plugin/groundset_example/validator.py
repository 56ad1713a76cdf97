"""The ``length_ratio`` validator: how long an answer is next to its document, in words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundset.core import Candidate, Metric, Validator

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words are runs of letters, digits and underscores, in any script."""
    return len(_WORD.findall(text))


class AnswerLengthRatio(Validator):
    """Answer words / document words, capped at 1. An answer close to the document's length
    mostly copies it; a grounded answer is usually a sentence or two."""

    validator_id = "length_ratio"
    version = "1"
    description = "Answer length relative to its document, in words."
    metrics = (
        Metric(
            "ratio",
            "Answer words / document words, capped at 1 (0 for an empty document).",
            low=0.0,
            high=1.0,
            higher_is_better=False,
            default_threshold=0.5,
        ),
    )

    @dataclass(frozen=True)
    class Options:
        """``field``: the candidate field to measure."""

        field: str = "answer"

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        results = []
        for candidate in candidates:
            answer = count_words(candidate.fields.get(self.options.field, ""))
            document = count_words(candidate.document.text)
            ratio = min(answer / document, 1.0) if document else 0.0
            results.append({"ratio": ratio})
        return results
