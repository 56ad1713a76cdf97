"""The ``watsonx`` backend through the real ``ibm-watsonx-ai`` SDK, talking HTTPS to a fake
watsonx.ai server on 127.0.0.1 (see ``groundset.core.testing.fake_servers.watsonx`` and
``watsonx_auth`` beside it for what the SDK asks of a server: an IAM token endpoint, the project,
the model specs, text generation and chat).

The SDK is never mocked: these tests check the requests it really sends and how each fault the
server injects comes back through it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.backends.watsonx import WatsonxBackend, WatsonxOptions
from groundset.core.cli import cli
from groundset.core.errors import BackendError, ConfigError
from groundset.core.records import GenerationParams, Prompt
from groundset.core.store import Store
from groundset.core.testing.fake_servers import FakeWatsonxServer, Fault

REPO = Path(__file__).resolve().parent.parent
KEY = "wx-test-key-0123456789"
MODEL = "ibm/granite-3-3-8b-instruct"
TEXT = Prompt("Write one sentence.")
CHAT = Prompt("Write one sentence.", ({"role": "user", "content": "Write one sentence."},))
GOOD = "What did IBM buy?\n[answer]: Red Hat."


@pytest.fixture(autouse=True)
def sdk_environment(monkeypatch):
    """The SDK reads and writes process-wide settings: start each test from a clean slate."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("WX_CLIENT_VERIFY_REQUESTS", "WATSONX_APIKEY", "WATSONX_PROJECT_ID",
                 "WATSONX_URL", "WATSONX_TOKEN", "WATSONX_SPACE_ID", "USER_ACCESS_TOKEN",
                 "PROJECT_ID", "SPACE_ID", "WATSONX_MAX_RETRIES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), space_ids=("s1",)) as fake:
        yield fake


def _options(server: FakeWatsonxServer, **values) -> WatsonxOptions:
    base = {
        "model_id": MODEL,
        "url": server.url,
        "api_key": KEY,
        "project_id": "p1",
        "auth_url": server.auth_url,
        "platform_url": server.url,
        "verify": str(server.ca_cert_path),
        "max_attempts": 3,
        "max_requests_per_second": None,
    }
    return WatsonxOptions(**(base | values))


def _generate(server, prompts, params=None, **values):
    backend = WatsonxBackend(_options(server, **values))
    try:
        return backend.generate(prompts, params or GenerationParams(max_new_tokens=8))
    finally:
        backend.close()


def test_construction_calls_what_the_sdk_needs_and_no_more(server):
    _generate(server, [TEXT])
    calls = [(r.method, r.path) for r in server.requests]
    assert calls == [
        ("POST", "/identity/token"),
        ("GET", "/v2/projects/p1"),
        ("GET", "/ml/v1/foundation_model_specs"),
        ("POST", "/ml/v1/text/generation"),
    ]
    token = server.requests[0].body
    assert token["apikey"] == KEY and token["grant_type"].endswith(":apikey")


def test_text_generation_maps_every_parameter_and_records_tokens(server):
    params = GenerationParams(
        temperature=0.7, top_p=0.9, top_k=50, max_new_tokens=6, min_new_tokens=2, seed=42,
        stop=("\n\n",), repetition_penalty=1.05,
    )  # fmt: skip
    [generation] = _generate(server, [TEXT], params, mode="generate")
    [request] = server.inference_requests()
    assert request.body["model_id"] == MODEL and request.body["project_id"] == "p1"
    assert request.body["input"] == "Write one sentence."
    assert request.body["parameters"] == {
        "decoding_method": "sample",
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 50,
        "max_new_tokens": 6,
        "min_new_tokens": 2,
        "random_seed": 42,
        "stop_sequences": ["\n\n"],
        "repetition_penalty": 1.05,
    }
    assert request.authorization.startswith("Bearer ")
    assert generation.error is None and generation.text
    assert generation.input_tokens == 3 and 0 < generation.output_tokens <= 6
    assert generation.stop_reason in ("eos_token", "max_tokens", "stop_sequence")


