"""Set up a run from checked settings: plugins, documents, run identity, store; then execute it.

The run id is a content hash of everything that decides what gets generated (not the store path,
not the validators), so the same config always names the same run and a rerun resumes it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundset.core.batch_loop import run_status
from groundset.core.bootstrap import run_to_target
from groundset.core.engine import BatchReport, RunPlugins, RunSummary, execute_plan, plan_work
from groundset.core.errors import ConfigError, InputError
from groundset.core.factory import create_plugin
from groundset.core.interfaces import Backend
from groundset.core.manager import LoadedPlugins, get_plugins
from groundset.core.options import build_options
from groundset.core.records import Document
from groundset.core.rows import run_row
from groundset.core.scoring import declarations
from groundset.core.secrets import SECRET_NAMES, redact
from groundset.core.settings import GenerationSettings, Settings
from groundset.core.store import Store

__all__ = [
    "ENGINES",
    "PreparedRun",
    "load_documents",
    "prepare_run",
    "run_identity",
    "start_run",
]

#: where a run's batches execute: this process, or a Ray cluster
ENGINES = ("local", "ray")


@dataclass
class PreparedRun:
    """Everything needed to execute a run, before any model is loaded."""

    run_id: str
    settings: Settings
    plugins: RunPlugins
    documents: list[Document]
    items: list[Any]

    @property
    def batches(self) -> int:
        return len({item.batch_index for item in self.items})


def _instantiate(loaded: LoadedPlugins, kind: str, section: str, item_id: str, s: Settings):
    values = _resolve_paths(s.options_for(section, item_id), s.base_dir)
    return create_plugin(kind, item_id, values, s.source, loaded)


def _resolve_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative file options are relative to the config file, like [documents] path."""
    resolved = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and value and not Path(value).is_absolute():
            candidate = base / value
            if candidate.exists():
                resolved[key] = str(candidate)
    return resolved


def load_documents(settings: Settings, loaded: LoadedPlugins) -> list[Document]:
    path = settings.documents_path()
    if not path.exists():
        raise InputError(f"documents file {path} not found (set [documents] path or --documents)")
    loader_id = settings.documents.format or _loader_for(path, loaded)
    entry = loaded.registry.get("loader", loader_id)
    known = {f.name for f in dataclasses.fields(entry.cls.Options)}
    values = {k: v for k, v in dataclasses.asdict(settings.documents).items() if k in known}
    loader = entry.cls(build_options(entry.cls.Options, values, f"{settings.source}: [documents]"))
    documents = list(loader.load(path))
    if not documents:
        raise InputError(f"{path}: no documents found")
    limit = settings.run.limit_documents
    return documents[:limit] if limit else documents


def _loader_for(path: Path, loaded: LoadedPlugins) -> str:
    if path.is_dir() and not any(p.is_file() for p in path.iterdir()):
        raise InputError(f"{path}: an empty folder, no documents found")
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    suffix = files[0].suffix.lower()  # NOTES.MD is Markdown too
    for item_id in loaded.registry.ids("loader"):
        if suffix in loaded.registry.get("loader", item_id).cls.suffixes:
            return item_id
    raise ConfigError(
        f"no loader for {path}: set [documents] format (one of "
        f"{', '.join(loaded.registry.ids('loader'))})"
    )


#: generation keys added after the first release: part of the identity only when set, so runs
#: recorded before they existed keep their ids
_LATER_GENERATION_KEYS = ("top_k", "min_new_tokens", "repetition_penalty")


def run_identity(settings: Settings, backend: type[Backend] | None = None) -> dict[str, Any]:
    """What decides the generated rows: the run id is its hash. Credentials and a backend's
    ``operational_options`` (concurrency, timeouts) are left out: changing them resumes the
    same run, and no secret ever reaches the store."""
    run = dataclasses.asdict(settings.run)
    for key in ("validators", "limit_documents", "target", "max_rounds", "on_validator_error"):
        run.pop(key)
    generation = dataclasses.asdict(settings.generation)
    defaults = dataclasses.asdict(GenerationSettings())
    for key in _LATER_GENERATION_KEYS:
        if generation[key] == defaults[key]:
            generation.pop(key)
    backend_options = settings.options_for("backends", settings.run.backend)
    left_out = set(SECRET_NAMES)
    if backend is not None:
        left_out |= set(backend.secret_options) | set(backend.operational_options)
    return {
        "run": run,
        "documents": (
            str(settings.documents_path().resolve()) if settings.documents.path else None
        ),
        "generation": generation,
        "strategy": redact(settings.options_for("strategies", settings.run.strategy), ()),
        "backend": {k: v for k, v in backend_options.items() if k not in left_out},
    }


