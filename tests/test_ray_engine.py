"""``--engine ray``: the same plan on a Ray cluster writes exactly the local engine's rows: on a
two-node cluster on loopback addresses, after the driver is killed and the run resumed, and
when workers die under it.

The module is one schedule, to stay within a minute on two cores (each Ray worker process pays
its imports, sentence-transformers ~9 s of CPU): the CLI driver to be killed starts first, in
the background, beside the private-cluster fault test; its rerun on two nodes then runs while a
thread computes the local reference. So these tests share one module; the plan and the
loopback cluster are in ``ray_helpers``, the checks that need no cluster in
``test_ray_engine_no_cluster.py``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the [ray] extra")

import cloudpickle  # noqa: E402  (ships with ray)

from groundset.core.engine import RunPlugins, RunSummary, batch_seed  # noqa: E402
from groundset.core.runner import prepare_run, start_run  # noqa: E402
from groundset.core.settings import settings_from_config  # noqa: E402
from groundset.core.store import Store  # noqa: E402
from groundset.core.testing import (  # noqa: E402
    MockBackend,
    MockBackendPlugin,
    MockOptions,
    install_mock_backend,
    registered_plugin,
)
from tests.ray_helpers import (  # noqa: E402
    DOCUMENTS,
    ENV,
    OUTPUTS,
    SAMPLES,
    InBackground,
    LoopbackCluster,
    ray_config,
    running_with,
    write_documents,
)

#: the fault tests need no model: two fifths of the documents, and only the duplicate check, which
#: runs on the driver (no validation actors: the generation actors' output goes to the driver)
SMALL = {"limit_documents": 100, "validators": ["dedup"]}

#: columns that are timings, left out of the comparison
TIMINGS = {"latency_s", "created_at", "updated_at", "started_at", "finished_at", "recorded_at"}

TABLES = ["documents", "prompts", "candidates", "scores", "score_details", "validator_failures"]


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    return write_documents(tmp_path_factory.mktemp("ray-docs") / "plants.jsonl")


def _prepare(documents: Path, db: Path, backend=None, run=None, **ray_options):
    config = ray_config(documents, db, run, **ray_options)
    settings = settings_from_config(config, "test", db.parent)
    with registered_plugin(MockBackendPlugin(), "mock-backend"):
        prepared = prepare_run(settings)
    if backend is not None:
        plugins = prepared.plugins
        prepared.plugins = RunPlugins(plugins.strategy, backend, plugins.validators)
    return prepared


def _run(documents: Path, db: Path, engine: str, backend=None, run=None, **ray_options):
    prepared = _prepare(documents, db, backend, run, **ray_options)
    with Store(db) as store:
        return start_run(prepared, store, engine=engine)


def _columns(store: Store, table: str) -> str:
    names = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " AND table_catalog = current_database() ORDER BY ordinal_position",
        [table],
    ).rows
    return ", ".join(f'"{n}"' for (n,) in names if n not in TIMINGS)


def _differences(one: Path, other: Path) -> dict[str, tuple[int, int]]:
    """Rows of each table in one store and not the other, both ways (EXCEPT ALL: duplicates
    count), on every column but timings."""
    found = {}
    with Store(one, read_only=True) as store:
        store.query(f"ATTACH '{other}' AS other (READ_ONLY)")
        for table in TABLES:
            columns = _columns(store, table)
            assert columns, table
            mine = f"SELECT {columns} FROM {table}"
            theirs = f"SELECT {columns} FROM other.{table}"
            a = store.query(f"SELECT count(*) FROM ({mine} EXCEPT ALL {theirs})").rows[0][0]
            b = store.query(f"SELECT count(*) FROM ({theirs} EXCEPT ALL {mine})").rows[0][0]
            found[table] = (a, b)
    return found


def _same(one: Path, other: Path) -> None:
    differences = _differences(one, other)
    assert all(d == (0, 0) for d in differences.values()), differences


def _value(db: Path, sql: str):
    with Store(db, read_only=True) as store:
        return store.query(sql).rows[0][0]


class LocalReference:
    """The config on the local engine, computed in a thread from the moment this is made: the
    Ray run beside it mostly waits on its workers, so one core would otherwise idle."""

    def __init__(self, documents: Path, db: Path) -> None:
        self.db = db
        self._prepared = _prepare(documents, db)  # here: the plugin registry is not shared
        self.running = InBackground(self._compute)

    def _compute(self) -> RunSummary:
        import torch

        # one thread, as in the Ray workers: the runs in other processes keep the other core
        # busy, and a second thread would spin waiting for it (twice the CPU and wall time)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with Store(self.db) as store:
                return start_run(self._prepared, store, engine="local")
        finally:
            torch.set_num_threads(threads)

    def result(self) -> Path:
        assert self.running.done(300), "the local run never finished"
        assert self.running.result().generated == DOCUMENTS * SAMPLES
        model = "SELECT count(*) FROM scores WHERE validator = 'grounding_embedding'"
        assert _value(self.db, model) > 200
        return self.db


@pytest.fixture(scope="module")
def local_reference(documents, tmp_path_factory):
    reference = LocalReference(documents, tmp_path_factory.mktemp("ray-local") / "local.duckdb")
    yield reference
    reference.running.done(300)


@pytest.fixture(scope="module")
def small_local_store(documents, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("ray-local") / "small.duckdb"
    _run(documents, db, "local", run=SMALL)
    return db


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    cluster = LoopbackCluster()
    try:
        yield cluster
    finally:
        left = cluster.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert not left, f"Ray processes left running: {sorted(left)}"
        shutil.rmtree(cluster.root, ignore_errors=True)  # its logs, kept when the check fails


#: one CPU a node and a stage: generation runs on one node, validation on the other

ONE_STAGE_A_NODE = {"generate_num_cpus": 1, "validate_num_cpus": 1}


class KilledDriver:
    """``groundset run CONFIG --engine ray`` on the loopback cluster, in a process of its own,
    SIGKILLed once its progress bar passes a quarter of the plan. It runs in the background
    from the moment this is made, beside whatever this process does meanwhile."""

    def __init__(self, cluster: LoopbackCluster, documents: Path, directory: Path) -> None:
        self.cluster = cluster
        self.db = directory / "killed.duckdb"
        config = directory / "run.toml"
        config.write_text(_toml(ray_config(documents, self.db, **ONE_STAGE_A_NODE)))
        self.command = [
            sys.executable, "-m", "groundset.core", "run", str(config),
            "--engine", "ray", "--ray-address", cluster.address,
            "--set", "backends.mock.delay_s=0.01",  # slow enough to be killed part-way
        ]  # fmt: skip
        self.env = os.environ | ENV | install_mock_backend(directory / "plugins")
        self.env["HF_HUB_OFFLINE"] = "1"
        self.process: subprocess.Popen | None = None
        self.reached_a_quarter = False
        self._stopping = threading.Event()
        self._driving = InBackground(self._drive)

    def _drive(self) -> None:
        self.cluster.wait()
        if self._stopping.is_set():
            return
        self.process = subprocess.Popen(self.command, stderr=subprocess.PIPE, env=self.env)
        progress = _watch(self.process)
        deadline = time.monotonic() + 180
        try:
            while not progress.wait(0.2):
                ended = self.process.poll() is not None or self._stopping.is_set()
                if ended or time.monotonic() > deadline:
                    break
            self.reached_a_quarter = progress.is_set()
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the driver now, if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)

    def stop(self) -> None:
        self._stopping.set()
        self.kill()
        self._driving.done(240)

    def result(self) -> Path:
        """The store it left, once it is dead."""
        assert self._driving.done(240), "the driver was never killed"
        self._driving.result()
        assert self.reached_a_quarter, "the driver never got past a quarter of its prompts"
        return self.db


@pytest.fixture(scope="module")
def killed_driver(cluster, documents, tmp_path_factory):
    driver = KilledDriver(cluster, documents, tmp_path_factory.mktemp("ray-killed"))
    try:
        yield driver
    finally:
        driver.stop()


def _toml(config: dict) -> str:
    lines = []
    for section, values in config.items():
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if plain:
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
        for name, table in tables.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _watch(driver: subprocess.Popen) -> threading.Event:
    """Set once the driver's progress bar passes a quarter of the plan."""
    reached = threading.Event()
    quarter = DOCUMENTS * SAMPLES // 4

    def read() -> None:
        buffer = b""
        for chunk in iter(lambda: driver.stderr.read1(4096), b""):
            buffer = (buffer + chunk)[-4096:]
            done = [int(n) for n in re.findall(rb"(\d+)/2000", buffer)]
            if done and max(done) >= quarter:
                reached.set()

    threading.Thread(target=read, daemon=True).start()
    return reached