def test_greedy_decoding_sends_no_sampling_knobs(server):
    _generate(server, [TEXT], GenerationParams(do_sample=False, top_k=5), mode="generate")
    parameters = server.inference_requests()[0].body["parameters"]
    assert parameters["decoding_method"] == "greedy"
    assert not {"temperature", "top_p", "top_k"} & set(parameters)


def test_chat_prompts_use_the_chat_api(server):
    params = GenerationParams(temperature=0.5, max_new_tokens=7, seed=3, stop=("END",))
    [generation] = _generate(server, [CHAT], params)
    [request] = server.inference_requests()
    assert request.path == "/ml/v1/text/chat"
    assert request.body["messages"] == [{"role": "user", "content": "Write one sentence."}]
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.5, 7)
    assert (request.body["seed"], request.body["stop"]) == (3, ["END"])
    assert generation.text and generation.input_tokens and generation.stop_reason


def test_a_bearer_token_and_a_space_work_without_iam(tmp_path):
    with FakeWatsonxServer(bearer_token="hdr.payload.sig", space_ids=("s1",)) as server:
        [generation] = _generate(
            server, [TEXT], api_key=None, token="hdr.payload.sig", project_id=None, space_id="s1"
        )
        assert generation.error is None
        assert server.token_requests == 0
        assert server.inference_requests()[0].body["space_id"] == "s1"


def test_credentials_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    monkeypatch.setenv("WATSONX_PROJECT_ID", "p1")
    [generation] = _generate(server, [TEXT], api_key=None, project_id=None)
    assert generation.error is None


def test_missing_credentials_name_the_option_and_the_variable(server):
    backend = WatsonxBackend(_options(server, api_key=None))
    with pytest.raises(ConfigError, match=r"backends\.watsonx\.api_key.*WATSONX_APIKEY"):
        backend.load()


def test_a_wrong_key_is_one_clear_error_without_the_key(server):
    backend = WatsonxBackend(_options(server, api_key="wx-wrong-key-987654"))
    with pytest.raises(BackendError, match="watsonx") as raised:
        backend.load()
    assert "wx-wrong-key-987654" not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_model_is_named(server):
    backend = WatsonxBackend(_options(server, model_id="tiiuae/falcon-40b"))
    with pytest.raises(BackendError, match="falcon-40b"):
        backend.load()


def test_the_sdk_verify_setting_does_not_leak_into_the_process(server):
    _generate(server, [TEXT])
    assert "WX_CLIENT_VERIFY_REQUESTS" not in os.environ


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 0.4},
        {"status": 503, "times": 2},
        {"status": 500},
        {"kind": "disconnect"},
        {"kind": "hang", "seconds": 1.5},
    ],
    ids=["429-retry-after", "503-twice", "500", "disconnect", "read-timeout"],
)
def test_faults_are_retried_by_groundset_alone(server, fault):
    fault = Fault(**fault)
    times = fault.times
    server.inject(fault)
    started = time.perf_counter()
    [generation] = _generate(server, [TEXT], timeout_s=0.5, max_attempts=4)
    assert generation.error is None and generation.text
    # one call per attempt: the SDK's own retry layers are off, so nothing stacks
    assert server.inference_calls == times + 1
    if fault.retry_after:
        assert time.perf_counter() - started >= fault.retry_after


def test_a_prompt_that_keeps_failing_is_recorded_and_the_others_succeed(server):
    server.inject(Fault(status=503, times=3))
    failed, ok = _generate(server, [TEXT, Prompt("Another.")], concurrency=1)
    assert "HTTP 503" in failed.error and "gave up after 3 attempts" in failed.error
    assert ok.error is None and ok.text


def test_a_token_the_service_stops_accepting_is_refreshed(server):
    backend = WatsonxBackend(_options(server))
    try:
        first = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
        server.revoke_tokens()  # expired on the server while its exp still looks valid
        second = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
    finally:
        backend.close()
    assert first[0].error is None and second[0].error is None
    assert server.token_requests == 2
    auths = [r.authorization for r in server.inference_requests()]
    assert auths[0] != auths[-1]


