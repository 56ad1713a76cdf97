"""The error vocabulary: every user mistake becomes one of these, with a message that says what to
do next. The CLI turns them into a one-line message and exit code 2; nothing else should."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "GroundsetError",
    "GroundsetWarning",
    "InputError",
    "PluginError",
    "StoreError",
]


class GroundsetError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class ConfigError(GroundsetError):
    """A config file, key or command-line option is missing or malformed."""


class InputError(GroundsetError):
    """A documents or examples file cannot be read; the message names the file and line."""


class PluginError(GroundsetError):
    """A plugin failed to load or register, or a name refers to no registered plugin."""


class BackendError(GroundsetError):
    """A model backend cannot be set up or failed to generate."""


class StoreError(GroundsetError):
    """The DuckDB store cannot be opened, or a query against it failed."""


class GroundsetWarning(UserWarning):
    """Something the user chose that weakens a guarantee (e.g. TLS verification off); the CLI
    prints it as one ``warning:`` line."""
