"""The `lamina` commands."""

from __future__ import annotations

import asyncio
import base64
import gc
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from lamina.cli._common import (
    AdminUrlOpt,
    AppDir,
    TokenOpt,
    UrlOpt,
    err,
    fail,
    out,
    target,
)
from lamina.cli.cost import COST_EXAMPLE, cost
from lamina.cli.dashboard import DASHBOARD_EXAMPLE, dashboard
from lamina.cli.deploy import (
    DEPLOY_EXAMPLE,
    ROLLBACK_EXAMPLE,
    VERSIONS_EXAMPLE,
    alias_app,
    deploy,
    rollback,
    versions,
)
from lamina.cli.dlq import dlq_app
from lamina.cli.export import export_app
from lamina.cli.keys import keys_app
from lamina.cli.messages import PUBLISH_EXAMPLE, SEND_EXAMPLE, publish, send
from lamina.cli.observe import (
    INVOCATIONS_EXAMPLE,
    LOGS_EXAMPLE,
    TRACE_EXAMPLE,
    invocations,
    logs,
    trace,
)
from lamina.cli.sam import ParamOpt, parameters, sam_app
from lamina.cli.scaffold import scaffold
from lamina.cli.simulate import SIMULATE_EXAMPLE, simulate
from lamina.cli.tables import table_app
from lamina.errors import ClientError, LaminaError, ManifestError

__all__ = ["app", "main"]

app = typer.Typer(
    name="lamina",
    help="Lamina: serverless Python microservices on your own machine.\n\n"
    "Example: lamina up examples/hello",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_fail = fail
_target = target


@app.command(
    epilog="Example: lamina up examples/hello --port 8080  "
    "(on Ray: lamina up examples/hello --executor ray --ray-address auto)"
)
def up(
    app_dir: Annotated[
        Path,
        typer.Argument(help="Folder with lamina.yaml (or the file itself, or a SAM template)."),
    ] = Path("."),
    port: Annotated[int, typer.Option(help="Gateway port (0: any free port).")] = 8080,
    admin_port: Annotated[
        int | None, typer.Option(help="Admin API port (default: port + 1).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: SQLite in APP_DIR/.lamina/).")
    ] = None,
    grace: Annotated[
        float, typer.Option(help="Seconds in-flight work may finish after SIGTERM.")
    ] = 30.0,
    record: Annotated[
        bool,
        typer.Option(
            help="Keep invocation records and function logs (lamina invocations/logs) and "
            "count the invocation metrics of GET /metrics."
        ),
    ] = True,
    retention_days: Annotated[
        float,
        typer.Option(min=0.001, help="Days invocation records and logs are kept."),
    ] = 7.0,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Platform logs as JSON lines.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Platform log level.")] = "INFO",
    max_db_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With a PostgreSQL store: refuse to start when the app could hold more"
            " connections (platform pool + max_instances x concurrency of every function).",
        ),
    ] = None,
    plane_ttl: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="With a PostgreSQL store shared by several `lamina up`: seconds after which"
            " a silent control plane's instances stop counting against max_instances.",
        ),
    ] = 15.0,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port",
            help="Share the gateway port with other `lamina up` on this machine (SO_REUSEPORT):"
            " with one PostgreSQL --store they are gateway workers that split the connections"
            " and share max_instances (docs/scale-out.md).",
        ),
    ] = False,
    param: ParamOpt = None,
    max_bundle_mb: Annotated[
        float,
        typer.Option(min=0.001, help="Largest app bundle `lamina deploy` may upload, in MB."),
    ] = 50.0,
    executor: Annotated[
        str,
        typer.Option(
            help="Where instances run: 'local' processes, or 'ray' actors (pip install"
            ' "lamina\\[ray]"; see docs/ray.md).',
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: 'local' starts a private Ray (the default), 'auto' joins"
            " the cluster `ray start` runs here, else a Ray address (HOST:6379, ray://HOST:10001)."
        ),
    ] = None,
    http: Annotated[
        str,
        typer.Option(
            help="The gateway's HTTP server: 'uvicorn', or 'granian' (HTTP and socket I/O on"
            " Rust threads, off the event loop's core; docs/benchmarks.md).",
        ),
    ] = "uvicorn",
    http_threads: Annotated[
        int, typer.Option(min=1, max=16, help="With --http granian: its I/O threads.")
    ] = 1,
    keep_deploys: Annotated[
        int,
        typer.Option(
            min=1,
            help="Bundles of the last N deploys kept on disk; older ones are pruned unless"
            " an alias points at one of their versions.",
        ),
    ] = 10,
) -> None:
    """Run the platform in the foreground until Ctrl-C / SIGTERM, then drain and exit.

    Services with `requirements:` first get their own virtual environment (docs/dependencies.md).

    With OTEL_EXPORTER_OTLP_ENDPOINT set, spans are also exported over OTLP/HTTP."""
    platform = _platform(app_dir, log_level, log_json, **_options(locals()))
    try:
        _run(platform.run_forever(on_started=_banner))
    except LaminaError as exc:
        raise _fail(str(exc)) from None


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """`up`'s (and `dev`'s) flags that become PlatformOptions."""
    names = (
        *("host", "port", "admin_port", "store", "grace", "record", "retention_days"),
        "max_db_connections",
        "plane_ttl",
        "param",
        *("executor", "ray_address", "http", "http_threads"),
    )
    options = {name: given[name] for name in names}
    options["max_bundle_mb"] = given.get("max_bundle_mb") or 50.0  # `up` only
    options["keep_deploys"] = given.get("keep_deploys") or 10  # `up` only
    options["reuse_port"] = given.get("reuse_port", False)  # `up` only
    return options


