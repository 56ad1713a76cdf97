"""Authentication on the fake watsonx.ai server: IAM tokens on IBM Cloud, Cloud Pak for Data's
platform tokens with ``cpd=True``, and the bearer check every other route goes through.

What the ``ibm-watsonx-ai`` SDK (1.8.1) asks of a server to authenticate, read from its source
and checked against this fake (the rest of what it asks is in
``groundset.core.testing.fake_servers.watsonx``):

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
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, ClassVar

from groundset.core.testing.fake_servers.http_server import Exchange, Reply
from groundset.core.testing.fake_servers.tls import TLSFakeServer

__all__ = ["WatsonxAuthServer", "make_jwt"]

_IAM_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"


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


class WatsonxAuthServer(TLSFakeServer):
    """The token endpoints and the bearer check of :class:`FakeWatsonxServer`; the routes
    behind them and the parameters are documented there.

    Tokens are unsigned JWTs with ``exp = now + token_lifetime_s``, tracked by the server; a
    missing, unknown, expired or revoked token gets 401 in the watsonx error shape.
    """

    token_path: ClassVar[str] = "/identity/token"
    cpd_token_path: ClassVar[str] = "/icp4d-api/v1/authorize"
    cpd_identity_path: ClassVar[str] = "/idprovider/v1/auth/identitytoken"
    cpd_validate_path: ClassVar[str] = "/v1/preauth/validateAuth"
    cpd_version_path: ClassVar[str] = "/ml/wml_services/v2/version"

    # Set by FakeWatsonxServer, which documents them.
    api_key: str | None
    bearer_token: str | None
    cpd: bool
    username: str
    password: str | None
    cpd_version: str
    token_lifetime_s: float

    def __init__(self, **server: Any) -> None:
        super().__init__(**server)
        self._tokens: dict[str, float] = {}  # issued token -> its expiry (epoch seconds)
        self._static_revoked = False

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

    def _token_error(self, ex: Exchange) -> Reply | None:
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

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(
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

    def _is_token_request(self, ex: Exchange) -> bool:
        if self.cpd:
            return ex.path in (self.cpd_token_path, self.cpd_identity_path)
        return ex.path == self.token_path

    def _authenticate(self, ex: Exchange) -> Reply | None:
        """The reply of a token route, or the refusal of a request without a valid token;
        ``None`` lets the request through to the other routes."""
        if self.cpd:
            if (reply := self._cpd_route(ex)) is not None:
                return reply
        elif ex.path == self.token_path:
            return self._iam_token(ex)
        return self._token_error(ex)

    def _iam_token(self, ex: Exchange) -> Reply:
        form = ex.body if isinstance(ex.body, dict) else {}
        if ex.method != "POST":
            return Reply(405, {"errorCode": "BXNIM0100E", "errorMessage": "Method not allowed"})
        if form.get("grant_type") != _IAM_GRANT_TYPE:
            return Reply(
                400,
                {
                    "errorCode": "BXNIM0109E",
                    "errorMessage": "Property missing or empty. Operation not supported: "
                    f"grant_type {form.get('grant_type')!r}",
                },
            )
        if self.api_key is None or form.get("apikey") != self.api_key:
            return Reply(
                400,
                {
                    "errorCode": "BXNIM0415E",
                    "errorMessage": "Provided API key could not be found.",
                },
            )
        token, exp = self._mint(self.token_lifetime_s)
        return Reply(
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

    def _cpd_route(self, ex: Exchange) -> Reply | None:
        """The CPD-only, unauthenticated routes; ``None`` for the routes shared with cloud."""
        if ex.path == self.cpd_version_path:
            if ex.method != "GET":
                return self._error(405, "method_not_allowed", "Method not allowed")
            return Reply(200, {"version": self.cpd_version, "build": "fake"})
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

    def _cpd_authorize(self, ex: Exchange) -> Reply:
        """``POST /icp4d-api/v1/authorize``: the platform token from user name and secret."""
        if ex.method != "POST":
            return Reply(405, {"_messageCode_": "405", "message": "Method not allowed"})
        body = ex.json_body()
        if body is None or not body.get("username"):
            return Reply(
                400,
                {"_messageCode_": "400", "message": "Missing username and password or api_key"},
            )
        if not self._cpd_user_ok(body.get("username"), body.get("password"), body.get("api_key")):
            return Reply(
                401,
                {"_messageCode_": "401", "message": "Invalid username or password"},
            )
        token, _ = self._mint(self.token_lifetime_s)
        return Reply(200, {"_messageCode_": "200", "message": "Success", "token": token})

    def _cpd_identity_token(self, ex: Exchange) -> Reply:
        """``POST /idprovider/v1/auth/identitytoken``: an IAM token, for IAM-integrated CPD."""
        form = ex.body if isinstance(ex.body, dict) else {}
        if ex.method != "POST" or form.get("grant_type") != "password":
            return Reply(400, {"error": "invalid_request", "error_description": "bad grant"})
        if not self._cpd_user_ok(form.get("username"), form.get("password"), None):
            return Reply(
                401,
                {"error": "invalid_grant", "error_description": "Invalid username or password"},
            )
        token, _ = self._mint(self.token_lifetime_s)
        return Reply(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.token_lifetime_s),
                "scope": "openid",
            },
        )

    def _cpd_validate(self, ex: Exchange) -> Reply:
        """``GET /v1/preauth/validateAuth``: trade an IAM token for a platform token."""
        iam_token = ex.headers.get("iam-token", "")
        with self._lock:
            exp = self._tokens.pop(iam_token, None)
        if ex.headers.get("username") != self.username or exp is None or exp <= time.time():
            return Reply(401, {"_messageCode_": "401", "message": "Invalid iam-token"})
        token, _ = self._mint(self.token_lifetime_s)
        return Reply(200, {"username": self.username, "role": "Admin", "accessToken": token})
