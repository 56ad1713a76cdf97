"""A recognisable API key, given through the environment, used against the fake servers with
failing, retried and refused requests (one server error even echoes the key back), never
appears in the store file, its WAL, any export, or anything printed. TLS verification stays
on unless the config turns it off, and then a warning says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.testing.fake_servers import FakeOpenAIServer, FakeWatsonxServer, Fault

KEY = "gsk-LEAKCHECK-5f0e1d2c3b4a59687766554433221100"
ANSWER = "[question]: How much did IBM pay?\n[answer]: IBM paid $190.00 per share."
ECHO = {"error": {"message": f"invalid request for key {KEY}", "code": "server_error"}}
EXPORTS = ("out.jsonl", "out.csv", "out.parquet", "out.chat.jsonl")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def everything_written(tmp_path: Path, printed: list[str]) -> dict[str, bytes]:
    files = {
        str(p): p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.endswith((".pem", ".crt"))
    }
    return files | {f"printed {i}": text.encode() for i, text in enumerate(printed)}


def run_and_export(tmp_path: Path, config: Path) -> list[str]:
    db = tmp_path / "s.duckdb"
    run = invoke("run", str(config), "--db", str(db), "--no-progress")
    assert run.exit_code == 0, run.output
    printed = [run.output]
    for name in EXPORTS:
        out = invoke("export", "--db", str(db), "-o", str(tmp_path / name), "--include-failed")
        assert out.exit_code == 0, out.output
        printed.append(out.output)
    for command in (["runs"], ["report"], ["sql", "SELECT * FROM runs"], ["check"]):
        printed.append(invoke(*command, "--db", str(db)).output)
    query = "SELECT error FROM candidates WHERE error IS NOT NULL"
    errors = invoke("sql", query, "--db", str(db), "--format", "json")
    assert "key ***" in errors.output  # the echoed key was recorded, scrubbed
    return printed


def assert_no_key(tmp_path: Path, printed: list[str]) -> None:
    written = everything_written(tmp_path, printed)
    assert any(name.endswith(".duckdb") for name in written)
    assert sum(name.endswith(EXPORTS) for name in written) == len(EXPORTS)
    leaks = [name for name, data in written.items() if KEY.encode() in data]
    assert not leaks, f"the key was written to {leaks}"


def test_openai_key_from_the_environment_never_lands_anywhere(
    tmp_path, seed_documents, monkeypatch, caplog
):
    monkeypatch.setenv("LEAKCHECK_OPENAI_KEY", KEY)
    with FakeOpenAIServer(models=("tiny",), api_key=KEY, responder=lambda p, b: ANSWER) as s:
        s.inject(
            Fault(status=429, retry_after=0.1),
            Fault(status=503),
            Fault(status=500, body=ECHO, times=2),  # one prompt fails both attempts
        )
        config = tmp_path / "openai.toml"
        config.write_text(
            f'[run]\nbackend = "openai"\nvalidators = ["format", "overlap"]\nbatch_size = 4\n'
            f'[documents]\npath = "{seed_documents}"\n'
            f'[backends.openai]\nmodel = "tiny"\nbase_url = "{s.base_url}"\n'
            f'api_key = "$env:LEAKCHECK_OPENAI_KEY"\nconcurrency = 1\nmax_attempts = 2\n'
        )
        printed = run_and_export(tmp_path, config)
        assert s.faults_served == 4
    assert_no_key(tmp_path, [*printed, caplog.text])


def test_watsonx_key_and_tokens_never_land_anywhere(tmp_path, seed_documents, monkeypatch, caplog):
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    for name in ("WX_CLIENT_VERIFY_REQUESTS", "WATSONX_TOKEN", "USER_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), responder=lambda p, b: ANSWER) as s:
        s.inject(
            Fault(status=429, retry_after=0.1),
            Fault(status=401, body={"errors": [{"code": "expired"}]}),  # a token refresh
            Fault(status=500, body=ECHO, times=3),  # one prompt fails every attempt
        )
        config = tmp_path / "watsonx.toml"
        config.write_text(
            f'[run]\nbackend = "watsonx"\nvalidators = ["format", "overlap"]\nbatch_size = 4\n'
            f'[documents]\npath = "{seed_documents}"\n'
            f'[backends.watsonx]\nmodel_id = "ibm/granite-3-3-8b-instruct"\nurl = "{s.url}"\n'
            f'auth_url = "{s.auth_url}"\nplatform_url = "{s.url}"\n'
            f'verify = "{s.ca_cert_path}"\nproject_id = "p1"\nconcurrency = 1\n'
            f"max_attempts = 3\nmax_requests_per_second = 0\n"
        )
        printed = run_and_export(tmp_path, config)
        assert s.token_requests >= 2  # the refused token was refreshed
    assert "Status code: 500" not in caplog.text  # handled failures are not logged
    assert_no_key(tmp_path, [*printed, caplog.text])


@pytest.mark.parametrize("verify", [None, "false"])
def test_tls_verification_is_off_only_when_the_config_says_so(
    tmp_path, seed_documents, monkeypatch, verify
):
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    monkeypatch.delenv("WX_CLIENT_VERIFY_REQUESTS", raising=False)
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), responder=lambda p, b: ANSWER) as s:
        config = tmp_path / "watsonx.toml"
        config.write_text(
            f'[run]\nbackend = "watsonx"\nvalidators = ["format"]\n'
            f'[documents]\npath = "{seed_documents}"\n'
            f'[backends.watsonx]\nmodel_id = "ibm/granite-3-3-8b-instruct"\nurl = "{s.url}"\n'
            f'auth_url = "{s.auth_url}"\nplatform_url = "{s.url}"\nproject_id = "p1"\n'
            + (f"verify = {verify}\n" if verify else "")
        )
        db = tmp_path / "s.duckdb"
        result = invoke(
            "run", str(config), "--db", str(db), "--no-progress", "--limit-documents", "1"
        )
    warning = "warning: watsonx: TLS certificate verification is off (verify = false"
    if verify is None:  # the fake's self-signed certificate is refused
        assert result.exit_code == 2 and "certificate" in result.output.lower()
        assert warning not in result.output
    else:
        assert result.exit_code == 0, result.output
        assert warning in result.output
