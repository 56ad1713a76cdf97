"""The example plugin in docs/example-plugin, installed the way pip leaves it (its package on
sys.path and a dist-info folder with its ``groundset`` entry point), scores a real run, shows in
``groundset plugins``, and matches the tutorial that builds it, block for block."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.manager import get_plugins, reset_plugins
from groundset.core.runner import prepare_run, start_run
from groundset.core.settings import settings_from_config
from groundset.core.store import Store

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "example-plugin"
TUTORIAL = REPO / "docs" / "writing-plugins.md"
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
_BUILD_OUTPUTS = ("__pycache__", "build", "dist")
#: a tagged block: ``<!-- file: PATH -->`` on the line before a fenced code block
FILE_BLOCK = re.compile(r"^<!-- file: (\S+) -->\n(`{3,})[^\n]*\n(.*?)^\2[ \t]*$", re.M | re.S)


@pytest.fixture
def example_plugin(tmp_path, monkeypatch) -> Iterator[str]:
    """Install groundset-example without pip; returns its entry-point name."""
    [(name, module)] = PROJECT["entry-points"]["groundset"].items()
    monkeypatch.syspath_prepend(str(EXAMPLE))
    dist = tmp_path / f"groundset_example-{PROJECT['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PROJECT['name']}\nVersion: {PROJECT['version']}\n"
    )
    (dist / "entry_points.txt").write_text(f"[groundset]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GROUNDSET_LOAD_PLUGINS", name)  # conftest blocks third-party plugins
    reset_plugins()
    yield name
    reset_plugins()
    for loaded in [m for m in sys.modules if m.split(".")[0] == module]:
        del sys.modules[loaded]


def test_the_entry_point_registers_the_validator_backend_and_strategy(example_plugin):
    loaded = get_plugins()
    assert not loaded.failures
    assert loaded.registry.by_plugin(example_plugin) == {
        "backend": ["echo"],
        "strategy": ["one_question"],
        "validator": ["length_ratio"],
    }


@pytest.mark.parametrize("strategy", ["one_question", "grounded_qa"])
def test_the_example_validator_scores_a_real_run(
    example_plugin, tmp_path, seed_documents, strategy
):
    config = {
        "run": {
            "strategy": strategy,
            "backend": "echo",
            "validators": ["format", "length_ratio"],
            "samples_per_document": 2,
            "batch_size": 3,
        },
        "documents": {"path": str(seed_documents)},
        "validators": {"length_ratio": {"field": "answer"}},
    }
    db = tmp_path / "example.duckdb"
    with Store(db) as store:
        summary = start_run(prepare_run(settings_from_config(config)), store)
    assert summary.candidates == 8 and summary.parse_failures == 0
    with Store(db, read_only=True) as store:
        rows = store.query(
            'SELECT c.model_id, c.answer, d.title, d.text, c."length_ratio.ratio",'
            ' c."format.parsed"'
            " FROM candidate_scores c JOIN documents d USING (document_id)"
        ).rows
        metric = store.query(
            "SELECT low, high, higher_is_better, default_threshold, validator_version"
            " FROM metrics WHERE validator = 'length_ratio' AND metric = 'ratio'"
        ).rows
        versions = store.query(
            "SELECT DISTINCT validator_version FROM scores WHERE validator = 'length_ratio'"
        ).rows
    assert metric == [(0.0, 1.0, False, 0.5, "1")]
    assert [v[0].split(":")[0] for v in versions] == ["1"]
    assert len(rows) == 8
    for model_id, answer, title, text, ratio, parsed in rows:
        assert model_id == "echo-1" and parsed == 1.0
        # echo answers with the first sentence of the document (grounded_qa: after its title)
        shown = " ".join(f"{title} {text}".split()) if strategy == "grounded_qa" and title else text
        assert " ".join(shown.split()).startswith(answer)
        words = len(re.findall(r"\w+", answer)) / len(re.findall(r"\w+", text))
        assert ratio == pytest.approx(min(words, 1.0))


def test_the_example_plugin_is_listed_by_groundset_plugins(example_plugin):
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    [row] = [p for p in listing["plugins"] if p["name"] == example_plugin]
    assert row["version"] == PROJECT["version"] and not row["builtin"]
    assert row["hooks"] == ["register_backends", "register_strategies", "register_validators"]
    assert row["registered"] == {
        "backend": ["echo"],
        "strategy": ["one_question"],
        "validator": ["length_ratio"],
    }
    assert listing["failed"] == []
    table = CliRunner().invoke(cli, ["plugins"]).output
    line = next(x for x in table.splitlines() if x.startswith(f"{example_plugin} "))
    assert "installed" in line and "backend: echo; strategy: one_question" in line


def _tutorial_files() -> dict[str, str]:
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = FILE_BLOCK.findall(text)
    assert len(blocks) == text.count("<!-- file: "), "a file tag is not right above a code block"
    found: dict[str, str] = {}
    for path, _, body in blocks:
        assert path not in found, f"{path} is shown twice in the tutorial"
        found[path] = body
    return found


def _example_files() -> set[str]:
    """The example's files, without what tools leave (caches, builds, stores)."""
    found = set()
    for path in EXAMPLE.rglob("*"):
        parts = path.relative_to(EXAMPLE).parts
        left_by_tools = any(
            part.startswith(".") or part.endswith(".egg-info") or part in _BUILD_OUTPUTS
            for part in parts
        )
        if path.is_file() and not left_by_tools and path.suffix not in (".pyc", ".duckdb"):
            found.add("/".join(parts))
    return found


def test_every_file_block_of_the_tutorial_is_the_example_file():
    blocks = _tutorial_files()
    assert blocks, "docs/writing-plugins.md shows no tagged file"
    for path, body in blocks.items():
        file = EXAMPLE / path
        assert file.is_file(), f"the tutorial shows {path}, which docs/example-plugin lacks"
        assert body == file.read_text(encoding="utf-8"), (
            f"docs/writing-plugins.md and docs/example-plugin/{path} differ: update both"
        )


def test_the_tutorial_shows_every_file_of_the_example_but_its_readme():
    missing = _example_files() - set(_tutorial_files()) - {"README.md"}
    assert not missing, f"show these files in docs/writing-plugins.md: {sorted(missing)}"
