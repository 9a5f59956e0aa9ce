"""Unit tests are pure: any attempt to start a server, open a network connection or spawn a
process fails the test loudly."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import pytest


def _forbidden(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"unit tests must not {what}; move this test to tests/component or tests/integration"
        )

    return refuse


@pytest.fixture(autouse=True)
def _no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "bind", _forbidden("bind a socket"))
    monkeypatch.setattr(socket.socket, "connect", _forbidden("connect a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _forbidden("spawn a process"))
    monkeypatch.setattr(os, "fork", _forbidden("fork a process"))
