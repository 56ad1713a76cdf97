"""The records that flow through a run: documents in, prompts out, generations back, candidates
scored. Plain frozen dataclasses so plugins can build and inspect them without the engine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

__all__ = [
    "Candidate",
    "Document",
    "Generation",
    "GenerationParams",
    "Metric",
    "ParsedCandidate",
    "PlannedPrompt",
    "Prompt",
    "content_hash",
    "file_sha256",
]


#: one encoder for every id: ``json.dumps`` with options builds a new encoder on each call, which
#: cost more than the hashing itself (the output is the same)
_ID_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(*parts: Any) -> str:
    """A stable sha256 of JSON-encoded parts: the same content gives the same id in any process
    (Python's ``hash()`` is salted per process, so it never names stored rows)."""
    return hashlib.sha256(_ID_ENCODER.encode(parts).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (exports, model files)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Document:
    """A source text that candidates must be grounded in; its id is the hash of its text."""

    text: str
    title: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def document_id(self) -> str:  # cached: the engine asks for it several times a candidate
        return content_hash("document", self.title, self.text)[:32]


@dataclass(frozen=True)
class Prompt:
    """What a backend completes: ``text`` always, plus chat ``messages`` when the strategy wants
    the model's chat template (a backend without chat support uses ``text``)."""

    text: str
    messages: tuple[dict[str, str], ...] | None = None

    @cached_property
    def prompt_id(self) -> str:
        return content_hash("prompt", self.text, self.messages)[:32]


class PlannedPrompt:
    """One prompt a strategy plans for one document and sample.

    ``prompt`` may be given as a function that renders it: the engine then renders it when its
    batch runs and lets go of it after, so a plan of a million prompts holds a million small
    recipes, not a million rendered prompts (a few GB). Rendering must give the same prompt
    every time."""

    __slots__ = ("_prompt", "document")

    def __init__(self, document: Document, prompt: Prompt | Callable[[], Prompt]) -> None:
        self.document = document
        self._prompt = prompt

    @property
    def prompt(self) -> Prompt:
        prompt = self._prompt
        return prompt if isinstance(prompt, Prompt) else prompt()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlannedPrompt):
            return NotImplemented
        return (self.document, self.prompt) == (other.document, other.prompt)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PlannedPrompt(document={self.document!r}, prompt={self.prompt!r})"


@dataclass(frozen=True)
class GenerationParams:
    """Backend-independent generation settings; each backend maps them onto its own API. The
    defaults are the seed's: sampling at temperature 0.7."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    do_sample: bool = True
    seed: int = 0
    stop: tuple[str, ...] = ()
    #: sample only from the k most likely tokens; ``None`` leaves it to the backend or model
    top_k: int | None = None
    min_new_tokens: int = 0
    #: above 1.0 penalises repeating tokens; ``None`` (or 1.0) means no penalty
    repetition_penalty: float | None = None


@dataclass(frozen=True)
class Generation:
    """A backend's answer to one prompt. ``error`` is set instead of raising when one prompt of a
    batch failed, so the others are still recorded."""

    text: str
    model_id: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    stop_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ParsedCandidate:
    """What a strategy's parser found in a generation: named fields, or the reason it found none.
    ``raw`` is the part of the output the candidate came from."""

    fields: dict[str, str]
    raw: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Candidate:
    """A recorded candidate as validators see it: its fields, its document and its provenance."""

    candidate_id: str
    run_id: str
    work_id: str
    document: Document
    fields: dict[str, str]
    raw_output: str
    parse_error: str | None = None

    @property
    def parsed(self) -> bool:
        return self.parse_error is None


@dataclass(frozen=True)
class Metric:
    """A score a validator declares: its range, which direction is better, and the threshold the
    built-in ``default`` accept policy uses (users choose their own in SQL or a policy)."""

    name: str
    description: str
    low: float = 0.0
    high: float = 1.0
    higher_is_better: bool = True
    default_threshold: float | None = None
