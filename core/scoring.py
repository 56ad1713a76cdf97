"""Running validators over candidates and checking what they return: shared by the engine (new
candidates) and re-scoring (recorded ones), so both write the same rows."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from groundset.core.errors import PluginError
from groundset.core.interfaces import Validator
from groundset.core.records import Candidate, content_hash

__all__ = ["declarations", "score_candidates", "version_tag"]


def version_tag(validator: Validator) -> str:
    """The validator's declared version plus a hash of its options: scores made with other
    options are a different version, so re-scoring keeps both and SQL can compare them."""
    try:
        options = dataclasses.asdict(validator.options)
    except TypeError:
        options = repr(validator.options)
    return f"{validator.version}:{content_hash(options)[:8]}"


def declarations(validators: Sequence[Validator]) -> list[tuple[str, str, Sequence]]:
    """(validator_id, version, metrics) of each validator, for ``Store.register_metrics``."""
    return [(v.validator_id, v.version, v.metrics) for v in validators]


def score_candidates(
    validators: Sequence[Validator],
    candidates: Sequence[Candidate],
    details: list[dict[str, Any]] | None = None,
    failures: list[dict[str, Any]] | None = None,
    fail_closed: bool = True,
) -> list[dict[str, Any]]:
    """Score rows (long format) for every validator over the candidates it accepts; the
    ``details`` validators return are appended to ``details`` as rows when it is given. With
    ``failures``, a validator that raises or breaks its contract on this batch costs only its own
    scores: a row per candidate goes to ``failures`` (``fail_closed``: the candidates count as
    rejected) and the other validators still score; without it the error propagates."""
    rows: list[dict[str, Any]] = []
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
            if failures is None:
                raise
            reason = f"{type(error).__name__}: {error}".strip()[:500]
            failures.extend(
                {
                    "candidate_id": c.candidate_id,
                    "run_id": c.run_id,
                    "validator": validator.validator_id,
                    "validator_version": tag,
                    "error": reason,
                    "fail_closed": fail_closed,
                }
                for c in chosen
            )
            continue
        for candidate, result in zip(chosen, results, strict=True):
            extra = result.pop("details", None)
            if extra is not None and details is not None:
                details.append(
                    {
                        "candidate_id": candidate.candidate_id,
                        "run_id": candidate.run_id,
                        "validator": validator.validator_id,
                        "validator_version": tag,
                        "details": json.dumps(extra, ensure_ascii=False, sort_keys=True),
                    }
                )
            rows.extend(
                {
                    "candidate_id": candidate.candidate_id,
                    "run_id": candidate.run_id,
                    "validator": validator.validator_id,
                    "metric": metric,
                    "value": float(value),
                    "validator_version": tag,
                }
                for metric, value in result.items()
            )
    return rows


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
