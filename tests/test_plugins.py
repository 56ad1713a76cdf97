"""Plugin discovery through entry points, isolation of broken plugins, and the env switches."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core import PluginError
from groundset.core.cli import cli
from groundset.core.manager import DEFAULT_PLUGINS, load_plugins

GOOD_PLUGIN = """
from groundset.core import Metric, Validator, hookimpl

class Shouty(Validator):
    validator_id = "shouty"
    metrics = (Metric("caps", "share of upper-case letters"),)

    def score(self, candidates):
        out = []
        for c in candidates:
            letters = [ch for ch in c.fields.get("answer", "") if ch.isalpha()]
            out.append({"caps": sum(ch.isupper() for ch in letters) / max(len(letters), 1)})
        return out

@hookimpl
def register_validators(register):
    register(Shouty)
"""


def install_fake_plugin(root: Path, name: str, source: str, version: str = "1.2.3") -> None:
    """A module plus a dist-info folder with a ``groundset`` entry point, as pip would leave."""
    module = f"groundset_{name}"
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    dist = root / f"groundset_{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: groundset-{name}\nVersion: {version}\n"
    )
    (dist / "entry_points.txt").write_text(f"[groundset]\n{name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GROUNDSET_LOAD_PLUGINS")
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("groundset_")]:
        del sys.modules[name]


def test_entry_point_plugin_is_discovered_with_its_version(site):
    install_fake_plugin(site, "shouty", GOOD_PLUGIN)
    loaded = load_plugins()
    assert loaded.registry.get("validator", "shouty").plugin == "shouty"
    info = {i.name: i for i in loaded.info()}["shouty"]
    assert (info.version, info.builtin, info.hooks) == ("1.2.3", False, ("register_validators",))
    assert not loaded.failures


def test_broken_plugin_is_skipped_with_warning_and_the_rest_work(site):
    install_fake_plugin(site, "broken", "raise ImportError('needs libfoo')\n")
    install_fake_plugin(site, "shouty", GOOD_PLUGIN)
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "plugin 'broken' failed during import: ImportError: needs libfoo" in result.output
    assert "validator: shouty" in result.output
    assert "backend: huggingface" in result.output


def test_misspelt_hook_is_named_and_unregistered(site):
    source = GOOD_PLUGIN.replace("def register_validators", "def register_validator")
    install_fake_plugin(site, "typo", source)
    loaded = load_plugins()
    [failure] = loaded.failures
    assert failure.plugin == "typo" and "'register_validator'" in failure.error
    assert "did you mean 'register_validators'" in failure.error
    assert not loaded.pm.has_plugin("typo")


def test_error_inside_registration_is_pinned_on_its_plugin(site):
    install_fake_plugin(site, "clash", GOOD_PLUGIN.replace('"shouty"', '"overlap"'))
    loaded = load_plugins()
    [failure] = loaded.failures
    assert failure.plugin == "clash" and failure.stage == "registration"
    assert "already registered by plugin 'groundset.validators.overlap'" in failure.error
    assert loaded.registry.get("validator", "overlap").plugin == "groundset.validators.overlap"


def test_registering_something_that_is_not_a_plugin_class_is_an_error(site):
    install_fake_plugin(site, "odd", GOOD_PLUGIN.replace("register(Shouty)", "register(dict)"))
    [failure] = load_plugins().failures
    assert "not a subclass of groundset.core.Validator" in failure.error


def test_strict_mode_raises_on_a_broken_plugin(site, monkeypatch):
    install_fake_plugin(site, "broken", "raise ImportError('needs libfoo')\n")
    monkeypatch.setenv("GROUNDSET_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken"):
        load_plugins()


def test_load_plugins_env_selects_third_party_plugins(site, monkeypatch):
    install_fake_plugin(site, "shouty", GOOD_PLUGIN)
    install_fake_plugin(site, "other", GOOD_PLUGIN.replace('"shouty"', '"other"'))
    monkeypatch.setenv("GROUNDSET_LOAD_PLUGINS", "groundset-other")
    loaded = load_plugins()
    assert "other" in loaded.registry.ids("validator")
    assert "shouty" not in loaded.registry.ids("validator")
    monkeypatch.setenv("GROUNDSET_LOAD_PLUGINS", "")
    assert {"other", "shouty"}.isdisjoint(load_plugins().registry.ids("validator"))


def test_disabled_plugins_env_blocks_builtins_and_third_party(site, monkeypatch):
    install_fake_plugin(site, "shouty", GOOD_PLUGIN)
    monkeypatch.setenv("GROUNDSET_DISABLED_PLUGINS", "shouty, groundset.validators.overlap")
    ids = load_plugins().registry.ids("validator")
    assert "shouty" not in ids and "overlap" not in ids and "format" in ids


def test_trace_env_prints_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv("GROUNDSET_TRACE_PLUGINS", "1")
    load_plugins(entry_points=False)
    assert "register_validators" in capsys.readouterr().err


def test_every_default_plugin_registers_something():
    loaded = load_plugins(entry_points=False)
    assert not loaded.failures
    for name in DEFAULT_PLUGINS:
        assert loaded.registry.by_plugin(name), name


def test_unknown_plugin_id_lists_the_registered_ones():
    with pytest.raises(
        PluginError, match=r"no backend named .nope. \(registered: huggingface, openai, watsonx\)"
    ):
        load_plugins(entry_points=False).registry.get("backend", "nope")
