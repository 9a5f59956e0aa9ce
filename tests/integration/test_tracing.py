"""Distributed tracing on the real platform: one request through three services (HTTP ->
`lamina.invoke` -> `lamina.publish` / `lamina.send` / `lamina.invoke_async`) is one trace whose
parent links form the call tree, shown by `GET /traces/{id}`, `/logs?trace_id=` and
`lamina trace`; and the same spans reach a real OTLP/HTTP receiver when
OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import HANDLERS, client_for, jsonl, lamina_up, run_platform, until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from typer.testing import CliRunner

from lamina.cli import app as cli_app
from lamina.control import Platform

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"  # the client's span: the parent of the first invocation
FUNCTIONS = ("front.api", "orders.place", "mail.notify", "mail.receipt", "mail.audit")


def _shop(directory: Path, trace_log: Path) -> Path:
    """Three services; every function appends what it saw of its trace to `trace_log`."""
    env = {"TRACE_LOG": str(trace_log)}

    def service(functions: dict[str, Any]) -> dict[str, Any]:
        return {"path": str(HANDLERS), "env": env, "functions": functions}

    manifest = {
        "app": "shop",
        "services": {
            "front": service(
                {"api": {"handler": "traced.front", "events": [{"http": "GET /order"}]}}
            ),
            "orders": service({"place": {"handler": "traced.place"}}),
            "mail": service(
                {
                    "notify": {"handler": "traced.notify", "events": [{"topic": "order-placed"}]},
                    "receipt": {"handler": "traced.receipt", "events": [{"queue": "receipts"}]},
                    "audit": {"handler": "traced.audit"},
                    "concurrent": {"handler": "traced.concurrent", "concurrency": 4},
                }
            ),
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory


async def _admin(platform: Platform, path: str, **params: Any) -> httpx.Response:
    assert platform.recorder is not None
    await platform.recorder.flush()
    async with httpx.AsyncClient(base_url=platform.admin_url, timeout=10) as admin:
        return await admin.get(
            path, params=params, headers={"Authorization": f"Bearer {platform.token}"}
        )


async def _spans(platform: Platform, trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace's records by function id, once all five functions have been recorded."""

    async def complete() -> list[dict[str, Any]] | None:
        records = (await _admin(platform, "/invocations", trace_id=trace_id)).json()
        return records if len(records) >= len(FUNCTIONS) else None

    records = await until(complete, f"five records of trace {trace_id}")
    return {r["function_id"]: r for r in records}


def _assert_call_tree(spans: dict[str, dict[str, Any]], trace_id: str, root_parent: str | None):
    assert set(spans) == set(FUNCTIONS)
    assert {r["trace_id"] for r in spans.values()} == {trace_id}
    assert len({r["span_id"] for r in spans.values()}) == 5
    front, place = spans["front.api"], spans["orders.place"]
    assert front["parent_span_id"] == root_parent
    assert place["parent_span_id"] == front["span_id"]
    for consumer in ("mail.notify", "mail.receipt", "mail.audit"):
        assert spans[consumer]["parent_span_id"] == place["span_id"], consumer
    assert [spans[f]["trigger"] for f in FUNCTIONS] == ["http", "invoke", "topic", "queue", "event"]


async def test_a_three_service_request_is_one_trace(tmp_path: Path) -> None:
    trace_log = tmp_path / "trace.jsonl"
    app = _shop(tmp_path / "app", trace_log)
    async with run_platform(app) as platform, client_for(platform) as client:
        response = await client.get(
            "/order", params={"order": "7"}, headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}
        )
        assert response.status_code == 200, response.text
        spans = await _spans(platform, TRACE)

        fresh = await client.get("/order", params={"order": "8"})  # no traceparent: a new trace
        new_trace = fresh.headers["traceresponse"].split("-")[1]
        fresh_spans = await _spans(platform, new_trace)

        view = (await _admin(platform, f"/traces/{TRACE}")).json()
        lines = (await _admin(platform, "/logs", trace_id=TRACE)).json()
        missing = await _admin(platform, f"/traces/{'1' * 32}")
        malformed = await _admin(platform, "/traces/not-a-trace")
        await until(lambda: len(jsonl(trace_log)) == 10, "every function's note")
        printed = await asyncio.to_thread(
            CliRunner().invoke, cli_app, ["trace", TRACE, "-C", str(app)]
        )

    _assert_call_tree(spans, TRACE, CALLER)
    _assert_call_tree(fresh_spans, new_trace, None)
    assert new_trace != TRACE
    front = spans["front.api"]
    assert response.headers["traceresponse"] == f"00-{TRACE}-{front['span_id']}-01"
    assert front["request_id"] == response.headers["x-amzn-requestid"]

    # What each function saw: its own span as the context it passes on, also in X-Ray form.
    notes = {n["function"]: n for n in jsonl(trace_log) if TRACE in (n["traceparent"] or "")}
    for name, fid in [("front", "front.api"), ("place", "orders.place"), ("audit", "mail.audit")]:
        span = spans[fid]["span_id"]
        assert notes[name]["traceparent"] == f"00-{TRACE}-{span}-01"
        assert notes[name]["xray"] == f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={span};Sampled=1"
    place_span = spans["orders.place"]["span_id"]
    assert notes["receipt"]["aws_trace_header"] == (
        f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={place_span};Sampled=1"
    )

    # The trace view: every span, the gateway's first, with its service.
    assert view["trace_id"] == TRACE
    assert view["spans"][0]["function"] == "front.api"
    assert view["spans"][0]["parent_span_id"] is None
    assert view["spans"][0]["remote_parent_span_id"] == CALLER
    assert {s["function"]: s["service"] for s in view["spans"]} == {
        "front.api": "front",
        "orders.place": "orders",
        "mail.notify": "mail",
        "mail.receipt": "mail",
        "mail.audit": "mail",
    }
    assert {s["span_id"] for s in view["spans"]} == {r["span_id"] for r in spans.values()}
    assert missing.status_code == 404 and "no spans recorded" in missing.json()["message"]
    assert malformed.status_code == 400 and "32 hex digits" in malformed.json()["message"]

    # The trace's logs: the START line of every request in it, and nothing of the other trace.
    starts = {line["request_id"] for line in lines if line["message"].startswith("START")}
    assert starts == {r["request_id"] for r in spans.values()}
    assert not {r["request_id"] for r in fresh_spans.values()} & {
        line["request_id"] for line in lines
    }

    # The waterfall: one row per span, callers above what they caused.
    assert printed.exit_code == 0, printed.output
    order = [f for line in printed.output.splitlines() for f in FUNCTIONS if f in line]
    assert order[:2] == ["front.api", "orders.place"]
    assert sorted(order[2:]) == sorted(FUNCTIONS[2:])


