"""The run configuration: a TOML file, overridden by command-line flags, checked key by key.

Every option lives at a dotted key (``run.batch_size``, ``backends.huggingface.model``) and any
key can be set from the command line with ``--set KEY=VALUE``; errors name the file and key."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.options import build_options
from groundset.core.policies import parse_policies
from groundset.core.records import GenerationParams

__all__ = [
    "FLAG_KEYS",
    "LIMIT",
    "DocumentsSettings",
    "GenerationSettings",
    "PricingSettings",
    "RaySettings",
    "RunSettings",
    "Settings",
    "apply_override",
    "build_settings",
    "load_config",
    "settings_from_config",
]

#: upper bound of the run's counts (prompts per document, batch size, rounds): a value past it
#: is a typo, and planning it would run out of memory before saying so
LIMIT = 100_000

SECTIONS = (
    "run", "documents", "generation", "store", "pricing", "accept", "strategies", "backends",
    "validators", "ray",
)  # fmt: skip
PLUGIN_SECTIONS = ("strategies", "backends", "validators")


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: what to run and how to batch it."""

    name: str | None = None
    strategy: str = "grounded_qa"
    backend: str = "huggingface"
    validators: tuple[str, ...] = (
        "format",
        "overlap",
        "relevance",
        "grounding_embedding",
        "grounding_nli",
    )
    samples_per_document: int = 1
    batch_size: int = 4
    seed: int = 0
    limit_documents: int | None = None
    #: bootstrapping strategies: generate until this many candidates are accepted
    target: int | None = None
    #: bootstrapping strategies: stop after this many rounds even short of the target
    max_rounds: int = 1000
    #: a validator that raises on a batch: "fail_closed" rejects those candidates,
    #: "fail_open" lets its verdict count as passed; either way the run goes on
    on_validator_error: str = "fail_closed"

    @property
    def fails_closed(self) -> bool:
        """Do the candidates a validator failed on count as rejected?"""
        return self.on_validator_error == "fail_closed"


@dataclass(frozen=True)
class DocumentsSettings:
    """``[documents]``: where the source documents are and how to read them."""

    path: str = ""
    format: str | None = None
    text_field: str = "text"
    title_field: str = "title"


@dataclass(frozen=True)
class GenerationSettings:
    """``[generation]``: backend-independent sampling settings (the seed's defaults)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    do_sample: bool = True
    top_k: int | None = None
    min_new_tokens: int = 0
    repetition_penalty: float | None = None

    def params(self, seed: int, stop: tuple[str, ...]) -> GenerationParams:
        return GenerationParams(seed=seed, stop=stop, **dataclasses.asdict(self))


@dataclass(frozen=True)
class StoreSettings:
    """``[store]``: the DuckDB file."""

    db: str = "groundset.duckdb"


@dataclass(frozen=True)
class PricingSettings:
    """``[pricing]``: what the model costs, for cost per accepted candidate in ``runs``."""

    input_per_million_tokens: float | None = None
    output_per_million_tokens: float | None = None
    currency: str = "USD"


@dataclass(frozen=True)
class RaySettings:
    """``[ray]``: how ``groundset run --engine ray`` uses a Ray cluster. None of it is part of
    the run's identity: the same config writes the same rows on either engine."""

    #: an existing cluster ("auto", "ray://HOST:10001", "HOST:6379"); empty: start a private one
    #: on this machine, bound to 127.0.0.1, and stop it at the end
    address: str = ""
    #: CPUs of the private cluster (0: all of this machine's)
    num_cpus: int = 0
    #: generation actors (each loads the backend once) and what each reserves
    generate_actors: int = 1
    generate_num_cpus: float = 1.0
    generate_num_gpus: float = 0.0
    #: validation actors (each loads the stateless validators once) and what each reserves;
    #: stateful validators (near-duplicates) run on the driver, in plan order
    validate_actors: int = 1
    validate_num_cpus: float = 1.0
    validate_num_gpus: float = 0.0
    #: planned batches each actor call takes (each is still generated and scored on its own)
    batches_per_call: int = 8
    #: planned batches rendered and handed to Ray at a time: bounds the driver's memory
    window_batches: int = 20_000
    #: times Ray retries a call whose worker died, before its batches are recorded as failed
    max_retries: int = 3


