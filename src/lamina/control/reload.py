"""Hot reload policy: what a change to the app's files asks of a running platform.

Pure: it compares two loaded manifests, or maps changed file paths to services, and returns
plain values. `control.dev` watches the files and applies the answers.

What a manifest change does, function by function:
- a function declared only in the new manifest is started, one only in the old is stopped;
- a function whose handler, code folder, limits, scaling or environment changed is recycled:
  new instances from a new zygote, the old ones finish their in-flight invocations;
- changed HTTP routes rebuild the gateway's route table; changed queue, topic or schedule
  triggers (or async retry settings, or the set of functions) restart the event consumers;
- changed service tables (a table added or removed, a changed ttl attribute) are created or
  updated, and the service's functions recycled so they see them; a changed key or sort key
  of a table refuses the whole change (`refused`): existing items cannot be re-keyed;
- what only a restart can apply (app-level settings) is named, not applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.manifest import AppSpec, FunctionSpec, HttpTrigger, TableSpec

__all__ = ["ReloadPlan", "changed_services", "plan_reload", "runtime_fields"]

# FunctionSpec fields a recycle does not need: triggers are applied by the router and the
# event consumers; async retry settings by the async invoker.
_NOT_RUNTIME = frozenset({"events", "async_invoke"})


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The actions that take a platform serving one manifest to serving another."""

    added: tuple[str, ...] = ()  # function ids to start
    removed: tuple[str, ...] = ()  # function ids to drain and stop
    recycled: tuple[str, ...] = ()  # function ids whose instances must be replaced
    routes: bool = False  # the HTTP route table changed
    routes_added: int = 0  # routes only in the new manifest (for the status line)
    routes_removed: int = 0  # routes only in the old manifest
    events: bool = False  # queue/topic/schedule triggers or async settings changed
    tables: tuple[str, ...] = ()  # services whose tables changed: create them before recycling
    restart_needed: tuple[str, ...] = ()  # changes only a restart applies, as sentences
    refused: tuple[str, ...] = ()  # why the new manifest cannot be applied at all, if it cannot

    @property
    def empty(self) -> bool:
        return not (
            self.added or self.removed or self.recycled or self.routes or self.events or self.tables
        )

    def summary(self) -> str:
        """One line for people, e.g. `+1 route, 1 function recycled`; `no changes` if empty."""
        parts = []
        if self.routes_added:
            parts.append(_count(self.routes_added, "route", "+"))
        if self.routes_removed:
            parts.append(_count(self.routes_removed, "route", "-"))
        if self.routes and not (self.routes_added or self.routes_removed):
            parts.append("routes changed")
        if self.added:
            parts.append(_count(len(self.added), "function", "+"))
        if self.removed:
            parts.append(_count(len(self.removed), "function", "-"))
        if self.recycled:
            parts.append(f"{_count(len(self.recycled), 'function')} recycled")
        if self.tables:
            parts.append(f"tables of {', '.join(self.tables)} applied")
        if self.events:
            parts.append("event triggers restarted")
        return ", ".join(parts) or "no changes"


def plan_reload(old: AppSpec, new: AppSpec) -> ReloadPlan:
    """The actions that apply `new` to a platform running `old` (both valid manifests)."""
    before, after = old.functions(), new.functions()
    added = tuple(fid for fid in after if fid not in before)
    removed = tuple(fid for fid in before if fid not in after)
    tables = tuple(
        name
        for name, service in new.services.items()
        if service.tables != (old.services[name].tables if name in old.services else {})
    )
    recycled = tuple(
        fid
        for fid, fn in after.items()
        if fid in before
        and (runtime_fields(fn) != runtime_fields(before[fid]) or fn.service in tables)
    )
    old_routes, new_routes = _routes(old), _routes(new)
    return ReloadPlan(
        added=added,
        removed=removed,
        recycled=recycled,
        routes=old_routes != new_routes,
        routes_added=len(set(new_routes) - set(old_routes)),
        routes_removed=len(set(old_routes) - set(new_routes)),
        events=bool(added or removed) or _events(old) != _events(new),
        tables=tables,
        restart_needed=_restart_needed(old, new),
        refused=_rekeyed(old, new),
    )


def changed_services(app: AppSpec, files: Iterable[Path]) -> list[str]:
    """Services whose code folder holds one of `files` (absolute paths), in manifest order.
    A file in two services' folders (one nested in the other, or shared) counts for both."""
    paths = [Path(f) for f in files]
    return [
        name
        for name, service in app.services.items()
        if any(p.is_relative_to(service.path) for p in paths)
    ]


# -- helpers ----------------------------------------------------------------------------------
def runtime_fields(fn: FunctionSpec) -> dict[str, Any]:
    """What an instance of `fn` runs with: everything but its triggers and async settings
    (a change there recycles its instances; a deploy makes a new version)."""
    return fn.model_dump(exclude=set(_NOT_RUNTIME))


def _routes(app: AppSpec) -> list[tuple[str, HttpTrigger, str]]:
    return [(str(route), trigger, fid) for route, trigger, fid in app.http_routes()]


def _events(app: AppSpec) -> list[tuple[str, Any, Any]]:
    return [
        (fid, [e for e in fn.events if not isinstance(e, HttpTrigger)], fn.async_invoke)
        for fid, fn in app.functions().items()
    ]


def _restart_needed(old: AppSpec, new: AppSpec) -> tuple[str, ...]:
    notes = []
    if old.name != new.name:
        notes.append(f"the app name changed ({old.name} -> {new.name})")
    app_level = {"services", "root", "file", "name"}
    if old.model_dump(exclude=app_level) != new.model_dump(exclude=app_level):
        notes.append("app-level settings changed")
    return tuple(notes)


def _rekeyed(old: AppSpec, new: AppSpec) -> tuple[str, ...]:
    """Tables of both manifests whose key or sort key differs: their items cannot follow."""
    notes = []
    for name, service in new.services.items():
        was = old.services.get(name)
        for table, spec in service.tables.items():
            before = was.tables.get(table) if was is not None else None
            if before is not None and (before.key, before.sort) != (spec.key, spec.sort):
                notes.append(
                    f"service {name}: table {table}: its keys changed ({_keys(before)} -> "
                    f"{_keys(spec)}); existing items cannot be re-keyed: name a new table, or "
                    "delete this table's data and restart"
                )
    return tuple(notes)


def _keys(spec: TableSpec) -> str:
    return f"key {spec.key}" + (f", sort {spec.sort}" if spec.sort else "")


def _count(n: int, noun: str, sign: str = "") -> str:
    return f"{sign}{n} {noun}{'' if n == 1 else 's'}"
