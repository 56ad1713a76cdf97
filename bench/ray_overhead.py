"""What the Ray engine costs and what it buys, on this machine: items/s on the local engine and
on a private Ray cluster for the same config.

    python bench/ray_overhead.py [--items 20000] [--busy-items 6000] [--repeats 3] [--json FILE]

Two stages, both through the real engines and stores, with the mock backend answering per
prompt and the ``format`` validator:

Each engine runs each stage at two sizes, and the cost per item is the slope between them:
fixed costs (starting the cluster, Ray Data starting its actors: a few seconds a run) drop out
and are reported beside.

- **trivial**: the backend answers at once. Ray's extra cost per item is its slope minus the
  local engine's. Target: <= 0.2 ms. A run of 20,000 items takes 10-15 s, and the same run
  varies by a quarter from one time to the next on a 2-core machine (disk, page cache): each
  size runs ``--repeats`` times on each engine, and the slope is taken between the medians.
- **busy**: the backend spends 10 ms of CPU on each prompt, and Ray runs two generation actors;
  no validator, so that the stage measured is the only one (on two cores a third actor starting
  up beside two busy ones is starved, and Ray Data holds generation back until it takes the
  output). Target: >= 1.2x the local engine's items/s. The whole runs' ratio, fixed costs
  included, is printed beside.

Peak memory is the proportional set size (PSS: shared pages split between the processes that
map them) of this process and every process under it (the private cluster's daemons and
workers), sampled every 0.1 s while the Ray runs go (they go first, on a fresh driver).
Target: <= 1.5 GiB. Prints one line per measure and a summary, and exits 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from results import save

from groundset.core.records import Generation, GenerationParams, Prompt
from groundset.core.runner import prepare_run, start_run
from groundset.core.settings import settings_from_config
from groundset.core.store import Store
from groundset.core.testing import MockBackend, MockBackendPlugin, MockOptions, registered_plugin

EXTRA_MS_TARGET = 0.2
SPEEDUP_TARGET = 1.2
MEMORY_TARGET_GIB = 1.5
BATCH = 64
SAMPLES = 10
BUSY_S = 0.010
OUTPUTS = (
    "[question]: How many engines did the plant make?\n[answer]: It made 70 engines.",
    "[question]: Where is the plant?\n[answer]: The plant is in Ohio.",
    "Sorry, I cannot answer that.",
)


class BusyBackend(MockBackend):
    """The mock backend, spending ``BUSY_S`` of CPU on each prompt, as a small model would.
    Defined here, in ``__main__``, so Ray ships the class itself to its workers."""

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        end = time.thread_time() + BUSY_S * len(prompts)
        while time.thread_time() < end:  # a clock read is a system call: read it now and then
            sum(i * i for i in range(2_000))
        return super().generate(prompts, params)


def write_documents(folder: Path, count: int) -> Path:
    path = folder / f"plants-{count}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            text = f"Plant {i} in Ohio made {i * 7} engines in {1990 + i % 30}."
            handle.write(json.dumps({"title": f"Plant {i}", "text": text}) + "\n")
    return path


def run_once(
    folder: Path,
    items: int,
    engine: str,
    busy: bool = False,
    validators: tuple[str, ...] = ("format",),
    **ray_options: Any,
) -> dict[str, float]:
    """One run of ``items`` work items on a fresh store: the whole run's wall time (with Ray:
    from handing the plan to Ray Data, whose stages then start their actors, to the last batch
    recorded; the cluster is already up), and when its first batch was recorded."""
    documents = write_documents(folder, items // SAMPLES)
    db = folder / f"{engine}-{items}-{busy}-{time.monotonic_ns()}.duckdb"
    config = {
        "run": {
            "name": "ray-overhead",
            "backend": "mock",
            "validators": list(validators),
            "batch_size": BATCH,
            "samples_per_document": SAMPLES,
        },
        "documents": {"path": str(documents)},
        "store": {"db": str(db)},
        "backends": {"mock": {"outputs": list(OUTPUTS), "pick": "prompt", "history": False}},
        "ray": {"num_cpus": 2, **ray_options},
    }
    settings = settings_from_config(config, "bench", folder)
    with registered_plugin(MockBackendPlugin(), "mock-backend"):
        prepared = prepare_run(settings)
    if busy:
        options = MockOptions(outputs=OUTPUTS, pick="prompt", history=False)
        plugins = prepared.plugins
        prepared.plugins = type(plugins)(plugins.strategy, BusyBackend(options), plugins.validators)
    marks: list[float] = []
    started = time.perf_counter()
    with Store(db) as store:
        summary = start_run(
            prepared, store, lambda _: marks.append(time.perf_counter()), None, engine
        )
    whole = time.perf_counter() - started
    assert summary.generated == items, (summary.generated, items)
    db.unlink()
    return {"items": items, "seconds": whole, "first_batch_s": marks[0] - started}


class MemorySampler:
    """Peak PSS of this process and every process under it."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, tree_pss(os.getpid()))


