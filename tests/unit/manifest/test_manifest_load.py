"""Valid manifests load into the expected models: the DESIGN.md sketch, defaults, env, triggers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from lamina.errors import ManifestError
from lamina.manifest import (
    AppSpec,
    FunctionSpec,
    HttpTrigger,
    QueueTrigger,
    RouteKey,
    ScheduleTrigger,
    TopicTrigger,
    load_app,
)

Parse = Callable[[str], AppSpec]

# The sketch from DESIGN.md, with one fix: inside {...} a value containing braces must be
# quoted (`route: "GET /users/{id}"`), or YAML reads `{id}` as a nested mapping. `auth: jwt`
# needs the app's `gateway.auth.jwt`, which the sketch leaves out: it is added here.
SKETCH = """\
app: shop
gateway:
  auth:
    jwt: {secret: not-a-real-secret}
services:
  users:
    path: services/users          # code folder; on sys.path for this service's functions
    env: {TOKEN_TTL: "3600"}
    tables:
      users: {key: email}
    functions:
      signup:
        handler: handlers.signup  # module handlers, attribute signup
        memory: 256               # MB, default 128
        timeout: 10               # s, default 3
        max_instances: 10         # default 10
        min_instances: 0          # default 0 (scale to zero)
        events:
          - http: POST /users
          - http: {route: "GET /users/{id}", auth: jwt, format: "1.0"}
  orders:
    functions:
      notify:
        handler: app.notify
        events:
          - topic: order-created
          - queue: {name: emails, batch_size: 10}
          - schedule: rate(1 minute)   # also cron(0 12 * * ? *) and rate(N seconds)
