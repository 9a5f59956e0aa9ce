"""JWT authorizers, as API Gateway HTTP APIs check tokens (AWS "Control access to HTTP APIs
with JWT authorizers"):

1. The token is the `Authorization` header, bare or prefixed with `Bearer `; none: 401.
2. The signature must verify with the configured algorithm only: HS256 with `secret`, RS256
   with `public_key`, RSA with the issuer's key named by the token's `kid` (a JWKS, see
   `lamina.gateway.jwks`). `alg: none`, another algorithm, a tampered header, payload or
   signature, or garbage: 401.
3. `iss` must equal `issuer` and `aud` (a string or a list) must name one of `audience` (a
   token without `aud` may name it in `client_id`), when those are configured; `exp` must
   be in the future and `nbf` (if present) in the past, within `leeway` seconds: otherwise
   401.
4. With scopes on the route, the token's `scope` (space-separated) or `scp` (list or string)
   claim must carry at least one of them: otherwise 403.

Every 401 is `{"message": "Unauthorized"}` with a `www-authenticate` header saying why (as
AWS does, `Bearer error="invalid_token" error_description="..."`); a 403 is
`{"message": "Forbidden"}`. The time comes from the caller, so tests move it.

The function sees the claims as HTTP APIs pass them in `requestContext.authorizer.jwt`:
`claims` with every value a string (numbers as digits, lists as `[a b]`), and `scopes`
(the token's scopes, or null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lamina.manifest.models import JwtSpec

__all__ = ["AuthDenied", "JwtClaims", "JwtVerifier", "KeySource", "bearer_token", "unauthorized"]


class AuthDenied(Exception):
    """A request the gateway refuses: `status` (401, 403, 429, 500), the JSON `message`, and
    extra response headers (e.g. `www-authenticate`, `retry-after`)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        error_type: str = "",
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.headers = headers or []
        self.error_type = error_type or message.replace(" ", "")  # x-lamina-error


@dataclass(frozen=True, slots=True)
class JwtClaims:
    claims: dict[str, str]  # as the function sees them: every value a string
    scopes: list[str] | None  # from `scope` / `scp`; None when the token has none


def bearer_token(header: str | None) -> str | None:
    """The token in an Authorization header value: bare, or after `Bearer ` (any case)."""
    if header is None:
        return None
    text = header.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    return text or None


def unauthorized(why: str) -> AuthDenied:
    """A 401 saying `why` in `www-authenticate`, as API Gateway does."""
    challenge = f'Bearer error="invalid_token" error_description="{why}"'
    return AuthDenied(401, "Unauthorized", [(b"www-authenticate", challenge.encode())])


class KeySource(Protocol):
    """Where RS256 keys come from per token (`lamina.gateway.jwks.JwksKeys`)."""

    async def key(self, token: str) -> Any: ...


_RSA_ALGORITHMS = ["RS256", "RS384", "RS512"]  # what HTTP API JWT authorizers accept


class JwtVerifier:
    """Checks tokens against one JWT configuration; built once at start. With `keys` (a JWKS),
    the key is looked up per token by `check`; otherwise it is the spec's secret or PEM key."""

    def __init__(self, spec: JwtSpec, keys: KeySource | None = None) -> None:
        self._spec = spec
        self._keys = keys
        self._key: Any = None
        self.identity = spec.identity  # the request header carrying the token
        if spec.secret is not None:
            self._algorithms = ["HS256"]
            self._key = spec.secret.encode()
        elif spec.public_key is not None:
            self._algorithms = ["RS256"]
            self._key = load_pem_public_key(spec.public_key.encode())  # ValueError if not PEM
        elif keys is None:
            raise ValueError("a JWT authorizer with keys from a JWKS needs a key source")
        else:
            self._algorithms = _RSA_ALGORITHMS
        self._audience = set(spec.audience)

    async def check(
        self, header: str | None, now_s: float, scopes: tuple[str, ...] = ()
    ) -> JwtClaims:
        """`verify`, with the token's key fetched from the key set first when there is one."""
        if self._keys is None:
            return self.verify(header, now_s, scopes)
        token = bearer_token(header)
        if token is None:
            raise AuthDenied(401, "Unauthorized")
        key = await self._keys.key(token)
        return self.verify(token, now_s, scopes, key=key)

    def verify(
        self, header: str | None, now_s: float, scopes: tuple[str, ...] = (), *, key: Any = None
    ) -> JwtClaims:
        """The token's claims; raises AuthDenied (401 bad token, 403 missing scope). `key`:
        the key to check the signature with, instead of the spec's."""
        token = bearer_token(header)
        if token is None:
            raise AuthDenied(401, "Unauthorized")
        try:
            claims = jwt.decode(
                token,
                self._key if key is None else key,
                algorithms=self._algorithms,
                issuer=self._spec.issuer,
                options={
                    "verify_exp": False,  # checked below against the injected time
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,  # checked below: `aud` or `client_id`, as AWS does
                    "require": ["exp"],
                },
            )
        except jwt.InvalidAlgorithmError:
            raise unauthorized("the token's algorithm is not allowed") from None
        except jwt.InvalidIssuerError:
            raise unauthorized("the token does not have a valid issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("the token's signature does not verify") from None
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not a valid JWT") from None
        if self._audience and not self._audience_matches(claims):
            raise unauthorized("the token does not have a valid audience")
        self._check_times(claims, now_s)
        granted = _scopes(claims)
        if scopes and not (granted and any(s in granted for s in scopes)):
            raise AuthDenied(403, "Forbidden")
        return JwtClaims({k: _claim_text(v) for k, v in claims.items()}, granted)

    def _audience_matches(self, claims: Mapping[str, Any]) -> bool:
        """`aud` (a string or a list) names a configured audience, or else `client_id` does
        (Cognito access tokens carry no `aud`)."""
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if any(isinstance(a, str) and a in self._audience for a in named):
            return True
        return aud is None and claims.get("client_id") in self._audience

    def _check_times(self, claims: Mapping[str, Any], now_s: float) -> None:
        leeway = self._spec.leeway
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise unauthorized("the token's exp claim is not a number")
        if now_s >= exp + leeway:
            raise unauthorized("the token has expired")
        if nbf is not None:
            if not isinstance(nbf, int | float) or isinstance(nbf, bool):
                raise unauthorized("the token's nbf claim is not a number")
            if now_s < nbf - leeway:
                raise unauthorized("the token is not valid yet")


def _scopes(claims: Mapping[str, Any]) -> list[str] | None:
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [str(v) for v in value]
    return None


def _claim_text(value: Any) -> str:
    """A claim as HTTP APIs pass it: strings as is, lists as `[a b]`, others as JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()
