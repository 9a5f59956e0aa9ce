"""One instance as the platform sees it on the Ray backend: a handle on its actor, the timeout
that kills the actor from outside, and the errors that turn a lost actor into a clear failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from lamina.errors import (
    FunctionCrashed,
    FunctionOutOfMemory,
    FunctionTimeout,
    InitError,
    InvocationError,
)
from lamina.executor.local.instance import describe_exit
from lamina.executor.types import FunctionConfig, InvocationRequest, InvocationResult, LogSink

__all__ = ["RayInstance", "init_error"]

log = logging.getLogger(__name__)

_DRAIN_S = 5.0  # how long an exited instance's failed invocations may take to hear why
_SIGKILL_STATUS = -9  # what a timed-out instance's siblings are told, as on the local backend
_CRASHES: dict[str, type[FunctionCrashed]] = {
    "FunctionCrashed": FunctionCrashed,
    "FunctionOutOfMemory": FunctionOutOfMemory,
}


def init_error(fields: Mapping[str, Any], function_id: str) -> InitError:
    """The InitError an actor reported (see `actor.error_fields`)."""
    error = InitError(fields["message"], function_id=function_id, error_type=fields["error_type"])
    error.stack_trace = tuple(fields["stack_trace"])
    return error


class RayInstance:
    """An instance hosted by a Ray actor (`actor.InstanceHost`)."""

    def __init__(
        self,
        iid: str,
        fn: FunctionConfig,
        actor: Any,
        on_exit: Callable[[RayInstance], None],
    ) -> None:
        import ray

        self._ray = ray
        self.iid = iid
        self.function_id = fn.id
        self.timeout_s = fn.timeout_s
        self.pid = 0
        self.init_ms = 0.0
        self.serial = False  # a Ray actor call at a time: nothing is sent behind another
        self.node: Mapping[str, str] | None = None
        self._actor = actor
        self._on_exit = on_exit
        self._dead = False  # takes no more invocations
        self._exit_reported = False
        self._ended_why: str | None = None  # why its actor is gone, for invocations it took
        self._watch: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()  # no invocation in flight
        self._drained.set()
        self.in_flight = 0

    def started(self, info: Mapping[str, Any]) -> None:
        """The actor's instance has run its init: remember where, and watch for its exit."""
        self.pid = int(info["pid"])
        self.init_ms = float(info["init_ms"])
        self.node = {"node_id": str(info["node_id"]), "node_ip": str(info["node_ip"])}
        self._watch = asyncio.get_running_loop().create_task(self._watch_exit())

    @property
    def alive(self) -> bool:
        return not self._dead

    async def _watch_exit(self) -> None:
        """Once the instance process has exited, let the invocations it failed receive their
        errors (a crash's reason, not a lost actor's), then kill the actor."""
        try:
            await self._actor.exited.remote()
        except self._ray.exceptions.RayError as exc:  # the actor, or its node, is lost
            self._ended_why = self._ended_why or _lost(exc)
            self._gone()
            return
        self._ended()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), _DRAIN_S)
        self.kill()

    def _ended(self) -> None:
        """The instance process is over: take no more invocations, tell the pool once."""
        self._dead = True
        if not self._exit_reported:
            self._exit_reported = True
            self._on_exit(self)

    def _gone(self) -> None:
        """The instance is over and its actor must go at once (a timeout, a stop, a lost node)."""
        self._ended()
        self.kill()

    def kill(self) -> None:
        """Kill the actor from outside (its worker, zygote and instance processes with it)."""
        self._ended_why = self._ended_why or describe_exit(_SIGKILL_STATUS)
        with contextlib.suppress(Exception):  # already dead, or Ray itself is gone
            self._ray.kill(self._actor, no_restart=True)

    # -- invoking -------------------------------------------------------------------------------
    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        rid = request.request_id
        if self._dead:
            raise FunctionCrashed(
                "instance is not running", function_id=self.function_id, request_id=rid
            )
        payload, raw = request.payload, isinstance(request.payload, orjson.Fragment)
        message = {
            "request_id": rid,
            "payload": orjson.dumps(payload) if raw else payload,  # a Fragment: its bytes
            "client_context": dict(request.client_context) if request.client_context else None,
            "trigger": request.trigger,
            "traceparent": request.traceparent,
        }
        self.in_flight += 1
        self._drained.clear()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._run(message, raw, request.on_log)
        except TimeoutError:
            log.warning(
                "invocation timed out; killing instance",
                extra={"function_id": self.function_id, "request_id": rid, "instance": self.iid},
            )
            self._gone()
            raise FunctionTimeout(
                function_id=self.function_id, request_id=rid, timeout_s=self.timeout_s
            ) from None
        except self._ray.exceptions.RayError as exc:
            reason = self._ended_why or _lost(exc)
            self._gone()
            raise FunctionCrashed(
                f"RequestId: {rid} Error: Runtime exited with error: {reason}",
                function_id=self.function_id,
                request_id=rid,
            ) from None
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._drained.set()

    async def _run(
        self, message: dict[str, Any], raw: bool, sink: LogSink | None
    ) -> InvocationResult:
        stream = self._actor.invoke.options(num_returns="streaming").remote(message, raw)
        async for ref in stream:
            item = await ref
            if "log" in item:
                self._output(item["log"], sink)
            elif "result" in item:
                result = item["result"]
                return InvocationResult(result["ok"], result["value"], result["mb"])
            else:
                raise self._error(item["error"], message["request_id"])
        raise FunctionCrashed(
            "the instance ended the invocation without a result",
            function_id=self.function_id,
            request_id=message["request_id"],
        )

    def _output(self, lines: list[list[str]], sink: LogSink | None) -> None:
        for stream, text in lines:
            if sink is not None:
                sink(stream, text)
            else:
                for line in text.splitlines():
                    log.info(line, extra={"function_id": self.function_id, "instance": self.iid})

    def output(self, lines: list[str]) -> None:
        """Lines the instance wrote outside any invocation (its init), as the local backend
        logs them."""
        self._output([["stdout", line] for line in lines], None)

    def _error(self, fields: Mapping[str, Any], rid: str) -> InvocationError:
        """The error the actor reported; one that ended the instance process ends this instance
        (the exit watcher then kills the actor)."""
        kind = fields["kind"]
        if kind == "FunctionTimeout":  # the actor's own timer fired first
            self._ended()
            return FunctionTimeout(
                function_id=self.function_id, request_id=rid, timeout_s=self.timeout_s
            )
        crash = _CRASHES.get(kind)
        if crash is not None:
            self._ended()
            return crash(fields["message"], function_id=self.function_id, request_id=rid)
        return InvocationError(
            fields["message"],
            function_id=self.function_id,
            request_id=rid,
            error_type=fields["error_type"],
        )

    async def stop(self, grace_s: float = 2.0) -> None:
        if not self._dead:
            with contextlib.suppress(TimeoutError, self._ray.exceptions.RayError):
                await asyncio.wait_for(self._actor.stop.remote(grace_s), grace_s + 2.0)
        self._gone()
        if self._watch is not None:
            self._watch.cancel()


def _lost(exc: BaseException) -> str:
    """Why the instance is gone when Ray lost its actor (its node died, or Ray killed it)."""
    return f"its Ray actor died ({type(exc).__name__})"
