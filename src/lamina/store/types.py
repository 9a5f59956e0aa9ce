"""The `Store` seam: the only way Lamina touches a database.

Queues are named strings; the events component uses them for async invocations
(`async:<function_id>`), queue triggers (`queue:<name>`), topic subscriptions
(`sub:<topic>:<function_id>`) and dead letters (`dlq:<source>`). Every call takes the time
from the caller (`now_ms`, epoch milliseconds from an injected clock) so that leases and
delays are tested without waiting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AliasRecord",
    "ApiKey",
    "ApiKeyStore",
    "ControlPlane",
    "DeployRecord",
    "FunctionUsage",
    "FunctionVersion",
    "InvocationRecord",
    "InvocationRow",
    "LogLine",
    "Message",
    "NewMessage",
    "PackedRows",
    "PlaneStore",
    "QueueStats",
    "StatsRow",
    "Store",
    "TelemetryStore",
    "TelemetryTable",
    "VersionStore",
    "invocation_from_row",
    "invocation_row",
    "storable_text",
]


@dataclass(frozen=True, slots=True)
class NewMessage:
    queue: str
    body: bytes  # the payload, usually JSON; at most 1 MiB is accepted by the events layer
    attributes: Mapping[str, Any] = field(default_factory=dict)  # JSON-serializable metadata
    delay_ms: int = 0  # invisible for this long after enqueue
    message_id: str | None = None  # None: the store assigns a UUID


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    queue: str
    body: bytes
    attributes: Mapping[str, Any]
    created_ms: int  # when it was enqueued (epoch ms)
    receive_count: int  # how many times it has been claimed, this claim included
    first_received_ms: int | None  # when it was first claimed
    lease_token: str | None  # proves the current claim; None when not claimed
    visible_ms: int  # when it becomes (or became) claimable
    last_error: Mapping[str, Any] | None  # what the last failed attempt recorded


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    depth: int  # messages in the queue, claimed or not
    visible: int  # claimable now
    oldest_created_ms: int | None


@dataclass(slots=True)  # not frozen: one is built per invocation, frozen __init__ is slower
class InvocationRecord:
    """One invocation, whatever its trigger, as `lamina invocations` shows it."""

    request_id: str
    function_id: str
    trigger: str  # "http" | "invoke" | "event" | "queue" | "topic" | "schedule"
    start_ms: int  # epoch ms when the invocation started
    duration_ms: float  # handler run time as the platform measured it
    billed_ms: int  # duration rounded up to 1 ms
    init_ms: float | None  # the instance's init duration on a cold start, else None
    cold: bool
    memory_mb: int  # configured memory
    max_memory_mb: int | None  # the instance's peak resident memory, when known
    status: str  # "ok" | "error" | "timeout" | "crashed" | "out_of_memory" | "throttled" | ...
    error_type: str | None = None
    instance_id: str | None = None
    trace_id: str | None = None  # W3C trace id, 32 lower-case hex digits
    span_id: str | None = None  # this invocation's span, 16 lower-case hex digits
    parent_span_id: str | None = None  # the caller's span; None when it started the trace
    version: str | None = None  # the function version that ran: "$LATEST" or "7" (deploys)
    # Assigned by the store: the insertion order, with start_ms the cursor that pages through
    # records without skipping any that started in the same millisecond. Not part of equality.
    seq: int = field(default=0, compare=False)


# An invocation record as the recorder buffers it and the store inserts it: a plain tuple in
# the store's column order (request_id, function_id, trigger, start_ms, duration_ms, billed_ms,
# init_ms, cold, memory_mb, max_memory_mb, status, error_type, instance_id, trace_id, span_id,
# parent_span_id, version). The warm path builds one per invocation and holds it until the
# flush: a tuple of strings and numbers costs a third of the record's `__init__`, needs no
# conversion before the insert, and the collector stops tracking it after its first pass.
InvocationRow = tuple[Any, ...]
# Rows packed by a store for its own insert (`TelemetryStore.pack_rows`): opaque to everyone
# else.
PackedRows = Any
# The tables the recorder fills: `InvocationRow`s, and log rows (time_ms, function_id,
# request_id, instance_id, stream, level, message) with storable text (`storable_text`).
TelemetryTable = Literal["invocations", "logs"]


def storable_text(text: str) -> str:
    """`text` as both backends can store it: NUL characters (which PostgreSQL text refuses and
    SQLite's JSON functions cut at) and lone surrogates (which UTF-8 cannot encode) become
    U+FFFD, as undecodable bytes do. ASCII text without NUL is kept as it is: the recorder
    relies on that to build plain log lines' rows without calling this (`_NOT_PLAIN`)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = text.encode(errors="surrogatepass").decode(errors="replace")
    return text


def invocation_row(r: InvocationRecord) -> InvocationRow:
    """`r` as an `InvocationRow`."""
    return (
        r.request_id,
        r.function_id,
        r.trigger,
        r.start_ms,
        float(r.duration_ms),
        r.billed_ms,
        None if r.init_ms is None else float(r.init_ms),
        bool(r.cold),
        r.memory_mb,
        r.max_memory_mb,
        r.status,
        r.error_type,
        r.instance_id,
        r.trace_id,
        r.span_id,
        r.parent_span_id,
        r.version,
    )


def invocation_from_row(row: Sequence[Any]) -> InvocationRecord:
    """Build an `InvocationRecord` from an `InvocationRow`, or a selected row (an 18th column is
    `seq`; SQLite's 0/1 `cold` becomes a bool)."""
    return InvocationRecord(
        request_id=row[0],
        function_id=row[1],
        trigger=row[2],
        start_ms=row[3],
        duration_ms=float(row[4]),
        billed_ms=row[5],
        init_ms=None if row[6] is None else float(row[6]),
        cold=bool(row[7]),
        memory_mb=row[8],
        max_memory_mb=row[9],
        status=row[10],
        error_type=row[11],
        instance_id=row[12],
        trace_id=row[13],
        span_id=row[14],
        parent_span_id=row[15],
        version=row[16],
        seq=row[17] if len(row) > 17 else 0,
    )


@dataclass(frozen=True, slots=True)
class StatsRow:
    """How many invocations of one function started in one time bucket with a duration in one
    bin: a row of `TelemetryStore.invocation_stats` (the dashboard's charts)."""

    function_id: str
    bucket_ms: int  # the bucket's start: epoch ms, a multiple of the step
    bin: int  # duration bin: i when bounds[i-1] < duration_ms <= bounds[i]; len(bounds) above
    # the last bound; -1 for throttled invocations (they never ran)
    requests: int
    errors: int  # status neither "ok" nor "throttled"
    throttles: int
    cold_starts: int


@dataclass(slots=True)  # not frozen: one is built per line a function writes (see InvocationRecord)
class LogLine:
    """One line a function wrote (or a START / END / REPORT line), as `lamina logs` shows it."""

    time_ms: int
    function_id: str
    request_id: str | None
    instance_id: str | None
    stream: str  # "stdout" | "stderr" | "platform" (START / END / REPORT lines)
    level: str  # "INFO", "ERROR", ... ; "INFO" when the line says nothing
    message: str
    seq: int = 0  # assigned by the store: increases with every stored line (for --follow)


@dataclass(frozen=True, slots=True)
class FunctionUsage:
    """What one function used in a time window, as metering needs it (throttles excluded)."""

    function_id: str
    requests: int  # invocations that ran (every status but "throttled")
    billed_mb_ms: int  # sum of billed_ms x memory_mb over those invocations
    memory_mb: int  # the largest configured memory among them
    peak_concurrency: int  # the most of them running at one moment (>= 1)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A gateway API key as stored: never the key itself, only its SHA-256 (hex)."""

    id: str  # public id, e.g. "key_3f9c..."; what `lamina keys revoke` takes
    name: str  # who or what it is for
    key_hash: str  # sha256 of the key, 64 lower-case hex digits
    rate: float | None  # usage plan: requests per second (token bucket), None for no limit
    burst: int | None  # usage plan: bucket size; None with rate None
    quota_per_day: int | None  # usage plan: requests per UTC day, None for no quota
    created_ms: int  # epoch ms
    revoked_ms: int | None = None  # epoch ms of the revocation; None while valid


class ApiKeyStore(Protocol):
    """Gateway API keys and their daily usage; every `Store` backend implements it."""

    async def add_api_key(self, key: ApiKey) -> None:
        """Insert a new key (its id and hash are new)."""
        ...

    async def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def revoke_api_key(self, key_id: str, *, now_ms: int) -> bool:
        """Mark a key revoked; False when there is no such key or it is already revoked."""
        ...

    async def add_api_key_usage(self, day: str, counts: Mapping[str, int]) -> None:
        """Add `counts` (key id -> requests) to the usage of UTC day `day` (YYYY-MM-DD)."""
        ...

    async def api_key_usage(self, day: str) -> dict[str, int]:
        """Requests per key id on UTC day `day`, as added so far."""
        ...


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    """One immutable version of a function, made by a deploy that changed its code or config."""

    function_id: str
    version: int  # 1, 2, 3... per function
    code_hash: str  # SHA-256 of its service's files in the bundle
    config_hash: str  # SHA-256 of its spec (limits, handler, env, triggers)
    bundle: str  # SHA-256 of the bundle it came from (its content address)
    spec: str  # the function's spec as JSON, its code folder relative to the bundle's root
    created_ms: int


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """A named pointer at a function version, optionally splitting traffic with a canary."""

    function_id: str
    name: str  # "live", "beta", ...
    version: int
    canary_version: int | None = None  # gets `canary_weight` percent of the traffic
    canary_weight: int = 0  # percent, 0..100
    previous_version: int | None = None  # where `version` pointed before (what rollback restores)
    updated_ms: int = 0


@dataclass(frozen=True, slots=True)
class DeployRecord:
    id: int
    bundle: str  # the bundle's SHA-256
    app: str
    created_ms: int


class VersionStore(Protocol):
    """Deploys, function versions and aliases; every `Store` backend implements it."""

    async def add_deploy(
        self,
        *,
        bundle: str,
        app: str,
        versions: Sequence[FunctionVersion],
        aliases: Sequence[AliasRecord],
        now_ms: int,
    ) -> int:
        """In one transaction: insert the new versions, set the aliases and record the deploy;
        returns the deploy's id. A version that exists already fails it all (StoreError)."""
        ...

    async def last_deploy(self) -> DeployRecord | None:
        """The newest deploy, or None before the first."""
        ...

    async def recent_deploys(self, limit: int) -> list[DeployRecord]:
        """The newest `limit` deploys, newest first."""
        ...

    async def function_versions(self, function_id: str | None = None) -> list[FunctionVersion]:
        """Versions of one function (or all), by function id and then version."""
        ...

    async def aliases(self, function_id: str | None = None) -> list[AliasRecord]:
        """Aliases of one function (or all), by function id and then name."""
        ...

    async def set_alias(self, alias: AliasRecord) -> None:
        """Create or replace the alias `(alias.function_id, alias.name)`."""
        ...

    async def delete_alias(self, function_id: str, name: str) -> bool:
        """Remove an alias; False when there was none."""
        ...


class TelemetryStore(Protocol):
    """What observability keeps in the store; every `Store` backend implements it too."""

    async def add_invocations(self, records: Sequence[InvocationRecord]) -> None:
        """Insert records in one transaction."""
        ...

    async def add_invocation_rows(self, rows: Sequence[InvocationRow]) -> None:
        """Insert rows (see `InvocationRow`) in one transaction (the recorder batches them)."""
        ...

    def pack_rows(self, table: TelemetryTable, rows: Sequence[Sequence[Any]]) -> PackedRows:
        """Rows of `table` in the form this store inserts them from (JSON for SQLite's writer
        process), for `add_packed`. The recorder packs rows a few hundred at a time as they
        come, so that they can be freed long before the batch is written."""
        ...

    async def add_packed(self, table: TelemetryTable, packs: Sequence[PackedRows]) -> None:
        """Insert the rows of `packs` (from `pack_rows`), in order, in one transaction; log
        lines get the next `seq`s, as with `add_logs`."""
        ...

    async def invocations(
        self,
        *,
        function_id: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        status: str | None = None,
        since_ms: int | None = None,
        before_ms: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[InvocationRecord]:
        """Newest first (ties: the later insert first). `before_ms` pages back: records that
        started strictly before it, or, with `before_seq`, at it with a smaller `seq` — pass
        the last record's `start_ms` and `seq` and no record is skipped or repeated."""
        ...

    async def usage(
        self, *, since_ms: int, until_ms: int, function_id: str | None = None
    ) -> list[FunctionUsage]:
        """Per function, by function id, what the invocations that started in
        [`since_ms`, `until_ms`) used; the database aggregates (see `_rows.usage_query`)."""
        ...

    async def add_logs(self, lines: Sequence[LogLine]) -> None:
        """Insert lines in one transaction, in order; each gets the next `seq`."""
        ...

    async def logs(
        self,
        *,
        function_id: str | None = None,
        request_id: str | None = None,
        since_ms: int | None = None,
        grep: str | None = None,
        after_seq: int | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[LogLine]:
        """Oldest first; `after_seq` returns only lines stored after that one (for --follow);
        `grep` is a case-sensitive substring of the message; with `newest`, the last `limit`
        matching lines rather than the first (what `lamina logs` shows, like `tail`)."""
        ...

    async def invocation_stats(
        self,
        *,
        since_ms: int,
        until_ms: int,
        step_ms: int,
        bounds_ms: Sequence[float],
        function_id: str | None = None,
    ) -> list[StatsRow]:
        """Invocations that started in [since_ms, until_ms), counted per function, per
        `step_ms` bucket (aligned to multiples of `step_ms`) and per duration bin of the
        ascending `bounds_ms`; only non-empty groups, in no particular order."""
        ...

    async def prune_telemetry(self, *, before_ms: int) -> int:
        """Delete invocation records and log lines older than `before_ms`; how many."""
        ...


class Store(TelemetryStore, ApiKeyStore, VersionStore, Protocol):
    async def open(self) -> None:
        """Connect and apply pending schema migrations (idempotent; safe from several processes)."""
        ...

    async def close(self) -> None: ...

    async def enqueue(self, messages: Sequence[NewMessage], *, now_ms: int) -> list[str]:
        """Insert all messages atomically (all or none); returns their ids in order."""
        ...

    async def claim(
        self, queue: str, *, max_messages: int, lease_ms: int, now_ms: int
    ) -> list[Message]:
        """Lease up to `max_messages` visible messages, oldest first. Each one's receive_count
        goes up by one, a fresh lease_token is set, and it stays invisible for `lease_ms`.
        Two concurrent claimers never get the same message."""
        ...

    async def ack(self, queue: str, message_id: str, lease_token: str) -> bool:
        """Delete a claimed message; False if the lease was lost (expired and re-claimed)."""
        ...

    async def extend(
        self, queue: str, message_id: str, lease_token: str, *, lease_ms: int, now_ms: int
    ) -> bool:
        """Keep a claimed message invisible until `now_ms + lease_ms` (a heartbeat of a delivery
        still running); False if the lease was lost (expired and re-claimed, or settled)."""
        ...

    async def release(
        self,
        queue: str,
        message_id: str,
        lease_token: str,
        *,
        delay_ms: int,
        now_ms: int,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        """Make a claimed message visible again after `delay_ms`, recording `error`."""
        ...

    async def move(
        self,
        queue: str,
        message_id: str,
        lease_token: str,
        *,
        to_queue: str,
        now_ms: int,
        error: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move a claimed message to `to_queue` (e.g. a dead-letter queue), visible at once,
        keeping id, body, attributes, created time and receive count."""
        ...

    async def peek(self, queue: str, *, limit: int = 100, offset: int = 0) -> list[Message]:
        """Messages of `queue` without claiming them, oldest first (for dead-letter listings)."""
        ...

    async def get(self, queue: str, message_id: str) -> Message | None: ...

    async def delete(self, queue: str, message_id: str) -> bool:
        """Delete regardless of lease (admin purge of one message)."""
        ...

    async def purge(self, queue: str) -> int:
        """Delete every message of `queue`; returns how many."""
        ...

    async def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]: ...

    async def claim_tick(self, schedule_id: str, tick_ms: int, *, owner: str) -> bool:
        """Record that schedule tick `tick_ms` fires; True for exactly one caller across all
        processes sharing the store (insert-once), False for everyone else."""
        ...

    async def last_tick(self, schedule_id: str) -> int | None:
        """The latest tick recorded for `schedule_id`, so a restart resumes where it stopped."""
        ...


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """One control plane (a `lamina up` process) registered in a shared store."""

    plane_id: str  # random per process start
    started_ms: int  # epoch ms
    expires_ms: int  # epoch ms its last heartbeat is good until; past it, the plane is gone
    gateway_url: str
    admin_url: str


@runtime_checkable
class PlaneStore(Protocol):
    """Control planes and their instance leases: what lets several planes share one
    `max_instances` (see `lamina.invoker.capacity`). Only the PostgreSQL backend has it."""

    async def heartbeat_plane(
        self, plane: ControlPlane, lease_ids: Mapping[str, str], *, now_ms: int
    ) -> bool:
        """Extend `plane` to `plane.expires_ms`; True if its row was there. When it was not
        (new, or dropped while presumed dead), insert it and its leases (lease id ->
        function id) again. Its stored leases not in `lease_ids` are dropped (a release that
        failed), and so is every expired plane with its leases."""
        ...

    async def acquire_instance_lease(
        self, plane_id: str, function_id: str, lease_id: str, *, max_instances: int, now_ms: int
    ) -> bool:
        """Insert the lease if fewer than `max_instances` leases of unexpired planes exist for
        `function_id`; atomic across every process sharing the store."""
        ...

    async def release_instance_lease(self, lease_id: str) -> None: ...

    async def drop_plane(self, plane_id: str) -> None:
        """Delete the plane and its leases (a clean stop)."""
        ...

    async def control_planes(self, *, now_ms: int) -> list[tuple[ControlPlane, dict[str, int]]]:
        """The unexpired planes, oldest first, each with its leases per function id."""
        ...
