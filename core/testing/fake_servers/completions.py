"""What the fake servers answer: the default responder, a word count standing for a tokenizer,
word limits and stop sequences applied the way a decoder would, the request fields both APIs
share, and the OpenAI-shaped response bodies (watsonx.ai's chat endpoint answers in the same
shape)."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

__all__ = [
    "Responder",
    "StopReason",
    "as_int",
    "as_stops",
    "chat_completion",
    "count_tokens",
    "default_responder",
    "finish_reason",
    "message_text",
    "openai_body",
    "openai_limits",
    "shape_output",
]

Responder = Callable[[str, dict[str, Any]], str]
"""``responder(prompt_text, request_body) -> completion_text``."""

StopReason = Literal["eos", "length", "stop"]

_WORD = re.compile(r"\S+")
_VOCABULARY = (
    "the", "document", "states", "that", "each", "claim", "is", "supported", "by", "cited",
    "passage", "while", "results", "depend", "on", "careful", "grounding", "of", "every",
    "answer", "in", "source", "text", "so", "readers", "can", "verify", "facts", "quickly",
    "and", "trust", "questions",
)  # fmt: skip


def count_tokens(text: str) -> int:
    """Count whitespace-separated words: the fakes' stand-in for a real tokenizer."""
    return len(text.split())


def default_responder(prompt: str, body: dict[str, Any]) -> str:
    """Return a short sentence that depends only on the prompt.

    Deterministic so tests can compare outputs across runs and backends; prompt-dependent so
    a test notices when two prompts were swapped or a prompt was not sent at all.
    """
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    words = [_VOCABULARY[b % len(_VOCABULARY)] for b in digest[:8]]
    return f"Answer {digest.hex()[:8]}: {' '.join(words)}."


def shape_output(
    text: str, limit: int | None, stops: Sequence[str], include_stop: bool
) -> tuple[str, StopReason]:
    """Apply a word limit and stop sequences the way a decoder would: whichever comes first."""
    words = list(_WORD.finditer(text))
    cut = words[limit - 1].end() if limit is not None and 0 < limit < len(words) else None
    if limit is not None and limit <= 0 and words:
        cut = 0
    first: tuple[int, str] | None = None
    for stop in stops:
        pos = text.find(stop) if stop else -1
        if pos >= 0 and (first is None or pos < first[0]):
            first = (pos, stop)
    if first is not None and (cut is None or first[0] < cut):
        pos, stop = first
        return (text[: pos + len(stop)] if include_stop else text[:pos]), "stop"
    if cut is not None:
        return text[:cut], "length"
    return text, "eos"


def as_int(value: Any) -> int | None:
    """``value`` as an int, or ``None`` when it is missing, a bool or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_stops(value: Any) -> list[str]:
    """A ``stop`` field (one string or a list) as a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []


def openai_limits(body: dict[str, Any]) -> tuple[int | None, list[str]]:
    """The word limit (``max_tokens``, else ``max_completion_tokens``) and stop sequences of an
    OpenAI-style request body, which watsonx.ai's chat endpoint takes as well."""
    limit = as_int(body.get("max_tokens"))
    if limit is None:
        limit = as_int(body.get("max_completion_tokens"))
    return limit, as_stops(body.get("stop"))


def message_text(messages: Any) -> str:
    """Concatenate chat message contents (plain strings or OpenAI-style text parts)."""
    out: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return "\n".join(out)


def finish_reason(reason: StopReason) -> str:
    """OpenAI's ``finish_reason``: ``length`` when the limit cut the text, else ``stop``."""
    return "length" if reason == "length" else "stop"


def openai_body(
    kind: str, model: str, choices: list[dict[str, Any]], prompt_tokens: int, output_tokens: int
) -> dict[str, Any]:
    """An OpenAI response of ``kind`` (``text_completion`` or ``chat.completion``) with usage."""
    prefix = "cmpl" if kind == "text_completion" else "chatcmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
        },
    }


def chat_completion(
    model: str,
    text: str,
    reason: StopReason,
    prompt_tokens: int,
    output_tokens: int,
    **choice: Any,
) -> dict[str, Any]:
    """A ``chat.completion`` body with one assistant message; ``choice`` adds to its choice."""
    answer = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        **choice,
        "finish_reason": finish_reason(reason),
    }
    return openai_body("chat.completion", model, [answer], prompt_tokens, output_tokens)
