"""One instance process as the platform sees it: its connection, its pending invocations,
and the timeout and exit handling that turn a dead process into a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from lamina.errors import FunctionCrashed, FunctionOutOfMemory, FunctionTimeout, InitError
from lamina.executor.types import (
    FunctionConfig,
    InvocationRequest,
    InvocationResult,
    LogSink,
    NotStarted,
)
from lamina.gateway.events import ProxyEvent
from lamina.runtime.protocol import encode

__all__ = ["LocalInstance"]

log = logging.getLogger(__name__)

_SIGNAL_NAMES = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGKILL: "killed",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
}


def describe_exit(status: int | None) -> str:
    """AWS-style words for an exit status: 'exit status 3', 'signal: segmentation fault'."""
    if status is None:
        return "connection to the instance was lost"
    if status < 0:
        return f"signal: {_SIGNAL_NAMES.get(signal.Signals(-status), signal.Signals(-status).name)}"
    return f"exit status {status}"


class LocalInstance:
    """An instance process forked by a zygote, connected over the platform's instance socket."""

    node: Mapping[str, str] | None = None  # always this machine

    def __init__(
        self,
        iid: str,
        fn: FunctionConfig,
        on_exit: Callable[[LocalInstance], None],
        oom_check: Callable[[], bool],
    ) -> None:
        self.iid = iid
        self.function_id = fn.id
        self.timeout_s = fn.timeout_s
        self.pid = 0
        self.init_ms = 0.0
        self.modules: list[str] = []
        self.serial = False  # set by its ready message (see Instance.serial)
        self._on_exit = on_exit
        self._oom_check = oom_check
        self._transport: asyncio.Transport | None = None
        self._pending: dict[str, tuple[asyncio.Future[InvocationResult], LogSink | None]] = {}
        # Each pending invocation's deadline (loop time), watched by one timer per instance,
        # armed for the earliest: a timer per invocation cost the warm path 2-3 µs to make
        # and cancel, and the next deadline is almost never earlier than the armed one.
        self._deadlines: dict[str, float] = {}
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_armed = 0.0  # the deadline the timer is armed for
        self._timed_out: set[str] = set()
        # Invocations sent behind the one a serial instance runs, oldest first, with when each
        # was sent (time.monotonic): the first starts, and gets its deadline, when the
        # running one's result comes.
        self._behind: dict[str, tuple[InvocationRequest, float]] = {}
        self._out: list[bytes] = []  # frames written at the end of this turn of the loop
        self._killed_by_us = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.exit_status: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._closed = False
        # Not closed and not exited: an attribute, not a property, as the pool reads it
        # several times per invocation (kept by `connection_lost` and `exited`).
        self.alive = True
        self._exit_reported = False
        self._loop = asyncio.get_running_loop()

    # -- wiring -------------------------------------------------------------------------------

    def attach(self, transport: asyncio.Transport, pid: int) -> None:
        self._transport = transport
        self.pid = self.pid or pid

    def on_message(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "log":
            entry = self._pending.get(message.get("rid") or "")
            sink = entry[1] if entry else None
            if sink is not None:
                sink(message["stream"], message["text"])
            else:
                for line in message["text"].splitlines():
                    log.info(line, extra={"function_id": self.function_id, "instance": self.iid})
        elif op in ("result", "error"):
            rid = message["rid"]
            self._deadlines.pop(rid, None)
            entry = self._pending.pop(rid, None)
            if self._behind:
                self._start_next()
            if entry is not None and not entry[0].done():
                ok = op == "result"
                rss_kb = message.get("rss")
                entry[0].set_result(
                    InvocationResult(
                        ok,
                        message["result" if ok else "error"],
                        rss_kb // 1024 if isinstance(rss_kb, int) else None,
                        message.get("ms"),
                    )
                )
        elif op == "ready":
            self.init_ms = float(message.get("init_ms", 0.0))
            self.serial = message.get("serial") is True
            self.modules = list(message.get("modules", []))
            if not self.ready.done():
                self.ready.set_result(None)
        elif op == "init_error" and not self.ready.done():
            error = message["error"]
            failure = InitError(
                error["errorMessage"],
                function_id=self.function_id,
                error_type=error.get("errorType"),
            )
            failure.stack_trace = tuple(str(f) for f in error.get("stackTrace") or ())
            self.ready.set_exception(failure)

    def connection_lost(self) -> None:
        self._closed = True
        self.alive = False
        self._loop.create_task(self._fail_pending())

    def exited(self, status: int) -> None:
        """Called by the zygote watcher when the process has been reaped."""
        self.alive = False
        if not self.exit_status.done():
            self.exit_status.set_result(status)
        if self._transport is None:  # died before it connected
            self._closed = True
            self._loop.create_task(self._fail_pending())

    async def _fail_pending(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exit_status), 2.0)
        if self._transport is None and not self.ready.done():
            # Exited before the platform accepted its connection: it may have connected and
            # sent its init error just before exiting, with the connection still waiting to
            # be accepted. That error says more than "exited during init": give it a moment.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.ready), 1.0)
        status = self.exit_status.result() if self.exit_status.done() else None
        oom = self._oom_check() or (status == 137)
        reason = describe_exit(status)
        self._deadlines.clear()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        for rid, (fut, _) in list(self._pending.items()):
            if fut.done():
                continue
            if rid in self._behind:
                fut.set_exception(NotStarted(rid))
            elif rid in self._timed_out:
                fut.set_exception(
                    FunctionTimeout(
                        function_id=self.function_id, request_id=rid, timeout_s=self.timeout_s
                    )
                )
            elif oom:
                fut.set_exception(
                    FunctionOutOfMemory(
                        f"RequestId: {rid} Error: Runtime exited with error: {reason} "
                        f"(memory limit exceeded)",
                        function_id=self.function_id,
                        request_id=rid,
                    )
                )
            else:
                fut.set_exception(
                    FunctionCrashed(
                        f"RequestId: {rid} Error: Runtime exited with error: {reason}",
                        function_id=self.function_id,
                        request_id=rid,
                    )
                )
        self._pending.clear()
        self._behind.clear()
        if not self.ready.done():
            self.ready.set_exception(
                InitError(f"instance exited during init: {reason}", function_id=self.function_id)
            )
        if not self._exit_reported:
            self._exit_reported = True
            self._on_exit(self)

    # -- invoking -------------------------------------------------------------------------------
    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        if not self.alive or self._transport is None:
            raise FunctionCrashed(
                "instance is not running",
                function_id=self.function_id,
                request_id=request.request_id,
            )
        rid = request.request_id
        fut: asyncio.Future[InvocationResult] = self._loop.create_future()
        behind = self.serial and bool(self._pending)  # the pool sent it behind the running one
        self._pending[rid] = (fut, request.on_log)
        payload = request.payload
        message: dict[str, Any] = (
            {"op": "invoke", "rid": rid, "http": payload.call}  # the instance builds the event
            if type(payload) is ProxyEvent
            else {"op": "invoke", "rid": rid, "payload": payload}
        )
        if behind:
            # It starts when the running one ends, and its time limit counts from then: the
            # instance sets its deadline, and so does `_start_next` here.
            message["timeout_ms"] = int(self.timeout_s * 1000)
            self._behind[rid] = (request, time.monotonic())
        else:
            message["deadline_ms"] = int((time.time() + self.timeout_s) * 1000)
            due = self._loop.time() + self.timeout_s
            self._deadlines[rid] = due
            if self._deadline_timer is None:
                self._arm_deadline(due)
        if request.client_context:
            message["ctx"] = {"client_context": dict(request.client_context)}
        if request.traceparent:
            message["tp"] = request.traceparent
        out = self._out
        out.append(encode(message))
        if len(out) == 1:
            self._loop.call_soon(self._flush_out)
        return await fut

    def _flush_out(self) -> None:
        """Write the frames of this turn of the event loop: the pool gives one instance the
        invocations of a short function that start in one turn (`FunctionPool._may_batch`),
        and its process reads them in one wake-up instead of being woken for each."""
        out, self._out = self._out, []
        if self._transport is not None and out:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _start_next(self) -> None:
        """The running invocation ended: the first one sent behind it starts now."""
        rid = next(iter(self._behind))
        request, sent = self._behind.pop(rid)
        request.queued_ms = (time.monotonic() - sent) * 1000
        due = self._loop.time() + self.timeout_s
        self._deadlines[rid] = due
        if self._deadline_timer is None:
            self._arm_deadline(due)

    def _check_deadlines(self) -> None:
        """The armed deadline came: time out what is due, and watch for the next one."""
        self._deadline_timer = None
        now = self._loop.time()
        # What the timer was armed for is due, even if it fired a fraction early: the loop's
        # timers count milliseconds, as the per-invocation timers did.
        limit = max(now, self._deadline_armed)
        for rid in [rid for rid, due in self._deadlines.items() if due <= limit]:
            del self._deadlines[rid]
            self._time_out(rid)
        if self._deadlines and not self._closed:
            self._arm_deadline(min(self._deadlines.values()))

    def _arm_deadline(self, due: float) -> None:
        self._deadline_armed = due
        self._deadline_timer = self._loop.call_at(due, self._check_deadlines)

    def _time_out(self, rid: str) -> None:
        if rid in self._pending:
            log.warning(
                "invocation timed out; killing instance",
                extra={"function_id": self.function_id, "request_id": rid, "instance": self.iid},
            )
            self._timed_out.add(rid)
            self.kill()

    def kill(self) -> None:
        self._killed_by_us = True
        if self.pid and not self.exit_status.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def stop(self, grace_s: float = 2.0) -> None:
        if self._transport is not None and not self._closed:
            self._flush_out()  # what was sent before the stop arrives before it
            self._transport.write(encode({"op": "stop"}))
        try:
            await asyncio.wait_for(asyncio.shield(self.exit_status), grace_s)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exit_status), 2.0)
        if self._transport is not None:
            self._transport.close()

    @property
    def in_flight(self) -> int:
        return len(self._pending)