"""


def test_the_design_sketch_loads_with_every_field(root: Path) -> None:
    (root / "lamina.yaml").write_text(SKETCH)
    app = load_app(root)
    assert (app.name, app.root, app.file) == ("shop", root, root / "lamina.yaml")
    assert list(app.services) == ["users", "orders"]
    users = app.services["users"]
    assert users.path == root / "services" / "users"
    assert users.env == {"TOKEN_TTL": "3600"}
    assert users.tables["users"].key == "email"
    assert users.tables["users"].sort is None
    signup = users.functions["signup"]
    assert (signup.id, signup.handler, signup.memory, signup.timeout) == (
        "users.signup",
        "handlers.signup",
        256,
        10,
    )
    assert signup.events == (
        HttpTrigger(route=RouteKey.parse("POST /users")),
        HttpTrigger(route=RouteKey.parse("GET /users/{id}"), auth="jwt", format="1.0"),
    )
    notify = app.services["orders"].functions["notify"]
    assert notify.path == root / "services" / "orders"
    assert notify.events == (
        TopicTrigger(name="order-created"),
        QueueTrigger(name="emails", batch_size=10),
        ScheduleTrigger(expression="rate(1 minute)"),
    )


def test_the_sketch_as_printed_in_design_md_fails_with_a_quoting_hint(root: Path) -> None:
    text = SKETCH.replace('"GET /users/{id}"', "GET /users/{id}")
    (root / "lamina.yaml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_app(root / "lamina.yaml")
    assert info.value.line == 20  # the sketch plus the three lines of `gateway:`
    assert info.value.message == (
        "invalid YAML: while parsing a flow mapping, expected ',' or '}', but got '{'; "
        "inside {...} or [...], quote values that contain braces, brackets, ',' or '?', "
        'e.g. {route: "GET /users/{id}"}'
    )


def test_functions_and_routes_are_listed_in_file_order(parse: Parse) -> None:
    app = parse(SKETCH)
    assert list(app.functions()) == ["users.signup", "orders.notify"]
    assert [(str(r), fid) for r, _, fid in app.http_routes()] == [
        ("POST /users", "users.signup"),
        ("GET /users/{id}", "users.signup"),
    ]
    assert app.http_routes()[1][1].auth == "jwt"


def test_a_function_with_only_a_handler_gets_every_default(parse: Parse, root: Path) -> None:
    app = parse("""
        app: shop
        services:
          users:
            functions:
              signup: {handler: handlers.signup}
        """)
    fn = app.functions()["users.signup"]
    assert fn == FunctionSpec(
        service="users", name="signup", handler="handlers.signup", path=root / "services/users"
    )
    assert (fn.memory, fn.timeout, fn.max_instances, fn.min_instances) == (128, 3.0, 10, 0)
    assert (fn.keep_alive, fn.concurrency, fn.max_queued, fn.queue_timeout) == (600.0, 1, 100, 10.0)
    assert (fn.env, fn.environment, fn.preload, fn.events) == ({}, {}, (), ())
    assert fn.cpu is None  # the ray executor's default: Lambda's CPU share for the memory
    assert app.services["users"].tables == {}


def test_every_limit_can_be_set(parse: Parse) -> None:
    fn = parse("""
        app: shop
        services:
          users:
            functions:
              signup:
                handler: handlers.signup
                memory: 10240
                cpu: 2.5
                timeout: 0.5
                max_instances: 3
                min_instances: 3
                keep_alive: 0
                concurrency: 50
                max_queued: 0
                queue_timeout: 0.25
                preload: [json, email.mime.text]
        """).functions()["users.signup"]
    assert fn.model_dump(include={"memory", "timeout", "max_instances", "min_instances"}) == {
        "memory": 10240,
        "timeout": 0.5,
        "max_instances": 3,
        "min_instances": 3,
    }
    assert (fn.keep_alive, fn.concurrency, fn.max_queued, fn.queue_timeout) == (0, 50, 0, 0.25)
    assert fn.preload == ("json", "email.mime.text")
    assert fn.cpu == 2.5


def test_keep_alive_auto_selects_the_predictive_policy(parse: Parse) -> None:
    fn = parse("""
        app: shop
        services:
          users:
            functions:
              signup: {handler: handlers.signup, keep_alive: auto}
        """).functions()["users.signup"]
    assert fn.keep_alive == "auto"


def test_env_scalars_become_strings_and_function_env_wins(parse: Parse) -> None:
    app = parse("""
        app: shop
        services:
          users:
            env:
              TTL: 3600
              DEBUG: true
              RATIO: 0.5
              SINCE: 2024-01-31
              REGION: eu
            functions:
              signup:
                handler: handlers.signup
                env: {REGION: us, VERBOSE: no}
        """)
    assert dict(app.services["users"].env) == {
        "TTL": "3600",
        "DEBUG": "true",
        "RATIO": "0.5",
        "SINCE": "2024-01-31",
        "REGION": "eu",
    }
    fn = app.functions()["users.signup"]
    assert fn.env == {"REGION": "us", "VERBOSE": "false"}
    assert fn.environment == {
        "TTL": "3600",
        "DEBUG": "true",
        "RATIO": "0.5",
        "SINCE": "2024-01-31",
        "REGION": "us",
        "VERBOSE": "false",
    }


TRIGGERS = [
    pytest.param("http: POST /users", HttpTrigger(route=RouteKey.parse("POST /users")),
                 id="http short form is a route key with format 2.0 and no auth"),
    pytest.param('http: {route: "GET /users/{id}", format: "1.0", auth: jwt}',
                 HttpTrigger(route=RouteKey.parse("GET /users/{id}"), format="1.0", auth="jwt"),
                 id="http mapping form sets format and auth"),
    pytest.param("http: {route: $default, format: 1.0}",
                 HttpTrigger(route=RouteKey.parse("$default"), format="1.0"),
                 id="an unquoted format 1.0 is read as the string 1.0"),
    pytest.param("schedule: rate(10 seconds)", ScheduleTrigger(expression="rate(10 seconds)"),
                 id="schedule short form is the expression"),
    pytest.param('schedule: {expression: "cron(0 12 * * ? *)", input: {job: report}}',
                 ScheduleTrigger(expression="cron(0 12 * * ? *)", input={"job": "report"}),
                 id="schedule mapping form carries an input payload"),
    pytest.param("queue: emails", QueueTrigger(name="emails"),
                 id="queue short form is the queue name with default batching"),
    pytest.param(
        "queue: {name: emails, batch_size: 100, batch_window: 2.5, visibility_timeout: 60,"
        " max_receive_count: 3}",
        QueueTrigger(name="emails", batch_size=100, batch_window=2.5, visibility_timeout=60,
                     max_receive_count=3),
        id="queue mapping form sets batching and retries"),
    pytest.param("topic: order-created", TopicTrigger(name="order-created"),
                 id="topic short form is the topic name"),
    pytest.param("topic: {name: orders, filter_policy: {kind: [paid, refunded]}}",
                 TopicTrigger(name="orders", filter_policy={"kind": ["paid", "refunded"]}),
                 id="topic mapping form carries a filter policy"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "expected"), TRIGGERS)
def test_triggers_load_from_short_and_mapping_forms(parse: Parse, line: str, expected: Any) -> None:
    app = parse(f"""
        app: shop
        gateway: {{auth: {{jwt: {{secret: s}}}}}}
        services:
          users:
            functions:
              signup:
                handler: handlers.signup
                events:
                  - {line}
        """)
    assert app.functions()["users.signup"].events == (expected,)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("GET /a", "ANY /a", id="a method and ANY on one path are different routes"),
        pytest.param("GET /a/{x}", "GET /a/{x+}", id="a parameter and a greedy one differ"),
        pytest.param("GET /a/{x}", "GET /a/x", id="a parameter and a literal differ"),
        pytest.param("GET /a", "POST /a", id="two methods on one path are different routes"),
    ],
)
def test_routes_that_differ_may_belong_to_different_functions(
    parse: Parse, first: str, second: str
) -> None:
    app = parse(f"""
        app: shop
        services:
          users:
            functions:
              one: {{handler: handlers.signup, events: [http: "{first}"]}}
              two: {{handler: handlers.signup, events: [http: "{second}"]}}
        """)
    assert [fid for _, _, fid in app.http_routes()] == ["users.one", "users.two"]


def test_handlers_may_live_in_packages_and_explicit_paths(parse: Parse, root: Path) -> None:
    (root / "code" / "pkg").mkdir(parents=True)
    (root / "code" / "pkg" / "mod.py").write_text("")
    app = parse("""
        app: shop
        services:
          billing:
            path: ./code/../code
            functions:
              charge: {handler: pkg.mod.charge}
          orders:
            functions:
              notify: {handler: app.notify}
        """)
    assert app.services["billing"].path == root / "code"
    assert app.functions()["billing.charge"].handler == "pkg.mod.charge"
    assert app.functions()["orders.notify"].path == root / "services" / "orders"


def test_yaml_anchors_and_merge_keys_share_settings(parse: Parse) -> None:
    app = parse("""
        app: shop
        services:
          users:
            functions:
              one: &base {handler: handlers.signup, memory: 512}
              two:
                <<: *base
                memory: 1024
        """)
    assert [f.memory for f in app.functions().values()] == [512, 1024]


def test_null_sections_mean_empty(parse: Parse) -> None:
    app = parse("""
        app: shop
        services:
          users:
            env:
            tables:
            functions:
              signup:
                handler: handlers.signup
                events:
        """)
    assert app.functions()["users.signup"].events == ()
    assert parse("app: shop\nservices:\n").services == {}


def test_load_app_accepts_the_folder_or_the_file(root: Path) -> None:
    (root / "lamina.yaml").write_text(SKETCH)
    assert load_app(str(root)) == load_app(root / "lamina.yaml")


def test_specs_are_frozen(parse: Parse) -> None:
    fn = parse(SKETCH).functions()["users.signup"]
    with pytest.raises(pydantic.ValidationError):
        fn.memory = 512


def test_function_specs_built_directly_obey_the_same_bounds() -> None:
    fn = FunctionSpec(service="s", name="f", handler="m.f", memory=512)
    assert fn.id == "s.f"
    with pytest.raises(pydantic.ValidationError, match="exceeds max_instances"):
        FunctionSpec(service="s", name="f", handler="m.f", min_instances=3, max_instances=2)


def test_specs_survive_a_round_trip_through_json(parse: Parse) -> None:
    app = parse(SKETCH)
    assert AppSpec.model_validate_json(app.model_dump_json()) == app


def test_http_triggers_built_directly_accept_a_route_string() -> None:
    assert HttpTrigger(route="GET /a/{x}") == HttpTrigger(route=RouteKey.parse("GET /a/{x}"))
    with pytest.raises(pydantic.ValidationError, match="must start with '/'"):
        HttpTrigger(route="GET a")


def test_requirements_are_read_relative_to_the_service_folder(parse: Parse, root: Path) -> None:
    (root / "services" / "users" / "deps").mkdir()
    (root / "services" / "users" / "deps" / "requirements.txt").write_text("six==1.16.0\n")
    app = parse("""
        app: shop
        services:
          users:
            requirements: deps/requirements.txt
            functions:
              signup: {handler: handlers.signup}
          orders:
            functions:
              notify: {handler: app.notify}
        """)
    wanted = root / "services" / "users" / "deps" / "requirements.txt"
    assert app.services["users"].requirements == wanted
    assert app.functions()["users.signup"].requirements == wanted  # what a reload compares
    assert app.services["orders"].requirements is None
