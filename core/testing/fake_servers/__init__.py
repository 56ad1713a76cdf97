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

The modules, by job: ``completions`` (the responder, limits and response bodies), ``http_server``
(the HTTP plumbing), ``server`` (:class:`FakeServer`, faults, the request log), ``tls``,
``openai_compatible`` (:class:`FakeOpenAIServer`), ``watsonx`` (:class:`FakeWatsonxServer`, and
what the ``ibm-watsonx-ai`` SDK requires of a server) and ``watsonx_auth`` (its IAM and Cloud Pak
for Data tokens).

Typical use::

    with FakeOpenAIServer(models=("tiny",), api_key="k", latency_s=0.5) as server:
        ...  # point a client at server.base_url; server.requests holds what it sent

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

from groundset.core.testing.fake_servers.completions import (
    Responder,
    count_tokens,
    default_responder,
)
from groundset.core.testing.fake_servers.openai_compatible import FakeOpenAIServer
from groundset.core.testing.fake_servers.server import FakeServer, Fault, RecordedRequest
from groundset.core.testing.fake_servers.watsonx import DEFAULT_WATSONX_MODELS, FakeWatsonxServer
from groundset.core.testing.fake_servers.watsonx_auth import make_jwt

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
