"""The docs match the code: every hook, config key and metric is documented, the CLI reference
is the real --help, and every SQL cookbook query runs against a real store."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core import hookspecs
from groundset.core.cli import cli
from groundset.core.manager import load_plugins
from groundset.core.settings import (
    DocumentsSettings,
    GenerationSettings,
    PricingSettings,
    RaySettings,
    RunSettings,
    StoreSettings,
)
from groundset.core.store import Store

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS = [name for name in dir(hookspecs) if name.startswith("register_")]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], re.M)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    text = (DOCS / "plugin-hooks.md").read_text()
    assert f"## `{hook}(register)`" in text, f"document {hook} in docs/plugin-hooks.md"


def test_every_hookspec_has_a_docstring_with_its_param():
    for hook in HOOKS:
        doc = getattr(hookspecs, hook).__doc__ or ""
        assert ":param register:" in doc, hook


@pytest.mark.parametrize(
    ("heading", "cls"),
    [
        ("## `[run]`", RunSettings),
        ("## `[documents]`", DocumentsSettings),
        ("## `[generation]`", GenerationSettings),
        ("## `[store]`", StoreSettings),
        ("## `[pricing]`", PricingSettings),
        ("## `[ray]`", RaySettings),
    ],
)
def test_every_core_setting_is_documented(heading, cls):
    section = _section((DOCS / "configuration.md").read_text(), heading)
    for field in dataclasses.fields(cls):
        assert f"| `{field.name}` |" in section, f"{heading} {field.name}"


@pytest.mark.parametrize(
    ("kind", "section"),
    [("strategy", "strategies"), ("backend", "backends"), ("validator", "validators")],
)
def test_every_builtin_plugin_option_is_documented(kind, section):
    text = (DOCS / "configuration.md").read_text()
    registry = load_plugins(entry_points=False).registry
    for plugin_id in registry.ids(kind):
        options = registry.get(kind, plugin_id).cls.Options
        part = _section(text, f"## `[{section}.{plugin_id}]`")
        for field in dataclasses.fields(options):
            assert f"| `{field.name}` |" in part, f"[{section}.{plugin_id}] {field.name}"


def test_every_builtin_metric_is_documented():
    text = (DOCS / "validators.md").read_text()
    registry = load_plugins(entry_points=False).registry
    for validator_id in registry.ids("validator"):
        part = _section(text, f"## `{validator_id}`")
        for metric in registry.get("validator", validator_id).cls.metrics:
            assert f"| `{metric.name}` |" in part, f"{validator_id}.{metric.name}"


def test_documented_ranges_directions_and_thresholds_are_the_declared_ones():
    """docs/validators.md and `groundset plugins --metrics` say the same of every metric."""
    text = (DOCS / "validators.md").read_text()
    registry = load_plugins(entry_points=False).registry
    for validator_id in registry.ids("validator"):
        part = _section(text, f"## `{validator_id}`")
        for metric in registry.get("validator", validator_id).cls.metrics:
            row = next(
                line for line in part.splitlines() if line.startswith(f"| `{metric.name}` |")
            )
            cells = [c.strip() for c in row.strip("|").split("|")]
            where = f"{validator_id}.{metric.name}"
            assert cells[1] == f"{metric.low:g}-{metric.high:g}", where
            if cells[2]:
                assert cells[2] == ("higher" if metric.higher_is_better else "lower"), where
            threshold = metric.default_threshold
            if threshold is None:
                assert cells[3] == "", where
            else:
                sign = ">=" if metric.higher_is_better else "<="
                assert cells[3] == f"{sign} {threshold:g}", where


def test_cli_reference_is_the_real_help():
    text = (DOCS / "cli.md").read_text()
    for command in ["", *sorted(cli.commands)]:
        args = [command, "--help"] if command else ["--help"]
        help_text = CliRunner().invoke(cli, args, prog_name="groundset").output
        assert help_text.strip() in text, f"regenerate docs/cli.md: `{command}` changed"


COOKBOOK = re.findall(r"```sql\n(.*?)```", (DOCS / "sql-cookbook.md").read_text(), re.S)


@pytest.fixture(scope="module")
def cookbook_store(tmp_path_factory) -> Path:
    """A real store from a mock-backend run: good, copied and unparseable candidates."""
    from groundset.core.analysis import apply_policy
    from groundset.core.policies import parse_policies
    from groundset.core.runner import prepare_run, start_run
    from groundset.core.settings import settings_from_config
    from groundset.core.testing import MockBackendPlugin, registered_plugin

    root = tmp_path_factory.mktemp("cookbook")
    documents = Path(__file__).resolve().parent.parent / "examples" / "seed-documents.jsonl"
    outputs = [
        "[question]: How much did IBM pay?\n[answer]: IBM paid $190.00 per share.",
        "Nothing useful here.",
    ]
    validators = [*RunSettings().validators, "dedup"]
    config = {
        "run": {"backend": "mock", "samples_per_document": 2, "batch_size": 3,
                "validators": validators},
        "documents": {"path": str(documents)},
        "backends": {"mock": {"outputs": outputs}},
        "validators": {"dedup": {"field": "question"}},
    }  # fmt: skip
    db = root / "cookbook.duckdb"
    with registered_plugin(MockBackendPlugin(), "mock"), Store(db) as store:
        start_run(prepare_run(settings_from_config(config)), store)
        run_id = store.resolve_run("latest")
        policies = parse_policies(
            {"accept": {"strict": {"all": ["format.ok >= 1", "grounding_nli.entailment >= 0.5"]},
                        "lenient": {"all": ["format.parsed >= 1"]}}},
            "cookbook",
        )  # fmt: skip
        for policy in policies.values():
            apply_policy(store, policy, run_id)
        # a second version of one validator's scores, as `groundset validate` would add
        from groundset.core.rescoring import rescore_run
        from groundset.validators.overlap import OverlapValidator

        rescore_run(store, run_id, [OverlapValidator(OverlapValidator.Options(lowercase=False))])
        # two people's labels, one relabelled, as `groundset labels import` records them
        from groundset.core.rows import label_row

        ids = [r[0] for r in store.query("SELECT candidate_id FROM candidates LIMIT 3").rows]
        store.record_labels(
            [label_row(c, run_id, i % 2, aspect="overall", labeller=who, source="import")
             for i, c in enumerate(ids) for who in ("ann", "bob")]
            + [label_row(ids[0], run_id, 1, aspect="overall", labeller="ann", source="import")]
        )  # fmt: skip
    exported = CliRunner().invoke(
        cli, ["export", "--db", str(db), "-o", str(root / "qa.jsonl"), "--policy", "lenient"]
    )
    assert exported.exit_code == 0, exported.output
    return db


def test_the_cookbook_covers_every_table_and_view(cookbook_store):
    with Store(cookbook_store, read_only=True) as store:
        names = {r[0] for r in store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).rows} - {"schema_migrations"}  # fmt: skip
    queries = "\n".join(COOKBOOK)
    missing = sorted(n for n in names if not re.search(rf"\b{n}\b", queries))
    assert not missing, f"no cookbook query uses {missing}"


def test_cookbook_has_the_required_queries():
    assert len(COOKBOOK) >= 5


@pytest.mark.parametrize("query", COOKBOOK, ids=[f"q{i}" for i in range(len(COOKBOOK))])
def test_cookbook_query_runs_and_returns_rows(cookbook_store, query):
    with Store(cookbook_store, read_only=True) as store:
        result = store.query(query)
    assert result.rows, query


def test_every_watsonx_environment_variable_is_documented():
    from groundset.backends.watsonx import ENVIRONMENT

    backends = (DOCS / "backends.md").read_text()
    configuration = (DOCS / "configuration.md").read_text()
    for option, variable in ENVIRONMENT.items():
        assert f"`{variable}`" in backends, variable
        assert f"| `{option}` | " in configuration and f"`{variable}`" in configuration, option
