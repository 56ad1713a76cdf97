"""The kit plugin authors test with: the contract checks pass on the built-in plugins and catch
each broken contract by name, and the pytest fixtures give a working store and mock backend."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from groundset.core import Candidate, Generation, Metric, ParsedCandidate, PlannedPrompt, Prompt
from groundset.core.interfaces import Backend, Strategy, Validator
from groundset.core.testing import (
    MockBackend,
    check_backend,
    check_strategy,
    check_validator,
    sample_candidates,
)
from groundset.plugins.grounded_qa import GroundedQA
from groundset.plugins.self_instruct import SelfInstruct
from groundset.validators.dedup import DedupValidator
from groundset.validators.format import FormatValidator
from groundset.validators.overlap import OverlapValidator


@pytest.mark.parametrize("validator", [FormatValidator, OverlapValidator, DedupValidator])
def test_builtin_validators_keep_the_contract(validator):
    check_validator(validator())


def test_builtin_strategies_and_the_mock_backend_keep_the_contract():
    check_strategy(GroundedQA())
    check_strategy(SelfInstruct())
    check_backend(MockBackend())


class Broken(Validator):
    validator_id = "broken"
    metrics = (Metric("share", "a share", 0.0, 1.0),)
    mode = "range"

    def score(self, candidates):
        if self.mode == "range":
            return [{"share": 1.5} for _ in candidates]
        if self.mode == "undeclared":
            return [{"sharee": 0.5} for _ in candidates]
        if self.mode == "count":
            return [{"share": 0.5}] if candidates else []
        if self.mode == "batch":
            return [{"share": 1.0 / len(candidates)} for _ in candidates]
        return [{"share": float("nan")} for _ in candidates]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("range", r"'share' = 1.5 for candidate c0 is outside its declared range \[0.0, 1.0\]"),
        ("undeclared", "returned undeclared metric 'sharee'"),
        ("count", "returned 1 results for 3 candidates"),
        ("batch", "scores a candidate differently alone than in a batch"),
        ("nan", "'share' is nan"),
    ],
)
def test_a_broken_validator_is_caught_by_name(mode, message):
    validator = Broken()
    validator.mode = mode
    with pytest.raises(AssertionError, match=message) as raised:
        check_validator(validator)
    assert "validator 'broken'" in str(raised.value)


class ShortBackend(MockBackend):
    backend_id = "short"

    def generate(self, prompts, params):
        return super().generate(prompts, params)[:1]


def test_a_backend_that_drops_prompts_is_caught():
    with pytest.raises(AssertionError, match="backend 'short' returned 1 generations for 3"):
        check_backend(ShortBackend())


class Moody(Strategy):
    strategy_id = "moody"
    fields = ("question", "answer")

    def plan(self, documents, samples, rng):
        extra = random.random()
        return [PlannedPrompt(d, Prompt(f"{d.text} {extra}")) for d in documents]

    def parse(self, generation: Generation):
        return [ParsedCandidate({"question": generation.text}, generation.text)]


def test_a_strategy_that_ignores_its_rng_or_drops_fields_is_caught():
    with pytest.raises(AssertionError, match="strategy 'moody' plans differently"):
        check_strategy(Moody())

    @dataclass
    class Steady(Moody):
        strategy_id = "steady"

        def plan(self, documents, samples, rng):
            return [PlannedPrompt(d, Prompt(d.text)) for d in documents]

    with pytest.raises(AssertionError, match=r"lacks fields \['answer'\]"):
        check_strategy(Steady())


def test_sample_candidates_cover_unicode_empty_and_unparsed():
    candidates = sample_candidates()
    assert any(not c.parsed for c in candidates)
    assert any("東京" in c.fields.get("question", "") for c in candidates)
    assert any(c.fields.get("answer") == "" for c in candidates if c.parsed)
    assert all(isinstance(c, Candidate) for c in candidates)


def test_the_pytest_fixtures_give_a_store_and_the_mock_backend(groundset_store,
                                                               groundset_mock_backend):  # fmt: skip
    assert groundset_store.query("SELECT count(*) FROM runs").rows == [(0,)]
    assert "mock" in groundset_mock_backend.registry.ids("backend")
    assert issubclass(groundset_mock_backend.registry.get("backend", "mock").cls, Backend)


def test_plugins_metrics_lists_every_declared_metric_with_its_cost():
    import json as _json

    from click.testing import CliRunner

    from groundset.core.cli import cli
    from groundset.core.interfaces import COST_CLASSES
    from groundset.core.manager import load_plugins

    result = CliRunner().invoke(cli, ["plugins", "--metrics", "--json"])
    rows = {r["metric"]: r for r in _json.loads(result.output)}
    registry = load_plugins(entry_points=False).registry
    expected = {
        f"{vid}.{m.name}": (registry.get("validator", vid).cls, m)
        for vid in registry.ids("validator")
        for m in registry.get("validator", vid).cls.metrics
    }
    assert set(rows) == set(expected)
    for name, (cls, metric) in expected.items():
        row = rows[name]
        assert row["cost"] == cls.cost and row["cost"] in COST_CLASSES
        assert row["better"] == ("higher" if metric.higher_is_better else "lower")
        assert row["default_threshold"] == metric.default_threshold
    assert rows["grounding_nli.entailment"]["cost"] == "cross-encoder"


def test_a_validator_with_a_bad_declaration_is_refused_at_registration():
    from groundset.core.errors import PluginError
    from groundset.core.registry import Register, Registry

    class NoCost(Broken):
        validator_id = "no_cost"
        cost = "cheap"

    class Inverted(Broken):
        validator_id = "inverted"
        metrics = (Metric("x", "x", 1.0, 0.0),)

    for cls, message in ((NoCost, "cost is 'cheap'"), (Inverted, "has low > high")):
        with pytest.raises(PluginError, match=message):
            Register(Registry(), "validator", "someone")(cls)
