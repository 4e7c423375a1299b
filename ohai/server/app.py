"""The ASGI application: routes, middleware (access log and metrics outermost, then the API key),
error handlers in OpenAI's shape, and a lifespan that closes the model when the server stops."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..model import Model
from ..openai_format import default_model_name
from .access_log import AccessLogMiddleware
from .auth import APIKeyMiddleware
from .errors import APIError, api_error_handler, http_exception_handler, internal_error_handler
from .metrics import Metrics
from .routes import Endpoints
from .validation import DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True)
class ServerSettings:
    model_name: str | None = None  # the name clients use and responses carry; default: the file's name
    api_key: str | None = None  # required as "Authorization: Bearer KEY" on everything but /health
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    close_model_on_shutdown: bool = True


def create_app(model: Model, settings: ServerSettings | None = None) -> Starlette:
    """An OpenAI-compatible ASGI app serving `model` (run it with uvicorn, or `ohai serve`)."""
    settings = settings or ServerSettings()
    model_name = settings.model_name or default_model_name(model)
    metrics = Metrics(model, model_name)
    endpoints = Endpoints(model, model_name=model_name, max_body_bytes=settings.max_body_bytes, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # uvicorn gets here once in-flight requests have finished or been cancelled: closing the
        # model cancels whatever the engine still holds and stops its worker.
        if settings.close_model_on_shutdown:
            await anyio.to_thread.run_sync(model.close)

    app = Starlette(
        routes=endpoints.routes(),
        middleware=[
            Middleware(AccessLogMiddleware, metrics=metrics),
            Middleware(APIKeyMiddleware, api_key=settings.api_key),
        ],
        exception_handlers={
            APIError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.model_name = model_name
    app.state.metrics = metrics
    app.state.cancel_requests = endpoints.cancel_requests
    return app