def test_short_lived_tokens_are_renewed_before_they_expire():
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), token_lifetime_s=2) as server:
        backend = WatsonxBackend(_options(server))
        try:
            for _ in range(3):
                [generation] = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
                assert generation.error is None
                time.sleep(1.0)
        finally:
            backend.close()
        assert server.token_requests >= 3
        assert all(r.path != "/ml/v1/text/generation" or r.authorization
                   for r in server.requests)  # fmt: skip


def test_a_revoked_bearer_token_stops_the_run():
    with FakeWatsonxServer(bearer_token="hdr.payload.sig", project_ids=("p1",)) as server:
        backend = WatsonxBackend(_options(server, api_key=None, token="hdr.payload.sig"))
        try:
            backend.load()
            server.revoke_tokens()
            with pytest.raises(BackendError, match="refused the credentials"):
                backend.generate([TEXT, TEXT], GenerationParams(max_new_tokens=4))
        finally:
            backend.close()


def test_the_seed_example_runs_with_the_seed_prompt_and_parameters(tmp_path, monkeypatch):
    example = REPO / "examples" / "watsonx-falcon.toml"
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    monkeypatch.setenv("WATSONX_PROJECT_ID", "p1")
    with FakeWatsonxServer(
        api_key=KEY, project_ids=("p1",), model_ids=("tiiuae/falcon-40b",),
        responder=lambda prompt, body: GOOD,
    ) as server:  # fmt: skip
        monkeypatch.setenv("WATSONX_URL", server.url)
        db = tmp_path / "s.duckdb"
        result = CliRunner().invoke(
            cli,
            ["run", str(example), "--db", str(db), "--no-progress", "--validators", "format",
             "--limit-documents", "2",
             "--set", f"backends.watsonx.auth_url={server.auth_url}",
             "--set", f"backends.watsonx.platform_url={server.url}",
             "--set", f"backends.watsonx.verify={server.ca_cert_path}"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        requests = server.inference_requests()
    assert requests and all(r.path == "/ml/v1/text/generation" for r in requests)
    body = requests[0].body
    assert body["model_id"] == "tiiuae/falcon-40b"
    assert body["parameters"]["decoding_method"] == "sample"
    assert body["parameters"]["temperature"] == 0.7
    assert body["input"].startswith("Given the next [document], create a [question]")
    assert body["input"].endswith("[question]:")
    with Store(db, read_only=True) as store:
        prompts = {r[0] for r in store.query("SELECT text FROM prompts").rows}
        assert {r.body["input"] for r in requests} == prompts
        rows = store.query(
            "SELECT status, model_id, input_tokens > 0, stop_reason IS NOT NULL FROM candidates"
        ).rows
    assert rows and all(r == ("ok", "tiiuae/falcon-40b", True, True) for r in rows)


# --- faults during a whole run: nothing lost, nothing duplicated ------------------------------


def _run(server: FakeWatsonxServer, tmp_path: Path, seed_documents: Path, *args: str):
    config = tmp_path / "wx.toml"
    config.write_text(
        f"""
[run]
backend = "watsonx"
validators = ["format"]
samples_per_document = 2
batch_size = 4

[documents]
path = "{seed_documents}"

[backends.watsonx]
model_id = "{MODEL}"
url = "{server.url}"
auth_url = "{server.auth_url}"
platform_url = "{server.url}"
verify = "{server.ca_cert_path}"
api_key = "$env:WATSONX_APIKEY"
project_id = "p1"
concurrency = 2
max_attempts = 3
timeout_s = 0.5
max_requests_per_second = 0
""",
        encoding="utf-8",
    )
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["run", str(config), "--db", str(db), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return db, result


FAULTS = {
    "429-retry-after": ([{"status": 429, "retry_after": 0.2}], 1),
    "503-then-502": ([{"status": 503}, {"status": 502}], 2),
    "disconnect": ([{"kind": "disconnect", "times": 2}], 2),
    "read-timeout": ([{"kind": "hang", "seconds": 1.0}], 1),
    "token-expired": ([{"status": 401, "body": {"errors": [{"code": "expired"}]}}], 1),
}


@pytest.mark.parametrize("name", FAULTS)
def test_a_run_survives_each_fault_with_every_prompt_recorded_once(
    name, tmp_path, seed_documents, monkeypatch
):
    faults, extra_calls = FAULTS[name]
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), responder=lambda p, b: GOOD) as s:
        s.inject(*(Fault(**f) for f in faults))
        db, _ = _run(s, tmp_path, seed_documents)
        assert s.inference_calls == 8 + extra_calls
        assert not s.pending_faults
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT count(*), count(DISTINCT work_id), count(*) FILTER (WHERE status = 'ok')"
            " FROM candidates"
        ).rows[0]
    assert rows == (8, 8, 8)


