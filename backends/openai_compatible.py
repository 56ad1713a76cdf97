"""The ``openai`` backend: any server speaking the OpenAI ``/v1/completions`` and
``/v1/chat/completions`` API (vLLM, TGI, Ollama, llama.cpp server, LiteLLM, OpenAI itself),
through httpx with a connection pool as wide as the concurrency.

Sampling knobs outside the OpenAI API (``top_k``, ``min_new_tokens``, ``repetition_penalty``)
are sent only when set, under the names vLLM and llama.cpp read; OpenAI itself rejects them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from groundset.core import BackendError, ConfigError, Generation, GenerationParams, Prompt, hookimpl
from groundset.core.remote import (
    RemoteBackend,
    RemoteOptions,
    RetryableError,
    scrub,
    status_error,
    tls_verify,
)

__all__ = ["OpenAIBackend", "OpenAIOptions", "openai_body"]

ENDPOINTS = ("auto", "chat", "completions")


@dataclass(frozen=True)
class OpenAIOptions(RemoteOptions):
    model: str = ""
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    #: ``auto``: chat for prompts with chat messages, completions otherwise
    endpoint: str = "auto"
    #: TLS: true, false, or a CA bundle path for a server with a private certificate
    verify: bool | str = True
    #: check at start that the server serves ``model`` (``GET /models``), where it lists models
    check_model: bool = True


class OpenAIBackend(RemoteBackend):
    """Completions from an OpenAI-compatible server, many requests in flight."""

    backend_id = "openai"
    description = "Any OpenAI-compatible server: vLLM, TGI, Ollama, llama.cpp, OpenAI"
    Options = OpenAIOptions
    secret_options = ("api_key",)

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        super().__init__(options)
        if not self.options.model:
            raise ConfigError("model is required: the model id the server serves")
        if self.options.endpoint not in ENDPOINTS:
            raise ConfigError(
                f"endpoint must be one of {', '.join(ENDPOINTS)}, got {self.options.endpoint!r}"
            )
        self._client: Any = None

    @property
    def model_id(self) -> str:
        return self.options.model

    def connect(self) -> None:
        import httpx

        o = self.options
        headers = {"Authorization": f"Bearer {o.api_key}"} if o.api_key else {}
        self._client = httpx.Client(
            base_url=o.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(o.timeout_s, connect=min(10.0, o.timeout_s)),
            limits=httpx.Limits(
                max_connections=o.concurrency, max_keepalive_connections=o.concurrency
            ),
            verify=tls_verify(o.verify),
        )
        if o.check_model:
            self._check_model()

    def _check_model(self) -> None:
        import httpx

        url = f"{self.options.base_url.rstrip('/')}/models"
        try:
            response = self._client.get("/models")
        except httpx.HTTPError as error:
            raise BackendError(
                f"openai: cannot reach {url}: {scrub(str(error), self.secrets())}"
                " (is the server running? set backends.openai.base_url)"
            ) from None
        if response.status_code in (401, 403):
            raise BackendError(
                f"openai: {url} refused the API key (HTTP {response.status_code}):"
                ' set backends.openai.api_key, e.g. "$env:OPENAI_API_KEY"'
            )
        if response.status_code != 200:
            return  # some servers list no models; the first request will tell
        served = [m.get("id") for m in _json(response).get("data", []) if isinstance(m, dict)]
        if served and self.options.model not in served:
            raise BackendError(
                f"openai: {url} does not serve model {self.options.model!r}"
                f" (it serves: {', '.join(map(str, served[:10]))})"
            )

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def complete(self, prompt: Prompt, params: GenerationParams) -> Generation:
        import httpx

        chat = self.options.endpoint == "chat" or (
            self.options.endpoint == "auto" and prompt.messages is not None
        )
        path = "/chat/completions" if chat else "/completions"
        body = openai_body(self.options.model, prompt, params, chat)
        try:
            response = self._client.post(path, json=body)
        except httpx.TimeoutException as error:
            raise RetryableError(f"timed out: {type(error).__name__}") from None
        except httpx.TransportError as error:
            raise RetryableError(f"connection failed: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise status_error(
                response.status_code, _error_message(response), response.headers.get("retry-after")
            )
        data = _json(response)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if chat else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"unexpected response: {str(data)[:200]}") from None
        usage = data.get("usage") or {}
        return Generation(
            text=text or "",
            model_id=str(data.get("model") or self.options.model),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            stop_reason=choice.get("finish_reason"),
        )


def openai_body(model: str, prompt: Prompt, params: GenerationParams, chat: bool) -> dict:
    """The request body for one prompt; temperature 0 (or ``do_sample`` false) is greedy."""
    sample = params.do_sample and params.temperature > 0
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature if sample else 0.0,
        "top_p": params.top_p if sample else 1.0,
        "seed": params.seed,
        "n": 1,
    }
    if chat:
        body["messages"] = list(prompt.messages or ({"role": "user", "content": prompt.text},))
    else:
        body["prompt"] = prompt.text
    if params.stop:
        body["stop"] = list(params.stop)
    extras: dict[str, Callable[[], Any]] = {
        "top_k": lambda: params.top_k if sample and params.top_k else None,
        "min_tokens": lambda: params.min_new_tokens or None,
        "repetition_penalty": lambda: (
            params.repetition_penalty if params.repetition_penalty not in (None, 1.0) else None
        ),
    }
    for name, value in extras.items():
        if (resolved := value()) is not None:
            body[name] = resolved
    return body


def _json(response: Any) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(response: Any) -> str:
    error = _json(response).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    return response.text[:300]


@hookimpl
def register_backends(register: Callable[[type], type]) -> None:
    """Register the ``openai`` backend."""
    register(OpenAIBackend)
