"""orders: create and list the caller's orders; publishes `order-created`.

Owns the table `orders` (key: user, sort: id). Prices come from the catalog service through
`lamina.invoke("catalog.price", ...)`: services never read each other's tables.
"""

import base64
import json
import secrets
from datetime import UTC, datetime

import lamina

orders = lamina.table("orders")

MAX_LINES = 50


def _reply(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def _json_body(event):
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _caller(event):
    return event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]


def _lines(body):
    """The order's lines as [(sku, qty)], or an error message."""
    items = body.get("items") if body else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINES:
        return None, f"items: expected a list of 1-{MAX_LINES} {{sku, qty}} objects"
    lines = []
    for i, line in enumerate(items):
        sku = line.get("sku") if isinstance(line, dict) else None
        qty = line.get("qty", 1) if isinstance(line, dict) else None
        if not isinstance(sku, str):
            return None, f"items[{i}].sku: expected a string"
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 1000:
            return None, f"items[{i}].qty: expected an integer 1-1000"
        lines.append((sku, qty))
    return lines, None


def create_order(event, context):
    lines, problem = _lines(_json_body(event))
    if problem:
        return _reply(400, {"message": problem})
    prices = lamina.invoke("catalog.price", {"skus": [sku for sku, _ in lines]})["prices"]
    unknown = sorted({sku for sku, _ in lines if prices.get(sku) is None})
    if unknown:
        return _reply(400, {"message": f"unknown products: {', '.join(unknown)}"})
    items = [
        {"sku": sku, "qty": qty, **prices[sku]}  # name and price_cents, as of now
        for sku, qty in lines
    ]
    now = datetime.now(UTC)
    order = {
        "user": _caller(event),
        # Ids sort by creation time within a customer's partition.
        "id": f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}",
        "items": items,
        "total_cents": sum(i["qty"] * i["price_cents"] for i in items),
        "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "status": "placed",
    }
    orders.put(order)
    lamina.publish(
        "order-created",
        {k: order[k] for k in ("id", "user", "total_cents", "created_at")},
        attributes={"user": order["user"]},
    )
    print(f"order {order['id']} for {order['user']}: {order['total_cents']} cents")
    return _reply(201, order)


def list_orders(event, context):
    page = orders.query(_caller(event), reverse=True, limit=100)  # newest first
    return {"orders": page.items, "more": page.cursor is not None}
