"""ohai.aie: load an ai_engine plugin library on a PC and call it the way ai_engine's server does.

OpenHarmony apps reach ohai through ai_engine, which ``dlopen()``\\ s a plugin library and calls
its ``IPlugin`` methods with JSON messages. :class:`PluginHost` does the same here (same load
flags, request/response objects, call-mode check, 1 MiB message limit, one-reply rule, unload
sequence), so that the plugin can be exercised and tested without a device::

    from ohai import aie
    with aie.PluginHost(aie.plugin_library("async")) as host:
        transaction, _ = host.prepare({"model": "SmolLM2-135M-Instruct.Q4_1.gguf"})
        print(host.process(transaction, {"op": "generate", "prompt": "Hello"}))
        host.release(transaction)

Failures raise :class:`PluginCallError` (with the ai_engine return code and the plugin's error
body); the ``*_raw`` methods return :class:`RawReply` without raising, for tests of malformed
input. What the plugin did against the contract (a second reply, a reply nobody asked for, an
oversized buffer, an exception) is listed in :attr:`PluginHost.contract_violations`.
"""
from __future__ import annotations

import atexit
import json
import os
import site
import sysconfig
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from . import _aie_host
from ._core import OhaiError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "RETCODES",
    "Message",
    "PluginCallError",
    "PluginHost",
    "PluginLoadError",
    "PluginReplyError",
    "RawReply",
    "make_transaction_id",
    "plugin_library",
    "retcode_name",
]

#: ai_engine refuses any message larger than this (bytes), in either direction.
MAX_MESSAGE_BYTES: int = _aie_host.MAX_MESSAGE_BYTES
#: ai_engine's return codes by name (without the ``RETCODE_`` prefix).
RETCODES: Dict[str, int] = dict(_aie_host.RETCODES)
ON_PLUGIN_SUCCEED: int = _aie_host.ON_PLUGIN_SUCCEED
ON_PLUGIN_FAIL: int = _aie_host.ON_PLUGIN_FAIL

#: A message: a dict (sent as JSON), a str (sent as UTF-8) or bytes (sent as they are).
Message = Union[Dict[str, Any], str, bytes, bytearray, memoryview]

_LIBRARY_NAMES = {"async": "libohai_llm.so", "sync": "libohai_llm_sync.so"}
_NAMES_BY_RETCODE = {value: name for name, value in RETCODES.items()}


def make_transaction_id(adapter_id: int, session_id: int) -> int:
    """ai_engine's transaction id: ``(adapter_id << 32) + session_id``."""
    return _aie_host.make_transaction_id(adapter_id, session_id)


def retcode_name(retcode: int) -> str:
    """``RETCODE_<NAME>`` for an ai_engine return code, or the number when it has no name."""
    name = _NAMES_BY_RETCODE.get(retcode)
    return f"RETCODE_{name}" if name else str(retcode)


def plugin_library(mode: str = "async") -> str:
    """Path of the installed plugin library: ``"async"`` → libohai_llm.so, ``"sync"`` →
    libohai_llm_sync.so (in the package's ``plugins/`` directory; ``$OHAI_AIE_PLUGIN_DIR`` is
    searched first)."""
    try:
        name = _LIBRARY_NAMES[mode]
    except KeyError:
        raise ValueError(f"mode must be 'async' or 'sync', not {mode!r}") from None
    searched = _plugin_directories()
    for directory in searched:
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    places = ", ".join(str(d) for d in searched)
    raise FileNotFoundError(f"the ai_engine plugin library {name} is not installed (looked in {places}); "
                            "build it with `make install`")


def _plugin_directories() -> list[Path]:
    """Where plugin libraries may be: an override, next to this module (the installed package or a
    checkout that `make install` copied them into), then the installed package of this interpreter."""
    directories: list[Path] = []
    override = os.environ.get("OHAI_AIE_PLUGIN_DIR")
    if override:
        directories.append(Path(override))
    directories.append(Path(__file__).resolve().parent / "plugins")
    site_dirs = [sysconfig.get_paths().get("platlib"), sysconfig.get_paths().get("purelib")]
    try:
        site_dirs += site.getsitepackages()
    except AttributeError:  # an old virtualenv's site module
        pass
    for site_dir in site_dirs:
        if site_dir:
            directories.append(Path(site_dir) / "ohai" / "plugins")
    unique: list[Path] = []
    for directory in directories:
        if directory not in unique:
            unique.append(directory)
    return unique


# ---- errors ----------------------------------------------------------------------------------


