from __future__ import annotations

import decimal
import socket

import orjson
import pytest

from lamina.runtime.context import FunctionInfo, LambdaContext
from lamina.runtime.instance import encode_result, error_body
from lamina.runtime.protocol import FrameReader, encode, recv_frame


def test_frames_split_anywhere_are_reassembled_in_order() -> None:
    data = b"".join(encode({"op": "log", "n": i, "text": "x" * i}) for i in range(50))
    reader = FrameReader()
    got = []
    for start in range(0, len(data), 7):
        got.extend(reader.feed(data[start : start + 7]))
    assert [m["n"] for m in got] == list(range(50))


def test_whole_frames_and_split_ones_in_turn_all_arrive() -> None:
    frames = [encode({"n": i}) for i in range(4)]
    reader = FrameReader()
    got = reader.feed(frames[0])  # one whole frame per read: the usual case
    got += reader.feed(frames[1][:3])
    got += reader.feed(frames[1][3:] + frames[2][:6])
    got += reader.feed(frames[2][6:])
    got += reader.feed(frames[3])
    assert [m["n"] for m in got] == [0, 1, 2, 3]


def test_an_oversized_frame_header_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        FrameReader().feed(b"\xff\xff\xff\xff")


def test_results_keep_decimals_and_int_keys_as_the_aws_runtime_serializes_them() -> None:
    (message,) = FrameReader().feed(
        encode_result("r1", {1: decimal.Decimal("2.5"), "n": decimal.Decimal(3)})
    )
    assert message["result"] == {"1": 2.5, "n": 3}
    assert (message["op"], message["rid"]) == ("result", "r1")
    assert message["rss"] > 0, "each result reports the instance's peak memory (KiB)"


def test_an_unserializable_result_becomes_a_marshal_error() -> None:
    (message,) = FrameReader().feed(encode_result("r1", {"x": object()}))
    assert message["op"] == "error"
    assert message["error"]["errorType"] == "Runtime.MarshalError"
    assert "Unable to marshal response" in message["error"]["errorMessage"]


def test_error_body_has_the_aws_fields_and_the_handler_frames() -> None:
    def handler() -> None:
        raise KeyError("missing")

    try:
        handler()
    except KeyError as exc:
        body = error_body(exc, "req-1")
    assert body["errorType"] == "KeyError"
    assert body["errorMessage"] == "'missing'"
    assert body["requestId"] == "req-1"
    assert any("in handler" in line for line in body["stackTrace"])
    orjson.dumps(body)


def test_context_reports_remaining_time_and_memory_as_a_string() -> None:
    info = FunctionInfo(
        "svc.fn",
        "$LATEST",
        "arn:aws:lambda:us-east-1:000000000000:function:svc.fn",
        256,
        "/aws/lambda/svc.fn",
        "stream",
    )
    ctx = LambdaContext(aws_request_id="r", deadline_ms=0, info=info)
    assert ctx.memory_limit_in_mb == "256"
    assert ctx.get_remaining_time_in_millis() == 0
    assert ctx.function_name == "svc.fn"
    assert ctx.invoked_function_arn.endswith(":function:svc.fn")


def test_a_peer_that_closed_without_reading_ends_the_stream_as_end_of_file_does() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        ours.sendall(b"r")  # as a spare says it is ready, or a zygote answers
        theirs.close()  # with that unread: our read gets ECONNRESET, not b""
        assert recv_frame(ours) is None


def test_a_result_says_how_long_the_handler_ran_when_the_instance_measured_it() -> None:
    (timed,) = FrameReader().feed(encode_result("r1", {"ok": True}, 0.0123456))
    assert timed["ms"] == 0.012  # milliseconds, to the microsecond
    (untimed,) = FrameReader().feed(encode_result("r1", {"ok": True}))
    assert "ms" not in untimed
