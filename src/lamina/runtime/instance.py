"""The code that runs inside an instance process, after the zygote forked it.

It imports the handler (the init phase, once per instance), then serves invocations that
arrive as frames on its socket and sends back results, errors and captured output. Sync
handlers run on the main thread with no event loop around them (so `asyncio.run` inside a
handler works, as on AWS); `async def` handlers run on one persistent event loop, several at a
time when `concurrency` > 1. Timeouts and memory limits are enforced from outside.

Trace context: each invocation's W3C traceparent is held in a context variable
(`lamina.traceparent()`), right for concurrent async invocations too; with `concurrency` 1 it
is also in `_X_AMZN_TRACE_ID` in X-Ray form, per invocation, as AWS sets it.

Logging: as Lambda's Python runtime does, the root logger gets a handler before the handler's
module is imported, writing `[LEVEL]\tTIME\tREQUEST_ID\tmessage` lines (so each stored line
carries its level); the root level stays WARNING and `logging.basicConfig` is then a no-op, as
on AWS (`logging.getLogger().setLevel(logging.INFO)` shows info lines).
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import importlib
import inspect
import itertools
import logging
import os
import resource
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from lamina.gateway.events import event_from_call
from lamina.runtime.context import ClientContext, FunctionInfo, LambdaContext, current_traceparent
from lamina.runtime.protocol import FrameReader, encode
from lamina.telemetry.tracing import own_xray_header

__all__ = ["XRAY_ENV", "InstanceConfig", "run_instance", "set_trace_env"]

XRAY_ENV = "_X_AMZN_TRACE_ID"

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lamina_request_id", default=None
)


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    handler: str  # "module.attr"
    service_path: str
    concurrency: int
    info: FunctionInfo


def error_body(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The error payload AWS's Python runtime returns for an unhandled exception."""
    body: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
    }
    if request_id:
        body["requestId"] = request_id
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    body["stackTrace"] = traceback.format_list(frames)
    return body


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_XRAY_KEY = os.fsencode(XRAY_ENV)  # how os.environ keeps its keys and values on POSIX


def set_trace_env(value: str | None) -> None:
    """Set (or, with None, unset) `_X_AMZN_TRACE_ID` in `os.environ` for the code in this
    process, without C's setenv: glibc keeps every value ever set (it cannot know whether an
    old one is still referenced), so a fresh trace id per invocation through `os.environ[...] =`
    would grow the instance by a hundred bytes or so per invocation, for good. Programs the
    handler starts see the variable only when it passes `env=os.environ`."""
    data: dict[bytes, bytes] = os.environ._data  # type: ignore[attr-defined]
    if value is None:
        data.pop(_XRAY_KEY, None)
    else:
        data[_XRAY_KEY] = os.fsencode(value)


def _max_rss_kb() -> int:
    """The instance's peak resident memory so far, in KiB (what REPORT's Max Memory Used shows)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def payload_of(message: dict[str, Any]) -> Any:
    """An invoke frame's event: as sent, or built here from the compact form of an HTTP
    request the gateway sent in its place (`"http"`, see `lamina.gateway.events.ProxyEvent`)."""
    call = message.get("http")
    return message.get("payload") if call is None else event_from_call(call)


def encode_result(request_id: str, result: Any, run_ms: float | None = None) -> bytes:
    """A result frame; a MarshalError frame when the result is not JSON-serializable.
    `run_ms`: how long the handler ran (the pool batches invocations only of a function whose
    handler runs are short, `FunctionPool._may_batch`)."""
    try:
        raw = orjson.dumps(result, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        error = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
        return encode({"op": "error", "rid": request_id, "error": error, "rss": _max_rss_kb()})
    message: dict[str, Any] = {"op": "result", "rid": request_id, "result": orjson.Fragment(raw)}
    message["rss"] = _max_rss_kb()
    if run_ms is not None:
        message["ms"] = round(run_ms, 3)
    return encode(message)


class _Channel:
    """Sends frames to the platform from any thread; output is flushed in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        self.transport: asyncio.WriteTransport | None = None

    def send_raw(self, data: bytes) -> None:
        transport, loop = self.transport, self.loop
        if transport is None or loop is None:
            with self._lock:
                self._sock.sendall(data)
        elif threading.get_ident() == self.loop_thread:
            transport.write(data)
        else:
            loop.call_soon_threadsafe(transport.write, data)


