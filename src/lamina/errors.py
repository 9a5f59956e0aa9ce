"""The Lamina error tree. Every error Lamina raises derives from `LaminaError`.

    LaminaError
    ├── ManifestError            lamina.yaml (or a flag) is invalid; names file, key path, line
    ├── InvocationError          an invocation did not produce a result
    │   ├── FunctionNotFound     no function has that id
    │   ├── Throttled            no instance became free within the queue bound or wait time
    │   ├── FunctionTimeout      the handler ran past its timeout; the instance was killed
    │   ├── FunctionCrashed      the instance died (exit, signal) while running the invocation
    │   ├── FunctionOutOfMemory  the instance went past its memory limit and was killed
    │   ├── InitError            the handler module failed to import or has no such handler
    │   └── MalformedResult      the handler returned something that cannot be serialized
    ├── PlatformError            Lamina itself failed (instance could not start, shutting down)
    │   ├── ShuttingDown         the platform stopped accepting work
    │   └── RequirementsError    a service's requirements could not be installed
    ├── ClientError              a CLI/SDK call could not reach or was refused by a platform
    ├── DeployError              a deploy, alias change or rollback was refused
    │   └── BundleRejected       an uploaded app bundle is too large or unsafe to unpack
    ├── EventError               an event (queue message, topic message) was refused
    │   ├── QueueNotFound        no `queue` trigger names that queue
    │   ├── TopicNotFound        no `topic` trigger names that topic
    │   ├── PayloadTooLarge      a message body is over the 1 MiB limit
    │   └── InvalidMessage       a message's attributes or delay are not acceptable
    ├── StoreError               the store URL is invalid or the store refused an operation
    │   ├── StoreUnavailable     the database cannot be reached or failed (disk, network, server)
    │   └── DuplicateMessage     a message id already exists in the target queue
    └── TableError               a service table call was refused (bad key, item or argument)
        ├── TableNotFound        the function's service has no table of that name
        └── ConditionFailed      a conditional write (`if_absent`, `if_exists`) did not hold

Function errors raised by user code are not Lamina errors: they come back as results with
`errorType`/`errorMessage`, exactly as on AWS Lambda.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BundleRejected",
    "ClientError",
    "ConditionFailed",
    "DeployError",
    "DuplicateMessage",
    "EventError",
    "FunctionCrashed",
    "FunctionNotFound",
    "FunctionOutOfMemory",
    "FunctionTimeout",
    "InitError",
    "InvalidMessage",
    "InvocationError",
    "LaminaError",
    "MalformedResult",
    "ManifestError",
    "PayloadTooLarge",
    "PlatformError",
    "QueueNotFound",
    "RequirementsError",
    "ShuttingDown",
    "StoreError",
    "StoreUnavailable",
    "TableError",
    "TableNotFound",
    "Throttled",
    "TopicNotFound",
]


class LaminaError(Exception):
    """Root of every error Lamina raises."""


class ManifestError(LaminaError):
    """Raised when lamina.yaml is missing or invalid; carries file, key path and line."""

    def __init__(
        self, message: str, *, file: str = "lamina.yaml", path: str = "", line: int | None = None
    ) -> None:
        self.file = file
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvocationError(LaminaError):
    """Raised when an invocation of `function_id` did not produce a result."""

    error_type = "Lamina.InvocationError"

    def __init__(
        self, message: str, *, function_id: str, request_id: str = "", error_type: str | None = None
    ) -> None:
        self.function_id = function_id
        self.request_id = request_id
        self.message = message
        self.version: str | None = None  # the version that ran, once the invoker knows it
        if error_type:
            self.error_type = error_type
        super().__init__(message)

    def __str__(self) -> str:
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.function_id}{rid}: {self.message}"


class FunctionNotFound(InvocationError):
    """Raised when no function has the requested id."""

    error_type = "ResourceNotFoundException"


class Throttled(InvocationError):
    """Raised when every instance is busy, max_instances is reached and the wait ran out."""

    error_type = "TooManyRequestsException"


class FunctionTimeout(InvocationError):
    """Raised when a handler runs past its timeout; its instance has been killed."""

    error_type = "Sandbox.Timedout"

    def __init__(self, *, function_id: str, request_id: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            f"Task timed out after {timeout_s:.2f} seconds",
            function_id=function_id,
            request_id=request_id,
        )


class FunctionCrashed(InvocationError):
    """Raised when an instance process died while it was running the invocation."""

    error_type = "Runtime.ExitError"


class FunctionOutOfMemory(FunctionCrashed):
    """Raised when an instance went past its memory limit and was killed."""

    error_type = "Runtime.OutOfMemory"


class InitError(InvocationError):
    """Raised when the handler's module cannot be imported or lacks the handler attribute."""

    error_type = "Runtime.ImportModuleError"
    stack_trace: tuple[str, ...] = ()  # the init's traceback frames, as the instance sent them


class MalformedResult(InvocationError):
    """Raised when a handler returns a value that cannot be serialized as JSON."""

    error_type = "Runtime.MarshalError"


class PlatformError(LaminaError):
    """Raised when Lamina itself fails, not the function."""


class ShuttingDown(PlatformError):
    """Raised for new work that arrives after the platform began to drain."""


