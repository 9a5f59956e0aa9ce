"""Versioned schema migrations, one ordered list of SQL statements per backend.

Migration N (1-based) is `SQLITE[N - 1]` / `POSTGRES[N - 1]`; the applied version is recorded
in `lamina_schema_version`. Never edit a released migration: append a new one. Each backend
applies the pending ones at `open()` inside one write-locked transaction (SQLite:
`BEGIN IMMEDIATE`; PostgreSQL: `pg_advisory_xact_lock`), so two processes opening the same
store at once apply each migration exactly once.

Tables (both backends):
- `messages`: one row per queued message. `seq` is the insertion order (the tie-break for
  "oldest first"); `(queue, id)` is unique, so one id may live in several queues (a topic's
  fan-out) but only once per queue; `(queue, visible_ms)` is the claim index.
- `schedule_ticks`: one row per fired schedule tick; the primary key makes firing insert-once.
- `invocations` (2): one row per invocation record; `id` is the insertion order, the tie-break
  for "newest first". Indexed for the admin filters: `(function_id, start_ms)`, `request_id`,
  `trace_id` (partial: most records have none) and `start_ms` (unfiltered listing, pruning).
- `logs` (2): one row per log line; `seq` is the store-assigned, never reused line number that
  `after_seq` follows (SQLite: `AUTOINCREMENT`, so pruning every line does not restart it).
  Indexed by `(function_id, seq)`, `(request_id, seq)` and `time_ms` (`since_ms`, pruning).
- `invocations.span_id`, `invocations.parent_span_id` (3): the invocation's span and its
  caller's, so a trace (all records of one `trace_id`) forms a tree. Older rows keep NULL.
- `api_keys` (4): gateway API keys, by id; only the SHA-256 of a key is kept (`key_hash`,
  unique), with its usage plan (`rate`, `burst`, `quota_per_day`, each NULL for none) and
  `revoked_ms` (NULL while valid). `api_key_usage` (4): requests per key per UTC day
  (`YYYY-MM-DD`), added to by the gateway's periodic flush.
- Deploys (5): `invocations.version` (the function version that ran; older rows NULL);
  `function_versions`, one immutable row per (function, version) with the hashes that decided
  it and the function's spec as JSON; `function_aliases`, one row per (function, alias) with
  its version, optional canary version and weight, and the version it pointed at before
  (what a rollback returns to); `deploys`, one row per deploy (its bundle's digest), the last
  of which a restarted platform serves again.
- `control_planes` (6): one row per running control plane sharing the store, with the wall
  time its heartbeat is good until (`expires_ms`) and its URLs. `instance_leases` (6): one row
  per live function instance of a plane; only leases of unexpired planes count against a
  function's `max_instances` (see `lamina.invoker.capacity`). PostgreSQL only uses them: a
  SQLite file has one platform process, so SQLite gets the tables for matching versions only.
"""

from __future__ import annotations

__all__ = ["POSTGRES", "SQLITE", "VERSION_TABLE"]

VERSION_TABLE = "lamina_schema_version"

