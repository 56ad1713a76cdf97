"""Shared fixtures: every test gets fresh plugins with no third-party plugin loaded, offline.

Some tests need what a checkout alone lacks: files of the project's shared folder (``../shared``,
beside the checkout, not in the repository) or a Chromium browser. They ask through the
``requires_shared`` and ``requires_chromium`` fixtures, the one place that decides: when the
resource is there they get its path; when it is not, the test is skipped with a reason that
names what is missing and how to get it. With ``GROUNDSET_REQUIRE_ALL_TESTS=1`` in the
environment (``.ci/run`` sets it) the same reason fails the test instead, so CI runs every one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from groundset.core.manager import reset_plugins
from groundset.core.testing import MockBackendPlugin, registered_plugin

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_response_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory):
    """Each test's LLM validators keep their replies in a cache of their own, never in the
    user's ~/.cache."""
    folder = tmp_path_factory.mktemp("response-cache")
    monkeypatch.setenv("GROUNDSET_RESPONSE_CACHE", str(folder / "responses.duckdb"))


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


# --- the report tests' store: two runs of the mock backend (tests/report_helpers.py)


@pytest.fixture
def store_db(tmp_path: Path, tmp_path_factory, seed_documents: Path, mock_backend):
    from tests.report_helpers import report_store

    yield from report_store(tmp_path, tmp_path_factory, seed_documents)


@pytest.fixture
def html_report(store_db: Path, tmp_path: Path) -> tuple[Path, Path]:
    from tests.report_helpers import report_page

    return report_page(store_db, tmp_path)


# --- what a checkout alone lacks: a skip when absent, a failure under GROUNDSET_REQUIRE_ALL_TESTS

#: set to 1 to make a test whose resource is missing fail instead of skipping (CI sets it)
REQUIRE_ALL_TESTS = "GROUNDSET_REQUIRE_ALL_TESTS"
#: the project's shared folder: beside the checkout, not part of the repository
SHARED = REPO.parent / "shared"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_INSTALL = "apt-get install chromium (.ci/run installs it)"


def missing_resource(reason: str) -> NoReturn:
    """Skip the calling test for ``reason``; fail it with the same reason under
    ``GROUNDSET_REQUIRE_ALL_TESTS=1``."""
    if os.environ.get(REQUIRE_ALL_TESTS) == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def shared_path(relative: str) -> Path:
    """``../shared/<relative>``, or a skip (a failure under the variable) when it is absent."""
    path = SHARED / relative
    if not path.exists():
        missing_resource(
            f"needs ../shared/{relative} (the project's shared folder, which is not in the"
            f" repository: place it beside the checkout, as {SHARED})"
        )
    return path


def chromium_path() -> str:
    """The Chromium executable on PATH, or a skip (a failure under the variable)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    missing_resource(
        f"needs Chromium (`chromium` or `chromium-browser` on PATH): {CHROMIUM_INSTALL}"
    )


@pytest.fixture
def requires_shared() -> Callable[[str], Path]:
    """``requires_shared("data/x.jsonl")``: that file of ``../shared``, or the test skips."""
    return shared_path


@pytest.fixture
def requires_chromium() -> Callable[[], str]:
    """``requires_chromium()``: the Chromium executable, or the test skips."""
    return chromium_path
