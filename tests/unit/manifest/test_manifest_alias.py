"""`alias:` on a trigger (HTTP route, queue, topic, schedule): which function alias it invokes."""

from __future__ import annotations

from collections.abc import Callable

from lamina.errors import ManifestError
from lamina.manifest import AppSpec

Parse = Callable[[str], AppSpec]  # the `parse` and `fail` fixtures of this folder's conftest
Fail = Callable[[str], ManifestError]

_EVENTS = """\
app: shop
services:
  users:
    path: services/users
    functions:
      signup:
        handler: handlers.signup
        events:
{events}
"""
_APP = _EVENTS.replace("{events}", "          - http: {{route: POST /users, alias: {alias}}}")


def test_a_route_may_name_an_alias(parse: Parse) -> None:
    app = parse(_APP.format(alias="beta"))
    [(_, trigger, fid)] = app.http_routes()
    assert (trigger.alias, fid) == ("beta", "users.signup")
    assert (
        parse(_APP.format(alias="beta").replace(", alias: beta", "")).http_routes()[0][1].alias
        is None
    )


def test_an_alias_of_only_digits_is_refused_with_its_key_path(fail: Fail) -> None:
    error = fail(_APP.format(alias="'7'"))
    assert error.path == "services.users.functions.signup.events[0].http.alias"
    assert "not only digits" in error.message


def test_an_alias_with_a_colon_is_refused(fail: Fail) -> None:
    error = fail(_APP.format(alias="'a:b'"))
    assert error.path == "services.users.functions.signup.events[0].http.alias"
    assert "got 'a:b'" in error.message


def _events(*lines: str) -> str:
    return _EVENTS.format(events="\n".join(f"          - {line}" for line in lines))


def test_queue_topic_and_schedule_triggers_may_name_an_alias(parse: Parse) -> None:
    app = parse(
        _events(
            "queue: {name: jobs, batch_size: 1, alias: beta}",
            "topic: {name: news, alias: canary-1}",
            "schedule: {expression: rate(1 minute), alias: beta}",
            "queue: plain",
        )
    )
    fn = app.functions()["users.signup"]
    assert [t.alias for t in fn.events] == ["beta", "canary-1", "beta", None]


def test_an_alias_of_only_digits_on_a_queue_is_refused_with_its_key_path(fail: Fail) -> None:
    error = fail(_events("queue: {name: jobs, alias: '12'}"))
    assert error.path == "services.users.functions.signup.events[0].queue.alias"
    assert "not only digits" in error.message


def test_one_function_subscribes_to_a_topic_with_one_alias(fail: Fail, parse: Parse) -> None:
    error = fail(_events("topic: {name: news, alias: beta}", "topic: news"))
    assert error.path == "services.users.functions.signup.events[1].topic"
    assert error.message == (
        "the function subscribes to topic 'news' with alias 'beta' already; "
        "one topic, one alias per function"
    )
    same = parse(_events("topic: {name: news, alias: beta}", "topic: {name: news, alias: beta}"))
    assert len(same.functions()["users.signup"].events) == 2
