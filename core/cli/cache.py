"""``groundset cache stats`` and ``cache clear``: the response cache of the LLM calls validators
make (``groundset.core.response_cache``)."""

from __future__ import annotations

import click

from groundset.core.cli.common import counted

__all__ = ["cache_group"]

path_option = click.option(
    "--path",
    help="The cache file [default: $GROUNDSET_RESPONSE_CACHE, else"
    " ~/.cache/groundset/responses.duckdb]",
)


@click.group("cache")
def cache_group() -> None:
    """The response cache: every reply an LLM validator (the judge) received, kept by backend,
    model, prompt and generation settings, so scoring again with the same judge makes no call."""


@cache_group.command("stats")
@path_option
def stats_command(path: str | None) -> None:
    """Entries and hits per backend and model."""
    from groundset.core.response_cache import ResponseCache

    cache = ResponseCache(path)
    rows = cache.stats()
    if not rows:
        click.echo(f"{cache.path}: empty")
        return
    click.echo(f"{cache.path}:")
    for row in rows:
        click.echo(
            f"  {row['backend']} {row['model']}: {counted(row['entries'], 'reply', 'replies')},"
            f" {counted(int(row['hits'] or 0), 'hit')}, last {row['last']:%Y-%m-%d %H:%M}"
        )


@cache_group.command("clear")
@click.option("--backend", help="Only this backend's replies")
@click.option("--model", help="Only this model's replies")
@path_option
def clear_command(backend: str | None, model: str | None, path: str | None) -> None:
    """Remove kept replies (all of them unless --backend or --model narrows it)."""
    from groundset.core.response_cache import ResponseCache

    cache = ResponseCache(path)
    removed = cache.clear(backend, model)
    click.echo(f"removed {counted(removed, 'reply', 'replies')} from {cache.path}")
