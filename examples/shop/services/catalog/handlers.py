"""catalog: public product listing, admin-only writes, and `price` for other services.

Owns the table `products` (key: sku). Prices are integer cents.
"""

import base64
import json
import re

import lamina

products = lamina.table("products")

SKU = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


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


def list_products(event, context):
    items, cursor = [], None
    while True:
        page = products.scan(cursor=cursor)
        items += page.items
        cursor = page.cursor
        if cursor is None:
            return {"products": items}


def create_product(event, context):
    body = _json_body(event)
    if body is None:
        return _reply(400, {"message": "expected a JSON object with sku, name and price_cents"})
    sku, name, price = body.get("sku"), body.get("name"), body.get("price_cents")
    if not isinstance(sku, str) or not SKU.match(sku):
        return _reply(400, {"message": "sku: expected lower-case letters, digits and '-'"})
    if not isinstance(name, str) or not name.strip():
        return _reply(400, {"message": "name: expected a non-empty string"})
    if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
        return _reply(400, {"message": "price_cents: expected a positive integer"})
    product = {"sku": sku, "name": name.strip(), "price_cents": price}
    products.put(product)
    by = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    print(f"{by} saved product {sku} at {price} cents")
    return _reply(201, product)


def price(event, context):
    """{"skus": [...]} -> {"prices": {sku: {"name", "price_cents"} or null}}; for orders."""
    found = {}
    for sku in event.get("skus", []):
        product = products.get(sku) if isinstance(sku, str) and sku else None
        if product is not None:
            product = {"name": product["name"], "price_cents": product["price_cents"]}
        found[sku] = product
    return {"prices": found}
