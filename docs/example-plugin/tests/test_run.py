"""Whole runs through groundset's engine into a throw-away store (the ``groundset_store``
fixture), with the installed plugin found through its entry point."""

from pathlib import Path

from groundset.core.manager import get_plugins
from groundset.core.runner import prepare_run, start_run
from groundset.core.settings import load_config, settings_from_config
from groundset.core.testing import MockBackendPlugin, registered_plugin

CONFIG = Path(__file__).resolve().parent.parent / "example.toml"


def settings(**sections):
    config = load_config(CONFIG)
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return settings_from_config(config, str(CONFIG), CONFIG.parent)


def test_the_entry_point_registers_all_three():
    registry = get_plugins().registry
    for kind, item_id in [
        ("validator", "length_ratio"),
        ("backend", "echo"),
        ("strategy", "one_question"),
    ]:
        assert registry.get(kind, item_id).plugin == "example"


def test_a_run_with_the_echo_backend_is_recorded_and_scored(groundset_store):
    summary = start_run(prepare_run(settings()), groundset_store)
    assert (summary.candidates, summary.parse_failures) == (6, 0)
    rows = groundset_store.query(
        'SELECT c.answer, d.text, c."length_ratio.ratio" FROM candidate_scores c'
        " JOIN documents d USING (document_id)"
    ).rows
    assert len(rows) == 6
    for answer, text, ratio in rows:
        assert text.startswith(answer)
        assert abs(ratio - len(answer.split()) / len(text.split())) < 1e-9


def test_canned_outputs_from_the_mock_backend(groundset_store):
    outputs = ["[question]: Why?\n[answer]: Because.", "no pair here"]
    with registered_plugin(MockBackendPlugin(), "mock"):
        run = settings(run={"backend": "mock"}, backends={"mock": {"outputs": outputs}})
        summary = start_run(prepare_run(run), groundset_store)
    assert (summary.candidates, summary.parse_failures) == (6, 3)
    rows = groundset_store.query(
        'SELECT parse_ok, parse_error, answer, "length_ratio.ratio" IS NOT NULL'
        " FROM candidate_scores ORDER BY ALL"
    ).rows
    failed = (False, "no [question]: ... [answer]: ...", None, False)
    assert rows == [failed] * 3 + [(True, None, "Because.", True)] * 3
