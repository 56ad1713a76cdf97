"""``groundset runs``, ``sql`` and ``export``: reading the store."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import click

from groundset.core.cli_common import FORMATS, counted, db_option, plugins_with_warnings, run_option
from groundset.core.errors import ConfigError
from groundset.core.phases import mark
from groundset.core.queries import Threshold, export_query, runs_overview
from groundset.core.records import file_sha256
from groundset.core.rows import as_json
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
    validator_failures, policies, policy_results, rescored, exports. Views: candidate_scores
    (one row per candidate, one column per metric), latest_scores, validator_results,
    default_failures, accepted_default, accepted. docs/sql-cookbook.md has worked queries."""
    with Store(db or DEFAULT_DB, read_only=True) as store:
        result = store.query(query)
    click.echo(render(result.columns, result.rows, fmt))


def _policy_version(store: Store, policy: str | None, run_id: str) -> str | None:
    if policy is None:
        return None
    rows = store.query(
        "SELECT DISTINCT policy_version FROM accepted WHERE policy = ? AND run_id = ?",
        [policy, run_id],
    ).rows
    return rows[0][0] if rows else None


def _write_atomically(exporter: Any, table: Any, path: Path) -> None:
    """Write beside the target and rename over it: a killed export never leaves a half file,
    and never destroys the previous export at that path."""
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        mark("export", table.num_rows)
        exporter.write(table, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _exporter_for(fmt: str | None, output: Path) -> str:
    if fmt:
        return fmt
    loaded = plugins_with_warnings()
    suffixes = {
        i: loaded.registry.get("exporter", i).cls.suffix for i in loaded.registry.ids("exporter")
    }
    matching = [i for i, suffix in suffixes.items() if suffix and output.name.endswith(suffix)]
    if not matching:  # guessing would write, say, JSONL into "data.txt" without a word
        known = ", ".join(f"{suffix} ({i})" for i, suffix in sorted(suffixes.items()) if suffix)
        raise ConfigError(
            f"-o {output}: no export format has this suffix; end the name in {known},"
            " or pass --format"
        )
    return max(matching, key=lambda i: len(suffixes[i]))


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
    thresholds = [Threshold.parse(t, True) for t in mins] + [
        Threshold.parse(t, False) for t in maxs
    ]
    path = Path(output)
    exporter_id = _exporter_for(fmt, path)
    exporter_cls = plugins_with_warnings().registry.get("exporter", exporter_id).cls
    if not path.parent.exists():
        raise ConfigError(f"-o {output}: folder {path.parent} does not exist")
    with Store(db or DEFAULT_DB) as store:
        run_id = store.resolve_run(run_ref)
        query, params = export_query(store, run_id, thresholds, include_failed, fields_only, policy)
        table = store.arrow(query, params)
        _write_atomically(exporter_cls(), table, path)
        mark("exported", table.num_rows)
        store.record_export(
            {
                "export_id": uuid.uuid4().hex,
                "run_id": run_id,
                "path": str(path.resolve()),
                "format": exporter_id,
                "filters": as_json(
                    {
                        "min": list(mins),
                        "max": list(maxs),
                        "include_failed": include_failed,
                        "at": time.time(),
                    }
                ),
                "rows": table.num_rows,
                "policy": policy,
                "policy_version": _policy_version(store, policy, run_id),
                "sha256": file_sha256(path),
                "provenance": not fields_only,
            }
        )
    noun = "candidate" if table.num_rows == 1 else "candidates"
    click.echo(f"exported {table.num_rows} {noun} of run {run_id} to {path} ({exporter_id})")
    if table.num_rows == 0:
        click.echo(
            "  no candidate met the filters: `groundset report` shows pass rates, and"
            " `groundset sweep METRIC` what each threshold would keep",
            err=True,
        )