def prepare_run(settings: Settings, loaded: LoadedPlugins | None = None) -> PreparedRun:
    from groundset.core.records import content_hash

    loaded = loaded or get_plugins()
    run = settings.run
    plugins = RunPlugins(
        strategy=_instantiate(loaded, "strategy", "strategies", run.strategy, settings),
        backend=_instantiate(loaded, "backend", "backends", run.backend, settings),
        validators=tuple(
            _instantiate(loaded, "validator", "validators", v, settings) for v in run.validators
        ),
    )
    if settings.documents.path or plugins.strategy.needs_documents:
        documents = load_documents(settings, loaded)
    else:
        documents = []
    if settings.run.target is not None and not plugins.strategy.bootstraps:
        raise ConfigError(
            f"{settings.source}: run.target needs a strategy that plans in rounds (such as"
            f" self_instruct); {run.strategy!r} plans once: use run.samples_per_document"
        )
    run_id = content_hash("run", run_identity(settings, type(plugins.backend)))[:16]
    items = plan_work(run_id, plugins.strategy, documents, settings)
    return PreparedRun(run_id, settings, plugins, documents, items)


def _run_row(prepared: PreparedRun) -> dict[str, Any]:
    s = prepared.settings
    config = {
        "identity": run_identity(s, type(prepared.plugins.backend)),
        "validators": {v: redact(s.options_for("validators", v)) for v in s.run.validators},
        "run": dataclasses.asdict(s.run),
        "pricing": dataclasses.asdict(s.pricing),
        "accept": {name: p.definition() for name, p in s.policies.items()},
    }
    return run_row(
        prepared.run_id,
        s.run.name,
        strategy=s.run.strategy,
        backend=s.run.backend,
        model_id=prepared.plugins.backend.model_id,
        validators=list(s.run.validators),
        fields=list(prepared.plugins.strategy.fields),
        config=config,
        planned=len(prepared.items),
    )


def start_run(
    prepared: PreparedRun,
    store: Store,
    on_batch: Callable[[BatchReport], None] | None = None,
    done: set[str] | None = None,
    engine: str = "local",
) -> RunSummary:
    """Record the run, declare its metrics, and execute every batch not yet recorded
    (``done``: the recorded work ids, when the caller has already asked the store) on the
    ``engine``: ``local`` (this process) or ``ray`` (a Ray cluster; same rows)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "ray" and prepared.settings.run.target is not None:
        raise ConfigError(
            f"{prepared.settings.source}: run.target (rounds that plan from accepted candidates)"
            " runs on the local engine only; leave out --engine ray"
        )
    resumed = store.start_run(_run_row(prepared))
    try:
        with run_status(store, prepared.run_id):  # also for a Ctrl-C before the first batch
            summary = _execute(prepared, store, on_batch, done, engine)
    finally:
        prepared.plugins.backend.close()
    summary.resumed = resumed
    return summary


def _execute(
    prepared: PreparedRun,
    store: Store,
    on_batch: Callable[[BatchReport], None] | None,
    done: set[str] | None,
    engine: str,
) -> RunSummary:
    store.register_metrics(declarations(prepared.plugins.validators))
    if prepared.settings.run.target is not None:
        return run_to_target(store, prepared.run_id, prepared.plugins, prepared.settings, on_batch)
    if engine == "ray":
        from groundset.core.ray_engine import execute_on_ray

        execute = execute_on_ray
    else:
        execute = execute_plan
    return execute(
        store, prepared.run_id, prepared.items, prepared.plugins, prepared.settings, on_batch,
        done=done,
    )  # fmt: skip
