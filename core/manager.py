"""The plugin manager: built-in default plugins, then third-party plugins from the ``groundset``
entry-point group, each loaded and registered on its own so one broken plugin is reported by name
while the rest keep working.

Environment:
  ``GROUNDSET_LOAD_PLUGINS``      comma-separated entry-point names: load only these third-party
                                  plugins (set it empty to load none)
  ``GROUNDSET_DISABLED_PLUGINS``  comma-separated plugin names (entry points or built-in modules)
                                  to skip
  ``GROUNDSET_TRACE_PLUGINS``     set to 1 to print every hook call to stderr
  ``GROUNDSET_STRICT_PLUGINS``    set to 1 to raise on a broken plugin instead of warning
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType

import pluggy

from groundset.core import hookspecs
from groundset.core.errors import PluginError
from groundset.core.registry import KINDS, Register, Registry
from groundset.core.rows import groundset_version

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LoadedPlugins",
    "PluginFailure",
    "PluginInfo",
    "get_plugins",
    "load_plugins",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "groundset"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "groundset.backends.huggingface",
    "groundset.backends.openai_compatible",
    "groundset.backends.watsonx",
    "groundset.plugins.grounded_qa",
    "groundset.plugins.self_instruct",
    "groundset.plugins.loaders",
    "groundset.plugins.exporters",
    "groundset.validators.format",
    "groundset.validators.dedup",
    "groundset.validators.grounding_embedding",
    "groundset.validators.grounding_judge",
    "groundset.validators.grounding_nli",
    "groundset.validators.judge",
    "groundset.validators.overlap",
    "groundset.validators.relevance",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used: its name, where it failed and the error."""

    plugin: str
    stage: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} failed during {self.stage}: {self.error}"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin as ``groundset plugins`` shows it."""

    name: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]
    registered: dict[str, list[str]]


@dataclass
class LoadedPlugins:
    """The plugin manager after loading, with what every plugin registered."""

    pm: pluggy.PluginManager
    registry: Registry
    failures: list[PluginFailure] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def info(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in sorted(self.pm.list_name_plugin()):
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            rows.append(
                PluginInfo(
                    name=name,
                    version=self.versions.get(name, "unknown"),
                    builtin=name in DEFAULT_PLUGINS,
                    hooks=hooks,
                    registered=self.registry.by_plugin(name),
                )
            )
        return rows


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _tracing() -> bool:
    return os.environ.get("GROUNDSET_TRACE_PLUGINS", "") not in ("", "0")


def _strict() -> bool:
    return os.environ.get("GROUNDSET_STRICT_PLUGINS", "") not in ("", "0")


def _fail(loaded: LoadedPlugins, failure: PluginFailure, error: BaseException) -> None:
    if _strict():
        raise PluginError(str(failure)) from error
    loaded.failures.append(failure)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations with no spec: a misspelt hook would otherwise never be called."""
    return [c.name for c in pm.get_hookcallers(plugin) or () if c.spec is None]


def _register(loaded: LoadedPlugins, module: ModuleType | object, name: str, stage: str) -> None:
    pm = loaded.pm
    try:
        pm.register(module, name=name)
    except Exception as error:
        _fail(loaded, PluginFailure(name, stage, f"{type(error).__name__}: {error}"), error)
        return
    unknown = _unknown_hooks(pm, module)
    if unknown:
        pm.unregister(module)
        hook = unknown[0]
        close = difflib.get_close_matches(hook, [h for h, _, _ in KINDS.values()], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        unknown_hook = PluginError(f"unknown hook {hook!r}{hint}")
        _fail(loaded, PluginFailure(name, "hook validation", str(unknown_hook)), unknown_hook)


def _load_defaults(loaded: LoadedPlugins, disabled: set[str]) -> None:
    version = groundset_version()
    for module_name in DEFAULT_PLUGINS:
        if module_name in disabled or module_name.rsplit(".", 1)[-1] in disabled:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            _fail(loaded, PluginFailure(module_name, "import", repr(error)), error)
            continue
        loaded.versions[module_name] = version
        _register(loaded, module, module_name, "registration")


def _load_entry_points(loaded: LoadedPlugins, disabled: set[str]) -> None:
    only = _env_names("GROUNDSET_LOAD_PLUGINS")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = ep.dist.name if ep.dist else ""
        names = {ep.name, dist_name}
        if only is not None and not names & only:
            continue
        if names & disabled or loaded.pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            _fail(loaded, PluginFailure(ep.name, "import", message), error)
            continue
        loaded.versions[ep.name] = ep.dist.version if ep.dist else "unknown"
        _register(loaded, module, ep.name, "registration")


def _collect(loaded: LoadedPlugins) -> None:
    """Call every register_* hook plugin by plugin, so a failure is pinned on its plugin."""
    for kind, (hook_name, _, _) in KINDS.items():
        caller = getattr(loaded.pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            if _tracing():
                sys.stderr.write(f"groundset: {hook_name}() of plugin {impl.plugin_name!r}\n")
            try:
                impl.function(register=Register(loaded.registry, kind, impl.plugin_name))
            except Exception as error:
                message = f"{hook_name}: {type(error).__name__}: {error}"
                _fail(loaded, PluginFailure(impl.plugin_name, "registration", message), error)


def load_plugins(*, entry_points: bool = True) -> LoadedPlugins:
    """A fresh plugin manager with the default plugins and (optionally) installed ones."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if _tracing():
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    loaded = LoadedPlugins(pm=pm, registry=Registry())
    disabled = _env_names("GROUNDSET_DISABLED_PLUGINS") or set()
    _load_defaults(loaded, disabled)
    if entry_points:
        _load_entry_points(loaded, disabled)
    pm.check_pending()
    _collect(loaded)
    return loaded


_loaded: LoadedPlugins | None = None


def get_plugins() -> LoadedPlugins:
    """The process-wide plugins, loaded on first use (never at import time)."""
    global _loaded
    if _loaded is None:
        _loaded = load_plugins()
    return _loaded


def reset_plugins() -> None:
    """Forget the loaded plugins; the next :func:`get_plugins` loads them again."""
    global _loaded
    _loaded = None