def tree_pss(root: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def repeated(
    run: Callable[[int], dict[str, Any]], sizes: tuple[int, int], repeats: int
) -> dict[int, dict[str, Any]]:
    """Each size ``repeats`` times, the sizes alternating (so that a slow spell of the machine
    falls on both); per size, the run of median time, with every time kept beside it."""
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n in sizes:
            runs[n].append(run(n))
    chosen = {}
    for n, done in runs.items():
        ordered = sorted(done, key=lambda r: r["seconds"])
        chosen[n] = ordered[len(ordered) // 2] | {"all_seconds": [r["seconds"] for r in done]}
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="trivial stage, larger size")
    parser.add_argument("--busy-items", type=int, default=6_000, help="10 ms stage, larger size")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each trivial size")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import ray

    from groundset.core.ray_engine import ray_cluster
    from groundset.core.settings import RaySettings

    sizes = (args.items // 4, args.items)
    busy_sizes = (args.busy_items // 3, args.busy_items)
    busy_ray_options = {"generate_actors": 2}
    results: dict[str, Any] = {"batch": BATCH, "busy_ms_per_item": BUSY_S * 1000}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        with ray_cluster(RaySettings(num_cpus=2)), MemorySampler() as memory:
            results["ray_start_s"] = time.perf_counter() - started
            run_once(folder, sizes[0], "ray", generate_num_cpus=0.5)  # warm-up: workers, imports
            trivial = repeated(
                lambda n: run_once(folder, n, "ray", generate_num_cpus=0.5), sizes, args.repeats
            )
            busy_ray = {
                n: run_once(folder, n, "ray", True, (), **busy_ray_options) for n in busy_sizes
            }
        assert not ray.is_initialized()
        local = repeated(lambda n: run_once(folder, n, "local"), sizes, args.repeats)
        busy_local = {n: run_once(folder, n, "local", True, ()) for n in busy_sizes}

    def slope(runs: dict[int, dict[str, float]]) -> float:
        """Seconds per item between the two sizes: fixed costs drop out."""
        (small, one), (large, other) = sorted(runs.items())
        return (other["seconds"] - one["seconds"]) / (large - small)

    extra_ms = (slope(trivial) - slope(local)) * 1000
    speedup = slope(busy_local) / slope(busy_ray)
    whole = busy_sizes[1] / busy_local[busy_sizes[1]]["seconds"]
    whole_ray = busy_sizes[1] / busy_ray[busy_sizes[1]]["seconds"]
    peak_gib = memory.peak / 2**30
    results |= {
        "trivial": {
            "repeats": args.repeats,
            "local": list(local.values()),
            "ray": list(trivial.values()),
            "local_ms_per_item": slope(local) * 1000,
            "ray_ms_per_item": slope(trivial) * 1000,
            "extra_ms_per_item": extra_ms,
        },
        "busy": {
            "local": list(busy_local.values()),
            "ray": list(busy_ray.values()),
            "local_items_per_s": 1 / slope(busy_local),
            "ray_items_per_s": 1 / slope(busy_ray),
            "speedup": speedup,
            "whole_run_speedup": whole_ray / whole,
        },
        "peak_pss_gib": peak_gib,
    }
    t, busy = results["trivial"], results["busy"]
    print(
        f"trivial stage: local {t['local_ms_per_item']:.3f} ms/item, Ray"
        f" {t['ray_ms_per_item']:.3f} ms/item: {extra_ms:+.3f} ms/item"
        f" (target <= {EXTRA_MS_TARGET})"
    )
    print(
        f"10 ms stage, 2 actors: local {busy['local_items_per_s']:,.1f} items/s, Ray"
        f" {busy['ray_items_per_s']:,.1f} items/s: {speedup:.2f}x (target >= {SPEEDUP_TARGET});"
        f" whole runs of {busy_sizes[1]:,} items, Ray starting its actors included:"
        f" {busy['whole_run_speedup']:.2f}x"
    )
    print(
        f"starting the private cluster {results['ray_start_s']:.1f} s; first batch of a run"
        f" after {trivial[sizes[1]]['first_batch_s']:.1f} s; peak memory while Ray ran"
        f" {peak_gib:.2f} GiB PSS (target <= {MEMORY_TARGET_GIB})"
    )
    missed = [
        name
        for name, ok in (
            ("extra per item", extra_ms <= EXTRA_MS_TARGET),
            ("speedup", speedup >= SPEEDUP_TARGET),
            ("memory", peak_gib <= MEMORY_TARGET_GIB),
        )
        if not ok
    ]
    if args.json:
        save(args.json, results)
    print("ray_overhead: " + ("OK" if not missed else "MISSED " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
