"""One access-log line per HTTP request (client, method, path, status, duration), and the request
metrics, measured around the whole response (a stream counts until its last event)."""
from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

log = logging.getLogger("ohai.server.access")

# A client that went away before its response was complete (nginx's convention).
CLIENT_CLOSED = 499


def _printable(text: str) -> str:
    """`text` with control characters and non-ASCII escaped: a path is the client's, and must not
    be able to forge log lines."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(c.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        complete = False
        disconnected = False

        async def watched_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and not complete:
                disconnected = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        if self.metrics is not None:
            self.metrics.http_in_progress.inc()
        try:
            await self.app(scope, watched_receive, watched_send)
        except BaseException:
            if status == 0:
                status = 500
            raise
        finally:
            seconds = time.perf_counter() - start
            if status == 0:  # no response started: the client left first, or the app failed
                status = CLIENT_CLOSED if disconnected else 500
            self._record(scope, status, seconds, disconnected and not complete)

    def _record(self, scope: Scope, status: int, seconds: float, disconnected: bool) -> None:
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        if self.metrics is not None:
            self.metrics.http_in_progress.dec()
            self.metrics.observe(method, path, status, seconds, disconnected=disconnected)
        client = scope.get("client")
        who = "-"
        if client:
            host = str(client[0])
            who = f"[{host}]:{client[1]}" if ":" in host else f"{host}:{client[1]}"
        note = " (client disconnected)" if disconnected else ""
        log.info('%s "%s %s" %d %.3fs%s', who, method, _printable(path), status, seconds, note)
