"""pytest fixtures for groundset plugin authors, loaded automatically where groundset is
installed (the ``pytest11`` entry point): ``groundset_store``, a throw-away store, and
``groundset_mock_backend``, the mock backend registered for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from groundset.core.manager import LoadedPlugins
from groundset.core.store import Store
from groundset.core.testing import MockBackendPlugin, registered_plugin, temporary_store

__all__ = ["groundset_mock_backend", "groundset_store"]


@pytest.fixture
def groundset_store(tmp_path: Path) -> Iterator[Store]:
    """An open store on a file in the test's temporary folder."""
    with temporary_store(tmp_path) as store:
        yield store


@pytest.fixture
def groundset_mock_backend() -> Iterator[LoadedPlugins]:
    """The ``mock`` backend (canned outputs, a call history) registered for one test."""
    with registered_plugin(MockBackendPlugin(), "groundset-mock-backend") as loaded:
        yield loaded
