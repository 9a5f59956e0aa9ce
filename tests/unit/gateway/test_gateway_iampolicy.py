"""IAM policies answered by REST API authorizers, evaluated for execute-api:Invoke on a
method ARN: wildcards, an explicit Deny winning, and statements that never allow."""

from __future__ import annotations

from typing import Any

import pytest

from lamina.gateway.iampolicy import PolicyError, allows

ARN = "arn:aws:execute-api:us-east-1:000000000000:api/$default/GET/pets/7"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def stmt(effect: str, resource: Any, action: Any = "execute-api:Invoke", **more: Any) -> Any:
    return {"Effect": effect, "Action": action, "Resource": resource, **more}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (policy(stmt("Allow", ARN)), True),
        (policy(stmt("Allow", "arn:aws:execute-api:us-east-1:000000000000:api/*")), True),
        (policy(stmt("Allow", "arn:aws:execute-api:*:*:api/*/GET/pets/?")), True),
        (policy(stmt("Allow", "arn:aws:execute-api:*:*:api/*/POST/*")), False),
        (policy(stmt("Allow", "*", action="execute-api:*")), True),
        (policy(stmt("Allow", ["arn:other", "*"], action=["s3:GetObject", "*"])), True),
        (policy(stmt("Allow", "*", action="s3:GetObject")), False),
        (policy(stmt("Allow", "*"), stmt("Deny", "*:*/GET/pets/*")), False),
        (policy(stmt("Allow", "*", Condition={"IpAddress": {}})), False),
        (policy(), False),
        ({"Statement": stmt("Allow", "*")}, True),
    ],
    ids=[
        "the exact method ARN is allowed",
        "a trailing wildcard spans slashes",
        "? matches one character",
        "another method is not allowed",
        "execute-api:* on everything",
        "lists of actions and resources",
        "another service's action allows nothing",
        "an explicit deny wins over an allow",
        "a condition is never assumed to hold",
        "no statement denies",
        "a single statement mapping",
    ],
)
def test_a_policy_allows_a_method_arn(document: dict[str, Any], expected: bool) -> None:
    assert allows(document, ARN) is expected


@pytest.mark.parametrize("document", [None, "allow", {"Statement": "Allow"}, {"Statement": [1]}])
def test_a_malformed_policy_is_an_error(document: Any) -> None:
    with pytest.raises(PolicyError):
        allows(document, ARN)
