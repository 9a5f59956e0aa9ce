"""Scaling as a user notices it: instances start with demand up to max_instances, callers wait
or are throttled, idle instances stop after keep_alive (on a fake clock), min_instances stay."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import psutil
import pytest
import yaml
from handlers.ops import Gate
from harness import client_for, run_platform, until

from lamina.clock import FakeClock, Timer
from lamina.control import Platform


class WatchedClock(FakeClock):
    """A FakeClock that lets the test wait until a timer is set for a given time, so that
    `advance()` never races the timer it is meant to fire."""

    def __init__(self) -> None:
        super().__init__()
        self._due: dict[int, float] = {}
        self._ids = itertools.count()
        self._changed = asyncio.Event()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        key = next(self._ids)

        def fire() -> None:
            self._due.pop(key, None)
            callback()

        self._due[key] = self.monotonic() + max(0.0, seconds)
        self._changed.set()
        return _Watched(super().call_later(seconds, fire), lambda: self._due.pop(key, None))

    async def timer_set_for(self, deadline_s: float, timeout: float = 5.0) -> None:
        """Wait until a pending timer is due at `deadline_s` (monotonic seconds, to the ms)."""
        async with asyncio.timeout(timeout):
            while not any(abs(due - deadline_s) < 0.0005 for due in self._due.values()):
                self._changed.clear()
                await self._changed.wait()


class _Watched:
    def __init__(self, timer: Timer, forget: Callable[[], object]) -> None:
        self._timer = timer
        self._forget = forget

    def cancel(self) -> None:
        self._forget()
        self._timer.cancel()


def _status(platform: Platform, function_id: str = "svc.fn") -> dict[str, Any]:
    assert platform.invoker is not None
    [entry] = [f for f in platform.invoker.status() if f["id"] == function_id]
    return entry


async def _until(platform: Platform, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll the pool's status until `check` holds (deadline-bounded: instances start and
    requests arrive across processes and sockets)."""
    async with asyncio.timeout(5):
        while not check(status := _status(platform)):
            await asyncio.sleep(0.01)
    return status


