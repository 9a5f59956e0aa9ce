"""Deploys to a running platform: immutable function versions, aliases, canaries, rollback.

A deploy takes an app bundle (see `control.bundle`), keeps it under
`STATE_DIR/deploys/bundles/<sha256>.tar.gz` and unpacked under `STATE_DIR/deploys/trees/<sha256>/`,
and loads its `lamina.yaml`. Each function whose code (its service folder's files) or
runtime config (handler, limits, environment; not its triggers) differs from its latest
version gets the next version number; the others keep theirs. The new versions' pools start
and load their code (one warm instance each) before anything switches; a version that cannot
load fails the whole deploy and nothing changes. Then, in one store transaction, the versions,
the moved `live` aliases and the deploy are recorded; then the aliases switch, and the routes
and event triggers of the new manifest apply as a hot reload would apply them
(`control.reload.plan_reload`).

One pool runs per version an alias points at (the canary included while its weight is above
0), plus the `$LATEST` pool of a function no `live` alias covers yet. A pool nothing points
at any more finishes its in-flight invocations and stops (`Invoker.retire`), its zygote with
it. A restarted platform serves the last deploy's manifest and starts the pools its aliases
need (`restore`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lamina.clock import Clock
from lamina.control.bundle import UNPACKED_FACTOR, bundle_digest, tree_hash, unpack_bundle
from lamina.control.reload import plan_reload, runtime_fields
from lamina.control.venvs import ensure_venv, find_uv
from lamina.errors import (
    DeployError,
    LaminaError,
    ManifestError,
    PlatformError,
    RequirementsError,
    TableError,
)
from lamina.events.scheduler import schedule_targets
from lamina.invoker import FunctionPool, Invoker, PoolConfig
from lamina.invoker.aliases import LATEST, LIVE, AliasRoute
from lamina.invoker.pool import pool_key
from lamina.manifest import AppSpec, FunctionSpec, load_app
from lamina.store.types import AliasRecord, FunctionVersion, Store

if TYPE_CHECKING:
    from lamina.control.platform import Platform

__all__ = ["DeployOutcome", "Deployments", "config_hash"]

log = logging.getLogger(__name__)

_ALIAS_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    deploy_id: int
    bundle: str  # the bundle's SHA-256
    app: str
    versions: dict[str, int]  # function id -> its version after the deploy
    created: tuple[str, ...]  # functions that got a new version
    promoted: bool  # whether `live` moved to the new versions
    changes: str  # routes and triggers, as a hot reload summarises them

    def to_json(self) -> dict[str, Any]:
        return {
            "deploy": self.deploy_id,
            "bundle": self.bundle,
            "app": self.app,
            "promoted": self.promoted,
            "changes": self.changes,
            "functions": [
                {"id": fid, "version": v, "changed": fid in self.created}
                for fid, v in self.versions.items()
            ],
        }


@dataclass(frozen=True, slots=True)
class _Staged:
    """A deploy ready to be stored and switched to: its pools run, nothing routes to them."""

    app: AppSpec
    new: list[FunctionVersion]  # the versions it creates
    versions: dict[str, int]  # function id -> its version after the deploy
    moved: list[AliasRecord]  # the aliases it moves (`live`, when promoting)
    routes: dict[str, dict[str, AliasRoute]]  # every function's aliases after it
    started: list[FunctionPool]  # the pools it started
    now_ms: int


def config_hash(fn: FunctionSpec) -> str:
    """SHA-256 of what `fn`'s instances run with, its code folder aside (that is the code
    hash's business): two deploys of the same config hash alike."""
    fields = {k: v for k, v in runtime_fields(fn).items() if k != "path"}
    return hashlib.sha256(
        orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=str)
    ).hexdigest()


def alias_view(a: AliasRecord) -> dict[str, Any]:
    return {
        "function": a.function_id,
        "name": a.name,
        "version": a.version,
        "canary_version": a.canary_version,
        "canary_weight": a.canary_weight,
        "previous_version": a.previous_version,
        "updated_ms": a.updated_ms,
    }


def version_view(v: FunctionVersion, available: bool = True) -> dict[str, Any]:
    """A version as the admin API shows it; `available`: its bundle is still kept (a pruned
    version cannot run again)."""
    spec = orjson.loads(v.spec)
    return {
        "function": v.function_id,
        "version": v.version,
        "code_hash": v.code_hash,
        "config_hash": v.config_hash,
        "bundle": v.bundle,
        "created_ms": v.created_ms,
        "handler": spec.get("handler"),
        "memory": spec.get("memory"),
        "timeout": spec.get("timeout"),
        "available": available,
    }


