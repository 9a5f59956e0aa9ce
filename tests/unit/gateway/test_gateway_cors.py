"""CORS decisions: preflight answers and the headers actual responses get."""

from __future__ import annotations

from lamina.gateway.cors import CorsPolicy
from lamina.manifest.models import CorsSpec

SPEC = CorsSpec(
    origins=("https://app.example",),
    methods=("GET", "POST"),
    headers=("authorization", "content-type"),
    max_age=600,
)


def test_preflight_from_an_allowed_origin_gets_the_allow_headers() -> None:
    headers = dict(
        CorsPolicy(SPEC).preflight("https://app.example", "POST", "Authorization, Content-Type")
    )
    assert headers[b"access-control-allow-origin"] == b"https://app.example"
    assert headers[b"access-control-allow-methods"] == b"GET,POST"
    assert headers[b"access-control-allow-headers"] == b"authorization,content-type"
    assert headers[b"access-control-max-age"] == b"600"
    assert headers[b"vary"] == b"origin"


def test_preflight_refused_for_other_origins_methods_and_headers() -> None:
    cors = CorsPolicy(SPEC)
    assert cors.preflight("https://evil.example", "POST", None) == []
    assert cors.preflight("https://app.example", "DELETE", None) == []
    assert cors.preflight("https://app.example", "POST", "x-secret") == []


def test_actual_responses_name_allowed_origins_only() -> None:
    cors = CorsPolicy(SPEC)
    assert dict(cors.response_headers("https://app.example"))[b"access-control-allow-origin"] == (
        b"https://app.example"
    )
    assert cors.response_headers("https://evil.example") == []
    assert cors.response_headers(None) == []


def test_any_origin_answers_star_and_credentials_echo_the_origin() -> None:
    star = CorsPolicy(CorsSpec(origins=("*",)))
    assert star.response_headers("https://x.example") == [(b"access-control-allow-origin", b"*")]
    creds = CorsPolicy(CorsSpec(origins=("https://a.example",), credentials=True))
    headers = dict(creds.response_headers("https://a.example"))
    assert headers[b"access-control-allow-credentials"] == b"true"
    assert headers[b"access-control-allow-origin"] == b"https://a.example"


def test_the_functions_own_cors_headers_are_replaced() -> None:
    given = [(b"access-control-allow-origin", b"*"), (b"content-type", b"text/plain")]
    assert CorsPolicy.strip(given) == [(b"content-type", b"text/plain")]
