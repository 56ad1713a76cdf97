"""What the ``--engine ray`` tests share: the plan they run (250 generated documents, the mock
backend's canned outputs, the config) and a two-node Ray cluster on loopback addresses with the
cleanup of every process it started (``ray stop`` would also stop any other Ray on the
machine). It needs no Ray to import: the cluster runs Ray's own command line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --- the plan

DOCUMENTS, SAMPLES, BATCH = 250, 8, 16  # 2,000 work items in 125 batches
#: canned outputs, picked per prompt: two of 16 parse (the model validator then scores ~250
#: candidates, in batches of 0 to 6, which keeps the test fast), and their repeats give the
#: duplicate check work
OUTPUTS = [
    "[question]: How many engines did the plant make?\n[answer]: It made 70 engines.",
    "[question]: Where is the plant?\n[answer]: The plant is in Ohio.",
    *[f"Sorry, I cannot answer that ({n})." for n in range(14)],
]
#: grounding_embedding is the batch-sensitive model validator (its floats depend on which
#: candidates share a batch); dedup is stateful and runs on the driver
VALIDATORS = ["format", "overlap", "grounding_embedding", "dedup"]


def write_documents(path: Path) -> Path:
    """The plan's documents, one JSON object a line."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(DOCUMENTS):
            text = (
                f"Plant {i} in Ohio made {i * 7} engines in {1990 + i % 30}. It employs {i * 3}"
                f" people and its manager is Ana {i % 11}."
            )
            handle.write(json.dumps({"title": f"Plant {i}", "text": text}) + "\n")
    return path


def ray_config(documents: Path, db: Path, run: dict | None = None, **ray_options) -> dict:
    """The plan as a config: ``run`` adds to its ``[run]`` table, ``ray_options`` to ``[ray]``."""
    return {
        "run": {
            "name": "ray-parity",
            "backend": "mock",
            "validators": VALIDATORS,
            "batch_size": BATCH,
            "samples_per_document": SAMPLES,
            **(run or {}),
        },
        "documents": {"path": str(documents)},
        "store": {"db": str(db)},
        "backends": {"mock": {"outputs": OUTPUTS, "pick": "prompt", "history": False}},
        "ray": {"generate_num_cpus": 0.5, "validate_num_cpus": 0.5, **ray_options},
    }


# --- a two-node Ray cluster on loopback addresses

#: the nodes' addresses: loopback, so nothing leaves the machine (Ray would swap 127.0.0.1 itself
#: for the machine's outward address)
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
#: the same on every node and the driver: no token, since the cluster is on loopback only
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
NO_PRESTART = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HEAD_IP, 0))
        return probe.getsockname()[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(roots: list[int]) -> set[int]:
    tree, found, todo = _children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def running_with(text: str, wait: float = 5.0) -> list[int]:
    """Live processes whose command line mentions ``text``, after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if text.encode() in command and _alive(int(entry.name)):
                    found.append(int(entry.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class InBackground:
    """``work()`` in a daemon thread from the moment this is made; ``result()`` returns what it
    returned, or raises what it raised, in the test's own thread."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._value: Any = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._value = work()
        except BaseException as error:
            self._failure = error

    def done(self, timeout: float) -> bool:
        """Whether the work has ended, waiting up to ``timeout`` seconds for it."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self) -> Any:
        """Once ``done``."""
        if self._failure is not None:
            raise self._failure
        return self._value


class LoopbackCluster:
    """``ray start --head`` on 127.0.0.2 and a second node on 127.0.0.3, one CPU each. The
    nodes come up in the background (``wait`` for them), so this process can work meanwhile."""

    def __init__(self, cpus_per_node: int = 1) -> None:
        # Ray puts Unix sockets under the temp dir: keep its path short
        self.root = Path(tempfile.mkdtemp(prefix="gsr-", dir="/tmp"))
        self.port = _free_port()
        self.address = f"{HEAD_IP}:{self.port}"
        self.env = os.environ | ENV
        self.starters: list[subprocess.Popen] = []
        self._cpus = cpus_per_node
        self._starting = InBackground(self._start_nodes)

    def wait(self, timeout: float = 90.0) -> LoopbackCluster:
        """Until both nodes are up."""
        if not self._starting.done(timeout):
            raise RuntimeError(f"the loopback Ray cluster took over {timeout:.0f} s to start")
        self._starting.result()
        return self

    def _start_nodes(self) -> None:
        common = [
            f"--num-cpus={self._cpus}",
            "--block",
            "--disable-usage-stats",
            "--include-log-monitor=false",  # workers' logs stay in files, not sent to drivers
        ]
        self._start(
            "head",
            [
                "--head",
                f"--node-ip-address={HEAD_IP}",
                f"--port={self.port}",
                f"--temp-dir={self.root}",
                "--include-dashboard=false",
                # no idle workers started ahead for each driver: the stages are actors
                f"--system-config={json.dumps(NO_PRESTART)}",
                *common,
            ],
        )
        self._wait_for_nodes(1)
        self._start(
            "worker", [f"--address={self.address}", f"--node-ip-address={WORKER_IP}", *common]
        )
        self._wait_for_nodes(2)

    def _start(self, name: str, arguments: list[str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.starters.append(
            subprocess.Popen(
                [*RAY, "start", *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: the cleanup kills only it
            )
        )

    def _wait_for_nodes(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` nodes say they started (each ``ray start`` logs it once up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = [p.read_text(errors="replace") for p in self.root.glob("*.log")]
            if sum("Ray runtime started" in log for log in logs) >= count:
                return
            if any(p.poll() is not None for p in self.starters):
                break
            time.sleep(0.1)
        tails = "\n".join(p.read_text(errors="replace")[-2000:] for p in self.root.glob("*.log"))
        raise RuntimeError(f"the loopback Ray cluster did not come up:\n{tails}")

    def processes(self) -> set[int]:
        """Every live process this cluster started (node daemons and their workers)."""
        return {p for p in _descendants([s.pid for s in self.starters]) if _alive(p)}

    def stop(self) -> set[int]:
        """Kill both nodes and every process under them; returns any still alive after. No
        graceful shutdown: nothing of a test cluster needs saving. The processes are stopped
        first, so none can start another between the listing and the kill."""
        self._starting.done(90)
        started = self.processes()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        started |= self.processes()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for starter in self.starters:
            starter.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.05)
        return {p for p in started if _alive(p)}