def _platform(app_dir: Path, log_level: str, log_json: bool, **flags: Any) -> Any:
    """The Platform `up` and `dev` run: the manifest loaded (exit 2 if invalid), logging set."""
    from lamina.cli.venvs import VenvStatus
    from lamina.control import Platform, PlatformOptions
    from lamina.control.venvs import default_venv_dir
    from lamina.manifest import load_app
    from lamina.telemetry import configure_logging
    from lamina.telemetry.otlp import otlp_traces_endpoint

    if flags["executor"] not in ("local", "ray"):
        raise _fail(f"--executor: expected 'local' or 'ray', got {flags['executor']!r}", 2)
    if flags["ray_address"] is not None and flags["executor"] != "ray":
        raise _fail("--ray-address needs --executor ray", 2)
    if flags["http"] not in ("uvicorn", "granian"):
        raise _fail(f"--http: expected 'uvicorn' or 'granian', got {flags['http']!r}", 2)
    try:
        spec = load_app(app_dir, parameters=parameters(flags["param"]))
    except ManifestError as exc:
        raise _fail(str(exc), 2) from None
    configure_logging(log_level, json=log_json)
    return Platform(
        spec,
        PlatformOptions(
            host=flags["host"],
            port=flags["port"],
            admin_port=flags["admin_port"],
            grace_s=flags["grace"],
            store_url=flags["store"],
            record=flags["record"],
            retention_days=flags["retention_days"],
            admin_token=os.environ.get("LAMINA_ADMIN_TOKEN") or None,
            otlp_endpoint=otlp_traces_endpoint(os.environ),
            max_db_connections=flags["max_db_connections"],
            venv_dir=default_venv_dir(os.environ),
            max_bundle_bytes=int(flags["max_bundle_mb"] * 1024 * 1024),
            executor=flags["executor"],
            ray_address=flags["ray_address"],
            http=flags["http"],
            http_threads=flags["http_threads"],
            plane_ttl_s=flags["plane_ttl"],
            reuse_port=flags["reuse_port"],
            keep_deploys=flags["keep_deploys"],
        ),
        venv_progress=VenvStatus(out),
    )


