"""``groundset labels import`` and ``labels export``: people's verdicts on candidates, in and out
of the store as files."""

from __future__ import annotations

from pathlib import Path

import click

from groundset.core.cli.common import counted, db_option
from groundset.core.dataset_files import FORMATS
from groundset.core.labels import ASPECTS, export_labels, import_labels
from groundset.core.store import DEFAULT_DB, Store

__all__ = ["labels_group"]

aspect_choice = click.Choice(ASPECTS)


@click.group("labels")
def labels_group() -> None:
    """Human labels on candidates (1 good, 0 bad), the ground truth validators are measured
    against: import them from a file, export them to one. The newest label per candidate,
    aspect and labeller counts (the latest_labels view)."""


@labels_group.command("import")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--run",
    "run_ref",
    help="A run `groundset score` recorded: rows name the line of its file (a `line` column)"
    " instead of a `candidate_id`",
)
@click.option("--labeller", help="Who labelled, where the file has no labeller column"
              " [default: your login name]")  # fmt: skip
@click.option("--aspect", type=aspect_choice, default="overall", show_default=True,
              help="What the labels judge, where the file has no aspect column")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="[default: from the name]")
@db_option
def import_command(
    file: Path, run_ref: str | None, labeller: str | None, aspect: str, fmt: str | None,
    db: str | None,
) -> None:  # fmt: skip
    """Record the labels of FILE (JSONL, CSV or Parquet): a `label` column (1/0, true/false or
    good/bad) and a `candidate_id` column; optional `aspect`, `labeller` and `note` columns.
    The file is checked whole first: a row naming an unknown candidate, a bad value or a label
    contradicting another row of the same labeller refuses it, and nothing is recorded."""
    with Store(db or DEFAULT_DB) as store:
        done = import_labels(store, file, run_ref=run_ref, labeller=labeller, aspect=aspect,
                             fmt=fmt)  # fmt: skip
    runs = counted(done.runs, "run")
    click.echo(f"recorded {counted(done.labels, 'label')} from {file} ({runs})")
    if done.changed:
        click.echo(
            f"  {counted(done.changed, 'label')} changed an earlier label of the same labeller;"
            " the newest counts (SELECT * FROM labels keeps both)"
        )


@labels_group.command("export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_ref", help="Only this run's labels [default: every run's]")
@click.option("--aspect", type=aspect_choice, help="Only this aspect [default: every aspect]")
@db_option
def export_command(output: Path, run_ref: str | None, aspect: str | None, db: str | None) -> None:
    """Write the latest labels to OUTPUT (.jsonl, .csv or .parquet): candidate, run, aspect,
    label, labeller, note, and where each came from."""
    with Store(db or DEFAULT_DB, read_only=True) as store:
        run_id = store.resolve_run(run_ref) if run_ref else None
        written = export_labels(store, output, run_id, aspect)
    click.echo(f"exported {counted(written, 'label')} to {output}")
