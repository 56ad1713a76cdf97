"""A fake of the OpenAI-compatible API (OpenAI, vLLM, llama.cpp's server...) over plain HTTP:
completions, chat completions and the model list, with OpenAI's error shape."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from groundset.core.testing.fake_servers.completions import (
    Responder,
    chat_completion,
    finish_reason,
    message_text,
    openai_body,
    openai_limits,
)
from groundset.core.testing.fake_servers.http_server import Exchange, Reply
from groundset.core.testing.fake_servers.server import FakeServer

__all__ = ["FakeOpenAIServer"]


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
    body_errors: ClassVar[dict[str, tuple[int, str, str]]] = {
        "not_object": (400, "invalid_body", "The request body must be a JSON object."),
        "no_model": (400, "missing_model", "you must provide a model parameter"),
        "unknown_model": (404, "model_not_found", "The model `{model}` does not exist."),
    }

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

    def _error(self, status: int, code: str, message: str) -> Reply:
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        return Reply(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )

    def _route(self, ex: Exchange) -> Reply:
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
            return Reply(200, {"object": "list", "data": data})
        if ex.method == "POST" and ex.path in self.inference_paths:
            body = self._inference_body(ex, self.models)
            if isinstance(body, Reply):
                return body
            if body.get("stream"):
                return self._error(400, "unsupported", "streaming is not supported by the fake")
            if ex.path == "/v1/completions":
                return self._completions(body)
            return self._chat(body)
        return self._error(404, "not_found", f"Unknown endpoint {ex.method} {ex.path}")

    def _completions(self, body: dict[str, Any]) -> Reply:
        prompts = body.get("prompt")
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            return self._error(400, "invalid_prompt", "prompt must be a string or strings")
        limit, stops = openai_limits(body)
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for index, prompt in enumerate(prompts):
            text, reason, n_in, n_out = self._complete(prompt, body, limit, stops, False)
            choices.append(
                {
                    "index": index,
                    "text": text,
                    "logprobs": None,
                    "finish_reason": finish_reason(reason),
                }
            )
            prompt_tokens += n_in
            completion_tokens += n_out
        return Reply(
            200,
            openai_body(
                "text_completion", body["model"], choices, prompt_tokens, completion_tokens
            ),
        )

    def _chat(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "invalid_messages", "messages must be a non-empty list")
        limit, stops = openai_limits(body)
        text, reason, n_in, n_out = self._complete(
            message_text(messages), body, limit, stops, False
        )
        return Reply(200, chat_completion(body["model"], text, reason, n_in, n_out, logprobs=None))
