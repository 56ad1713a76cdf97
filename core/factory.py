"""Build a registered plugin from its id and a table of options, with errors naming the table.
Validators that need a model backend (a judge, question generation) use this too."""

from __future__ import annotations

from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.interfaces import Backend
from groundset.core.manager import LoadedPlugins, get_plugins
from groundset.core.options import build_options
from groundset.core.secrets import resolve_env

__all__ = ["SECTIONS", "create_backend", "create_plugin"]

#: plugin kind -> config section holding its option tables
SECTIONS = {"strategy": "strategies", "backend": "backends", "validator": "validators"}


def create_plugin(
    kind: str,
    plugin_id: str,
    options: dict[str, Any] | None = None,
    where: str = "",
    loaded: LoadedPlugins | None = None,
) -> Any:
    """An instance of the ``kind`` plugin ``plugin_id``; ``where`` prefixes error messages.
    String options of the form ``"$env:NAME"`` are read from the environment here."""
    entry = (loaded or get_plugins()).registry.get(kind, plugin_id)
    table = f"[{SECTIONS.get(kind, kind)}.{plugin_id}]"
    prefix = f"{where}: " if where else ""
    values = resolve_env(options or {}, f"{prefix}{table}")
    built = build_options(entry.cls.Options, values, f"{prefix}{table}")
    try:
        return entry.cls(built)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if not where or where in message else prefix + message) from None


def create_backend(
    backend_id: str, options: dict[str, Any] | None = None, *, cache: bool | str = False
) -> Backend:
    """A registered backend, for plugins that need to generate text themselves. With ``cache``
    (``True`` for the default file, or a path), its replies are kept in the response cache and
    the same call with the same model and settings is answered from there
    (:mod:`groundset.core.response_cache`)."""
    backend: Backend = create_plugin("backend", backend_id, options)
    if not cache:
        return backend
    from groundset.core.response_cache import CachedBackend, ResponseCache

    path = None if cache is True else str(cache)
    return CachedBackend(backend, options or {}, ResponseCache(path))