async def _exited(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Wait (in a thread) for `pids` to exit; those still running after `timeout`."""

    def wait() -> list[int]:
        procs = []
        for pid in pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]

    return await asyncio.to_thread(wait)


async def _settle() -> None:
    """Let the callbacks that `FakeClock.advance()` fired run; the pool reacts to them at once,
    without I/O, so a few turns of the event loop are enough."""
    for _ in range(5):
        await asyncio.sleep(0)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gated(**settings: Any) -> dict[str, Any]:
    return {"fn": {"handler": "ops.gated", "events": [{"http": "POST /fn"}], **settings}}


def _call(
    tasks: asyncio.TaskGroup, client: httpx.AsyncClient, gate: Gate
) -> asyncio.Task[httpx.Response]:
    """Start a request that waits at `gate`; the task group cancels it if the test fails."""
    return tasks.create_task(client.post("/fn", json={"gate": gate.port}))


async def test_concurrent_requests_get_one_instance_each_up_to_max_instances_and_no_more(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(_gated(max_instances=4))
    async with (
        run_platform(app) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        first = [_call(tasks, client, gate) for _ in range(3)]
        pids = await gate.arrivals(3)
        assert len(set(pids)) == 3, "3 concurrent requests must run on 3 instances"
        assert _status(platform)["instances"] == 3, "no more instances than requests"

        more = [_call(tasks, client, gate) for _ in range(3)]
        pids = await gate.arrivals(4)
        status = await _until(platform, lambda s: s["queued"] == 2)
        async with httpx.AsyncClient(base_url=platform.admin_url) as admin:
            reply = await admin.get(
                "/status", headers={"Authorization": f"Bearer {platform.token}"}
            )
        gate.open()
        responses = await asyncio.gather(*first, *more)
    assert len(set(pids)) == 4
    assert status["instances"] == 4 and status["starting"] == 0 and status["busy"] == 4
    [admin_view] = reply.json()["functions"]
    assert admin_view["instances"] == 4 and admin_view["max_instances"] == 4
    assert [r.status_code for r in responses] == [200] * 6
    assert {r.json()["pid"] for r in responses} == set(pids)


async def test_a_request_beyond_max_instances_with_no_queue_gets_429(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(_gated(max_instances=1, max_queued=0))
    async with (
        run_platform(app) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        busy = _call(tasks, client, gate)
        await gate.arrivals(1)
        throttled = await client.post("/fn", json={"gate": gate.port})
        gate.open()
        served = await busy
    assert throttled.status_code == 429
    assert throttled.json() == {"message": "Too Many Requests"}
    assert throttled.headers["x-lamina-error"] == "TooManyRequestsException"
    assert served.status_code == 200


async def test_queued_requests_are_served_by_the_instance_when_it_frees(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(_gated(max_instances=1, max_queued=2))
    async with (
        run_platform(app) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        calls = [_call(tasks, client, gate) for _ in range(3)]
        [pid] = await gate.arrivals(1)
        await _until(platform, lambda s: s["queued"] == 2)
        gate.open()
        responses = await asyncio.gather(*calls)
        status = _status(platform)
    assert [r.status_code for r in responses] == [200] * 3
    assert {r.json()["pid"] for r in responses} == {pid}
    assert status["cold_starts"] == 1 and status["throttles"] == 0


async def test_queued_requests_are_each_throttled_when_their_queue_timeout_passes(
    app_dir: Callable[..., Path],
) -> None:
    clock = WatchedClock()
    app = app_dir(_gated(max_instances=1, max_queued=2, queue_timeout=0.2))
    async with (
        run_platform(app, clock=clock) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        busy = _call(tasks, client, gate)
        await gate.arrivals(1)
        # Odd milliseconds: 1000.003 + 0.2 is a float step past 1000.203, when the timer fires.
        clock.advance(0.003)
        first = _call(tasks, client, gate)
        await clock.timer_set_for(clock.monotonic() + 0.2)
        assert not first.done(), "a queued request must wait, not fail at once"
        clock.advance(0.08)
        second = _call(tasks, client, gate)  # queued 80 ms after the first: due 80 ms later
        await _until(platform, lambda s: s["queued"] == 2)
        clock.advance(0.12)
        first_throttled = await first
        await clock.timer_set_for(clock.monotonic() + 0.08)
        clock.advance(0.079)
        await _settle()
        early = _status(platform)
        clock.advance(0.001)
        second_throttled = await second
        gate.open()
        served = await busy
    assert first_throttled.status_code == 429
    assert first_throttled.json() == {"message": "Too Many Requests"}
    assert (early["queued"], early["throttles"]) == (1, 1), "throttled before its own deadline"
    assert second_throttled.status_code == 429
    assert served.status_code == 200


async def test_idle_instances_stop_after_keep_alive_and_the_next_request_starts_one(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    clock = WatchedClock()
    app = app_dir(_gated(max_instances=2, keep_alive=30))
    async with (
        run_platform(app, clock=clock, **executor) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        calls = [_call(tasks, client, gate) for _ in range(2)]
        pids = await gate.arrivals(2)
        gate.open()
        await asyncio.gather(*calls)
        await clock.timer_set_for(clock.monotonic() + 30)
        clock.advance(29.9)
        await _settle()
        early = _status(platform)["instances"]
        alive_early = all(_running(pid) for pid in pids)
        clock.advance(0.1)
        still_running = await _exited(pids)
        idle = _status(platform)
        again = await client.post("/fn", json={"gate": gate.port})
    assert early == 2 and alive_early, "instances must stay until keep_alive has passed"
    assert still_running == [], "idle instances must stop after keep_alive"
    assert idle["instances"] == 0
    assert again.status_code == 200
    assert again.json()["pid"] not in pids


async def test_min_instances_start_at_boot_and_stay_past_keep_alive(
    app_dir: Callable[..., Path],
) -> None:
    clock = WatchedClock()
    app = app_dir(_gated(min_instances=2, max_instances=3, keep_alive=10))
    async with (
        run_platform(app, clock=clock) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        booted = await _until(platform, lambda s: s["instances"] == 2)
        calls = [_call(tasks, client, gate) for _ in range(3)]
        pids = await gate.arrivals(3)
        gate.open()
        await asyncio.gather(*calls)
        cold_starts = _status(platform)["cold_starts"]
        await clock.timer_set_for(clock.monotonic() + 10)
        clock.advance(10)
        after_keep_alive = await _until(platform, lambda s: s["instances"] == 2)
        clock.advance(3600)
        await _settle()
        after_an_hour = _status(platform)
        async with asyncio.timeout(10):  # the instance stopped at keep-alive takes a moment to exit
            while len(kept := [pid for pid in pids if _running(pid)]) > 2:
                await asyncio.sleep(0.01)
    assert booted["invocations"] == 0
    assert len(set(pids)) == 3
    assert cold_starts == 3, "two requests must run on the instances started at boot"
    assert after_keep_alive["instances"] == 2
    assert after_an_hour["instances"] == 2 and len(kept) == 2


async def test_an_async_handler_with_concurrency_4_runs_4_requests_on_one_instance(
    app_dir: Callable[..., Path], executor: dict[str, Any]
) -> None:
    app = app_dir(
        {
            "fn": {
                "handler": "ops.gated_async",
                "concurrency": 4,
                "max_instances": 4,
                "events": [{"http": "POST /fn"}],
            }
        }
    )
    async with (
        run_platform(app, **executor) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        calls = [_call(tasks, client, gate) for _ in range(4)]
        pids = await gate.arrivals(4)
        status = _status(platform)
        gate.open()
        responses = await asyncio.gather(*calls)
    assert len(set(pids)) == 1
    assert status["instances"] == 1 and status["in_flight"] == 4
    assert [r.status_code for r in responses] == [200] * 4


async def test_module_level_code_runs_once_per_instance_and_never_in_the_zygote(
    app_dir: Callable[..., Path], tmp_path: Path, executor: dict[str, Any]
) -> None:
    inits = tmp_path / "inits.txt"
    app = app_dir(_gated(max_instances=2), env={"INIT_COUNT_FILE": str(inits)})
    async with (
        run_platform(app, **executor) as platform,
        client_for(platform) as client,
        Gate() as gate,
        asyncio.TaskGroup() as tasks,
    ):
        calls = [_call(tasks, client, gate) for _ in range(2)]
        pids = await gate.arrivals(2)
        zygotes = {psutil.Process(pid).ppid() for pid in pids}
        gate.open()
        await asyncio.gather(*calls)
        warm = [await client.post("/fn", json={"gate": gate.port}) for _ in range(4)]
    assert {r.json()["pid"] for r in warm} <= set(pids)
    assert sorted(int(line) for line in inits.read_text().split()) == sorted(pids)
    assert not zygotes & set(pids)
    # One zygote per function on this machine; on Ray, one in each instance's actor.
    assert len(zygotes) == (1 if executor["executor"] == "local" else 2)


async def test_a_handler_that_fails_at_import_gets_502_and_the_platform_keeps_serving(
    app_dir: Callable[..., Path],
) -> None:
    app = app_dir(
        {
            "broken": {"handler": "broken.handler", "events": [{"http": "GET /broken"}]},
            "fine": {"handler": "ops.pid", "events": [{"http": "GET /fine"}]},
        }
    )
    async with run_platform(app) as platform, client_for(platform) as client:
        first = await client.get("/broken")
        second = await client.get("/broken")
        fine = await client.get("/fine")
    for response in (first, second):
        assert response.status_code == 502
        assert response.json() == {"message": "Internal Server Error"}
        assert response.headers["x-lamina-error"] == "Runtime.ImportModuleError"
        assert "fails at init on purpose" in response.headers["x-lamina-error-message"]
    assert fine.status_code == 200


_AUTO = {"fn": {"handler": "ops.pid", "keep_alive": "auto", "events": [{"http": "POST /fn"}]}}


async def _every_30_minutes(
    platform: Platform, clock: FakeClock, client: httpx.AsyncClient
) -> tuple[list[int], float]:
    """Six requests 30 minutes apart (fake time), five idle times of 1800 s, then wait for the
    pool to stop its instance; the pids that served them and when the function went idle."""
    pids = [(await client.post("/fn")).json()["pid"]]
    for _ in range(5):
        clock.advance(1800)
        pids.append((await client.post("/fn")).json()["pid"])
    idle_at = clock.monotonic()
    await _until(platform, lambda s: s["instances"] == 0)
    return pids, idle_at


async def test_keep_alive_auto_stops_at_once_then_pre_warms_and_expires_as_the_policy_says(
    app_dir: Callable[..., Path],
) -> None:
    # Five idle times of 1800 s, all in bin 30. The policy (lamina.scaling.keepalive) then
    # says: head 1800 s, tail 1860 s, so pre-warm after 0.9 x 1800 = 1620 s and keep until
    # 1.1 x 1860 = 2046 s, that is 426 s. Before that (fewer than 5 idle times) it keeps the
    # instance 4 hours, so requests 2-6 are warm.
    clock = WatchedClock()
    async with (
        run_platform(app_dir(_AUTO), clock=clock) as platform,
        client_for(platform) as client,
    ):
        pids, idle_at = await _every_30_minutes(platform, clock, client)
        gone_at_once = await _exited(pids[:1])
        after_use = _status(platform)
        await clock.timer_set_for(idle_at + 1620)
        clock.advance(1619.9)
        await _settle()
        before_prewarm = _status(platform)
        clock.advance(0.1)
        prewarmed = await _until(platform, lambda s: s["instances"] == 1)
        await clock.timer_set_for(idle_at + 2046)
        clock.advance(426 - 0.1)
        await _settle()
        before_expiry = _status(platform)
        clock.advance(0.1)
        expired = await _until(platform, lambda s: s["instances"] == 0)
    assert pids == pids[:1] * 6, "kept by the 4-hour fallback until 5 idle times are known"
    assert gone_at_once == [], "with a pre-warm window the instance stops as soon as it is idle"
    assert after_use["cold_starts"] == 1
    assert (before_prewarm["instances"], before_prewarm["starting"]) == (0, 0)
    assert prewarmed["cold_starts"] == 2, "one instance started at the end of the pre-warm window"
    assert before_expiry["instances"] == 1
    assert expired["invocations"] == 6


async def test_a_request_in_the_keep_alive_window_is_served_by_the_pre_warmed_instance(
    app_dir: Callable[..., Path],
) -> None:
    clock = WatchedClock()
    async with (
        run_platform(app_dir(_AUTO), clock=clock) as platform,
        client_for(platform) as client,
    ):
        _, idle_at = await _every_30_minutes(platform, clock, client)
        await clock.timer_set_for(idle_at + 1620)
        clock.advance(1620)
        await _until(platform, lambda s: s["instances"] == 1)
        clock.advance(180)  # 1800 s after going idle, as before: inside the keep-alive window
        served = await client.post("/fn")
        after = _status(platform)
    assert served.status_code == 200
    assert (after["cold_starts"], after["invocations"]) == (2, 7), "no start for the request"


def _cold_every_time(app_dir: Callable[..., Path], handler: str) -> Path:
    """An app whose `fn` (GET /fn) stops each instance once idle (keep_alive 0): every
    request is a cold start, forked from the same zygote."""
    return app_dir({"fn": {"handler": handler, "keep_alive": 0, "events": [{"http": "GET /fn"}]}})


async def test_the_zygote_learns_the_libraries_an_instance_imported_for_later_cold_starts(
    app_dir: Callable[..., Path],
) -> None:
    app = _cold_every_time(app_dir, "learns.handler")
    async with run_platform(app) as platform, client_for(platform) as client:
        first = (await client.get("/fn")).json()
        later = [(await client.get("/fn")).json() for _ in range(2)]
    assert first["preloaded"] is False
    assert [r["preloaded"] for r in later] == [True, True]
    assert len({first["pid"], *(r["pid"] for r in later)}) == 3  # three instances


def _spares() -> list[psutil.Process]:
    """The zygotes' spares: children of the zygotes (this process's children) named so."""
    spares = []
    for zygote in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):  # instances come and go meanwhile
            for child in zygote.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if child.name() == "lamina-spare":
                        spares.append(child)
    return spares


async def test_a_cold_start_takes_the_zygotes_spare_and_a_new_spare_is_forked(
    app_dir: Callable[..., Path],
) -> None:
    # The spare is forked ahead, and waits; a cold start hands it the instance's work.
    app = _cold_every_time(app_dir, "ops.whoami")
    async with run_platform(app) as platform, client_for(platform) as client:
        first = (await client.get("/fn")).json()
        spare = await until(_spares, "the zygote to fork a spare")
        limiter = platform._backend.limiter  # type: ignore[union-attr]
        ahead = None
        if limiter.kind != "rlimit":  # the spare joins a memory cgroup of its own, ahead

            def spare_cgroup() -> Path | None:
                line = next(
                    line
                    for line in Path(f"/proc/{spare[0].pid}/cgroup").read_text().splitlines()
                    if "memory" in line.split(":")[1].split(",") or line.startswith("0::")
                )
                path = limiter.base / PurePosixPath(line.split(":", 2)[2]).name
                return path if path.name.startswith("s") else None

            ahead = await until(spare_cgroup, "the spare to join its cgroup")
        served = (await client.get("/fn")).json()
        assert served["pid"] == spare[0].pid, "the cold start ran on the spare"
        if ahead is not None:  # the spare's cgroup was renamed to the instance's
            assert not ahead.exists(), "renamed, not left behind by a migration"
            own = PurePosixPath(served["cgroup"])
            assert own.parent.name == limiter.base.name, served["cgroup"]
            assert not own.name.startswith("s"), "an instance's cgroup, not a spare's"
            assert own.name != PurePosixPath(first["cgroup"]).name
        assert served["name"] == first["name"] != "lamina-spare", "named as any instance"
        fresh = await until(
            lambda: [p for p in _spares() if p.pid != served["pid"]], "another spare"
        )
        # A spare that died (killed from outside) is not used: the zygote forks at once.
        killed = fresh[0]
        killed.kill()
        await until(lambda: _gone(killed), "the killed spare to exit")
        after = await client.get("/fn")
        assert after.status_code == 200, after.text
        assert after.json()["pid"] != killed.pid
        last = await until(
            lambda: [p for p in _spares() if p.pid not in (killed.pid, after.json()["pid"])],
            "a spare again",
        )
    await until(lambda: _gone(last[0]), "the spare to stop with the platform")


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_the_zygote_fills_pydantics_plugin_cache_so_instances_skip_the_scan(
    app_dir: Callable[..., Path],
) -> None:
    # pydantic reads every installed distribution's entry points on the first model a process
    # builds; once the zygote has learned pydantic, it has done that before forking.
    app = _cold_every_time(app_dir, "pydantic_init.handler")
    async with run_platform(app) as platform, client_for(platform) as client:
        first = (await client.get("/fn")).json()
        later = [(await client.get("/fn")).json() for _ in range(2)]
    assert first["filled"] is False, "the first instance imported pydantic itself"
    assert [r["filled"] for r in later] == [True, True]
    assert {r["message"] for r in (first, *later)} == {"hi"}


async def test_a_warmed_cache_that_starts_a_thread_drops_the_preload_and_still_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A pydantic plugin that starts a thread when loaded: filling pydantic's plugin cache in
    # the zygote would make it unsafe to fork, so the zygote restarts without pydantic.
    code = tmp_path / "code"
    (code / "threadplugin-1.0.dist-info").mkdir(parents=True)
    (code / "threadplugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: threadplugin\nVersion: 1.0\n"
    )
    (code / "threadplugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[pydantic]\nthreads = threadplugin:plugin\n"
    )
    (code / "threadplugin.py").write_text(
        "import threading\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "plugin = object()\n"
    )
    (code / "fn.py").write_text(
        "import os\nimport pydantic\n\n"
        "def handler(event, context):\n    return {'pid': os.getpid()}\n"
    )
    app = tmp_path / "app"
    app.mkdir()
    fn = {
        "handler": "fn.handler",
        "keep_alive": 0,
        "preload": ["pydantic"],
        "events": [{"http": "GET /fn"}],
    }
    manifest = {"app": "t", "services": {"svc": {"path": str(code), "functions": {"fn": fn}}}}
    (app / "lamina.yaml").write_text(yaml.safe_dump(manifest))
    with caplog.at_level(logging.WARNING, logger="lamina"):
        async with run_platform(app) as platform, client_for(platform) as client:
            responses = [await client.get("/fn") for _ in range(4)]  # each a cold start
            pids = {r.json()["pid"] for r in responses}
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    assert len(pids) == 4
    warned = [r for r in caplog.records if "starts a thread" in r.getMessage()]
    # Once: the instances report pydantic among their imports, but it is not preloaded again.
    assert [r.preload_module for r in warned] == ["pydantic"]  # type: ignore[attr-defined]


async def test_a_preload_that_starts_a_thread_is_dropped_and_the_function_still_serves(
    app_dir: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Forking a process with a thread is unsafe: the zygote stops, and the platform starts it
    # again without that module (instances then import it themselves, after the fork).
    app = app_dir(
        {
            "fn": {
                "handler": "ops.pid",
                "keep_alive": 0,
                "preload": ["starts_thread"],
                "events": [{"http": "POST /fn"}],
            }
        }
    )
    with caplog.at_level(logging.WARNING, logger="lamina"):
        async with run_platform(app) as platform, client_for(platform) as client:
            responses = [await client.post("/fn", json={}) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    warned = [r for r in caplog.records if "starts a thread" in r.getMessage()]
    assert warned and warned[0].preload_module == "starts_thread"  # type: ignore[attr-defined]
