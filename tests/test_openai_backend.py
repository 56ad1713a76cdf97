"""The ``openai`` backend through httpx against a fake OpenAI-compatible server on 127.0.0.1:
request bodies, token counts, concurrency, every fault, and a full run recorded in DuckDB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.backends.openai_compatible import OpenAIBackend, OpenAIOptions
from groundset.core.cli import cli
from groundset.core.errors import BackendError
from groundset.core.records import GenerationParams, Prompt
from groundset.core.store import Store
from groundset.core.testing.fake_servers import FakeOpenAIServer, Fault

GOOD = "[question]: How much did IBM pay for Red Hat?\n[answer]: IBM paid $190.00 per share."
KEY = "sk-test-0123456789abcdef"
TEXT = Prompt("Say something.")
CHAT = Prompt("Say something.", ({"role": "user", "content": "Say something."},))


@pytest.fixture
def server():
    with FakeOpenAIServer(models=("tiny",), api_key=KEY) as fake:
        yield fake


def _backend(server: FakeOpenAIServer, **options) -> OpenAIBackend:
    values = {"model": "tiny", "base_url": server.base_url, "api_key": KEY, **options}
    values.setdefault("max_attempts", 3)
    return OpenAIBackend(OpenAIOptions(**values))


def _generate(backend: OpenAIBackend, prompts, params=None):
    try:
        return backend.generate(prompts, params or GenerationParams(max_new_tokens=8))
    finally:
        backend.close()


def test_completions_and_chat_map_params_and_record_tokens(server):
    params = GenerationParams(
        temperature=0.7, top_p=0.9, max_new_tokens=5, seed=11, stop=("\n\n",), top_k=40,
        repetition_penalty=1.1,
    )  # fmt: skip
    text, chat = _generate(_backend(server), [TEXT, CHAT], params)
    bodies = {r.path: r.body for r in server.inference_requests()}
    completion = bodies["/v1/completions"]
    assert completion["prompt"] == "Say something."
    assert (completion["temperature"], completion["top_p"], completion["max_tokens"]) == (
        0.7, 0.9, 5,
    )  # fmt: skip
    assert (completion["seed"], completion["stop"], completion["top_k"]) == (11, ["\n\n"], 40)
    assert completion["repetition_penalty"] == 1.1
    assert "min_tokens" not in completion  # not set: not sent (OpenAI itself rejects it)
    assert bodies["/v1/chat/completions"]["messages"] == [
        {"role": "user", "content": "Say something."}
    ]
    for generation in (text, chat):
        assert generation.error is None and generation.text
        assert generation.input_tokens == 2  # the fake counts words
        assert 0 < generation.output_tokens <= 5
        assert generation.stop_reason in ("stop", "length")
        assert generation.model_id == "tiny"
    assert server.inference_requests()[0].authorization == f"Bearer {KEY}"


def test_greedy_sends_temperature_zero(server):
    _generate(_backend(server), [TEXT], GenerationParams(do_sample=False, top_k=5))
    body = server.inference_requests()[0].body
    assert body["temperature"] == 0.0 and "top_k" not in body


def test_requests_run_concurrently_up_to_the_limit():
    with FakeOpenAIServer(models=("tiny",), latency_s=0.2) as server:
        backend = _backend(server, concurrency=4)
        started = time.perf_counter()
        generations = _generate(backend, [Prompt(f"prompt {i}") for i in range(8)])
        elapsed = time.perf_counter() - started
    assert [g.error for g in generations] == [None] * 8
    assert server.max_in_flight == 4
    assert elapsed < 0.2 * 6  # two waves of four (0.4 s), far from eight in a row (1.6 s)


def test_the_request_rate_is_capped():
    with FakeOpenAIServer(models=("tiny",)) as server:
        backend = _backend(server, concurrency=8, max_requests_per_second=10.0)
        backend.load()
        server.reset()  # the model check is not a generation request
        started = time.perf_counter()
        _generate(backend, [Prompt(f"p{i}") for i in range(25)])
        elapsed = time.perf_counter() - started
        times = sorted(r.received_at for r in server.inference_requests())
    # a bucket of 10 starts full: 10 at once, then 15 more at 10 a second
    assert elapsed >= 1.4
    assert sum(1 for t in times if t - times[0] < 1.0) <= 20


def test_results_come_back_in_prompt_order():
    def echo(prompt: str, body: dict) -> str:
        time.sleep(0.05 if prompt.endswith("0") else 0.0)  # the first finishes last
        return f"echo {prompt}"

    with FakeOpenAIServer(models=("tiny",), responder=echo) as server:
        generations = _generate(
            _backend(server, concurrency=3), [Prompt(f"p{i}") for i in range(3)]
        )
    assert [g.text for g in generations] == ["echo p0", "echo p1", "echo p2"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 0.3},
        {"status": 503},
        {"status": 502, "times": 2},
        {"kind": "disconnect"},
        {"kind": "hang", "seconds": 1.5},
    ],
    ids=["429-retry-after", "503", "502-twice", "disconnect", "read-timeout"],
)
def test_transient_faults_are_retried(server, fault):
    fault = Fault(**fault)
    times = fault.times
    server.inject(fault)
    backend = _backend(server, timeout_s=0.5, max_attempts=4)
    started = time.perf_counter()
    [generation] = _generate(backend, [TEXT])
    elapsed = time.perf_counter() - started
    assert generation.error is None and generation.text
    assert server.inference_calls == times + 1
    if fault.retry_after:
        assert elapsed >= fault.retry_after  # honoured, not just exponential backoff


def test_a_prompt_that_keeps_failing_is_an_error_and_the_others_are_kept(server):
    server.inject(Fault(status=503, times=3))
    backend = _backend(server, concurrency=1, max_attempts=3)
    failed, ok = _generate(backend, [Prompt("first"), Prompt("second")])
    assert failed.text == "" and "HTTP 503" in failed.error and "3 attempts" in failed.error
    assert ok.error is None and ok.text


def test_retry_after_longer_than_the_deadline_gives_up_at_once(server):
    server.inject(Fault(status=429, retry_after=30))
    started = time.perf_counter()
    [generation] = _generate(_backend(server, deadline_s=2.0), [TEXT])
    assert "HTTP 429" in generation.error
    assert time.perf_counter() - started < 2.0


def test_a_wrong_key_stops_the_run_with_a_clear_error(server):
    with pytest.raises(BackendError, match="refused the API key") as raised:
        _generate(_backend(server, api_key="sk-wrong-key-xyz"), [TEXT])
    assert "sk-wrong-key-xyz" not in str(raised.value)


def test_a_key_refused_mid_run_stops_instead_of_recording_every_prompt_as_failed(server):
    server.inject(Fault(status=401, times=10))
    backend = _backend(server, check_model=False)
    with pytest.raises(BackendError, match="refused the credentials"):
        _generate(backend, [Prompt(f"p{i}") for i in range(6)])


def test_an_unknown_model_is_named_with_what_the_server_serves(server):
    with pytest.raises(BackendError, match=r"does not serve model 'big' \(it serves: tiny\)"):
        _generate(_backend(server, model="big"), [TEXT])


def test_a_server_that_is_down_is_named():
    backend = OpenAIBackend(OpenAIOptions(model="m", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(BackendError, match=r"cannot reach http://127.0.0.1:9/v1/models"):
        backend.load()


# --- a whole run -----------------------------------------------------------------------------


def _config(tmp_path: Path, server: FakeOpenAIServer, seed_documents: Path, extra: str = ""):
    path = tmp_path / "openai.toml"
    path.write_text(
        f"""
