"""``groundset calibrate``: how good each metric is on the user's labelled candidates, and the
threshold that keeps precision at a target, with intervals."""

from __future__ import annotations

import dataclasses
import json

import click

from groundset.core.calibration import (
    MIN_LABELS,
    Calibration,
    MetricCalibration,
    Segment,
    ThresholdFigures,
)
from groundset.core.cli.common import counted, db_option
from groundset.core.intervals import estimate_text
from groundset.core.labels import ASPECTS
from groundset.core.store import DEFAULT_DB, Store

__all__ = ["calibrate_command"]


@click.command("calibrate")
@click.argument("runs", nargs=-1)
@click.option("--aspect", type=click.Choice(ASPECTS), default="overall", show_default=True)
@click.option(
    "--target-precision",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="Recommend the loosest threshold whose precision's 95% interval stays above this"
    " (the end of the first stretch of thresholds that does, from the strictest)",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@click.option(
    "--by",
    help="Also measure each segment: document, run, model, or a parsed field (e.g. question_type)",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap")
@click.option("--policy-name", help="Name of the learned policy  [default: learned_ASPECT]")
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Keep the result (table calibrations) and a learned policy that wins (policies); takes"
    " the store's writer lock for a moment, so --no-record while a run writes",
)
@click.option("--html", type=click.Path(dir_okay=False), help="Also write the curves as HTML")
@db_option
def calibrate_command(
    runs: tuple[str, ...], aspect: str, target_precision: float, fmt: str, by: str | None,
    seed: int, policy_name: str | None, record: bool, html: str | None, db: str | None,
) -> None:  # fmt: skip
    """Measure every metric of RUNS (default: the latest run) on their labelled candidates
    (`groundset labels import`, `groundset score --label-field`): AUROC, and precision, recall
    and balanced accuracy at the default threshold and at a recommended one, each with a
    bootstrap 95% interval. A candidate's label is the majority of its labellers' latest labels.
    Needs at least 20 labelled candidates, good and bad ones both.

    Also cross-validates a logistic regression over all the metrics against the best single
    metric, and keeps it as accept policy learned_ASPECT only where it beats that metric."""
    from groundset.core.calibration import calibrate
    from groundset.core.calibration_record import (
        learned_lines,
        measure_learned,
        record_calibration,
        recorded_lines,
    )
    from groundset.core.report.calibration_page import render_calibration_html
    from groundset.core.report.page import check_html_path, write_html

    if html:
        check_html_path(html)
    with Store(db or DEFAULT_DB, read_only=True) as store:
        run_ids = [store.resolve_run(ref) for ref in runs or ("latest",)]
        result = calibrate(store, run_ids, aspect, target_precision, seed=seed, by=by)
        measured = measure_learned(store, result, policy_name, seed)
        page = html and render_calibration_html(
            result, measured.data, measured.held_out, store.path
        )
    as_json = json.dumps(dataclasses.asdict(result), indent=2)
    recorded = None
    if record:  # after reading: the writer lock is held only for the write
        with Store(db or DEFAULT_DB) as store:
            recorded = record_calibration(store, result, as_json, measured)
    after = recorded_lines(recorded, result.learned)
    if html and page:
        after.append(f"HTML page: {write_html(html, page)}")
    if fmt == "json":  # the JSON alone, as recorded: the record is in table calibrations
        click.echo(as_json)
    else:
        click.echo("\n".join([_text(result), *learned_lines(result), *after]))


def _text(result: Calibration) -> str:
    runs = counted(len(result.run_ids), "run")
    lines = [
        f"{runs}, aspect {result.aspect}: {result.labelled} labelled candidates ({result.good}"
        f" good, {result.labelled - result.good} bad), target precision {result.target_precision:g}"
    ]
    if result.ties:
        lines.append(f"  ({counted(result.ties, 'candidate')} left out: labellers split evenly)")
    if result.policies:
        lines += ["", "accepted:"]
        lines += [f"  {v.name}: {_threshold(v.figures, 'passes')}" for v in result.policies]
    best_first = sorted(result.metrics, key=lambda m: -(m.auroc.value or 0.0))
    for metric in best_first:
        lines += ["", *_metric_lines(metric)]
    if result.by is not None:
        lines += ["", f"by {result.by}:"]
        for segment in result.segments:
            lines += _segment_lines(segment)
    return "\n".join(lines)


def _segment_lines(s: Segment) -> list[str]:
    head = f"  {s.value}: {s.labelled} labelled, {s.good} good"
    if not s.metrics and not s.policies:
        return [f"{head}: too few to measure ({MIN_LABELS} of both kinds needed)"]
    lines = [head]
    lines += [f"    {v.name}: {_threshold(v.figures, 'passes')}" for v in s.policies]
    for m in sorted(s.metrics, key=lambda m: -(m.auroc.value or 0.0)):
        pick = m.recommended
        chosen = f"recommended {pick.threshold:g}" if pick else "no recommendation"
        lines.append(f"    {m.metric}: AUROC {estimate_text(m.auroc)}, {chosen}")
    return lines


def _metric_lines(m: MetricCalibration) -> list[str]:
    direction = "higher" if m.higher_is_better else "lower"
    lines = [f"{m.metric} ({direction} is better; {m.labelled} labelled, {m.good} good)",
             f"  AUROC {estimate_text(m.auroc)}"]  # fmt: skip
    if m.default is not None:
        lines.append(f"  default     {_threshold(m.default)}")
    if m.recommended is not None:
        lines.append(f"  recommended {_threshold(m.recommended)}")
    else:
        lines.append(f"  no recommendation: {m.advice}")
    return lines


def _threshold(t: ThresholdFigures, lead: str | None = None) -> str:
    head = lead or f"{t.threshold:g}: passes"
    return (
        f"{head} {t.passed}, precision {estimate_text(t.precision)}, recall"
        f" {estimate_text(t.recall)}, balanced accuracy {estimate_text(t.balanced_accuracy)}"
    )
