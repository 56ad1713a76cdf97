"""groundset's public API for plugins and scripts: the hook marker, the plugin kinds, the records
they exchange and the error vocabulary. Importing it loads no model library."""

from __future__ import annotations

from groundset.core.errors import (
    BackendError,
    ConfigError,
    GroundsetError,
    InputError,
    PluginError,
    StoreError,
)
from groundset.core.factory import create_backend
from groundset.core.hookspecs import hookimpl
from groundset.core.interfaces import Backend, Exporter, Loader, Strategy, Validator
from groundset.core.records import (
    Candidate,
    Document,
    Generation,
    GenerationParams,
    Metric,
    ParsedCandidate,
    PlannedPrompt,
    Prompt,
    content_hash,
)
from groundset.core.registry import Register

__all__ = [
    "Backend",
    "BackendError",
    "Candidate",
    "ConfigError",
    "Document",
    "Exporter",
    "Generation",
    "GenerationParams",
    "GroundsetError",
    "InputError",
    "Loader",
    "Metric",
    "ParsedCandidate",
    "PlannedPrompt",
    "PluginError",
    "Prompt",
    "Register",
    "StoreError",
    "Strategy",
    "Validator",
    "content_hash",
    "create_backend",
    "hookimpl",
]
