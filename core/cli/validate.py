"""``groundset validate``: score a run's recorded candidates with new or changed validators."""

from __future__ import annotations

from pathlib import Path

import click

from groundset.core.cli.common import (
    batch_size_option,
    config_db_option,
    echo_outcome,
    graceful,
    plugins_with_warnings,
    progress_option,
    run_option,
    store_path,
)
from groundset.core.errors import ConfigError
from groundset.core.factory import create_plugin
from groundset.core.rescoring import rescore_run
from groundset.core.settings import apply_override, load_config, settings_from_config
from groundset.core.store import Store

__all__ = ["validate"]


def _validators(config_path: str | None, names: str | None, assignments: tuple[str, ...]):
    config = load_config(config_path) if config_path else {}
    for assignment in assignments:
        apply_override(config, assignment)
    source = config_path or "<flags>"
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    settings = settings_from_config(config, source=source, base_dir=base)
    ids = [n.strip() for n in names.split(",") if n.strip()] if names else None
    if ids is None:
        if not config.get("run", {}).get("validators"):
            raise ConfigError("name the validators to run: --validators a,b (or give a CONFIG)")
        ids = list(settings.run.validators)
    loaded = plugins_with_warnings()
    instances = [
        create_plugin("validator", v, settings.options_for("validators", v), source, loaded)
        for v in ids
    ]
    return instances, settings.run.fails_closed


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@run_option
@click.option(
    "--validators", help="Comma-separated validator ids [default: CONFIG's run.validators]"
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a validator option, e.g. --set validators.overlap.copy_threshold=0.8",
)
@batch_size_option
@config_db_option
@progress_option
@graceful
def validate(
    config: str | None,
    run_ref: str,
    validators: str | None,
    assignments: tuple[str, ...],
    batch_size: int,
    db: str | None,
    progress: bool,
) -> None:
    """Score a run's recorded candidates again, without generating.

    Validator options come from CONFIG's [validators.*] tables and --set. Scores are kept per
    validator version (its version plus a hash of its options): a changed validator adds new
    rows beside the old ones, candidate_scores shows the newest, and re-running skips what this
    exact version already scored."""
    from tqdm import tqdm

    instances, fail_closed = _validators(config, validators, assignments)
    with Store(store_path(db, config)) as store:
        run_id = store.resolve_run(run_ref)
        total = store.query("SELECT count(*) FROM candidates WHERE run_id = ?", [run_id]).rows[0][0]
        with tqdm(
            total=total * len(instances),
            unit="score",
            desc="validating",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            summary = rescore_run(
                store, run_id, instances, batch_size, bar.update, fail_closed=fail_closed
            )
        click.echo(
            f"run {run_id}: scored {summary.scored} candidate-validator pairs"
            f" ({summary.skipped} already scored by the same validator version)"
        )
        echo_outcome(store, run_id, summary.failed, fail_closed)
