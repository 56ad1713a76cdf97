"""The ``one_question`` strategy: one question/answer pair per prompt, about one sentence of the
document picked at random."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundset.core import (
    Document,
    Generation,
    ParsedCandidate,
    PlannedPrompt,
    Prompt,
    Strategy,
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PAIR = re.compile(r"\[question\]:(.*?)\[answer\]:(.*)", re.DOTALL)


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? followed by whitespace."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


class OneQuestion(Strategy):
    """Asks for one question that a chosen sentence of the document answers."""

    strategy_id = "one_question"
    fields = ("question", "answer")
    description = "One question/answer pair about a randomly chosen sentence of the document."

    @dataclass(frozen=True)
    class Options:
        """``instruction``: the text that opens every prompt."""

        instruction: str = (
            "Write one question that the sentence below answers, and the answer, using only "
            "the document. Reply as:\n[question]: ...\n[answer]: ..."
        )

    def plan(
        self, documents: Sequence[Document], samples: int, rng: random.Random
    ) -> list[PlannedPrompt]:
        planned = []
        for document in documents:
            sentences = split_sentences(document.text) or [document.text]
            for _ in range(samples):
                sentence = rng.choice(sentences)
                text = (
                    f"{self.options.instruction}\n\n[sentence]: {sentence}\n\n"
                    f"[document]: {document.text}\n\n"
                )
                planned.append(PlannedPrompt(document=document, prompt=Prompt(text=text)))
        return planned

    def stop_sequences(self) -> tuple[str, ...]:
        return ("\n[document]:",)

    def parse(self, generation: Generation) -> list[ParsedCandidate]:
        text = generation.text
        if generation.error is not None:
            return [
                ParsedCandidate(fields={}, raw=text, error=f"backend error: {generation.error}")
            ]
        match = _PAIR.search(text)
        if match is None:
            return [ParsedCandidate(fields={}, raw=text, error="no [question]: ... [answer]: ...")]
        question = " ".join(match.group(1).split())
        answer = " ".join(match.group(2).split("\n\n")[0].split())
        if not question or not answer:
            return [ParsedCandidate(fields={}, raw=text, error="empty question or answer")]
        return [ParsedCandidate(fields={"question": question, "answer": answer}, raw=text)]
