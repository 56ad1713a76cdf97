"""Running validators over the evaluation set: building each one with its ``--set`` options,
scoring in batches, and timing model loading apart from scoring."""

from __future__ import annotations

import argparse
import math
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from groundset.core import Candidate, PluginError, Validator
from groundset.core.manager import load_plugins
from groundset.core.options import build_options


@dataclass
class ValidatorRun:
    """A validator's scores (one dict per item, in item order) and how long it took."""

    validator: Validator
    options: dict[str, Any]
    scores: list[dict[str, float]]
    load_s: float
    score_s: float

    @property
    def candidates_per_s(self) -> float:
        return len(self.scores) / self.score_s if self.score_s > 0 else math.inf


def parse_value(text: str) -> Any:
    """A TOML value (number, boolean, quoted string, array), else the text as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """``--set VALIDATOR.OPTION=VALUE``, repeatable, for ``parse_settings``."""
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="VALIDATOR.OPTION=VALUE",
        help="a validator option (TOML value; repeatable)",
    )


def parse_settings(pairs: Sequence[str], validator_ids: Sequence[str]) -> dict[str, dict]:
    """``VALIDATOR.OPTION=VALUE`` strings as options per validator."""
    settings: dict[str, dict[str, Any]] = {vid: {} for vid in validator_ids}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        validator_id, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise SystemExit(f"--set {pair!r}: expected VALIDATOR.OPTION=VALUE")
        if validator_id not in settings:
            raise SystemExit(f"--set {pair!r}: {validator_id!r} is not in --validators")
        settings[validator_id][option] = parse_value(value.strip())
    return settings


def build_validator(validator_id: str, options: dict[str, Any], entry_points: bool) -> Validator:
    cls = load_plugins(entry_points=entry_points).registry.get("validator", validator_id).cls
    return cls(build_options(cls.Options, options, f"validators.{validator_id}"))


def _call_if_present(validator: Validator, method: str) -> float:
    """Call an optional lifecycle method (``load``, ``close``); seconds it took."""
    start = time.perf_counter()
    function: Callable[[], object] | None = getattr(validator, method, None)
    if callable(function):
        function()
    return time.perf_counter() - start


def warm_up(validator: Validator, candidates: Sequence[Candidate]) -> float:
    """Score one candidate untimed by the throughput: validators that load their model on the
    first ``score()`` call would otherwise count loading as scoring. Seconds it took."""
    start = time.perf_counter()
    if candidates:
        validator.score(candidates[:1])
    return time.perf_counter() - start


def score_in_batches(
    validator: Validator, candidates: Sequence[Candidate], batch_size: int, progress: bool
) -> list[dict[str, float]]:
    scores: list[dict[str, float]] = []
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        results = validator.score(batch)
        if len(results) != len(batch):
            raise PluginError(f"returned {len(results)} results for {len(batch)} candidates")
        scores.extend(results)
        if progress:
            done = start + len(batch)
            print(f"  {validator.validator_id}: {done}/{len(candidates)}", file=sys.stderr)
    return scores


def run_validator(
    validator_id: str,
    options: dict[str, Any],
    candidates: Sequence[Candidate],
    batch_size: int,
    entry_points: bool,
    progress: bool,
) -> ValidatorRun:
    validator = build_validator(validator_id, options, entry_points)
    load_s = _call_if_present(validator, "load") + warm_up(validator, candidates)
    start = time.perf_counter()
    try:
        scores = score_in_batches(validator, candidates, batch_size, progress)
    finally:
        score_s = time.perf_counter() - start
        _call_if_present(validator, "close")
    return ValidatorRun(validator, options, scores, load_s, score_s)
