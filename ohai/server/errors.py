"""HTTP errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Everything a handler refuses is an `APIError`; engine exceptions are mapped by `engine_error`, and the
app's exception handlers turn Starlette's own 404/405 and any unexpected exception into the same shape,
so a client never sees an HTML page or a traceback.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._core import ContextOverflowError, InvalidRequestError, OhaiError, OverloadedError

# Seconds a client is asked to wait after a 429 (the engine's queue was full).
RETRY_AFTER_SECONDS = 1

_TYPE_FOR_STATUS = {
    400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
    405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
    500: "server_error", 503: "server_error",
}


class APIError(Exception):
    """A request the server refuses or cannot serve, as the HTTP response a client gets."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_FOR_STATUS.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """A 400 invalid_request_error."""
    return APIError(400, message, param=param, code=code)


def engine_error(exc: BaseException, *, param: str | None = None, model_closed: bool = False) -> APIError:
    """The HTTP error for an exception raised by the engine (`ohai.Model`)."""
    if isinstance(exc, ContextOverflowError):
        return APIError(400, str(exc), param=param, code="context_length_exceeded")
    if isinstance(exc, InvalidRequestError):
        return APIError(400, str(exc), param=param)
    if isinstance(exc, OverloadedError):
        return APIError(429, f"{exc}", code="server_overloaded",
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if model_closed:
        return shutting_down()
    if isinstance(exc, OhaiError):
        return APIError(500, f"the engine failed: {exc}", code="engine_error")
    return APIError(500, "internal server error", code="internal_error")


def shutting_down() -> APIError:
    return APIError(503, "the server is shutting down", code="server_shutting_down")


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (unknown path: 404, wrong method: 405) in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = APIError(404, f"no such endpoint: {request.method} {request.url.path}", code="not_found")
    elif exc.status_code == 405:
        error = APIError(405, f"method {request.method} is not allowed on {request.url.path}",
                         code="method_not_allowed", headers=dict(exc.headers or {}))
    else:
        error = APIError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    return error.response()


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response()


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """A bug in the server: answered with a 500 that reveals nothing (Starlette re-raises the
    exception afterwards, and uvicorn logs it with its traceback)."""
    return APIError(500, "internal server error", code="internal_error").response()
