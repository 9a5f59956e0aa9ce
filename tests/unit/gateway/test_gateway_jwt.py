"""JWT checks as HTTP API JWT authorizers make them: every rejection, and what a good token
gives the function. Time is passed in (NOW), so expiry is tested without waiting."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lamina.gateway.jwtauth import AuthDenied, JwtVerifier, bearer_token
from lamina.manifest.models import JwtSpec

NOW = 1_800_000_000.0
SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"
SPEC = JwtSpec(secret=SECRET, issuer="https://issuer.example", audience=("shop",))


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "user-1",
        "iss": "https://issuer.example",
        "aud": "shop",
        "exp": NOW + 60,
        "iat": NOW - 10,
        "scope": "orders:read orders:write",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(secret: str = SECRET, **over: Any) -> str:
    return jwt.encode(claims(**over), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(**over: Any) -> str:
    """An `alg: none` token: header.payload. with an empty signature."""
    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    return f"{header}.{_b64(orjson.dumps(claims(**over)))}."


def tampered() -> str:
    head, _payload, sig = token().split(".")
    forged = _b64(orjson.dumps(claims(sub="admin")))
    return f"{head}.{forged}.{sig}"


def denied(verifier: JwtVerifier, header: str | None, scopes: tuple[str, ...] = ()) -> AuthDenied:
    with pytest.raises(AuthDenied) as info:
        verifier.verify(header, NOW, scopes)
    return info.value


def test_a_valid_token_gives_claims_as_strings_and_scopes() -> None:
    found = JwtVerifier(SPEC).verify(f"Bearer {token(groups=['a', 'b'])}", NOW, ("orders:write",))
    assert found.claims["sub"] == "user-1"
    assert found.claims["exp"] == str(int(NOW + 60))
    assert found.claims["groups"] == "[a b]"
    assert found.scopes == ["orders:read", "orders:write"]


def test_the_bearer_prefix_is_optional() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("abc") == "abc"
    assert bearer_token("") is None
    assert JwtVerifier(SPEC).verify(token(), NOW).claims["sub"] == "user-1"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        pytest.param(None, None, id="no Authorization header"),
        pytest.param("Bearer ", None, id="an empty bearer token"),
        pytest.param("Bearer " + token(exp=NOW - 1), "expired", id="an expired token"),
        pytest.param("Bearer " + token(exp=NOW), "expired", id="a token expiring right now"),
        pytest.param("Bearer " + token(nbf=NOW + 30), "not valid yet", id="a token not valid yet"),
        pytest.param("Bearer " + token(aud="other"), "audience", id="the wrong audience"),
        pytest.param("Bearer " + token(aud=None), "aud", id="no audience"),
        pytest.param("Bearer " + token(iss="https://evil.example"), "issuer", id="wrong issuer"),
        pytest.param("Bearer " + token(exp=None), "exp", id="no exp claim"),
        pytest.param("Bearer " + unsigned(), "algorithm", id="alg none"),
        pytest.param("Bearer " + tampered(), "signature", id="a tampered payload"),
        pytest.param("Bearer " + token(secret="another-secret-another-secret-12"), "signature",
                     id="signed with another secret"),
        pytest.param("Bearer not.a.jwt", "not a valid JWT", id="garbage"),
    ],
)  # fmt: skip
def test_bad_tokens_are_401_with_the_reason_in_www_authenticate(
    header: str | None, why: str | None
) -> None:
    error = denied(JwtVerifier(SPEC), header)
    assert (error.status, error.message) == (401, "Unauthorized")
    if why is not None:
        challenge = dict(error.headers)[b"www-authenticate"].decode()
        assert 'error="invalid_token"' in challenge
        assert why in challenge


def test_leeway_allows_clock_skew() -> None:
    lenient = JwtVerifier(SPEC.model_copy(update={"leeway": 30.0}))
    assert lenient.verify(token(exp=NOW - 10), NOW).claims["sub"] == "user-1"
    assert lenient.verify(token(nbf=NOW + 10), NOW).claims["sub"] == "user-1"


def test_a_valid_token_without_a_required_scope_is_403() -> None:
    error = denied(JwtVerifier(SPEC), token(scope="orders:read"), ("orders:write", "admin"))
    assert (error.status, error.message) == (403, "Forbidden")
    assert denied(JwtVerifier(SPEC), token(scope=None), ("orders:write",)).status == 403


def test_one_of_the_routes_scopes_is_enough_and_scp_lists_count() -> None:
    verifier = JwtVerifier(SPEC)
    assert verifier.verify(token(scope="admin"), NOW, ("orders:write", "admin")).scopes == ["admin"]
    found = verifier.verify(token(scope=None, scp=["orders:write"]), NOW, ("orders:write",))
    assert found.scopes == ["orders:write"]


def test_rs256_with_a_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtVerifier(JwtSpec(public_key=pem, audience=("shop",)))
    good = jwt.encode(claims(), private, algorithm="RS256")
    assert verifier.verify(f"Bearer {good}", NOW).claims["sub"] == "user-1"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert denied(verifier, jwt.encode(claims(), other, algorithm="RS256")).status == 401
    # HS256 signed with the public key as the secret: the classic algorithm confusion
    head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    body = _b64(orjson.dumps(claims()))
    mac = hmac.new(pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert denied(verifier, f"{head}.{body}.{_b64(mac)}").status == 401
