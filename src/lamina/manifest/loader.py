"""Load `lamina.yaml` into an `AppSpec`, checking every key before any model is built.

Checks run in file order and stop at the first problem, raised as a `ManifestError` that
names the file, the dotted key path, the line and what was expected. Besides shapes and
bounds, the loader checks what needs the whole file or the disk: code folders and handler
modules exist, and no two functions claim the same HTTP route.
"""

from __future__ import annotations

import datetime
import difflib
import keyword
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lamina.errors import ManifestError
from lamina.manifest._check import Checker, build, describe
from lamina.manifest._gateway import parse_gateway
from lamina.manifest._triggers import parse_trigger
from lamina.manifest._yamlpos import child, load_yaml
from lamina.manifest.models import (
    AppSpec,
    AsyncSpec,
    FunctionAuthorizer,
    FunctionSpec,
    GatewaySpec,
    HttpTrigger,
    ServiceSpec,
    TableSpec,
    TopicTrigger,
    Trigger,
)
from lamina.manifest.routekey import RouteKey

__all__ = ["load_app", "parse_app"]

FILE_NAME = "lamina.yaml"
SAM_FILE_NAME = "template.yaml"  # `sam init`'s name; used when a folder has no lamina.yaml
APP_KEYS = ("app", "gateway", "services")
SERVICE_KEYS = ("path", "env", "requirements", "tables", "functions")
TABLE_KEYS = ("key", "sort", "ttl")
FUNCTION_KEYS = (
    "handler",
    "memory",
    "cpu",
    "timeout",
    "max_instances",
    "min_instances",
    "keep_alive",
    "concurrency",
    "max_queued",
    "queue_timeout",
    "env",
    "preload",
    "events",
    "async",
)
ASYNC_KEYS = ("max_retries", "backoff", "max_event_age")
_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ATTRIBUTE_NAME = re.compile(r"^[^\"\\\x00-\x1f]{1,255}$")  # no quotes, backslashes, controls
_ATTRIBUTE = "an attribute name (1-255 characters, no quotes, backslashes or control characters)"


