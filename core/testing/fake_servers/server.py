"""The machinery both fake servers share: :class:`FakeServer` (lifecycle on an ephemeral port,
per-request latency, queued :class:`Fault` injection, a log of :class:`RecordedRequest` and
counters); subclasses supply the routes and the error shape."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from groundset.core.testing.fake_servers.completions import (
    Responder,
    StopReason,
    count_tokens,
    default_responder,
    shape_output,
)
from groundset.core.testing.fake_servers.http_server import (
    Exchange,
    Handler,
    Reply,
    ThreadedHTTPServer,
)

__all__ = ["FakeServer", "Fault", "FaultKind", "RecordedRequest"]

_log = logging.getLogger(__name__)

FaultKind = Literal["status", "hang", "disconnect"]


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


def _guarded(attribute: str, doc: str) -> Any:
    """A read-only property that reads ``attribute`` under the server's lock; a list is copied,
    so the caller gets a snapshot that later requests do not change. (Typed ``Any`` so that the
    class body can annotate each property with the type it reads.)"""

    def read(self: FakeServer) -> Any:
        with self._lock:
            value = getattr(self, attribute)
            return list(value) if isinstance(value, list) else value

    return property(read, doc=doc)


class FakeServer:
    """Threaded fake HTTP server on 127.0.0.1 with latency, faults, a request log and counters.

    Subclasses define the routes. ``latency_s`` is slept by every (non-faulted) inference
    request in its own thread, so N concurrent requests take about ``latency_s`` in total, not
    N times it; ``max_in_flight`` shows how many overlapped. ``inference_calls`` counts every
    inference request received, faulted ones included; ``faults_served`` counts the faults.
    """

    scheme: ClassVar[str] = "http"
    inference_paths: ClassVar[tuple[str, ...]] = ()
    #: the body field that names the model of an inference request
    model_field: ClassVar[str] = "model"
    #: how the server words the errors for an inference body that is not a JSON object
    #: ("not_object"), names no model ("no_model") or one it does not serve ("unknown_model",
    #: whose message may quote ``{model}``): (status, code, message)
    body_errors: ClassVar[dict[str, tuple[int, str, str]]] = {}

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
        self._httpd: ThreadedHTTPServer | None = None
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
        self._httpd = ThreadedHTTPServer((self._host, self._port), self)
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

    pending_faults: list[Fault] = _guarded("_faults", "Snapshot of the faults not used up yet.")
    requests: list[RecordedRequest] = _guarded(
        "_requests", "Snapshot of every request received so far, oldest first."
    )
    inference_calls: int = _guarded(
        "_inference_calls", "Inference requests received so far, faulted ones included."
    )
    in_flight: int = _guarded("_in_flight", "Inference requests being answered now.")
    max_in_flight: int = _guarded("_max_in_flight", "The most inference requests answered at once.")
    token_requests: int = _guarded("_token_requests", "Requests to the token endpoints so far.")
    faults_served: int = _guarded("_faults_served", "Injected faults served so far.")

    def inference_requests(self) -> list[RecordedRequest]:
        """The recorded requests to inference endpoints only."""
        return [r for r in self.requests if r.path in self.inference_paths]

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

    def _route(self, ex: Exchange) -> Reply:
        raise NotImplementedError

    def _error(self, status: int, code: str, message: str) -> Reply:
        raise NotImplementedError

    def _is_token_request(self, ex: Exchange) -> bool:
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

    def _serve(self, ex: Exchange, handler: Handler) -> Reply | None:
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

    def _inference_body(self, ex: Exchange, served: Sequence[str]) -> dict[str, Any] | Reply:
        """The JSON body of an inference request that names one of the ``served`` models, or
        the error reply (worded by ``body_errors``) for one that does not."""
        body = ex.json_body()
        model = None if body is None else body.get(self.model_field)
        if body is not None and model and model in served:
            return body
        problem = "not_object" if body is None else "unknown_model" if model else "no_model"
        status, code, message = self.body_errors[problem]
        return self._error(status, code, message.format(model=model))

    def _complete(
        self,
        prompt: str,
        body: dict[str, Any],
        limit: int | None,
        stops: Sequence[str],
        include_stop: bool,
    ) -> tuple[str, StopReason, int, int]:
        """Run the responder and apply limits; returns text, reason, input and output tokens."""
        text, reason = shape_output(self.responder(prompt, body), limit, stops, include_stop)
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
