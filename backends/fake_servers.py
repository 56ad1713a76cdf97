"""In-process fake LLM servers that speak the OpenAI-compatible and IBM watsonx.ai REST APIs.

Why: the remote backends must be tested (retries, timeouts, auth expiry, concurrency, the
exact request bodies they send) and benchmarked without network access, credentials or cost.
A real HTTP server on 127.0.0.1 exercises the real client stack (httpx, TLS, connection pools,
the official ``ibm-watsonx-ai`` SDK) instead of mocking it, so a passing test means the wire
protocol is right. Only the standard library is imported at module import time; ``trustme``
(a test dependency) is imported lazily, only when a TLS server starts.

Both servers share :class:`FakeServer`: threaded (one thread per connection), HTTP/1.1
keep-alive with exact ``Content-Length``, a per-request ``latency_s`` that sleeps in the
request's own thread (so concurrent requests overlap, like a real server with fixed latency),
queued :class:`Fault` injection, a thread-safe log of :class:`RecordedRequest` and counters
(``inference_calls``, ``max_in_flight``, ``token_requests``, ``faults_served``).

Completions are produced by a ``responder(prompt, body) -> str`` (default:
:func:`default_responder`, a deterministic sentence derived from the prompt's SHA-256). Token
counts are whitespace-separated words: a stand-in for a tokenizer, good enough to check that
limits are sent and honoured. ``max_new_tokens``/``max_tokens`` truncate the output to that
many words, stop sequences cut it at the first match, and the stop reason says which.

What the ``ibm-watsonx-ai`` SDK (1.8.1) requires of a server, read from its source and checked
against this fake (every request goes through ``httpx``):

* ``url``, ``auth_url`` and ``platform_url`` must all start with ``https://``, hence TLS here
  with a throw-away ``trustme`` CA; the client is told to trust it with
  ``Credentials(verify=server.ca_cert_path)``.
* Cloud or CPD mode is decided from the URL: a host that is not a known IBM Cloud host is CPD
  (Cloud Pak for Data, see below) unless ``platform_url`` is given. So pass
  ``platform_url=server.url`` to stay in cloud mode.
* Construction with ``api_key``: ``POST {auth_url}`` with the form body
  ``apikey=...&grant_type=urn:ibm:params:oauth:grant-type:apikey`` (headers
  ``Content-Type: application/x-www-form-urlencoded``, ``Authorization: Basic Yng6Yng=``)
  must return ``{"access_token": <JWT>}``. The SDK base64-decodes the JWT payload (never the
  signature) and reads ``exp`` to schedule refreshes: 15 minutes before expiry for lifetimes
  over 30 minutes, a third of the lifetime above 3 minutes, else 1 minute, so a token living
  under a minute is re-fetched before every request. It decodes with the *standard* base64
  alphabet first, so issued payloads avoid the ``-``/``_`` characters (see :func:`make_jwt`).
* With ``token=`` instead, no token request is made; the token is sent as
  ``Authorization: Bearer`` only if it contains a ``.``, else as ``Basic``.
* ``project_id=`` then calls ``GET {platform_url}/v2/projects/{id}`` and reads
  ``entity.storage.type`` (and ``entity.compute[].type/guid``); ``space_id=`` calls
  ``GET {platform_url}/v2/spaces/{id}``. Anything but 200 raises ``CannotSetProjectOrSpace``.
* ``ModelInference(validate=True)`` (the default) calls ``GET /ml/v1/foundation_model_specs``
  with ``version``, ``project_id``, ``filters=!lifecycle_withdrawn`` and ``limit=200`` and needs
  the ``model_id`` among ``resources[].model_id``, else it repeats the call with
  ``tech_preview=true`` and raises ``WMLClientError``.
* ``generate()`` posts ``/ml/v1/text/generation?version=...`` with
  ``{model_id, input, parameters?, project_id|space_id}`` and reads
  ``results[0].generated_text``; ``chat()`` posts ``/ml/v1/text/chat?version=...`` with
  ``{model_id, messages, project_id|space_id}`` and the chat parameters merged at the top level
  (``max_tokens``, ``temperature``, ``stop``...), and reads OpenAI-like ``choices``/``usage``.
* The SDK throttles with a token bucket driven by the ``x-requests-limit-remaining`` response
  header; the fake never sends it, so the bucket stays at its default.
* The SDK's own transport retries 401, 500, 502, 503, 504, 520, 521 and 524 three times and a
  dropped connection (``httpx.RemoteProtocolError``) three times, whatever ``max_retries`` says;
  ``max_retries`` only governs its second layer (429, 503, 504, 520 by default, ignoring
  ``Retry-After``). A fault therefore needs ``times=4`` to reach the caller of a default SDK
  client, or pass ``APIClient(httpx_client=httpx.Client(...))`` to remove the first layer.
  A 401 is retried with the same token: the SDK never refreshes a token because of a 401.
* CPD mode (``FakeWatsonxServer(cpd=True)``, with ``Credentials(url=server.url, username=...,
  password=... or api_key=..., version="5.1", verify=...)``; ``instance_id`` is ignored with a
  ``DeprecationWarning``): ``APIClient`` first sends an unauthenticated ``GET
  {url}/ml/wml_services/v2/version``; a 200 ``{"version": "5.1.2"}`` is cut to ``major.minor``
  and must be in the SDK's supported list (5.0 to 6.0; a different ``Credentials.version`` only
  warns), a 4xx is ignored if ``version`` is given, a 5xx raises. Then the token: with
  ``username`` and ``api_key`` (and no password) it posts the JSON ``{"username", "api_key"}``
  to ``{url}/icp4d-api/v1/authorize`` and reads ``token``; with ``password`` it first tries
  IAM-integrated CPD, ``POST {bedrock_url}/idprovider/v1/auth/identitytoken`` (form
  ``grant_type=password&username=..&password=..&scope=openid``, reads ``access_token`` and
  ``expires_in``) then ``GET {url}/v1/preauth/validateAuth`` (headers ``username``,
  ``iam-token``; reads ``accessToken``), and on any failure falls back to authorize with
  ``{"username", "password"}`` (forgetting ``bedrock_url`` if that works). Without
  ``Credentials(bedrock_url=...)`` the SDK derives it from the URL
  (``https://cpd-<namespace>.<rest of host>``), which for ``https://127.0.0.1:<port>`` is the
  unresolvable ``https://cpd-.0.0.1:<port>``: one failed DNS lookup that never reaches this
  server. An ``auth_url`` replaces both token URLs. A 4xx from authorize raises
  ``InvalidCredentialsError`` (wrapped in ``CannotAutogenerateBedrockUrl`` when the IAM attempt
  came first) quoting the response body, which here never echoes the secret. Authorize's token
  expires at its JWT ``exp`` (the IAM route's at ``expires_in``) and is renewed from the same
  credentials, on the schedule above. Project, space, model specs, generation and chat then go
  to ``{url}`` exactly as in cloud mode (``GET /v2/projects/{id}`` reads only
  ``entity.storage.type``), with ``Bearer`` tokens. The SDK also sets
  ``os.environ["DEPLOYMENT_PLATFORM"] = "private"`` and ``os.environ["DEPLOYMENT_PRIVATE"] =
  "icp4d"`` for good.
* Global state: ``APIClient`` copies ``Credentials.verify`` into
  ``os.environ["WX_CLIENT_VERIFY_REQUESTS"]``, which later ``Credentials`` objects and SDK
  clients read. It outlives the server (whose CA file is deleted on ``stop``), so tests should
  restore it (e.g. ``monkeypatch.delenv(..., raising=False)`` before building the client).

Typical use::

    with FakeWatsonxServer(api_key="test-key", project_ids=("p1",)) as server:
        creds = Credentials(url=server.url, api_key="test-key", platform_url=server.url,
                            auth_url=server.url + "/identity/token",
                            verify=server.ca_cert_path)
        model = ModelInference(model_id="ibm/granite-3-3-8b-instruct", credentials=creds,
                               project_id="p1", max_retries=0)
        server.inject(Fault(429, retry_after=2))  # the next generate() raises ApiRequestFailure

    with FakeWatsonxServer(cpd=True, project_ids=("p1",)) as server:  # Cloud Pak for Data
        creds = Credentials(url=server.url, username="admin", password="secret",
                            version="5.1", verify=server.ca_cert_path)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "DEFAULT_WATSONX_MODELS",
    "FakeOpenAIServer",
    "FakeServer",
    "FakeWatsonxServer",
    "Fault",
    "RecordedRequest",
    "Responder",
    "count_tokens",
    "default_responder",
    "make_jwt",
]

_log = logging.getLogger(__name__)

Responder = Callable[[str, dict[str, Any]], str]
"""``responder(prompt_text, request_body) -> completion_text``."""

FaultKind = Literal["status", "hang", "disconnect"]

DEFAULT_WATSONX_MODELS: tuple[str, ...] = (
    "ibm/granite-3-3-8b-instruct",
    "meta-llama/llama-3-3-70b-instruct",
    "mistralai/mistral-small-3-1-24b-instruct-2503",
)

_IAM_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
_WORD = re.compile(r"\S+")
_VOCABULARY = (
    "the", "document", "states", "that", "each", "claim", "is", "supported", "by", "cited",
    "passage", "while", "results", "depend", "on", "careful", "grounding", "of", "every",
    "answer", "in", "source", "text", "so", "readers", "can", "verify", "facts", "quickly",
    "and", "trust", "questions",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Public helpers and value types
# --------------------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """Count whitespace-separated words: the fakes' stand-in for a real tokenizer."""
    return len(text.split())


