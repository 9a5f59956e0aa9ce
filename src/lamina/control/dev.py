"""`lamina dev`: the platform plus a file watcher that applies changes while it serves.

A change to a `.py` file in a service's folder recycles only that service's functions: for
each, a new zygote starts with the new code and one instance is started from it (so a broken
module is caught before anything switches, and the first request after the change is warm);
then the function's invocations go to the new pool at once, while the old one finishes what
it had accepted and stops. A change to a service's requirements file (or a file it includes)
builds that service's environment anew (`control.venvs`) and recycles its functions the same
way; a failed install is reported and the service keeps its previous environment. A change
to `lamina.yaml` is loaded, checked and applied as
`control.reload.plan_reload` says. A broken edit (syntax error, import error, invalid
manifest) is reported and the last good version keeps serving.

Every reload ends in one `ReloadReport` handed to the caller's `report` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from lamina.control.platform import Platform
from lamina.control.reload import ReloadPlan, changed_services, plan_reload
from lamina.control.venvs import ServiceVenvs, services_using
from lamina.errors import InitError, InvocationError, LaminaError, ManifestError, RequirementsError
from lamina.events.scheduler import schedule_targets
from lamina.invoker import FunctionPool
from lamina.manifest import AppSpec, load_app

__all__ = ["ReloadReport", "Reloader", "run_dev"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """The outcome of one reload, for people: a status line and, for errors, the details."""

    ok: bool
    message: str  # e.g. "reloaded service users (2 functions) in 85 ms"
    detail: str = ""  # what went wrong, possibly several lines (a traceback's message)
    elapsed_ms: float = 0.0


Report = Callable[[ReloadReport], None]


class Reloader:
    """Watches the app's files and hot-reloads a running `Platform` until `stop()`."""

    def __init__(
        self,
        platform: Platform,
        report: Report,
        *,
        step_ms: int = 50,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self._platform = platform
        self._parameters = parameters  # a SAM template's --param overrides, kept on every reload
        self._report = report
        self._step_ms = step_ms  # quiet time that ends a burst of changes (one save, a checkout)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one reload at a time
        self._retiring: set[asyncio.Task[None]] = set()
        self._filter = DefaultFilter()
        self._requirements = frozenset(ServiceVenvs.files(platform.app))  # files to watch too
        self.ready = asyncio.Event()  # set once the watcher sees changes (tests wait on it)
        self.reloads = 0  # reloads finished, successful or not (tests wait on it)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching; wait for the reload in progress and for retiring pools."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    def watched(self) -> list[Path]:
        """The folders to watch: the app's, and each service folder outside it."""
        app = self._platform.app
        roots = [app.root]
        for service in app.services.values():
            if not any(service.path.is_relative_to(r) for r in roots) and service.path.is_dir():
                roots.append(service.path)
        return roots

    async def _watch(self) -> None:
        while not self._stop.is_set():
            roots = self.watched()
            async for changes in awatch(
                *roots,
                watch_filter=self._wanted,
                step=self._step_ms,
                stop_event=self._stop,
                rust_timeout=500,
                yield_on_timeout=True,  # an empty set after 0.5 s: the watcher is watching
            ):
                self.ready.set()
                if changes:
                    await self.apply({Path(path) for _, path in changes})
                    if self.watched() != roots:
                        break  # a service folder outside the app was added: watch it too

    def _wanted(self, change: Change, path: str) -> bool:
        return self._filter(change, path) and (
            path.endswith(".py")
            or Path(path) == self._platform.app.file
            or Path(path) in self._requirements
        )

    # -- applying changes -------------------------------------------------------------------------
    async def apply(self, files: set[Path]) -> None:
        """Apply a burst of changed files: the manifest first, then the services' code."""
        async with self._lock:
            recycled: set[str] = set()
            if self._platform.app.file in files:
                recycled = await self._apply_manifest()
            if services_using(self._platform.app, files):
                recycled |= await self._apply_requirements(recycled)
            code = sorted(f for f in files if f.suffix == ".py")
            app = self._platform.app
            for service in changed_services(app, code):
                fids = [
                    f.id for f in app.services[service].functions.values() if f.id not in recycled
                ]
                folder = app.services[service].path
                await self._reload_service(
                    service, fids, [f for f in code if f.is_relative_to(folder)]
                )
            self._requirements = frozenset(ServiceVenvs.files(self._platform.app))
            self.reloads += 1

    async def _apply_requirements(self, recycled: set[str]) -> set[str]:
        """Build the environments whose requirements changed and recycle their services'
        functions (but those in `recycled` already); returns the functions it recycled."""
        started = time.perf_counter()
        app = self._platform.app
        try:
            changed = await self._platform.venvs.build(app)
        except RequirementsError as exc:
            message = f"service {exc.service}: {exc.requirements} not installed"
            self._report(
                ReloadReport(False, f"{message}; still serving its previous environment", str(exc))
            )
            return set()
        done: set[str] = set()
        for service in changed:
            fids = [f.id for f in app.services[service].functions.values() if f.id not in recycled]
            await self._recycle_service(service, fids, started, " with its new environment")
            done.update(fids)
        return done

    async def _reload_service(self, service: str, fids: list[str], files: list[Path]) -> None:
        started = time.perf_counter()
        invoker = self._platform.invoker
        assert invoker is not None
        for fid in fids:  # until replaced, serve with the instances running the old code
            if fid in invoker.pools:
                invoker.pools[fid].hold()
        broken = _syntax_errors(files, self._platform.app.root)
        if broken:
            self._report(
                ReloadReport(
                    False,
                    f"service {service} not reloaded (syntax error); "
                    "still serving its previous code",
                    "\n".join(broken),
                )
            )
            return
        if not fids:
            return
        _forget_bytecode(files)
        await self._recycle_service(service, fids, started)

    async def _recycle_service(
        self, service: str, fids: list[str], started: float, how: str = ""
    ) -> None:
        """Recycle a service's functions `fids` and report it, timed from `started`."""
        failed = await self._recycle(fids)
        elapsed = (time.perf_counter() - started) * 1000
        if failed:
            self._report(_failed(f"service {service}", failed, elapsed))
            return
        n = len(fids)
        self._report(
            ReloadReport(
                True,
                f"reloaded service {service}{how} ({n} function{'' if n == 1 else 's'}) "
                f"in {elapsed:.0f} ms",
                elapsed_ms=elapsed,
            )
        )

    async def _recycle(self, fids: Iterable[str]) -> dict[str, str]:
        """Replace each function's pool by one running the current code and config; returns
        the functions that kept their old pool, with why."""
        invoker = self._platform.invoker
        assert invoker is not None
        functions = self._platform.app.functions()
        fids = list(fids)
        results = await asyncio.gather(
            *(invoker.start_pool(self._platform.pool_config(functions[fid])) for fid in fids),
            return_exceptions=True,
        )
        failed: dict[str, str] = {}
        for fid, result in zip(fids, results, strict=True):
            if isinstance(result, FunctionPool):
                old = invoker.switch(result)
                if old is not None:
                    self._retire(old)
            elif isinstance(result, LaminaError):
                failed[fid] = _error_text(result)
            elif isinstance(result, BaseException):
                raise result
        return failed

    async def _apply_manifest(self) -> set[str]:
        """Load, check and apply lamina.yaml; returns the functions it recycled or started."""
        started = time.perf_counter()
        platform = self._platform
        old = platform.app
        try:
            new = await asyncio.to_thread(load_app, old.file, parameters=self._parameters)
            if new.root != old.root:
                raise ManifestError("the app folder moved; restart lamina dev", file=str(old.file))
            schedule_targets(new.functions().values())  # bad schedules, before anything changes
            new_venvs = await platform.venvs.build(new)
        except (ManifestError, RequirementsError) as exc:
            self._report(_not_applied(str(exc)))
            return set()
        plan = plan_reload(old, new)
        if plan.refused:
            self._report(_not_applied("\n".join(plan.refused)))
            return set()
        if new_venvs:  # services whose environment changed: recycle their functions too
            fids = [
                f.id
                for s in new_venvs
                if s in new.services
                for f in new.services[s].functions.values()
            ]
            kept = [fid for fid in fids if fid not in plan.added]
            plan = replace(plan, recycled=tuple(dict.fromkeys([*plan.recycled, *kept])))
        for note in plan.restart_needed:
            self._report(ReloadReport(False, f"lamina.yaml: {note}; restart lamina dev to apply"))
        if plan.empty:
            platform.app = new
            return set()
        if plan.tables or set(new.services) != set(old.services):  # before any recycling
            assert platform.tables is not None
            try:
                await platform.tables.apply(new)
            except LaminaError as exc:
                self._report(_not_applied(str(exc)))
                return set()
        failed = await self._apply_plan(plan, new)
        elapsed = (time.perf_counter() - started) * 1000
        if failed:
            self._report(_failed("lamina.yaml", failed, elapsed))
        else:
            self._report(
                ReloadReport(
                    True, f"applied lamina.yaml ({plan.summary()}) in {elapsed:.0f} ms", "", elapsed
                )
            )
        return {*plan.added, *plan.recycled}

    async def _apply_plan(self, plan: ReloadPlan, new: AppSpec) -> dict[str, str]:
        """Start and recycle pools, swap the routes, stop removed functions, restart the
        event consumers. A recycled function whose new code fails keeps its old pool (and
        old config); an added one that fails is added anyway and answers with its error."""
        platform = self._platform
        invoker, gateway = platform.invoker, platform.gateway
        assert invoker is not None and gateway is not None
        platform.app = new  # pool_config reads the new specs
        failed = await self._recycle(plan.recycled)
        added = await self._recycle(plan.added)
        for fid in added:  # start it without a warm instance: its requests show the error
            config = platform.pool_config(new.functions()[fid])
            invoker.switch(await invoker.start_pool(config, prewarm=False))
        failed.update(added)
        if plan.routes:
            gateway.set_routes(platform.http_routes(new))
        for fid in plan.removed:
            pool = invoker.remove(fid)
            if pool is not None:
                self._retire(pool)
        if plan.events:
            await platform.restart_events(new)
        log.info("manifest applied", extra={"app": new.name, "changes": plan.summary()})
        return failed

    def _retire(self, pool: FunctionPool) -> None:
        assert self._platform.invoker is not None
        deadline_s = pool.fn.timeout_s + pool.config.queue_timeout_s + 1
        task = asyncio.get_running_loop().create_task(
            self._platform.invoker.retire(pool, deadline_s)
        )
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)


