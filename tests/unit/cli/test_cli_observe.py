"""How `lamina logs` prints a line: time, [function request-id-tail], the message as written."""

from __future__ import annotations

from typing import Any

import pytest

from lamina.cli._common import out
from lamina.cli.observe import _print_line

LINE: dict[str, Any] = {
    "time_ms": 1795992588441,
    "time": "2026-11-29T22:49:48.441Z",
    "function_id": "front.api",
    "request_id": "f6317e0d-87c3-4d17-86d1-51d47591ba3c",
    "instance_id": "686189dc977d",
    "stream": "stdout",
    "level": "INFO",
    "seq": 3,
}


@pytest.mark.parametrize(
    "message",
    ["front got order=1", "[bold]not markup[/bold] and [front.api x] stay as written"],
    ids=["a plain line", "brackets in the message"],
)
def test_a_line_shows_its_function_and_the_varying_end_of_its_request_id(message: str) -> None:
    with out.capture() as printed:
        _print_line({**LINE, "message": message}, as_json=False)
    assert printed.get() == f"22:49:48.441 [front.api 7591ba3c] {message}\n"


def test_json_lines_are_the_admin_api_objects() -> None:
    with out.capture() as printed:
        _print_line({**LINE, "message": "hi [x]"}, as_json=True)
    assert printed.get().startswith('{"time_ms":1795992588441,"time":"2026-11-29T22:49:48.441Z"')
    assert '"message":"hi [x]"' in printed.get()
