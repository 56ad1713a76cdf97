"""The review page's web application (Starlette, served by uvicorn).

Starlette because it is small, typed and well kept, runs plain functions in a thread pool (the
store calls block), and its ASGI server, uvicorn, is the common production choice, so the page
needs no development server that warns against itself.

Security: the page is meant for the person who started it. The server binds to 127.0.0.1 unless
told otherwise, accepts only requests addressed to that host (a page elsewhere cannot reach it
through DNS rebinding), and every API call must carry the token ``groundset review`` printed,
in the ``X-Groundset-Token`` header (the page itself is opened with ``?token=``). Another site
open in the browser, or another local user, can neither read candidates nor post labels."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from groundset.core.errors import GroundsetError
from groundset.core.review.page import PAGE
from groundset.core.review.session import ReviewSession

__all__ = ["TOKEN_HEADER", "review_app"]

TOKEN_HEADER = "X-Groundset-Token"
_REFUSED = "missing or wrong token: open the address `groundset review` printed"

Handler = Callable[[Request], Response]


def review_app(session: ReviewSession, token: str, hosts: list[str]) -> Starlette:
    def authorised(request: Request) -> bool:
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
        return hmac.compare_digest(given.encode(), token.encode())

    def guarded(handler: Callable[[Request], dict[str, Any]]) -> Handler:
        def endpoint(request: Request) -> Response:
            if not authorised(request):
                return JSONResponse({"error": _REFUSED}, status_code=403)
            try:
                return JSONResponse(handler(request))
            except _BadRequest as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            except GroundsetError as error:  # not the candidate on the page, nothing to undo
                return JSONResponse({"error": str(error)}, status_code=409)

        return endpoint

    def body(request: Request) -> dict[str, Any]:
        import anyio.from_thread

        raw = anyio.from_thread.run(request.body)
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("candidate_id", ""), str):
            raise _BadRequest
        return data

    def page(request: Request) -> Response:
        if not authorised(request):
            return Response(_REFUSED, status_code=403, media_type="text/plain")
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    def label(request: Request) -> dict[str, Any]:
        data = body(request)
        value = data.get("value")
        if value not in (0, 1) or isinstance(value, bool):
            raise _BadRequest
        note = data.get("note")
        text = note if isinstance(note, str) else None
        return session.label(data["candidate_id"], int(value), text)

    POST = ["POST"]
    routes = [
        Route("/", page),
        Route("/api/next", guarded(lambda request: session.next())),
        Route("/api/progress", guarded(lambda request: session.progress())),
        Route("/api/label", guarded(label), methods=POST),
        Route("/api/skip", guarded(lambda r: session.skip(body(r)["candidate_id"])), methods=POST),
        Route("/api/undo", guarded(lambda request: session.undo()), methods=POST),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    return Starlette(routes=routes, middleware=middleware)


class _BadRequest(GroundsetError):
    def __init__(self) -> None:
        super().__init__('a label is {"candidate_id": ..., "value": 1 or 0, "note": optional}')
