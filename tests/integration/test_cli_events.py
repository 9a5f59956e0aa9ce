"""`lamina dlq ...`, `lamina send` and `lamina publish` against a running platform, as a user
runs them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import run_platform
from test_dlq_admin import SOURCE, flaky_app, send_event, until

pytestmark = pytest.mark.timeout(60)


async def lamina(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lamina",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_dlq_ls_show_redrive_and_purge(app_dir: Callable[..., Path], tmp_path: Path) -> None:
    app = flaky_app(app_dir, tmp_path)
    async with run_platform(app, event_poll_s=0.02) as platform:
        request_id = await send_event(platform, "svc.flaky", {"n": 5})
        assert platform.store is not None
        store = platform.store
        await until(lambda: store.peek(f"dlq:{SOURCE}"), "the dead letter")
        ls = await lamina("dlq", "ls", "-C", str(app))
        ls_json = await lamina("dlq", "ls", "-C", str(app), "--source", SOURCE, "--json")
        show = await lamina("dlq", "show", SOURCE, request_id, "-C", str(app))
        missing = await lamina("dlq", "show", SOURCE, "nope", "-C", str(app))
        (tmp_path / "fixed").touch()
        redrive = await lamina("dlq", "redrive", "--source", SOURCE, "-C", str(app))
        await until(
            lambda: "ok" in (tmp_path / "events.jsonl").read_text(), "the redriven delivery"
        )
        empty = await lamina("dlq", "ls", "-C", str(app))
        (tmp_path / "fixed").unlink()
        await send_event(platform, "svc.flaky", {"n": 6})
        await until(lambda: store.peek(f"dlq:{SOURCE}"), "another dead letter")
        purge = await lamina("dlq", "purge", "--source", SOURCE, "--yes", "-C", str(app))
        left = await store.peek(f"dlq:{SOURCE}")

    code, out, err = ls
    assert code == 0, err
    assert SOURCE in out and request_id in out and "RuntimeError" in out
    code, out, err = ls_json
    assert code == 0, err
    (item,) = json.loads(out)
    assert (item["id"], item["payload"], item["attempts"]) == (request_id, {"n": 5}, 1)
    code, out, err = show
    assert code == 0, err
    assert json.loads(out)["error_message"] == "not fixed yet for 5"
    code, out, err = missing
    assert code == 1 and "no dead letter 'nope'" in err
    code, out, err = redrive
    assert code == 0, err
    assert "1 dead letter(s) redriven" in out
    assert empty[0] == 0 and "no dead letters" in empty[1]
    code, out, err = purge
    assert code == 0, err
    assert f"purged 1 dead letter(s) from {SOURCE}" in out
    assert left == []


async def test_send_and_publish_errors_name_the_queue_or_topic(
    app_dir: Callable[..., Path], tmp_path: Path
) -> None:
    app = flaky_app(app_dir, tmp_path)
    async with run_platform(app):
        send = await lamina("send", "no-such-queue", "--body", "hi", "-C", str(app))
        publish = await lamina("publish", "no-such-topic", "--message", "hi", "-C", str(app))
        bad_attr = await lamina("send", "q", "--body", "hi", "--attr", "novalue", "-C", str(app))
        no_file = await lamina("send", "q", "--body", "@/no/such/file", "-C", str(app))
    assert send[0] == 1 and "'no-such-queue'" in send[2], send
    assert publish[0] == 1 and "'no-such-topic'" in publish[2], publish
    assert bad_attr[0] == 2 and "expected NAME=VALUE" in bad_attr[2]
    assert no_file[0] == 2 and "cannot read" in no_file[2]


@pytest.mark.parametrize(
    "command", [["dlq", "ls"], ["dlq", "show"], ["dlq", "redrive"], ["dlq", "purge"]]
)
async def test_every_dlq_command_help_shows_an_example(command: list[str]) -> None:
    code, out, err = await lamina(*command, "--help")
    assert code == 0, err
    assert "Example:" in out
