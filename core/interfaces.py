"""The plugin kinds: backends generate, strategies plan and parse, validators score, loaders read
documents, exporters write datasets. Each is a small class with an id, an ``Options`` dataclass of
defaults, and one batch method: models are fast on batches and slow one at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from groundset.core.options import NoOptions
from groundset.core.records import (
    Candidate,
    Document,
    Generation,
    GenerationParams,
    Metric,
    ParsedCandidate,
    PlannedPrompt,
    Prompt,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["COST_CLASSES", "Backend", "Exporter", "Loader", "Strategy", "Validator"]

#: validator cost classes, cheapest first
COST_CLASSES = ("lexical", "embedding", "cross-encoder", "llm")


class _Plugin:
    """Shared shape: an ``Options`` dataclass and a constructor that receives built options."""

    Options: ClassVar[type] = NoOptions
    description: ClassVar[str] = ""

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()


class Backend(_Plugin):
    """Completes prompts with a model.

    Subclasses set ``backend_id`` and implement :meth:`generate`. Return one :class:`Generation`
    per prompt, in order; report a failure of one prompt in ``Generation.error`` rather than
    raising, and raise only when the whole batch failed.
    """

    backend_id: ClassVar[str]
    #: options holding credentials: left out of the run identity and never recorded
    secret_options: ClassVar[tuple[str, ...]] = ()
    #: options that change how fast, not what, it generates (concurrency, timeouts): changing
    #: them resumes the same run
    operational_options: ClassVar[tuple[str, ...]] = ()
    #: True for a backend that mostly waits on a server: the engine then generates the next
    #: batch while the validators score this one
    overlaps_validation: ClassVar[bool] = False

    @property
    def model_id(self) -> str:
        """The model this backend generates with, recorded on every candidate."""
        return self.backend_id

    def load(self) -> None:
        """Load models or open connections before the first batch, once there is work to do,
        so set-up time is neither counted as generation nor hidden behind a frozen progress bar.
        Must be safe to call more than once."""

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        raise NotImplementedError

    def close(self) -> None:
        """Release models or connections; called once when the run ends."""


class Strategy(_Plugin):
    """Turns documents into prompts (:meth:`plan`) and model outputs into candidates
    (:meth:`parse`). ``fields`` names the fields every parsed candidate has."""

    strategy_id: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()
    #: False for a strategy that makes prompts from examples alone (``[documents]`` optional)
    needs_documents: ClassVar[bool] = True
    #: True for a strategy that plans in rounds from the candidates accepted so far
    #: (:meth:`plan_round`), so a run can go on until ``run.target`` are accepted
    bootstraps: ClassVar[bool] = False

    def plan(
        self, documents: Sequence[Document], samples: int, rng: random.Random
    ) -> list[PlannedPrompt]:
        """``samples`` prompts per document. Use only ``rng`` for randomness: the plan must be
        the same every time the same config runs, or resuming would redo work. A planned prompt
        may hold a function that renders it (drawn choices bound in), so large plans stay small
        until each batch runs: see :class:`PlannedPrompt`."""
        raise NotImplementedError

    def plan_round(
        self, round_index: int, accepted: Sequence[dict[str, str]], rng: random.Random
    ) -> list[PlannedPrompt]:
        """Round ``round_index`` of a bootstrapping strategy: prompts that may use the fields of
        every candidate accepted in earlier rounds, oldest first. Same rules as :meth:`plan`:
        only ``rng``, so a resumed run plans the same round again."""
        raise NotImplementedError

    def stop_sequences(self) -> tuple[str, ...]:
        """Text that ends a completion for this strategy's format (backends cut there)."""
        return ()

    def parse(self, generation: Generation) -> list[ParsedCandidate]:
        """Every candidate in the output; an output with none gives one failed candidate that
        keeps the raw text and the reason."""
        raise NotImplementedError


class Validator(_Plugin):
    """Scores candidates. ``metrics`` declares every score it returns; :meth:`score` returns one
    dict per candidate with a float per metric (a metric may be left out for one candidate).
    Bump ``version`` whenever scores would change: it is recorded beside every score."""

    validator_id: ClassVar[str]
    version: ClassVar[str] = "1"
    #: what scoring costs, for choosing and ordering validators: one of :data:`COST_CLASSES`
    cost: ClassVar[str] = "lexical"
    metrics: ClassVar[tuple[Metric, ...]] = ()
    #: Whether candidates that failed to parse are passed to :meth:`score` too.
    scores_parse_failures: ClassVar[bool] = False
    #: A stateful validator scores each candidate against the run's earlier ones (duplicates).
    #: It sees a run's candidates once each, in generation order: batches in order, each sorted
    #: by candidate id; a resumed run first :meth:`replay`-s what is already recorded.
    stateful: ClassVar[bool] = False
    #: options that change how scores are obtained, not what they are (a cache, a device):
    #: left out of the version recorded beside the scores
    operational_options: ClassVar[tuple[str, ...]] = ()

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        """One dict per candidate: a float per declared metric, and optionally ``"details"``,
        a JSON-able dict recorded beside the scores (e.g. the nearest duplicates)."""
        raise NotImplementedError

    def replay(self, candidates: Sequence[Candidate]) -> None:
        """Stateful validators: rebuild the state scoring ``candidates`` (recorded earlier, in
        order) would have left, without scoring them again."""


class Loader(_Plugin):
    """Reads documents from a file or folder; errors name the file and line."""

    loader_id: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()

    def load(self, path: Path) -> Iterator[Document]:
        raise NotImplementedError


class Exporter(_Plugin):
    """Writes exported rows (an Arrow table: fields, provenance, scores) to a file."""

    exporter_id: ClassVar[str]
    suffix: ClassVar[str] = ""

    def write(self, table: pa.Table, path: Path) -> None:
        raise NotImplementedError
