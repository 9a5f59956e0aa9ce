"""Deploys and the non-HTTP ways in: queue, topic and schedule triggers and `Event`
invocations run the alias they name (canary weights drawn per invocation), the qualifier of
an `Event` survives a crash of the platform, and the Invoke API names the version that ran
even when the function failed. Real platform, real instance processes."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import client_for, jsonl, lamina_up, run_platform, until
from test_deploys import _admin, _deploy

from lamina.control import Platform
from lamina.control.bundle import make_bundle

pytestmark = pytest.mark.timeout(120)

_CODE = """\
import json
import os
import time

TAG = {tag!r}


def _kind(event):
    records = event.get("Records") or [{{}}]
    source = records[0].get("eventSource") or records[0].get("EventSource")
    if source:
        return source
    return "schedule" if event.get("source") == "aws.events" else "invoke"


def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    if event.get("fail"):
        raise ValueError("failed on purpose")
    marker = event.get("hang_once")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        line = {{"hanging": context.aws_request_id}}
        with open(os.environ["OUT"], "a") as f:
            f.write(json.dumps(line) + "\\n")
        time.sleep(60)
    line = {{
        "tag": TAG,
        "version": context.function_version,
        "kind": _kind(event),
        "request_id": context.aws_request_id,
    }}
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(line) + "\\n")
    return line
