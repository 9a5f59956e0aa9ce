"""API keys for `auth: api_key` routes: the `x-api-key` header, checked in memory.

Keys are 256-bit random tokens (`lk_` + 43 URL-safe characters) shown once, at creation. The
store keeps only their SHA-256: a fast hash is enough for a key of this entropy (guessing one
is 2^256 work; slow password hashes are for low-entropy secrets), and it makes the per-request
check one hash and one dict lookup. Keys are loaded at start and reloaded every `refresh_s`,
so a key created or revoked through another platform process sharing the store takes effect
within that time; through this process's admin API, at once.

Outcomes, as API Gateway REST APIs answer them: no key, an unknown key or a revoked key: 403
`{"message": "Forbidden"}`; over the key's rate: 429 `Too Many Requests`; over its daily quota:
429 `Limit Exceeded`; both 429s with `Retry-After` (for the quota: until the next UTC midnight).

Daily quotas are counted in memory per UTC day and added to the store every `refresh_s` (and at
stop), so they are exact within one platform process and survive a restart, losing at most the
last `refresh_s` of counts on a crash. Several processes sharing a store (control planes on one
PostgreSQL) each re-read the day's total every `refresh_s`, so a quota holds across all of them
up to what they accept within one `refresh_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from lamina.clock import Clock
from lamina.gateway.jwtauth import AuthDenied
from lamina.gateway.ratelimit import TokenBucket, retry_after_header
from lamina.store.types import ApiKey, ApiKeyStore

__all__ = ["ApiKeys", "KeyUse", "hash_key", "utc_day"]

log = logging.getLogger(__name__)

_DAY_S = 86400


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def utc_day(wall_s: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(wall_s))


@dataclass(frozen=True, slots=True)
class KeyUse:
    """A key and how many requests it made today (UTC)."""

    key: ApiKey
    used_today: int


class ApiKeys:
    """The app's API keys: create, revoke, list, and `check` a request's key."""

    def __init__(self, store: ApiKeyStore, clock: Clock, *, refresh_s: float = 5.0) -> None:
        self._store = store
        self._clock = clock
        self._refresh_s = refresh_s
        self._by_hash: dict[str, ApiKey] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._day = ""
        self._used: dict[str, int] = {}  # key id -> requests today (stored + not yet flushed)
        self._pending: dict[str, dict[str, int]] = {}  # day -> key id -> not yet flushed
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, refresh: bool = True) -> None:
        """Load the keys and today's usage; with `refresh`, reload and flush every
        `refresh_s` (an app without `auth: api_key` routes needs no loop)."""
        await self._reload()
        self._day = utc_day(self._clock.wall())
        self._used = await self._store.api_key_usage(self._day)
        if refresh:
            self._task = asyncio.create_task(self._loop(), name="lamina-api-keys")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def create(
        self,
        name: str,
        *,
        rate: float | None = None,
        burst: int | None = None,
        quota_per_day: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret value (shown once; only its hash is stored)."""
        if rate is not None and burst is None:
            burst = max(1, int(rate))
        raw = "lk_" + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            key_hash=hash_key(raw),
            rate=rate,
            burst=burst if rate is not None else None,
            quota_per_day=quota_per_day,
            created_ms=int(self._clock.wall() * 1000),
        )
        await self._store.add_api_key(key)
        self._by_hash[key.key_hash] = key
        log.info("api key created", extra={"key_id": key.id, "key_name": name})
        return key, raw

    async def revoke(self, key_id: str) -> bool:
        done = await self._store.revoke_api_key(key_id, now_ms=int(self._clock.wall() * 1000))
        await self._reload()
        if done:
            log.info("api key revoked", extra={"key_id": key_id})
        return done

    async def list(self) -> list[KeyUse]:
        await self._reload()
        return [
            KeyUse(key, self._used.get(key.id, 0))
            for key in sorted(self._by_hash.values(), key=lambda k: (k.created_ms, k.id))
        ]

    def check(self, raw: str | None) -> ApiKey:
        """The valid key `raw` names, counted against its plan; raises AuthDenied."""
        key = self._by_hash.get(hash_key(raw)) if raw else None
        if key is None or key.revoked_ms is not None:
            raise AuthDenied(403, "Forbidden", error_type="InvalidApiKey")
        if key.rate is not None:
            bucket = self._buckets.get(key.id)
            now = self._clock.monotonic()
            if bucket is None:
                bucket = self._buckets[key.id] = TokenBucket(key.rate, key.burst or 1, now)
            wait = bucket.take(now)
            if wait:
                raise AuthDenied(
                    429,
                    "Too Many Requests",
                    [(b"retry-after", retry_after_header(wait))],
                    error_type="Throttled",
                )
        wall = self._clock.wall()
        day = utc_day(wall)
        if day != self._day:  # a new UTC day: counts start again
            self._day, self._used = day, {}
        used = self._used.get(key.id, 0)
        if key.quota_per_day is not None and used >= key.quota_per_day:
            until_midnight = _DAY_S - wall % _DAY_S
            raise AuthDenied(
                429,
                "Limit Exceeded",
                [(b"retry-after", retry_after_header(until_midnight))],
                error_type="QuotaExceeded",
            )
        self._used[key.id] = used + 1
        pending = self._pending.setdefault(day, {})
        pending[key.id] = pending.get(key.id, 0) + 1
        return key

    async def flush(self) -> None:
        """Add the counts made since the last flush to the store."""
        pending, self._pending = self._pending, {}
        for day, counts in pending.items():
            try:
                await self._store.add_api_key_usage(day, counts)
            except Exception:  # keep them for the next flush
                later = self._pending.setdefault(day, {})
                for key_id, count in counts.items():
                    later[key_id] = later.get(key_id, 0) + count
                raise

    async def _reload(self) -> None:
        keys = await self._store.api_keys()
        self._by_hash = {key.key_hash: key for key in keys}

    async def refresh(self) -> None:
        """Flush this process's counts, then reload the keys and today's counts from the
        store: what other processes sharing it created, revoked and counted."""
        await self.flush()
        await self._reload()
        await self._reload_usage()

    async def _reload_usage(self) -> None:
        """Today's counts as stored (every process's flushes) plus this one's unflushed."""
        day = utc_day(self._clock.wall())
        stored = await self._store.api_key_usage(day)
        pending = self._pending.get(day, {})
        self._day = day
        self._used = {k: stored.get(k, 0) + pending.get(k, 0) for k in stored.keys() | pending}

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception as exc:  # the store is down: keep serving with what we have
                log.warning("api keys not refreshed", extra={"error": repr(exc)})
