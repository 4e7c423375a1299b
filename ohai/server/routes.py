"""The endpoints: OpenAI's /v1 API over one `ohai.Model`, plus /health and /metrics.

Every engine call blocks (it releases the GIL), so it runs in a worker thread, never on the event
loop; streams are read by `streaming`. A request is submitted to the engine before the response
starts, so whatever the engine refuses up front (bad values, a prompt beyond the context, a full
queue) is an HTTP error status, not an event in a stream that already said 200.
"""
from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import openai_format
from .._core import OhaiError
from ..model import CompletionStream, Model
from ..openai_format import ChunkFactory
from .access_log import CLIENT_CLOSED
from .errors import APIError, engine_error, shutting_down
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .streaming import EventStreamResponse, chunk_events, collect
from .validation import parse_chat, parse_completion, parse_embedding, read_json

T = TypeVar("T")


class Endpoints:
    def __init__(self, model: Model, *, model_name: str, max_body_bytes: int, metrics: Metrics) -> None:
        self.model = model
        self.model_name = model_name
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        # The served name, and the file's name, which is what clients that looked at the disk send.
        self.accepted_names = {model_name, os.path.basename(model.info.path)}
        try:
            self.created = int(os.stat(model.info.path).st_mtime)
        except OSError:
            self.created = int(time.time())
        self._streams: weakref.WeakSet[CompletionStream] = weakref.WeakSet()

    def cancel_requests(self) -> int:
        """Cancels every generation still running or queued (at shutdown, once the grace period is
        over): streams end with an error event, other requests with a 503. Returns how many."""
        streams = [s for s in list(self._streams) if s.completion is None]
        for stream in streams:
            stream.close()
        return len(streams)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.get_model, methods=["GET"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _check_model(self, data: Mapping[str, Any]) -> None:
        name = data.get("model")
        if isinstance(name, str) and name not in self.accepted_names:
            raise APIError(404, f"The model '{name}' does not exist (this server serves '{self.model_name}')",
                           param="model", code="model_not_found")

    async def _engine(self, call: Callable[[], T], *, param: str | None) -> T:
        """`call` (which uses the engine) in a worker thread; engine errors become HTTP errors."""
        try:
            return await run_in_threadpool(call)
        except OhaiError as exc:
            raise engine_error(exc, param=param, model_closed=self.model.closed) from None

    async def _respond(self, request: Request, stream: CompletionStream, factory: ChunkFactory, *, stream_it: bool,
                       build: Callable[[Any], dict[str, Any]], prefix: str = "") -> Response:
        self._streams.add(stream)
        if stream_it:
            return EventStreamResponse(chunk_events(factory, stream, prefix=prefix), cancel=stream.close)
        try:
            completion = await collect(stream, request.receive)
        except OhaiError as exc:
            raise engine_error(exc, model_closed=self.model.closed) from None
        if completion is None:
            return Response(status_code=CLIENT_CLOSED)  # nobody is listening; the access log shows it
        if completion.finish_reason == "cancelled":  # not by the client: the model was closed under it
            raise shutting_down()
        return JSONResponse(build(completion))

    # -- endpoints -------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        if self.model.closed:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_text(self, request: Request) -> Response:
        body = await run_in_threadpool(self.metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def _model_object(self) -> dict[str, Any]:
        return openai_format.model_object(self.model_name, created=self.created)

    async def list_models(self, request: Request) -> Response:
        return JSONResponse(openai_format.model_list([self._model_object()]))

    async def get_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name not in self.accepted_names:
            raise APIError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        return JSONResponse(self._model_object())

    async def completions(self, request: Request) -> Response:
        data = await read_json(request, self.max_body_bytes)
        self._check_model(data)
        req = parse_completion(data)
        echo = ""
        if req.echo:
            prompt = req.prompt
            echo = prompt if isinstance(prompt, str) else await self._engine(
                lambda: self.model.detokenize(prompt), param="prompt")
        options = req.sampling.options()
        stream = await self._engine(lambda: self.model.stream(req.prompt, **options), param="prompt")
        factory = ChunkFactory("completion", self.model_name, include_usage=req.include_usage)
        return await self._respond(
            request, stream, factory, stream_it=req.stream, prefix=echo,
            build=lambda c: openai_format.completion(self.model, c, model_name=self.model_name, echo=echo))

    async def chat_completions(self, request: Request) -> Response:
        data = await read_json(request, self.max_body_bytes)
        self._check_model(data)
        req = parse_chat(data)
        options = req.sampling.options()
        stream = await self._engine(lambda: self.model.chat(req.messages, stream=True, **options), param="messages")
        factory = ChunkFactory("chat", self.model_name, include_usage=req.include_usage)
        return await self._respond(
            request, stream, factory, stream_it=req.stream,
            build=lambda c: openai_format.chat_completion(self.model, c, model_name=self.model_name))

    async def embeddings(self, request: Request) -> Response:
        data = await read_json(request, self.max_body_bytes)
        self._check_model(data)
        req = parse_embedding(data, n_embd=self.model.info.n_embd)

        def embed() -> tuple[Any, int]:
            vectors = self.model.embed(req.texts)
            return vectors, sum(len(self.model.tokenize(text)) for text in req.texts)

        vectors, prompt_tokens = await self._engine(embed, param="input")
        return JSONResponse(openai_format.embeddings(vectors, model_name=self.model_name, prompt_tokens=prompt_tokens,
                                                     encoding_format=req.encoding_format))
