"""``groundset plugins``: every plugin with its version, hooks and what it registered."""

from __future__ import annotations

import json

import click

from groundset.core.cli_common import plugins_with_warnings
from groundset.core.tables import render

__all__ = ["plugins"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Output JSON")
def plugins(as_json: bool) -> None:
    """List installed plugins (built-in and third-party) and what they provide."""
    loaded = plugins_with_warnings()
    infos = loaded.info()
    if as_json:
        rows = [
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
        click.echo(json.dumps({"plugins": rows, "failed": failed}, indent=2))
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
