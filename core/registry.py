"""The objects handed to ``register_*`` hooks. They check what a plugin registers and remember
which plugin registered it, so every error and every listing can name the plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from groundset.core.errors import PluginError
from groundset.core.interfaces import Backend, Exporter, Loader, Strategy, Validator

__all__ = ["KINDS", "Register", "Registered", "Registry"]

T = TypeVar("T")

#: kind name -> (hook name, base class, id attribute)
KINDS: dict[str, tuple[str, type, str]] = {
    "backend": ("register_backends", Backend, "backend_id"),
    "strategy": ("register_strategies", Strategy, "strategy_id"),
    "validator": ("register_validators", Validator, "validator_id"),
    "loader": ("register_loaders", Loader, "loader_id"),
    "exporter": ("register_exporters", Exporter, "exporter_id"),
}


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A registered class and the plugin it came from."""

    id: str
    cls: type[T]
    plugin: str


@dataclass
class Registry:
    """Everything registered, by kind and id."""

    entries: dict[str, dict[str, Registered]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def get(self, kind: str, item_id: str) -> Registered:
        try:
            return self.entries[kind][item_id]
        except KeyError:
            known = ", ".join(sorted(self.entries[kind])) or "none"
            raise PluginError(
                f"no {kind} named {item_id!r} (registered: {known}); "
                "`groundset plugins` lists what is installed"
            ) from None

    def ids(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for kind, items in self.entries.items():
            for item in items.values():
                if item.plugin == plugin:
                    found.setdefault(kind, []).append(item.id)
        return found


class Register:
    """The ``register`` callable one plugin receives for one kind."""

    def __init__(self, registry: Registry, kind: str, plugin: str) -> None:
        self._registry = registry
        self._kind = kind
        self._plugin = plugin

    def __call__(self, cls: type) -> type:
        _, base, id_attr = KINDS[self._kind]
        who = f"plugin {self._plugin!r}"
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"{who} registered {cls!r} as a {self._kind}, "
                f"but it is not a subclass of groundset.core.{base.__name__}"
            )
        item_id = getattr(cls, id_attr, None)
        if not isinstance(item_id, str) or not item_id:
            raise PluginError(f"{who}: {cls.__name__} has no {id_attr} string")
        if self._kind == "validator":
            _check_declarations(cls, who)
        existing = self._registry.entries[self._kind].get(item_id)
        if existing is not None and existing.cls is not cls:
            raise PluginError(
                f"{who} registered {self._kind} {item_id!r}, "
                f"already registered by plugin {existing.plugin!r}"
            )
        self._registry.entries[self._kind][item_id] = Registered(item_id, cls, self._plugin)
        return cls


def _check_declarations(cls: type, who: str) -> None:
    """A validator's declared metrics and cost class, checked when it registers, so a
    malformed declaration names the plugin before any run."""
    from groundset.core.interfaces import COST_CLASSES
    from groundset.core.records import Metric

    name = cls.__name__
    cost = getattr(cls, "cost", None)
    if cost not in COST_CLASSES:
        raise PluginError(f"{who}: {name}.cost is {cost!r}; one of {', '.join(COST_CLASSES)}")
    metrics = getattr(cls, "metrics", ())
    if not metrics or not all(isinstance(m, Metric) for m in metrics):
        raise PluginError(f"{who}: {name}.metrics must declare at least one groundset Metric")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise PluginError(f"{who}: {name} declares a metric twice")
    for metric in metrics:
        if not metric.low <= metric.high:
            raise PluginError(f"{who}: {name} metric {metric.name!r} has low > high")
