"""The `context` object handlers receive, shaped like the AWS Lambda Python runtime's."""

from __future__ import annotations

import contextvars
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClientContext",
    "CognitoIdentity",
    "FunctionInfo",
    "LambdaContext",
    "current_traceparent",
]

# The W3C traceparent of the invocation running in this context (its own span): what
# `lamina.traceparent()` returns and `lamina.invoke`/`send`/... pass on. A context variable, so
# it is right for each of several `async def` invocations running at once.
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lamina_traceparent", default=None
)


@dataclass(slots=True)
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass(slots=True)
class ClientContext:
    client: Any = None
    custom: Any = None
    env: Any = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ClientContext | None:
        if not data:
            return None
        return cls(client=data.get("client"), custom=data.get("custom"), env=data.get("env"))


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """What an instance knows about its function; the same for every invocation."""

    name: str  # function id, "service.function"
    version: str
    arn: str
    memory_mb: int
    log_group: str
    log_stream: str


@dataclass(slots=True)
class LambdaContext:
    """Per-invocation context, with the attributes the AWS Python runtime provides."""

    aws_request_id: str
    deadline_ms: int  # wall-clock epoch milliseconds at which the invocation times out
    info: FunctionInfo
    client_context: ClientContext | None = None
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)

    @property
    def function_name(self) -> str:
        return self.info.name

    @property
    def function_version(self) -> str:
        return self.info.version

    @property
    def invoked_function_arn(self) -> str:
        return self.info.arn

    @property
    def memory_limit_in_mb(self) -> str:
        return str(self.info.memory_mb)

    @property
    def log_group_name(self) -> str:
        return self.info.log_group

    @property
    def log_stream_name(self) -> str:
        return self.info.log_stream

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)
