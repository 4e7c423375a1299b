"""Engine streams on the event loop: pieces from a worker thread, server-sent events, disconnects.

A `CompletionStream` blocks while it waits for the engine, so each one is iterated by a thread of its
own that hands the pieces to the event loop. Whatever ends a response early — the client going away,
an error, the server cancelling the task — closes the stream, which cancels the request in the engine
at once and frees its sequence.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .._core import OhaiError
from ..model import CompletionStream
from ..openai_format import ChunkFactory
from ..types import Completion
from .errors import engine_error, shutting_down

DONE = b"data: [DONE]\n\n"


def sse(payload: Any) -> bytes:
    """One server-sent event carrying `payload` as JSON (which never holds a raw newline)."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


async def read_pieces(stream: CompletionStream) -> AsyncIterator[list[str]]:
    """The pieces of `stream` in batches (all that arrived since the previous batch), read by a thread
    of its own; engine errors are raised here. Leaving early closes (cancels) the stream."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def deliver(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody will read the rest
            stream.close()

    def pump() -> None:
        try:
            for piece in stream:
                deliver(piece)
            deliver(_END)
        except BaseException as exc:  # handed to the reader, which raises it
            deliver(_Failure(exc))

    threading.Thread(target=pump, name="ohai-serve-stream", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            batch: list[str] = []
            while isinstance(item, str):
                batch.append(item)
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    item = None
            if batch:
                yield batch
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
    finally:
        stream.close()


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the request body must have been read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def collect(stream: CompletionStream, receive: Receive) -> Completion | None:
    """Runs `stream` to its end and returns its `Completion`, or None if the client disconnected
    first (the request is then cancelled)."""
    disconnected = False
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            nonlocal disconnected
            await wait_for_disconnect(receive)
            disconnected = True
            stream.close()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            async for _ in read_pieces(stream):
                pass
        except Exception as exc:  # raised after the task group, not wrapped in an exception group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return None if disconnected else stream.completion


async def chunk_events(factory: ChunkFactory, stream: CompletionStream, *, prefix: str = "") -> AsyncIterator[bytes]:
    """The server-sent events of a streamed completion or chat completion: the opening chunk, one
    chunk per piece (`prefix` first: the echoed prompt), the finish chunk, the usage chunk if asked
    for, and ``[DONE]``. An engine error mid-stream becomes an ``error`` event and ends the stream
    without ``[DONE]``, as OpenAI does."""
    try:
        first = factory.start()
        if first is not None:
            yield sse(first)
        if prefix:
            yield sse(factory.text(prefix))
        async for batch in read_pieces(stream):
            yield b"".join(sse(factory.text(piece)) for piece in batch)
        done = stream.completion
        if done is None or done.finish_reason == "cancelled":
            # Not the client's doing (a disconnect stops this generator before it gets here):
            # the model was closed under the request, which happens when the server stops.
            yield sse(shutting_down().body())
            return
        yield sse(factory.finish(done.finish_reason))
        if factory.include_usage:
            yield sse(factory.usage_chunk(done.usage))
        yield DONE
    except OhaiError as exc:
        yield sse(engine_error(exc).body())
    finally:
        stream.close()


class EventStreamResponse(StreamingResponse):
    """A response of server-sent events from `events`.

    Unlike Starlette's own, it always listens for the client's disconnect while it streams (uvicorn
    drops writes to a closed connection silently, so writing alone would not notice): `cancel`
    (which cancels the engine request) runs at once and the event generator is cancelled, even while
    it is waiting for the engine. `cancel` runs again when the response ends, however it ends; for a
    request that has finished it does nothing.
    """

    def __init__(self, events: AsyncIterator[bytes], *, cancel: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream",
                         # no-buffering: nginx and friends pass the events through as they come
                         headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        self.events = events
        self.cancel = cancel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    await wait_for_disconnect(receive)
                    self.cancel()
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                try:
                    async for data in self.events:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                finally:
                    tg.cancel_scope.cancel()
        finally:
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
            self.cancel()
