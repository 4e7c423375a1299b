"""API-key authentication: with a key configured, every request (except those to the open paths,
``/health``) must carry ``Authorization: Bearer KEY``; anything else gets a 401 in OpenAI's shape."""
from __future__ import annotations

import hmac
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import APIError

OPEN_PATHS = frozenset({"/health"})


def bearer_token(authorization: str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, as the bytes the client sent."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    # Starlette decodes header values as latin-1: encoding back gives the client's bytes.
    return token.strip().encode("latin-1")


class APIKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None = None, open_paths: Collection[str] = OPEN_PATHS) -> None:
        self.app = app
        self.key = api_key.encode("utf-8") if api_key else None
        self.open_paths = frozenset(open_paths)

    def allows(self, scope: Scope) -> bool:
        if self.key is None or scope["path"] in self.open_paths:
            return True
        token = bearer_token(Headers(scope=scope).get("authorization"))
        # compare_digest takes as long whatever matches, so the key cannot be guessed byte by byte.
        return token is not None and hmac.compare_digest(token, self.key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allows(scope):
            await self.app(scope, receive, send)
            return
        error = APIError(401, "Incorrect or missing API key: send the header 'Authorization: Bearer KEY'",
                         code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        await error.response()(scope, receive, send)
