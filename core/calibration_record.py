"""What ``groundset calibrate`` adds to its measurements and keeps: the learned policy (measured
while the store is open to read), and the record of the result (``calibrations``, migration
``m010``) with the learned policy's verdicts on the runs, written afterwards in one short write.

Why measure first and write after: a writer holds the store's lock (docs/reliability.md, "Two
processes, one file"), and the bootstrap and cross-validation take seconds; reading first keeps
the lock for the few milliseconds the rows need, and ``--no-record`` never takes it, so
calibrate can look at a store while a run writes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from groundset.core.analysis import PolicyOutcome
from groundset.core.calibration import Calibration
from groundset.core.intervals import estimate_text
from groundset.core.learned_policy import (
    LabelledSet,
    LearnedPolicy,
    LogisticPolicy,
    OutOfFold,
    apply_learned,
    labelled_set,
    learn_policy,
)
from groundset.core.records import content_hash
from groundset.core.rows import groundset_version
from groundset.core.store import Store

__all__ = [
    "Measured",
    "Recorded",
    "labels_fingerprint",
    "learned_lines",
    "measure_learned",
    "record_calibration",
    "recorded_lines",
]


@dataclass(frozen=True)
class Measured:
    """What the record needs besides the result: the labels' fingerprint at measuring time;
    and what the HTML page draws: the labelled candidates' values and the held-out
    predictions."""

    fingerprint: str
    held_out: OutOfFold | None
    data: LabelledSet


@dataclass(frozen=True)
class Recorded:
    calibration_id: str
    #: False when the very same result (runs, labels, version, figures) was recorded before
    new: bool
    outcomes: list[PolicyOutcome] = field(default_factory=list)


def labels_fingerprint(store: Store, run_ids: Sequence[str], aspect: str) -> str:
    """A hash of every latest label of the aspect on the runs' candidates (candidate,
    labeller, value): a label added or changed gives another fingerprint."""
    rows = store.query(
        "SELECT candidate_id, labeller, value FROM latest_labels"
        " WHERE aspect = ? AND list_contains(?, run_id) ORDER BY candidate_id, labeller",
        [aspect, list(run_ids)],
    ).rows
    return content_hash("labels", [list(r) for r in rows])[:16]


def measure_learned(
    store: Store, result: Calibration, policy_name: str | None = None, seed: int = 0
) -> Measured:
    """Add the learned policy's figures to ``result`` (``result.learned``)."""
    data = labelled_set(store, result.run_ids, result.aspect)
    result.learned, held_out = learn_policy(
        store, result.run_ids, result.aspect, policy_name, seed=seed, data=data
    )
    return Measured(labels_fingerprint(store, result.run_ids, result.aspect), held_out, data)


def record_calibration(
    store: Store, result: Calibration, result_json: str, measured: Measured
) -> Recorded:
    """Record the learned policy (when kept) with its verdicts on each run, then the result
    itself. Its id is a hash of what it says, so the same result is recorded once."""
    learned, outcomes = result.learned, []
    policy = None
    if learned is not None and learned.kept and learned.definition is not None:
        policy = LogisticPolicy(learned.name, learned.definition)
        outcomes = [apply_learned(store, policy, run_id) for run_id in result.run_ids]
    version = groundset_version()
    calibration_id = content_hash(
        "calibration", result.run_ids, result.aspect, result.target_precision,
        measured.fingerprint, version, result_json,
    )[:16]  # fmt: skip
    before = store.query(
        "SELECT count(*) FROM calibrations WHERE calibration_id = ?", [calibration_id]
    ).rows[0][0]
    store.db.execute(
        "INSERT OR IGNORE INTO calibrations (calibration_id, run_ids, aspect, target_precision,"
        " labelled, labels_fingerprint, groundset_version, result, policy, policy_version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            calibration_id, result.run_ids, result.aspect, result.target_precision,
            result.labelled, measured.fingerprint, version, result_json,
            policy.name if policy else None, policy.version if policy else None,
        ],
    )  # fmt: skip
    return Recorded(calibration_id, not before, outcomes)


def learned_lines(result: Calibration) -> list[str]:
    """The learned policy in calibrate's text report."""
    learned = result.learned
    if learned is None:
        return []
    if learned.difference is None:
        return ["", learned.verdict]
    lines = [
        "",
        f"learned policy {learned.name} (logistic regression over {len(learned.metrics)}"
        f" metrics; held out: {learned.folds}-fold cross-validation on {learned.labelled}"
        " parsed labelled candidates)",
        f"  learned      balanced accuracy {estimate_text(learned.balanced_accuracy)}, AUROC"
        f" {estimate_text(learned.auroc)}, precision {estimate_text(learned.precision)}",
        f"  best single  balanced accuracy {estimate_text(learned.best_balanced_accuracy)}, AUROC"
        f" {estimate_text(learned.best_auroc)}, precision {estimate_text(learned.best_precision)}"
        f" ({learned.best_rule}, chosen the same way)",
        f"  {learned.verdict}",
    ]
    imputed = [f"{m} ({n})" for m, n in learned.imputed.items() if n]
    if imputed:
        lines.append(
            "  missing values given the metric's median on the labelled candidates: "
            + ", ".join(imputed)
        )
    if any(v.name == f"policy {learned.name}" for v in result.policies):
        lines.append(
            f"  (policy {learned.name} under accepted: is measured on labels it was fit on, so"
            " it looks better there than it is; the held-out figures above are the fair ones)"
        )
    return lines


def recorded_lines(recorded: Recorded | None, learned: LearnedPolicy | None) -> list[str]:
    """What calibrate wrote to the store (``None``: ``--no-record``)."""
    if recorded is None:
        if learned is not None and learned.kept:
            return [f"  not recorded (--no-record): accept policy {learned.name} is not saved"]
        return []
    lines = []
    for o in recorded.outcomes:
        lines.append(
            f"  recorded as accept policy {o.policy} (version {o.version}): {o.passed} of"
            f" {o.candidates} candidates of run {o.run_id} pass"
            f" (groundset export --policy {o.policy} --run {o.run_id[:12]})"
        )
    state = "recorded" if recorded.new else "already recorded"
    lines.append(f"calibration {recorded.calibration_id} {state} (table calibrations)")
    return lines
