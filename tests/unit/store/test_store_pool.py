"""The per-instance connection pool: bounded, last-in first-out, waits for a released
connection, replaces broken ones (threads, fake connections)."""

from __future__ import annotations

import itertools
import threading

import pytest

from lamina.errors import StoreUnavailable
from lamina.store._pool import Pool


class Conn:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def close(self) -> None:
        self.closed = True


def pool_of(size: int, wait_s: float = 5.0) -> tuple[Pool[Conn], list[Conn]]:
    made: list[Conn] = []
    numbers = itertools.count(1)

    def connect() -> Conn:
        made.append(Conn(next(numbers)))
        return made[-1]

    return Pool(connect, Conn.close, size, url="db://x", wait_s=wait_s), made


def test_one_caller_at_a_time_keeps_using_one_connection() -> None:
    pool, made = pool_of(4)
    for _ in range(10):
        pool.release(pool.acquire())
    assert len(made) == 1
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    pool.release(b)
    assert pool.acquire() is b  # last in, first out
    assert pool.opened == 2


def test_a_caller_waits_for_a_released_connection_then_times_out_clearly() -> None:
    pool, made = pool_of(1, wait_s=0.05)
    held = pool.acquire()
    with pytest.raises(StoreUnavailable, match="all 1 database connection"):
        pool.acquire()
    got: list[Conn] = []
    waiter = threading.Thread(target=lambda: got.append(pool_of_wait(pool)))
    pool.wait_s = 5.0
    waiter.start()
    pool.release(held)
    waiter.join(5)
    assert got == [held]
    assert len(made) == 1


def pool_of_wait(pool: Pool[Conn]) -> Conn:
    conn = pool.acquire()
    pool.release(conn)
    return conn


def test_a_broken_connection_is_closed_and_its_slot_reopened() -> None:
    pool, made = pool_of(1)
    first = pool.acquire()
    pool.release(first, broken=True)
    assert first.closed
    assert pool.opened == 0
    second = pool.acquire()
    assert second is not first
    assert len(made) == 2


def test_a_failed_connect_frees_its_slot() -> None:
    attempts = []

    def connect() -> Conn:
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreUnavailable("down", url="db://x")
        return Conn(len(attempts))

    pool: Pool[Conn] = Pool(connect, Conn.close, 1, wait_s=0.05)
    with pytest.raises(StoreUnavailable, match="down"):
        pool.acquire()
    assert pool.acquire().n == 2


def test_close_closes_idle_connections_and_forget_drops_them_open() -> None:
    pool, _ = pool_of(2)
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    pool.close()
    assert a.closed and not b.closed
    pool.release(b)
    pool.forget()  # in a forked child: the parent's connection stays open
    assert not b.closed
    assert pool.acquire() is not b
