"""``groundset plugins``: every plugin with its version, hooks and what it registered."""

from __future__ import annotations

import json

import click

from groundset.core.cli.common import plugins_with_warnings
from groundset.core.manager import LoadedPlugins
from groundset.core.tables import render

__all__ = ["plugins"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Output JSON")
@click.option(
    "--metrics",
    "list_metrics",
    is_flag=True,
    help="List every validator's metrics: range, direction, default threshold, cost, version",
)
def plugins(as_json: bool, list_metrics: bool) -> None:
    """List installed plugins (built-in and third-party) and what they provide."""
    loaded = plugins_with_warnings()
    if list_metrics:
        _metrics(loaded, as_json)
        return
    infos = loaded.info()
    if as_json:
        plugins_json = [
            {
                "name": i.name,
                "version": i.version,
                "builtin": i.builtin,
                "hooks": list(i.hooks),
                "registered": i.registered,
            }
            for i in infos
        ]
        failed = [{"name": f.plugin, "stage": f.stage, "error": f.error} for f in loaded.failures]
        click.echo(json.dumps({"plugins": plugins_json, "failed": failed}, indent=2))
        return
    rows = [
        (
            i.name,
            i.version,
            "built-in" if i.builtin else "installed",
            ", ".join(i.hooks),
            "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in sorted(i.registered.items())),
        )
        for i in infos
    ]
    click.echo(render(["plugin", "version", "source", "hooks", "provides"], rows))


def _metrics(loaded: LoadedPlugins, as_json: bool) -> None:
    """Every declared metric as the store names it (``validator.metric``)."""
    rows = []
    for validator_id in loaded.registry.ids("validator"):
        entry = loaded.registry.get("validator", validator_id)
        cls = entry.cls
        for m in cls.metrics:
            rows.append(
                {
                    "metric": f"{validator_id}.{m.name}",
                    "plugin": entry.plugin,
                    "range": f"{m.low:g}-{m.high:g}",
                    "better": "higher" if m.higher_is_better else "lower",
                    "default_threshold": m.default_threshold,
                    "cost": cls.cost,
                    "version": cls.version,
                    "description": m.description,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ["metric", "range", "better", "default_threshold", "cost", "version", "plugin"]
    table = [tuple("" if r[c] is None else r[c] for c in columns) for r in rows]
    click.echo(render(columns, table))


@click.group("plugin")
def plugin_group() -> None:
    """Write your own plugin: `groundset plugin new NAME --kind validator`."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["validator", "backend", "strategy"]),
    required=True,
    help="What the plugin adds",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder to create the package in",
)
def new(name: str, kind: str, parent: str) -> None:
    """Write a working plugin package groundset-NAME with a passing test: then
    `pip install -e groundset-NAME` and `python -m pytest groundset-NAME`."""
    from pathlib import Path

    from groundset.core.scaffold import new_plugin

    folder = new_plugin(name, kind, Path(parent))
    click.echo(f"wrote {folder}/ (a {kind} plugin, entry point groundset: {name})")
    click.echo(f"  next: pip install -e {folder} && python -m pytest {folder}")
