"""``groundset accept``, ``sweep`` and ``compare``: choosing thresholds with the numbers in view."""

from __future__ import annotations

from pathlib import Path

import click

from groundset.core.analysis import apply_policy, compare_runs, recorded_policies, sweep
from groundset.core.cli.common import (
    FORMATS,
    config_db_option,
    counted,
    db_option,
    run_option,
    store_path,
)
from groundset.core.errors import ConfigError
from groundset.core.policies import parse_policies
from groundset.core.settings import load_config
from groundset.core.store import DEFAULT_DB, Store
from groundset.core.tables import render

__all__ = ["accept", "compare", "sweep_command"]


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--policy", "policy_name", required=True, help="Policy name: [accept.NAME]")
@run_option
@config_db_option
def accept(config: str | None, policy_name: str, run_ref: str, db: str | None) -> None:
    """Record which candidates of a run pass an accept policy.

    The policy comes from CONFIG's [accept.NAME] table, or else from the config the run was
    made with, or else is the newest policy NAME that `groundset calibrate` learned. Verdicts
    land in policy_results (view: accepted), beside the policy's rules."""
    from groundset.core.learned_policy import apply_learned, recorded_learned

    with Store(store_path(db, config)) as store:
        run_id = store.resolve_run(run_ref)
        if config:
            policies = parse_policies(load_config(config), config)
            source = config
        else:
            policies = recorded_policies(store, run_id)
            source = f"the config of run {run_id[:12]}"
        learned = None if policy_name in policies else recorded_learned(store, policy_name)
        if policy_name not in policies and learned is None:
            known = ", ".join(sorted(policies)) or "none"
            hint = "" if config else f"; pass the CONFIG that defines [accept.{policy_name}]"
            raise ConfigError(f"no policy {policy_name!r} in {source} (policies: {known}){hint}")
        if learned is not None:
            outcome = apply_learned(store, learned, run_id)
        else:
            outcome = apply_policy(store, policies[policy_name], run_id)
    share = 100 * outcome.passed / outcome.candidates if outcome.candidates else 0.0
    click.echo(
        f"policy {outcome.policy} (version {outcome.version}): {outcome.passed} of"
        f" {counted(outcome.candidates, 'candidate')} of run {run_id} pass ({share:.1f}%)"
    )
    click.echo(
        f"  SQL: SELECT * FROM candidate_scores JOIN accepted USING (candidate_id)"
        f" WHERE policy = '{outcome.policy}'"
    )


@click.command("sweep")
@click.argument("metric")
@run_option
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--html", type=click.Path(dir_okay=False), help="Also write the curve as HTML")
@db_option
def sweep_command(
    metric: str, run_ref: str, steps: int, fmt: str, html: str | None, db: str | None
) -> None:
    """How many candidates pass at each threshold of METRIC, given every other default
    threshold: the question to ask before picking a number."""
    with Store(db or DEFAULT_DB, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        rows, base = sweep(store, run_id, metric, steps)
    table = [(round(r.threshold, 6), r.passing, round(100 * r.share, 1)) for r in rows]
    click.echo(render(["threshold", "passing", "pct_of_others"], table, fmt))
    if fmt == "table":
        click.echo(
            f"{counted(base, 'candidate')} of run {run_id} pass every other default threshold"
        )
    if not rows and base:
        validator = metric.split(".", 1)[0]
        click.echo(
            f"no {metric} scores in run {run_id}: `groundset validate --run {run_id[:12]}"
            f" --validators {validator}` adds them",
            err=True,
        )
    if html:
        Path(html).write_text(_sweep_html(metric, run_id, rows, base), encoding="utf-8")
        click.echo(f"wrote {html}", err=True)


def _sweep_html(metric: str, run_id: str, rows: list, base: int) -> str:
    from html import escape

    width, height, pad = 640, 320, 48
    if rows:
        xs = [r.threshold for r in rows]
        low, high = min(xs), max(xs)
        span = (high - low) or 1.0
        top = max(base, 1)
        points = " ".join(
            f"{pad + (r.threshold - low) / span * (width - 2 * pad):.1f},"
            f"{height - pad - r.passing / top * (height - 2 * pad):.1f}"
            for r in rows
        )
    else:
        low = high = 0.0
        points = ""
    title = escape(f"{metric}: candidates passing as the threshold moves (run {run_id[:12]})")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<svg class="plot" data-plot="sweep" width="{width}" height="{height}" role="img">
<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>
<polyline fill="none" stroke="steelblue" stroke-width="2" points="{points}"/>
<text x="{width / 2}" y="{height - 10}" text-anchor="middle">{escape(metric)} threshold
({low:.3g} to {high:.3g})</text>
<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">
passing (of {base})</text></svg></body></html>
"""


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
def compare(runs: tuple[str, ...], fmt: str, db: str | None) -> None:
    """Pass rates and score distributions of two or more runs side by side (two models, two
    prompts, on the same documents)."""
    if len(runs) < 2:
        raise ConfigError("compare needs at least two runs, e.g. groundset compare RUN_A RUN_B")
    with Store(db or DEFAULT_DB, read_only=True) as store:
        run_ids = [store.resolve_run(ref) for ref in runs]
        columns, rows = compare_runs(store, run_ids)
    click.echo(render(columns, rows, fmt))
