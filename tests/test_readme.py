"""The README opens with the two set-up commands, and CI runs exactly the second one."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)][:2]


def test_readme_starts_with_the_run_and_test_commands():
    text = (REPO / "README.md").read_text()
    assert re.findall(r"^```(\w*)$", text, re.M)[:4] == ["bash", "", "bash", ""]
    run, test = _readme_commands()
    assert run.endswith("groundset run examples/seed-qa.toml")
    assert test.endswith("python -m pytest")
    assert "\n" not in run and "\n" not in test


def test_ci_runs_the_readme_test_command():
    _, test = _readme_commands()
    ci = (REPO / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_the_example_config_points_at_shipped_documents():
    assert (REPO / "examples" / "seed-qa.toml").exists()
    assert (REPO / "examples" / "seed-documents.jsonl").read_text().count("\n") == 4
