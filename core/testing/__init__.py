"""Helpers for testing groundset and groundset plugins: a mock backend with a queue of canned
outputs and a call history, a context manager that registers a plugin for a while, a throw-away
store, and contract checks a plugin author runs against their own backend, strategy or
validator (the pytest fixtures are in ``groundset.core.pytest_plugin``).

``groundset.core.testing.fake_servers`` holds in-process fake OpenAI-compatible and IBM
watsonx.ai servers for testing remote backends; it is not imported here, so importing this
package (which the pytest plugin does in every test session) starts no server machinery.
"""

from __future__ import annotations

from groundset.core.testing.contracts import (
    check_backend,
    check_strategy,
    check_validator,
    sample_candidates,
)
from groundset.core.testing.mock import (
    MAX_DELAY_S,
    MOCK_BACKEND_PLUGIN,
    MockBackend,
    MockBackendPlugin,
    MockOptions,
    install_mock_backend,
    registered_plugin,
    temporary_store,
)

__all__ = [
    "MAX_DELAY_S",
    "MOCK_BACKEND_PLUGIN",
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
