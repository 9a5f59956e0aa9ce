"""Frames between the platform and an instance (or a zygote) over a Unix stream socket.

A frame is a 4-byte big-endian length followed by one JSON object (orjson). The `op` field
names the message:

    platform -> instance   {"op": "invoke", "rid", "payload", "deadline_ms", "ctx"?, "tp"?},
                           {"op": "stop"}  ("tp": the invocation's W3C traceparent; an
                           invocation sent behind another to a "serial" instance has
                           "timeout_ms" instead of "deadline_ms": it counts from its start;
                           an HTTP route's invocation has "http", the request in compact
                           form, instead of "payload": the instance builds the event)
    instance -> platform   {"op": "ready", "pid", "init_ms", "modules", "is_async", "serial"}
                           ("serial": it runs invocations one at a time, in the order sent)
                           {"op": "init_error", "error": {errorType, errorMessage, stackTrace}}
                           {"op": "result", "rid", "result"} | {"op": "error", "rid", "error"}
                           {"op": "log", "rid", "stream", "text"}
    instance -> platform   {"op": "hello", "iid", "pid"} first, when it connects to the
                           platform's instance socket (its address is in the zygote's spec)
    platform -> zygote     {"op": "fork", "iid", "memory_mb", "cgroup"},
                           {"op": "preload", "modules"}
    zygote -> platform     {"op": "zygote_ready", "pid"}, {"op": "forked", "iid", "pid"},
                           {"op": "exited", "pid", "status"} (status < 0: killed by -status)

This module is imported inside instances: it must stay free of heavy imports.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import orjson

__all__ = ["MAX_FRAME", "FrameReader", "encode", "recv_frame", "send_frame"]

MAX_FRAME = 64 * 1024 * 1024  # bytes; larger than any payload the gateway accepts
_HEADER = struct.Struct(">I")


def encode(message: dict[str, Any]) -> bytes:
    """One frame for `message`, header included."""
    body = orjson.dumps(message)
    return _HEADER.pack(len(body)) + body


class FrameReader:
    """Incremental decoder: feed bytes, get the complete messages they finish."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | memoryview) -> list[dict[str, Any]]:
        buf = self._buf
        size = len(data) - 4
        if not buf and 0 <= size <= MAX_FRAME and _HEADER.unpack_from(data)[0] == size:
            return [orjson.loads(data[4:])]  # the usual read: one whole frame, nothing held
        buf += data
        out: list[dict[str, Any]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            if end - pos - 4 < size:
                break
            out.append(orjson.loads(memoryview(buf)[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    """Blocking send of one frame."""
    sock.sendall(encode(message))


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = sock.recv(size - len(chunks))
        except ConnectionResetError:  # the peer closed with what we sent it unread: gone too
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any] | None:
    """Blocking receive of one frame; None at end of stream, or when the peer closed before
    reading what it was sent (ECONNRESET on a Unix socket)."""
    head = _recv_exactly(sock, 4)
    if head is None:
        return None
    (size,) = _HEADER.unpack(head)
    body = _recv_exactly(sock, size)
    if body is None:
        return None
    message: dict[str, Any] = orjson.loads(body)
    return message