SQLITE: tuple[tuple[str, ...], ...] = (
    # 1: queues and schedule ticks
    (
        """CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            queue TEXT NOT NULL,
            id TEXT NOT NULL,
            body BLOB NOT NULL,
            attributes TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            visible_ms INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            first_received_ms INTEGER,
            lease_token TEXT,
            last_error TEXT
        )""",
        "CREATE UNIQUE INDEX messages_queue_id ON messages (queue, id)",
        # SQLite appends the rowid (seq) to every index: ORDER BY visible_ms, seq is served.
        "CREATE INDEX messages_queue_visible ON messages (queue, visible_ms)",
        """CREATE TABLE schedule_ticks (
            schedule_id TEXT NOT NULL,
            tick_ms INTEGER NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (schedule_id, tick_ms)
        ) WITHOUT ROWID""",
    ),
    # 2: telemetry: invocation records and log lines
    (
        """CREATE TABLE invocations (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            function_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            start_ms INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            billed_ms INTEGER NOT NULL,
            init_ms REAL,
            cold INTEGER NOT NULL,
            memory_mb INTEGER NOT NULL,
            max_memory_mb INTEGER,
            status TEXT NOT NULL,
            error_type TEXT,
            instance_id TEXT,
            trace_id TEXT
        )""",
        # SQLite appends the rowid (id) to every index: ORDER BY start_ms DESC, id DESC is served.
        "CREATE INDEX invocations_function_start ON invocations (function_id, start_ms)",
        "CREATE INDEX invocations_start ON invocations (start_ms)",
        "CREATE INDEX invocations_request ON invocations (request_id)",
        "CREATE INDEX invocations_trace ON invocations (trace_id) WHERE trace_id IS NOT NULL",
        """CREATE TABLE logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            time_ms INTEGER NOT NULL,
            function_id TEXT NOT NULL,
            request_id TEXT,
            instance_id TEXT,
            stream TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX logs_function ON logs (function_id)",  # + rowid: (function_id, seq)
        "CREATE INDEX logs_request ON logs (request_id) WHERE request_id IS NOT NULL",
        "CREATE INDEX logs_time ON logs (time_ms)",
    ),
    # 3: tracing: each invocation's span and its parent span
    (
        "ALTER TABLE invocations ADD COLUMN span_id TEXT",
        "ALTER TABLE invocations ADD COLUMN parent_span_id TEXT",
    ),
    # 4: gateway API keys and their daily usage
    (
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            rate REAL,
            burst INTEGER,
            quota_per_day INTEGER,
            created_ms INTEGER NOT NULL,
            revoked_ms INTEGER
        )""",
        """CREATE TABLE api_key_usage (
            key_id TEXT NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (key_id, day)
        ) WITHOUT ROWID""",
    ),
    # 5: deploys: function versions, aliases, and which version each invocation ran
    (
        "ALTER TABLE invocations ADD COLUMN version TEXT",
        """CREATE TABLE function_versions (
            function_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            code_hash TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            bundle TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY (function_id, version)
        ) WITHOUT ROWID""",
        """CREATE TABLE function_aliases (
            function_id TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            canary_version INTEGER,
            canary_weight INTEGER NOT NULL DEFAULT 0,
            previous_version INTEGER,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (function_id, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE deploys (
            id INTEGER PRIMARY KEY,
            bundle TEXT NOT NULL,
            app TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )""",
    ),
    # 6: control planes sharing the store and their instance leases (unused by SQLite)
    (
        """CREATE TABLE control_planes (
            plane_id TEXT PRIMARY KEY,
            started_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            gateway_url TEXT NOT NULL,
            admin_url TEXT NOT NULL
        )""",
        """CREATE TABLE instance_leases (
            lease_id TEXT PRIMARY KEY,
            function_id TEXT NOT NULL,
            plane_id TEXT NOT NULL,
            since_ms INTEGER NOT NULL
        )""",
    ),
)

