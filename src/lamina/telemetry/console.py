"""Function output, per invocation: printed on the platform's console with the function id
and request id in front of every line, and kept (the last bytes) for `LogType: Tail`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

__all__ = ["FunctionOutput"]

TAIL_BYTES = 4096  # what the Invoke API returns in X-Amz-Log-Result, as AWS


class FunctionOutput:
    """A log sink for one invocation (`InvocationRequest.on_log`)."""

    __slots__ = ("_function_id", "_keep", "_request_id", "_stream", "_tail")

    def __init__(
        self,
        function_id: str,
        request_id: str,
        *,
        keep_tail: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        # One is made per request, and most functions print nothing: nothing is built here.
        self._function_id = function_id
        self._request_id = request_id
        self._stream = stream
        self._keep = keep_tail
        self._tail: list[str] = []

    def __call__(self, stream: str, text: str) -> None:
        # The id's last 8 digits: the gateway's ids share their first part, not their last.
        prefix = f"[{self._function_id} {self._request_id[-8:]}] "
        out = self._stream or sys.stdout
        out.write("".join(prefix + line + "\n" for line in text.splitlines()))
        _flush_soon(out)
        if self._keep:
            self._tail.append(text)

    def tail(self, size: int = TAIL_BYTES) -> bytes:
        """The last `size` bytes of everything the invocation wrote."""
        return "".join(self._tail).encode()[-size:]


_unflushed: set[TextIO] = set()


def _flush_soon(stream: TextIO) -> None:
    """Flush `stream` once the event loop's current step is over, together with whatever
    else this step wrote to it: one write for all the lines of the invocations that finished
    together, not a system call per line on the gateway's thread. Outside an event loop, now."""
    if stream in _unflushed:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        stream.flush()
        return
    _unflushed.add(stream)
    loop.call_soon(_flush, stream)


def _flush(stream: TextIO) -> None:
    _unflushed.discard(stream)
    with contextlib.suppress(OSError, ValueError):  # a closed or broken console loses no work
        stream.flush()
