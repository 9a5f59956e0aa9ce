"""The AWS Lambda Invoke API on the gateway port, driven by boto3 as a user's code drives it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from harness import run_platform, write_app

import lamina
from lamina.control import Platform

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(10)]

FUNCTIONS: dict[str, dict[str, Any]] = {
    "echo": {"handler": "invoke_targets.echo"},
    "fail": {"handler": "invoke_targets.fail"},
    "shout": {"handler": "invoke_targets.shout"},
    "nap": {"handler": "invoke_targets.nap", "timeout": 1},
    "beacon": {"handler": "invoke_targets.beacon"},
    # One warm instance and no queue: a second concurrent request must be throttled.
    "single": {
        "handler": "invoke_targets.beacon",
        "min_instances": 1,
        "max_instances": 1,
        "max_queued": 0,
    },
    "single_cold": {"handler": "invoke_targets.echo", "max_instances": 1, "max_queued": 0},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["uvicorn", "granian"])
async def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """The platform every test here talks to, on each of the gateway's HTTP servers."""
    app = write_app(tmp_path_factory.mktemp("invoke-api") / "app", FUNCTIONS)
    async with run_platform(app, http=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def lambda_client(platform: Platform) -> Iterator[Any]:
    client = boto3.client(
        "lambda",
        endpoint_url=platform.gateway_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        # One attempt, no retries: a throttle or error must reach the test as it happened.
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=8, connect_timeout=2
        ),
    )
    yield client
    client.close()


async def invoke(client: Any, **kwargs: Any) -> dict[str, Any]:
    """`client.invoke(...)` off the event loop the platform runs on; the Payload already read."""

    def call() -> dict[str, Any]:
        response: dict[str, Any] = client.invoke(**kwargs)
        if "Payload" in response:
            response["Payload"] = response["Payload"].read()
        return response

    return await asyncio.to_thread(call)


def request_id_of(response: dict[str, Any]) -> str:
    headers: dict[str, str] = response["ResponseMetadata"]["HTTPHeaders"]
    return headers["x-amzn-requestid"]


class Beacon:
    """A loopback server the `invoke_targets.beacon` handler reports to, so tests await it.

    Each handler call sends one JSON line; with `hold` it then blocks until `release()`.
    """

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        line = await reader.readline()
        if line:
            await self.messages.put(json.loads(line))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.messages.get(), timeout=8)

    def release(self) -> None:
        for writer in self._writers:
            if not writer.is_closing():
                writer.write(b"x")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Beacon]:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            for writer in self._writers:
                writer.close()
            self._server.close()
            await self._server.wait_closed()


@pytest_asyncio.fixture(loop_scope="module")
async def beacon() -> AsyncIterator[Beacon]:
    async with Beacon().serving() as serving:
        yield serving