POSTGRES: tuple[tuple[str, ...], ...] = (
    # 1: queues and schedule ticks
    (
        """CREATE TABLE messages (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            queue text NOT NULL,
            id text NOT NULL,
            body bytea NOT NULL,
            attributes jsonb NOT NULL,
            created_ms bigint NOT NULL,
            visible_ms bigint NOT NULL,
            receive_count integer NOT NULL DEFAULT 0,
            first_received_ms bigint,
            lease_token text,
            last_error jsonb,
            CONSTRAINT messages_queue_id UNIQUE (queue, id)
        )""",
        "CREATE INDEX messages_queue_visible ON messages (queue, visible_ms, seq)",
        """CREATE TABLE schedule_ticks (
            schedule_id text NOT NULL,
            tick_ms bigint NOT NULL,
            owner text NOT NULL,
            PRIMARY KEY (schedule_id, tick_ms)
        )""",
    ),
    # 2: telemetry: invocation records and log lines
    (
        """CREATE TABLE invocations (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text NOT NULL,
            function_id text NOT NULL,
            trigger text NOT NULL,
            start_ms bigint NOT NULL,
            duration_ms double precision NOT NULL,
            billed_ms bigint NOT NULL,
            init_ms double precision,
            cold boolean NOT NULL,
            memory_mb integer NOT NULL,
            max_memory_mb integer,
            status text NOT NULL,
            error_type text,
            instance_id text,
            trace_id text
        )""",
        "CREATE INDEX invocations_function_start ON invocations (function_id, start_ms, id)",
        "CREATE INDEX invocations_start ON invocations (start_ms, id)",
        "CREATE INDEX invocations_request ON invocations (request_id)",
        "CREATE INDEX invocations_trace ON invocations (trace_id) WHERE trace_id IS NOT NULL",
        """CREATE TABLE logs (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time_ms bigint NOT NULL,
            function_id text NOT NULL,
            request_id text,
            instance_id text,
            stream text NOT NULL,
            level text NOT NULL,
            message text NOT NULL
        )""",
        "CREATE INDEX logs_function_seq ON logs (function_id, seq)",
        "CREATE INDEX logs_request_seq ON logs (request_id, seq) WHERE request_id IS NOT NULL",
        "CREATE INDEX logs_time ON logs (time_ms)",
    ),
    # 3: tracing: each invocation's span and its parent span
    (
        "ALTER TABLE invocations ADD COLUMN span_id text",
        "ALTER TABLE invocations ADD COLUMN parent_span_id text",
    ),
    # 4: gateway API keys and their daily usage
    (
        """CREATE TABLE api_keys (
            id text PRIMARY KEY,
            name text NOT NULL,
            key_hash text NOT NULL UNIQUE,
            rate double precision,
            burst integer,
            quota_per_day bigint,
            created_ms bigint NOT NULL,
            revoked_ms bigint
        )""",
        """CREATE TABLE api_key_usage (
            key_id text NOT NULL,
            day text NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY (key_id, day)
        )""",
    ),
    # 5: deploys: function versions, aliases, and which version each invocation ran
    (
        "ALTER TABLE invocations ADD COLUMN version text",
        """CREATE TABLE function_versions (
            function_id text NOT NULL,
            version integer NOT NULL,
            code_hash text NOT NULL,
            config_hash text NOT NULL,
            bundle text NOT NULL,
            spec text NOT NULL,
            created_ms bigint NOT NULL,
            PRIMARY KEY (function_id, version)
        )""",
        """CREATE TABLE function_aliases (
            function_id text NOT NULL,
            name text NOT NULL,
            version integer NOT NULL,
            canary_version integer,
            canary_weight integer NOT NULL DEFAULT 0,
            previous_version integer,
            updated_ms bigint NOT NULL,
            PRIMARY KEY (function_id, name)
        )""",
        """CREATE TABLE deploys (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            bundle text NOT NULL,
            app text NOT NULL,
            created_ms bigint NOT NULL
        )""",
    ),
    # 6: control planes sharing the store and their instance leases
    (
        """CREATE TABLE control_planes (
            plane_id text PRIMARY KEY,
            started_ms bigint NOT NULL,
            expires_ms bigint NOT NULL,
            gateway_url text NOT NULL,
            admin_url text NOT NULL
        )""",
        """CREATE TABLE instance_leases (
            lease_id text PRIMARY KEY,
            function_id text NOT NULL,
            plane_id text NOT NULL,
            since_ms bigint NOT NULL
        )""",
        "CREATE INDEX instance_leases_function ON instance_leases (function_id, plane_id)",
        "CREATE INDEX instance_leases_plane ON instance_leases (plane_id)",
    ),
)
