"""What the invoker sees of an executor backend: the `ExecutorBackend` and `Instance` seams."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "INIT_TIMEOUT_S",
    "ExecutorBackend",
    "FunctionConfig",
    "Instance",
    "InvocationRequest",
    "InvocationResult",
    "LogSink",
    "NotStarted",
]

INIT_TIMEOUT_S = 10.0  # AWS Lambda's limit for the init phase (importing the handler module)

LogSink = Callable[[str, str], None]  # (stream "stdout" | "stderr", text ending in "\n")


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """Everything a backend needs to run one function's instances."""

    id: str  # "service.function"
    handler: str  # "module.attr"
    service_path: str  # absolute code folder; on sys.path and the working directory
    memory_mb: int
    timeout_s: float
    concurrency: int  # invocations at once per instance
    env: Mapping[str, str] = field(
        default_factory=dict
    )  # Lambda variables + service + function env
    preload: tuple[str, ...] = ()  # modules the zygote imports before forking
    revision: int = 0  # bumped by each hot reload; each revision forks from its own zygote
    venv: str | None = None  # the service's virtual environment, whose python runs the zygote;
    # None: the platform's own interpreter and site-packages
    version: str = "$LATEST"  # the deployed version it runs ("7"), "$LATEST" before any deploy
    cpu: float | None = None  # CPUs an instance reserves (ray backend); None: the backend's default
    requirements: str | None = None  # the service's requirements file, which `venv` is built from


@dataclass(slots=True)  # not frozen: built on every request, frozen __init__ is slower
class InvocationRequest:
    request_id: str
    # JSON-ready value (an orjson.Fragment for raw JSON bytes), or a gateway.events.ProxyEvent:
    # an API Gateway event the instance builds from its request
    payload: Any
    client_context: Mapping[str, Any] | None = None
    on_log: LogSink | None = None
    trigger: str = "invoke"  # what caused it: http, invoke, event, queue, topic, schedule
    # W3C traceparent of the caller (None or invalid: the invocation starts a trace). The pool
    # replaces it with the invocation's own context (same trace, its span id as parent-id),
    # which the instance passes on to what the function calls.
    traceparent: str | None = None
    # Milliseconds it waited inside the instance, sent behind another invocation, before it
    # started (set by the executor; 0 when it started as it arrived). Not part of its
    # duration: records and billing count from its start.
    queued_ms: float = 0.0


@dataclass(slots=True)  # not frozen: built on every request, frozen __init__ is slower
class InvocationResult:
    """A completed invocation: the handler's return value, or its error body as AWS shapes it."""

    ok: bool
    value: Any  # the result when ok, else {"errorMessage", "errorType", "stackTrace", ...}
    max_memory_mb: int | None = None  # the instance's peak resident memory, when it reported it
    run_ms: float | None = None  # how long the handler ran, as the instance measured it


class NotStarted(Exception):
    """The instance was gone before it started this invocation, which was sent behind another
    (see `Instance.serial`): nothing of it ran, and it may run on another instance."""


class Instance(Protocol):
    iid: str
    pid: int
    function_id: str
    init_ms: float
    # Whether it runs invocations one at a time in the order they were sent, so that the pool
    # may send one behind the invocation it is running (it starts as soon as that one ends,
    # without a round trip through the platform). When the instance dies, the one running
    # fails and those behind it raise NotStarted.
    serial: bool

    @property
    def node(self) -> Mapping[str, str] | None:
        """Where it runs, for /status: None on this machine, {"node_id", "node_ip"} on Ray."""
        ...

    @property
    def alive(self) -> bool: ...

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        """Run one invocation. Raises FunctionTimeout, FunctionCrashed or FunctionOutOfMemory."""
        ...

    async def stop(self, grace_s: float = 2.0) -> None:
        """Let in-flight invocations finish within `grace_s`, then make sure the process is gone."""
        ...


class ExecutorBackend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop every instance and zygote; nothing of this backend keeps running after it."""
        ...

    async def prepare(self, fn: FunctionConfig) -> None:
        """Get ready to start `fn`'s instances quickly (the local backend starts its zygote)."""
        ...

    async def start_instance(
        self, fn: FunctionConfig, on_exit: Callable[[Instance], None]
    ) -> Instance:
        """Start an instance and run its init; raises InitError when the handler cannot load.

        `on_exit` is called once when the instance's process is gone, for whatever reason.
        """
        ...

    def release(self, fn: FunctionConfig) -> None:
        """No more instances of `fn` (this id and revision) will start: free what `prepare`
        made for it (the local backend stops its zygote once its last instance has exited)."""
        ...
