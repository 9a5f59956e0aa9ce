"""`GET /metrics` on the admin API: gathers what is read at scrape time (instances, queues,
dead letters, gateway requests), folds in the invocation records still buffered, and renders
the Prometheus text exposition (`lamina.telemetry.metrics` lists the metrics and labels)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lamina.clock import Clock
from lamina.errors import LaminaError
from lamina.gateway.counts import RequestCounts
from lamina.invoker import Invoker
from lamina.store.types import QueueStats, Store
from lamina.telemetry.metrics import InstanceCount, Metrics, Snapshot
from lamina.telemetry.recorder import Recorder

__all__ = ["MetricsScrape", "metrics_route"]

log = logging.getLogger(__name__)


class MetricsScrape:
    """One scrape: `await scrape()` returns the exposition text."""

    def __init__(
        self,
        metrics: Metrics,
        clock: Clock,
        *,
        recorder: Recorder | None = None,
        invoker: Invoker | None = None,
        requests: RequestCounts | None = None,
        store: Store | None = None,
        known_queues: Iterable[str] = (),
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        self.recorder = recorder
        self.invoker = invoker
        self.requests = requests
        self.store = store
        self.known_queues = tuple(sorted(set(known_queues)))  # shown at 0 while empty

    async def __call__(self) -> bytes:
        queues = await self._queues()
        # Nothing is awaited from here on: the records, counts and instances are one moment.
        if self.recorder is not None:
            self.recorder.hand_over()  # records still buffered are counted now, not in 1 s
        instances = (
            [
                InstanceCount(fid, sum(p.live for p in ps), sum(p.busy for p in ps))
                for fid, ps in self.invoker.by_function().items()
            ]
            if self.invoker is not None
            else []
        )
        requests = self.requests.snapshot() if self.requests is not None else []
        dropped = self.recorder.dropped if self.recorder is not None else None
        return self.metrics.render(
            Snapshot(
                self.clock.wall(),
                instances=instances,
                requests=requests,
                queues=queues,
                telemetry_dropped=dropped,
            )
        )

    async def _queues(self) -> list[QueueStats] | None:
        """Every queue holding a message, and the known ones at 0; None if the store failed."""
        if self.store is None:
            return None
        try:
            present = await self.store.stats()
        except LaminaError as exc:
            log.warning("queue metrics left out: the store failed", extra={"error": str(exc)})
            return None
        seen = {q.queue for q in present}
        empty = [QueueStats(q, 0, 0, None) for q in self.known_queues if q not in seen]
        return [*present, *empty]


def metrics_route(scrape: MetricsScrape) -> Route:
    async def metrics(request: Request) -> Response:
        return Response(await scrape(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])
