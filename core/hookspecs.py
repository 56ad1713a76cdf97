"""The hook markers and every hook groundset calls. Plugins implement these with ``@hookimpl``.

Each hook is a collector: groundset calls it once per plugin with a ``register`` callable and the
plugin hands over its classes. ``register`` validates what it gets and names the plugin in every
error, so one bad registration never hides the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from groundset.core.registry import Register

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "groundset"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backends(register: Register) -> None:
    """Register model backends: classes derived from :class:`groundset.core.Backend`.

    :param register: call ``register(BackendClass)`` once per backend; its ``backend_id`` is the
        name users give in ``[run] backend = ...`` or ``--backend``.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register prompt strategies: classes derived from :class:`groundset.core.Strategy`.

    :param register: call ``register(StrategyClass)`` once per strategy; its ``strategy_id`` is
        the name users give in ``[run] strategy = ...`` or ``--strategy``.
    """


@hookspec
def register_validators(register: Register) -> None:
    """Register validators: classes derived from :class:`groundset.core.Validator`.

    :param register: call ``register(ValidatorClass)`` once per validator; its ``validator_id``
        prefixes its metrics in the store (``overlap.token_precision``).
    """


@hookspec
def register_loaders(register: Register) -> None:
    """Register document loaders: classes derived from :class:`groundset.core.Loader`.

    :param register: call ``register(LoaderClass)`` once per loader; its ``loader_id`` is the
        name users give in ``[documents] format = ...``, and its ``suffixes`` pick it by file name.
    """


@hookspec
def register_exporters(register: Register) -> None:
    """Register export formats: classes derived from :class:`groundset.core.Exporter`.

    :param register: call ``register(ExporterClass)`` once per format; its ``exporter_id`` is the
        name users give to ``groundset export --format``.
    """