class Deployments:
    """The platform's versions and aliases: deploy, set an alias, roll back, restore."""

    def __init__(self, platform: Platform, clock: Clock, *, max_bundle_bytes: int) -> None:
        self._platform = platform
        self._clock = clock
        self.max_bundle_bytes = max_bundle_bytes
        self.keep_deploys = platform.options.keep_deploys  # bundles of the last N deploys kept
        self.root = platform.state_dir / "deploys"
        self._lock = asyncio.Lock()  # one deploy or alias change at a time
        self._apps: dict[str, AppSpec] = {}  # unpacked bundles' manifests, by digest
        self._retiring: dict[asyncio.Task[None], FunctionPool] = {}

    @property
    def _store(self) -> Store:
        assert self._platform.store is not None
        return self._platform.store

    @property
    def _invoker(self) -> Invoker:
        assert self._platform.invoker is not None
        return self._platform.invoker

    def tree(self, digest: str) -> Path:
        return self.root / "trees" / digest

    # -- start and stop ---------------------------------------------------------------------
    async def restore(self) -> None:
        """Before the invoker starts: serve the last deploy's manifest, with one (not yet
        started) pool per version the stored aliases point at."""
        store, platform = self._store, self._platform
        last = await store.last_deploy()
        records = await store.aliases()
        if last is None and not records:
            return
        if last is not None:
            try:
                platform.app = await self._app(last.bundle)
            except (ManifestError, OSError) as exc:
                raise PlatformError(
                    f"cannot serve deploy {last.id} (bundle {last.bundle[:12]}): {exc}"
                ) from exc
            await self._tables(platform.app)
        versions = {(v.function_id, v.version): v for v in await store.function_versions()}
        by_function: dict[str, dict[str, AliasRoute]] = {}
        for record in records:
            by_function.setdefault(record.function_id, {})[record.name] = _route(record)
        configs = []
        for fid, fn in platform.app.functions().items():
            routes = by_function.get(fid, {})
            self._invoker.set_aliases(fid, routes)
            for v in sorted({v for r in routes.values() for v in r.versions()}):
                spec = await self._spec(versions[(fid, v)])
                configs.append(await self._pool_config(spec, str(v)))
            if LIVE not in routes:
                configs.append(await self._pool_config(fn))
        self._invoker.reset(configs)
        log.info(
            "deploys restored",
            extra={"deploy": last.id if last else None, "aliases": len(records)},
        )

    async def stop(self, grace_s: float) -> None:
        """Wait up to `grace_s` for retiring pools to finish, then close what remains."""
        tasks = set(self._retiring)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
                pool = self._retiring.get(task)
                if pool is not None:
                    await pool.close()
                    self._invoker.backend.release(pool.fn)
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- deploy -------------------------------------------------------------------------------
    async def deploy(self, data: bytes, *, promote: bool = True) -> DeployOutcome:
        """Deploy the bundle `data` (see the module's docstring). Raises BundleRejected,
        ManifestError or DeployError, having changed nothing: a refused bundle that was not
        on disk before leaves nothing behind. Then prunes old bundles (`_prune`)."""
        async with self._lock:
            digest = bundle_digest(data)
            fresh = not self.tree(digest).is_dir()
            deploy_id: int | None = None
            try:
                staged = await self._stage(data, digest, promote)
                try:
                    deploy_id = await self._store.add_deploy(
                        bundle=digest,
                        app=staged.app.name,
                        versions=staged.new,
                        aliases=staged.moved,
                        now_ms=staged.now_ms,
                    )
                    gone = [f for f in self._platform.app.functions() if f not in staged.versions]
                    for fid in gone:
                        for name in self._invoker.aliases.get(fid, {}):
                            await self._store.delete_alias(fid, name)
                except BaseException:
                    await self._close(staged.started)
                    raise
            except BaseException:
                if fresh and deploy_id is None:
                    self._apps.pop(digest, None)
                    await asyncio.to_thread(self._forget, digest)
                raise
            self._switch(staged.started, staged.routes)
            changes = await self._apply_manifest(staged.app)
            self._collect()
            log.info(
                "deployed",
                extra={"deploy": deploy_id, "bundle": digest, "new_versions": len(staged.new)},
            )
            await self._prune()
            return DeployOutcome(
                deploy_id,
                digest,
                staged.app.name,
                staged.versions,
                tuple(v.function_id for v in staged.new),
                promote,
                changes,
            )

    async def _stage(self, data: bytes, digest: str, promote: bool) -> _Staged:
        """Keep and load the bundle, number the new versions, create added tables and start
        the pools the deploy needs; nothing routes to them yet and nothing is stored."""
        await asyncio.to_thread(self._keep, data, digest)
        app = await self._app(digest)
        tree = self.tree(digest)
        schedule_targets(app.functions().values())  # bad schedules, before anything changes
        latest: dict[str, FunctionVersion] = {}
        for v in await self._store.function_versions():
            latest[v.function_id] = v  # ordered by version: the last one wins
        now_ms = int(self._clock.wall() * 1000)
        new: list[FunctionVersion] = []
        versions: dict[str, int] = {}
        for fid, fn in app.functions().items():
            code = await asyncio.to_thread(tree_hash, fn.path)
            config = config_hash(fn)
            was = latest.get(fid)
            if was is not None and (was.code_hash, was.config_hash) == (code, config):
                versions[fid] = was.version
                continue
            made = FunctionVersion(
                fid,
                (was.version if was else 0) + 1,
                code,
                config,
                digest,
                _spec_json(fn, tree),
                now_ms,
            )
            new.append(made)
            versions[fid] = made.version
        current = {(a.function_id, a.name): a for a in await self._store.aliases()}
        moved = []
        if promote:
            for fid, number in versions.items():
                was_live = current.get((fid, LIVE))
                if was_live is None or (was_live.version, was_live.canary_version) != (
                    number,
                    None,
                ):
                    moved.append(_moved(fid, LIVE, was_live, number, None, 0, now_ms))
        routes = self._routes_after(current, moved, app)
        specs = {(fid, versions[fid]): fn for fid, fn in app.functions().items()}
        await self._tables(app)  # before the new versions start: they may use them at import
        started = await self._start_pools(routes, specs)
        return _Staged(app, new, versions, moved, routes, started, now_ms)

    # -- aliases ------------------------------------------------------------------------------
    async def set_alias(
        self,
        function_id: str,
        name: str,
        version: int,
        canary: int | None = None,
        weight: int = 0,
    ) -> AliasRecord:
        """Point alias `name` at `version`, sending `weight` percent to `canary`."""
        if not name or not set(name) <= _ALIAS_NAME or name.isdecimal() or len(name) > 64:
            raise DeployError(
                f"alias {name!r}: expected 1-64 letters, digits, '-' or '_', not only digits"
            )
        if canary is None and weight:
            raise DeployError(f"alias {name!r}: a weight needs a canary version")
        if not 0 <= weight <= 100:
            raise DeployError(f"alias {name!r}: weight must be 0..100 (percent), got {weight}")
        if canary == version:
            raise DeployError(f"alias {name!r}: the canary must differ from version {version}")
        async with self._lock:
            known = await self._versions_of(function_id)
            for v in (version, canary):
                if v is not None and v not in known:
                    raise _no_version(function_id, v, known)
            current = {(a.function_id, a.name): a for a in await self._store.aliases(function_id)}
            now_ms = int(self._clock.wall() * 1000)
            record = _moved(
                function_id,
                name,
                current.get((function_id, name)),
                version,
                canary,
                weight,
                now_ms,
            )
            await self._apply_alias(record, known, current)
            return record

    async def rollback(
        self, function_id: str, name: str = LIVE, to: int | None = None
    ) -> AliasRecord:
        """Move alias `name` back to the version it pointed at before, or to version `to`
        (canary dropped); it remembers the version it leaves as its previous one."""
        async with self._lock:
            current = {(a.function_id, a.name): a for a in await self._store.aliases(function_id)}
            alias = current.get((function_id, name))
            if alias is None:
                raise DeployError(f"{function_id} has no alias {name!r}", missing=True)
            if to is None and alias.previous_version is None:
                raise DeployError(
                    f"{function_id}:{name} has no previous version to roll back to "
                    f"(it points at version {alias.version})"
                )
            known = await self._versions_of(function_id)
            target = alias.previous_version if to is None else to
            assert target is not None
            if target not in known:
                raise _no_version(function_id, target, known)
            now_ms = int(self._clock.wall() * 1000)
            record = AliasRecord(function_id, name, target, None, 0, alias.version, now_ms)
            await self._apply_alias(record, known, current)
            log.info(
                "rolled back",
                extra={"function_id": function_id, "alias": name, "version": record.version},
            )
            return record

    async def delete_alias(self, function_id: str, name: str) -> None:
        async with self._lock:
            if not await self._store.delete_alias(function_id, name):
                raise DeployError(f"{function_id} has no alias {name!r}", missing=True)
            routes = dict(self._invoker.aliases.get(function_id, {}))
            routes.pop(name, None)
            if name == LIVE and function_id not in self._invoker.pools:
                fn = self._platform.app.functions().get(function_id)
                if fn is not None:  # `live` falls back to $LATEST: run it again
                    self._invoker.switch(
                        await self._invoker.start_pool(await self._pool_config(fn))
                    )
            self._invoker.set_aliases(function_id, routes)
            self._collect()

    async def versions(self, function_id: str | None = None) -> list[dict[str, Any]]:
        return [
            version_view(v, self.tree(v.bundle).is_dir())
            for v in await self._store.function_versions(function_id)
        ]

    async def aliases(self, function_id: str | None = None) -> list[dict[str, Any]]:
        return [alias_view(a) for a in await self._store.aliases(function_id)]

    # -- mechanism ----------------------------------------------------------------------------
    async def _apply_alias(
        self,
        record: AliasRecord,
        known: dict[int, FunctionVersion],
        current: dict[tuple[str, str], AliasRecord],
    ) -> None:
        """Start the pools `record` needs, store it, then route by it."""
        fid = record.function_id
        routes = self._routes_after(current, [record], self._platform.app, only=fid)
        wanted = {(fid, v) for v in routes[fid].get(record.name, _route(record)).versions()}
        specs = {key: await self._spec(known[key[1]]) for key in wanted}
        started = await self._start_pools(routes, specs)
        try:
            await self._store.set_alias(record)
        except BaseException:
            await self._close(started)
            raise
        self._switch(started, routes)
        self._collect()

    def _routes_after(
        self,
        current: dict[tuple[str, str], AliasRecord],
        changed: list[AliasRecord],
        app: AppSpec,
        only: str | None = None,
    ) -> dict[str, dict[str, AliasRoute]]:
        """Every function's alias routes once `changed` is applied to `current`."""
        merged = dict(current)
        for record in changed:
            merged[(record.function_id, record.name)] = record
        routes: dict[str, dict[str, AliasRoute]] = {}
        for (fid, name), record in merged.items():
            if (only is None and fid in app.functions()) or fid == only:
                routes.setdefault(fid, {})[name] = _route(record)
        return routes

    async def _start_pools(
        self,
        routes: dict[str, dict[str, AliasRoute]],
        specs: dict[tuple[str, int], FunctionSpec],
    ) -> list[FunctionPool]:
        """Start (one warm instance each) the pools `routes` need that are not running, from
        `specs` or the versions' own bundles. Raises DeployError, leaving none running, when
        a version's code cannot load."""
        invoker = self._invoker
        needed: list[tuple[str, int]] = []
        for fid, by_name in routes.items():
            for route in by_name.values():
                for v in route.versions():
                    if pool_key(fid, str(v)) not in invoker.pools and (fid, v) not in needed:
                        needed.append((fid, v))
        configs = []
        for fid, v in needed:
            spec = specs.get((fid, v))
            if spec is None:
                known = await self._versions_of(fid)
                if v not in known:
                    raise _no_version(fid, v, known)
                spec = await self._spec(known[v])
            try:
                configs.append(await self._pool_config(spec, str(v)))
            except RequirementsError as exc:
                raise DeployError(
                    f"{fid} version {v} cannot start: {exc}", failed_to_load=True
                ) from exc
        results = await asyncio.gather(
            *(invoker.start_pool(c) for c in configs), return_exceptions=True
        )
        started = [r for r in results if isinstance(r, FunctionPool)]
        failed = [
            (c, r) for c, r in zip(configs, results, strict=True) if isinstance(r, BaseException)
        ]
        if failed:
            await self._close(started)
            config, error = failed[0]
            if not isinstance(error, LaminaError):
                raise error
            raise DeployError(
                f"{config.fn.id} version {config.fn.version} failed to load: {error}",
                failed_to_load=True,
            ) from error
        return started

    def _switch(
        self, started: list[FunctionPool], routes: dict[str, dict[str, AliasRoute]]
    ) -> None:
        invoker = self._invoker
        for pool in started:
            invoker.switch(pool)
        for fid, by_name in routes.items():
            invoker.set_aliases(fid, by_name)

    async def _apply_manifest(self, app: AppSpec) -> str:
        """Serve `app`'s routes and triggers (as a hot reload does); returns the summary."""
        platform = self._platform
        plan = plan_reload(platform.app, app)
        for fid in plan.removed:
            self._invoker.set_aliases(fid, {})
        platform.app = app
        if plan.routes and platform.gateway is not None:
            platform.gateway.set_routes(platform.http_routes(app))
        if plan.events:
            await platform.restart_events(app)
        # A deploy creates added tables itself (`_tables`): only the rest needs a restart.
        notes = tuple(n for n in plan.restart_needed if not n.endswith("its tables changed"))
        for note in notes:
            log.warning("deploy: restart the platform to apply", extra={"change": note})
        # Functions are not recycled by a deploy (their versions are): name routes and triggers.
        summary = dataclasses.replace(
            plan, added=(), removed=(), recycled=(), restart_needed=notes
        ).summary()
        return "routes and triggers unchanged" if summary == "no changes" else summary

    def _collect(self) -> None:
        """Retire every pool nothing points at: versions no alias names, `$LATEST` pools of
        functions a `live` alias covers, and the pools of functions no longer declared."""
        invoker = self._invoker
        keep: set[str] = set()
        for fid in self._platform.app.functions():
            routes = invoker.aliases.get(fid, {})
            keep.update(pool_key(fid, str(v)) for r in routes.values() for v in r.versions())
            if LIVE not in routes:
                keep.add(pool_key(fid, LATEST))
        for key in [k for k in invoker.pools if k not in keep]:
            pool = invoker.remove(key)
            if pool is not None:
                self._retire(pool)

    def _retire(self, pool: FunctionPool) -> None:
        deadline_s = pool.fn.timeout_s + pool.config.queue_timeout_s + 1
        task = asyncio.get_running_loop().create_task(self._invoker.retire(pool, deadline_s))
        self._retiring[task] = pool
        task.add_done_callback(self._retiring.pop)
        log.info("version retired", extra={"function_id": pool.fn.id, "version": pool.fn.version})

    async def _close(self, pools: list[FunctionPool]) -> None:
        for pool in pools:
            await pool.close()
            self._invoker.backend.release(pool.fn)

    async def _versions_of(self, function_id: str) -> dict[int, FunctionVersion]:
        return {v.version: v for v in await self._store.function_versions(function_id)}

    def _keep(self, data: bytes, digest: str) -> None:
        """Store the bundle under its digest and unpack it (once per digest)."""
        tree = self.tree(digest)
        if tree.is_dir():
            return
        bundles = self.root / "bundles"
        bundles.mkdir(parents=True, exist_ok=True)
        staging = self.root / "trees" / f".{digest}.partial"
        if staging.exists():
            shutil.rmtree(staging)
        unpack_bundle(data, staging, self.max_bundle_bytes * UNPACKED_FACTOR)
        (bundles / f"{digest}.tar.gz").write_bytes(data)
        staging.rename(tree)

    async def _app(self, digest: str) -> AppSpec:
        """The manifest of unpacked bundle `digest`, its errors named relative to the bundle."""
        app = self._apps.get(digest)
        if app is not None:
            return app
        tree = self.tree(digest)
        try:
            app = await asyncio.to_thread(load_app, tree)
        except ManifestError as exc:
            shown = Path(exc.file)
            if shown.is_relative_to(tree):
                shown = shown.relative_to(tree)
            raise ManifestError(
                exc.message, file=str(shown), path=exc.path, line=exc.line
            ) from None
        for name, service in app.services.items():
            if not service.path.resolve().is_relative_to(tree.resolve()):
                raise ManifestError(
                    f"the code folder {service.path} is outside the bundle; "
                    "deploys take services inside the app folder only",
                    file="lamina.yaml",
                    path=f"services.{name}.path",
                )
        self._apps[digest] = app
        return app

    async def _spec(self, version: FunctionVersion) -> FunctionSpec:
        """The spec of a stored version, from its own bundle's manifest. Raises DeployError
        for a version whose bundle was pruned."""
        if not self.tree(version.bundle).is_dir():
            raise DeployError(
                f"{version.function_id} version {version.version} was pruned: its bundle "
                f"{version.bundle[:12]} is no longer kept (lamina up --keep-deploys)"
            )
        return (await self._app(version.bundle)).functions()[version.function_id]

    async def _pool_config(self, spec: FunctionSpec, version: str = LATEST) -> PoolConfig:
        """The platform's pool config for `spec`, running in the environment its own
        requirements file builds (from the cache when built before). Raises RequirementsError
        naming the service and the file."""
        config = self._platform.pool_config(spec, version)
        venvs = self._platform.venvs
        venv = None
        if spec.requirements is not None:
            venv = await ensure_venv(
                spec.service,
                spec.requirements,
                venvs.cache_dir,
                shown=_shown(spec.requirements, self.root / "trees"),
                uv=find_uv() if venvs.use_uv else None,
                progress=venvs.progress,
            )
        fn = dataclasses.replace(config.fn, venv=str(venv) if venv is not None else None)
        return dataclasses.replace(config, fn=fn)

    async def _tables(self, app: AppSpec) -> None:
        """Create the tables `app` declares that the platform does not serve yet."""
        tables = self._platform.tables
        if tables is None:
            return
        try:
            added = await tables.apply(app)
        except TableError as exc:
            raise DeployError(f"tables: {exc}") from exc
        if added:
            log.info("deploy created tables", extra={"services": added})

    async def _prune(self) -> None:
        """Delete the bundles (archive and unpacked tree) that neither one of the last
        `keep_deploys` deploys nor a version an alias points at, or remembers as its previous
        one, nor a running pool needs. Their versions stay listed, as pruned."""
        store = self._store
        keep = {d.bundle for d in await store.recent_deploys(self.keep_deploys)}
        by_number = {(v.function_id, v.version): v.bundle for v in await store.function_versions()}
        for a in await store.aliases():
            for n in (a.version, a.canary_version, a.previous_version):
                if n is not None and (a.function_id, n) in by_number:
                    keep.add(by_number[(a.function_id, n)])
        for pool in [*self._invoker.pools.values(), *self._retiring.values()]:
            if pool.fn.version != LATEST:
                keep.add(by_number.get((pool.fn.id, int(pool.fn.version)), ""))
        pruned = await asyncio.to_thread(self._prune_files, keep)
        for digest in pruned:
            self._apps.pop(digest, None)
        if pruned:
            log.info("bundles pruned", extra={"bundles": len(pruned), "kept": len(keep)})

    def _prune_files(self, keep: set[str]) -> list[str]:
        on_disk = {p.name for p in (self.root / "trees").iterdir() if not p.name.startswith(".")}
        on_disk.update(p.name.removesuffix(".tar.gz") for p in (self.root / "bundles").iterdir())
        pruned = sorted(on_disk - keep)
        for digest in pruned:
            self._forget(digest)
        return pruned

    def _forget(self, digest: str) -> None:
        """Delete bundle `digest`'s archive, unpacked tree and any partial unpacking."""
        for folder in (self.tree(digest), self.root / "trees" / f".{digest}.partial"):
            shutil.rmtree(folder, ignore_errors=True)
        (self.root / "bundles" / f"{digest}.tar.gz").unlink(missing_ok=True)


