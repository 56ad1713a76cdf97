"""The ``groundset`` command: a click group whose commands live in one module per group in this
package (``run``, ``data``, ``analysis``, ``report``, ``plugins``, ``validate``, ``score``,
``labels``, ``calibrate``, ``review``, ``cache``; shared flags in ``common``). Commands only
parse flags and print: the work is in ``groundset.core``. User mistakes (any GroundsetError)
become one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import shlex
import sys
import warnings
from typing import Any

import click

from groundset.core.errors import GroundsetError, GroundsetWarning

__all__ = ["EXIT_USAGE", "cli", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    """A GroundsetError at the CLI boundary."""

    exit_code = EXIT_USAGE


class GroundsetGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from groundset.core.sharing import set_notify

        set_notify(lambda message: click.echo(message, err=True))
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except GroundsetError as error:
            raise UserError(str(error)) from None
        except KeyboardInterrupt:
            command = shlex.join(["groundset", *sys.argv[1:]])
            click.echo(
                f"\ninterrupted: everything recorded is kept; resume with: {command}", err=True
            )
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=GroundsetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="groundset")
def cli() -> None:
    """groundset: generate synthetic data from your documents, score every candidate, keep all
    of it in DuckDB."""


def _add_commands() -> None:
    from groundset.core.cli import (
        analysis,
        cache,
        calibrate,
        data,
        labels,
        plugins,
        report,
        review,
        run,
        score,
        validate,
    )

    for command in (
        run.run, data.runs, data.sql, data.check, data.export, analysis.accept,
        analysis.sweep_command, analysis.compare, report.report, plugins.plugins,
        plugins.plugin_group, validate.validate, score.score, labels.labels_group,
        calibrate.calibrate_command, review.review_command, cache.cache_group,
    ):  # fmt: skip
        cli.add_command(command)


_add_commands()


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """groundset's own warnings as one line on stderr; others as Python prints them."""
    if issubclass(category, GroundsetWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)


_default_show_warning = warnings.showwarning


def main() -> None:
    cli(prog_name="groundset")