def dev(**flags: Any) -> None:
    """`lamina up` plus hot reload: edits to a service's .py files recycle only that service's
    instances (in-flight requests finish on the old code); edits to lamina.yaml apply routes,
    triggers and limits without a restart; a broken edit is shown and the last good version
    keeps serving."""
    from lamina.control.dev import ReloadReport, run_dev

    platform = _platform(flags["app_dir"], flags["log_level"], flags["log_json"], **_options(flags))

    def report(outcome: ReloadReport) -> None:
        if outcome.ok:
            out.print(f"[green]↻[/] {outcome.message}", highlight=False, soft_wrap=True)
        else:
            err.print(f"[bold red]✗[/] {outcome.message}", highlight=False, soft_wrap=True)
            for line in outcome.detail.splitlines():
                err.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)
        sys.stdout.flush()

    def started(platform: Any, reloader: Any) -> None:
        _banner(platform)
        folders = ", ".join(str(p) for p in reloader.watched())
        out.print(f"  watching  {folders} for changes", highlight=False)
        sys.stdout.flush()

    try:
        _run(run_dev(platform, report, started, parameters(flags["param"])))
    except LaminaError as exc:
        raise _fail(str(exc)) from None


# `dev` takes exactly `up`'s arguments and options: typer reads them from this signature.
dev.__signature__ = inspect.signature(up, eval_str=True)  # type: ignore[attr-defined]
app.command(
    epilog="Example: lamina dev examples/hello --port 8080  "
    "(then edit examples/hello/services/greeter/handlers.py and send a request)"
)(dev)


def _banner(platform: Any) -> None:
    # What the platform built to start is there for good: out of the collector's sight, full
    # collections under load stay short (fewer latency spikes) and cost less CPU.
    gc.freeze()
    out.print(f"[bold green]Lamina[/] app [bold]{platform.app.name}[/] is up", highlight=False)
    out.print(f"  gateway   {platform.gateway_url}", highlight=False)
    out.print(
        f"  admin API {platform.admin_url}  (token in {platform.state_dir / 'admin-token'})",
        highlight=False,
    )
    out.print(
        f"  dashboard {platform.admin_url}/  (`lamina dashboard` opens it signed in)",
        highlight=False,
    )
    for route, _trigger, fid in platform.app.http_routes():
        out.print(f"  {route!s:<32} -> {fid}", highlight=False)
    sys.stdout.flush()


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _payload(data: str | None) -> bytes:
    if data is None:
        return b"{}"
    if data.startswith("@"):
        path = Path(data[1:])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _fail(f"--data {data}: cannot read {path}: {exc.strerror}", 2) from None
        where = str(path)
    else:
        raw, where = data.encode(), "--data"
    try:
        json.loads(raw)
    except ValueError as exc:
        raise _fail(f"{where}: not valid JSON: {exc}", 2) from None
    return raw


