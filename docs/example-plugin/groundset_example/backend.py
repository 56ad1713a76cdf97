"""The ``echo`` backend: a deterministic stand-in for a model. It answers every prompt with the
first sentence of the last document in it, as a ``[question]: ... [answer]: ...`` pair."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundset.core import Backend, Generation, GenerationParams, Prompt

_MARKER = "[document]:"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class EchoBackend(Backend):
    """Needs no model: useful to try a strategy and validators end to end in a second."""

    backend_id = "echo"
    description = "Answers with the first sentence of the last document in the prompt."

    @dataclass(frozen=True)
    class Options:
        """``question``: the question every answer is paired with."""

        question: str = "What does the document say first?"

    @property
    def model_id(self) -> str:
        return "echo-1"

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        return [self._answer(prompt) for prompt in prompts]

    def _answer(self, prompt: Prompt) -> Generation:
        start = prompt.text.rfind(_MARKER)
        if start < 0:
            # one bad prompt: report it on its generation, keep the rest of the batch
            return Generation(text="", model_id=self.model_id, error="no [document]: in prompt")
        document = prompt.text[start + len(_MARKER) :].split("\n\n")[0]
        sentence = " ".join(_SENTENCE_END.split(document.strip())[0].split())
        text = f"[question]: {self.options.question}\n[answer]: {sentence}"
        return Generation(
            text=text,
            model_id=self.model_id,
            input_tokens=len(prompt.text.split()),
            output_tokens=len(text.split()),
            latency_s=0.0,
            stop_reason="eos",
        )
