"""Pieces every command shares: the --db option, loading plugins with their warnings, graceful
Ctrl-C, and the lines a scoring command ends with (failed validators, pass rates, accepted)."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import click

from groundset.core.interrupts import graceful_interrupts
from groundset.core.manager import LoadedPlugins, get_plugins
from groundset.core.queries import accepted_count, pass_rates
from groundset.core.store import DEFAULT_DB, Store

__all__ = [
    "FORMATS",
    "batch_size_option",
    "config_db_option",
    "counted",
    "db_option",
    "echo_outcome",
    "graceful",
    "plugins_with_warnings",
    "progress_option",
    "run_option",
    "store_path",
]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 candidate``, ``2 candidates``: messages read as sentences."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


#: output formats of the commands that print tables
FORMATS = click.Choice(["table", "csv", "json", "jsonl"])


def _db_flag(default: str) -> Callable[[Any], Any]:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False),
        default=None,
        help=f"DuckDB store file [default: {default}]",
    )


db_option = _db_flag(DEFAULT_DB)
#: --db of the commands that take a CONFIG, whose [store] db is the default
config_db_option = _db_flag(f"[store] db in the config, else {DEFAULT_DB}")


def store_path(db: str | None, config: str | None) -> str:
    """``--db``, else the ``[store] db`` of CONFIG (as ``groundset run CONFIG`` wrote it), else
    the default file."""
    if db:
        return db
    if config:
        from groundset.core.settings import load_config, settings_from_config

        return settings_from_config(load_config(config), config).store.db
    return DEFAULT_DB


run_option = click.option(
    "--run",
    "run_ref",
    default="latest",
    show_default=True,
    help="Run id, id prefix, run name, or 'latest'",
)


def _quiet_unless_shown(ctx: click.Context, param: click.Parameter, show: bool) -> bool:
    """--no-progress also silences the model libraries' loading bars, which read these
    variables when they are imported (after the flags are parsed)."""
    if not show:
        os.environ["TQDM_DISABLE"] = os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    return show


progress_option = click.option(
    "--progress/--no-progress",
    default=True,
    callback=_quiet_unless_shown,
    help="Show a progress bar",
)
#: candidates scored per transaction by the commands that score recorded or imported rows
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=32, show_default=True
)


def plugins_with_warnings() -> LoadedPlugins:
    """Load plugins once and tell the user, by name, about any that failed."""
    loaded = get_plugins()
    for failure in loaded.failures:
        click.echo(f"warning: {failure}", err=True)
    return loaded


def echo_outcome(
    store: Store, run_id: str, failed: Counter[str] | None = None, fail_closed: bool = True
) -> None:
    """What every scoring command ends with: validators that failed on some batches, the pass
    rate of each validator, and how many candidates are accepted."""
    verdict = "count as rejected" if fail_closed else "count as passed (fail_open)"
    for validator, batches in sorted((failed or Counter()).items()):
        click.echo(
            f"  validator {validator} failed on {batches} batch(es): their candidates {verdict}"
            f" (SELECT error FROM validator_failures)"
        )
    for validator, scored, passed, pct in pass_rates(store, run_id).rows:
        click.echo(f"  {validator:<20} {passed}/{scored} pass ({pct}%) at default thresholds")
    click.echo(f"  accepted (all default thresholds): {accepted_count(store, run_id)}")


def graceful(command: Callable[..., Any]) -> Callable[..., Any]:
    """For commands that record work in batches: the first Ctrl-C stops after the batch in
    flight is committed, the second at once (see ``groundset.core.interrupts``)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with graceful_interrupts(lambda message: click.echo(f"\n{message}", err=True)):
            return command(*args, **kwargs)

    return wrapper
