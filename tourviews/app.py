"""The ASGI application: the lean beacon endpoint in front, FastAPI for the rest."""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from tourviews import __version__
from tourviews.api import (
    OPERATOR_ERRORS,
    Admin,
    install_error_handlers,
    operator,
    owner,
    public,
)
from tourviews.ingest.http import scripts
from tourviews.ingest.http.beacon import OPENAPI as BEACON_OPENAPI
from tourviews.ingest.http.beacon import Message, Receive, Scope, Send, declared_length
from tourviews.ingest.http.forget import OPENAPI as WITHDRAWAL_OPENAPI
from tourviews.metrics import CONTENT_TYPE, Metrics
from tourviews.service import Service
from tourviews.settings import Settings
from tourviews.storage.clock import Clock, SystemClock

BEACON_PATH = "/v1/beacon"
WITHDRAWAL_PATH = "/v1/visitor/forget"
API_MAX_BYTES = 65_536  # the largest API body, a tour with its origins, is far smaller
TOO_LARGE = f"body must be at most {API_MAX_BYTES} bytes"
# The page talks to this service only; its token lives in sessionStorage.
DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


class TourviewsApp:
    """Routes ``/v1/beacon`` straight to the beacon endpoint, everything else to FastAPI."""

    def __init__(self, service: Service, api: FastAPI) -> None:
        self.service = service
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
        elif scope["path"] == BEACON_PATH:
            await self.service.beacon(scope, receive, send)
        elif scope["path"] == WITHDRAWAL_PATH:
            await self.service.withdrawal(scope, receive, send)
        elif _declared_length(scope) > API_MAX_BYTES:
            await JSONResponse({"error": TOO_LARGE, "field": None}, 413)(scope, receive, send)
        else:
            await self.api(scope, _bounded(receive), send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return declared_length(value)
    return 0


def _bounded(receive: Receive) -> Receive:
    """``receive`` that refuses (413) a body growing past the limit, so none is buffered."""
    size = 0

    async def bounded() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > API_MAX_BYTES:
            raise HTTPException(413, TOO_LARGE)
        return message

    return bounded


def create_app(
    settings: Settings, clock: Clock | None = None, service: Service | None = None
) -> TourviewsApp:
    service = service or Service(settings, clock or SystemClock())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    api = FastAPI(title="tourviews", version=__version__, lifespan=lifespan)
    api.state.context = service.context
    install_error_handlers(api)
    api.include_router(owner)
    api.include_router(public)
    api.include_router(operator)

    metrics = Metrics(service.beacon, service.committer, service.started, service.mode.figures)
    service.mode.store.on_commit = metrics.committed  # in Redis mode, the drain commits

    @api.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics: beacons by outcome, commits, queue depth, uptime",
        description="Needs the admin token (Prometheus sends it as a bearer token): the "
        "outcome counters would tell a sender how its beacons were classified.",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}}, **OPERATOR_ERRORS},
    )
    def prometheus(_: Admin) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    for name, served in scripts.SCRIPTS.items():
        serve_script(api, name, served)

    dashboard_page = importlib.resources.files("tourviews.analytics").joinpath(
        "static/dashboard.html"
    )
    page = dashboard_page.read_bytes()

    @api.get("/dashboard", tags=["service"], summary="The owners' dashboard page",
             response_class=HTMLResponse)  # fmt: skip
    def dashboard() -> Response:
        return HTMLResponse(page, headers=DASHBOARD_HEADERS)

    @api.get("/", tags=["service"], summary="Redirects to the dashboard", status_code=307,
             response_class=RedirectResponse)  # fmt: skip
    def home() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)

    @api.get(
        "/healthz",
        tags=["service"],
        summary="200 while beacons can be accepted",
        responses={
            503: {
                "description": "Beacons cannot be accepted now",
                "content": {"application/json": {"schema": {"type": "object"}}},
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            }
        },
    )
    async def healthz() -> JSONResponse:
        # "instance": the nonce in server.json, by which commands know this server.
        if await service.ready():
            return JSONResponse({"status": "ok", "instance": service.instance})
        return JSONResponse({"status": "unavailable", "instance": service.instance}, 503,
                            headers={"Retry-After": "1"})  # fmt: skip

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = _answers_as_served(
                get_openapi(title=api.title, version=api.version, routes=api.routes)
            )
            schema["paths"] = {
                BEACON_PATH: BEACON_OPENAPI,
                WITHDRAWAL_PATH: WITHDRAWAL_OPENAPI,
                **schema["paths"],
            }
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return TourviewsApp(service, api)


def _answers_as_served(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 on every route with parameters; ours answer 400 instead."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def serve_script(api: FastAPI, name: str, served: scripts.Script) -> None:
    @api.get(
        f"/{name}",
        tags=["service"],
        summary=scripts.SUMMARIES[name],
        operation_id=name.replace(".", "_"),
        response_class=Response,
        responses={
            200: {"content": {scripts.CONTENT_TYPE: {}}},
            304: {"description": "Not modified (If-None-Match carried the current ETag)"},
        },
    )
    def serve(request: Request) -> Response:
        headers = {"Cache-Control": scripts.CACHE_CONTROL, "ETag": served.etag}
        if request.headers.get("if-none-match") == served.etag:
            return Response(status_code=304, headers=headers)
        return Response(served.body, media_type=scripts.CONTENT_TYPE, headers=headers)