def default_responder(prompt: str, body: dict[str, Any]) -> str:
    """Return a short sentence that depends only on the prompt.

    Deterministic so tests can compare outputs across runs and backends; prompt-dependent so
    a test notices when two prompts were swapped or a prompt was not sent at all.
    """
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    words = [_VOCABULARY[b % len(_VOCABULARY)] for b in digest[:8]]
    return f"Answer {digest.hex()[:8]}: {' '.join(words)}."


def make_jwt(payload: dict[str, Any]) -> str:
    """Return an unsigned JWT (``header.payload.signature``) carrying ``payload``.

    The watsonx SDK only decodes the payload, and decodes it with the standard base64 alphabet
    before trying a (swapped) URL-safe one. A ``nonce`` claim is varied until the base64url
    encoding contains no ``-`` or ``_``, so both alphabets decode the same bytes and the token
    is still a valid JWT for any other reader.
    """

    def encode(part: dict[str, Any]) -> str:
        raw = json.dumps(part, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = encode({"alg": "none", "typ": "JWT"})
    claims = dict(payload)
    for nonce in range(100_000):
        claims["nonce"] = nonce
        body = encode(claims)
        if "-" not in body and "_" not in body:
            break
    signature = base64.urlsafe_b64encode(b"fake-signature").rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


@dataclass
class Fault:
    """One injected failure, consumed by the next ``times`` matching requests.

    ``kind``:

    * ``"status"``: answer with ``status`` and the server's error JSON, plus a ``Retry-After``
      header (seconds) when ``retry_after`` is set: rate limits and outages.
    * ``"hang"``: sleep ``seconds`` before answering normally, to provoke client read timeouts.
    * ``"disconnect"``: close the connection without any response (client sees
      ``httpx.RemoteProtocolError``).

    ``path``: ``None`` matches the inference endpoints only (text generation and chat, or
    completions and chat completions); otherwise any request whose path starts with it, e.g.
    ``"/identity/token"`` or ``"/v2/projects"``. ``body`` overrides the error JSON.
    """

    status: int = 500
    retry_after: float | None = None
    times: int = 1
    kind: FaultKind = "status"
    seconds: float = 0.0
    path: str | None = None
    body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("status", "hang", "disconnect"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times < 1:
            raise ValueError("times must be at least 1")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it, for assertions on what a client sent.

    ``query`` keeps the last value of each parameter. ``body`` is the decoded JSON, a dict for
    form bodies, the text otherwise, or ``None`` when empty. ``authorization`` is the
    ``Authorization`` header verbatim; ``headers`` has lower-cased names.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    authorization: str | None
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Exchange:
    """The parsed request handed to a server's router."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_error: str | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def json_body(self) -> dict[str, Any] | None:
        return self.body if isinstance(self.body, dict) else None


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server that never waits for its handler threads on close.

    ``block_on_close = False`` matters: idle keep-alive connections and hanging faults would
    otherwise make ``server_close()`` block until every client goes away.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall
        # for seconds on machines without a resolver; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, disconnect faults, TLS probes) are normal here.
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "groundset-fake/1.0"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK, adding about 40 ms to every response.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this long, so threads do not pile up.
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        fake = self.server.fake
        ctx = fake._ssl_context
        if ctx is not None:
            self.request.settimeout(self.timeout)
            # Handshake here, in the connection's own thread, not in the accept loop.
            self.request = ctx.wrap_socket(self.request, server_side=True)
        fake._track(self.request, add=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.request, add=False)
            if isinstance(self.request, ssl.SSLSocket):
                # The server closes only the raw socket it accepted, which wrapping detached.
                with contextlib.suppress(OSError):
                    self.request.close()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        body, body_error = _decode_body(raw, headers.get("content-type", ""))
        exchange = _Exchange(self.command, parts.path, query, headers, body, body_error)
        reply = self.server.fake._serve(exchange, self)
        if reply is None:  # disconnect fault: the connection is already gone
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        if isinstance(reply.body, bytes):
            payload, ctype = reply.body, "application/octet-stream"
        elif isinstance(reply.body, str):
            payload, ctype = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(reply.body).encode(), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.headers.pop("Content-Type", ctype))
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. after a hang fault): nothing to answer
            self.close_connection = True

    def drop_connection(self) -> None:
        """Close the socket without a response, as a crashing upstream would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.connection.close()


def _decode_body(raw: bytes, content_type: str) -> tuple[Any, str | None]:
    if not raw:
        return None, None
    text = raw.decode("utf-8", errors="replace")
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}, None
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text), None
        except ValueError as exc:
            return text, f"invalid JSON body: {exc}"
    return text, None


