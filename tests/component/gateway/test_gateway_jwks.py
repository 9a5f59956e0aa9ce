"""JWT authorizers with an issuer's keys: found by OIDC discovery from a real issuer on a
loopback port, fetched again when keys rotate (at most every `min_refetch_s`), and a 500 when
the issuer cannot be reached. Monotonic time is a FakeClock; tokens carry real times."""

from __future__ import annotations

import socket
import time

import pytest

from lamina.clock import FakeClock
from lamina.gateway.jwks import JwksKeys
from lamina.gateway.jwtauth import AuthDenied, JwtVerifier
from lamina.manifest.models import JwtSpec
from oidc_issuer import Issuer, oidc_issuer

DISCOVERY = "/pool/.well-known/openid-configuration"


def verifier(issuer: Issuer, clock: FakeClock, **spec: object) -> JwtVerifier:
    jwt_spec = JwtSpec(issuer=issuer.url, audience=("web",), **spec)  # type: ignore[arg-type]
    keys = JwksKeys(clock, jwks_uri=jwt_spec.jwks_uri, issuer=jwt_spec.issuer)
    return JwtVerifier(jwt_spec, keys)


async def denied(check: JwtVerifier, token: str) -> AuthDenied:
    with pytest.raises(AuthDenied) as info:
        await check.check(f"Bearer {token}", time.time())
    return info.value


async def test_keys_are_found_by_discovery_and_fetched_once() -> None:
    with oidc_issuer() as issuer:
        check = verifier(issuer, FakeClock())
        first = await check.check(f"Bearer {issuer.token(aud='web')}", time.time())
        second = await check.check(issuer.token(aud="web", sub="user-2"), time.time())
    assert (first.claims["sub"], second.claims["sub"]) == ("user-1", "user-2")
    assert issuer.paths == [DISCOVERY, "/pool/jwks.json"]


async def test_a_given_jwks_uri_skips_discovery() -> None:
    with oidc_issuer() as issuer:
        check = verifier(issuer, FakeClock(), jwks_uri=issuer.jwks_uri)
        found = await check.check(issuer.token(aud="web"), time.time())
    assert found.claims["iss"] == issuer.url
    assert issuer.paths == ["/pool/jwks.json"]


async def test_rotated_keys_are_fetched_again_but_unknown_kids_only_every_ten_seconds() -> None:
    clock = FakeClock()
    with oidc_issuer() as issuer:
        check = verifier(issuer, clock)
        await check.check(issuer.token(aud="web"), time.time())
        clock.advance(11)
        issuer.rotate()
        rotated = await check.check(issuer.token(aud="web", sub="after"), time.time())
        made_up = await denied(check, issuer.token(kid="nobody", aud="web"))
        fetches_then = len(issuer.paths)
        clock.advance(10)
        await denied(check, issuer.token(kid="nobody", aud="web"))
    assert rotated.claims["sub"] == "after"
    assert made_up.status == 401
    assert b"not one of the issuer's keys" in dict(made_up.headers)[b"www-authenticate"]
    assert fetches_then == 4  # discovery + keys, then again for the rotated key: not for "nobody"
    assert len(issuer.paths) == 6  # ten seconds later, "nobody" may fetch once more


async def test_bad_tokens_are_refused_with_the_reason() -> None:
    other = Issuer()  # a key the issuer never published, under a kid it did
    with oidc_issuer() as issuer:
        check = verifier(issuer, FakeClock())
        forged = other.token(kid="key-1", aud="web", iss=issuer.url)
        reasons = {
            "no kid": await denied(check, issuer.token(kid=None, aud="web")),
            "forged": await denied(check, forged),
            "audience": await denied(check, issuer.token(aud="mobile")),
            "issuer": await denied(check, issuer.token(aud="web", iss="https://evil.example")),
            "expired": await denied(check, issuer.token(aud="web", ttl_s=-5)),
        }
        cognito = await check.check(issuer.token(client_id="web"), time.time())  # no aud
    said = {name: dict(d.headers)[b"www-authenticate"].decode() for name, d in reasons.items()}
    assert {d.status for d in reasons.values()} == {401}
    assert "names no key (kid)" in said["no kid"]
    assert "signature does not verify" in said["forged"]
    assert "valid audience" in said["audience"]
    assert "valid issuer" in said["issuer"]
    assert "expired" in said["expired"]
    assert cognito.claims["client_id"] == "web"


async def test_an_unreachable_issuer_is_a_500_and_the_next_request_tries_again() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = JwtSpec(issuer=f"http://127.0.0.1:{port}/pool")
    keys = JwksKeys(FakeClock(), issuer=spec.issuer)
    check = JwtVerifier(spec, keys)
    with oidc_issuer() as issuer:  # its token names a kid; the keys are nowhere to be found
        token = issuer.token()
    for _ in range(2):
        with pytest.raises(AuthDenied) as info:
            await check.check(token, time.time())
        assert (info.value.status, info.value.error_type) == (500, "JwksUnavailable")
    assert keys.fetches == 0


async def test_a_document_that_is_not_a_key_set_is_a_500() -> None:
    with oidc_issuer() as issuer:
        check = verifier(issuer, FakeClock(), jwks_uri=f"{issuer.url}/missing.json")
        failed = await denied(check, issuer.token(aud="web"))
    assert (failed.status, failed.message) == (500, "Internal Server Error")
