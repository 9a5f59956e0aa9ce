"""Parse one `events:` item (http, schedule, queue, topic) in its short or mapping form.

`- http: POST /users` and `- http: {route: POST /users, auth: jwt}` mean the same kind of
trigger; the short form sets the one required field and leaves the rest at their defaults.
Schedules are shape-checked only (`rate(N unit)`, `cron(6 fields)`); `events` owns their meaning.
"""

from __future__ import annotations

import re
from typing import Any

from lamina.manifest._check import Checker, build, describe, unknown_key
from lamina.manifest._gateway import parse_auth, parse_rate_limit, parse_scopes
from lamina.manifest._yamlpos import child
from lamina.manifest.models import (
    HttpTrigger,
    QueueTrigger,
    ScheduleTrigger,
    TopicTrigger,
    Trigger,
)
from lamina.manifest.routekey import RouteKey

__all__ = ["TRIGGER_KINDS", "parse_trigger"]

TRIGGER_KINDS = ("http", "schedule", "queue", "topic")

_ALIAS = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,64}$")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(second|minute|hour|day)s?\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_SCHEDULE_HELP = (
    "expected rate(N unit) with N >= 1 and unit second(s), minute(s), hour(s) or day(s), "
    "or cron(minutes hours day-of-month month day-of-week year)"
)


def parse_trigger(check: Checker, item: Any, path: str) -> Trigger:
    """Parse the events item at `path` (e.g. `...signup.events[1]`)."""
    kinds = ", ".join(TRIGGER_KINDS)
    if isinstance(item, str) and item in TRIGGER_KINDS:
        check.fail(path, f"expected '{item}: ...' with a value, got just {item!r}")
    body = check.mapping(item, path, what=f"a mapping with one trigger key ({kinds})")
    if len(body) != 1:
        got = ", ".join(repr(k) for k in body) or "none"
        check.fail(path, f"expected exactly one trigger key ({kinds}), got {got}")
    ((kind, value),) = body.items()
    if kind not in TRIGGER_KINDS:
        check.fail(path, unknown_key(kind, TRIGGER_KINDS, "trigger"), at=child(path, kind))
    at = child(path, kind)
    if kind == "http":
        return _http(check, value, at)
    if kind == "schedule":
        return _schedule(check, value, at)
    if kind == "queue":
        return _queue(check, value, at)
    return _topic(check, value, at)


def _route(check: Checker, value: Any, path: str) -> RouteKey:
    text = check.string(value, path, what="a route key like 'GET /users/{id}'")
    try:
        return RouteKey.parse(text)
    except ValueError as exc:
        check.fail(path, str(exc))


def _http(check: Checker, value: Any, path: str) -> HttpTrigger:
    if not isinstance(value, dict):
        return build(check, HttpTrigger, path, route=_route(check, value, path))
    allowed = ("route", "format", "auth", "scopes", "rate_limit", "alias")
    body = check.mapping(value, path, allowed=allowed, required=("route",))
    route = _route(check, body["route"], child(path, "route"))
    fmt = body.get("format", "2.0")
    if isinstance(fmt, float) and fmt in (1.0, 2.0):  # `format: 1.0` written unquoted
        fmt = str(fmt)
    if fmt not in ("2.0", "1.0"):
        check.fail(child(path, "format"), f"expected '2.0' or '1.0', got {describe(fmt)}")
    fields: dict[str, Any] = {"route": route, "format": fmt}
    if body.get("auth") is not None:
        fields["auth"] = parse_auth(check, body["auth"], child(path, "auth"))
    if body.get("scopes") is not None:
        if fields.get("auth") != "jwt":
            check.fail(child(path, "scopes"), "scopes need 'auth: jwt' on the same route")
        fields["scopes"] = parse_scopes(check, body["scopes"], child(path, "scopes"))
    if body.get("rate_limit") is not None:
        fields["rate_limit"] = parse_rate_limit(
            check, body["rate_limit"], child(path, "rate_limit")
        )
    _alias(check, body, path, fields)
    return build(check, HttpTrigger, path, **fields)


def _alias(check: Checker, body: dict[str, Any], path: str, fields: dict[str, Any]) -> None:
    """`alias:` of a trigger's mapping form, when given, into `fields`."""
    if body.get("alias") is None:
        return
    alias = check.string(body["alias"], child(path, "alias"), what="an alias name")
    if not _ALIAS.match(alias):
        check.fail(
            child(path, "alias"),
            f"expected 1-64 letters, digits, '-' or '_' (not only digits), got {alias!r}",
        )
    fields["alias"] = alias


def _expression(check: Checker, value: Any, path: str) -> str:
    text = check.string(value, path, what="a schedule expression")
    expression = text.strip()
    rate = _RATE.match(expression)
    if rate and int(rate.group(1)) >= 1:
        return expression
    cron = _CRON.match(expression)
    if cron and len(cron.group(1).split()) == 6:
        return expression
    if cron:
        fields = len(cron.group(1).split())
        check.fail(path, f"expected 6 cron fields, got {fields} in {text!r}")
    check.fail(path, f"{_SCHEDULE_HELP}, got {text!r}")


def _schedule(check: Checker, value: Any, path: str) -> ScheduleTrigger:
    if not isinstance(value, dict):
        return build(check, ScheduleTrigger, path, expression=_expression(check, value, path))
    allowed = ("expression", "input", "alias")
    body = check.mapping(value, path, allowed=allowed, required=("expression",))
    expression = _expression(check, body["expression"], child(path, "expression"))
    fields: dict[str, Any] = {"expression": expression, "input": body.get("input")}
    _alias(check, body, path, fields)
    return build(check, ScheduleTrigger, path, **fields)


def _queue(check: Checker, value: Any, path: str) -> QueueTrigger:
    if not isinstance(value, dict):
        return build(check, QueueTrigger, path, name=check.name(value, path, max_len=80))
    allowed = (
        "name",
        "batch_size",
        "batch_window",
        "visibility_timeout",
        "max_receive_count",
        "alias",
    )
    body = check.mapping(value, path, allowed=allowed, required=("name",))
    fields: dict[str, Any] = {"name": check.name(body["name"], child(path, "name"), max_len=80)}
    if "batch_size" in body:
        fields["batch_size"] = check.integer(body["batch_size"], child(path, "batch_size"), 1, 100)
    if "batch_window" in body:
        at = child(path, "batch_window")
        fields["batch_window"] = check.seconds(body["batch_window"], at, positive=False, hi=300)
    if "visibility_timeout" in body:
        at = child(path, "visibility_timeout")
        fields["visibility_timeout"] = check.seconds(
            body["visibility_timeout"], at, positive=True, hi=43200
        )
    if "max_receive_count" in body:
        at = child(path, "max_receive_count")
        fields["max_receive_count"] = check.integer(body["max_receive_count"], at, 1, 1000)
    _alias(check, body, path, fields)
    return build(check, QueueTrigger, path, **fields)


def _topic(check: Checker, value: Any, path: str) -> TopicTrigger:
    if not isinstance(value, dict):
        return build(check, TopicTrigger, path, name=check.name(value, path, max_len=80))
    allowed = ("name", "filter_policy", "alias")
    body = check.mapping(value, path, allowed=allowed, required=("name",))
    name = check.name(body["name"], child(path, "name"), max_len=80)
    policy = body.get("filter_policy")
    if policy is not None:
        policy = check.mapping(policy, child(path, "filter_policy"))
    fields: dict[str, Any] = {"name": name, "filter_policy": policy}
    _alias(check, body, path, fields)
    return build(check, TopicTrigger, path, **fields)