def _shape_output(
    text: str, limit: int | None, stops: Sequence[str], include_stop: bool
) -> tuple[str, Literal["eos", "length", "stop"]]:
    """Apply a word limit and stop sequences the way a decoder would: whichever comes first."""
    words = list(_WORD.finditer(text))
    cut = words[limit - 1].end() if limit is not None and 0 < limit < len(words) else None
    if limit is not None and limit <= 0 and words:
        cut = 0
    first: tuple[int, str] | None = None
    for stop in stops:
        pos = text.find(stop) if stop else -1
        if pos >= 0 and (first is None or pos < first[0]):
            first = (pos, stop)
    if first is not None and (cut is None or first[0] < cut):
        pos, stop = first
        return (text[: pos + len(stop)] if include_stop else text[:pos]), "stop"
    if cut is not None:
        return text[:cut], "length"
    return text, "eos"


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []


def _message_text(messages: Any) -> str:
    """Concatenate chat message contents (plain strings or OpenAI-style text parts)."""
    out: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Base server
# --------------------------------------------------------------------------------------------


class FakeServer:
    """Threaded fake HTTP server on 127.0.0.1 with latency, faults, a request log and counters.

    Subclasses define the routes. ``latency_s`` is slept by every (non-faulted) inference
    request in its own thread, so N concurrent requests take about ``latency_s`` in total, not
    N times it; ``max_in_flight`` shows how many overlapped. ``inference_calls`` counts every
    inference request received, faulted ones included; ``faults_served`` counts the faults.
    """

    scheme: ClassVar[str] = "http"
    inference_paths: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency_s = latency_s
        self.responder: Responder = responder or default_responder
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._connections: set[Any] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._in_flight = 0
        self._max_in_flight = 0
        self._inference_calls = 0
        self._token_requests = 0
        self._faults_served = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        self._ssl_context = self._make_ssl_context()
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and drop open connections. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"{self.scheme}://{self._host}:{self.port}"

    # ---- faults, log, counters -------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each matching request consumes one use of the first matching fault."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def inference_requests(self) -> list[RecordedRequest]:
        """The recorded requests to inference endpoints only."""
        return [r for r in self.requests if r.path in self.inference_paths]

    @property
    def inference_calls(self) -> int:
        with self._lock:
            return self._inference_calls

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def token_requests(self) -> int:
        with self._lock:
            return self._token_requests

    @property
    def faults_served(self) -> int:
        with self._lock:
            return self._faults_served

    def reset(self) -> None:
        """Forget recorded requests, counters and pending faults (between test phases)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._inference_calls = self._token_requests = self._faults_served = 0
            self._max_in_flight = self._in_flight

    # ---- subclass hooks --------------------------------------------------------------------

    def _make_ssl_context(self) -> ssl.SSLContext | None:
        return None

    def _cleanup(self) -> None:
        """Release resources created by ``start`` (certificates...)."""

    def _route(self, ex: _Exchange) -> _Reply:
        raise NotImplementedError

    def _error(self, status: int, code: str, message: str) -> _Reply:
        raise NotImplementedError

    def _is_token_request(self, ex: _Exchange) -> bool:
        return False

    # ---- request handling ------------------------------------------------------------------

    def _track(self, conn: Any, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _take_fault(self, path: str, is_inference: bool) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                matches = is_inference if fault.path is None else path.startswith(fault.path)
                if matches:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[i]
                    self._faults_served += 1
                    return fault
        return None

    def _serve(self, ex: _Exchange, handler: _Handler) -> _Reply | None:
        is_inference = ex.method == "POST" and ex.path in self.inference_paths
        with self._lock:
            self._requests.append(
                RecordedRequest(ex.method, ex.path, ex.query, ex.headers, ex.body, ex.authorization)
            )
            if self._is_token_request(ex):
                self._token_requests += 1
            if is_inference:
                self._inference_calls += 1
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            fault = self._take_fault(ex.path, is_inference)
            if fault is not None:
                if fault.kind == "disconnect":
                    handler.drop_connection()
                    return None
                if fault.kind == "status":
                    reply = self._error(fault.status, _fault_code(fault.status), "injected fault")
                    if fault.body is not None:
                        reply.body = fault.body
                    if fault.retry_after is not None:
                        reply.headers["Retry-After"] = _format_seconds(fault.retry_after)
                    return reply
                self._stopping.wait(fault.seconds)  # "hang", then answer normally
            if ex.body_error is not None:
                return self._error(400, "json_type_error", ex.body_error)
            if is_inference and self.latency_s > 0:
                self._stopping.wait(self.latency_s)
            try:
                return self._route(ex)
            except Exception as exc:  # a failing responder becomes a 500, as upstream would
                _log.exception("fake server route failed")
                return self._error(500, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            if is_inference:
                with self._lock:
                    self._in_flight -= 1

    def _complete(
        self,
        prompt: str,
        body: dict[str, Any],
        limit: int | None,
        stops: Sequence[str],
        include_stop: bool,
    ) -> tuple[str, Literal["eos", "length", "stop"], int, int]:
        """Run the responder and apply limits; returns text, reason, input and output tokens."""
        text, reason = _shape_output(self.responder(prompt, body), limit, stops, include_stop)
        return text, reason, count_tokens(prompt), count_tokens(text)


def _fault_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "authentication_token_expired",
        403: "forbidden",
        404: "not_found",
        408: "request_timeout",
        429: "rate_limit_exceeded",
        500: "internal_server_error",
        502: "bad_gateway",
        503: "service_unavailable",
        504: "gateway_timeout",
    }.get(status, f"http_{status}")


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# --------------------------------------------------------------------------------------------
# OpenAI-compatible server
# --------------------------------------------------------------------------------------------


class FakeOpenAIServer(FakeServer):
    """Plain-HTTP fake of the OpenAI-compatible API (as served by OpenAI, vLLM, llama.cpp...).

    ``POST /v1/completions`` (``prompt`` a string or a list of strings, one choice each),
    ``POST /v1/chat/completions`` and ``GET /v1/models``. Honours ``max_tokens`` (or
    ``max_completion_tokens``) and ``stop`` (excluded from the text, as OpenAI does); other
    parameters (``temperature``, ``top_p``, ``seed``...) are only recorded. With ``api_key``
    set, a request without ``Authorization: Bearer <api_key>`` gets 401; an unknown model 404;
    ``stream: true`` 400 (streaming is not faked). Errors use OpenAI's
    ``{"error": {"message", "type", "param", "code"}}`` shape.
    """

    inference_paths: ClassVar[tuple[str, ...]] = ("/v1/completions", "/v1/chat/completions")

    def __init__(
        self,
        *,
        models: Iterable[str] = ("fake-model",),
        api_key: str | None = None,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(latency_s=latency_s, responder=responder, host=host, port=port)
        self.models = list(models)
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        """The URL OpenAI clients take as ``base_url`` (with the ``/v1`` suffix)."""
        return self.url + "/v1"

    def _error(self, status: int, code: str, message: str) -> _Reply:
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        return _Reply(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )

    def _route(self, ex: _Exchange) -> _Reply:
        if self.api_key is not None and ex.authorization != f"Bearer {self.api_key}":
            return self._error(
                401,
                "invalid_api_key",
                "Incorrect API key provided. You can find your API key in your account settings.",
            )
        if ex.method == "GET" and ex.path == "/v1/models":
            created = int(time.time())
            data = [
                {"id": m, "object": "model", "created": created, "owned_by": "groundset-fake"}
                for m in self.models
            ]
            return _Reply(200, {"object": "list", "data": data})
        if ex.method == "POST" and ex.path in self.inference_paths:
            body = ex.json_body()
            if body is None:
                return self._error(400, "invalid_body", "The request body must be a JSON object.")
            model = body.get("model")
            if not model:
                return self._error(400, "missing_model", "you must provide a model parameter")
            if model not in self.models:
                return self._error(404, "model_not_found", f"The model `{model}` does not exist.")
            if body.get("stream"):
                return self._error(400, "unsupported", "streaming is not supported by the fake")
            if ex.path == "/v1/completions":
                return self._completions(body)
            return self._chat(body)
        return self._error(404, "not_found", f"Unknown endpoint {ex.method} {ex.path}")

    def _limits(self, body: dict[str, Any]) -> tuple[int | None, list[str]]:
        limit = _as_int(body.get("max_tokens"))
        if limit is None:
            limit = _as_int(body.get("max_completion_tokens"))
        return limit, _as_stops(body.get("stop"))

    def _completions(self, body: dict[str, Any]) -> _Reply:
        prompts = body.get("prompt")
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            return self._error(400, "invalid_prompt", "prompt must be a string or strings")
        limit, stops = self._limits(body)
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for index, prompt in enumerate(prompts):
            text, reason, n_in, n_out = self._complete(prompt, body, limit, stops, False)
            choices.append(
                {
                    "index": index,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": "length" if reason == "length" else "stop",
                }
            )
            prompt_tokens += n_in
            completion_tokens += n_out
        return _Reply(
            200,
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": choices,
                "usage": _usage(prompt_tokens, completion_tokens),
            },
        )

    def _chat(self, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "invalid_messages", "messages must be a non-empty list")
        limit, stops = self._limits(body)
        text, reason, n_in, n_out = self._complete(
            _message_text(messages), body, limit, stops, False
        )
        return _Reply(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "length" if reason == "length" else "stop",
                    }
                ],
                "usage": _usage(n_in, n_out),
            },
        )


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# --------------------------------------------------------------------------------------------
# watsonx.ai server
# --------------------------------------------------------------------------------------------


class FakeWatsonxServer(FakeServer):
    """HTTPS fake of IBM watsonx.ai, on IBM Cloud (IAM) or on Cloud Pak for Data (``cpd=True``).

    Serves what the ``ibm-watsonx-ai`` SDK calls on construction and inference (see the module
    docstring): ``POST /identity/token``, ``GET /v2/projects/{id}``, ``GET /v2/spaces/{id}``,
    ``GET /ml/v1/foundation_model_specs``, ``GET /ml/v4/instances/{id}``,
    ``POST /ml/v1/text/generation`` and ``POST /ml/v1/text/chat`` (``version`` query required).

    Authentication: only ``api_key`` gets a token (IAM's 400 ``BXNIM0415E`` otherwise). Tokens
    are unsigned JWTs with ``exp = now + token_lifetime_s``, tracked by the server; a missing,
    unknown, expired or revoked token gets 401 in the watsonx error shape. ``bearer_token`` is
    a static token also accepted (for ``Credentials(token=...)``); it must contain a ``.``
    because the SDK sends dot-less tokens as ``Basic``. :meth:`issue_token` mints a tracked one.

    With ``cpd=True`` the IAM endpoint is replaced by the Cloud Pak for Data ones:
    ``GET /ml/wml_services/v2/version`` (unauthenticated, answers ``cpd_version``),
    ``POST /icp4d-api/v1/authorize`` (JSON ``{username, password}`` or ``{username, api_key}``:
    ``username`` with ``password`` or with ``api_key``, the user's platform API key, gets a
    token) and the IAM-integrated pair ``POST /idprovider/v1/auth/identitytoken`` (form
    ``grant_type=password``) then ``GET /v1/preauth/validateAuth`` (headers ``username`` and
    ``iam-token``), which the SDK reaches only through ``Credentials(bedrock_url=...)``. Every
    other route is the same in both modes. ``token_requests`` counts authorize and identitytoken
    calls.

    Generation defaults to ``max_new_tokens=20`` and chat to ``max_tokens=1024`` like the
    service; stop sequences are kept in the text unless ``include_stop_sequence`` is false.
    """

    scheme: ClassVar[str] = "https"
    inference_paths: ClassVar[tuple[str, ...]] = ("/ml/v1/text/generation", "/ml/v1/text/chat")
    token_path: ClassVar[str] = "/identity/token"
    cpd_token_path: ClassVar[str] = "/icp4d-api/v1/authorize"
    cpd_identity_path: ClassVar[str] = "/idprovider/v1/auth/identitytoken"
    cpd_validate_path: ClassVar[str] = "/v1/preauth/validateAuth"
    cpd_version_path: ClassVar[str] = "/ml/wml_services/v2/version"
    instance_id: ClassVar[str] = "fake-wml-instance"

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        bearer_token: str | None = None,
        cpd: bool = False,
        username: str = "admin",
        password: str | None = "secret",
        cpd_version: str = "5.1.2",
        project_ids: Iterable[str] = ("fake-project",),
        space_ids: Iterable[str] = (),
        model_ids: Iterable[str] = DEFAULT_WATSONX_MODELS,
        token_lifetime_s: float = 3600.0,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(latency_s=latency_s, responder=responder, host=host, port=port)
        if bearer_token is not None and "." not in bearer_token:
            raise ValueError(
                "bearer_token must contain a '.' (JWT-shaped): the SDK sends dot-less tokens "
                "as 'Authorization: Basic', which watsonx rejects"
            )
        self.api_key = api_key
        self.bearer_token = bearer_token
        self.cpd = cpd
        self.username = username
        self.password = password
        self.cpd_version = cpd_version
        self.project_ids = list(project_ids)
        self.space_ids = list(space_ids)
        self.model_ids = list(model_ids)
        self.token_lifetime_s = token_lifetime_s
        self._tokens: dict[str, float] = {}
        self._static_revoked = False
        self._tmpdir: Path | None = None
        self._ca_cert_path: Path | None = None

    # ---- TLS -------------------------------------------------------------------------------

    def _make_ssl_context(self) -> ssl.SSLContext:
        import trustme  # lazily: a test dependency, needed only for TLS

        ca = trustme.CA()
        cert = ca.issue_cert(self._host, "127.0.0.1", "localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="groundset-fake-watsonx-"))
        self._ca_cert_path = self._tmpdir / "ca.pem"
        ca.cert_pem.write_to_path(str(self._ca_cert_path))
        return ctx

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = self._ca_cert_path = None

    @property
    def ca_cert_path(self) -> str:
        """PEM file of the CA that signed the server certificate (deleted on ``stop``)."""
        if self._ca_cert_path is None:
            raise RuntimeError("server not started")
        return str(self._ca_cert_path)

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the fake, for ``httpx.Client(verify=...)``.

        httpx 0.28 deprecates ``verify=<path>``; a context avoids the warning.
        """
        return ssl.create_default_context(cafile=self.ca_cert_path)

    @property
    def auth_url(self) -> str:
        """The token URL to pass as ``Credentials(auth_url=...)``: IAM's, or CPD's authorize."""
        return self.url + (self.cpd_token_path if self.cpd else self.token_path)

    # ---- tokens ----------------------------------------------------------------------------

    def issue_token(self, lifetime_s: float | None = None) -> str:
        """Mint and track a token, as the IAM endpoint does (e.g. for ``token=`` credentials)."""
        return self._mint(self.token_lifetime_s if lifetime_s is None else lifetime_s)[0]

    def _mint(self, lifetime_s: float) -> tuple[str, int]:
        now = time.time()
        exp = int(now + lifetime_s)
        claims: dict[str, Any]
        if self.cpd:  # the claims of a Cloud Pak for Data platform token
            claims = {
                "username": self.username,
                "role": "Admin",
                "uid": "1000330999",
                "sub": self.username,
                "iss": "KNOXSSO",
                "aud": "DSX",
            }
        else:
            claims = {
                "iam_id": "iam-ServiceId-fake",
                "sub": "ServiceId-fake",
                "iss": "https://iam.fake/identity",
            }
        token = make_jwt(claims | {"iat": int(now), "exp": exp, "jti": uuid.uuid4().hex})
        with self._lock:
            self._tokens[token] = exp
        return token, exp

    def revoke_tokens(self, *, static: bool = True) -> None:
        """Invalidate every issued token (and ``bearer_token`` unless ``static=False``).

        Simulates server-side expiry while the JWTs' ``exp`` still looks valid to the client.
        """
        with self._lock:
            self._tokens.clear()
            if static:
                self._static_revoked = True

    def _token_error(self, ex: _Exchange) -> _Reply | None:
        auth = ex.authorization or ""
        if not auth.startswith("Bearer "):
            return self._error(401, "authorization_rejected", "Missing or malformed bearer token")
        token = auth[len("Bearer ") :]
        exp: float | None
        with self._lock:
            if self.bearer_token is not None and token == self.bearer_token:
                exp = None if self._static_revoked else float("inf")
            else:
                exp = self._tokens.get(token)
        if exp is None or exp <= time.time():
            return self._error(
                401,
                "authentication_token_expired",
                "Failed to authenticate the request due to an expired or invalid token",
            )
        return None

    # ---- responses -------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> _Reply:
        return _Reply(
            status,
            {
                "errors": [
                    {
                        "code": code,
                        "message": message,
                        "more_info": "https://cloud.ibm.com/apidocs/watsonx-ai",
                    }
                ],
                "trace": uuid.uuid4().hex,
                "status_code": status,
            },
        )

    def _is_token_request(self, ex: _Exchange) -> bool:
        if self.cpd:
            return ex.path in (self.cpd_token_path, self.cpd_identity_path)
        return ex.path == self.token_path

    def _route(self, ex: _Exchange) -> _Reply:
        if self.cpd:
            if (reply := self._cpd_route(ex)) is not None:
                return reply
        elif ex.path == self.token_path:
            return self._iam_token(ex)
        if (denied := self._token_error(ex)) is not None:
            return denied
        segments = ex.path.strip("/").split("/")
        if ex.method == "GET" and len(segments) == 3 and segments[:2] == ["v2", "projects"]:
            return self._project(segments[2])
        if ex.method == "GET" and len(segments) == 3 and segments[:2] == ["v2", "spaces"]:
            return self._space(segments[2])
        if ex.method == "GET" and ex.path == "/ml/v1/foundation_model_specs":
            return self._model_specs(ex)
        if ex.method == "GET" and len(segments) == 4 and segments[:3] == ["ml", "v4", "instances"]:
            return self._instance(segments[3])
        if ex.method == "POST" and ex.path in self.inference_paths:
            return self._inference(ex)
        return self._error(404, "not_found", f"Unknown endpoint {ex.method} {ex.path}")

    def _iam_token(self, ex: _Exchange) -> _Reply:
        form = ex.body if isinstance(ex.body, dict) else {}
        if ex.method != "POST":
            return _Reply(405, {"errorCode": "BXNIM0100E", "errorMessage": "Method not allowed"})
        if form.get("grant_type") != _IAM_GRANT_TYPE:
            return _Reply(
                400,
                {
                    "errorCode": "BXNIM0109E",
                    "errorMessage": "Property missing or empty. Operation not supported: "
                    f"grant_type {form.get('grant_type')!r}",
                },
            )
        if self.api_key is None or form.get("apikey") != self.api_key:
            return _Reply(
                400,
                {
                    "errorCode": "BXNIM0415E",
                    "errorMessage": "Provided API key could not be found.",
                },
            )
        token, exp = self._mint(self.token_lifetime_s)
        return _Reply(
            200,
            {
                "access_token": token,
                "refresh_token": "not_supported",
                "token_type": "Bearer",
                "expires_in": int(self.token_lifetime_s),
                "expiration": exp,
                "scope": "ibm openid",
            },
        )

    # ---- Cloud Pak for Data ----------------------------------------------------------------

    def _cpd_route(self, ex: _Exchange) -> _Reply | None:
        """The CPD-only, unauthenticated routes; ``None`` for the routes shared with cloud."""
        if ex.path == self.cpd_version_path:
            if ex.method != "GET":
                return self._error(405, "method_not_allowed", "Method not allowed")
            return _Reply(200, {"version": self.cpd_version, "build": "fake"})
        if ex.path == self.cpd_token_path:
            return self._cpd_authorize(ex)
        if ex.path == self.cpd_identity_path:
            return self._cpd_identity_token(ex)
        if ex.path == self.cpd_validate_path:
            return self._cpd_validate(ex)
        if ex.path == self.token_path:  # no IAM on CPD
            return self._error(404, "not_found", f"Unknown endpoint {ex.method} {ex.path}")
        return None

    def _cpd_user_ok(self, username: Any, password: Any, api_key: Any) -> bool:
        if username != self.username:
            return False
        if api_key is not None:
            return self.api_key is not None and api_key == self.api_key
        return self.password is not None and password == self.password

    def _cpd_authorize(self, ex: _Exchange) -> _Reply:
        """``POST /icp4d-api/v1/authorize``: the platform token from user name and secret."""
        if ex.method != "POST":
            return _Reply(405, {"_messageCode_": "405", "message": "Method not allowed"})
        body = ex.json_body()
        if body is None or not body.get("username"):
            return _Reply(
                400,
                {"_messageCode_": "400", "message": "Missing username and password or api_key"},
            )
        if not self._cpd_user_ok(body.get("username"), body.get("password"), body.get("api_key")):
            return _Reply(
                401,
                {"_messageCode_": "401", "message": "Invalid username or password"},
            )
        token, _ = self._mint(self.token_lifetime_s)
        return _Reply(200, {"_messageCode_": "200", "message": "Success", "token": token})

    def _cpd_identity_token(self, ex: _Exchange) -> _Reply:
        """``POST /idprovider/v1/auth/identitytoken``: an IAM token, for IAM-integrated CPD."""
        form = ex.body if isinstance(ex.body, dict) else {}
        if ex.method != "POST" or form.get("grant_type") != "password":
            return _Reply(400, {"error": "invalid_request", "error_description": "bad grant"})
        if not self._cpd_user_ok(form.get("username"), form.get("password"), None):
            return _Reply(
                401,
                {"error": "invalid_grant", "error_description": "Invalid username or password"},
            )
        token, _ = self._mint(self.token_lifetime_s)
        return _Reply(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.token_lifetime_s),
                "scope": "openid",
            },
        )

    def _cpd_validate(self, ex: _Exchange) -> _Reply:
        """``GET /v1/preauth/validateAuth``: trade an IAM token for a platform token."""
        iam_token = ex.headers.get("iam-token", "")
        with self._lock:
            exp = self._tokens.pop(iam_token, None)
        if ex.headers.get("username") != self.username or exp is None or exp <= time.time():
            return _Reply(401, {"_messageCode_": "401", "message": "Invalid iam-token"})
        token, _ = self._mint(self.token_lifetime_s)
        return _Reply(200, {"username": self.username, "role": "Admin", "accessToken": token})

    # ---- projects, spaces, models ----------------------------------------------------------

    def _project(self, project_id: str) -> _Reply:
        if project_id not in self.project_ids:
            return self._error(
                404, "does_not_exist", f"Project with id '{project_id}' does not exist"
            )
        return _Reply(
            200,
            {
                "metadata": {"guid": project_id, "url": f"/v2/projects/{project_id}"},
                "entity": {
                    "name": f"fake project {project_id}",
                    "storage": {"type": "assetfiles", "guid": f"storage-{project_id}"},
                    "compute": [
                        {
                            "type": "machine_learning",
                            "guid": self.instance_id,
                            "name": "fake watsonx.ai runtime",
                        }
                    ],
                },
            },
        )

    def _space(self, space_id: str) -> _Reply:
        if space_id not in self.space_ids:
            return self._error(404, "does_not_exist", f"Space with id '{space_id}' does not exist")
        return _Reply(
            200,
            {
                "metadata": {"id": space_id, "url": f"/v2/spaces/{space_id}"},
                "entity": {
                    "name": f"fake space {space_id}",
                    "compute": [
                        {
                            "type": "machine_learning",
                            "guid": self.instance_id,
                            "name": "fake watsonx.ai runtime",
                        }
                    ],
                    "stage": {"production": False},
                    "status": {"state": "active"},
                },
            },
        )

    def _instance(self, instance_id: str) -> _Reply:
        if instance_id != self.instance_id:
            return self._error(404, "instance_not_found", f"Instance '{instance_id}' not found")
        return _Reply(
            200,
            {
                "id": instance_id,
                "name": "fake watsonx.ai runtime",
                "plan": {"id": "fake-plan", "name": "v2-standard"},
                "status": "active",
            },
        )

    def _model_specs(self, ex: _Exchange) -> _Reply:
        resources = [
            {
                "model_id": model_id,
                "label": model_id.split("/")[-1],
                "provider": model_id.split("/")[0],
                "source": model_id.split("/")[0],
                "functions": [{"id": "text_generation"}, {"id": "text_chat"}],
                "short_description": "Fake model served by groundset's test server.",
                "input_tier": "class_1",
                "output_tier": "class_1",
                "number_params": "8b",
                "model_limits": {"max_sequence_length": 131072, "max_output_tokens": 8192},
                "lifecycle": [{"id": "available", "start_date": "2025-01-01"}],
                "supported_languages": ["en"],
            }
            for model_id in self.model_ids
        ]
        return _Reply(
            200,
            {
                "total_count": len(resources),
                "limit": _as_int(ex.query.get("limit")) or 100,
                "first": {"href": f"{self.url}{ex.path}"},
                "resources": resources,
            },
        )

    def _inference(self, ex: _Exchange) -> _Reply:
        if not ex.query.get("version"):
            return self._error(400, "missing_query_parameter", "Missing query parameter 'version'")
        body = ex.json_body()
        if body is None:
            return self._error(400, "json_type_error", "The request body must be a JSON object")
        model_id = body.get("model_id")
        if not model_id:
            return self._error(400, "json_validation_error", "Missing field 'model_id'")
        if model_id not in self.model_ids:
            return self._error(
                404,
                "model_not_supported",
                f"Model '{model_id}' is not supported",
            )
        project_id, space_id = body.get("project_id"), body.get("space_id")
        if not project_id and not space_id:
            return self._error(
                400,
                "invalid_request_entity",
                "Missing either space_id or project_id or wml_instance_crn",
            )
        if project_id and project_id not in self.project_ids:
            return self._error(
                404, "project_not_found", f"Project with id '{project_id}' does not exist"
            )
        if not project_id and space_id not in self.space_ids:
            return self._error(404, "space_not_found", f"Space with id '{space_id}' does not exist")
        if ex.path == "/ml/v1/text/generation":
            return self._generation(body)
        return self._chat(body)

    def _generation(self, body: dict[str, Any]) -> _Reply:
        prompt = body.get("input")
        if not isinstance(prompt, str):
            return self._error(400, "json_validation_error", "Missing field 'input'")
        params = body.get("parameters") or {}
        limit = _as_int(params.get("max_new_tokens"))
        text, reason, n_in, n_out = self._complete(
            prompt,
            body,
            20 if limit is None else limit,
            _as_stops(params.get("stop_sequences")),
            params.get("include_stop_sequence", True) is not False,
        )
        result: dict[str, Any] = {
            "generated_text": text,
            "generated_token_count": n_out,
            "input_token_count": n_in,
            "stop_reason": {"eos": "eos_token", "length": "max_tokens", "stop": "stop_sequence"}[
                reason
            ],
        }
        if "random_seed" in params:
            result["seed"] = params["random_seed"]
        return _Reply(
            200,
            {
                "model_id": body["model_id"],
                "model_version": "1.0.0",
                "created_at": _iso_now(),
                "results": [result],
            },
        )

    def _chat(self, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "json_validation_error", "Missing field 'messages'")
        limit = _as_int(body.get("max_tokens"))
        if limit is None:
            limit = _as_int(body.get("max_completion_tokens"))
        text, reason, n_in, n_out = self._complete(
            _message_text(messages),
            body,
            1024 if limit is None else limit,
            _as_stops(body.get("stop")),
            False,
        )
        now = int(time.time())
        return _Reply(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "model_id": body["model_id"],
                "model": body["model_id"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length" if reason == "length" else "stop",
                    }
                ],
                "created": now,
                "model_version": "1.0.0",
                "created_at": _iso_now(),
                "usage": _usage(n_in, n_out),
            },
        )


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
