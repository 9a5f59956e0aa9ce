"""Calls function code makes into the platform it runs on (`lamina.invoke`, `lamina.send`, ...).

`invoke` and `invoke_async` reach the platform's Invoke API at `LAMINA_API_URL`; `send` and
`publish` reach the admin API at `LAMINA_ADMIN_URL` with the function token
`LAMINA_FUNCTION_TOKEN` (which opens only the producer routes). The platform puts all three in
every function's environment. Standard library only, so importing `lamina` costs nothing.

Each call carries the running invocation's W3C `traceparent` (`traceparent()`), so what it
causes (the invoked function, the queue or topic message's consumers) joins the same trace.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from lamina.errors import ClientError, InvocationError
from lamina.runtime.context import current_traceparent

__all__ = [
    "FunctionError",
    "MessageRefused",
    "PublishError",
    "SendError",
    "invoke",
    "invoke_async",
    "publish",
    "send",
    "traceparent",
]


def traceparent() -> str | None:
    """The W3C `traceparent` of the invocation running now (its trace id and its own span id),
    to pass on to other services; None outside an invocation run by Lamina."""
    return current_traceparent.get()


def _headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the running invocation's `traceparent`, when there is one."""
    context = current_traceparent.get()
    if context:
        headers["traceparent"] = context
    return headers


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
        headers=_headers(
            {"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"}
        ),
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


# -- queues and topics ---------------------------------------------------------------------------
class MessageRefused(ClientError):
    """Raised by `lamina.send`/`lamina.publish` when the platform refused the message; names the
    queue or topic and carries the HTTP status (404: no such queue/topic, 413: too large)."""

    kind = "destination"

    def __init__(self, name: str, message: str, *, status: int = 0) -> None:
        self.name = name
        self.status = status
        self.message = message
        super().__init__(f"{self.kind} {name!r}: {message}")


class SendError(MessageRefused):
    """Raised by `lamina.send` when a message could not be sent to its queue."""

    kind = "queue"


class PublishError(MessageRefused):
    """Raised by `lamina.publish` when a message could not be published to its topic."""

    kind = "topic"


def _admin(path: str, body: dict[str, Any], error: type[MessageRefused], name: str) -> Any:
    url = os.environ.get("LAMINA_ADMIN_URL")
    token = os.environ.get("LAMINA_FUNCTION_TOKEN") or os.environ.get("LAMINA_ADMIN_TOKEN")
    if not url or not token:
        raise error(
            name,
            "LAMINA_ADMIN_URL and LAMINA_FUNCTION_TOKEN are not set: lamina.send and "
            "lamina.publish work inside functions run by Lamina (or set both, the token to "
            "the admin token, to call a platform from elsewhere)",
        )
    request = urllib.request.Request(
        f"{url.rstrip('/')}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers=_headers({"Content-Type": "application/json", "Authorization": f"Bearer {token}"}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30.0) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            text = json.loads(raw).get("message") or raw.decode()
        except (ValueError, AttributeError):
            text = raw.decode(errors="replace")
        raise error(name, f"HTTP {exc.code}: {text}", status=exc.code) from exc
    except OSError as exc:
        raise error(name, f"cannot reach the Lamina admin API at {url}: {exc}") from exc


def _as_text(message: Any, error: type[MessageRefused], name: str) -> str:
    if isinstance(message, str):
        return message
    try:
        return json.dumps(message)
    except (TypeError, ValueError) as exc:
        raise error(name, f"message: expected a str or a JSON value, got {exc}") from None


def _checked_attributes(
    attributes: dict[str, Any] | None, error: type[MessageRefused], name: str
) -> dict[str, Any]:
    for key, value in (attributes or {}).items():
        if isinstance(value, bool) or not isinstance(value, str | int | float | list):
            raise error(name, f"attribute {key!r}: expected a str, number or list, got {value!r}")
    return dict(attributes or {})


def _message_id(answer: Any) -> str:
    return str(answer.get("message_id", "")) if isinstance(answer, dict) else ""


def send(
    queue: str,
    message: Any,
    attributes: dict[str, Any] | None = None,
    delay_seconds: float = 0,
) -> str:
    """Send `message` (a str, or any JSON value, sent as its JSON text) to `queue`; it is stored
    durably before this returns. Returns the message id; raises SendError naming the queue."""
    body = {
        "body": _as_text(message, SendError, queue),
        "attributes": _checked_attributes(attributes, SendError, queue),
        "delay_seconds": delay_seconds,
    }
    path = f"/queues/{urllib.parse.quote(queue, safe='')}/messages"
    return _message_id(_admin(path, body, SendError, queue))


def publish(
    topic: str,
    message: Any,
    subject: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> str:
    """Publish `message` (a str, or any JSON value, sent as its JSON text) to every subscription
    of `topic`, durably. Returns the message id; raises PublishError naming the topic."""
    body = {
        "message": _as_text(message, PublishError, topic),
        "subject": subject,
        "attributes": _checked_attributes(attributes, PublishError, topic),
    }
    path = f"/topics/{urllib.parse.quote(topic, safe='')}/messages"
    return _message_id(_admin(path, body, PublishError, topic))