[run]
name = "remote"
backend = "openai"
validators = ["format", "overlap"]
batch_size = 4

[documents]
path = "{seed_documents}"

[pricing]
input_per_million_tokens = 2.0
output_per_million_tokens = 6.0

[backends.openai]
model = "tiny"
base_url = "{server.base_url}"
api_key = "$env:TEST_OPENAI_KEY"
concurrency = 2
max_attempts = 2
{extra}
""",
        encoding="utf-8",
    )
    return path


def _run(config: Path, db: Path, *args: str):
    return CliRunner().invoke(cli, ["run", str(config), "--db", str(db), "--no-progress", *args])


def test_a_run_records_errors_and_a_rerun_retries_only_them(tmp_path, seed_documents, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", KEY)
    with FakeOpenAIServer(models=("tiny",), api_key=KEY, responder=lambda p, b: GOOD) as server:
        config, db = _config(tmp_path, server, seed_documents), tmp_path / "s.duckdb"
        server.inject(Fault(status=503, times=2))  # one prompt fails both its attempts
        first = _run(config, db, "--set", "backends.openai.concurrency=1")
        assert first.exit_code == 0, first.output
        assert "1 prompt failed in the backend" in first.output
        calls = server.inference_calls
        second = _run(config, db)
        assert second.exit_code == 0, second.output
        assert server.inference_calls == calls + 1  # only the failed prompt again
    with Store(db, read_only=True) as store:
        statuses = store.query("SELECT status, count(*) FROM candidates GROUP BY 1").rows
        assert statuses == [("ok", 4)]
        assert store.query("SELECT count(DISTINCT work_id) FROM candidates").rows[0][0] == 4
        tokens = store.query(
            "SELECT bool_and(input_tokens > 0 AND output_tokens > 0),"
            " bool_and(stop_reason IS NOT NULL) FROM candidates"
        ).rows[0]
        assert tokens == (True, True)
    runs = CliRunner().invoke(cli, ["runs", "--db", str(db), "--format", "json"])
    [row] = json.loads(runs.output)
    assert row["errors"] == 0 and row["candidates"] == 4
    with Store(db, read_only=True) as store:
        prompt_tokens, completion_tokens, accepted = store.query(
            "SELECT sum(input_tokens), sum(output_tokens),"
            " (SELECT count(*) FROM accepted_default) FROM candidates"
        ).rows[0]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt_tokens, completion_tokens)
    cost = (prompt_tokens * 2.0 + completion_tokens * 6.0) / 1e6
    assert row["cost"] == f"{round(cost, 4)} USD"
    assert row["cost_per_accepted"] == f"{round(cost / accepted, 6)} USD"


def test_the_api_key_never_reaches_the_store(tmp_path, seed_documents, monkeypatch):
    with FakeOpenAIServer(models=("tiny",), api_key=KEY, responder=lambda p, b: GOOD) as server:
        literal = _config(tmp_path, server, seed_documents).read_text()
        config = tmp_path / "literal.toml"
        config.write_text(literal.replace('"$env:TEST_OPENAI_KEY"', f'"{KEY}"'))
        db = tmp_path / "s.duckdb"
        result = _run(config, db)
        assert result.exit_code == 0, result.output
    with Store(db, read_only=True) as store:
        dumped = json.dumps(store.query("SELECT * FROM runs").rows, default=str)
    assert KEY not in dumped and KEY not in result.output
    assert KEY.encode() not in db.read_bytes()


def test_an_unset_key_variable_is_named(tmp_path, seed_documents, monkeypatch):
    monkeypatch.delenv("TEST_OPENAI_KEY", raising=False)
    with FakeOpenAIServer(models=("tiny",)) as server:
        result = _run(_config(tmp_path, server, seed_documents), tmp_path / "s.duckdb")
    assert result.exit_code == 2
    assert "api_key reads the environment variable TEST_OPENAI_KEY, which is not set" in (
        result.output
    )


def test_closing_mid_batch_cancels_queued_prompts_and_stops_retry_waits():
    """What Ctrl-C does to a run: the backend is closed while a batch is in flight."""
    import threading

    with FakeOpenAIServer(models=("tiny",), latency_s=1.0) as server:
        server.inject(Fault(status=429, retry_after=30.0))  # one prompt told to wait 30 s
        backend = _backend(server, concurrency=2, timeout_s=10.0, deadline_s=100.0)
        backend.load()
        outcome: list[object] = []

        def generate():
            try:
                prompts = [Prompt(f"p{i}") for i in range(8)]
                outcome.append(backend.generate(prompts, GenerationParams(max_new_tokens=4)))
            except BaseException as error:  # cancelled futures: the batch is abandoned
                outcome.append(error)

        worker = threading.Thread(target=generate)
        worker.start()
        time.sleep(0.5)
        started = time.perf_counter()
        backend.close()
        closed_in = time.perf_counter() - started
        worker.join(timeout=5)
    assert not worker.is_alive() and outcome
    assert closed_in < 0.5  # neither the in-flight request (1 s) nor the 30 s Retry-After
    assert server.inference_calls <= 3  # the queued prompts were never sent
