"""Calls function code makes into the platform it runs on (`lamina.invoke`, ...).

They reach the platform's Invoke API at the address the platform puts in `LAMINA_API_URL`,
with the standard library only, so importing `lamina` inside an instance costs nothing.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from lamina.errors import ClientError, InvocationError

__all__ = ["FunctionError", "invoke", "invoke_async"]


class FunctionError(InvocationError):
    """Raised by `lamina.invoke` when the invoked function itself raised; carries its error body."""

    def __init__(self, function_id: str, body: dict[str, Any], request_id: str = "") -> None:
        self.body = body
        self.error_type = str(body.get("errorType", "Error"))
        super().__init__(
            f"{self.error_type}: {body.get('errorMessage', '')}",
            function_id=function_id,
            request_id=request_id,
        )


def _api_url() -> str:
    url = os.environ.get("LAMINA_API_URL")
    if not url:
        raise ClientError(
            "LAMINA_API_URL is not set: lamina.invoke works inside functions run by Lamina, "
            "or set LAMINA_API_URL to a platform's gateway URL"
        )
    return url.rstrip("/")


def _call(
    function_id: str, payload: Any, invocation_type: str, timeout_s: float
) -> tuple[int, dict[str, str], bytes]:
    url = f"{_api_url()}/2015-03-31/functions/{function_id}/invocations"
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            message = (
                json.loads(body).get("message") or json.loads(body).get("Message") or body.decode()
            )
        except ValueError:
            message = body.decode(errors="replace")
        raise InvocationError(f"HTTP {exc.code}: {message}", function_id=function_id) from exc
    except OSError as exc:
        raise ClientError(f"cannot reach the Lamina platform at {url}: {exc}") from exc


def invoke(function_id: str, payload: Any = None, *, timeout_s: float = 900.0) -> Any:
    """Invoke `function_id` and return its result; raises FunctionError if it raised."""
    _status, headers, body = _call(function_id, payload, "RequestResponse", timeout_s)
    value = json.loads(body) if body else None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "x-amz-function-error" in lowered:
        raise FunctionError(
            function_id,
            value if isinstance(value, dict) else {"errorMessage": str(value)},
            lowered.get("x-amzn-requestid", ""),
        )
    return value


def invoke_async(function_id: str, payload: Any = None) -> str:
    """Queue an invocation of `function_id`; returns its request id without waiting for it."""
    _status, headers, _ = _call(function_id, payload, "Event", 30.0)
    return {k.lower(): v for k, v in headers.items()}.get("x-amzn-requestid", "")
