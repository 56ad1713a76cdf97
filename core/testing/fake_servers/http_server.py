"""The HTTP side of the fake servers: a threaded server that never waits for its handlers on
close, a handler that parses each request into an :class:`Exchange` (TLS handshakes run in the
connection's own thread) and writes a :class:`Reply` with an exact ``Content-Length`` over
HTTP/1.1 keep-alive. What to answer is the fake server's business
(:meth:`FakeServer._serve <groundset.core.testing.fake_servers.server.FakeServer>`)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import ssl
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from groundset.core.testing.fake_servers.server import FakeServer

__all__ = ["Exchange", "Handler", "Reply", "ThreadedHTTPServer"]

_log = logging.getLogger(__name__)


@dataclass
class Reply:
    """A response: ``body`` is sent as JSON, text or bytes, with ``headers`` added."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Exchange:
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


class ThreadedHTTPServer(ThreadingHTTPServer):
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
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall
        # for seconds on machines without a resolver; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, disconnect faults, TLS probes) are normal here.
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "groundset-fake/1.0"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK, adding about 40 ms to every response.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this long, so threads do not pile up.
    timeout = 120
    server: ThreadedHTTPServer

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
            chunks: list[bytes] = []
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
        exchange = Exchange(self.command, parts.path, query, headers, body, body_error)
        reply = self.server.fake._serve(exchange, self)
        if reply is None:  # disconnect fault: the connection is already gone
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: Reply) -> None:
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