class RequirementsError(PlatformError):
    """Raised when a service's virtual environment cannot be built from its requirements
    file; carries the service, the file and the installer's own output."""

    def __init__(self, service: str, requirements: str, problem: str, output: str = "") -> None:
        self.service = service
        self.requirements = requirements  # the file as shown to people (relative to the app)
        self.problem = problem  # e.g. "uv exited with status 1"
        self.output = output  # the installer's output (its last lines)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"service {self.service}: cannot install {self.requirements}: {self.problem}"
        return f"{text}\n{self.output}" if self.output else text


class ClientError(LaminaError):
    """Raised when a client call cannot reach a platform or is refused by it."""


class DeployError(LaminaError):
    """Raised when a deploy, alias change or rollback is refused; nothing was changed.
    `missing`: what it names (a version, an alias) does not exist; `failed_to_load`: a new
    version's code raised while importing."""

    def __init__(
        self, message: str, *, missing: bool = False, failed_to_load: bool = False
    ) -> None:
        self.missing = missing
        self.failed_to_load = failed_to_load
        super().__init__(message)


class BundleRejected(DeployError):
    """Raised for an app bundle that is too large (`too_large`) or unsafe: a member with an
    absolute path, a `..` component, or a link leading outside the bundle (`member`)."""

    def __init__(self, message: str, *, member: str = "", too_large: bool = False) -> None:
        self.member = member
        self.too_large = too_large
        super().__init__(f"bundle member {member!r}: {message}" if member else message)


class EventError(LaminaError):
    """Raised when an event is refused before it is stored; nothing was enqueued."""


class QueueNotFound(EventError):
    """Raised when a message is sent to a queue that no `queue` trigger names."""

    def __init__(self, queue: str, known: Sequence[str]) -> None:
        self.queue = queue
        self.known = tuple(known)
        shown = ", ".join(repr(k) for k in self.known) or "none"
        super().__init__(
            f"no queue named {queue!r}; queues (from `queue` triggers in lamina.yaml): {shown}"
        )


class TopicNotFound(EventError):
    """Raised when a message is published to a topic that no `topic` trigger names."""

    def __init__(self, topic: str, known: Sequence[str]) -> None:
        self.topic = topic
        self.known = tuple(known)
        shown = ", ".join(repr(k) for k in self.known) or "none"
        super().__init__(
            f"no topic named {topic!r}; topics (from `topic` triggers in lamina.yaml): {shown}"
        )


class PayloadTooLarge(EventError):
    """Raised when a message body is larger than the limit (1 MiB, as SQS and async Lambda)."""

    def __init__(self, *, what: str, size: int, limit: int) -> None:
        self.what = what  # e.g. "queue 'jobs' message"
        self.size = size  # bytes, UTF-8
        self.limit = limit  # bytes
        super().__init__(f"{what} is {size} bytes; the limit is {limit} bytes")


class InvalidMessage(EventError):
    """Raised when a message's attributes or delay are not acceptable; says which and why."""


class StoreError(LaminaError):
    """Raised when a store URL is invalid or the store refuses an operation; names the store."""

    def __init__(self, message: str, *, url: str = "") -> None:
        self.url = url  # the store URL with any password removed
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"store {self.url}: {self.message}" if self.url else f"store: {self.message}"


class StoreUnavailable(StoreError):
    """Raised when the database cannot be reached or fails (file, disk, network, server)."""


class DuplicateMessage(StoreError):
    """Raised when an enqueued or moved message's id already exists in the target queue."""

    def __init__(self, *, url: str, queue: str, message_id: str) -> None:
        self.queue = queue
        self.message_id = message_id
        super().__init__(f"message {message_id!r} already exists in queue {queue!r}", url=url)


class TableError(LaminaError):
    """Raised when a service table call is refused: a bad key, item, argument or cursor. The
    message names the table and what was wrong; nothing was written."""

    def __init__(self, table: str, message: str) -> None:
        self.table = table
        self.message = message
        super().__init__(f"table {table!r}: {message}")


class TableNotFound(TableError):
    """Raised when function code names a table its own service does not declare (a function
    reaches only its own service's tables); names the service and the tables it has."""

    def __init__(self, table: str, *, service: str, known: Sequence[str], owner: str = "") -> None:
        self.service = service
        self.known = tuple(known)
        self.owner = owner  # the service that declares a table of that name, if any
        shown = ", ".join(repr(k) for k in self.known) or "none"
        why = (
            f"it belongs to service {owner!r}, and a function can use only its own service's"
            " tables (services share data through invocations, queues and topics)"
            if owner
            else "no service in lamina.yaml declares it"
        )
        super().__init__(
            table, f"service {service!r} has no such table: {why}; its tables: {shown}"
        )


class ConditionFailed(TableError):
    """Raised when a conditional write did not hold: `put(if_absent=True)` found a live item,
    `update(if_exists=True)` found none. Nothing was written."""

    def __init__(self, table: str, key: object, condition: str) -> None:
        self.key = key
        self.condition = condition  # "if_absent" or "if_exists"
        what = "already exists" if condition == "if_absent" else "does not exist"
        super().__init__(table, f"condition {condition} failed: an item with key {key!r} {what}")
