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
)