@app.command(epilog='Example: lamina invoke greeter.hello --data \'{"name": "Ada"}\'')
def invoke(
    function_id: Annotated[str, typer.Argument(help="Function id, service.function.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            "--payload",
            help="JSON payload, or @file.json (--payload: the aws CLI's name for it).",
        ),
    ] = None,
    async_: Annotated[
        bool, typer.Option("--async", help="Queue the invocation and return at once.")
    ] = False,
    tail: Annotated[
        bool, typer.Option("--tail", help="Also print the invocation's log output.")
    ] = False,
    app_dir: AppDir = Path("."),
    url: UrlOpt = None,
) -> None:
    """Invoke a function on a running platform and print its result."""
    target = _target(app_dir, url, "-", None)
    headers = {"X-Amz-Invocation-Type": "Event" if async_ else "RequestResponse"}
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    try:
        response = httpx.post(
            f"{target.gateway_url}/2015-03-31/functions/{function_id}/invocations",
            content=_payload(data),
            headers=headers,
            timeout=None,
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the platform at {target.gateway_url}: {exc}") from None
    request_id = response.headers.get("x-amzn-requestid", "")
    if response.status_code == 202:
        out.print(f"queued: request id {request_id}", highlight=False)
        return
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.text
        except ValueError:
            message = response.text
        raise _fail(f"{response.headers.get('x-amzn-errortype', response.status_code)}: {message}")
    if tail and "x-amz-log-result" in response.headers:
        err.print(
            base64.b64decode(response.headers["x-amz-log-result"]).decode(errors="replace"),
            end="",
            highlight=False,
            markup=False,
        )
    body = response.json() if response.content else None
    if "x-amz-function-error" in response.headers:
        err.print(f"[bold red]function error[/] (request {request_id})", highlight=False)
        err.print_json(data=body)
        raise typer.Exit(1)
    out.print_json(data=body)


@app.command(epilog="Example: lamina status -C examples/hello")
def status(
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
) -> None:
    """Show every function of a running platform with its instances."""
    target = _target(app_dir, "-", admin_url, token)
    try:
        response = httpx.get(
            f"{target.admin_url}/status",
            headers={"Authorization": f"Bearer {target.token or ''}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the admin API at {target.admin_url}: {exc}") from None
    if response.status_code == 401:
        raise _fail("the admin API refused the token (see --token or LAMINA_ADMIN_TOKEN)")
    response.raise_for_status()
    data = response.json()
    if as_json:
        out.print_json(data=data)
        return
    rows = [
        (
            fn["id"],
            str(fn["instances"]),
            str(fn["busy"]),
            str(fn["queued"]),
            str(fn["cold_starts"]),
            str(fn["invocations"]),
            str(fn["throttles"]),
            str(fn["errors"]),
            f"{fn['min_instances']}..{fn['max_instances']}",
        )
        for fn in data["functions"]
    ]
    headers = (
        "function",
        "instances",
        "busy",
        "queued",
        "cold starts",
        "invocations",
        "throttles",
        "errors",
        "min..max",
    )
    table = Table(title=f"{data['app']}  {data['gateway']}")
    # At 80 columns (a pipe, a small terminal) the headers shorten; ids and values never do.
    for i, column in enumerate(headers):
        widest = max((len(row[i]) for row in rows), default=0)
        table.add_column(
            column, justify="left" if i == 0 else "right", no_wrap=i == 0, min_width=widest
        )
    for row in rows:
        table.add_row(*row)
    out.print(table)
    for plane in data.get("control_planes", ()):  # several planes on one PostgreSQL store
        held = sum(plane["instances"].values())
        this = " (this one)" if plane["self"] else ""
        out.print(
            f"control plane {plane['id'][:12]}{this} {plane['gateway']}: "
            f"{held} instance{'s' if held != 1 else ''}",
            highlight=False,
            soft_wrap=True,
        )
    for fn in data["functions"]:  # with --executor ray: where each instance runs
        for at in fn.get("placement", ()):
            out.print(
                f"{fn['id']} instance {at['instance']} (pid {at['pid']}) on Ray node "
                f"{at['node_id'][:12]} {at['node_ip']}",
                highlight=False,
                soft_wrap=True,
            )


@app.command(epilog="Example: lamina init my-app && lamina up my-app")
def init(directory: Annotated[Path, typer.Argument(help="Folder to create the app in.")]) -> None:
    """Create a small working app (lamina.yaml and one service) in DIRECTORY."""
    try:
        files = scaffold(directory)
    except ClientError as exc:
        raise _fail(str(exc), 2) from None
    for path in files:
        out.print(f"  created {path}", highlight=False)
    out.print(
        f"Next: [bold]lamina up {directory}[/] then [bold]curl localhost:8080/hello[/]",
        highlight=False,
    )


# Commands about events, in their own modules.
app.add_typer(dlq_app, name="dlq")
app.add_typer(table_app, name="table")
app.add_typer(keys_app, name="keys")
app.add_typer(sam_app, name="sam")
app.add_typer(export_app, name="export")
app.add_typer(alias_app, name="alias")
app.command(epilog=DEPLOY_EXAMPLE)(deploy)
app.command(epilog=VERSIONS_EXAMPLE)(versions)
app.command(epilog=ROLLBACK_EXAMPLE)(rollback)
app.command(epilog=SEND_EXAMPLE)(send)
app.command(epilog=PUBLISH_EXAMPLE)(publish)
app.command(epilog=INVOCATIONS_EXAMPLE)(invocations)
app.command(epilog=LOGS_EXAMPLE)(logs)
app.command(epilog=COST_EXAMPLE)(cost)
app.command(epilog=TRACE_EXAMPLE)(trace)
app.command(epilog=DASHBOARD_EXAMPLE)(dashboard)
app.command(epilog=SIMULATE_EXAMPLE)(simulate)


def main() -> None:
    app()
