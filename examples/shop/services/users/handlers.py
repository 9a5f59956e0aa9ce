"""users: sign up (salted scrypt hash), log in (issues the JWT the gateway verifies), profile.

Owns the table `users` (key: email). The token carries `sub` (the email), `scope` and `exp`;
users listed in ADMIN_EMAILS also get the `catalog:admin` scope.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

import jwt

import lamina

users = lamina.table("users")

# scrypt parameters (OWASP's N=2^15, r=8, p=3: 32 MiB and a fraction of a second per hash).
# They are stored with every hash, so they can be raised later without breaking old ones.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3
USER_SCOPES = "orders:read orders:write"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    candidate = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r, dklen=32
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _reply(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def _json_body(event):
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _credentials(event):
    body = _json_body(event)
    if body is None:
        return None, None, "expected a JSON object with email and password"
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or "@" not in email:
        return None, None, "email: expected an email address"
    if not isinstance(password, str):
        return None, None, "password: expected a string"
    return email.strip().lower(), password, None


def signup(event, context):
    email, password, problem = _credentials(event)
    if problem:
        return _reply(400, {"message": problem})
    if len(password) < 8:
        return _reply(400, {"message": "password: expected at least 8 characters"})
    item = {"email": email, "password_hash": hash_password(password), "created_at": time.time()}
    try:
        users.put(item, if_absent=True)
    except lamina.ConditionFailed:
        return _reply(409, {"message": f"{email} is already signed up"})
    print(f"signed up {email}")
    return _reply(201, {"email": email})


def login(event, context):
    email, password, problem = _credentials(event)
    if problem:
        return _reply(400, {"message": problem})
    user = users.get(email)
    if user is None or not verify_password(password, user["password_hash"]):
        return _reply(401, {"message": "wrong email or password"})
    admins = {e.strip().lower() for e in os.environ.get("ADMIN_EMAILS", "").split(",")}
    scope = USER_SCOPES + (" catalog:admin" if email in admins else "")
    now = int(time.time())
    ttl = int(os.environ.get("TOKEN_TTL", "3600"))
    claims = {
        "iss": os.environ["JWT_ISSUER"],
        "aud": os.environ["JWT_AUDIENCE"],
        "sub": email,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
    }
    token = jwt.encode(claims, os.environ["JWT_SECRET"], algorithm="HS256")
    return _reply(200, {"token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope})


def profile(event, context):
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    user = users.get(claims["sub"])
    if user is None:
        return _reply(404, {"message": "no such user"})
    return {"email": user["email"], "created_at": user["created_at"], "scope": claims["scope"]}
