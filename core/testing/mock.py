"""The mock backend (a queue of canned outputs and a call history), the plugin that registers
it, in this process or in another one, a context manager that registers a plugin for a while,
and a throw-away store."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from groundset.core.errors import ConfigError
from groundset.core.hookspecs import hookimpl
from groundset.core.interfaces import Backend
from groundset.core.manager import LoadedPlugins, _collect, get_plugins
from groundset.core.records import Generation, GenerationParams, Prompt, content_hash
from groundset.core.registry import Registry
from groundset.core.store import Store

__all__ = [
    "MAX_DELAY_S",
    "MOCK_BACKEND_PLUGIN",
    "MockBackend",
    "MockBackendPlugin",
    "MockOptions",
    "install_mock_backend",
    "registered_plugin",
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