def _syntax_errors(files: Iterable[Path], root: Path) -> list[str]:
    """`file:line: SyntaxError: message` for each changed file that does not compile."""
    errors = []
    for path in files:
        try:
            source = path.read_bytes()
        except OSError:  # deleted or renamed: the new zygote's imports tell
            continue
        try:
            compile(source, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            errors.append(f"{shown}:{exc.lineno}: {type(exc).__name__}: {exc.msg}")
        except ValueError as exc:  # null bytes
            errors.append(f"{path}: {exc}")
    return errors


def _forget_bytecode(files: Iterable[Path]) -> None:
    """Remove the cached bytecode of changed files. Python checks a `.pyc` against its
    source's size and mtime in whole seconds: two edits of the same size within one second
    would otherwise load the first edit's code."""
    for path in files:
        with contextlib.suppress(OSError, ValueError):
            os.remove(importlib.util.cache_from_source(str(path)))


def _error_text(exc: LaminaError) -> str:
    """The error without its function id, plus where in the code it happened (an import
    error's innermost frame: `File "…/handlers.py", line 7, in <module>`)."""
    text = exc.message if isinstance(exc, InvocationError) else str(exc)
    if isinstance(exc, InitError) and exc.stack_trace:
        where = exc.stack_trace[-1].strip().splitlines()[0]
        text = f"{text}\n  {where}"
    return text


def _not_applied(detail: str) -> ReloadReport:
    return ReloadReport(
        False, "lamina.yaml not applied; still serving the last good version", detail
    )


def _failed(what: str, failed: dict[str, str], elapsed_ms: float) -> ReloadReport:
    """One report for functions that failed to load; functions failing alike are grouped
    (all of a service's functions import the same broken module)."""
    by_error: dict[str, list[str]] = {}
    for fid, error in sorted(failed.items()):
        by_error.setdefault(error, []).append(fid)
    names = ", ".join(sorted(failed))
    detail = "\n".join(f"{', '.join(fids)}: {error}" for error, fids in by_error.items())
    return ReloadReport(
        False,
        f"{what}: {names} failed to load; still serving the previous version",
        detail,
        elapsed_ms,
    )


async def run_dev(
    platform: Platform,
    report: Report,
    on_started: Callable[[Platform, Reloader], None] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> None:
    """`Platform.run_forever` with a `Reloader`: serve and hot-reload until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(platform, report, parameters=parameters)
    try:
        await platform.start()
        reloader.start()
        if on_started is not None:
            on_started(platform, reloader)
        await stop.wait()
    finally:
        await reloader.stop()
        await platform.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
