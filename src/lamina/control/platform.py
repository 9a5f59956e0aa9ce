"""The platform object: wires manifest, executor, invoker, gateway and admin API together and
owns their lifecycle (start, serve, drain, stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from lamina.clock import Clock, SystemClock
from lamina.control.admin import admin_app
from lamina.control.connections import ConnectionBound, app_connection_bound
from lamina.control.dashboard_api import dashboard_routes
from lamina.control.deploy_api import deploy_routes
from lamina.control.deploys import Deployments
from lamina.control.keys_api import key_routes
from lamina.control.metrics import MetricsScrape
from lamina.control.options import PlatformOptions
from lamina.control.tables import ServiceTables
from lamina.control.venvs import Progress, ServiceVenvs, default_venv_dir
from lamina.dashboard import PUBLIC_PATHS
from lamina.errors import PlatformError, ShuttingDown
from lamina.events import AsyncInvoker, AsyncTarget, Queues, Topics, async_queue, dead_letter_queue
from lamina.events.queues import queue_store_name
from lamina.events.scheduler import ScheduledTarget, Scheduler, schedule_targets
from lamina.executor import ExecutorBackend, FunctionConfig, create_backend
from lamina.gateway.app import GatewayApp, RouteTarget
from lamina.gateway.front import GranianFront
from lamina.gateway.guard import GatewaySecurity
from lamina.gateway.http1 import Http1Protocol
from lamina.gateway.invoke_api import ACCOUNT, function_arn
from lamina.invoker import Invoker, PoolConfig
from lamina.invoker.aliases import qualified
from lamina.invoker.capacity import SharedCapacity
from lamina.manifest import AppSpec, FunctionSpec
from lamina.manifest.routekey import RouteKey
from lamina.scaling import HybridSpec, ScalingSpec
from lamina.store import Store, is_postgres_url, open_store
from lamina.store.types import PlaneStore
from lamina.telemetry.metrics import Metrics
from lamina.telemetry.otlp import OtlpExporter
from lamina.telemetry.recorder import Recorder

__all__ = ["Platform", "read_token"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


def read_token(state_dir: Path, given: str | None) -> str:
    """The admin token: given, or read from / written to STATE_DIR/admin-token (mode 0600).
    Two planes starting at once in one APP_DIR end up with the same token: the new one is
    written aside and linked into place only if none is there yet."""
    if given:
        return given
    path = state_dir / "admin-token"
    token = _stored_token(path)
    if token:
        return token
    token = secrets.token_urlsafe(32)
    aside = path.with_name(f".admin-token.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        os.link(aside, path)
    except FileExistsError:
        stored = _stored_token(path)
        if stored:
            return stored  # another process won
        os.replace(aside, path)  # an empty file: take its place
    finally:
        aside.unlink(missing_ok=True)
    return token


def _stored_token(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    return ""


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # the kernel spreads new connections over every socket bound so
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PlatformError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def function_config(
    fn: FunctionSpec,
    api_url: str,
    region: str,
    admin_url: str = "",
    function_token: str = "",
    tables_env: Mapping[str, str] | None = None,
    venv: Path | None = None,
    version: str = "$LATEST",
) -> FunctionConfig:
    """The executor's view of a function, with the environment Lambda would give it."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": fn.id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": f"{fn.timeout:g}",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"lamina/{fn.id}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCOUNT_ID": ACCOUNT,
        "_HANDLER": fn.handler,
        "LAMBDA_TASK_ROOT": str(fn.path),
        "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "LAMINA_API_URL": api_url,
        "LAMINA_ADMIN_URL": admin_url,  # lamina.send / lamina.publish
        "LAMINA_FUNCTION_TOKEN": function_token,
        "LAMINA_FUNCTION_ARN": function_arn(fn.id, region),
        "TZ": ":UTC",
        **(tables_env or {}),  # lamina.table: this service's tables only
    }
    env.update(fn.environment)
    return FunctionConfig(
        id=fn.id,
        handler=fn.handler,
        service_path=str(fn.path),
        memory_mb=fn.memory,
        timeout_s=fn.timeout,
        concurrency=fn.concurrency,
        env=env,
        preload=tuple(fn.preload),
        venv=str(venv) if venv is not None else None,
        requirements=str(fn.requirements) if venv is not None and fn.requirements else None,
        version=version,
        cpu=fn.cpu,
    )


