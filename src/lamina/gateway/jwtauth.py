"""JWT authorizers, as API Gateway HTTP APIs check tokens (AWS "Control access to HTTP APIs
with JWT authorizers"):

1. The token is the `Authorization` header, bare or prefixed with `Bearer `; none: 401.
2. The signature must verify with the configured algorithm only: HS256 with `secret`, RS256
   with `public_key`. `alg: none`, another algorithm, a tampered header, payload or signature,
   or garbage: 401.
3. `iss` must equal `issuer` and `aud` (a string or a list) must name one of `audience`, when
   those are configured; `exp` must be in the future and `nbf` (if present) in the past, within
   `leeway` seconds: otherwise 401.
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
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lamina.manifest.models import JwtSpec

__all__ = ["AuthDenied", "JwtClaims", "JwtVerifier", "bearer_token"]


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


def _unauthorized(why: str) -> AuthDenied:
    challenge = f'Bearer error="invalid_token" error_description="{why}"'
    return AuthDenied(401, "Unauthorized", [(b"www-authenticate", challenge.encode())])


class JwtVerifier:
    """Checks tokens against one `gateway.auth.jwt` configuration; built once at start."""

    def __init__(self, spec: JwtSpec) -> None:
        self._spec = spec
        self._key: Any
        if spec.secret is not None:
            self._algorithm = "HS256"
            self._key = spec.secret.encode()
        else:
            assert spec.public_key is not None
            self._algorithm = "RS256"
            self._key = load_pem_public_key(spec.public_key.encode())  # ValueError if not PEM
        self._audience = list(spec.audience) or None

    def verify(self, header: str | None, now_s: float, scopes: tuple[str, ...] = ()) -> JwtClaims:
        """The token's claims; raises AuthDenied (401 bad token, 403 missing scope)."""
        token = bearer_token(header)
        if token is None:
            raise AuthDenied(401, "Unauthorized")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._spec.issuer,
                options={
                    "verify_exp": False,  # checked below against the injected time
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": self._audience is not None,
                    "require": ["exp"],
                },
            )
        except jwt.InvalidAlgorithmError:
            raise _unauthorized("the token's algorithm is not allowed") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("the token does not have a valid audience") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the token does not have a valid issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("the token's signature does not verify") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("the token is not a valid JWT") from None
        self._check_times(claims, now_s)
        granted = _scopes(claims)
        if scopes and not (granted and any(s in granted for s in scopes)):
            raise AuthDenied(403, "Forbidden")
        return JwtClaims({k: _claim_text(v) for k, v in claims.items()}, granted)

    def _check_times(self, claims: Mapping[str, Any], now_s: float) -> None:
        leeway = self._spec.leeway
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _unauthorized("the token's exp claim is not a number")
        if now_s >= exp + leeway:
            raise _unauthorized("the token has expired")
        if nbf is not None:
            if not isinstance(nbf, int | float) or isinstance(nbf, bool):
                raise _unauthorized("the token's nbf claim is not a number")
            if now_s < nbf - leeway:
                raise _unauthorized("the token is not valid yet")


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
