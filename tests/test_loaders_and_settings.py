"""Document loaders and config handling: what users get wrong, named precisely."""

from __future__ import annotations

import pytest

from groundset.core import ConfigError, InputError
from groundset.core.manager import load_plugins
from groundset.core.runner import load_documents
from groundset.core.settings import apply_override, settings_from_config
from groundset.plugins.loaders import JsonlLoader, JsonlOptions, TextLoader


def test_jsonl_loader_keeps_title_and_metadata(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": " Some text. ", "name": "T", "lang": "en"}\n\n', encoding="utf-8")
    [doc] = JsonlLoader(JsonlOptions(text_field="body", title_field="name")).load(path)
    assert (doc.text, doc.title, doc.metadata) == ("Some text.", "T", {"lang": "en"})
    assert doc.source == f"{path}:1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{nope", ":2: invalid JSON"),
        ("[1, 2]", ":2: expected a JSON object, got list"),
        ('{"title": "no text"}', ":2: missing or empty text field 'text'"),
    ],
)
def test_jsonl_loader_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{path}{message}"):
        list(JsonlLoader().load(path))


def test_text_loader_reads_a_folder_in_name_order(tmp_path):
    (tmp_path / "b.md").write_text("# Second\nbody", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First document.", encoding="utf-8")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    docs = list(TextLoader().load(tmp_path))
    assert [d.text for d in docs] == ["First document.", "# Second\nbody"]


def test_documents_loader_is_chosen_by_suffix_and_limit_applies(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n{"text": "c"}\n')
    config = {"documents": {"path": "docs.jsonl"}, "run": {"limit_documents": 2}}
    settings = settings_from_config(config, "c.toml", tmp_path)
    docs = load_documents(settings, load_plugins(entry_points=False))
    assert [d.text for d in docs] == ["a", "b"]


def test_unknown_documents_suffix_asks_for_a_format(tmp_path):
    (tmp_path / "docs.csv").write_text("text\nhello\n")
    settings = settings_from_config({"documents": {"path": "docs.csv"}}, "c.toml", tmp_path)
    with pytest.raises(ConfigError, match=r"no loader for .*docs.csv: set \[documents\] format"):
        load_documents(settings, load_plugins(entry_points=False))


def test_an_empty_folder_says_so_and_upper_case_suffixes_count(tmp_path):
    (tmp_path / "docs").mkdir()
    settings = settings_from_config({"documents": {"path": "docs"}}, "c.toml", tmp_path)
    with pytest.raises(InputError, match=r"docs: an empty folder, no documents found"):
        load_documents(settings, load_plugins(entry_points=False))
    (tmp_path / "docs" / "NOTES.MD").write_text("# Notes\nThe museum opened in 1994.")
    docs = load_documents(settings, load_plugins(entry_points=False))
    assert [d.text for d in docs] == ["# Notes\nThe museum opened in 1994."]


def test_set_overrides_parse_toml_values_and_plain_words():
    config: dict = {}
    apply_override(config, "run.batch_size=8")
    apply_override(config, "run.validators=['format']")
    apply_override(config, "backends.huggingface.model=/models/my model")
    assert config == {
        "run": {"batch_size": 8, "validators": ["format"]},
        "backends": {"huggingface": {"model": "/models/my model"}},
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override(config, "run.batch_size")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"run": {"batch_size": 0}}, "run.batch_size must be 1 to 100,000"),
        ({"generation": {"top_p": 1.5}}, "generation.top_p must be in"),
        ({"run": {"samples_per_document": True}}, "expected an integer, got true"),
        ({"backends": {"huggingface": 3}}, "[backends] must hold one table per plugin"),
        ({"run": "fast"}, "run must be a table"),
    ],
)
def test_bad_settings_are_named(config, message):
    with pytest.raises(ConfigError) as error:
        settings_from_config(config, "my.toml")
    assert message in str(error.value) and str(error.value).startswith("my.toml")
