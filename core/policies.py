"""Accept policies: named sets of thresholds in the config (``[accept.strict]``), versioned by
their content, evaluated in SQL over ``candidate_scores`` and recorded per candidate, so a
dataset's "accepted" always says by which rules.

    [accept.strict]
    all = ["format.ok >= 1", "grounding_nli.entailment >= 0.5"]   # every one must hold
    any = ["overlap.token_precision >= 0.8", "relevance.cosine >= 0.6"]  # at least one
    [accept.strict.strategies.self_instruct]                      # runs of this strategy
    all = ["format.ok >= 1", "dedup.max_rouge_l <= 0.7"]

A candidate passes when it parsed, every ``all`` condition holds and, if ``any`` is given, at
least one of them does. A metric the candidate has no score for fails its condition."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.records import content_hash
from groundset.core.store import quote_identifier

__all__ = ["Condition", "Policy", "Rules", "parse_policies"]

_CONDITION = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|>|<|==|!=)\s*(-?[0-9.eE+\-]+)\s*$")
_KEYS = {"all", "any", "description", "strategies"}


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: object, where: str) -> Condition:
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if not match:
            raise ConfigError(
                f'{where}: {text!r} is not a condition like "format.ok >= 1"'
                " (METRIC OP NUMBER, OP one of >= <= > < == !=)"
            )
        try:
            value = float(match.group(3))
        except ValueError:
            raise ConfigError(f"{where}: {match.group(3)!r} in {text!r} is not a number") from None
        return cls(match.group(1), match.group(2), value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Rules:
    """The conditions that apply to one strategy's candidates (or to all)."""

    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()

    def sql(self) -> tuple[str, list[float]]:
        parts, params = ["cs.parse_ok"], []
        for condition in self.all:
            parts.append(_compare(condition))
            params.append(condition.value)
        if self.any:
            alternatives = []
            for condition in self.any:
                alternatives.append(_compare(condition))
                params.append(condition.value)
            parts.append("(" + " OR ".join(alternatives) + ")")
        return "(" + " AND ".join(parts) + ")", params

    def metrics(self) -> set[str]:
        return {c.metric for c in (*self.all, *self.any)}

    def describe(self) -> dict[str, list[str]]:
        return {"all": [str(c) for c in self.all], "any": [str(c) for c in self.any]}


@dataclass(frozen=True)
class Policy:
    """A named accept policy; its version is a hash of its rules, so changed rules are a new
    version and results recorded under the old one stay comparable."""

    name: str
    rules: Rules
    strategies: dict[str, Rules] = field(default_factory=dict)
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {
            **self.rules.describe(),
            "strategies": {k: v.describe() for k, v in sorted(self.strategies.items())},
            "description": self.description,
        }

    @property
    def version(self) -> str:
        return content_hash("policy", self.definition())[:12]

    def metrics(self) -> set[str]:
        found = self.rules.metrics()
        for rules in self.strategies.values():
            found |= rules.metrics()
        return found

    def sql(self, known: Sequence[str]) -> tuple[str, list[Any]]:
        """A boolean SQL expression over ``candidate_scores cs`` joined with ``runs r`` (for the
        strategy), and its parameters; unknown metrics are an error naming them."""
        known_set = set(known)
        unknown = sorted(self.metrics() - known_set)
        if unknown:
            listed = ", ".join(sorted(known_set)) or "none recorded yet"
            raise ConfigError(
                f"accept policy {self.name!r}: unknown metric {unknown[0]!r} (known: {listed})"
            )
        default, params = self.rules.sql()
        if not self.strategies:
            return default, params
        pieces: list[str] = []
        ordered: list[Any] = []
        names = sorted(self.strategies)
        for name in names:
            expr, more = self.strategies[name].sql()
            pieces.append(f"(r.strategy = ? AND {expr})")
            ordered += [name, *more]
        placeholders = ", ".join("?" for _ in names)
        pieces.append(f"(r.strategy NOT IN ({placeholders}) AND {default})")
        ordered += [*names, *params]
        return "(" + " OR ".join(pieces) + ")", ordered


def _compare(condition: Condition) -> str:
    """The condition in SQL; a missing score (NULL) fails it."""
    column = f"cs.{quote_identifier(condition.metric)}"
    return f"coalesce({column} {condition.op} ?, false)"


def _rules(table: Mapping[str, Any], where: str) -> Rules:
    lists = {}
    for key in ("all", "any"):
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}.{key}: expected a list of conditions")
        lists[key] = tuple(Condition.parse(v, f"{where}.{key}") for v in value)
    return Rules(lists["all"], lists["any"])


def parse_policies(config: Mapping[str, Any], source: str) -> dict[str, Policy]:
    """The ``[accept.NAME]`` tables of a config; errors name the file and key."""
    section = config.get("accept", {})
    if not isinstance(section, dict):
        raise ConfigError(
            f"{source}: [accept] must hold one table per policy, e.g. [accept.strict]"
        )
    policies = {}
    for name, table in section.items():
        where = f"{source}: [accept.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table with all = [...] and/or any = [...]")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r} (known: all, any, description, strategies)"
            )
        strategies = table.get("strategies", {})
        if not isinstance(strategies, dict):
            raise ConfigError(f"{where}.strategies: expected [accept.{name}.strategies.NAME]")
        rules = _rules(table, where)
        per_strategy = {
            k: _rules(v, f"{where}.strategies.{k}")
            for k, v in strategies.items()
            if isinstance(v, dict)
        }
        if not (rules.all or rules.any or per_strategy):
            raise ConfigError(f"{where}: no conditions (all = [...] or any = [...])")
        policies[name] = Policy(name, rules, per_strategy, str(table.get("description", "")))
    return policies