class KillsItsWorker(MockBackend):
    """The mock backend, except that its worker process dies (SIGKILL) while generating: the
    batch seeded ``once`` the first time (a marker file remembers it), the batch seeded
    ``always`` every time."""

    once: int = -1
    always: int = -1
    marker: str = ""

    def generate(self, prompts, params):
        first = params.seed == self.once and not Path(self.marker).exists()
        if first or params.seed == self.always:
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().generate(prompts, params)


def _killer(tmp_path: Path, once: int, always: int) -> MockBackend:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    attributes = {
        "once": batch_seed(0, once),
        "always": batch_seed(0, always),
        "marker": str(tmp_path / "killed"),
    }
    kind = type("KillsItsWorkerAt", (KillsItsWorker,), attributes)
    return kind(MockOptions(outputs=tuple(OUTPUTS), pick="prompt", history=False))


def test_a_private_cluster_retries_killed_workers_records_lost_batches_and_stops(
    killed_driver, documents, small_local_store, tmp_path, monkeypatch
):
    """Without an address the run starts its own cluster, bound to 127.0.0.1, which reports
    no usage to Ray and stops every process of it at the end. On it, batch 3 kills its worker
    once: Ray restarts the actor and retries the call, and the rows are the local engine's.
    Batch 40 kills its worker every time: after ``max_retries`` its call's batches are
    recorded as failed work (``error`` rows, which the next run redoes) and the run completes.

    The module's first test: asking for ``killed_driver`` starts that driver, which then runs
    in its own process and on the loopback cluster beside this test."""
    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)  # groundset's default applies
    sessions = set(Path("/tmp/ray").glob("session_2*"))
    db = tmp_path / "faults.duckdb"
    backend = _killer(tmp_path, once=3, always=40)  # 50 batches: in calls far apart
    summary = _run(documents, db, "ray", backend, run=SMALL, num_cpus=2, max_retries=1)
    assert (tmp_path / "killed").exists(), "the worker was never killed"

    (session,) = set(Path("/tmp/ray").glob("session_2*")) - sessions
    raylet = (session / "logs" / "raylet.out").read_text(errors="replace")
    assert "node_manager address: 127.0.0.1:" in raylet and "node:127.0.0.1" in raylet
    assert running_with(session.name) == [], "the private cluster outlived the run"
    actors = {
        line.removeprefix(":actor_name:")
        for log in (session / "logs").glob("worker-*.out")
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith(":actor_name:")
    }
    assert "_StatsActor" in actors and "_UsageCollectionActor" not in actors, actors

    with Store(db, read_only=True) as store:
        assert store.query("SELECT status FROM runs").rows[0][0] == "complete"
        failed = store.query(
            "SELECT batch_index, any_value(error), count(*) FROM candidates"
            " WHERE status = 'error' GROUP BY ALL"
        ).rows
    assert 40 in {b for b, _, _ in failed} and 3 not in {b for b, _, _ in failed}
    assert all(e.startswith("lost on the Ray cluster") for _, e, _ in failed)
    assert summary.errors == sum(n for _, _, n in failed) < summary.generated
    lost = ", ".join(str(b) for b, _, _ in failed)
    with Store(small_local_store, read_only=True) as store:  # every other batch is as local
        store.query(f"ATTACH '{db}' AS ray (READ_ONLY)")
        for table in ("candidates", "scores"):
            columns = _columns(store, table)
            for one, other in (("main", "ray"), ("ray", "main")):
                kept = (
                    f"SELECT {columns} FROM {{}}.{table} WHERE candidate_id IN (SELECT"
                    f" candidate_id FROM {{}}.candidates WHERE batch_index NOT IN ({lost}))"
                )
                rows = store.query(
                    f"SELECT count(*) FROM ({kept.format(one, one)} EXCEPT ALL"
                    f" {kept.format(other, other)})"
                ).rows[0][0]
                assert rows == 0, (table, one)


def test_a_killed_driver_resumes_on_two_nodes_to_the_local_engines_rows(
    killed_driver, cluster, documents, local_reference
):
    """The CLI driver, killed part-way, left some batches recorded; run again, on the two-node
    cluster, the plan records only the rest, and the store then holds exactly the local
    engine's rows. Both runs place generation and validation on different nodes."""
    db = killed_driver.result()
    recorded = _value(db, "SELECT count(DISTINCT work_id) FROM candidates")
    assert 0 < recorded < DOCUMENTS * SAMPLES
    summary = _run(documents, db, "ray", address=cluster.address, **ONE_STAGE_A_NODE)
    assert summary.already_done == recorded
    assert summary.generated == DOCUMENTS * SAMPLES - recorded
    assert summary.errors == 0
    _same(local_reference.result(), db)
    assert _value(db, "SELECT status FROM runs") == "complete"
