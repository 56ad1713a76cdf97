"""Running validators over candidates and checking what they return: every command that scores
(``run`` on either engine, ``validate``, ``score``) goes through :class:`BatchScores`, so all of
them write the same rows and treat a failing validator the same way."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core.errors import PluginError
from groundset.core.interfaces import Validator
from groundset.core.records import Candidate, content_hash
from groundset.core.rows import details_row, failure_row, score_rows

__all__ = ["BatchScores", "declarations", "score_candidates", "version_tag"]


def version_tag(validator: Validator) -> str:
    """The validator's declared version plus a hash of its options: scores made with other
    options are a different version, so re-scoring keeps both and SQL can compare them.
    ``operational_options`` (a cache) do not change scores and are left out."""
    options: object
    try:
        options = dataclasses.asdict(validator.options)
    except TypeError:
        options = repr(validator.options)
    else:
        for name in validator.operational_options:
            options.pop(name, None)
    return f"{validator.version}:{content_hash(options)[:8]}"


def declarations(validators: Sequence[Validator]) -> list[tuple[str, str, Sequence]]:
    """(validator_id, version, metrics) of each validator, for ``Store.register_metrics``."""
    return [(v.validator_id, v.version, v.metrics) for v in validators]


@dataclass
class BatchScores:
    """What the validators wrote for one batch: score, details and failure rows."""

    scores: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, validators: Sequence[Validator], candidates: Sequence[Candidate], fail_closed: bool
    ) -> BatchScores:
        """Score ``candidates`` with every validator, the one failure policy of every command:
        a validator that raises or breaks its contract on this batch costs only its own scores.
        A row per candidate goes to ``failures`` (``fail_closed``: they count as rejected until
        the validator scores them) and the other validators still score."""
        for validator in validators:
            chosen = [c for c in candidates if c.parsed or validator.scores_parse_failures]
            if not chosen:
                continue
            if validator.stateful:
                chosen.sort(key=lambda c: c.candidate_id)
            tag = version_tag(validator)
            try:
                results = validator.score(chosen)
                _check(validator, chosen, results)
            except Exception as error:
                reason = f"{type(error).__name__}: {error}".strip()[:500]
                vid = validator.validator_id
                self.failures += [failure_row(c, vid, tag, reason, fail_closed) for c in chosen]
                continue
            self._keep(validator.validator_id, tag, chosen, results)
        return self

    def _keep(
        self, validator_id: str, tag: str, chosen: list[Candidate], results: list[dict[str, Any]]
    ) -> None:
        for candidate, result in zip(chosen, results, strict=True):
            extra = result.pop("details", None)
            if extra is not None:
                self.details.append(details_row(candidate, validator_id, tag, extra))
            self.scores += score_rows(candidate, validator_id, tag, result)

    @property
    def failed_validators(self) -> list[str]:
        return sorted({f["validator"] for f in self.failures})


def score_candidates(
    validators: Sequence[Validator], candidates: Sequence[Candidate]
) -> list[dict[str, Any]]:
    """Score rows (long format) for every validator over the candidates it accepts, raising the
    first validator failure: for callers with nowhere to record one (a validator's own tests)."""
    scored = BatchScores().add(validators, candidates, fail_closed=True)
    if scored.failures:
        failure = scored.failures[0]
        raise PluginError(f"validator {failure['validator']!r} failed: {failure['error']}")
    return scored.scores


def _check(validator: Validator, chosen: list[Candidate], results: object) -> None:
    who = f"validator {validator.validator_id!r}"
    if not isinstance(results, list) or len(results) != len(chosen):
        got = len(results) if isinstance(results, list) else type(results).__name__
        raise PluginError(f"{who} returned {got} results for {len(chosen)} candidates")
    declared = {m.name for m in validator.metrics}
    ranges = {m.name: (m.low, m.high) for m in validator.metrics}
    for result in results:
        if not isinstance(result.get("details", {}), dict):
            raise PluginError(f"{who} returned details that are not a dict")
        unknown = set(result) - declared - {"details"}
        if unknown:
            raise PluginError(f"{who} returned undeclared metric {sorted(unknown)[0]!r}")
        for metric, value in result.items():
            if metric == "details":
                continue
            finite = isinstance(value, int | float) and math.isfinite(value)
            if not finite or isinstance(value, bool):
                raise PluginError(f"{who} returned {value!r} for {metric!r}: not a finite number")
            bounds = ranges[metric]
            if not bounds[0] <= value <= bounds[1]:
                raise PluginError(
                    f"{who} returned {metric} = {value}, outside its declared range"
                    f" [{bounds[0]}, {bounds[1]}]"
                )
