"""Invalid manifests raise ManifestError naming the file, key path and line, and what was expected.

Each case pins the whole message, `lamina.yaml:LINE: PATH: MESSAGE`, so a change in wording or
in location shows up here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.errors import ManifestError
from lamina.manifest import load_app, parse_app
from lamina.manifest._check import Checker, build
from lamina.manifest.models import TableSpec

Fail = Callable[[str], ManifestError]

FN = "services.users.functions.signup"


def function(*lines: str) -> str:
    """A manifest whose function `users.signup` has a handler (line 6) then `lines` (line 7...)."""
    head = "app: shop\nservices:\n  users:\n    functions:\n      signup:\n"
    return head + "".join(f"        {line}\n" for line in ("handler: handlers.signup", *lines))


FUNCTION_CASES = [
    pytest.param(["memory: 64"], 7, "memory", "expected an integer 128-10240 (MB), got 64",
                 id="memory below 128 MB"),
    pytest.param(["memory: 20000"], 7, "memory",
                 "expected an integer 128-10240 (MB), got 20000", id="memory above 10240 MB"),
    pytest.param(['memory: "256"'], 7, "memory",
                 "expected an integer 128-10240 (MB), got '256'", id="memory as a string"),
    pytest.param(["memory: 256.5"], 7, "memory",
                 "expected an integer 128-10240 (MB), got 256.5", id="memory as a fraction"),
    pytest.param(["memory: yes"], 7, "memory", "expected an integer 128-10240 (MB), got true",
                 id="memory as a boolean"),
    pytest.param(["cpu: 0"], 7, "cpu",
                 "expected a number of CPUs > 0 and <= 64 (e.g. 0.5), got 0", id="cpu of zero"),
    pytest.param(["cpu: two"], 7, "cpu",
                 "expected a number of CPUs > 0 and <= 64 (e.g. 0.5), got 'two'",
                 id="cpu as a word"),
    pytest.param(["timeout: 0"], 7, "timeout",
                 "expected a number of seconds > 0 and <= 900, got 0", id="timeout of zero"),
    pytest.param(["timeout: 901"], 7, "timeout",
                 "expected a number of seconds > 0 and <= 900, got 901", id="timeout over 900 s"),
    pytest.param(["timeout: .inf"], 7, "timeout",
                 "expected a number of seconds > 0 and <= 900, got inf", id="timeout infinite"),
    pytest.param(["timeout:"], 7, "timeout",
                 "expected a number of seconds > 0 and <= 900, got null", id="timeout left empty"),
    pytest.param(["max_instances: 0"], 7, "max_instances", "expected an integer 1-1000, got 0",
                 id="max_instances of zero"),
    pytest.param(["max_instances: 2", "min_instances: 5"], 8, "min_instances",
                 "expected at most max_instances (2), got 5", id="min_instances above max"),
    pytest.param(["min_instances: 11"], 7, "min_instances",
                 "expected at most max_instances (10), got 11",
                 id="min_instances above the default max"),
    pytest.param(["min_instances: -1"], 7, "min_instances", "expected an integer 0-1000, got -1",
                 id="min_instances negative"),
    pytest.param(["keep_alive: -1"], 7, "keep_alive",
                 "expected a number of seconds >= 0 or 'auto', got -1", id="keep_alive negative"),
    pytest.param(["keep_alive: automatic"], 7, "keep_alive",
                 "expected a number of seconds >= 0 or 'auto', got 'automatic'",
                 id="keep_alive neither seconds nor auto"),
    pytest.param(["concurrency: 0"], 7, "concurrency",
                 "expected an integer 1-1000 (invocations at once per instance), got 0",
                 id="concurrency of zero"),
    pytest.param(["max_queued: -1"], 7, "max_queued",
                 "expected an integer >= 0 (invocations), got -1", id="max_queued negative"),
    pytest.param(["queue_timeout: 0"], 7, "queue_timeout",
                 "expected a number of seconds > 0, got 0", id="queue_timeout of zero"),
    pytest.param(["env: [A, B]"], 7, "env",
                 "expected a mapping of variable names to values, got a list",
                 id="env as a list"),
    pytest.param(["env:", "  A: [1]"], 8, "env.A",
                 "expected a string, number or boolean, got a list", id="env value as a list"),
    pytest.param(["env: {A-B: x}"], 7, "env.A-B",
                 "expected a variable name of letters, digits and '_', not starting with a "
                 "digit, got 'A-B'", id="env name with a dash"),
    pytest.param(["preload: json"], 7, "preload", "expected a list of module names, got 'json'",
                 id="preload as a string"),
    pytest.param(["preload:", "  - json", "  - 3rd.party"], 9, "preload[1]",
                 "expected a module name like 'pkg.module', got '3rd.party'",
                 id="preload item that is not a module name"),
    pytest.param(["timout: 10"], 7, "", "unknown key 'timout'; did you mean 'timeout'?",
                 id="misspelt key suggests the close one"),
    pytest.param(["colour: red"], 7, "",
                 "unknown key 'colour'; expected one of: handler, memory, cpu, timeout, "
                 "max_instances, "
                 "min_instances, keep_alive, concurrency, max_queued, queue_timeout, env, "
                 "preload, events, async", id="unknown key without a close match lists the keys"),
    pytest.param(["memory: 128", "memory: 256"], 8, "",
                 "duplicate key 'memory' (first at line 7)", id="key written twice"),
    pytest.param(["events: POST /users"], 7, "events",
                 "expected a list of triggers, got 'POST /users'", id="events not a list"),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "line", "key", "message"), FUNCTION_CASES)
def test_function_settings_out_of_range_or_of_the_wrong_type(
    fail: Fail, lines: list[str], line: int, key: str, message: str
) -> None:
    error = fail(function(*lines))
    path = f"{FN}.{key}" if key else FN
    assert (error.file, error.path, error.line, error.message) == (
        "lamina.yaml",
        path,
        line,
        message,
    )
    assert str(error) == f"lamina.yaml:{line}: {path}: {message}"


EVENT_CASES = [
    pytest.param("- http: POST users", "events[0].http",
                 "route path must start with '/', got 'users' in 'POST users'",
                 id="route key without a leading slash"),
    pytest.param("- http: FETCH /users", "events[0].http",
                 "unknown HTTP method 'FETCH' in 'FETCH /users'; expected one of ANY, DELETE, "
                 "GET, HEAD, OPTIONS, PATCH, POST, PUT", id="route key with an unknown method"),
    pytest.param('- http: {route: "GET /a/{x}/{x}"}', "events[0].http.route",
                 "path parameter {x} appears twice in 'GET /a/{x}/{x}'",
                 id="route key in the mapping form"),
    pytest.param("- http: {route: GET /a, format: 3}", "events[0].http.format",
                 "expected '2.0' or '1.0', got 3", id="http payload format unknown"),
    pytest.param("- http: {auth: jwt}", "events[0].http", "missing required key 'route'",
                 id="http mapping without a route"),
    pytest.param("- http: {route: GET /a, auht: jwt}", "events[0].http",
                 "unknown key 'auht'; did you mean 'auth'?", id="http mapping with a typo"),
    pytest.param("- htp: POST /users", "events[0]",
                 "unknown trigger 'htp'; did you mean 'http'?", id="misspelt trigger kind"),
    pytest.param("- {http: POST /a, queue: q}", "events[0]",
                 "expected exactly one trigger key (http, schedule, queue, topic), got 'http', "
                 "'queue'", id="two trigger kinds in one item"),
    pytest.param("- http", "events[0]", "expected 'http: ...' with a value, got just 'http'",
                 id="trigger kind without a value"),
    pytest.param("- schedule: every 5 minutes", "events[0].schedule",
                 "expected rate(N unit) with N >= 1 and unit second(s), minute(s), hour(s) or "
                 "day(s), or cron(minutes hours day-of-month month day-of-week year), got "
                 "'every 5 minutes'", id="schedule that is neither rate nor cron"),
    pytest.param("- schedule: rate(0 minutes)", "events[0].schedule",
                 "expected rate(N unit) with N >= 1 and unit second(s), minute(s), hour(s) or "
                 "day(s), or cron(minutes hours day-of-month month day-of-week year), got "
                 "'rate(0 minutes)'", id="schedule rate of zero"),
    pytest.param("- schedule: cron(0 12 * * ?)", "events[0].schedule",
                 "expected 6 cron fields, got 5 in 'cron(0 12 * * ?)'",
                 id="schedule cron with five fields"),
    pytest.param("- schedule: {input: {}}", "events[0].schedule",
                 "missing required key 'expression'", id="schedule mapping without expression"),
    pytest.param("- queue: {name: emails, batch_size: 500}", "events[0].queue.batch_size",
                 "expected an integer 1-100, got 500", id="queue batch too large"),
    pytest.param("- queue: {name: emails, visibility_timeout: 0}",
                 "events[0].queue.visibility_timeout",
                 "expected a number of seconds > 0 and <= 43200, got 0",
                 id="queue visibility timeout of zero"),
    pytest.param("- queue: bad name!", "events[0].queue",
                 "expected a name of letters, digits, '_' or '-', at most 80 characters, got "
                 "'bad name!'", id="queue name with a space"),
    pytest.param(f"- topic: {'t' * 81}", "events[0].topic",
                 "expected a name of letters, digits, '_' or '-', at most 80 characters, got "
                 f"'{'t' * 57}...'", id="topic name longer than 80"),
    pytest.param("- topic: {name: orders, filter_policy: [paid]}",
                 "events[0].topic.filter_policy", "expected a mapping, got a list",
                 id="topic filter policy as a list"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "key", "message"), EVENT_CASES)
def test_invalid_triggers_are_located_at_their_item(
    fail: Fail, item: str, key: str, message: str
) -> None:
    error = fail(function("events:", f"  {item}"))
    assert (error.path, error.line, error.message) == (f"{FN}.{key}", 8, message)


STRUCTURE_CASES = [
    pytest.param("", None, "", "the file is empty; expected a mapping with 'app' and 'services'",
                 id="empty file"),
    pytest.param("- app: shop\n", 1, "",
                 "expected a mapping with 'app' and 'services', got a list",
                 id="top level is a list"),
    pytest.param("services: {}\n", 1, "", "missing required key 'app'", id="no app name"),
    pytest.param("app: Shop\n", 1, "app",
                 "expected an app name of lowercase letters, digits and '-', starting with a "
                 "letter or digit, got 'Shop'", id="app name with a capital"),
    pytest.param("app: shop\nservics: {}\n", 2, "", "unknown key 'servics'; did you mean "
                 "'services'?", id="misspelt top-level key"),
    pytest.param("app: shop\nservices: [users]\n", 2, "services",
                 "expected a mapping, got a list", id="services as a list"),
    pytest.param("app: shop\nservices:\n  users.v2: {}\n", 3, "services.users.v2",
                 "expected a name of letters, digits, '_' or '-', got 'users.v2'",
                 id="service name with a dot"),
    pytest.param("app: shop\nservices:\n  users: 5\n", 3, "services.users",
                 "expected a mapping, got 5", id="service that is a number"),
    pytest.param("app: shop\nservices:\n  users:\n    path: nowhere\n", 4, "services.users.path",
                 "code folder nowhere does not exist", id="service path that does not exist"),
    pytest.param("app: shop\nservices:\n  billing:\n    env: {}\n", 3, "services.billing.path",
                 "code folder services/billing does not exist (the default when 'path' is "
                 "not given)", id="default service path that does not exist"),
    pytest.param("app: shop\nservices:\n  users:\n    requirements: reqs.txt\n", 4,
                 "services.users.requirements",
                 "requirements file services/users/reqs.txt does not exist",
                 id="requirements file that does not exist"),
    pytest.param("app: shop\nservices:\n  users:\n    requirements: .\n", 4,
                 "services.users.requirements",
                 "services/users is a folder; expected a requirements file",
                 id="requirements naming a folder"),
    pytest.param("app: shop\nservices:\n  users:\n    requirements: [a.txt]\n", 4,
                 "services.users.requirements",
                 "expected a requirements file path like 'requirements.txt', got a list",
                 id="requirements as a list"),
    pytest.param("app: shop\nservices:\n  users:\n    env: 5\n", 4, "services.users.env",
                 "expected a mapping of variable names to values, got 5", id="service env"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n      users: {sort: at}\n", 5,
                 "services.users.tables.users", "missing required key 'key'",
                 id="table without a key"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n      users: {key: a, index: b}\n",
                 5, "services.users.tables.users",
                 "unknown key 'index'; expected one of: key, sort, ttl",
                 id="table with an unknown key"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n      users: {key: id, sort: id}\n",
                 5, "services.users.tables.users.sort",
                 "'id' is already the key attribute; expected another one",
                 id="table whose sort key is its key"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n"
                 "      users: {key: id, sort: at, ttl: at}\n",
                 5, "services.users.tables.users.ttl",
                 "'at' is already the sort attribute; expected another one",
                 id="table whose ttl is its sort key"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n      users: {key: 'a\"b'}\n",
                 5, "services.users.tables.users.key",
                 "expected an attribute name (1-255 characters, no quotes, backslashes or control"
                 " characters), got 'a\"b'", id="table key with a quote"),
    pytest.param("app: shop\nservices:\n  users:\n    tables:\n      users: {key: 5}\n",
                 5, "services.users.tables.users.key",
                 "expected an attribute name (1-255 characters, no quotes, backslashes or control"
                 " characters), got 5", id="table key that is a number"),
    pytest.param("app: shop\nservices:\n  users:\n    functions:\n      sign.up: {}\n", 5,
                 "services.users.functions.sign.up",
                 "expected a name of letters, digits, '_' or '-', got 'sign.up'",
                 id="function name with a dot"),
    pytest.param("app: shop\nservices:\n  users:\n    functions:\n      signup:\n"
                 "        memory: 256\n", 5, FN, "missing required key 'handler'",
                 id="function without a handler"),
    pytest.param("app: shop\nservices:\n  users:\n    functions:\n      signup:\n", 5,
                 f"{FN}", "missing required key 'handler'", id="function left empty"),
    pytest.param(function().replace("handlers.signup", "signup"), 6, f"{FN}.handler",
                 "expected 'module.function' (or 'pkg.module.function'), e.g. "
                 "'handlers.signup', got 'signup'", id="handler without a dot"),
    pytest.param(function().replace("handlers.signup", "class.signup"), 6, f"{FN}.handler",
                 "expected 'module.function' (or 'pkg.module.function'), e.g. "
                 "'handlers.signup', got 'class.signup'", id="handler module is a keyword"),
    pytest.param(function().replace("handlers.signup", "views.signup"), 6, f"{FN}.handler",
                 "module 'views' not found in services/users (looked for "
                 "services/users/views.py, services/users/views/__init__.py)",
                 id="handler module that does not exist"),
    pytest.param(function().replace("handlers.signup", "api.v1.signup"), 6, f"{FN}.handler",
                 "module 'api.v1' not found in services/users (looked for "
                 "services/users/api/v1.py, services/users/api/v1/__init__.py)",
                 id="handler module in a package that does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "path", "message"), STRUCTURE_CASES)
def test_invalid_structure_is_located(
    root: Path, text: str, line: int | None, path: str, message: str
) -> None:
    with pytest.raises(ManifestError) as info:
        parse_app(text, root=root)
    assert (info.value.path, info.value.line, info.value.message) == (path, line, message)


ROUTE_CASES = [
    pytest.param("GET /users/{id}", "GET /users/{id}", "users.get",
                 id="the same route in two functions"),
    pytest.param("GET /users/{id}", "get /users/{name}", "users.get",
                 id="routes differing only in parameter names"),
    pytest.param("ANY /{proxy+}", "ANY /{path+}", "users.get",
                 id="greedy routes differing only in parameter names"),
    pytest.param("$default", "$default", "users.get", id="a second $default route"),
]  # fmt: skip


@pytest.mark.parametrize(("first", "second", "first_id"), ROUTE_CASES)
def test_two_functions_on_one_route_fail_naming_both(
    fail: Fail, first: str, second: str, first_id: str
) -> None:
    error = fail(f"""
        app: shop
        services:
          users:
            functions:
              get:
                handler: handlers.signup
                events: [http: "{first}"]
          orders:
            functions:
              lookup:
                handler: app.lookup
                events:
                  - queue: lookups
                  - http: "{second}"
        """)
    shown = "$default" if second == "$default" else second.replace("get ", "GET ")
    assert (error.path, error.line) == ("services.orders.functions.lookup.events[1].http", 15)
    assert error.message == (
        f"route '{shown}' of orders.lookup is the same route as '{first}' of {first_id} "
        "(line 8); each route may belong to one function only"
    )


def test_one_function_may_not_list_a_route_twice(fail: Fail) -> None:
    error = fail(function("events:", "  - http: GET /a", '  - http: {route: "GET /a"}'))
    assert (error.path, error.line) == (f"{FN}.events[1].http.route", 9)
    assert "of users.signup is the same route as 'GET /a' of users.signup" in error.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("app: shop\nservices:\n  users: {functions: [}\n", 3,
                     "invalid YAML: while parsing a flow node, expected the node content, but "
                     "found '}'", id="unbalanced brackets"),
        pytest.param("app: shop\n  services: {}\n", 2,
                     "invalid YAML: mapping values are not allowed here", id="bad indentation"),
        pytest.param("app: shop\n---\napp: other\n", 2,
                     "invalid YAML: expected a single document in the stream, but found "
                     "another document", id="two documents"),
        pytest.param("app: &a shop\nservices: *b\n", 2,
                     "invalid YAML: found undefined alias 'b'",
                     id="undefined alias"),
    ],
)  # fmt: skip
def test_yaml_syntax_errors_carry_the_line(root: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_app(text, root=root, file_name="app/lamina.yaml")
    assert (info.value.file, info.value.path, info.value.line) == ("app/lamina.yaml", "", line)
    assert info.value.message == message


def test_a_missing_manifest_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_app(tmp_path)
    assert info.value.message == f"no lamina.yaml in {tmp_path}"
    assert info.value.line is None


def test_errors_name_the_file_relative_to_the_working_directory(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "lamina.yaml").write_text(function("memory: 1"))
    monkeypatch.chdir(root.parent)
    with pytest.raises(ManifestError) as info:
        load_app(root.name)
    assert str(info.value) == (
        f"{os.path.join(root.name, 'lamina.yaml')}:7: {FN}.memory: "
        "expected an integer 128-10240 (MB), got 1"
    )


def test_a_manifest_that_is_not_utf8_is_reported(root: Path) -> None:
    (root / "lamina.yaml").write_bytes(b"app: caf\xe9\n")
    with pytest.raises(ManifestError, match="not UTF-8 text"):
        load_app(root)


def test_pydantic_errors_that_slip_past_the_checks_become_manifest_errors() -> None:
    check = Checker("lamina.yaml", {"services.users.tables.t": 9})
    with pytest.raises(ManifestError) as info:
        build(check, TableSpec, "services.users.tables.t", key="")
    assert str(info.value) == (
        "lamina.yaml:9: services.users.tables.t.key: "
        "String should have at least 1 character, got ''"
    )