async def test_request_response_returns_the_handler_result_and_its_request_id(
    lambda_client: Any,
) -> None:
    response = await invoke(
        lambda_client, FunctionName="svc.echo", Payload=json.dumps({"order": 7, "items": ["a"]})
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    result = json.loads(response["Payload"])
    assert result["event"] == {"order": 7, "items": ["a"]}
    assert result["request_id"] == request_id_of(response)


async def test_a_handler_exception_is_an_unhandled_function_error_with_its_own_traceback(
    lambda_client: Any,
) -> None:
    response = await invoke(lambda_client, FunctionName="svc.fail", Payload=b'{"item": "socks"}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"])
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "cannot handle socks"
    trace = "".join(error["stackTrace"])
    assert 'invoke_targets.py", line' in trace
    assert "cannot handle" in trace  # the raising line itself
    assert str(Path(lamina.__file__).parent) not in trace  # no frames of Lamina's runtime
    assert request_id_of(response)


async def test_an_event_invocation_is_accepted_with_202_and_really_runs(
    lambda_client: Any, beacon: Beacon
) -> None:
    response = await invoke(
        lambda_client,
        FunctionName="svc.beacon",
        InvocationType="Event",
        Payload=json.dumps({"port": beacon.port}),
    )
    assert response["StatusCode"] == 202
    assert response["Payload"] == b""
    ran = await beacon.next()
    assert ran["request_id"] == request_id_of(response)


async def test_dry_run_answers_204_without_running_the_function(
    lambda_client: Any, beacon: Beacon
) -> None:
    response = await invoke(
        lambda_client,
        FunctionName="svc.beacon",
        InvocationType="DryRun",
        Payload=json.dumps({"port": beacon.port}),
    )
    assert response["StatusCode"] == 204
    # Proof that nothing ran: a real invocation after it is the first the beacon hears.
    follow_up = await invoke(
        lambda_client, FunctionName="svc.beacon", Payload=json.dumps({"port": beacon.port})
    )
    assert (await beacon.next())["request_id"] == request_id_of(follow_up)
    assert beacon.messages.empty()


async def test_an_unknown_function_raises_resource_not_found(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        await invoke(lambda_client, FunctionName="svc.nothing", Payload=b"{}")
    assert "svc.nothing" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_log_type_tail_returns_what_the_handler_printed(lambda_client: Any) -> None:
    response = await invoke(
        lambda_client, FunctionName="svc.shout", LogType="Tail", Payload=b'{"say": "hi there"}'
    )
    assert json.loads(response["Payload"]) == "done"
    assert "shouting hi there" in base64.b64decode(response["LogResult"]).decode()
    without = await invoke(lambda_client, FunctionName="svc.shout", Payload=b'{"say": "quiet"}')
    assert "LogResult" not in without


async def live_instances(platform: Platform, function_id: str, want: int) -> None:
    """Waits (bounded) until `function_id` has `want` live instances, e.g. min_instances."""
    assert platform.invoker is not None
    for _ in range(400):
        status = {f["id"]: f for f in platform.invoker.status()}
        if status[function_id]["instances"] == want:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{function_id} never reached {want} live instances: {status}")


async def test_a_second_request_past_the_instance_and_queue_limits_is_throttled(
    platform: Platform, lambda_client: Any, beacon: Beacon
) -> None:
    await live_instances(platform, "svc.single", 1)
    hold = json.dumps({"port": beacon.port, "hold": True})
    first = asyncio.ensure_future(invoke(lambda_client, FunctionName="svc.single", Payload=hold))
    try:
        running = await beacon.next()
        with pytest.raises(lambda_client.exceptions.TooManyRequestsException) as caught:
            await invoke(lambda_client, FunctionName="svc.single", Payload=hold)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert caught.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    finally:
        beacon.release()
        done = await asyncio.wait_for(first, timeout=8)
    assert json.loads(done["Payload"]) == {"request_id": running["request_id"]}


async def test_the_first_request_to_a_cold_function_without_a_queue_is_not_throttled(
    lambda_client: Any,
) -> None:
    response = await invoke(lambda_client, FunctionName="svc.single_cold", Payload=b'{"n": 1}')
    assert json.loads(response["Payload"])["event"] == {"n": 1}


async def test_client_context_custom_values_reach_the_handler(lambda_client: Any) -> None:
    client_context = {"custom": {"tenant": "acme", "trace": 42}, "env": {"locale": "en"}}
    response = await invoke(
        lambda_client,
        FunctionName="svc.echo",
        ClientContext=base64.b64encode(json.dumps(client_context).encode()).decode(),
        Payload=b"{}",
    )
    assert json.loads(response["Payload"])["custom"] == {"tenant": "acme", "trace": 42}


async def test_a_full_arn_and_the_latest_qualifier_name_the_same_function(
    lambda_client: Any,
) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:svc.echo"
    by_arn = await invoke(lambda_client, FunctionName=arn, Payload=b'{"via": "arn"}')
    qualified = await invoke(
        lambda_client, FunctionName="svc.echo", Qualifier="$LATEST", Payload=b'{"via": "q"}'
    )
    assert json.loads(by_arn["Payload"])["event"] == {"via": "arn"}
    assert json.loads(qualified["Payload"])["event"] == {"via": "q"}
    assert qualified["ExecutedVersion"] == "$LATEST"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        await invoke(lambda_client, FunctionName="svc.echo", Qualifier="7", Payload=b"{}")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        await invoke(lambda_client, FunctionName=f"{arn}:7", Payload=b"{}")


async def test_a_payload_that_is_not_json_is_invalid_request_content(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException) as caught:
        await invoke(lambda_client, FunctionName="svc.echo", Payload=b"{not json")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_a_timeout_is_an_unhandled_function_error_saying_task_timed_out(
    lambda_client: Any,
) -> None:
    response = await invoke(lambda_client, FunctionName="svc.nap", Payload=b'{"seconds": 5}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"])
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert request_id_of(response) in error["errorMessage"]
    # The instance was killed; the next invocation gets a fresh one and works.
    again = await invoke(lambda_client, FunctionName="svc.nap", Payload=b'{"seconds": 0}')
    assert json.loads(again["Payload"]) == "woke up"


async def test_every_response_carries_a_request_id(lambda_client: Any) -> None:
    ok = await invoke(lambda_client, FunctionName="svc.echo", Payload=b"{}")
    assert request_id_of(ok) == json.loads(ok["Payload"])["request_id"]
    failed = await invoke(lambda_client, FunctionName="svc.fail", Payload=b'{"item": 1}')
    assert request_id_of(failed) == json.loads(failed["Payload"])["requestId"]
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        await invoke(lambda_client, FunctionName="svc.nothing")
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    ids = {request_id_of(ok), request_id_of(failed)}
    assert len(ids) == 2