def test_a_prompt_failing_every_attempt_is_retried_by_the_next_run_only(
    tmp_path, seed_documents, monkeypatch
):
    monkeypatch.setenv("WATSONX_APIKEY", KEY)
    with FakeWatsonxServer(api_key=KEY, project_ids=("p1",), responder=lambda p, b: GOOD) as s:
        s.inject(Fault(status=503, times=3))
        db, first = _run(s, tmp_path, seed_documents, "--set", "backends.watsonx.concurrency=1")
        assert "1 prompt failed in the backend" in first.output
        with Store(db, read_only=True) as store:
            [(status, error)] = store.query(
                "SELECT status, error FROM candidates WHERE status <> 'ok'"
            ).rows
        assert status == "error" and "HTTP 503" in error and "3 attempts" in error
        calls = s.inference_calls
        db, _ = _run(s, tmp_path, seed_documents)
        assert s.inference_calls == calls + 1
    with Store(db, read_only=True) as store:
        rows = store.query(
            "SELECT count(*), count(DISTINCT work_id), count(*) FILTER (WHERE status = 'ok')"
            " FROM candidates"
        ).rows[0]
    assert rows == (8, 8, 8)


# --- Cloud Pak for Data (on-prem): user name with a password or an API key ---------------------

USER, PASSWORD = "admin", "cpd-pass-0123456789"
CPD_CALLS = [
    ("GET", "/ml/wml_services/v2/version"),
    ("POST", "/icp4d-api/v1/authorize"),
    ("GET", "/v2/projects/p1"),
    ("GET", "/ml/v1/foundation_model_specs"),
]


@pytest.fixture
def cpd_server(monkeypatch):
    # the SDK exports these in CPD mode and never takes them back
    for name in ("DEPLOYMENT_PLATFORM", "DEPLOYMENT_PRIVATE", "WATSONX_USERNAME",
                 "WATSONX_PASSWORD", "WATSONX_INSTANCE_ID", "WATSONX_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with FakeWatsonxServer(
        cpd=True, username=USER, password=PASSWORD, api_key=KEY, project_ids=("p1",)
    ) as fake:
        yield fake


def _cpd_options(server: FakeWatsonxServer, **values) -> WatsonxOptions:
    """CPD as a user configures it: the cluster URL, no auth_url and no platform_url."""
    base = {
        "model_id": MODEL,
        "url": server.url,
        "username": USER,
        "instance_id": "openshift",
        "version": "5.1",
        "project_id": "p1",
        "verify": str(server.ca_cert_path),
        "max_attempts": 3,
        "max_requests_per_second": None,
        "concurrency": 1,
    }
    return WatsonxOptions(**(base | values))


CPD_SECRETS = {"password": {"password": PASSWORD}, "api_key": {"api_key": KEY}}
# instance_id="openshift" is what CPD users are told to set; SDK 1.8 ignores it, with a warning
cpd_instance_id = pytest.mark.filterwarnings(
    "ignore:The `instance_id` parameter is deprecated:DeprecationWarning"
)