async def test_concurrent_async_invocations_each_see_their_own_trace(tmp_path: Path) -> None:
    app = _shop(tmp_path / "app", tmp_path / "trace.jsonl")
    parents = [f"00-{i:032x}-{i:016x}-01" for i in range(1, 5)]
    async with run_platform(app) as platform, client_for(platform) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/2015-03-31/functions/mail.concurrent/invocations",
                    json={},
                    headers={"traceparent": parent},
                )
                for parent in parents
            )
        )
    for parent, response in zip(parents, responses, strict=True):
        seen = response.json()
        trace_id = parent.split("-")[1]
        assert seen["before"] == seen["after"]
        assert seen["before"].split("-")[1] == trace_id  # its own trace, across an await
        assert seen["before"].split("-")[2] != parent.split("-")[2]  # its own span


# -- OTLP export -------------------------------------------------------------------------------


class _Receiver(http.server.ThreadingHTTPServer):
    """A real OTLP/HTTP traces receiver: decodes ExportTraceServiceRequest protobufs."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex() or None,
                            "name": span.name,
                            "kind": span.kind,
                            "status": span.status.code,
                            "start_ns": span.start_time_unix_nano,
                            "end_ns": span.end_time_unix_nano,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "resource": resource,
                            "scope": scope_spans.scope.name,
                        }
                    )
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@contextlib.contextmanager
def _receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.timeout(90)
async def test_spans_reach_a_real_otlp_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _shop(tmp_path / "app", tmp_path / "trace.jsonl")
    with _receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)  # for `lamina up`
        with lamina_up(app) as up:
            async with httpx.AsyncClient(base_url=up.gateway_url, timeout=30) as client:
                response = await client.get(
                    "/order",
                    params={"order": "9"},
                    headers={"traceparent": f"00-{TRACE}-{CALLER}-01"},
                )
            assert response.status_code == 200, response.text
            await until(
                lambda: len([s for s in receiver.spans if s["trace_id"] == TRACE]) >= 5,
                "five spans at the receiver",
                deadline_s=30,
            )
            runtime = json.loads((app / ".lamina" / "platform.json").read_text())
            token = (app / ".lamina" / "admin-token").read_text().strip()
            async with httpx.AsyncClient(base_url=runtime["admin_url"], timeout=10) as admin:
                view = (
                    await admin.get(
                        f"/traces/{TRACE}", headers={"Authorization": f"Bearer {token}"}
                    )
                ).json()

    received = {s["name"]: s for s in receiver.spans if s["trace_id"] == TRACE}
    assert set(received) == set(FUNCTIONS)
    assert set(receiver.paths) == {"/v1/traces"}
    stored = {s["function"]: s for s in view["spans"]}
    for fid, span in received.items():  # the same ids as the platform's own records
        assert span["span_id"] == stored[fid]["span_id"], fid
        assert span["end_ns"] >= span["start_ns"] > 0
        assert span["resource"]["service.name"] == fid.split(".")[0]
        assert span["resource"]["service.namespace"] == "shop"
        assert span["resource"]["faas.name"] == fid
        assert span["resource"]["faas.max_memory"] == 128 * 1024 * 1024
        assert span["resource"]["cloud.resource_id"] == (
            f"arn:aws:lambda:us-east-1:000000000000:function:{fid}"
        )
        assert span["attributes"]["faas.invocation_id"] == stored[fid]["request_id"]
        assert span["scope"] == "lamina"
    front, place = received["front.api"], received["orders.place"]
    assert front["parent_span_id"] == CALLER
    assert place["parent_span_id"] == front["span_id"]
    for consumer in ("mail.notify", "mail.receipt", "mail.audit"):
        assert received[consumer]["parent_span_id"] == place["span_id"]
    assert front["attributes"]["faas.invocation_id"] == response.headers["x-amzn-requestid"]
    assert front["attributes"]["faas.trigger"] == "http"
    assert front["attributes"]["faas.coldstart"] is True
    assert received["mail.notify"]["attributes"]["faas.trigger"] == "pubsub"
    assert front["kind"] == 2  # SPAN_KIND_SERVER
    assert received["mail.receipt"]["kind"] == 5  # SPAN_KIND_CONSUMER
    assert {s["status"] for s in received.values()} == {0}  # STATUS_CODE_UNSET: all went well
