"""``groundset score FILE``: score a dataset that already exists, without generating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from groundset.core.cli.common import (
    batch_size_option,
    db_option,
    echo_outcome,
    graceful,
    plugins_with_warnings,
    progress_option,
)
from groundset.core.dataset_files import FORMATS
from groundset.core.errors import ConfigError
from groundset.core.factory import create_plugin
from groundset.core.score_file import (
    FieldMap,
    ScoreSummary,
    read_dataset,
    read_row_labels,
    score_file,
)
from groundset.core.settings import apply_override
from groundset.core.store import DEFAULT_DB, Store

__all__ = ["score"]

DEFAULT_VALIDATORS = ("overlap", "grounding_embedding", "grounding_nli")


def _validators(names: str | None, with_question: bool, assignments: tuple[str, ...]):
    config: dict = {}
    for assignment in assignments:
        if not assignment.strip().startswith("validators."):
            raise ConfigError(
                f"--set {assignment!r}: score takes validator options only,"
                " e.g. --set validators.grounding_nli.device=cpu"
            )
        apply_override(config, assignment)
    ids = [n.strip() for n in names.split(",") if n.strip()] if names else list(DEFAULT_VALIDATORS)
    if names is None and with_question:
        ids.append("relevance")
    if "relevance" in ids and not with_question:
        raise ConfigError(
            "--validators: relevance scores an answer against its question; pass"
            " --question-field COLUMN, or leave relevance out"
        )
    loaded = plugins_with_warnings()
    tables = config.get("validators", {})
    unused = sorted(set(tables) - set(ids))
    if unused:
        raise ConfigError(
            f"--set validators.{unused[0]}...: {unused[0]!r} is not among the validators"
            f" scored ({', '.join(ids)})"
        )
    return [create_plugin("validator", v, tables.get(v), "--set", loaded) for v in ids]


@click.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="[default: from the name]")
@click.option("--document-field", default="document", show_default=True)
@click.option(
    "--question-field",
    default="question",
    show_default=True,
    help="Column of the question; '' when the data has none",
)
@click.option("--answer-field", default="answer", show_default=True)
@click.option(
    "--validators",
    help="Comma-separated validator ids [default: overlap,"
    " grounding_embedding, grounding_nli, and relevance when there are questions]",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a validator option, e.g. --set validators.grounding_nli.device=cpu",
)
@click.option(
    "--label-field",
    help="Column of a human label (1/0, true/false or good/bad) to record with each row:"
    " the ground truth validators are measured against",
)
@click.option("--labeller", help="Who labelled the --label-field [default: your login name]")
@click.option("--name", help="Run name [default: the file's name]")
@click.option(
    "--model-id",
    default="unknown",
    show_default=True,
    help="The model that wrote the data, recorded on every candidate",
)
@batch_size_option
@db_option
@progress_option
@graceful
def score(
    file: Path,
    fmt: str | None,
    document_field: str,
    question_field: str,
    answer_field: str,
    validators: str | None,
    assignments: tuple[str, ...],
    label_field: str | None,
    labeller: str | None,
    name: str | None,
    model_id: str,
    batch_size: int,
    db: str | None,
    progress: bool,
) -> None:
    """Score FILE (JSONL, CSV, Parquet, or a Hugging Face dataset folder) as a run of its own.

    Every row becomes a candidate with its file and line as provenance; rows with a missing or
    empty field are recorded as failures naming the line. A column that no row has, or an
    empty file, is refused before anything is recorded. Scoring the same file again resumes,
    and scores the recorded rows with any validator (or options) new to the run."""
    from tqdm import tqdm

    fields = FieldMap(document_field, answer_field, question_field or None)
    instances = _validators(validators, bool(question_field), assignments)
    bars: list[Any] = []  # made once the file is read, so the bar starts with its total

    def plan(total: int, done: int) -> None:
        if bars:  # a resumed run's second pass: the validators new to the run
            bars[-1].close()
        unit, desc = ("row", "scoring") if not bars else ("score", "new validators")
        bars.append(tqdm(total=total, initial=done, unit=unit, desc=desc,
                         disable=not progress, dynamic_ncols=True))  # fmt: skip

    rows = read_dataset(file, fields, fmt)  # a mistake in the file or the mapping: no store yet
    labels = read_row_labels(file, rows, label_field) if label_field else None
    with Store(db or DEFAULT_DB) as store:
        try:
            summary = score_file(
                store,
                file,
                instances,
                fields,
                rows=rows,
                fmt=fmt,
                name=name,
                model_id=model_id,
                batch_size=batch_size,
                on_batch=lambda rows: bars[-1].update(rows),
                on_plan=plan,
                labels=labels,
                labeller=labeller,
            )
        finally:
            for bar in bars:
                bar.close()
        _report(store, summary)
        if labels is not None:
            labelled = store.query(
                "SELECT count(*) FROM latest_labels WHERE run_id = ?", [summary.run_id]
            ).rows[0][0]
            click.echo(f"  labelled candidates: {labelled} (groundset labels export -o FILE)")


def _report(store: Store, summary: ScoreSummary) -> None:
    rows = f"{summary.rows} row" + ("" if summary.rows == 1 else "s")
    click.echo(
        f"run {summary.run_id}: {rows}, {summary.failures} could not be"
        f" scored" + (" (resumed)" if summary.resumed else "")
    )
    if summary.rescored:
        click.echo(f"  scored {summary.rescored} recorded rows with the validators new to the run")
    for error in summary.errors[:5]:
        click.echo(f"  {error}")
    if len(summary.errors) > 5:
        click.echo(f"  ... and {len(summary.errors) - 5} more (SELECT parse_error FROM candidates)")
    echo_outcome(store, summary.run_id, summary.failed)
