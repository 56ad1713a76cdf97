"""The ``watsonx`` backend: IBM watsonx.ai foundation models through the official
``ibm-watsonx-ai`` SDK (``ModelInference``), text generation or chat, any ``model_id``.

groundset schedules the requests itself (one per prompt, ``concurrency`` in flight) and owns the
retries: the SDK's retry layers are switched off (``max_retries=0`` and an httpx client of our
own without a retrying transport), because the SDK neither honours ``Retry-After`` nor keeps the
other prompts' results when one prompt of a list fails.

Credentials come from the options, which may be ``"$env:NAME"`` references, or else from the
environment variables the watsonx tools share (``WATSONX_APIKEY``, ``WATSONX_URL``, ...)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from groundset.core import BackendError, ConfigError, Generation, GenerationParams, Prompt, hookimpl
from groundset.core.remote import (
    FatalBackendError,
    RemoteBackend,
    RemoteOptions,
    RetryableError,
    scrub,
    status_error,
    tls_verify,
)

__all__ = ["WatsonxBackend", "WatsonxOptions", "chat_params", "generation_params"]

DEFAULT_URL = "https://us-south.ml.cloud.ibm.com"
MODES = ("auto", "generate", "chat")
#: environment variables the SDK sets for the whole process while connecting
_SDK_EXPORTS = ("WX_CLIENT_VERIFY_REQUESTS", "DEPLOYMENT_PLATFORM", "DEPLOYMENT_PRIVATE")

#: option -> environment variable read when the option is not set
ENVIRONMENT = {
    "url": "WATSONX_URL",
    "api_key": "WATSONX_APIKEY",
    "token": "WATSONX_TOKEN",
    "project_id": "WATSONX_PROJECT_ID",
    "space_id": "WATSONX_SPACE_ID",
    "username": "WATSONX_USERNAME",
    "password": "WATSONX_PASSWORD",
    "instance_id": "WATSONX_INSTANCE_ID",
    "version": "WATSONX_VERSION",
}


@dataclass(frozen=True)
class WatsonxOptions(RemoteOptions):
    model_id: str = "ibm/granite-3-3-8b-instruct"
    #: the region's endpoint (IBM Cloud) or the cluster's URL (Cloud Pak for Data)
    url: str | None = None
    api_key: str | None = None
    #: a bearer token instead of an API key; it is not refreshed, so it must outlive the run
    token: str | None = None
    project_id: str | None = None
    space_id: str | None = None
    #: Cloud Pak for Data: user name (with ``api_key`` or ``password``), instance and version
    username: str | None = None
    password: str | None = None
    instance_id: str | None = None
    version: str | None = None
    #: the IAM token endpoint and platform URL, for private endpoints (the SDK derives both)
    auth_url: str | None = None
    platform_url: str | None = None
    #: Cloud Pak for Data with IAM integration: the foundational services (bedrock) URL
    bedrock_url: str | None = None
    verify: bool | str = True
    #: ``generate`` (text generation, as the seed), ``chat``, or ``auto``: chat for prompts with
    #: chat messages
    mode: str = "auto"
    #: ask the service at start whether it offers ``model_id`` in this region
    validate_model: bool = True
    concurrency: int = 8
    #: the service's default limit on IBM Cloud is 8 requests a second per project
    max_requests_per_second: float | None = 8.0


class WatsonxBackend(RemoteBackend):
    """watsonx.ai text generation and chat through the ``ibm-watsonx-ai`` SDK."""

    backend_id = "watsonx"
    description = "IBM watsonx.ai through the ibm-watsonx-ai SDK (any model_id)"
    Options = WatsonxOptions
    secret_options = ("api_key", "token", "password")
    operational_options = (*RemoteBackend.operational_options, "verify", "validate_model")

    def __init__(self, options: WatsonxOptions | None = None) -> None:
        super().__init__(options)
        if self.options.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.options.mode!r}")
        if not self.options.model_id:
            raise ConfigError('model_id is required, e.g. "ibm/granite-3-3-8b-instruct"')
        self._model: Any = None
        self._http: Any = None
        self._client: Any = None
        self._settings: dict[str, Any] = {}

    @property
    def model_id(self) -> str:
        return self.options.model_id

    def secrets(self) -> list[str]:
        return [str(v) for k, v in self._resolved().items() if k in self.secret_options and v]

    def _resolved(self) -> dict[str, Any]:
        """Each credential option, or the environment variable standing in for it."""
        if not self._settings:
            values = {name: getattr(self.options, name) for name in ENVIRONMENT}
            for name, variable in ENVIRONMENT.items():
                if values[name] in (None, "") and os.environ.get(variable):
                    values[name] = os.environ[variable]
            values["url"] = values["url"] or DEFAULT_URL
            self._settings = values
        return self._settings

    def connect(self) -> None:
        values = self._resolved()
        if not (values["api_key"] or values["token"] or values["password"]):
            raise ConfigError(
                "watsonx needs credentials: set backends.watsonx.api_key (e.g."
                ' "$env:WATSONX_APIKEY") or token, or the environment variable WATSONX_APIKEY'
            )
        if not (values["project_id"] or values["space_id"]):
            raise ConfigError(
                "watsonx needs a project or a deployment space: set backends.watsonx.project_id"
                " or space_id, or the environment variable WATSONX_PROJECT_ID"
            )
        _quiet_sdk_logs()
        try:
            self._open(values)
        except (ConfigError, BackendError):
            raise
        except Exception as error:
            raise BackendError(f"watsonx: {self._describe(error)}") from None

    def _open(self, values: dict[str, Any]) -> None:
        import httpx
        from ibm_watsonx_ai import APIClient, Credentials
        from ibm_watsonx_ai.foundation_models import ModelInference

        o = self.options
        saved = {name: os.environ.get(name) for name in _SDK_EXPORTS}
        try:
            credentials = Credentials(
                url=values["url"],
                api_key=values["api_key"],
                token=values["token"],
                username=values["username"],
                password=values["password"],
                instance_id=values["instance_id"],
                version=values["version"],
                auth_url=o.auth_url,
                platform_url=o.platform_url,
                bedrock_url=o.bedrock_url,
                verify=o.verify,
            )
            # our own client: no retrying transport under our retries, a pool as wide as the
            # concurrency, and a bounded read timeout instead of the SDK's 30 minutes
            self._http = httpx.Client(
                verify=tls_verify(o.verify),
                timeout=httpx.Timeout(o.timeout_s, connect=min(10.0, o.timeout_s)),
                limits=httpx.Limits(
                    max_connections=o.concurrency + 2, max_keepalive_connections=o.concurrency
                ),
            )
            self._client = APIClient(
                credentials=credentials,
                project_id=values["project_id"],
                space_id=None if values["project_id"] else values["space_id"],
                httpx_client=self._http,
            )
            self._model = ModelInference(
                model_id=o.model_id,
                api_client=self._client,
                max_retries=0,
                validate=o.validate_model,
            )
        finally:
            # the SDK exports settings to the whole process; take them back
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def disconnect(self) -> None:
        if self._http is not None:
            self._http.close()
        self._model = self._client = self._http = None

    def refresh_credentials(self) -> bool:
        """A new IAM token after a 401, where an API key can get one (a bearer token cannot)."""
        auth = getattr(self._client, "_auth_method", None)
        if auth is None or not hasattr(auth, "_refreshing_timedelta"):
            return False
        with auth._lock:
            auth._token = None  # the next get_token() generates a fresh one
        return True

    def complete(self, prompt: Prompt, params: GenerationParams) -> Generation:
        chat = self.options.mode == "chat" or (
            self.options.mode == "auto" and prompt.messages is not None
        )
        try:
            if chat:
                messages = list(prompt.messages or ({"role": "user", "content": prompt.text},))
                response = self._model.chat(messages=messages, params=chat_params(params))
            else:
                response = self._model.generate(
                    prompt=prompt.text, params=generation_params(params)
                )
        except Exception as error:
            raise self._classify(error) from None
        return (
            _chat_generation(response, self.model_id)
            if chat
            else _text_generation(response, self.model_id)
        )

    def _classify(self, error: Exception) -> Exception:
        import httpx

        if isinstance(error, httpx.TimeoutException):
            return RetryableError(f"timed out: {type(error).__name__}")
        if isinstance(error, httpx.TransportError):
            return RetryableError(f"connection failed: {type(error).__name__}: {error}")
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and response is not None:
            retry_after = response.headers.get("retry-after")
            failure = status_error(status, _service_message(response), retry_after)
            if isinstance(failure, FatalBackendError):
                return FatalBackendError(f"watsonx ({self.options.model_id}): {failure}")
            return failure
        return RuntimeError(self._describe(error))

    def _describe(self, error: BaseException) -> str:
        reason = getattr(error, "reason", None)
        if type(error).__name__ == "CannotAutogenerateBedrockUrl" and reason:
            # a failed Cloud Pak for Data login hides the service's answer in ``reason``
            error = reason[-1] if isinstance(reason, list) else reason
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        text = lines[0] if lines else type(error).__name__
        return scrub(text, self.secrets())[:300]


def generation_params(params: GenerationParams) -> dict[str, Any]:
    """groundset's settings as the text generation API's parameters."""
    sample = params.do_sample and params.temperature > 0
    body: dict[str, Any] = {
        "decoding_method": "sample" if sample else "greedy",
        "max_new_tokens": params.max_new_tokens,
        "min_new_tokens": params.min_new_tokens,
        "random_seed": params.seed,
    }
    if sample:
        body.update(temperature=params.temperature, top_p=params.top_p)
        if params.top_k:
            body["top_k"] = params.top_k
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    if params.repetition_penalty not in (None, 1.0):
        body["repetition_penalty"] = params.repetition_penalty
    return body


def chat_params(params: GenerationParams) -> dict[str, Any]:
    """groundset's settings as the chat API's (OpenAI-like) parameters."""
    sample = params.do_sample and params.temperature > 0
    body: dict[str, Any] = {
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature if sample else 0.0,
        "top_p": params.top_p if sample else 1.0,
        "seed": params.seed,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    return body


def _text_generation(response: Any, model_id: str) -> Generation:
    try:
        result = response["results"][0]
    except (KeyError, IndexError, TypeError):
        raise RuntimeError(f"unexpected response: {str(response)[:200]}") from None
    return Generation(
        text=result.get("generated_text") or "",
        model_id=str(response.get("model_id") or model_id),
        input_tokens=result.get("input_token_count"),
        output_tokens=result.get("generated_token_count"),
        stop_reason=result.get("stop_reason"),
    )


def _chat_generation(response: Any, model_id: str) -> Generation:
    try:
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise RuntimeError(f"unexpected response: {str(response)[:200]}") from None
    usage = response.get("usage") or {}
    return Generation(
        text=text,
        model_id=str(response.get("model_id") or response.get("model") or model_id),
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        stop_reason=choice.get("finish_reason"),
    )


def _service_message(response: Any) -> str:
    try:
        data = response.json()
    except Exception:
        return str(getattr(response, "text", ""))[:300]
    errors = data.get("errors") if isinstance(data, dict) else None
    if errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or errors[0].get("code"))[:300]
    return str(data)[:300]


@hookimpl
def register_backends(register: Callable[[type], type]) -> None:
    """Register the ``watsonx`` backend."""
    register(WatsonxBackend)


def _quiet_sdk_logs() -> None:
    """Keep the SDK's own log records off the terminal. It logs a warning with the whole
    response body for every failed request (a server may echo a key back in an error), and
    groundset already handles those failures (retries) and reports them (the prompt's error,
    with every secret scrubbed). Child loggers propagate here and stop."""
    sdk = logging.getLogger("ibm_watsonx_ai")
    if not any(isinstance(h, logging.NullHandler) for h in sdk.handlers):
        sdk.addHandler(logging.NullHandler())
    sdk.propagate = False
