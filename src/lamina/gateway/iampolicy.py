"""The IAM policies REST API Lambda authorizers answer with, evaluated as API Gateway does for
`execute-api:Invoke`. Pure.

A statement applies when its `Action` names `execute-api:Invoke` (or `execute-api:*`, `*`)
and its `Resource` matches the request's method ARN, where `*` matches any run of characters
(slashes included) and `?` any one character. An applicable `Deny` wins; else an applicable
`Allow` allows; else the request is denied. `NotAction`/`NotResource`/`Condition` are not
evaluated: a statement using them never allows, so nothing is let through by mistake.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["PolicyError", "allows"]

_ACTIONS = {"execute-api:invoke", "execute-api:*", "*"}


class PolicyError(ValueError):
    """The answer is not a policy document (no Statement list of mappings)."""


def allows(document: Any, method_arn: str) -> bool:
    """Whether `document` (a policyDocument) lets the caller invoke `method_arn`."""
    if not isinstance(document, dict):
        raise PolicyError(f"policyDocument is not a mapping: {document!r}"[:200])
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise PolicyError("policyDocument.Statement is not a list of statements")
    allowed = False
    for statement in statements:
        if not _applies(statement, method_arn):
            continue
        effect = str(statement.get("Effect", ""))
        if effect == "Deny":
            return False
        if effect == "Allow" and not {"Condition", "NotAction", "NotResource"} & set(statement):
            allowed = True
    return allowed


def _applies(statement: dict[str, Any], method_arn: str) -> bool:
    actions = _strings(statement.get("Action"))
    resources = _strings(statement.get("Resource"))
    return any(a.lower() in _ACTIONS for a in actions) and any(
        _pattern(r).fullmatch(method_arn) for r in resources
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


@lru_cache(maxsize=1024)
def _pattern(resource: str) -> re.Pattern[str]:
    """`arn:...:api/*/GET/*` as a regex: `*` any characters, `?` one, the rest literal."""
    parts = (".".join(re.escape(q) for q in part.split("?")) for part in resource.split("*"))
    return re.compile(".*".join(parts), re.DOTALL)
