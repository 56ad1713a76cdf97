"""Helpers for testing groundset and groundset plugins: a mock backend with a queue of canned
outputs and a call history, and a context manager that registers a plugin for a while."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from groundset.core.hookspecs import hookimpl
from groundset.core.interfaces import Backend
from groundset.core.manager import LoadedPlugins, _collect, get_plugins
from groundset.core.records import Generation, GenerationParams, Prompt
from groundset.core.registry import Registry

__all__ = ["MockBackend", "MockBackendPlugin", "MockOptions", "registered_plugin"]


@dataclass(frozen=True)
class MockOptions:
    #: outputs returned in turn; when used up the queue starts again
    outputs: tuple[str, ...] = ("[question]: What is it?\n[answer]: It is a test.",)
    #: raise after this many generate() calls (None: never), to test resumption
    fail_after_calls: int | None = None


class MockBackend(Backend):
    """Answers instantly from a queue of canned outputs and remembers every call."""

    backend_id = "mock"
    description = "Canned outputs for tests; no model"
    Options = MockOptions

    def __init__(self, options: MockOptions | None = None) -> None:
        super().__init__(options)
        self._outputs = itertools.cycle(self.options.outputs)
        self.calls: list[tuple[list[Prompt], GenerationParams]] = []

    @property
    def model_id(self) -> str:
        return "mock-model"

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        limit = self.options.fail_after_calls
        if limit is not None and len(self.calls) >= limit:
            raise RuntimeError(f"mock backend failing after {limit} calls")
        self.calls.append((list(prompts), params))
        return [
            Generation(
                text=next(self._outputs),
                model_id=self.model_id,
                input_tokens=len(p.text),
                output_tokens=1,
                latency_s=0.0,
                stop_reason="eos",
            )
            for p in prompts
        ]


class MockBackendPlugin:
    """A plugin object registering :class:`MockBackend`."""

    @hookimpl
    def register_backends(self, register) -> None:  # type: ignore[no-untyped-def]
        register(MockBackend)


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
