"""`groundset plugin new` writes a plugin package whose own tests pass and that groundset finds
through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli


@pytest.mark.parametrize("kind", ["validator", "backend", "strategy"])
def test_a_new_plugin_passes_its_own_tests(tmp_path, kind):
    result = CliRunner().invoke(cli, ["plugin", "new", f"my_{kind}", "--kind", kind,
                                      "--dir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = tmp_path / f"groundset-my-{kind}"
    assert (folder / "pyproject.toml").read_text().count("[project.entry-points.groundset]") == 1
    env = {**os.environ, "PYTHONPATH": str(folder)}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        capture_output=True, text=True, env=env, cwd=folder, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_a_new_plugin_registers_through_its_entry_point(tmp_path, monkeypatch):
    """Installed as pip would leave it (the package plus a dist-info with the entry point)."""
    from groundset.core.manager import load_plugins

    CliRunner().invoke(cli, ["plugin", "new", "shiny", "--kind", "validator", "--dir",
                             str(tmp_path)])  # fmt: skip
    folder = tmp_path / "groundset-shiny"
    dist = folder / "groundset_shiny-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: groundset-shiny\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[groundset]\nshiny = groundset_shiny\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("GROUNDSET_LOAD_PLUGINS")
    try:
        loaded = load_plugins()
        entry = loaded.registry.get("validator", "shiny")
        assert entry.plugin == "shiny" and entry.cls.cost == "lexical"
    finally:
        sys.modules.pop("groundset_shiny", None)


def test_bad_names_and_existing_folders_are_one_line_errors(tmp_path):
    bad = CliRunner().invoke(cli, ["plugin", "new", "My-Plugin", "--kind", "validator",
                                   "--dir", str(tmp_path)])  # fmt: skip
    assert bad.exit_code == 2 and "lower-case letters" in bad.output
    CliRunner().invoke(cli, ["plugin", "new", "twice", "--kind", "backend", "--dir", str(tmp_path)])
    again = CliRunner().invoke(
        cli, ["plugin", "new", "twice", "--kind", "backend", "--dir", str(tmp_path)]
    )
    assert again.exit_code == 2 and "already exists" in again.output
