"""`ohai serve`: an OpenAI-compatible HTTP server (Starlette + uvicorn) over one model."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

from ..default_model import default_model_path
from ..model import KV_TYPES, MAX_PARALLEL, Model
from .common import CliError, display, error_line, utf8_text

HELP = "serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, ...)"

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
_BACKSTOP_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct Q4_1)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, metavar="N", help="port (default 8080; 0 = any free port)")
    parser.add_argument("--parallel", type=int, default=4, metavar="N", help="requests decoded together (default 4)")
    parser.add_argument("-c", "--ctx", type=int, default=0, metavar="N",
                        help="context length in tokens, shared by the parallel requests (default: min(training, 4096))")
    parser.add_argument("-t", "--threads", type=int, default=0, metavar="N", help="CPU threads (default: all)")
    parser.add_argument("--kv-type", default="f16", choices=KV_TYPES, help="KV cache type (default f16)")
    parser.add_argument("--device", default="auto",
                        help="auto (an NNRt accelerator if there is one), cpu, nnrt, nnrt:<name> (default auto)")
    parser.add_argument("--max-queued", type=int, default=64, metavar="N",
                        help="requests that may wait for a free sequence; beyond that: HTTP 429 (default 64)")
    parser.add_argument("--api-key", default=os.environ.get("OHAI_API_KEY") or None, metavar="KEY",
                        help="require 'Authorization: Bearer KEY' on every endpoint but /health "
                             "(default: $OHAI_API_KEY, else none)")
    parser.add_argument("--model-name", metavar="NAME", help="the model's name in the API (default: the file's name)")
    parser.add_argument("--shutdown-timeout", type=float, default=DEFAULT_SHUTDOWN_TIMEOUT, metavar="SECONDS",
                        help="on SIGTERM/Ctrl-C, seconds in-flight requests get to finish before they are "
                             f"cancelled (default {DEFAULT_SHUTDOWN_TIMEOUT:g})")


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be between 0 and 65535")
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise CliError(f"--parallel must be between 1 and {MAX_PARALLEL}")
    if args.max_queued < 0:
        raise CliError("--max-queued must be >= 0")
    if not 0 <= args.shutdown_timeout < math.inf:  # NaN too
        raise CliError("--shutdown-timeout must be a number of seconds >= 0")
    if args.api_key is not None:
        key = args.api_key
        # A header value: visible ASCII, no spaces, or clients could not send it as it is.
        if not key or any(not ("!" <= c <= "~") for c in key):
            raise CliError("--api-key must be non-empty printable ASCII without spaces")
    if args.model_name is not None:
        name = utf8_text("--model-name", args.model_name)
        if not name.strip() or any(not c.isprintable() for c in name):
            raise CliError("--model-name must be a non-empty name without control characters")


def _check_dependencies() -> None:
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CliError(f"ohai serve needs the server dependencies (missing: {exc.name}): "
                       "pip install 'ohai[serve]'") from None


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ohai: %(message)s"))
    for name, level in (("ohai.server", logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (not listening yet): a busy port fails before the model loads."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(f"cannot resolve --host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {_url(host, port)}: {exc.strerror or exc}") from None
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def execute(args: argparse.Namespace) -> int:
    _check(args)
    _check_dependencies()
    _setup_logging()
    sock = _bind(args.host, args.port)
    try:
        return _serve(args, sock)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, sock: socket.socket) -> int:
    import uvicorn

    from ..server import ServerSettings, create_app

    path = args.model if args.model is not None else default_model_path()
    error_line(f"ohai: loading {display(os.fsdecode(path))} ...")
    started = time.monotonic()
    model = Model(path, n_ctx=args.ctx, threads=args.threads, parallel=args.parallel, kv_type=args.kv_type,
                  max_queued=args.max_queued, device=args.device)
    try:
        model.stats()  # creates the engine (its KV cache and worker) now, not on the first request
        app = create_app(model, ServerSettings(model_name=args.model_name, api_key=args.api_key))
        name = app.state.model_name
        error_line(f"ohai: loaded {display(name)} in {time.monotonic() - started:.1f} s: context {model.n_ctx} tokens, "
                   f"{model.parallel} parallel, KV cache {args.kv_type}, up to {args.max_queued} queued")

        sock.listen(2048)
        host, port = sock.getsockname()[:2]
        if not _is_loopback(host) and args.api_key is None:
            error_line(f"ohai: warning: listening on {host} without --api-key: anyone who can reach this port "
                       "can use the model")
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", server_header=False,
            # A backstop: the grace period ends with the engine requests cancelled (see _make_server),
            # after which the handlers end on their own.
            timeout_graceful_shutdown=args.shutdown_timeout + _BACKSTOP_SECONDS,
        )
        server = _make_server(config, url=_url(host, port), shutdown_timeout=args.shutdown_timeout,
                              cancel_requests=app.state.cancel_requests)
        _run(server, sock)
        if not server.started:
            return 1
        error_line("ohai: stopped")
        return 0
    finally:
        model.close()


def _make_server(config: uvicorn.Config, *, url: str, shutdown_timeout: float,
                 cancel_requests: Callable[[], int]) -> uvicorn.Server:
    import uvicorn  # only with the server dependencies, which `ohai run` and friends do not need

    def end_grace_period() -> None:
        cancelled = cancel_requests()
        if cancelled:
            error_line(f"ohai: cancelled {cancelled} request{'s' if cancelled != 1 else ''} still running after "
                       f"{shutdown_timeout:g} s")

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                error_line(f"ohai: serving on {url}")

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn stops accepting and waits for the requests in flight; those still generating
            # when the grace period is over are cancelled in the engine, so that each ends properly
            # (an error event or a 503) instead of being cut off.
            timer = asyncio.get_running_loop().call_later(shutdown_timeout, end_grace_period)
            try:
                await super().shutdown(sockets=sockets)
            finally:
                timer.cancel()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                # A signal handler may interrupt a write to sys.stderr: write to the descriptor.
                _write_stderr(f"ohai: shutting down: in-flight requests get up to {shutdown_timeout:g} s to finish "
                              "(Ctrl-C again to stop at once)\n")
            super().handle_exit(sig, frame)

    return Server(config)


def _write_stderr(text: str) -> None:
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _ignore_signal(sig: int, frame: FrameType | None) -> None:
    pass


def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    # uvicorn handles SIGINT/SIGTERM itself (a graceful shutdown), then raises the signal again
    # against the handler that was installed before it: a no-op one here, so that a requested stop
    # ends with exit status 0 instead of a KeyboardInterrupt or death by SIGTERM.
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in handled}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