"""


def _write(root: Path, tag: str, events: list[Any], out: Path) -> Path:
    folder = root / "services" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handlers.py").write_text(_CODE.format(tag=tag))
    manifest = {
        "app": "shop",
        "services": {
            "orders": {
                "path": "services/orders",
                "env": {"OUT": str(out)},
                "functions": {
                    "create": {
                        "handler": "handlers.handler",
                        "timeout": 5,
                        "max_instances": 4,
                        "async": {"max_retries": 2, "backoff": 0.2},
                        "events": events,
                    }
                },
            }
        },
    }
    (root / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


async def _alias(platform: Platform, name: str, **body: int) -> None:
    async with _admin(platform) as admin:
        response = await admin.put(f"/functions/orders.create/aliases/{name}", json=body)
    assert response.status_code == 200, response.text


_HTTP = {"http": "GET /orders"}


async def test_a_queue_trigger_on_a_canary_alias_splits_messages_by_its_weight(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    events = [_HTTP, {"queue": {"name": "jobs", "batch_size": 1, "alias": "beta"}}]
    root = _write(tmp_path / "app", "one", events, out)
    async with run_platform(root, rng=random.Random(3)) as platform:
        await _deploy(platform, root)
        _write(root, "two", events, out)
        await _deploy(platform, root, promote=False)
        await _alias(platform, "beta", version=1, canary=2, weight=25)

        assert platform.queues is not None
        for i in range(400):
            await platform.queues.send("jobs", json.dumps({"n": i}))
        await until(lambda: len(jsonl(out)) >= 400, "400 messages delivered", deadline_s=60)

    by_version = Counter(line["version"] for line in jsonl(out))
    assert set(by_version) == {"1", "2"} and sum(by_version.values()) == 400
    assert 0.20 <= by_version["2"] / 400 <= 0.30, by_version  # weight 25 %
    assert {line["kind"] for line in jsonl(out)} == {"aws:sqs"}


async def test_schedule_topic_and_event_invocations_run_the_alias_they_name(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    root = _write(tmp_path / "app", "one", [_HTTP], out)
    async with run_platform(root) as platform, client_for(platform) as client:
        await _deploy(platform, root)  # version 1, live
        _write(root, "two", [_HTTP], out)
        await _deploy(platform, root, promote=False)  # version 2
        await _alias(platform, "beta", version=2)
        triggers = [
            _HTTP,
            {"schedule": {"expression": "rate(1 second)", "alias": "beta"}},
            {"topic": {"name": "news", "alias": "beta"}},
        ]
        _write(root, "two", triggers, out)
        applied = await _deploy(platform, root, promote=False)  # triggers only: no version
        assert [f["changed"] for f in applied["functions"]] == [False]

        async with _admin(platform) as admin:
            published = await admin.post("/topics/news/messages", json={"message": "hi"})
        assert published.status_code == 201, published.text

        async def event(**params: str) -> str:
            response = await client.post(
                "/2015-03-31/functions/orders.create/invocations",
                params=params,
                json={},
                headers={"X-Amz-Invocation-Type": "Event"},
            )
            assert response.status_code == 202, response.text
            return str(response.headers["x-amzn-requestid"])

        to_beta, to_live = await event(Qualifier="beta"), await event()
        to_version = await event(Qualifier="1")

        def seen() -> dict[str, dict[str, Any]]:
            return {line["request_id"]: line for line in jsonl(out) if "version" in line}

        await until(
            lambda: (
                {to_beta, to_live, to_version} <= set(seen())
                and {"aws:sns", "schedule"} <= {line["kind"] for line in seen().values()}
            ),
            "the event, topic and schedule invocations",
        )
        http = (await client.get("/orders")).json()
        assert platform.recorder is not None
        await platform.recorder.flush()
        async with _admin(platform) as admin:
            listed = await admin.get("/invocations", params={"function": "orders.create"})
        records = {r["request_id"]: r["version"] for r in listed.json()}

    lines = seen()
    assert (lines[to_beta]["version"], lines[to_live]["version"]) == ("2", "1")
    assert lines[to_version]["version"] == "1"
    by_kind = {line["kind"]: line for line in lines.values()}
    assert (by_kind["schedule"]["version"], by_kind["schedule"]["tag"]) == ("2", "two")
    assert (by_kind["aws:sns"]["version"], by_kind["aws:sns"]["tag"]) == ("2", "two")
    assert (http["version"], http["tag"]) == ("1", "one")  # live did not move
    for request_id in (
        to_beta,
        by_kind["schedule"]["request_id"],
        by_kind["aws:sns"]["request_id"],
    ):
        assert records[request_id] == "2"  # the records name the version
    assert records[to_live] == "1"


async def test_the_invoke_api_names_the_version_when_the_function_fails(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    root = _write(tmp_path / "app", "one", [_HTTP], out)
    async with run_platform(root) as platform, client_for(platform) as client:

        async def invoke(payload: dict[str, Any], tail: bool = False) -> httpx.Response:
            return await client.post(
                "/2015-03-31/functions/orders.create/invocations",
                json=payload,
                headers={"X-Amz-Log-Type": "Tail"} if tail else {},
            )

        before = await invoke({"crash": True})
        await _deploy(platform, root)
        crashed = await invoke({"crash": True}, tail=True)
        failed = await invoke({"fail": True}, tail=True)

    assert before.headers["x-amz-function-error"] == "Unhandled"
    assert before.headers["x-amz-executed-version"] == "$LATEST"
    for response in (crashed, failed):
        assert response.status_code == 200
        assert response.headers["x-amz-function-error"] == "Unhandled"
        assert response.headers["x-amz-executed-version"] == "1"
    assert crashed.json()["errorType"] == "Runtime.ExitError"
    assert "failed on purpose" in base64.b64decode(failed.headers["x-amz-log-result"]).decode()


async def test_an_event_for_an_alias_runs_that_alias_again_after_a_crash(tmp_path: Path) -> None:
    """The platform is killed (SIGKILL) while an `Event` for `beta` runs; the restarted platform
    delivers it again, to `beta`'s version, not to `live`'s."""
    out = tmp_path / "out.jsonl"
    root = _write(tmp_path / "app", "one", [_HTTP], out)
    marker = tmp_path / "hung-once"
    with lamina_up(root) as up:
        info = json.loads((root / ".lamina" / "platform.json").read_bytes())
        headers = {
            "Authorization": f"Bearer {(root / '.lamina' / 'admin-token').read_text().strip()}"
        }
        async with httpx.AsyncClient(base_url=info["admin_url"], headers=headers) as admin:
            assert (await admin.post("/deploys", content=make_bundle(root))).status_code == 201
            _write(root, "two", [_HTTP], out)
            staged = await admin.post(
                "/deploys", params={"promote": "false"}, content=make_bundle(root)
            )
            assert staged.status_code == 201, staged.text
            beta = await admin.put("/functions/orders.create/aliases/beta", json={"version": 2})
            assert beta.status_code == 200, beta.text
        async with httpx.AsyncClient(base_url=up.gateway_url) as client:
            sent = await client.post(
                "/2015-03-31/functions/orders.create:beta/invocations",
                json={"hang_once": str(marker)},
                headers={"X-Amz-Invocation-Type": "Event"},
            )
        assert sent.status_code == 202, sent.text
        request_id = sent.headers["x-amzn-requestid"]
        await until(lambda: any("hanging" in line for line in jsonl(out)), "the first attempt")
        for process in [*up.tree(), up.process]:
            process.kill()  # a crash: no drain, the event stays leased in the store
        up.process.wait(10)

    with lamina_up(root):
        done = await until(
            lambda: [line for line in jsonl(out) if line.get("request_id") == request_id],
            "the event delivered again after the restart",
            deadline_s=30,
        )
    assert [(line["version"], line["tag"]) for line in done] == [("2", "two")]
    assert [line["hanging"] for line in jsonl(out) if "hanging" in line] == [request_id]
