"""A fake of IBM watsonx.ai over HTTPS, for the ``ibm-watsonx-ai`` SDK: projects, spaces, model
specs, text generation and chat, behind the token endpoints of ``watsonx_auth`` (IAM on IBM
Cloud, or Cloud Pak for Data).

What the ``ibm-watsonx-ai`` SDK (1.8.1) requires of a server, read from its source and checked
against this fake (every request goes through ``httpx``; what it asks to authenticate is in
``groundset.core.testing.fake_servers.watsonx_auth``):

* ``url``, ``auth_url`` and ``platform_url`` must all start with ``https://``, hence TLS here
  with a throw-away ``trustme`` CA; the client is told to trust it with
  ``Credentials(verify=server.ca_cert_path)``.
* Cloud or CPD mode is decided from the URL: a host that is not a known IBM Cloud host is CPD
  (Cloud Pak for Data, see ``watsonx_auth``) unless ``platform_url`` is given. So pass
  ``platform_url=server.url`` to stay in cloud mode.
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
* Global state: ``APIClient`` copies ``Credentials.verify`` into
  ``os.environ["WX_CLIENT_VERIFY_REQUESTS"]``, which later ``Credentials`` objects and SDK
  clients read. It outlives the server (whose CA file is deleted on ``stop``), so tests should
  restore it (e.g. ``monkeypatch.delenv(..., raising=False)`` before building the client).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from groundset.core.testing.fake_servers.completions import (
    Responder,
    as_int,
    as_stops,
    chat_completion,
    message_text,
    openai_limits,
)
from groundset.core.testing.fake_servers.http_server import Exchange, Reply
from groundset.core.testing.fake_servers.watsonx_auth import WatsonxAuthServer

__all__ = ["DEFAULT_WATSONX_MODELS", "FakeWatsonxServer"]

DEFAULT_WATSONX_MODELS: tuple[str, ...] = (
    "ibm/granite-3-3-8b-instruct",
    "meta-llama/llama-3-3-70b-instruct",
    "mistralai/mistral-small-3-1-24b-instruct-2503",
)
_RUNTIME = "fake watsonx.ai runtime"


class FakeWatsonxServer(WatsonxAuthServer):
    """HTTPS fake of IBM watsonx.ai, on IBM Cloud (IAM) or on Cloud Pak for Data (``cpd=True``).

    Serves what the ``ibm-watsonx-ai`` SDK calls on construction and inference (see the
    docstrings of this module and of ``watsonx_auth``): ``POST /identity/token``,
    ``GET /v2/projects/{id}``, ``GET /v2/spaces/{id}``, ``GET /ml/v1/foundation_model_specs``,
    ``GET /ml/v4/instances/{id}``, ``POST /ml/v1/text/generation`` and ``POST /ml/v1/text/chat``
    (``version`` query required).

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

    inference_paths: ClassVar[tuple[str, ...]] = ("/ml/v1/text/generation", "/ml/v1/text/chat")
    model_field: ClassVar[str] = "model_id"
    body_errors: ClassVar[dict[str, tuple[int, str, str]]] = {
        "not_object": (400, "json_type_error", "The request body must be a JSON object"),
        "no_model": (400, "json_validation_error", "Missing field 'model_id'"),
        "unknown_model": (404, "model_not_supported", "Model '{model}' is not supported"),
    }
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
        self.token_lifetime_s = token_lifetime_s
        self.project_ids = list(project_ids)
        self.space_ids = list(space_ids)
        self.model_ids = list(model_ids)

    def _route(self, ex: Exchange) -> Reply:
        if (reply := self._authenticate(ex)) is not None:
            return reply
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

    # ---- projects, spaces, models ----------------------------------------------------------

    def _project(self, project_id: str) -> Reply:
        if project_id not in self.project_ids:
            return self._error(
                404, "does_not_exist", f"Project with id '{project_id}' does not exist"
            )
        return Reply(
            200,
            {
                "metadata": {"guid": project_id, "url": f"/v2/projects/{project_id}"},
                "entity": {
                    "name": f"fake project {project_id}",
                    "storage": {"type": "assetfiles", "guid": f"storage-{project_id}"},
                    "compute": self._compute(),
                },
            },
        )

    def _space(self, space_id: str) -> Reply:
        if space_id not in self.space_ids:
            return self._error(404, "does_not_exist", f"Space with id '{space_id}' does not exist")
        return Reply(
            200,
            {
                "metadata": {"id": space_id, "url": f"/v2/spaces/{space_id}"},
                "entity": {
                    "name": f"fake space {space_id}",
                    "compute": self._compute(),
                    "stage": {"production": False},
                    "status": {"state": "active"},
                },
            },
        )

    def _compute(self) -> list[dict[str, str]]:
        """The runtime a project or space is bound to: the one instance this fake serves."""
        return [{"type": "machine_learning", "guid": self.instance_id, "name": _RUNTIME}]

    def _instance(self, instance_id: str) -> Reply:
        if instance_id != self.instance_id:
            return self._error(404, "instance_not_found", f"Instance '{instance_id}' not found")
        return Reply(
            200,
            {
                "id": instance_id,
                "name": _RUNTIME,
                "plan": {"id": "fake-plan", "name": "v2-standard"},
                "status": "active",
            },
        )

    def _model_specs(self, ex: Exchange) -> Reply:
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
        return Reply(
            200,
            {
                "total_count": len(resources),
                "limit": as_int(ex.query.get("limit")) or 100,
                "first": {"href": f"{self.url}{ex.path}"},
                "resources": resources,
            },
        )

    def _inference(self, ex: Exchange) -> Reply:
        if not ex.query.get("version"):
            return self._error(400, "missing_query_parameter", "Missing query parameter 'version'")
        body = self._inference_body(ex, self.model_ids)
        if isinstance(body, Reply):
            return body
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

    def _generation(self, body: dict[str, Any]) -> Reply:
        prompt = body.get("input")
        if not isinstance(prompt, str):
            return self._error(400, "json_validation_error", "Missing field 'input'")
        params = body.get("parameters") or {}
        limit = as_int(params.get("max_new_tokens"))
        text, reason, n_in, n_out = self._complete(
            prompt,
            body,
            20 if limit is None else limit,
            as_stops(params.get("stop_sequences")),
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
        return Reply(
            200,
            {
                "model_id": body["model_id"],
                "model_version": "1.0.0",
                "created_at": _iso_now(),
                "results": [result],
            },
        )

    def _chat(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "json_validation_error", "Missing field 'messages'")
        limit, stops = openai_limits(body)
        text, reason, n_in, n_out = self._complete(
            message_text(messages), body, 1024 if limit is None else limit, stops, False
        )
        model_id = body["model_id"]
        answer = chat_completion(model_id, text, reason, n_in, n_out)
        return Reply(
            200, answer | {"model_id": model_id, "model_version": "1.0.0", "created_at": _iso_now()}
        )


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
