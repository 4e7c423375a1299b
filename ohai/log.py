"""Native (llama.cpp / ggml / engine) log lines go to the `ohai.native` logger.

Quiet by default: nothing is forwarded until `set_log_level` (or the OHAI_LOG
environment variable: debug, info, warning, error) asks for it.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys

from . import _core

logger = logging.getLogger("ohai.native")

_TO_NATIVE = {
    logging.DEBUG: _core.LogLevel.DEBUG,
    logging.INFO: _core.LogLevel.INFO,
    logging.WARNING: _core.LogLevel.WARN,
    logging.ERROR: _core.LogLevel.ERROR,
}
_TO_PYTHON = {
    _core.LogLevel.DEBUG: logging.DEBUG,
    _core.LogLevel.INFO: logging.INFO,
    _core.LogLevel.WARN: logging.WARNING,
    _core.LogLevel.ERROR: logging.ERROR,
}


def _forward(level: _core.LogLevel, line: str) -> None:
    logger.log(_TO_PYTHON.get(level, logging.INFO), "%s", line)


def set_log_level(level: int | str | None) -> None:
    """Forward native log lines at or above `level` (a logging level or its name); None silences them."""
    if level is None:
        _core.set_log_handler(None)
        return
    if isinstance(level, str):
        name = level.strip().upper()
        resolved = logging.getLevelName("WARNING" if name == "WARN" else name)
        if not isinstance(resolved, int):
            # Quoted, and cut short: the name may be long or hold characters a terminal mangles.
            shown = repr(level[:20]) + ("..." if len(level) > 20 else "")
            raise _core.InvalidRequestError(f"unknown log level {shown} (use debug, info, warning or error)")
        level = resolved
    elif isinstance(level, bool) or not isinstance(level, int):
        raise _core.InvalidRequestError(f"log level must be a name or a logging level number, not {type(level).__name__}")
    native = next((v for k, v in sorted(_TO_NATIVE.items()) if level <= k), _core.LogLevel.ERROR)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    _core.set_log_handler(_forward, native)


# Worker threads must not call into an interpreter that is shutting down.
atexit.register(_core.set_log_handler, None)


def _level_from_environment() -> None:
    # A typo in OHAI_LOG must not make `import ohai` fail: say so once and stay quiet.
    value = os.environ.get("OHAI_LOG")
    if not value:
        return
    try:
        set_log_level(value)
    except ValueError as exc:
        if sys.stderr is not None:  # None when the process started with fd 2 closed
            try:
                print(f"ohai: warning: OHAI_LOG ignored: {exc}", file=sys.stderr)
            except (OSError, ValueError):
                pass


_level_from_environment()
