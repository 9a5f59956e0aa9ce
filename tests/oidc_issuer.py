"""A real OpenID Connect issuer on a free loopback port, for JWT authorizer tests: it serves
`/.well-known/openid-configuration` and its key set at `/jwks.json`, and signs RS256 tokens
with its current key. `rotate()` starts signing with a new key (published alongside the old
one); `paths` lists every request it answered, so tests can count key fetches."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class Issuer:
    def __init__(self) -> None:
        self.url = ""  # the issuer (iss), e.g. http://127.0.0.1:PORT/pool
        self.paths: list[str] = []  # requested paths, in order
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []  # (kid, key), newest last
        self.rotate()

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks.json"

    def rotate(self) -> str:
        """Sign with a new key from now on; returns its kid."""
        kid = f"key-{len(self._keys) + 1}"
        self._keys.append((kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    def token(self, kid: str | None = "", ttl_s: float = 300, **claims: Any) -> str:
        """An RS256 token from this issuer (`iss`, `exp` filled in); `kid=None` leaves the
        header without one, `kid=""` names the current key."""
        current, key = self._keys[-1]
        body = {"iss": self.url, "sub": "user-1", "exp": int(time.time() + ttl_s), **claims}
        headers = {} if kid is None else {"kid": kid or current}
        return jwt.encode(body, key, algorithm="RS256", headers=headers)

    def document(self, path: str) -> Any:
        if path.endswith("/.well-known/openid-configuration"):
            return {"issuer": self.url, "jwks_uri": self.jwks_uri}
        if path.endswith("/jwks.json"):
            keys = []
            for kid, key in self._keys:
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
            return {"keys": keys}
        return None


@contextlib.contextmanager
def oidc_issuer() -> Iterator[Issuer]:
    """Serve an `Issuer` on 127.0.0.1 (a free port) until the block ends."""
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.paths.append(self.path)
            found = issuer.document(self.path)
            body = json.dumps(found).encode()
            self.send_response(404 if found is None else 200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request lines on the test's stderr

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}/pool"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
