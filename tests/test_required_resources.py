"""The fixtures for what a checkout alone lacks (conftest.py): a missing resource skips its test
with a reason naming it, and fails it with the same reason under GROUNDSET_REQUIRE_ALL_TESTS=1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REQUIRE_ALL_TESTS = "GROUNDSET_REQUIRE_ALL_TESTS"
MISSING = "data/no-such-file-the-tests-ask-for.jsonl"


def outcome(monkeypatch: pytest.MonkeyPatch, require_all: bool, ask) -> tuple[type, str]:
    """What asking for a resource raises, with the variable set or not: (exception, message)."""
    if require_all:
        monkeypatch.setenv(REQUIRE_ALL_TESTS, "1")
    else:
        monkeypatch.delenv(REQUIRE_ALL_TESTS, raising=False)
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as raised:
        ask()
    return raised.type, raised.value.msg


def test_a_missing_shared_file_skips_naming_it_and_fails_with_the_same_reason(
    monkeypatch, requires_shared
):
    skipped = outcome(monkeypatch, False, lambda: requires_shared(MISSING))
    failed = outcome(monkeypatch, True, lambda: requires_shared(MISSING))
    assert skipped[0] is pytest.skip.Exception and failed[0] is pytest.fail.Exception
    assert skipped[1] == failed[1]
    assert skipped[1].startswith(f"needs ../shared/{MISSING} (the project's shared folder")
    assert "place it beside the checkout" in skipped[1]


def test_missing_chromium_skips_naming_how_to_install_it_and_fails_with_the_same_reason(
    monkeypatch, tmp_path, requires_chromium
):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no chromium on PATH
    skipped = outcome(monkeypatch, False, requires_chromium)
    failed = outcome(monkeypatch, True, requires_chromium)
    assert skipped[0] is pytest.skip.Exception and failed[0] is pytest.fail.Exception
    assert skipped[1] == failed[1]
    assert skipped[1].startswith("needs Chromium")
    assert "apt-get install chromium" in skipped[1]


def test_the_variable_must_be_1(monkeypatch, requires_shared):
    monkeypatch.setenv(REQUIRE_ALL_TESTS, "0")
    with pytest.raises(pytest.skip.Exception):
        requires_shared(MISSING)


def test_present_resources_give_their_paths(
    monkeypatch, tmp_path, requires_shared, requires_chromium
):
    monkeypatch.setenv(REQUIRE_ALL_TESTS, "1")
    conftest = sys.modules[requires_shared.__module__]
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / MISSING).write_text("{}\n", encoding="utf-8")
    assert requires_shared(MISSING) == tmp_path / MISSING
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n", encoding="utf-8")
    browser.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert Path(requires_chromium()) == browser


def test_ci_sets_the_variable_for_its_test_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text().splitlines()
    first_pytest = next(i for i, line in enumerate(ci) if "pytest" in line)
    assert f"export {REQUIRE_ALL_TESTS}=1" in ci[:first_pytest]
