"""``groundset report``: a terminal summary of one or more runs, and optionally one
self-contained HTML file with plots."""

from __future__ import annotations

import click

from groundset.core.cli.common import db_option
from groundset.core.report import (
    POLICY_PREFIX,
    check_accepted_view,
    check_html_path,
    gather,
    render_html,
    render_text,
    write_html,
)
from groundset.core.store import DEFAULT_DB, Store

__all__ = ["report"]


@click.command("report")
@click.argument("run_refs", nargs=-1, metavar="[RUN]...")
@db_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write one self-contained HTML report (inline SVG plots, no network) to FILE",
)
@click.option(
    "--accepted-view",
    default="accepted_default",
    show_default=True,
    metavar="NAME",
    help="View whose rows count as accepted (it selects candidate_scores rows)",
)
@click.option(
    "--policy",
    default=None,
    metavar="NAME",
    help="Count as accepted what this accept policy passed (recorded by `groundset accept`)",
)
def report(
    run_refs: tuple[str, ...],
    db: str | None,
    html_path: str | None,
    accepted_view: str,
    policy: str | None,
):
    """Summarise runs: candidates, parse failures, accepted, pass rates, a histogram of every
    metric, tokens and latency. RUN is a run id, id prefix, run name or 'latest' (the default);
    give several to report several runs."""
    if html_path:
        check_html_path(html_path)
    if policy:
        accepted_view = f"{POLICY_PREFIX}{policy}"
    with Store(db or DEFAULT_DB, read_only=True) as store:
        check_accepted_view(store, accepted_view)
        run_ids = list(dict.fromkeys(store.resolve_run(ref) for ref in run_refs or ("latest",)))
        reports = [gather(store, run_id, accepted_view) for run_id in run_ids]
        page = render_html(reports, store.path) if html_path else None
    click.echo(render_text(reports))
    if html_path and page is not None:
        path = write_html(html_path, page)
        click.echo(f"\nHTML report: {path}")
