"""``groundset runs``, ``sql`` and ``export``: reading the store."""

from __future__ import annotations

from pathlib import Path

import click

from groundset.core.cli.common import FORMATS, counted, db_option, plugins_with_warnings, run_option
from groundset.core.export import ExportRequest, Threshold, export_run
from groundset.core.queries import runs_overview
from groundset.core.store import DEFAULT_DB, Store
from groundset.core.tables import render

__all__ = ["check", "export", "runs", "sql"]


@click.command()
@db_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def runs(db: str | None, fmt: str) -> None:
    """List runs with candidate counts, accepted counts and per-validator pass rates."""
    with Store(db or DEFAULT_DB, read_only=True) as store:
        result = runs_overview(store)
    click.echo(render(result.columns, result.rows, fmt))


@click.command()
@db_option
def check(db: str | None) -> None:
    """Verify the store: schema version, references between tables, no work recorded twice,
    run statuses that agree with their rows. Prints one line per problem and exits 1 when
    there is any; the file is only read, never migrated or repaired."""
    from groundset.core.integrity import check_store, totals

    path = db or DEFAULT_DB
    with Store(path, read_only=True, upgrade=False) as store:
        problems = check_store(store)
        counts = totals(store) if not problems else (0, 0, 0)
    if problems:
        for problem in problems:
            click.echo(f"{path}: {problem}", err=True)
        raise SystemExit(1)
    runs_, candidates, scores = counts
    click.echo(
        f"{path}: ok ({counted(runs_, 'run')}, {counted(candidates, 'candidate')},"
        f" {counted(scores, 'score')})"
    )


@click.command()
@click.argument("query")
@db_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def sql(query: str, db: str | None, fmt: str) -> None:
    """Run a read-only SQL QUERY against the store.

    Tables: runs, documents, prompts, candidates, scores, score_details, metrics,
    validator_failures, policies, policy_results, rescored, exports, labels. Views:
    candidate_scores (one row per candidate, one column per metric), latest_scores,
    validator_results, default_failures, accepted_default, accepted, latest_labels.
    docs/sql-cookbook.md has worked queries."""
    with Store(db or DEFAULT_DB, read_only=True) as store:
        result = store.query(query)
    click.echo(render(result.columns, result.rows, fmt))


@click.command()
@run_option
@click.option(
    "--min",
    "mins",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Keep candidates with METRIC >= VALUE, e.g. overlap.token_precision=0.8",
)
@click.option(
    "--max",
    "maxs",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Keep candidates with METRIC <= VALUE, e.g. overlap.verbatim_copy=0",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    help="Export format id (jsonl, parquet, csv, alpaca, chat, or a plugin's)"
    " [default: from the -o suffix]",
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--policy", help="Keep candidates that pass this accept policy (recorded by `accept`)"
)
@click.option("--include-failed", is_flag=True, help="Also export candidates that did not parse")
@click.option(
    "--fields-only",
    is_flag=True,
    help="Only the generated fields: no provenance (run, document, scores)",
)
@db_option
def export(
    run_ref: str,
    mins: tuple[str, ...],
    maxs: tuple[str, ...],
    fmt: str | None,
    output: str,
    policy: str | None,
    include_failed: bool,
    fields_only: bool,
    db: str | None,
) -> None:
    """Export one run's candidates that meet every threshold and policy: JSONL, Parquet, CSV,
    Alpaca JSON, or chat messages JSONL. Every export is recorded in the store (exports), with
    its filters, policy, row count and sha256."""
    thresholds = [Threshold.parse(t, True) for t in mins]
    thresholds += [Threshold.parse(t, False) for t in maxs]
    request = ExportRequest(Path(output), run_ref, fmt, thresholds, policy, include_failed,
                            fields_only)  # fmt: skip
    with Store(db or DEFAULT_DB) as store:
        result = export_run(store, request, plugins_with_warnings())
    click.echo(
        f"exported {counted(result.rows, 'candidate')} of run {result.run_id} to {result.path}"
        f" ({result.exporter_id})"
    )
    if result.precision is not None and result.precision.value is not None:
        p = result.precision
        interval = (
            f" [{p.low:.2f}, {p.high:.2f}]" if p.low is not None and p.high is not None else ""
        )
        click.echo(
            f"  precision on people's labels: {p.value:.2f}{interval} (95% interval) from"
            f" {counted(result.labelled, 'labelled candidate')} of the export"
        )
    if result.rows == 0:
        click.echo(
            "  no candidate met the filters: `groundset report` shows pass rates, and"
            " `groundset sweep METRIC` what each threshold would keep",
            err=True,
        )