class PluginCallError(OhaiError):
    """A plugin call ended with a non-zero return code.

    ``retcode``: the ai_engine return code (the plugin's, or the host's: 1006 for a message over
    1 MiB, 1207 for the wrong call mode, 1300/1301 for a timeout, 1201 when closed). ``code`` and
    ``message``: from the plugin's error body ``{"error": {"code": ..., "message": ...}}`` when it
    sent one (else ``code`` is None and ``message`` the host's or ai_engine's explanation).
    ``body``: the reply parsed as a JSON object, or None. ``raw``: the reply's bytes.
    """

    def __init__(self, operation: str, retcode: int, raw: bytes = b"", *, host_error: str = "",
                 response_desc: str = "") -> None:
        self.operation = operation
        self.retcode = retcode
        self.raw = bytes(raw)
        self.body: Optional[Dict[str, Any]] = _json_object(self.raw)
        error = self.body.get("error") if self.body is not None else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        self.code: Optional[str] = None if code is None else str(code)
        self.message: str = (str(message) if message is not None else "") or host_error or response_desc \
            or f"failed with {retcode_name(retcode)}"
        self.host_error = host_error
        detail = f"retcode {retcode}" + (f", {self.code}" if self.code else "")
        super().__init__(f"{operation}: {self.message} ({detail})")


class PluginLoadError(PluginCallError):
    """The library could not be loaded as a plugin: 1202 (dlopen failed; ``message`` has dlerror's
    text), 1200 (no ``PLUGIN_INTERFACE`` symbol) or 1201 (the factory returned no plugin)."""


class PluginReplyError(PluginCallError):
    """The plugin reported success but its reply is not a JSON object (``retcode`` is 0)."""


@dataclass(frozen=True)
class RawReply:
    """What a call returned, unparsed.

    ``retcode``: the outcome: the call's return code, else the response's, else -1 when the reply
    came with ON_PLUGIN_FAIL; 0 means success. ``data``: the output / response result bytes.
    """

    retcode: int
    data: bytes
    host_error: str = ""
    call_retcode: int = 0
    response_retcode: int = 0
    response_desc: str = ""
    event: Optional[int] = None  # ON_PLUGIN_SUCCEED / ON_PLUGIN_FAIL for an asynchronous reply
    request_id: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.retcode == 0

    def json(self) -> Any:
        """``data`` parsed as JSON (strict UTF-8)."""
        return json.loads(self.data.decode("utf-8"))


def _json_object(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _encode(message: Message) -> bytes:
    if isinstance(message, dict):
        return json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"a message is a dict, str or bytes, not {type(message).__name__}")


def _reply_object(operation: str, reply: RawReply) -> Dict[str, Any]:
    if not reply.ok:
        raise PluginCallError(operation, reply.retcode, reply.data, host_error=reply.host_error,
                              response_desc=reply.response_desc)
    if not reply.data:
        return {}
    value = _json_object(reply.data)
    if value is None:
        raise PluginReplyError(operation, 0, reply.data, host_error="the reply is not a JSON object")
    return value


def _call_reply(result: _aie_host.CallResult) -> RawReply:
    return RawReply(retcode=result.retcode, data=result.output, host_error=result.host_error,
                    call_retcode=result.retcode)


def _process_reply(result: _aie_host.ProcessResult) -> RawReply:
    retcode = result.retcode or result.response_retcode
    if retcode == 0 and result.event == ON_PLUGIN_FAIL:
        retcode = RETCODES["FAILURE"]
    return RawReply(retcode=retcode, data=result.result, host_error=result.host_error, call_retcode=result.retcode,
                    response_retcode=result.response_retcode, response_desc=result.response_desc,
                    event=None if result.event < 0 else result.event, request_id=result.request_id)


# ---- the host --------------------------------------------------------------------------------


