"""A small pool of one process's connections to one service's database.

At most `size` connections, opened when first needed and reused last-in first-out, so a process
that makes one call at a time keeps using one connection. A connection is leased for one table
call, or for a `with lamina.sql()` block; while a block holds one, the calls made inside it in
the same thread or asyncio task (the lease is a context variable) use that connection, inside
the block's transaction, instead of waiting for another: a pool of one never waits on itself.

An instance's pool holds `concurrency` connections at most (see `lamina.store.tables.POOL_VAR`),
so a function never holds more PostgreSQL connections than `max_instances * concurrency`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Generic, TypeVar

from lamina.errors import StoreUnavailable

__all__ = ["Pool"]

C = TypeVar("C")
DEFAULT_WAIT_S = 30.0  # how long a caller waits for a connection when all are leased


class Pool(Generic[C]):
    """Thread-safe; `acquire`/`release` around each use, or `lease()` for the one this thread or
    task already holds. A released connection that `broken` says is unusable is closed."""

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        size: int = 1,
        *,
        url: str = "",  # for messages, without a password
        wait_s: float = DEFAULT_WAIT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"pool size: expected >= 1, got {size}")
        self.size = size
        self.url = url
        self.wait_s = wait_s
        self._connect = connect
        self._close = close
        self._idle: list[C] = []
        self._open = 0  # connections opened (or being opened) and not closed
        self._waiting = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._forgotten: list[C] = []
        self.lease: ContextVar[C | None] = ContextVar(f"lamina.pool.{id(self)}", default=None)

    @property
    def opened(self) -> int:
        """How many connections are open now (leased or idle)."""
        return self._open

    def acquire(self) -> C:
        """An idle connection, a new one while fewer than `size` are open, else the next one
        released within `wait_s` (StoreUnavailable after that)."""
        try:
            return self._idle.pop()  # the hot path, without the lock: pop is atomic
        except IndexError:
            pass
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._open >= self.size:
                self._wait_for_one()
                if self._idle:
                    return self._idle.pop()
            self._open += 1
        try:
            return self._connect()
        except BaseException:
            with self._lock:
                self._open -= 1
                if self._waiting:
                    self._freed.notify()
            raise

    def _wait_for_one(self) -> None:
        """With the lock held: wait until a connection is idle or may be opened."""
        deadline = time.monotonic() + self.wait_s
        self._waiting += 1
        try:
            while not self._idle and self._open >= self.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"all {self.size} database connection(s) of this instance stayed in use"
                        f" for {self.wait_s:g} s (one per concurrent invocation; a `with"
                        " lamina.sql()` block holds its connection until it ends)",
                        url=self.url,
                    )
                self._freed.wait(left)
        finally:
            self._waiting -= 1

    def release(self, conn: C, *, broken: bool = False) -> None:
        """Give `conn` back; `broken`: it is unusable, close it (a new one opens when needed)."""
        if not broken:
            # The hot path, without the lock: append is atomic, and a waiter counts itself in
            # `_waiting` (under the lock) before it looks at `_idle`, so it either sees this
            # connection or is counted here and notified.
            self._idle.append(conn)
            if self._waiting:
                with self._lock:
                    self._freed.notify()
            return
        with self._lock:
            self._open -= 1
            if self._waiting:
                self._freed.notify()
        self._close_quietly(conn)

    def close(self) -> None:
        """Close the idle connections (leased ones close when released broken, or with the
        process)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            self._close_quietly(conn)

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them (closing would
        end the parent's sessions); they are kept referenced so that they are never collected."""
        self._forgotten.extend(self._idle)
        self._idle = []
        self._open = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self.lease.set(None)

    def _close_quietly(self, conn: C) -> None:
        with contextlib.suppress(Exception):  # one that fails to close is gone anyway
            self._close(conn)
