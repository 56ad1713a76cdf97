"""Helpers for testing groundset and groundset plugins: a mock backend with a queue of canned
outputs and a call history, a context manager that registers a plugin for a while, a throw-away
store, and contract checks a plugin author runs against their own backend, strategy or
validator (the pytest fixtures are in ``groundset.core.pytest_plugin``)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from groundset.core.errors import ConfigError
from groundset.core.hookspecs import hookimpl
from groundset.core.interfaces import Backend, Strategy, Validator
from groundset.core.manager import LoadedPlugins, _collect, get_plugins
from groundset.core.records import (
    Candidate,
    Document,
    Generation,
    GenerationParams,
    ParsedCandidate,
    Prompt,
    content_hash,
)
from groundset.core.registry import Registry
from groundset.core.store import Store

__all__ = [
    "MockBackend",
    "MockBackendPlugin",
    "MockOptions",
    "check_backend",
    "check_strategy",
    "check_validator",
    "install_mock_backend",
    "registered_plugin",
    "sample_candidates",
    "temporary_store",
]


#: the longest a mock generate() call may be told to take
MAX_DELAY_S = 600.0


@dataclass(frozen=True)
class MockOptions:
    #: outputs returned in turn; when used up the queue starts again
    outputs: tuple[str, ...] = ("[question]: What is it?\n[answer]: It is a test.",)
    #: raise after this many generate() calls (None: never), to test resumption
    fail_after_calls: int | None = None
    #: seconds each generate() call takes, to stand for a model (interrupts, concurrency)
    delay_s: float = 0.0
    #: keep every call's prompts in ``calls``; turn off for long runs (benchmarks), where the
    #: history would hold every rendered prompt
    history: bool = True
    #: "cycle": outputs in turn, in call order; "prompt": the output a hash of the prompt and
    #: the batch's seed picks, so the answer does not depend on which process or call sends it
    #: (engines that run batches in parallel, such as Ray, give the same rows)
    pick: str = "cycle"


class MockBackend(Backend):
    """Answers instantly from a queue of canned outputs and remembers every call."""

    backend_id = "mock"
    description = "Canned outputs for tests; no model"
    Options = MockOptions
    #: they change how fast it answers and what it keeps, not what it answers
    operational_options = ("delay_s", "history")

    def __init__(self, options: MockOptions | None = None) -> None:
        super().__init__(options)
        if not self.options.outputs:
            raise ConfigError("backends.mock.outputs: give at least one output")
        if not 0 <= self.options.delay_s <= MAX_DELAY_S:
            raise ConfigError(
                f"backends.mock.delay_s: expected 0 to {MAX_DELAY_S} seconds,"
                f" got {self.options.delay_s!r}"
            )
        if self.options.pick not in ("cycle", "prompt"):
            raise ConfigError(
                f'backends.mock.pick: expected "cycle" or "prompt", got {self.options.pick!r}'
            )
        self._outputs = itertools.cycle(self.options.outputs)
        self.calls: list[tuple[list[Prompt], GenerationParams]] = []

    @property
    def model_id(self) -> str:
        return "mock-model"

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        limit = self.options.fail_after_calls
        if limit is not None and len(self.calls) >= limit:
            raise RuntimeError(f"mock backend failing after {limit} calls")
        if self.options.delay_s:
            time.sleep(self.options.delay_s)
        self.calls.append((list(prompts) if self.options.history else [], params))
        return [
            Generation(
                text=self._output(p, params),
                model_id=self.model_id,
                input_tokens=len(p.text),
                output_tokens=1,
                latency_s=0.0,
                stop_reason="eos",
            )
            for p in prompts
        ]

    def _output(self, prompt: Prompt, params: GenerationParams) -> str:
        if self.options.pick == "cycle":
            return next(self._outputs)
        outputs = self.options.outputs
        return outputs[int(content_hash("mock", prompt.text, params.seed)[:8], 16) % len(outputs)]


def install_mock_backend(folder: str | Path) -> dict[str, str]:
    """Make the mock backend loadable by another process, as an installed plugin would be: a
    dist-info folder with a ``groundset`` entry point in ``folder``. Returns the environment
    variables to run ``groundset`` with (``PYTHONPATH`` and ``GROUNDSET_LOAD_PLUGINS``)."""
    folder = Path(folder)
    dist = folder / "groundset_mock_backend-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: groundset-mock-backend\nVersion: 0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[groundset]\nmock-backend = groundset.core.testing:MOCK_BACKEND_PLUGIN\n",
        encoding="utf-8",
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "GROUNDSET_LOAD_PLUGINS": "mock-backend"}


@contextlib.contextmanager
def temporary_store(folder: str | Path | None = None) -> Iterator[Store]:
    """An open store on a fresh file, deleted afterwards (unless ``folder`` is given)."""
    with contextlib.ExitStack() as stack:
        root = Path(folder) if folder else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        store = stack.enter_context(Store(root / "groundset-test.duckdb"))
        yield store


class MockBackendPlugin:
    """A plugin object registering :class:`MockBackend`."""

    @hookimpl
    def register_backends(self, register) -> None:  # type: ignore[no-untyped-def]
        register(MockBackend)


#: The plugin object that :func:`install_mock_backend`'s entry point loads.
MOCK_BACKEND_PLUGIN = MockBackendPlugin()


@contextlib.contextmanager
def registered_plugin(
    plugin: object, name: str, loaded: LoadedPlugins | None = None
) -> Iterator[LoadedPlugins]:
    """Register ``plugin`` under ``name`` on the process-wide plugins, and remove it after."""
    loaded = loaded or get_plugins()
    loaded.pm.register(plugin, name=name)
    before = loaded.registry
    try:
        loaded.registry = Registry()
        _collect(loaded)
        yield loaded
    finally:
        loaded.pm.unregister(name=name)
        loaded.registry = before


# --- contract checks a plugin author runs against their own plugin ----------------------------

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
