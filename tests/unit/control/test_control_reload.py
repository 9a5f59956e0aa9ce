"""The hot reload policy: which functions a manifest edit starts, stops or recycles, whether
routes and event consumers change, and which services a code edit touches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lamina.control.reload import ReloadPlan, changed_services, plan_reload
from lamina.manifest import (
    AppSpec,
    FunctionSpec,
    HttpTrigger,
    QueueTrigger,
    ScheduleTrigger,
    ServiceSpec,
    TableSpec,
)

ROOT = Path("/srv/shop")


def _fn(service: str, name: str, **fields: Any) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        service=service,
        handler=fields.pop("handler", f"handlers.{name}"),
        path=ROOT / "services" / service,
        **fields,
    )


def _app(*functions: FunctionSpec, name: str = "shop", **services: Any) -> AppSpec:
    by_service: dict[str, dict[str, FunctionSpec]] = {}
    for fn in functions:
        by_service.setdefault(fn.service, {})[fn.name] = fn
    return AppSpec(
        name=name,
        root=ROOT,
        file=ROOT / "lamina.yaml",
        services={
            svc: ServiceSpec(
                name=svc,
                path=ROOT / "services" / svc,
                functions=fns,
                **services.get(svc, {}),
            )
            for svc, fns in by_service.items()
        },
    )


GET_USER = HttpTrigger(route="GET /users/{id}")
SIGNUP = HttpTrigger(route="POST /users")
BASE = _app(
    _fn("users", "signup", events=(SIGNUP,)),
    _fn("users", "get", events=(GET_USER,)),
    _fn("orders", "notify", events=(QueueTrigger(name="emails"),)),
)


def test_the_same_manifest_asks_for_nothing() -> None:
    plan = plan_reload(BASE, BASE.model_copy())
    assert plan == ReloadPlan()
    assert plan.empty
    assert plan.summary() == "no changes"


def test_an_added_route_to_an_existing_function_only_rebuilds_the_router() -> None:
    new = _app(
        _fn("users", "signup", events=(SIGNUP, HttpTrigger(route="PUT /users"))),
        _fn("users", "get", events=(GET_USER,)),
        _fn("orders", "notify", events=(QueueTrigger(name="emails"),)),
    )
    plan = plan_reload(BASE, new)
    assert plan == ReloadPlan(routes=True, routes_added=1)
    assert plan.summary() == "+1 route"


def test_a_route_moved_to_another_function_rebuilds_the_router() -> None:
    new = _app(
        _fn("users", "signup", events=()),
        _fn("users", "get", events=(GET_USER, SIGNUP)),
        _fn("orders", "notify", events=(QueueTrigger(name="emails"),)),
    )
    plan = plan_reload(BASE, new)
    assert plan.routes and not plan.recycled and not plan.events


def test_a_new_function_is_started_and_the_event_consumers_learn_it() -> None:
    new = _app(*BASE.functions().values(), _fn("users", "delete"))
    plan = plan_reload(BASE, new)
    assert plan.added == ("users.delete",)
    assert plan.events  # its async invocations need a consumer
    assert not plan.routes and not plan.recycled
    assert plan.summary() == "+1 function, event triggers restarted"


def test_a_removed_function_is_stopped_with_its_routes() -> None:
    new = _app(_fn("users", "signup", events=(SIGNUP,)), *list(BASE.functions().values())[2:])
    plan = plan_reload(BASE, new)
    assert plan.removed == ("users.get",)
    assert plan.routes and plan.routes_removed == 1
    assert plan.summary() == "-1 route, -1 function, event triggers restarted"


@pytest.mark.parametrize(
    "change",
    [
        {"memory": 512},
        {"timeout": 10.0},
        {"max_instances": 2},
        {"min_instances": 1},
        {"concurrency": 4},
        {"keep_alive": 5.0},
        {"env": {"TOKEN_TTL": "60"}},
        {"service_env": {"REGION": "eu"}},
        {"handler": "handlers.register"},
        {"preload": ("json",)},
        {"requirements": ROOT / "services" / "users" / "requirements.txt"},
    ],
    ids=lambda change: f"a changed {next(iter(change))} recycles the function",
)
def test_changed_limits_env_or_handler_recycle_only_that_function(change: dict[str, Any]) -> None:
    new = _app(
        _fn("users", "signup", events=(SIGNUP,), **change),
        _fn("users", "get", events=(GET_USER,)),
        _fn("orders", "notify", events=(QueueTrigger(name="emails"),)),
    )
    plan = plan_reload(BASE, new)
    assert plan == ReloadPlan(recycled=("users.signup",))
    assert plan.summary() == "1 function recycled"


@pytest.mark.parametrize(
    "events",
    [
        (QueueTrigger(name="emails", batch_size=1),),
        (QueueTrigger(name="emails"), ScheduleTrigger(expression="rate(1 minute)")),
        (),
    ],
    ids=["a changed batch size", "an added schedule", "a removed queue trigger"],
)
def test_changed_event_triggers_restart_the_consumers_without_recycling(
    events: tuple[Any, ...],
) -> None:
    new = _app(*list(BASE.functions().values())[:2], _fn("orders", "notify", events=events))
    plan = plan_reload(BASE, new)
    assert plan == ReloadPlan(events=True)


def test_an_app_name_change_needs_a_restart_and_is_named() -> None:
    plan = plan_reload(BASE, _app(*BASE.functions().values(), name="shop2"))
    assert plan.empty
    assert plan.restart_needed == ("the app name changed (shop -> shop2)",)


@pytest.mark.parametrize(
    "tables",
    [
        {"users": TableSpec(key="email")},
        {"users": TableSpec(key="email", ttl="expires")},
        {},
    ],
    ids=["an added table", "a changed ttl attribute", "a removed table"],
)
def test_changed_tables_are_applied_and_their_service_recycled(tables: dict[str, Any]) -> None:
    old = _app(*BASE.functions().values(), users={"tables": {"users": TableSpec(key="email")}})
    if tables == {"users": TableSpec(key="email")}:
        old = BASE  # the table is new
    new = _app(*BASE.functions().values(), users={"tables": tables})
    plan = plan_reload(old, new)
    assert plan == ReloadPlan(recycled=("users.signup", "users.get"), tables=("users",))
    assert plan.summary() == "2 functions recycled, tables of users applied"


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        (TableSpec(key="email"), TableSpec(key="id"), "key email -> key id"),
        (TableSpec(key="user"), TableSpec(key="user", sort="at"), "key user -> key user, sort at"),
    ],
    ids=["a new key", "an added sort key"],
)
def test_a_rekeyed_table_refuses_the_whole_change(
    before: TableSpec, after: TableSpec, said: str
) -> None:
    old = _app(*BASE.functions().values(), users={"tables": {"users": before}})
    new = _app(*BASE.functions().values(), users={"tables": {"users": after}})
    assert plan_reload(old, new).refused == (
        f"service users: table users: its keys changed ({said}); existing items cannot be "
        "re-keyed: name a new table, or delete this table's data and restart",
    )


def test_a_code_change_touches_the_services_whose_folder_holds_it() -> None:
    files = [ROOT / "services/orders/lib/mail.py", ROOT / "tools/script.py"]
    assert changed_services(BASE, files) == ["orders"]
    assert changed_services(BASE, [ROOT / "services/users/handlers.py"]) == ["users"]
    assert changed_services(BASE, [ROOT / "services/usersx/handlers.py"]) == []