def _route(record: AliasRecord) -> AliasRoute:
    return AliasRoute(record.version, record.canary_version, float(record.canary_weight))


def _moved(
    fid: str,
    name: str,
    was: AliasRecord | None,
    version: int,
    canary: int | None,
    weight: int,
    now_ms: int,
) -> AliasRecord:
    """The alias `name` once pointed at `version`; `previous_version` remembers where it
    pointed before, or keeps what it remembered when its main version stays."""
    if was is None:
        previous = None
    elif was.version != version:
        previous = was.version
    else:
        previous = was.previous_version
    return AliasRecord(fid, name, version, canary, weight, previous, now_ms)


def _spec_json(fn: FunctionSpec, tree: Path) -> str:
    data = fn.model_dump(mode="json", exclude={"path"})
    data["path"] = fn.path.relative_to(tree).as_posix() if fn.path.is_relative_to(tree) else ""
    return orjson.dumps(data).decode()


def _no_version(function_id: str, version: int, known: dict[int, FunctionVersion]) -> DeployError:
    have = ", ".join(str(v) for v in sorted(known)) or "none yet"
    return DeployError(f"{function_id} has no version {version} (versions: {have})", missing=True)


def _shown(path: Path, trees: Path) -> str:
    """`path` inside an unpacked bundle as the app folder names it (`services/a/req.txt`)."""
    if path.is_relative_to(trees):
        return Path(*path.relative_to(trees).parts[1:]).as_posix()
    return str(path)