def load_app(
    path: Path | str,
    *,
    environ: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> AppSpec:
    """Load the app in directory `path`, or from `path` itself when it names the YAML file.

    A file with `Transform: AWS::Serverless-2016-10-31` is an AWS SAM template (see
    `lamina.manifest.sam`; a folder without lamina.yaml but with template.yaml is one too);
    `parameters` override its Parameters. `${env:NAME}` references in `gateway.auth`, and a
    template's `LAMINA_JWKS*` key overrides, are read from `environ` (default: os.environ)."""
    given = Path(os.path.normpath(Path(path).absolute()))
    file = given if given.is_file() or given.suffix in (".yaml", ".yml") else given / FILE_NAME
    if not file.exists() and (file.parent / SAM_FILE_NAME).is_file():
        file = file.parent / SAM_FILE_NAME
    shown = _relative_to_cwd(file)
    if not file.is_file():
        raise ManifestError(f"no {file.name} in {file.parent}", file=shown)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ManifestError(message, file=shown) from None
    except OSError as exc:
        raise ManifestError(f"cannot read the file: {exc.strerror}", file=shown) from None
    from lamina.manifest import sam  # sam builds on this module's checks

    if sam.is_sam_template(text):
        found = sam.parse_sam(text, file=file, shown=shown, parameters=parameters, environ=environ)
        return found.spec
    if parameters:
        raise ManifestError("--param applies to SAM templates only", file=shown)
    return _parse(text, root=file.parent, file=file, shown=shown, environ=environ)


def parse_app(
    text: str,
    *,
    root: Path,
    file_name: str = FILE_NAME,
    environ: Mapping[str, str] | None = None,
) -> AppSpec:
    """Parse manifest `text` for an app in directory `root`; errors name `file_name`."""
    root = Path(os.path.normpath(Path(root).absolute()))
    return _parse(
        text, root=root, file=root / Path(file_name).name, shown=file_name, environ=environ
    )


def _relative_to_cwd(file: Path) -> str:
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def _parse(
    text: str, *, root: Path, file: Path, shown: str, environ: Mapping[str, str] | None
) -> AppSpec:
    data, lines = load_yaml(text, shown)
    check = Checker(shown, lines)
    if data is None:
        check.fail("", "the file is empty; expected a mapping with 'app' and 'services'")
    top = check.mapping(
        data, "", allowed=APP_KEYS, required=("app",), what="a mapping with 'app' and 'services'"
    )
    name = top["app"]
    if not isinstance(name, str) or not _APP_NAME.match(name):
        check.fail(
            "app",
            "expected an app name of lowercase letters, digits and '-', starting with a "
            f"letter or digit, got {describe(name)}",
        )
    gateway = parse_gateway(check, top.get("gateway"), os.environ if environ is None else environ)
    routes = _Routes(check)
    services: dict[str, ServiceSpec] = {}
    for svc_name, body in check.mapping(top.get("services"), "services").items():
        services[svc_name] = _service(check, root, svc_name, body, routes)
    routes.check_auth(gateway, {f.id for s in services.values() for f in s.functions.values()})
    return build(
        check, AppSpec, "", name=name, root=root, file=file, gateway=gateway, services=services
    )


def _shown(path: Path, root: Path) -> str:
    """`path` relative to the app root when inside it, for messages."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _service(check: Checker, root: Path, name: str, body: Any, routes: _Routes) -> ServiceSpec:
    path = child("services", name)
    check.name(name, path)
    body = check.mapping(body, path, allowed=SERVICE_KEYS)
    at = child(path, "path")
    if "path" in body:
        folder = Path(os.path.normpath(root / check.string(body["path"], at, what="a folder")))
        default = ""
    else:
        folder = root / "services" / name
        default = " (the default when 'path' is not given)"
    if not folder.is_dir():
        check.fail(at, f"code folder {_shown(folder, root)} does not exist{default}")
    env = _env(check, body.get("env"), child(path, "env"))
    requirements = _requirements(
        check, body.get("requirements"), child(path, "requirements"), folder, root
    )
    tables = {
        table: _table(check, table, spec, child(child(path, "tables"), table))
        for table, spec in check.mapping(body.get("tables"), child(path, "tables")).items()
    }
    functions: dict[str, FunctionSpec] = {}
    fn_path = child(path, "functions")
    for fn_name, fn_body in check.mapping(body.get("functions"), fn_path).items():
        functions[fn_name] = _function(
            check, root, folder, name, fn_name, fn_body, env, routes, requirements
        )
    return build(
        check,
        ServiceSpec,
        path,
        name=name,
        path=folder,
        env=env,
        requirements=requirements,
        tables=tables,
        functions=functions,
    )


def _requirements(check: Checker, value: Any, path: str, folder: Path, root: Path) -> Path | None:
    """The service's requirements file (relative to its code folder), which must exist."""
    if value is None:
        return None
    given = check.string(value, path, what="a requirements file path like 'requirements.txt'")
    file = Path(os.path.normpath(folder / given))
    if file.is_dir():
        check.fail(path, f"{_shown(file, root)} is a folder; expected a requirements file")
    if not file.is_file():
        check.fail(path, f"requirements file {_shown(file, root)} does not exist")
    return file


def _env(check: Checker, value: Any, path: str) -> dict[str, str]:
    """Environment variables; numbers and booleans become strings ("3600", "true")."""
    env: dict[str, str] = {}
    body = check.mapping(value, path, what="a mapping of variable names to values")
    for key, raw in body.items():
        at = child(path, key)
        if not _ENV_NAME.match(key):
            check.fail(
                at,
                "expected a variable name of letters, digits and '_', not starting with a "
                f"digit, got {key!r}",
            )
        if isinstance(raw, bool):
            env[key] = "true" if raw else "false"
        elif isinstance(raw, str | int | float):
            env[key] = str(raw)
        elif isinstance(raw, datetime.date):  # `2024-01-01` unquoted is a date in YAML
            env[key] = raw.isoformat()
        else:
            check.fail(at, f"expected a string, number or boolean, got {describe(raw)}")
    return env


def _table(check: Checker, name: str, value: Any, path: str) -> TableSpec:
    check.name(name, path)
    body = check.mapping(value, path, allowed=TABLE_KEYS, required=("key",))
    fields: dict[str, str] = {}
    for key in TABLE_KEYS:
        if body.get(key) is None and key != "key":
            continue
        at = child(path, key)
        value = check.string(body[key], at, what=_ATTRIBUTE)
        if not _ATTRIBUTE_NAME.match(value):
            check.fail(at, f"expected {_ATTRIBUTE}, got {describe(value)}")
        for other, seen in fields.items():
            if seen == value:
                check.fail(at, f"{value!r} is already the {other} attribute; expected another one")
        fields[key] = value
    return build(check, TableSpec, path, **fields)


def _function(
    check: Checker,
    root: Path,
    folder: Path,
    service: str,
    name: str,
    value: Any,
    service_env: dict[str, str],
    routes: _Routes,
    requirements: Path | None = None,
) -> FunctionSpec:
    path = child(child(child("services", service), "functions"), name)
    check.name(name, path)
    body = check.mapping(value, path, allowed=FUNCTION_KEYS, required=("handler",))
    fields: dict[str, Any] = {
        "id": f"{service}.{name}",
        "name": name,
        "service": service,
        "path": folder,
        "handler": _handler(check, body["handler"], child(path, "handler"), folder, root),
        "service_env": service_env,
        "requirements": requirements,
        "env": _env(check, body.get("env"), child(path, "env")),
    }
    ints = {  # key -> (lowest, highest or None, unit)
        "memory": (128, 10240, "MB"),
        "max_instances": (1, 1000, ""),
        "min_instances": (0, 1000, ""),
        "concurrency": (1, 1000, "invocations at once per instance"),
        "max_queued": (0, None, "invocations"),
    }
    for key, (lo, hi, unit) in ints.items():
        if key in body:
            fields[key] = check.integer(body[key], child(path, key), lo, hi, unit)
    if "cpu" in body:
        fields["cpu"] = _cpu(check, body["cpu"], child(path, "cpu"))
    seconds = {"timeout": (True, 900.0), "keep_alive": (False, None), "queue_timeout": (True, None)}
    for key, (positive, top) in seconds.items():
        if key == "keep_alive" and body.get(key) == "auto":
            fields[key] = "auto"
        elif key in body:
            fields[key] = check.seconds(
                body[key],
                child(path, key),
                positive=positive,
                hi=top,
                alternative="'auto'" if key == "keep_alive" else None,
            )
    low, high = fields.get("min_instances", 0), fields.get("max_instances", 10)
    if low > high:
        check.fail(
            child(path, "min_instances"),
            f"expected at most max_instances ({high}), got {low}",
        )
    preload_path = child(path, "preload")
    items = check.sequence(body.get("preload"), preload_path, what="a list of module names")
    fields["preload"] = tuple(
        _module_name(check, item, child(preload_path, i)) for i, item in enumerate(items)
    )
    fields["events"] = _events(
        check, body.get("events"), child(path, "events"), fields["id"], routes
    )
    if "async" in body:
        fields["async_invoke"] = _async(check, body["async"], child(path, "async"))
    return build(check, FunctionSpec, path, **fields)


def _async(check: Checker, value: Any, path: str) -> AsyncSpec:
    body = check.mapping(value, path, allowed=ASYNC_KEYS)
    fields: dict[str, Any] = {}
    if "max_retries" in body:
        fields["max_retries"] = check.integer(
            body["max_retries"], child(path, "max_retries"), 0, 2, "retries"
        )
    for key, top in (("backoff", 3600.0), ("max_event_age", 21600.0)):
        if key in body:
            fields[key] = check.seconds(body[key], child(path, key), positive=True, hi=top)
    return build(check, AsyncSpec, path, **fields)


def _cpu(check: Checker, value: Any, path: str) -> float:
    """CPUs each instance reserves on the ray executor: a number > 0 and <= 64."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and 0 < value <= 64:
        return float(value)
    check.fail(path, f"expected a number of CPUs > 0 and <= 64 (e.g. 0.5), got {describe(value)}")


def _module_name(check: Checker, value: Any, path: str) -> str:
    """A dotted module name such as `numpy` or `pkg.module`."""
    ok = isinstance(value, str) and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in value.split(".")
    )
    if not ok:
        check.fail(path, f"expected a module name like 'pkg.module', got {describe(value)}")
    return str(value)


def _handler(check: Checker, value: Any, path: str, folder: Path, root: Path) -> str:
    """Check `module.attr` and that the module's file exists in the service's code folder."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) < 2 or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        check.fail(
            path,
            "expected 'module.function' (or 'pkg.module.function'), e.g. 'handlers.signup', "
            f"got {describe(value)}",
        )
    module = ".".join(parts[:-1])
    base = folder.joinpath(*parts[:-1])
    candidates = (base.with_name(base.name + ".py"), base / "__init__.py")
    if not any(c.is_file() for c in candidates):
        looked = ", ".join(_shown(c, root) for c in candidates)
        check.fail(
            path, f"module {module!r} not found in {_shown(folder, root)} (looked for {looked})"
        )
    return str(value)


