"""``groundset run``: documents -> prompts -> model -> candidates -> scores -> DuckDB."""

from __future__ import annotations

from collections import Counter

import click

from groundset.core.cli.common import (
    config_db_option,
    counted,
    echo_outcome,
    graceful,
    plugins_with_warnings,
    progress_option,
)
from groundset.core.engine import BatchReport, RunSummary
from groundset.core.queries import accepted_count, run_totals
from groundset.core.runner import ENGINES, PreparedRun, prepare_run, start_run
from groundset.core.settings import LIMIT, build_settings
from groundset.core.store import Store

__all__ = ["run"]


def _progress(prepared: PreparedRun, done: int, show: bool):
    from tqdm import tqdm

    return tqdm(
        total=len(prepared.items),
        initial=done,
        unit="prompt",
        desc="generating",
        disable=not show,
        dynamic_ncols=True,
    )


def _print_summary(summary: RunSummary, prepared: PreparedRun, store: Store) -> None:
    rate = summary.candidates / summary.seconds if summary.seconds else 0.0
    parsed = summary.candidates - summary.parse_failures
    click.echo(
        f"run {summary.run_id} ({prepared.settings.run.name or 'unnamed'}): "
        f"{counted(summary.generated, 'prompt')} -> {counted(summary.candidates, 'candidate')} "
        f"({parsed} parsed, {counted(summary.parse_failures, 'parse failure')}) in"
        f" {summary.seconds:.1f} s ({rate:.2f} candidates/s)"
        + (
            f"; {counted(summary.already_done, 'prompt')}"
            f" {'was' if summary.already_done == 1 else 'were'} already recorded"
            if summary.resumed
            else ""
        )
    )
    if summary.errors:
        click.echo(
            f"  {counted(summary.errors, 'prompt')} failed in the backend, recorded with status"
            f" 'error' (SELECT error FROM candidates WHERE status = 'error'); run the same"
            f" config again to retry only them"
        )
    broken = Counter(v for batch in summary.batches for v in batch.failed_validators)
    echo_outcome(store, summary.run_id, broken, prepared.settings.run.fails_closed)
    totals = run_totals(store, summary.run_id)
    if totals.prompt_tokens is not None or totals.completion_tokens is not None:
        prompt, completion = totals.prompt_tokens or 0, totals.completion_tokens or 0
        click.echo(f"  tokens: {prompt} prompt, {completion} completion")
    click.echo(f"  store: {store.path}   next: groundset runs --db {store.path}")


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--name", help="Run name (part of the run's identity) [run.name]")
@click.option("--strategy", help="Prompt strategy id [run.strategy]")
@click.option("--backend", help="Model backend id [run.backend]")
@click.option("--model", help="Model for the chosen backend [backends.<backend>.model]")
@click.option("--validators", help="Comma-separated validator ids [run.validators]")
@click.option("--documents", type=click.Path(), help="Documents file or folder [documents.path]")
@click.option(
    "--samples",
    type=click.IntRange(1, LIMIT),
    help="Prompts per document [run.samples_per_document]",
)
@click.option(
    "--batch-size", type=click.IntRange(1, LIMIT), help="Prompts per batch [run.batch_size]"
)
@click.option("--seed", type=int, help="Seed for planning and sampling [run.seed]")
@click.option("--limit-documents", type=int, help="Use only the first N [run.limit_documents]")
@click.option(
    "--target",
    type=int,
    help="Generate until N candidates are accepted (self_instruct) [run.target]",
)
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="[generation.max_new_tokens]")
@click.option("--temperature", type=click.FloatRange(min=0), help="[generation.temperature]")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="[generation.top_p]")
@config_db_option
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set any config key, e.g. --set backends.huggingface.device=cpu (repeatable)",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="Where batches run: this process, or a Ray cluster (pip install 'groundset[ray]');"
    " the same rows either way",
)
@click.option(
    "--ray-address",
    help="Ray cluster to use with --engine ray, e.g. auto or HOST:6379; default: a private"
    " one on this machine [ray.address]",
)
@progress_option
@graceful
def run(
    config: str | None,
    assignments: tuple[str, ...],
    progress: bool,
    engine: str,
    **flags: object,
) -> None:
    """Generate candidates from documents, score them and record everything.

    Running the same CONFIG again resumes the run: recorded prompts are skipped."""
    settings = build_settings(config, flags, assignments)
    loaded = plugins_with_warnings()
    prepared = prepare_run(settings, loaded)
    with Store(settings.store.db) as store:
        if settings.run.target is not None:
            _run_to_target(prepared, store, progress)
            return
        recorded = store.completed_work_ids(prepared.run_id)
        done = len(recorded & {i.work_id for i in prepared.items})
        click.echo(
            f"run {prepared.run_id}: {counted(len(prepared.documents), 'document')}, "
            f"{counted(len(prepared.items), 'prompt')} in"
            f" {counted(prepared.batches, 'batch', 'batches')}"
            + (f", {done} already recorded" if done else ""),
            err=True,
        )
        if done < len(prepared.items):
            _load(prepared, engine)
        with _progress(prepared, done, progress) as bar:

            def advance(report: BatchReport) -> None:
                bar.update(report.prompts)

            summary = start_run(prepared, store, advance, recorded, engine)
        _print_summary(summary, prepared, store)


def _load(prepared: PreparedRun, engine: str = "local") -> None:
    if engine == "ray":  # each generation actor loads its own copy
        where = prepared.settings.ray.address or "a private Ray cluster on this machine"
        click.echo(f"running on {where} ...", err=True)
        return
    backend = prepared.plugins.backend
    # the class attribute: a backend may decide per instance once its model is loaded
    action = "connecting to" if type(backend).overlaps_validation is True else "loading model"
    click.echo(f"{action} {backend.backend_id}: {backend.model_id} ...", err=True)
    backend.load()


def _run_to_target(prepared: PreparedRun, store: Store, show: bool) -> None:
    """A bootstrapping run: the bar counts accepted candidates up to the target."""
    from tqdm import tqdm

    target = prepared.settings.run.target or 0
    accepted = accepted_count(store, prepared.run_id) if _known(store, prepared) else 0
    click.echo(
        f"run {prepared.run_id}: {prepared.settings.run.strategy} until"
        f" {counted(target, 'candidate')} {'is' if target == 1 else 'are'} accepted"
        f" ({accepted} so far), {counted(len(prepared.items), 'prompt')} a round",
        err=True,
    )
    if accepted < target:
        _load(prepared)
    with tqdm(
        total=target, initial=min(accepted, target), unit="accepted", desc="bootstrapping",
        disable=not show, dynamic_ncols=True,
    ) as bar:  # fmt: skip

        def advance(report: BatchReport) -> None:
            bar.update(min(accepted_count(store, prepared.run_id), target) - bar.n)

        summary = start_run(prepared, store, advance)
    _print_summary(summary, prepared, store)
    if summary.stopped_early:
        click.echo(f"  stopped at {summary.accepted} of {target} accepted: {summary.stopped_early}")


def _known(store: Store, prepared: PreparedRun) -> bool:
    return bool(store.query("SELECT 1 FROM runs WHERE run_id = ?", [prepared.run_id]).rows)
