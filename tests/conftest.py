"""Shared fixtures: every test gets fresh plugins with no third-party plugin loaded, offline."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from groundset.core.manager import reset_plugins
from groundset.core.testing import MockBackendPlugin, registered_plugin

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch: pytest.MonkeyPatch):
    """Block installed third-party plugins and start from a fresh plugin manager."""
    monkeypatch.setenv("GROUNDSET_LOAD_PLUGINS", "")
    monkeypatch.delenv("GROUNDSET_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("GROUNDSET_STRICT_PLUGINS", raising=False)
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def mock_backend():
    """The mock backend registered as ``mock`` for the duration of a test."""
    with registered_plugin(MockBackendPlugin(), "mock-backend") as loaded:
        yield loaded


@pytest.fixture
def seed_documents() -> Path:
    return REPO / "examples" / "seed-documents.jsonl"


@pytest.fixture
def write_config(tmp_path: Path, seed_documents: Path):
    """Write a TOML config using the mock backend; extra text is appended verbatim."""

    def write(extra: str = "", documents: Path | None = None, name: str = "cfg.toml") -> Path:
        path = tmp_path / name
        path.write_text(
            f"""
[run]
name = "test"
backend = "mock"
validators = ["format", "overlap"]
batch_size = 2
samples_per_document = 1

[documents]
path = "{documents or seed_documents}"
{extra}
""",
            encoding="utf-8",
        )
        return path

    return write
