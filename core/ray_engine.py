"""The Ray engine: the same plan and the same rows as the local engine, past one machine.

Each planned batch is one row of a Ray Dataset. Generation and validation are actor pools
(callable classes that build their plugins and load their models once per actor); the driver
reads the scored batches back in plan order and stays the single writer of the DuckDB store, one
transaction per batch, exactly as the local engine records them. Batches are fixed when planning
and every id is a content hash, so where a batch runs does not change its rows; a resumed run
filters recorded work on the driver before Ray sees it.

Stateful validators (near-duplicates) compare each candidate with the run's earlier ones, so
they run on the driver, in plan order, as in the local engine."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from groundset.core.batch_loop import record_batches
from groundset.core.engine import (
    BatchReport,
    BuiltBatch,
    RunPlugins,
    RunSummary,
    WorkItem,
    batch_params,
    build_batch,
    pending_work,
    record_built,
    replay_recorded,
)
from groundset.core.errors import ConfigError
from groundset.core.interfaces import Strategy
from groundset.core.records import Generation, GenerationParams, PlannedPrompt
from groundset.core.scoring import BatchScores
from groundset.core.settings import RaySettings, Settings
from groundset.core.store import Store

__all__ = ["execute_on_ray", "ray_cluster"]

#: environment a worker needs to load models the way the driver does (offline hubs, caches,
#: plugins loaded from a path); passed to every worker of the run
PASS_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "GROUNDSET_LOAD_PLUGINS",
    "PYTHONPATH",
)


@dataclass(frozen=True)
class PluginSpec:
    """A plugin as its class and built options: what an actor needs to make its own instance.
    Workers do not consult the plugin registry, so a plugin the driver loaded from a path or a
    test module runs the same there (its module must be importable on every node)."""

    cls: type
    options: Any

    @classmethod
    def of(cls, plugin: Any) -> PluginSpec:
        return cls(type(plugin), plugin.options)

    def build(self) -> Any:
        return self.cls(self.options)


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray: pip install 'groundset[ray]' (ray[data]) on the driver and"
            " on every node"
        ) from None
    return ray


def failed_batch(
    run_id: str,
    batch: list[WorkItem],
    params: GenerationParams,
    strategy: Strategy,
    model_id: str,
    error: str,
) -> BuiltBatch:
    """A batch that could not be generated, as ``error`` rows: the next run retries it."""
    prompts = [item.planned.prompt for item in batch]
    generations = [Generation(text="", model_id=model_id, error=error) for _ in batch]
    return build_batch(run_id, batch, (prompts, generations), strategy, params)


class GenerateStage:
    """Ray actor: builds the strategy and the backend and loads its model once, then generates
    and parses each planned batch it is given on its own (its prompts arrive rendered), as the
    local engine does."""

    def __init__(self, run_id: str, settings: Settings, strategy: PluginSpec, backend: PluginSpec):
        self.run_id = run_id
        self.settings = settings
        self.strategy = strategy.build()
        self.backend = backend.build()
        self.backend.load()

    def __call__(self, rows: Any) -> Any:
        payloads = [
            pickle.dumps((self._one(pickle.loads(p)), BatchScores()))
            for p in rows["payload"].to_pylist()
        ]
        return _table(rows["batch_index"].to_pylist(), payloads)

    def _one(self, batch: list[WorkItem]) -> BuiltBatch:
        params = batch_params(batch, self.strategy, self.settings)
        prompts = [item.planned.prompt for item in batch]
        backend = self.backend
        try:
            generations = backend.generate(prompts, params)
            return build_batch(
                self.run_id,
                batch,
                (prompts, generations),
                self.strategy,
                params,
                backend.backend_id,
            )
        except Exception as error:  # the batch becomes failed work; the run goes on
            message = f"{type(error).__name__}: {error}"[:2000]
            return failed_batch(
                self.run_id, batch, params, self.strategy, backend.model_id, message
            )


class ValidateStage:
    """Ray actor: builds the stateless validators once and scores each batch on its own (a
    batch's candidates are scored together, as in the local engine: batch-sensitive models
    give the same floats)."""

    def __init__(self, validators: Sequence[PluginSpec], fail_closed: bool):
        self.validators = [spec.build() for spec in validators]
        self.fail_closed = fail_closed

    def __call__(self, rows: Any) -> Any:
        payloads = []
        for payload in rows["payload"].to_pylist():
            built, scored = pickle.loads(payload)
            scored.add(self.validators, built.candidates, self.fail_closed)
            payloads.append(pickle.dumps((built, scored)))
        return _table(rows["batch_index"].to_pylist(), payloads)


def _table(batch_indexes: list[int], payloads: list[bytes]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "batch_index": pa.array(batch_indexes, pa.int64()),
            "payload": pa.array(payloads, pa.binary()),
        }
    )


@contextlib.contextmanager
def ray_cluster(options: RaySettings) -> Iterator[Any]:
    """Connected to Ray for the length of a run: the cluster at ``options.address``, or a
    private one on this machine, bound to 127.0.0.1 and stopped at the end. A session the caller
    already opened is used as it is and left open."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    env = {name: os.environ[name] for name in PASS_ENV if name in os.environ}
    # workers' own loading bars would interleave with the driver's progress bar
    env |= {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    common: dict[str, Any] = {
        "runtime_env": {"env_vars": env},
        "logging_level": logging.WARNING,
        "log_to_driver": True,
    }
    with contextlib.ExitStack() as private:  # what a private cluster changes, undone at the end
        try:
            if options.address:
                ray.init(address=options.address, **common)
            else:
                private.enter_context(_no_usage_reports())
                with _loopback(ray), _quiet(TOKEN_NOTICE):
                    ray.init(
                        address="local",  # never attach to a cluster left from another session
                        num_cpus=options.num_cpus or None,
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        # no idle workers kept warm for tasks: the stages are actors (~150 MB each)
                        _system_config={
                            "enable_worker_prestart": False,
                            "prestart_worker_first_driver": False,
                        },
                        **common,
                    )
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = options.address or "a private cluster on this machine"
            raise ConfigError(f"ray: cannot connect to {where}: {error}") from None
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # groundset's
        try:
            yield ray
        finally:
            ray.shutdown()


#: the logger of Ray's notice, on every private cluster, that token authentication is on
TOKEN_NOTICE = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Ray announces that it turned token authentication on for a private cluster (its
    default, which groundset keeps): a line through the middle of the progress bar that asks
    nothing of the user. Errors still show."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_usage_reports() -> Iterator[None]:
    """A private cluster sends Ray no usage statistics, unless ``RAY_USAGE_STATS_ENABLED`` says
    otherwise: groundset works offline, and the report costs an extra actor process on the
    cluster (~100 MB) for nothing."""
    if "RAY_USAGE_STATS_ENABLED" in os.environ:
        yield
        return
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        yield
    finally:
        os.environ.pop("RAY_USAGE_STATS_ENABLED", None)


@contextlib.contextmanager
def _loopback(ray: Any) -> Iterator[None]:
    """A private cluster stays on 127.0.0.1. On Linux Ray swaps a loopback node address for
    the machine's outward one (so that other nodes could join); a single-machine cluster needs
    no such address, and Ray keeps 127.0.0.1 where multi-node clusters are off (its Windows and
    macOS default), so they are off while it starts."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    before = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before


def _rendered(batch: list[WorkItem]) -> list[WorkItem]:
    """The batch with its prompts rendered, as it travels to the workers."""
    return [
        WorkItem(
            i.work_id,
            i.batch_index,
            i.sample_index,
            PlannedPrompt(i.planned.document, i.planned.prompt),
        )
        for i in batch
    ]


def _dataset(ray: Any, rows: list[dict[str, Any]], run_id: str, plugins: RunPlugins, s: Settings):
    """The window's rows through a generation pool and, when there are stateless validators,
    a validation pool."""
    from ray.data import ActorPoolStrategy

    options = s.ray
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # batches come back in plan order
    context.enable_progress_bars = False
    context.max_errored_blocks = -1  # a call Ray gave up on loses its batches, not the run
    # a block per actor call: each call's batches reach the next stage (and the driver, in
    # plan order) as soon as it is done
    blocks = math.ceil(len(rows) / options.batches_per_call)
    #: (actor class, its arguments, actors, CPUs and GPUs each)
    stages: list[tuple[type, tuple[Any, ...], int, float, float]] = [
        (
            GenerateStage,
            (run_id, s, PluginSpec.of(plugins.strategy), PluginSpec.of(plugins.backend)),
            options.generate_actors,
            options.generate_num_cpus,
            options.generate_num_gpus,
        )
    ]
    stateless = [PluginSpec.of(v) for v in plugins.validators if not v.stateful]
    if stateless:
        stages.append(
            (
                ValidateStage,
                (stateless, s.run.fails_closed),
                options.validate_actors,
                options.validate_num_cpus,
                options.validate_num_gpus,
            )
        )
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    for stage, arguments, size, cpus, gpus in stages:
        with warnings.catch_warnings():
            # the retry limits are Ray "remote args", which Ray 2.64 is to name differently
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = dataset.map_batches(
                stage,
                fn_constructor_args=arguments,
                batch_size=options.batches_per_call,
                batch_format="pyarrow",
                # one call at a time on each actor: when a batch kills its worker, only the
                # call running there fails, not the calls queued behind it
                compute=ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
                num_cpus=cpus,
                num_gpus=gpus,
                # a worker that dies is restarted and its call retried, max_retries times
                # (Ray's default is forever: a batch that kills its worker would never end)
                max_restarts=-1,
                max_task_retries=options.max_retries,
            )
    return dataset


def _windows(batches: list[list[WorkItem]], size: int) -> Iterator[list[list[WorkItem]]]:
    for start in range(0, len(batches), size):
        yield batches[start : start + size]


def execute_on_ray(
    store: Store,
    run_id: str,
    items: list[WorkItem],
    plugins: RunPlugins,
    settings: Settings,
    on_batch: Callable[[BatchReport], None] | None = None,
    *,
    done: set[str] | None = None,
) -> RunSummary:
    """:func:`groundset.core.engine.execute_plan` on a Ray cluster: the same batches, scores
    and rows; the driver records each batch as it comes back, through the same batch loop."""
    summary, recorded, pending = pending_work(store, run_id, items, done)
    stateful = [v for v in plugins.validators if v.stateful]
    started = time.perf_counter()

    def record(result: tuple[BuiltBatch, BatchScores]) -> BatchReport:
        built, scored = result
        if stateful:
            scored.add(stateful, built.candidates, settings.run.fails_closed)
        report = record_built(store, run_id, built, scored, recorded)
        summary.add(report)
        return report

    try:
        if pending:
            replay_recorded(store, run_id, stateful)
            results = _scored_batches(list(pending.values()), run_id, plugins, settings)
            record_batches(store, run_id, results, record, on_batch)
    finally:
        summary.seconds = time.perf_counter() - started
    store.set_run_status(run_id, "complete")
    return summary


def _scored_batches(
    batches: list[list[WorkItem]], run_id: str, plugins: RunPlugins, settings: Settings
) -> Iterator[tuple[BuiltBatch, BatchScores]]:
    """Every pending batch, generated and scored on the cluster, in plan order, one window of
    batches per Ray Data execution; the cluster is shut down when the loop closes this."""
    with ray_cluster(settings.ray) as ray:
        for window in _windows(batches, settings.ray.window_batches):
            yield from _run_window(ray, window, run_id, plugins, settings)


def _run_window(
    ray: Any,
    window: list[list[WorkItem]],
    run_id: str,
    plugins: RunPlugins,
    settings: Settings,
) -> Iterator[tuple[BuiltBatch, BatchScores]]:
    """One Ray Data execution over a window of planned batches. Batches whose calls Ray gave
    up on (a worker that died on every retry) come last, as failed work."""
    by_index = {batch[0].batch_index: batch for batch in window}
    rows = [{"batch_index": i, "payload": pickle.dumps(_rendered(b))} for i, b in by_index.items()]
    dataset = _dataset(ray, rows, run_id, plugins, settings)
    del rows  # Ray holds them now
    size = settings.ray.batches_per_call
    for table in dataset.iter_batches(batch_size=size, batch_format="pyarrow", prefetch_batches=1):
        for index, payload in zip(
            table["batch_index"].to_pylist(), table["payload"].to_pylist(), strict=True
        ):
            by_index.pop(index)
            yield pickle.loads(payload)
    retries = settings.ray.max_retries
    for batch in by_index.values():
        params = batch_params(batch, plugins.strategy, settings)
        message = f"lost on the Ray cluster: its worker died on {retries + 1} attempts"
        model = plugins.backend.model_id
        yield failed_batch(run_id, batch, params, plugins.strategy, model, message), BatchScores()