class Platform:
    """A running Lamina: `async with Platform(app, options): ...` or `await run_forever()`."""

    def __init__(
        self,
        app: AppSpec,
        options: PlatformOptions | None = None,
        *,
        backend: ExecutorBackend | None = None,
        clock: Clock | None = None,
        venv_progress: Progress | None = None,
        rng: random.Random | None = None,  # draws canary splits; tests seed it
    ) -> None:
        self.app = app
        self._rng = rng
        self.options = options or PlatformOptions()
        self.state_dir = self.options.state_dir or app.root / ".lamina"
        # Services' own environments (`requirements:`), cached in the user's cache folder.
        venv_dir = self.options.venv_dir or default_venv_dir(os.environ)
        self.venvs = ServiceVenvs(venv_dir, venv_progress)
        self._clock = clock or SystemClock()
        self._backend = backend
        self.invoker: Invoker | None = None
        self.token = ""
        self.gateway_url = ""
        self.admin_url = ""
        self._servers: list[_Server] = []
        self._granian: GranianFront | None = None  # the gateway's server with `--http granian`
        self._server_tasks: list[asyncio.Task[None]] = []
        self.store: Store | None = None
        self.async_invoker: AsyncInvoker | None = None
        self.recorder: Recorder | None = None
        self.metrics: Metrics | None = None
        self.scheduler: Scheduler | None = None
        self.queues: Queues | None = None
        self.topics: Topics | None = None
        self.tables: ServiceTables | None = None
        self.gateway: GatewayApp | None = None
        self.security: GatewaySecurity | None = None  # CORS, auth, rate limits, API keys
        self.db_connections: ConnectionBound | None = None  # PostgreSQL only
        self.deploys: Deployments | None = None  # versions and aliases (control/deploys.py)
        self.capacity: SharedCapacity | None = None  # PostgreSQL: max_instances across planes
        self.function_token = ""  # opens only the admin API's /queues and /topics routes
        self._accepting = False

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        opts = self.options
        if opts.reuse_port and not is_postgres_url(opts.store_url):
            raise PlatformError(
                "--reuse-port needs a PostgreSQL --store: the planes sharing a port share "
                "max_instances, events and records through it (docs/scale-out.md)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        schedules = schedule_targets(self.app.functions().values())  # ManifestError before I/O
        self.db_connections = self._connection_bound()  # PlatformError over the cap, before I/O
        await self.venvs.build(self.app)  # RequirementsError before anything listens
        self.token = read_token(self.state_dir, opts.admin_token)
        self.function_token = secrets.token_urlsafe(32)
        gateway_sock = _bind(opts.host, opts.port, reuse_port=opts.reuse_port)
        gw_port = gateway_sock.getsockname()[1]
        admin_port = (
            opts.admin_port
            if opts.admin_port is not None
            else (0 if opts.port == 0 else gw_port + 1)
        )
        admin_sock = _bind(opts.host, admin_port)
        host = f"[{opts.host}]" if ":" in opts.host else opts.host
        self.gateway_url = f"http://{host}:{gw_port}"
        self.admin_url = f"http://{host}:{admin_sock.getsockname()[1]}"

        backend = self._backend or (
            create_backend("ray", address=opts.ray_address, cgroups=opts.cgroups)
            if opts.executor == "ray"
            else create_backend("local", state_dir=self.state_dir, cgroups=opts.cgroups)
        )
        self._backend = backend
        await backend.start()
        tables = ServiceTables(self.app, opts.store_url, self.state_dir, self._clock)
        self.tables = tables
        pools = [self.pool_config(fn) for fn in self.app.functions().values()]
        self.store = open_store(opts.store_url, default_dir=self.state_dir)
        self.metrics = Metrics(invocations=opts.record)  # derived from the records
        self.recorder = (
            Recorder(
                self.store,
                self._clock,
                retention_s=opts.retention_days * 86400,
                on_records=self.metrics.observe,
                spans=self._span_exporter(),
            )
            if opts.record
            else None
        )
        if isinstance(self.store, PlaneStore):  # other planes may share it: see docs/scale-out.md
            self.capacity = SharedCapacity(
                self.store,
                self._clock,
                gateway_url=self.gateway_url,
                admin_url=self.admin_url,
                ttl_s=opts.plane_ttl_s,
            )
        self.invoker = Invoker(pools, backend, self._clock, self.recorder, self._rng, self.capacity)
        self.deploys = Deployments(self, self._clock, max_bundle_bytes=opts.max_bundle_bytes)
        try:
            await self.store.open()
            await tables.start()  # before any instance can use them
            if self.capacity is not None:
                await self.capacity.start()  # before min_instances start
            await self.deploys.restore()  # the last deploy's app and versions, if any
            schedules = schedule_targets(self.app.functions().values())
            await self.invoker.start()
        except BaseException:
            await self.invoker.close()
            await backend.close()
            if self.capacity is not None:
                await self.capacity.stop()
            await tables.stop()
            await self.store.close()
            gateway_sock.close()
            admin_sock.close()
            raise
        if self.recorder is not None:
            self.recorder.start()
        self._start_events(self.app, schedules)
        security = GatewaySecurity(self.app, self.invoker.invoke, self.store, self._clock)
        self.security = security
        await security.start()
        gateway = GatewayApp(
            self.http_routes(self.app), self.invoker, self.submit_event, cors=security.cors
        )
        self.gateway = gateway
        scrape = MetricsScrape(
            self.metrics,
            self._clock,
            recorder=self.recorder,
            invoker=self.invoker,
            requests=gateway.requests,
            store=self.store,
            known_queues=self._known_queues(),
        )
        admin = admin_app(
            self.token,
            self.status,
            store=self.store,
            dead_letter_queues=self._dead_letter_queues,  # asked per request: reloads change it
            send=self._send,  # through the platform: a hot reload may replace the producers
            publish=self._publish,
            function_token=self.function_token,
            clock=self._clock,
            metrics=scrape,
            extra_routes=[
                *dashboard_routes(
                    lambda: self.app, self.store, self._clock, self._dead_letter_queues
                ),  # the current app and queues on each request: a hot reload changes them
                *key_routes(security.api_keys),
                *deploy_routes(self.deploys),
            ],
            public_paths=PUBLIC_PATHS,
            tables=self.tables,
            retention_s=opts.retention_days * 86400,
        )
        fronts: list[tuple[Any, socket.socket, Any]] = [(admin, admin_sock, "httptools")]
        if opts.http == "granian":
            front = GranianFront(gateway, opts.host, gw_port, opts.http_threads)
            gateway_sock.close()  # granian binds the port again, itself
            self._granian = front
            self._server_tasks.append(asyncio.create_task(front.serve()))
        else:
            fronts.insert(0, (gateway, gateway_sock, Http1Protocol))
        for asgi, sock, http in fronts:
            config = uvicorn.Config(
                asgi,
                loop="none",
                http=http,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=max(1, round(opts.grace_s)),
                server_header=False,
                proxy_headers=False,
                date_header=False,
            )
            server = _Server(config)
            self._servers.append(server)
            self._server_tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        # The sockets already listen: connections that arrive before uvicorn's loop runs wait
        # in the kernel's backlog, so there is nothing to wait for here.
        self._accepting = True
        self._write_runtime_file()
        log.info(
            "platform started",
            extra={
                "app": self.app.name,
                "gateway": self.gateway_url,
                "admin": self.admin_url,
                "functions": len(pools),
            },
        )

    async def stop(self) -> None:
        """Stop accepting, let in-flight work finish within the grace period, stop instances."""
        if not self._accepting and not self._servers:
            return
        self._accepting = False
        log.info("platform stopping", extra={"grace_s": self.options.grace_s})
        for server in self._servers:
            server.should_exit = True
        if self._granian is not None:
            self._granian.stop()
            self._granian = None
        if self._server_tasks:
            await asyncio.gather(*self._server_tasks, return_exceptions=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
        await asyncio.gather(
            *(
                events.stop(self.options.grace_s)
                for events in (self.async_invoker, self.queues, self.topics)
                if events is not None
            )
        )
        if self.invoker is not None:
            await self.invoker.drain(self.options.grace_s)
            if self.deploys is not None:
                await self.deploys.stop(self.options.grace_s)  # versions still retiring
            await self.invoker.close()
        if self._backend is not None:
            await self._backend.close()
        if self.capacity is not None:
            await self.capacity.stop()  # after the instances: their leases go with the plane
        if self.security is not None:
            await self.security.stop()  # saves the API keys' usage counts
        if self.recorder is not None:
            await self.recorder.stop()
        if self.tables is not None:
            await self.tables.stop()
        if self.store is not None:
            await self.store.close()
        self._servers.clear()
        self._server_tasks.clear()
        _remove_runtime_file(self.state_dir / "platform.json")
        log.info("platform stopped")

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self, on_started: Callable[[Platform], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then drain and stop; `on_started` runs once serving."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            if on_started is not None:
                on_started(self)
            await stop.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # -- parts a hot reload rebuilds ---------------------------------------------------------------
    def pool_config(self, fn: FunctionSpec, version: str = "$LATEST") -> PoolConfig:
        """The invoker's view of one declared function (its limits, scaling and environment),
        running `version` (a deployed version's number, or "$LATEST")."""
        assert self.tables is not None
        try:
            tables_env = self.tables.env_for(fn.service, fn.concurrency)
        except KeyError:  # a service added by a hot reload: its tables come with a restart
            tables_env = {}
        hybrid, keep_alive_s = None, fn.keep_alive
        if keep_alive_s == "auto":  # predictive: starts from the policy's fallback keep-alive
            hybrid = HybridSpec()
            keep_alive_s = hybrid.fallback_keep_alive_s
        return PoolConfig(
            fn=function_config(
                fn,
                self.gateway_url,
                self.options.region,
                self.admin_url,
                self.function_token,
                tables_env,
                self.venvs.path(fn.service),
                version,
            ),
            scaling=ScalingSpec(
                min_instances=fn.min_instances,
                max_instances=fn.max_instances,
                concurrency=fn.concurrency,
                keep_alive_s=keep_alive_s,
                hybrid=hybrid,
            ),
            max_queued=fn.max_queued,
            queue_timeout_s=fn.queue_timeout,
        )

    def http_routes(self, app: AppSpec) -> list[tuple[RouteKey, RouteTarget]]:
        """The gateway's route table for `app`, each route with its auth and rate limit."""
        security = self.security
        return [
            (
                route,
                RouteTarget(
                    qualified(fid, trigger.alias),  # `live` unless named
                    trigger.format,
                    security.guard(trigger) if security else None,
                ),
            )
            for route, trigger, fid in app.http_routes()
        ]

    def _start_events(self, app: AppSpec, schedules: list[ScheduledTarget]) -> None:
        """Start the consumers of `app`'s async invocations, queues, topics and schedules."""
        assert self.store is not None and self.invoker is not None
        opts = self.options
        self.async_invoker = AsyncInvoker(
            self.store,
            self.invoker.invoke,
            {fid: AsyncTarget.for_function(fn) for fid, fn in app.functions().items()},
            self._clock,
            poll_s=opts.event_poll_s,
        )
        self.async_invoker.start()
        self.queues = Queues.for_app(
            app,
            self.store,
            self.invoker.invoke,
            self._clock,
            poll_s=opts.event_poll_s,
            region=opts.region,
        )
        self.topics = Topics.for_app(
            app,
            self.store,
            self.invoker.invoke,
            self._clock,
            poll_s=opts.event_poll_s,
            region=opts.region,
            base_url=self.admin_url,
        )
        self.queues.start()
        self.topics.start()
        self.scheduler = Scheduler(
            self.store,
            schedules,
            self._submit_scheduled,
            self._clock,
            owner=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
            region=opts.region,
        )
        self.scheduler.start()

    async def restart_events(self, app: AppSpec) -> None:
        """Consume what `app` declares from now on: new consumers start first, then the old
        ones stop, letting their batches in progress finish (leases keep delivery at least
        once either way). Raises ManifestError for a bad schedule before anything changes."""
        schedules = schedule_targets(app.functions().values())
        old = (self.async_invoker, self.queues, self.topics)
        old_scheduler = self.scheduler
        self._start_events(app, schedules)
        if old_scheduler is not None:
            await old_scheduler.stop()
        await asyncio.gather(
            *(events.stop(self.options.grace_s) for events in old if events is not None)
        )

    async def _send(self, *args: Any, **kwargs: Any) -> Any:
        if self.queues is None:
            raise ShuttingDown("the platform is not running")
        return await self.queues.send(*args, **kwargs)

    async def _publish(self, *args: Any, **kwargs: Any) -> Any:
        if self.topics is None:
            raise ShuttingDown("the platform is not running")
        return await self.topics.publish(*args, **kwargs)

    # -- work -----------------------------------------------------------------------------------
    async def submit_event(
        self,
        target: str,
        payload: bytes,
        request_id: str,
        client_context: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> str:
        """Accept an `Event` invocation of `target` (`id`, `id:alias`, `id:7`): stored durably,
        with its qualifier, before this returns."""
        if not self._accepting or self.async_invoker is None:
            raise ShuttingDown("the platform is shutting down")
        return await self.async_invoker.submit(
            target,
            payload,
            request_id=request_id,
            client_context=client_context,
            traceparent=traceparent,
        )

    async def _submit_scheduled(self, target: str, payload: bytes, request_id: str) -> None:
        if self.async_invoker is None:
            raise ShuttingDown("the platform is shutting down")
        await self.async_invoker.submit(target, payload, request_id=request_id, trigger="schedule")

    def _span_exporter(self) -> OtlpExporter | None:
        """The OTLP exporter when an endpoint is set; export problems never stop the platform."""
        endpoint = self.options.otlp_endpoint
        if not endpoint:
            return None
        arns = {fid: function_arn(fid, self.options.region) for fid in self.app.functions()}
        exporter = OtlpExporter(endpoint, app=self.app.name, function_arns=arns)
        try:
            exporter.start()
        except Exception as exc:
            log.warning(
                "traces are not exported: the OTLP exporter cannot start",
                extra={"endpoint": endpoint, "error": repr(exc)},
            )
            return None
        return exporter

    def _dead_letter_queues(self) -> list[str]:
        """Every dead-letter queue this app can fill, so `GET /dlq` knows them all."""
        assert self.queues is not None and self.topics is not None
        asynchronous = [dead_letter_queue(async_queue(fid)) for fid in self.app.functions()]
        return sorted(
            {*asynchronous, *self.queues.dead_letter_queues, *self.topics.dead_letter_queues}
        )

    def _known_queues(self) -> list[str]:
        """The queues the metrics show even while empty: every dead-letter queue, its source,
        and every queue one may send to."""
        assert self.queues is not None
        dead = self._dead_letter_queues()
        sources = [q.removeprefix("dlq:") for q in dead]
        return [*dead, *sources, *(queue_store_name(name) for name in self.queues.names)]

    def status(self) -> dict[str, Any]:
        functions = self.invoker.status() if self.invoker else []
        status: dict[str, Any] = {
            "app": self.app.name,
            "gateway": self.gateway_url,
            "functions": functions,
        }
        if self.db_connections is not None:
            status["db_connections"] = self.db_connections.to_json()
        if self.capacity is not None:  # as of the last heartbeat
            status["control_planes"] = self.capacity.planes
        return status

    def _connection_bound(self) -> ConnectionBound | None:
        """With a PostgreSQL store: the most connections the app can hold, logged; refused
        over --max-db-connections (see `lamina.control.connections`)."""
        bound = app_connection_bound(self.app, self.options.store_url)
        if bound is not None:
            bound.check(self.options.max_db_connections)
            log.info("database connections bounded", extra={"max": bound.total})
        return bound

    # -- helpers ----------------------------------------------------------------------------------
    def _write_runtime_file(self) -> None:
        data = {
            "pid": os.getpid(),
            "gateway_url": self.gateway_url,
            "admin_url": self.admin_url,
            "app": self.app.name,
        }
        path = self.state_dir / "platform.json"
        path.write_bytes(orjson.dumps(data))


def _remove_runtime_file(path: Path) -> None:
    """Remove `platform.json` if this process wrote it: another plane started later in the
    same APP_DIR owns it now (the CLI then finds that one)."""
    with contextlib.suppress(OSError, ValueError):
        if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
            path.unlink()


@contextlib.asynccontextmanager
async def running(app: AppSpec, options: PlatformOptions | None = None) -> AsyncIterator[Platform]:
    platform = Platform(app, options)
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()
