"""An issuer's signing keys, fetched from its JSON Web Key Set, as HTTP API JWT authorizers
find them (AWS "Control access to HTTP APIs with JWT authorizers"):

- The key set is at `jwks_uri`; without one, at the `jwks_uri` that the issuer's OpenID
  Connect discovery document names (`{issuer}/.well-known/openid-configuration`).
- A token's header must name its key (`kid`), and the key must be an RSA key: a token without
  a `kid`, or naming no key of the set, is refused (401).
- Keys are fetched on first use and kept for `max_age_s`; a token naming an unknown `kid`
  fetches the set again (keys rotate), at most once every `min_refetch_s`, so a flood of
  made-up `kid`s cannot make the gateway hammer the issuer.
- When the set cannot be fetched or read, the request fails with 500 `{"message": "Internal
  Server Error"}` (marked `JwksUnavailable`), and the next request tries again.

Fetches run one at a time on the event loop (httpx); the clock is injected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

from lamina.clock import Clock
from lamina.gateway.jwtauth import AuthDenied, unauthorized

__all__ = ["DISCOVERY_PATH", "FetchJson", "JwksKeys", "fetch_json"]

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
FetchJson = Callable[[str], Awaitable[Any]]
_RSA = ("RSA",)


async def fetch_json(url: str, timeout_s: float = 5.0) -> Any:
    """GET `url` and decode its JSON body; raises httpx.HTTPError or ValueError."""
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
        response = await client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        return response.json()


class JwksKeys:
    """The keys of one key set, by `kid`; `await key(token)` answers or raises AuthDenied."""

    def __init__(
        self,
        clock: Clock,
        *,
        jwks_uri: str | None = None,
        issuer: str | None = None,
        fetch: FetchJson = fetch_json,
        max_age_s: float = 3600.0,  # keys are fetched again after this long, > 0
        min_refetch_s: float = 10.0,  # an unknown kid fetches again at most this often
    ) -> None:
        if jwks_uri is None and issuer is None:
            raise ValueError("a key set needs a jwks_uri or an issuer to discover it from")
        self._clock = clock
        self._jwks_uri = jwks_uri
        self._issuer = issuer
        self._fetch = fetch
        self.max_age_s = max_age_s
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, Any] = {}  # kid -> public key object
        self._fetched_at: float | None = None  # monotonic s of the last successful fetch
        self._tried_at: float | None = None  # monotonic s of the last attempt
        self._lock = asyncio.Lock()
        self._attempts = 0  # fetches tried, successful or not
        self._failed = False  # whether the last attempt failed
        self.fetches = 0  # key sets fetched (tests and logs)

    @property
    def where(self) -> str:
        """Where the keys come from, for messages."""
        if self._jwks_uri is not None:
            return self._jwks_uri
        return f"{self._issuer}{DISCOVERY_PATH}"

    async def key(self, token: str) -> Any:
        """The public key that signed `token`, per its header's `kid`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not a valid JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthorized("the token's header names no key (kid)")
        now = self._clock.monotonic()
        fresh = self._fetched_at is not None and now - self._fetched_at < self.max_age_s
        if kid in self._keys and fresh:
            return self._keys[kid]
        recently = self._tried_at is not None and now - self._tried_at < self.min_refetch_s
        if not fresh or not recently:
            await self._refresh()
        found = self._keys.get(kid)
        if found is None:
            raise unauthorized("the token's key (kid) is not one of the issuer's keys")
        return found

    async def _refresh(self) -> None:
        """Fetch the set, unless another request fetched it while this one waited."""
        seen = self._attempts
        async with self._lock:
            if self._attempts != seen:  # fetched meanwhile: use its outcome
                if self._failed:
                    raise _unavailable()
                return
            self._attempts += 1
            self._tried_at = self._clock.monotonic()
            try:
                keys = await self._load()
            except (httpx.HTTPError, ValueError, jwt.PyJWKError, jwt.InvalidKeyError) as exc:
                self._failed = True
                log.warning(
                    "the JWT signing keys cannot be fetched",
                    extra={"where": self.where, "error": str(exc) or type(exc).__name__},
                )
                raise _unavailable() from None
            self._failed = False
            self._keys = keys
            self._fetched_at = self._clock.monotonic()
            self.fetches += 1
            log.info("JWT signing keys fetched", extra={"where": self.where, "keys": len(keys)})

    async def _load(self) -> dict[str, Any]:
        uri = self._jwks_uri
        if uri is None:
            assert self._issuer is not None
            document = await self._fetch(self._issuer.rstrip("/") + DISCOVERY_PATH)
            uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                raise ValueError(f"the discovery document names no jwks_uri (got {uri!r})")
        data = await self._fetch(uri)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError(f"{uri} is not a JSON Web Key Set (no 'keys' list)")
        keys: dict[str, Any] = {}
        for item in data["keys"]:
            if not isinstance(item, dict) or item.get("kty") not in _RSA:
                continue  # AWS uses RSA keys only
            if item.get("use", "sig") != "sig" or not isinstance(item.get("kid"), str):
                continue
            keys[item["kid"]] = jwt.PyJWK(item, algorithm=item.get("alg") or "RS256").key
        return keys


def _unavailable() -> AuthDenied:
    return AuthDenied(500, "Internal Server Error", error_type="JwksUnavailable")
