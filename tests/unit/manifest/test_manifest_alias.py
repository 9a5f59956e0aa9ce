"""`alias:` on an HTTP route: which function alias the route invokes."""

from __future__ import annotations

from collections.abc import Callable

from lamina.errors import ManifestError
from lamina.manifest import AppSpec

Parse = Callable[[str], AppSpec]  # the `parse` and `fail` fixtures of this folder's conftest
Fail = Callable[[str], ManifestError]

_APP = """\
app: shop
services:
  users:
    path: services/users
    functions:
      signup:
        handler: handlers.signup
        events:
          - http: {{route: POST /users, alias: {alias}}}
"""


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