@dataclass(frozen=True)
class Settings:
    """A checked config; ``plugin_options`` keeps each plugin's raw table for the plugin."""

    run: RunSettings
    documents: DocumentsSettings
    generation: GenerationSettings
    store: StoreSettings
    pricing: PricingSettings = field(default_factory=PricingSettings)
    ray: RaySettings = field(default_factory=RaySettings)
    #: ``[accept.NAME]`` policies, by name
    policies: dict[str, Any] = field(default_factory=dict)
    plugin_options: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: str = "<flags>"
    base_dir: Path = Path(".")

    def options_for(self, section: str, plugin_id: str) -> dict[str, Any]:
        return dict(self.plugin_options.get(section, {}).get(plugin_id, {}))

    def documents_path(self) -> Path:
        if not self.documents.path:
            raise ConfigError(
                f"{self.source}: [documents] path is missing: set it, or pass --documents FILE"
            )
        return _resolve(self.base_dir, self.documents.path)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config; a missing or malformed file is a ConfigError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply ``KEY=VALUE`` (VALUE parsed as TOML, else taken as a string) to ``config``."""
    key, sep, raw = assignment.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not sep or not parts:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. run.batch_size=8")
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {part!r} is not a table")
        node = child
    node[parts[-1]] = _parse_value(raw.strip())


def _plugin_tables(config: dict[str, Any], source: str) -> dict[str, dict[str, dict[str, Any]]]:
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for section in PLUGIN_SECTIONS:
        value = config.get(section, {})
        if not isinstance(value, dict) or any(not isinstance(v, dict) for v in value.values()):
            raise ConfigError(
                f"{source}: [{section}] must hold one table per plugin, e.g. [{section}.NAME]"
            )
        tables[section] = copy.deepcopy(value)
    return tables


def settings_from_config(
    config: dict[str, Any], source: str = "<flags>", base_dir: Path | None = None
) -> Settings:
    """Check a config dict; unknown sections and keys are errors naming ``source``."""
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})"
        )

    def section(name: str, cls: type) -> Any:
        value = config.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name} must be a table, e.g. [{name}]")
        return build_options(cls, value, f"{source}: [{name}]")

    settings = Settings(
        run=section("run", RunSettings),
        documents=section("documents", DocumentsSettings),
        generation=section("generation", GenerationSettings),
        store=section("store", StoreSettings),
        pricing=section("pricing", PricingSettings),
        ray=section("ray", RaySettings),
        policies=parse_policies(config, source),
        plugin_options=_plugin_tables(config, source),
        source=source,
        base_dir=base_dir or Path("."),
    )
    _check_ranges(settings)
    return settings


def _check_ranges(settings: Settings) -> None:
    checks = [
        (1 <= settings.run.batch_size <= LIMIT, f"run.batch_size must be 1 to {LIMIT:,}"),
        (
            1 <= settings.run.samples_per_document <= LIMIT,
            f"run.samples_per_document must be 1 to {LIMIT:,}",
        ),
        (
            settings.run.target is None or 1 <= settings.run.target <= LIMIT**2,
            f"run.target must be 1 to {LIMIT**2:,}",
        ),
        (1 <= settings.run.max_rounds <= LIMIT, f"run.max_rounds must be 1 to {LIMIT:,}"),
        (
            settings.run.on_validator_error in ("fail_closed", "fail_open"),
            'run.on_validator_error must be "fail_closed" or "fail_open"',
        ),
        (
            min(settings.ray.generate_actors, settings.ray.validate_actors) >= 1,
            "ray.generate_actors and ray.validate_actors must be at least 1",
        ),
        (
            min(settings.ray.batches_per_call, settings.ray.window_batches) >= 1,
            "ray.batches_per_call and ray.window_batches must be at least 1",
        ),
        (settings.ray.max_retries >= 0, "ray.max_retries must be >= 0"),
        (
            min(
                settings.ray.num_cpus,
                settings.ray.generate_num_cpus,
                settings.ray.generate_num_gpus,
                settings.ray.validate_num_cpus,
                settings.ray.validate_num_gpus,
            )
            >= 0,
            "ray CPU and GPU counts must be >= 0",
        ),
        (settings.generation.max_new_tokens >= 1, "generation.max_new_tokens must be at least 1"),
        (settings.generation.temperature >= 0, "generation.temperature must be >= 0"),
        (0 < settings.generation.top_p <= 1, "generation.top_p must be in (0, 1]"),
        (
            settings.generation.top_k is None or settings.generation.top_k >= 1,
            "generation.top_k must be at least 1 (leave it out for no top-k cut)",
        ),
        (
            0 <= settings.generation.min_new_tokens <= settings.generation.max_new_tokens,
            "generation.min_new_tokens must be between 0 and max_new_tokens",
        ),
        (
            settings.generation.repetition_penalty is None
            or settings.generation.repetition_penalty > 0,
            "generation.repetition_penalty must be > 0 (1.0 means no penalty)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{settings.source}: {message}")


#: flag -> config key; ``{backend}`` is the backend chosen for this run
FLAG_KEYS = {
    "name": "run.name",
    "strategy": "run.strategy",
    "backend": "run.backend",
    "samples": "run.samples_per_document",
    "batch_size": "run.batch_size",
    "seed": "run.seed",
    "limit_documents": "run.limit_documents",
    "target": "run.target",
    "documents": "documents.path",
    "max_new_tokens": "generation.max_new_tokens",
    "temperature": "generation.temperature",
    "top_p": "generation.top_p",
    "db": "store.db",
    "ray_address": "ray.address",
}


def build_settings(
    config_path: str | None, flags: dict[str, Any], assignments: tuple[str, ...] = ()
) -> Settings:
    """A run's settings from its config file, then explicit flags (``FLAG_KEYS``, plus
    ``validators`` and ``model``), then ``--set`` assignments: the last one wins."""
    config = load_config(config_path) if config_path else {}
    for name, value in config.items():  # flags below write into these tables
        if not isinstance(value, dict) and name in (
            "run", "documents", "store", "backends", "ray"
        ):  # fmt: skip
            raise ConfigError(f"{config_path}: {name} must be a table, e.g. [{name}]")
    for flag, key in FLAG_KEYS.items():
        if flags.get(flag) is not None:
            section, name = key.split(".")
            value = flags[flag]
            if flag in ("documents", "db"):
                value = str(Path(value).resolve())
            config.setdefault(section, {})[name] = value
    if flags.get("validators") is not None:
        names = [v.strip() for v in flags["validators"].split(",") if v.strip()]
        config.setdefault("run", {})["validators"] = names
    backend = config.get("run", {}).get("backend", "huggingface")
    if flags.get("model"):
        config.setdefault("backends", {}).setdefault(backend, {})["model"] = flags["model"]
    for assignment in assignments:
        apply_override(config, assignment)
    source = config_path or "<flags>"
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    config.setdefault("run", {}).setdefault("name", Path(config_path).stem if config_path else None)
    return settings_from_config(config, source=source, base_dir=base)