@cpd_instance_id
@pytest.mark.parametrize("secret", CPD_SECRETS)
def test_cpd_generates_and_chats_with_a_user_and_a_password_or_an_api_key(cpd_server, secret):
    backend = WatsonxBackend(_cpd_options(cpd_server, **CPD_SECRETS[secret]))
    try:
        text, chat = backend.generate([TEXT, CHAT], GenerationParams(max_new_tokens=8))
    finally:
        backend.close()
    assert text.error is None and text.text and text.output_tokens
    assert chat.error is None and chat.text
    calls = [(r.method, r.path) for r in cpd_server.requests]
    assert calls == [*CPD_CALLS, ("POST", "/ml/v1/text/generation"), ("POST", "/ml/v1/text/chat")]
    version, authorize, *rest = cpd_server.requests
    assert version.authorization is None  # asked before any token exists
    assert authorize.body == {"username": USER, **CPD_SECRETS[secret]}
    assert cpd_server.token_requests == 1
    assert all(r.authorization.startswith("Bearer ") for r in rest)
    assert rest[-2].body["project_id"] == "p1" and rest[-2].query["version"]
    assert rest[-1].body["messages"] == [{"role": "user", "content": "Write one sentence."}]
    assert "DEPLOYMENT_PLATFORM" not in os.environ  # the SDK's export is taken back


@cpd_instance_id
@pytest.mark.parametrize("secret", CPD_SECRETS)
def test_cpd_wrong_credentials_are_one_clear_error_without_the_secret(cpd_server, secret):
    wrong = {"password": "cpd-wrong-pass-987654", "api_key": "wx-wrong-key-987654"}[secret]
    backend = WatsonxBackend(_cpd_options(cpd_server, **{secret: wrong}))
    try:
        with pytest.raises(BackendError, match="watsonx") as raised:
            backend.load()
    finally:
        backend.close()
    message = str(raised.value)
    assert wrong not in message and PASSWORD not in message and KEY not in message
    assert "\n" not in message and "credentials" in message
    if secret == "password":  # the service's own answer, not the SDK's bedrock URL guess
        assert "Invalid username or password" in message
    assert [(r.method, r.path) for r in cpd_server.requests] == CPD_CALLS[:2]


@cpd_instance_id
def test_cpd_a_token_the_service_stops_accepting_is_refreshed(cpd_server):
    backend = WatsonxBackend(_cpd_options(cpd_server, password=PASSWORD))
    try:
        first = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
        cpd_server.revoke_tokens()
        second = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
    finally:
        backend.close()
    assert first[0].error is None and second[0].error is None
    assert cpd_server.token_requests == 2
    assert [r.path for r in cpd_server.requests].count("/icp4d-api/v1/authorize") == 2
    auths = [r.authorization for r in cpd_server.inference_requests()]
    assert auths[0] != auths[-1]


def test_cpd_with_iam_integration_trades_an_iam_token_for_a_platform_token(cpd_server):
    """With ``bedrock_url`` the password goes to the foundational services' IAM first."""
    options = _cpd_options(
        cpd_server, password=PASSWORD, bedrock_url=cpd_server.url, instance_id=None
    )
    backend = WatsonxBackend(options)
    try:
        [generation] = backend.generate([TEXT], GenerationParams(max_new_tokens=4))
    finally:
        backend.close()
    assert generation.error is None and generation.text
    calls = [(r.method, r.path) for r in cpd_server.requests]
    assert calls[:3] == [
        ("GET", "/ml/wml_services/v2/version"),
        ("POST", "/idprovider/v1/auth/identitytoken"),
        ("GET", "/v1/preauth/validateAuth"),
    ]
    identity, validate = cpd_server.requests[1:3]
    assert identity.body["grant_type"] == "password" and identity.body["username"] == USER
    assert validate.headers["username"] == USER and validate.headers["iam-token"]
    assert cpd_server.inference_requests()[0].authorization.startswith("Bearer ")
