"""What runs inside each instance's Ray actor, on whichever node Ray placed it.

The actor hosts one instance through a `LocalBackend` of its own: a zygote forks the instance
process in the actor's working directory (the service's code, unpacked from its runtime
environment), so the handler runs the same runtime code as on the local backend. The kernel of
the actor's node enforces the function's memory (cgroup or RLIMIT_AS), and the instance's exit
status is known, so crash and out-of-memory errors read as on one machine.

Each invocation is an async generator: batches of output lines as the handler writes them, then
one final item, its result or the error that ended it. Everything crossing to the platform is
plain data (dicts, lists, strings), never a Lamina exception object.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from lamina.errors import InitError, InvocationError, RequirementsError
from lamina.executor.local import LocalBackend
from lamina.executor.ray.venv import node_venv
from lamina.executor.types import FunctionConfig, Instance, InvocationRequest

__all__ = ["InstanceHost"]

_INSTANCE_LOG = "lamina.executor.local.instance"  # where output outside an invocation goes


class _Lines(logging.Handler):
    """Collects the output lines the instance wrote outside any invocation (its init)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def error_fields(exc: InvocationError) -> dict[str, Any]:
    """An invocation error as plain data; `RayInstance` raises the same class from it."""
    return {
        "kind": type(exc).__name__,
        "message": exc.message,
        "error_type": exc.error_type,
        "stack_trace": list(getattr(exc, "stack_trace", ())),
    }


class InstanceHost:
    """The actor class (`ray.remote` is applied by the backend, so this module needs no Ray)."""

    def __init__(self) -> None:
        self._backend: LocalBackend | None = None
        self._instance: Instance | None = None
        self._exit: asyncio.Future[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    async def start(self, fields: dict[str, Any], cgroups: bool) -> dict[str, Any]:
        """Start the instance and run its init; where it runs, or the init's error."""
        import ray

        here = os.getcwd()  # the service's code, unpacked by Ray from the runtime environment
        fn = FunctionConfig(
            **{**fields, "service_path": here, "env": {**fields["env"], "LAMBDA_TASK_ROOT": here}}
        )
        if fn.requirements is not None:  # relative to the code: the service's own venv
            service = fn.id.split(".", 1)[0]
            try:
                venv = await node_venv(service, Path(here), fn.requirements, fn.venv)
            except RequirementsError as exc:
                error = InitError(
                    f"{exc} (on Ray node {ray.util.get_node_ip_address()})",  # type: ignore[no-untyped-call]
                    function_id=fn.id,
                    error_type="Runtime.RequirementsError",
                )
                return {"init_error": error_fields(error), "output": []}
            fn = replace(fn, venv=str(venv))
        self._exit = asyncio.get_running_loop().create_future()
        # One instance per actor, started once: a spare would never be used.
        self._backend = LocalBackend(cgroups=cgroups, spare=False)
        await self._backend.start()
        output = _Lines()
        logger = logging.getLogger(_INSTANCE_LOG)
        logger.addHandler(output)
        logger.setLevel(logging.INFO)
        try:
            self._instance = await self._backend.start_instance(fn, self._exited)
            # Calls overlap on an actor only when one was abandoned: the platform's pool
            # never sends behind a Ray instance, so neither does the actor.
            self._instance.serial = False
        except InitError as exc:
            return {"init_error": error_fields(exc), "output": output.lines}
        finally:
            logger.removeHandler(output)
        context = ray.get_runtime_context()
        return {
            "pid": self._instance.pid,
            "init_ms": self._instance.init_ms,
            "node_id": context.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "output": output.lines,
        }

    def _exited(self, instance: Instance) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(None)
        if self._backend is not None:  # its zygote and socket folder go before Ray kills us
            self._closing = asyncio.get_running_loop().create_task(self._backend.close())

    async def exited(self) -> None:
        """Returns once the instance process has exited (the platform then kills the actor)."""
        assert self._exit is not None
        await self._exit

    async def invoke(
        self, request: dict[str, Any], raw_payload: bool
    ) -> AsyncIterator[dict[str, Any]]:
        """Run one invocation: yields {"log": [[stream, text], ...]} batches, then
        {"result": {"ok", "value", "mb"}} or {"error": error_fields}."""
        assert self._instance is not None
        lines: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        if raw_payload:  # raw JSON bytes, passed on to the instance without parsing
            request["payload"] = orjson.Fragment(request["payload"])
        call = asyncio.ensure_future(
            self._instance.invoke(
                InvocationRequest(
                    **request, on_log=lambda stream, text: lines.put_nowait((stream, text))
                )
            )
        )
        call.add_done_callback(lambda _: lines.put_nowait(None))
        finished = False
        while not finished:
            batch = [await lines.get()]
            while not lines.empty():
                batch.append(lines.get_nowait())
            finished = batch[-1] is None
            output = [list(line) for line in batch if line is not None]
            if output:
                yield {"log": output}
        try:
            result = call.result()
        except InvocationError as exc:
            yield {"error": error_fields(exc)}
            return
        yield {"result": {"ok": result.ok, "value": result.value, "mb": result.max_memory_mb}}

    async def stop(self, grace_s: float) -> None:
        """Let in-flight invocations finish within `grace_s`, then stop the instance."""
        if self._instance is not None:
            await self._instance.stop(grace_s)
        if self._closing is not None:  # the instance has exited: `_exited` closes the backend
            await self._closing
        elif self._backend is not None:
            await self._backend.close()
