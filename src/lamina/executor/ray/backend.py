"""The Ray backend: connects to (or starts) a Ray cluster, ships each service's code as a
runtime-environment package, and starts one actor per instance with the function's resources."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from lamina.control.venvs import BUILD_TIMEOUT_S
from lamina.errors import PlatformError
from lamina.executor.ray._package import ensure_uploaded, package_uri
from lamina.executor.ray.actor import InstanceHost
from lamina.executor.ray.instance import RayInstance, init_error
from lamina.executor.ray.venv import shipped_requirements
from lamina.executor.types import INIT_TIMEOUT_S, FunctionConfig, Instance

__all__ = ["LAMBDA_MB_PER_CPU", "PLACEMENT_TIMEOUT_S", "RayBackend", "cpu_for"]

log = logging.getLogger(__name__)

LAMBDA_MB_PER_CPU = 1769  # AWS Lambda gives a function one vCPU at 1,769 MB, in proportion below
PLACEMENT_TIMEOUT_S = 30.0  # for Ray to place the actor, set up its runtime env and start it
_MIB = 1024 * 1024


def cpu_for(fn: FunctionConfig) -> float:
    """The CPUs an instance's actor reserves: `cpu` when set, else Lambda's share for its memory."""
    if fn.cpu is not None:
        return fn.cpu
    return round(fn.memory_mb / LAMBDA_MB_PER_CPU, 4)


def import_ray() -> Any:
    """The `ray` module; a clear error naming the extra to install when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise PlatformError(
            'the ray executor needs Ray, which is not installed: pip install "lamina[ray]"'
        ) from exc
    return ray


class RayBackend:
    """Instances as Ray actors on the cluster at `address`.

    `address`: "local" starts a private single-node Ray inside the platform (stopped with it);
    "auto" joins the cluster `ray start` runs on this machine (or RAY_ADDRESS); anything else
    is a Ray address ("HOST:6379" or "ray://HOST:10001"). When this process is already
    connected to Ray (`ray.init` was called), that connection is used and left open.
    """

    def __init__(self, address: str | None = None, cgroups: bool = True) -> None:
        self.address = address or "local"
        self._cgroups = cgroups
        self._ray: Any = None
        self._owns_ray = False
        self._host: Any = None  # the actor class
        self._packages: dict[tuple[str, int], str] = {}  # (function id, revision) -> URI
        self._instances: dict[str, RayInstance] = {}

    async def start(self) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            try:
                await asyncio.to_thread(self._connect, ray)
            except Exception as exc:  # ConnectionError, ValueError, RuntimeError, ...
                raise PlatformError(
                    f"cannot connect to the Ray cluster at {self.address!r}: {exc}"
                ) from exc
            self._owns_ray = True
        self._host = ray.remote(InstanceHost)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        log.info(
            "ray executor started",
            extra={"address": self.address, "nodes": len(nodes), "cpus": ray.cluster_resources()},
        )

    def _connect(self, ray: Any) -> None:
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address == "local":  # never a cluster `ray start` happens to run here
            ray.init(address="local", include_dashboard=False, **options)
        else:
            ray.init(address=self.address, **options)

    async def close(self) -> None:
        """Stop what the pools left running (normally nothing), then Ray if it is ours."""
        await asyncio.gather(*(i.stop(1.0) for i in self._instances.values()))
        self._instances.clear()
        if self._owns_ray and self._ray is not None:
            await asyncio.to_thread(self._ray.shutdown)
            self._owns_ray = False

    async def prepare(self, fn: FunctionConfig) -> None:
        """Upload the service's code (once per content) so actors can unpack it."""
        await self._package(fn)

    async def _package(self, fn: FunctionConfig) -> str:
        key = (fn.id, fn.revision)
        uri = self._packages.get(key)
        shipped_requirements(fn)  # a PlatformError now when the nodes could not build its venv
        try:
            if uri is None:
                uri = await asyncio.to_thread(package_uri, fn.service_path)
                self._packages[key] = uri
            await asyncio.to_thread(ensure_uploaded, uri, fn.service_path)
        except Exception as exc:  # OSError, Ray's upload and size errors
            raise PlatformError(
                f"cannot ship {fn.service_path} to the Ray cluster for {fn.id}: {exc}"
            ) from exc
        return uri

    def release(self, fn: FunctionConfig) -> None:
        self._packages.pop((fn.id, fn.revision), None)

    async def start_instance(
        self, fn: FunctionConfig, on_exit: Callable[[Instance], None]
    ) -> Instance:
        uri = await self._package(fn)
        iid = secrets.token_hex(6)
        cpu = cpu_for(fn)
        actor = self._host.options(
            name=f"lamina-{fn.id}-{iid}",
            num_cpus=cpu,
            memory=fn.memory_mb * _MIB,
            runtime_env={"working_dir": uri},
            max_restarts=0,  # a lost instance is replaced by the pool, never silently restarted
            max_concurrency=max(16, fn.concurrency * 2 + 4),
        ).remote()

        def exited(instance: RayInstance) -> None:
            self._instances.pop(iid, None)
            on_exit(instance)

        instance = RayInstance(iid, fn, actor, exited)
        self._instances[iid] = instance
        fields = {name: getattr(fn, name) for name in fn.__dataclass_fields__}
        fields["env"] = dict(fn.env)
        fields["requirements"] = shipped_requirements(fn)  # in the code the node unpacked
        # The first instance of a service with requirements on a node may build its venv there.
        limit_s = PLACEMENT_TIMEOUT_S + INIT_TIMEOUT_S + (BUILD_TIMEOUT_S if fn.requirements else 0)
        try:
            info = await asyncio.wait_for(actor.start.remote(fields, self._cgroups), limit_s)
        except BaseException as exc:
            instance.kill()
            self._instances.pop(iid, None)
            if isinstance(exc, TimeoutError):
                raise PlatformError(
                    f"no instance of {fn.id} started within {limit_s:.0f} s: does a Ray node have "
                    f"{cpu:g} CPU and {fn.memory_mb} MB of memory free?"
                ) from exc
            if isinstance(exc, self._ray.exceptions.RayError):
                raise PlatformError(f"Ray could not start an instance of {fn.id}: {exc}") from exc
            raise
        instance.output(info["output"])
        if "init_error" in info:
            instance.kill()
            self._instances.pop(iid, None)
            raise init_error(info["init_error"], fn.id)
        instance.started(info)
        log.info(
            "ray instance placed",
            extra={"function_id": fn.id, "instance": iid, **(instance.node or {})},
        )
        return instance