def _events(
    check: Checker, value: Any, path: str, function_id: str, routes: _Routes
) -> tuple[Trigger, ...]:
    events: list[Trigger] = []
    topic_aliases: dict[str, str | None] = {}  # one subscription per topic: one alias
    for index, item in enumerate(check.sequence(value, path, what="a list of triggers")):
        at = child(path, index)
        trigger = parse_trigger(check, item, at)
        if isinstance(trigger, TopicTrigger):
            alias = topic_aliases.setdefault(trigger.name, trigger.alias)
            if alias != trigger.alias:
                check.fail(
                    child(at, "topic"),
                    f"the function subscribes to topic {trigger.name!r} with alias "
                    f"{alias or 'live'!r} already; one topic, one alias per function",
                )
        if isinstance(trigger, HttpTrigger):
            http = child(at, "http")
            given_at = child(http, "route") if isinstance(item["http"], dict) else http
            routes.add(trigger.route, function_id, given_at)
            if trigger.auth is not None:
                routes.auth_at.append((trigger, child(http, "auth")))
        events.append(trigger)
    return tuple(events)


class _Routes:
    """Every HTTP route seen so far; a second function (or trigger) on the same route fails.

    Routes are the same when they differ only in parameter names: `GET /a/{x}` and
    `GET /a/{y}` would match the same requests, so the gateway could not choose.
    """

    def __init__(self, check: Checker) -> None:
        self._check = check
        self._seen: dict[tuple[str, ...], tuple[RouteKey, str, str]] = {}
        self.auth_at: list[tuple[HttpTrigger, str]] = []  # routes with auth, and where

    def check_auth(self, gateway: GatewaySpec, function_ids: set[str]) -> None:
        """Each route's authorizer exists: `gateway.auth.jwt`, or the named function."""
        for trigger, path in self.auth_at:
            auth = trigger.auth
            if auth == "jwt" and gateway.auth.jwt is None:
                self._check.fail(
                    path, "auth: jwt needs 'gateway.auth.jwt' (a secret or public_key) in the app"
                )
            if isinstance(auth, FunctionAuthorizer) and auth.function not in function_ids:
                close = difflib.get_close_matches(auth.function, sorted(function_ids), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self._check.fail(
                    child(path, "function"),
                    f"authorizer function {auth.function!r} is not defined in this app{hint}",
                )

    def add(self, route: RouteKey, function_id: str, path: str) -> None:
        shape = self._shape(route)
        if shape in self._seen:
            other, other_id, other_path = self._seen[shape]
            line = self._check.line(other_path)
            self._check.fail(
                path,
                f"route '{route}' of {function_id} is the same route as '{other}' of "
                f"{other_id} (line {line}); each route may belong to one function only",
            )
        self._seen[shape] = (route, function_id, path)

    @staticmethod
    def _shape(route: RouteKey) -> tuple[str, ...]:
        if route.is_default:
            return ("$default",)
        erased = (
            "{}" if s.kind == "param" else "{+}" if s.kind == "greedy" else s.value
            for s in route.segments
        )
        return (route.method, *erased)
