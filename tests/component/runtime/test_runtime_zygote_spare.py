"""The zygote's spare: a child forked ahead that waits for its first invocation, and exits
quietly when the zygote drops it, whenever that happens."""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Iterator

import pytest

from lamina.runtime.zygote import Zygote

SPEC = {
    "info": {
        "name": "svc.fn",
        "version": "$LATEST",
        "arn": "arn:aws:lambda:local:000000000000:function:svc-fn",
        "memory_mb": 128,
        "log_group": "/aws/lambda/svc-fn",
        "log_stream": "local",
    },
    "handler": "handlers.fn",
    "service_path": ".",
    "concurrency": 1,
}


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    ours, theirs = socket.socketpair()
    # This process plays the zygote; its spare is a real fork.
    yield Zygote(ours, {**SPEC, "_zygote_pid": os.getpid()})
    ours.close()
    theirs.close()
    gc.unfreeze()  # a fork freezes the collector's objects, as the zygote does


def test_a_spare_dropped_after_it_said_it_is_ready_exits_quietly(
    zygote: Zygote, capfd: pytest.CaptureFixture[str]
) -> None:
    zygote._fork_spare(frozenset(sys.modules))
    assert zygote._spare is not None
    pid, sock, _ = zygote._spare
    # Wait for its ready byte without reading it: the zygote drops a spare so when the
    # platform sends the spares' cgroup or new preloads, or stops.
    assert sock.recv(1, socket.MSG_PEEK) == b"r"
    zygote._drop_spare()  # closed with that byte unread: the spare reads ECONNRESET, not EOF
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "Traceback" not in capfd.readouterr().err