class _Capture:
    """A text stream that turns handler output into `log` frames tagged with the request id."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, stream: str, channel: _Channel) -> None:
        self._stream = stream
        self._channel = channel
        self._pending: dict[str | None, str] = {}
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not text:
            return 0
        rid = current_request_id.get()
        with self._lock:
            buffered = self._pending.pop(rid, "") + text
            cut = buffered.rfind("\n") + 1
            if cut < len(buffered):
                self._pending[rid] = buffered[cut:]
        if cut:
            self._emit(rid, buffered[:cut])
        return len(text)

    def flush_request(self, rid: str | None) -> None:
        with self._lock:
            rest = self._pending.pop(rid, "")
        if rest:
            self._emit(rid, rest + "\n")

    def _emit(self, rid: str | None, text: str) -> None:
        frame = encode({"op": "log", "rid": rid, "stream": self._stream, "text": text})
        self._channel.send_raw(frame)

    def flush(self) -> None:
        self.flush_request(current_request_id.get())

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("captured stream has no file descriptor")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = current_request_id.get() or ""
        return True


def _install_log_handler(stream: _Capture) -> None:
    """Lambda's root log handler and format, unless the process already configured logging."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(stream)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)


class _Instance:
    def __init__(self, sock: socket.socket, config: InstanceConfig) -> None:
        self.sock = sock
        self.config = config
        self.channel = _Channel(sock)
        self.stdout = _Capture("stdout", self.channel)
        self.stderr = _Capture("stderr", self.channel)
        self.handler: Callable[..., Any] | None = None
        # The environment is per process: only one invocation at a time may own it.
        self.trace_env = config.concurrency == 1

    # -- init -------------------------------------------------------------------------------
    def init(self, base_modules: frozenset[str]) -> None:
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        _install_log_handler(self.stderr)
        module_name, _, attr = self.config.handler.rpartition(".")
        started = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            traceback.print_exc()
            self._init_failed(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {exc}",
                exc,
            )
        handler = getattr(module, attr, None)
        if handler is None or not callable(handler):
            self._init_failed(
                "Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'"
            )
        self.handler = handler
        init_ms = (time.perf_counter() - started) * 1000
        self.stderr.flush_request(None)
        self.stdout.flush_request(None)
        is_async = inspect.iscoroutinefunction(handler)
        ready = {
            "op": "ready",
            "pid": os.getpid(),
            "init_ms": init_ms,
            "modules": _learned_modules(base_modules, self.config.service_path),
            "is_async": is_async,
            # runs one invocation at a time, in the order sent (serve_sync without a pool)
            "serial": self.config.concurrency == 1 and not is_async,
        }
        self.channel.send_raw(encode(ready))

    def _init_failed(
        self, error_type: str, message: str, exc: BaseException | None = None
    ) -> NoReturn:
        self.stderr.flush_request(None)
        self.stdout.flush_request(None)
        trace = traceback.format_list(traceback.extract_tb(exc.__traceback__)) if exc else []
        error = {"errorMessage": message, "errorType": error_type, "stackTrace": trace}
        self.channel.send_raw(encode({"op": "init_error", "error": error}))
        os._exit(1)

    # -- invocation ----------------------------------------------------------------------------
    def context_for(self, message: dict[str, Any]) -> LambdaContext:
        ctx = message.get("ctx") or {}
        deadline_ms = message.get("deadline_ms")
        if deadline_ms is None:  # sent behind another invocation: its time counts from now
            deadline_ms = int(time.time() * 1000) + message["timeout_ms"]
        return LambdaContext(
            aws_request_id=message["rid"],
            deadline_ms=deadline_ms,
            info=self.config.info,
            client_context=ClientContext.from_dict(ctx.get("client_context")),
        )

    def enter_trace(self, message: dict[str, Any]) -> contextvars.Token[str | None]:
        """Make the invocation's trace context current (and `_X_AMZN_TRACE_ID` when it may)."""
        traceparent: str | None = message.get("tp")  # made by the platform: well-formed
        if self.trace_env:
            set_trace_env(own_xray_header(traceparent) if traceparent else None)
        return current_traceparent.set(traceparent)

    def call_sync(self, message: dict[str, Any]) -> None:
        rid: str = message["rid"]
        token = current_request_id.set(rid)
        trace_token = self.enter_trace(message)
        try:
            assert self.handler is not None
            started = time.perf_counter()
            result = self.handler(payload_of(message), self.context_for(message))
            frame = encode_result(rid, result, (time.perf_counter() - started) * 1000)
        except Exception as exc:
            frame = self._error_frame(rid, exc)
        finally:
            current_request_id.reset(token)
            current_traceparent.reset(trace_token)
        self._finish(rid, frame)

    async def call_async(self, message: dict[str, Any]) -> None:
        rid: str = message["rid"]
        current_request_id.set(rid)  # this task's own context: nothing to reset
        self.enter_trace(message)
        try:
            assert self.handler is not None
            started = time.perf_counter()
            result = self.handler(payload_of(message), self.context_for(message))
            if inspect.isawaitable(result):
                result = await result
            frame = encode_result(rid, result, (time.perf_counter() - started) * 1000)
        except Exception as exc:
            frame = self._error_frame(rid, exc)
        self._finish(rid, frame)

    def _error_frame(self, rid: str, exc: Exception) -> bytes:
        if isinstance(exc, MemoryError):
            # Past RLIMIT_AS (the fallback limit): the instance is not safe to reuse.
            self.stderr.write(f"[ERROR] MemoryError: out of memory in request {rid}\n")
            self.stderr.flush_request(rid)
            os._exit(137)
        body = error_body(exc, rid)
        self.stderr.write(
            f"[ERROR] {body['errorType']}: {body['errorMessage']}\n"
            "Traceback (most recent call last):\n" + "".join(body["stackTrace"])
        )
        return encode({"op": "error", "rid": rid, "error": body, "rss": _max_rss_kb()})

    def _finish(self, rid: str, frame: bytes) -> None:
        self.stdout.flush_request(rid)
        self.stderr.flush_request(rid)
        self.channel.send_raw(frame)

    # -- serving loops ---------------------------------------------------------------------------
    def serve_sync(self) -> NoReturn:
        pool = ThreadPoolExecutor(self.config.concurrency) if self.config.concurrency > 1 else None
        frames = FrameReader()
        # One buffer for every read (64 KiB: it is all private memory of the instance): a
        # `recv(256 KiB)` would map and unmap a fresh object per call, which costs more than
        # the whole no-op invocation.
        buffer = bytearray(65536)
        view = memoryview(buffer)
        recv_into = self.sock.recv_into
        # Wait in poll(), not in a blocking recv: a reader asleep in recv is woken each time
        # the platform reads this socket's last reply (to announce free buffer space), which
        # costs a wake-up and a context switch per invocation; poll() ignores those.
        readable = select.poll()
        readable.register(self.sock, select.POLLIN)
        wait = readable.poll
        running = True
        while running:
            wait()
            size = recv_into(buffer)
            if not size:
                break
            for message in frames.feed(view[:size]):
                op = message.get("op")
                if op == "stop":
                    running = False
                    break
                if op != "invoke":
                    continue
                if pool is None:
                    self.call_sync(message)
                else:
                    pool.submit(self.call_sync, message)
        if pool is not None:
            pool.shutdown(wait=True)
        os._exit(0)

    def serve_async(self) -> NoReturn:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        done = loop.create_future()
        instance = self

        class Reader(asyncio.Protocol):
            def __init__(self) -> None:
                self.frames = FrameReader()
                self.tasks: set[asyncio.Task[None]] = set()

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                assert isinstance(transport, asyncio.WriteTransport)
                instance.channel.transport = transport
                instance.channel.loop = loop
                instance.channel.loop_thread = threading.get_ident()

            def data_received(self, data: bytes) -> None:
                for message in self.frames.feed(data):
                    op = message.get("op")
                    if op == "invoke":
                        task = loop.create_task(instance.call_async(message))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                    elif op == "stop":
                        self._stop()

            def _stop(self) -> None:
                async def drain() -> None:
                    if self.tasks:
                        await asyncio.wait(set(self.tasks))
                    if not done.done():
                        done.set_result(None)

                self.tasks.add(loop.create_task(drain()))

            def connection_lost(self, exc: Exception | None) -> None:
                if not done.done():
                    done.set_result(None)

        async def main() -> None:
            await loop.create_unix_connection(Reader, sock=self.sock)
            await done

        loop.run_until_complete(main())
        os._exit(0)


def _learned_modules(base_modules: frozenset[str], service_path: str) -> list[str]:
    """Modules (submodules included: packages such as pydantic import lazily) that the init
    imported from outside the service's own code, in import order."""
    prefix = os.path.realpath(service_path) + os.sep
    # New modules are at the end of `sys.modules` (a dict keeps insertion order): read only
    # those. Walking all of it would touch every module the zygote imported, and each page
    # touched is copied into this instance's own memory.
    added = max(0, len(sys.modules) - len(base_modules))
    names = list(itertools.islice(reversed(sys.modules.keys()), added))
    learned = []
    for name in reversed(names):
        if name in base_modules or name == "__main__":
            continue
        path = getattr(sys.modules.get(name), "__file__", None)
        if not path or os.path.realpath(path).startswith(prefix):
            continue
        learned.append(name)
    return learned


def run_instance(
    sock: socket.socket, config: InstanceConfig, base_modules: frozenset[str]
) -> NoReturn:
    """Init the handler, then serve invocations until the platform says stop or goes away."""
    instance = _Instance(sock, config)
    instance.init(base_modules)
    if inspect.iscoroutinefunction(instance.handler):
        instance.serve_async()
    instance.serve_sync()
