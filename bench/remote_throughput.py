"""Throughput of the remote backends against a fake server with a fixed latency.

A server that answers every request after ``latency`` seconds, with ``concurrency`` requests in
flight, can complete at most ``concurrency / latency`` prompts a second; the target is that the
backend sustains >= 90 % of that. Two paths are measured for each backend:

* ``backend``: ``Backend.generate`` on batches of prompts (the backend alone);
* ``run``: a whole ``groundset run`` (grounded_qa prompts, the ``format`` validator, DuckDB),
  so planning, parsing, scoring and recording between batches count too.

The fake server runs in its own process, so its threads do not share this process's GIL.

    python bench/remote_throughput.py [--latency 0.5] [--concurrency 8,32,64] [--waves 8]
        [--backends openai,watsonx] [--json bench/remote_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from groundset.backends.openai_compatible import OpenAIBackend, OpenAIOptions
from groundset.backends.watsonx import WatsonxBackend, WatsonxOptions
from groundset.core.records import GenerationParams, Prompt

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"
ANSWER = "What is this about?\n[answer]: A benchmark."


def _answer(prompt: str, body: dict) -> str:
    return ANSWER


def _serve(kind: str, latency: float, ready: Any, stop: Any) -> None:
    from groundset.core.testing.fake_servers import FakeOpenAIServer, FakeWatsonxServer

    if kind == "openai":
        server = FakeOpenAIServer(models=("bench",), latency_s=latency, responder=_answer)
    else:
        server = FakeWatsonxServer(
            api_key=KEY, project_ids=("p1",), latency_s=latency, responder=_answer
        )
    with server:
        ca = str(server.ca_cert_path) if kind == "watsonx" else None
        ready.send((server.url, ca))
        stop.wait()
        ready.send(server.max_in_flight)


class ServerProcess:
    """A fake server in a child process; ``max_in_flight`` is read back when it stops."""

    def __init__(self, kind: str, latency: float) -> None:
        self._parent, child = mp.Pipe()
        self._stop = mp.Event()
        self._process = mp.Process(target=_serve, args=(kind, latency, child, self._stop))
        self.max_in_flight = 0

    def __enter__(self) -> tuple[str, str | None]:
        self._process.start()
        return self._parent.recv()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.max_in_flight = self._parent.recv()
        self._process.join(timeout=10)


def make_backend(kind: str, url: str, ca: str | None, concurrency: int):
    if kind == "openai":
        return OpenAIBackend(
            OpenAIOptions(model="bench", base_url=url + "/v1", concurrency=concurrency)
        )
    return WatsonxBackend(
        WatsonxOptions(
            model_id="ibm/granite-3-3-8b-instruct", url=url, api_key=KEY, project_id="p1",
            auth_url=url + "/identity/token", platform_url=url, verify=ca or True,
            mode="generate", concurrency=concurrency, max_requests_per_second=0,
        )
    )  # fmt: skip


def bench_backend(kind: str, latency: float, concurrency: int, waves: int) -> dict[str, Any]:
    """``Backend.generate`` alone, in batches of ``4 * concurrency`` prompts, after a warm-up
    that opens the connections."""
    prompts = [Prompt(f"prompt {i}") for i in range(concurrency * waves)]
    params = GenerationParams(max_new_tokens=16)
    server = ServerProcess(kind, latency)
    with server as (url, ca):
        backend = make_backend(kind, url, ca, concurrency)
        # connect, token, model check, and one connection per slot: the steady state is measured
        backend.generate([Prompt(f"warm-up {i}") for i in range(concurrency)], params)
        started = time.perf_counter()
        errors = 0
        batch = 4 * concurrency
        for start in range(0, len(prompts), batch):
            generations = backend.generate(prompts[start : start + batch], params)
            errors += sum(g.error is not None for g in generations)
        elapsed = time.perf_counter() - started
        backend.close()
    return _result(kind, "backend", latency, concurrency, len(prompts), elapsed, errors, server)


def bench_run(kind: str, latency: float, concurrency: int, waves: int) -> dict[str, Any]:
    """A whole run through the engine, store and the ``format`` validator, from a cold
    connection pool (as ``groundset run``)."""
    from groundset.core.runner import prepare_run, start_run
    from groundset.core.settings import settings_from_config
    from groundset.core.store import Store

    count = concurrency * waves
    server = ServerProcess(kind, latency)
    with server as (url, ca), tempfile.TemporaryDirectory() as tmp:
        documents = Path(tmp) / "docs.jsonl"
        with documents.open("w") as handle:
            for i in range(count):
                handle.write(json.dumps({"text": f"Document {i} is about item {i}."}) + "\n")
        options = vars(make_backend(kind, url, ca, concurrency).options)
        config = {
            "run": {"backend": kind, "validators": ["format"], "batch_size": 4 * concurrency},
            "documents": {"path": str(documents)},
            "generation": {"max_new_tokens": 16},
            "strategies": {"grounded_qa": {"prompt_format": "completion"}},
            "backends": {kind: {k: v for k, v in options.items() if v is not None}},
        }
        settings = settings_from_config(config, "bench")
        prepared = prepare_run(settings)
        prepared.plugins.backend.load()  # connect outside the timing, as the CLI does
        with Store(Path(tmp) / "bench.duckdb") as store:
            started = time.perf_counter()
            summary = start_run(prepared, store)
            elapsed = time.perf_counter() - started
    return _result(kind, "run", latency, concurrency, count, elapsed, summary.errors, server)


def _result(kind, path, latency, concurrency, count, elapsed, errors, server) -> dict[str, Any]:
    ideal = concurrency / latency
    rate = count / elapsed
    return {
        "backend": kind,
        "path": path,
        "latency_s": latency,
        "concurrency": concurrency,
        "prompts": count,
        "seconds": round(elapsed, 3),
        "prompts_per_s": round(rate, 2),
        "ideal_per_s": round(ideal, 2),
        "ratio": round(rate / ideal, 3),
        "max_in_flight": server.max_in_flight,
        "errors": errors,
    }


#: share of the ideal concurrency / latency prompts a second
TARGET = 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", default="8,32,64")
    parser.add_argument("--waves", type=int, default=8, help="prompts = concurrency * waves")
    parser.add_argument("--backends", default="openai,watsonx")
    parser.add_argument("--paths", default="backend,run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    print("| backend | path | concurrency | prompts/s | ideal | ratio | max in flight | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.backends.split(","):
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for path in args.paths.split(","):
                measure = bench_backend if path == "backend" else bench_run
                r = measure(kind, args.latency, concurrency, args.waves)
                results.append(r)
                print(
                    f"| {kind} | {path} | {concurrency} | {r['prompts_per_s']} |"
                    f" {r['ideal_per_s']} | {r['ratio']} | {r['max_in_flight']} | {r['errors']} |",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": platform.platform(), "cpus": os.cpu_count(), "results": results},
                indent=2,
            )
            + "\n"
        )
    worst = min(results, key=lambda r: r["ratio"])
    ok = worst["ratio"] >= TARGET
    print(
        f"remote: {len(results)} measurements, lowest ratio {worst['ratio']} ({worst['backend']}"
        f" {worst['path']}, concurrency {worst['concurrency']}; target >= {TARGET})"
        f" {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
