"""groundset's public API for plugins and scripts: the hook marker, the plugin kinds, the records
they exchange, the error vocabulary and a few small helpers plugins share. Importing it loads no
model library.

The other public modules: :mod:`groundset.core.remote` (the base class and helpers of backends
that call a model server), :mod:`groundset.core.quiet_loading` (loading Hugging Face models
without their progress bars) and :mod:`groundset.core.testing` (tests of plugins). The rest of
``groundset.core`` is internal and may change in any release."""

from __future__ import annotations

from groundset.core.dataset_files import json_lines
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
from groundset.core.secrets import scrub
from groundset.core.threads import DaemonThreadPool

__all__ = [
    "Backend",
    "BackendError",
    "Candidate",
    "ConfigError",
    "DaemonThreadPool",
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
    "json_lines",
    "scrub",
]
