"""`lamina send` and `lamina publish`: put a message in a queue or on a topic of a running
platform, via its admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lamina.cli._common import (
    AdminUrlOpt,
    AppDir,
    TokenOpt,
    admin_call,
    fail,
    out,
    read_text_arg,
    target,
)

__all__ = ["PUBLISH_EXAMPLE", "SEND_EXAMPLE", "publish", "send"]

SEND_EXAMPLE = (
    'Example: lamina send emails --body \'{"to": "ada@example.com"}\' --attr kind=welcome'
)
PUBLISH_EXAMPLE = (
    "Example: lamina publish order-created --message @order.json --subject new --attr shop=eu"
)

AttrOpt = Annotated[
    list[str] | None,
    typer.Option("--attr", "-a", help="Message attribute NAME=VALUE (repeatable)."),
]


def _attributes(pairs: list[str] | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--attr {pair!r}: expected NAME=VALUE", 2)
        attributes[name] = value
    return attributes


def send(
    queue: Annotated[str, typer.Argument(help="Queue name, as in a `queue` trigger.")],
    body: Annotated[str, typer.Option("--body", "-b", help="Message body, or @file.")],
    attr: AttrOpt = None,
    delay: Annotated[
        float, typer.Option(min=0, max=900, help="Seconds before it can be received.")
    ] = 0,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Send a message to a queue; prints its message id."""
    where = target(app_dir, "-", admin_url, token)
    payload = {
        "body": read_text_arg(body, "--body"),
        "attributes": _attributes(attr),
        "delay_seconds": delay,
    }
    result = admin_call(where, "POST", f"/queues/{queue}/messages", json=payload).json()
    out.print(f"sent to {queue}: message id {result.get('message_id')}", highlight=False)


def publish(
    topic: Annotated[str, typer.Argument(help="Topic name, as in a `topic` trigger.")],
    message: Annotated[str, typer.Option("--message", "-m", help="Message text, or @file.")],
    subject: Annotated[str | None, typer.Option(help="SNS Subject.")] = None,
    attr: AttrOpt = None,
    app_dir: AppDir = Path("."),
    admin_url: AdminUrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Publish a message to a topic (every subscription gets it); prints its message id."""
    where = target(app_dir, "-", admin_url, token)
    payload = {
        "message": read_text_arg(message, "--message"),
        "subject": subject,
        "attributes": _attributes(attr),
    }
    result = admin_call(where, "POST", f"/topics/{topic}/messages", json=payload).json()
    out.print(f"published to {topic}: message id {result.get('message_id')}", highlight=False)