class PluginHost:
    """One plugin instance, loaded from ``library_path`` as ai_engine's server loads it.

    Thread-safe: any number of threads may call it at once (as the server's threads do). Use it as
    a context manager or call :meth:`close`, which deletes the plugin and unloads the library.
    """

    def __init__(self, library_path: Union[str, os.PathLike[str]], *, plugin_type: int = 0) -> None:
        path = os.fspath(library_path)
        if isinstance(path, str) and os.sep not in path and os.path.exists(path):
            path = os.path.join(os.curdir, path)  # dlopen would search the system's library path instead
        try:
            self._host = _aie_host.PluginHost(os.fsencode(path), plugin_type)
        except _aie_host.LoadError as exc:
            retcode, message = exc.args
            raise PluginLoadError("load", retcode, host_error=message) from None
        _live_hosts.add(self)

    # -- what the plugin says about itself
    @property
    def library_path(self) -> str:
        return self._host.library_path

    @property
    def name(self) -> str:
        return self._host.name

    @property
    def version(self) -> int:
        return self._host.version

    @property
    def infer_mode(self) -> str:
        """``"SYNC"`` or ``"ASYNC"`` (anything but ``"SYNC"`` counts as asynchronous, as in the server)."""
        return self._host.infer_mode

    @property
    def is_sync(self) -> bool:
        return self._host.is_sync

    # -- what the host has seen
    @property
    def contract_violations(self) -> list[str]:
        """What the plugin did that the contract forbids, oldest first."""
        return self._host.contract_violations

    @property
    def late_replies(self) -> int:
        """Replies that came after their call had timed out (or was interrupted)."""
        return self._host.late_replies

    @property
    def closed(self) -> bool:
        return self._host.closed

    def new_transaction_id(self) -> int:
        """A fresh transaction id: ``(adapter id << 32) + next session id`` of this host."""
        return self._host.new_transaction_id()

    # -- the calls, parsed
    def prepare(self, input: Message, *, transaction_id: Optional[int] = None) -> Tuple[int, Dict[str, Any]]:
        """``Prepare`` for a transaction (a fresh one unless given); returns the transaction id and
        the plugin's output parsed as a JSON object (``{}`` when empty)."""
        if transaction_id is None:
            transaction_id = self.new_transaction_id()
        reply = self.prepare_raw(transaction_id, input)
        return transaction_id, _reply_object("Prepare", reply)

    def process(self, transaction_id: int, message: Message, *, sync: Optional[bool] = None,
                timeout: float = 60.0, operation_id: int = 0) -> Dict[str, Any]:
        """``SyncProcess`` or ``AsyncProcess`` (default: the plugin's own mode) with `message`
        (a dict is sent as JSON); returns the reply parsed as a JSON object. Waits at most
        `timeout` seconds (then PluginCallError with 1300 / 1301); Ctrl-C ends the wait."""
        reply = self.process_raw(transaction_id, message, sync=sync, timeout=timeout, operation_id=operation_id)
        return _reply_object(_operation(sync if sync is not None else self.is_sync, message), reply)

    def set_option(self, option_type: int, input: Message) -> None:
        _reply_object("SetOption", self.set_option_raw(option_type, input))

    def get_option(self, option_type: int, input: Message = b"{}") -> Dict[str, Any]:
        return _reply_object("GetOption", self.get_option_raw(option_type, input))

    def release(self, transaction_id: int, input: Message = b"{}", *, full_unload: bool = False) -> None:
        """``Release`` of a transaction; `full_unload`: the plugin's last client is gone."""
        _reply_object("Release", self.release_raw(transaction_id, input, full_unload=full_unload))

    # -- the calls, raw: never raise for what the plugin (or the host's checks) answer
    def prepare_raw(self, transaction_id: int, input: Message) -> RawReply:
        return _call_reply(self._host.prepare(transaction_id, _encode(input)))

    def process_raw(self, transaction_id: int, message: Message, *, sync: Optional[bool] = None,
                    timeout: Optional[float] = 60.0, operation_id: int = 0) -> RawReply:
        """Like :meth:`process` without parsing or raising. `timeout` None waits for ever."""
        if timeout is not None and not timeout >= 0:  # also refuses NaN
            raise ValueError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
        data = _encode(message)
        use_sync = self.is_sync if sync is None else bool(sync)
        call = self._host.process_sync if use_sync else self._host.process_async
        return _process_reply(call(transaction_id, data, timeout, operation_id))

    def set_option_raw(self, option_type: int, input: Message) -> RawReply:
        return _call_reply(self._host.set_option(option_type, _encode(input)))

    def get_option_raw(self, option_type: int, input: Message = b"{}") -> RawReply:
        return _call_reply(self._host.get_option(option_type, _encode(input)))

    def release_raw(self, transaction_id: int, input: Message = b"{}", *, full_unload: bool = False) -> RawReply:
        return _call_reply(self._host.release(full_unload, transaction_id, _encode(input)))

    # -- lifetime
    def close(self) -> None:
        """Deletes the plugin and unloads the library (waits for calls inside the plugin to
        return; calls still waiting for a reply end with 1201). Idempotent."""
        self._host.close()

    def __enter__(self) -> PluginHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.name} {self.version} {self.infer_mode}"
        return f"<ohai.aie.PluginHost {self.library_path} ({state})>"


def _operation(sync: bool, message: Message) -> str:
    """"AsyncProcess(generate)": the call and, when the message says it, the operation."""
    name = "SyncProcess" if sync else "AsyncProcess"
    op = message.get("op") if isinstance(message, dict) else None
    return f"{name}({op})" if isinstance(op, str) else name


# Interpreter exit: plugins run threads of their own (an engine); they must be deleted (and
# their threads joined) while the interpreter is still alive, and Python threads still waiting in
# a call must not come back into a finalizing interpreter (see bindings/register.h).
_live_hosts: "weakref.WeakSet[PluginHost]" = weakref.WeakSet()


def _close_all_at_exit() -> None:
    _aie_host._begin_exit()
    for host in list(_live_hosts):
        try:
            host.close()
        except Exception:  # noqa: BLE001 - nothing to report to at exit
            pass
    _aie_host._wait_for_native_calls(30.0)


atexit.register(_close_all_at_exit)
