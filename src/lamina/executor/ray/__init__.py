"""The Ray executor backend: each function instance is a Ray actor, placed by Ray on a node
with the function's `cpu` and `memory` free.

Inside the actor, Lamina's local runtime runs the handler exactly as on one machine (a zygote
forks the instance; same init, context, environment, output capture and memory limit), so only
placement, code shipping (a Ray runtime environment per service) and killing differ. Ray is an
optional extra, imported only when this backend is chosen.
"""

from __future__ import annotations

from lamina.executor.ray.backend import RayBackend

__all__ = ["RayBackend"]
