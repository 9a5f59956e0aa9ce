"""The reference app examples/shop, whole flow over real HTTP, on SQLite and on PostgreSQL:
users (signup, login issuing a JWT, profile), catalog (public list, admin-only writes),
orders (JWT-protected; prices through catalog.price; publishes order-created), notifications
(outbox + the emails queue with partial batch failures) and reports (daily totals)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from harness import client_for, run_platform, until

from lamina.control import Platform

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).parents[2] / "examples" / "shop"
SECRET = "shop-test-secret-0123456789abcdef"  # PyJWT wants 32+ bytes for HS256


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A copy, so that the platform's .lamina/ state never lands in the repository.
    monkeypatch.setenv("JWT_SECRET", SECRET)  # the gateway and users.login both read it
    return Path(shutil.copytree(EXAMPLE, tmp_path / "shop"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_client(platform: Platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=platform.admin_url, headers=bearer(platform.token), timeout=30
    )


async def invoke(client: httpx.AsyncClient, function_id: str, payload: Any) -> Any:
    response = await client.post(f"/2015-03-31/functions/{function_id}/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert "x-amz-function-error" not in response.headers, response.text
    return response.json()


async def signup_and_login(client: httpx.AsyncClient, email: str, password: str) -> str:
    signed = await client.post("/users", json={"email": email, "password": password})
    assert signed.status_code == 201, signed.text
    login = await client.post("/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


async def test_the_shop_runs_its_whole_flow(shop: Path, store_url: str | None) -> None:
    async with (
        run_platform(shop, store_url=store_url) as platform,
        client_for(platform) as c,
        admin_client(platform) as admin,
    ):
        # users: signup with a salted hash, login issuing a JWT, a profile behind auth: jwt
        ada = await signup_and_login(c, "Ada@Example.com", "correct horse")
        root = await signup_and_login(c, "admin@shop.example", "admin password")
        again = await c.post("/users", json={"email": "ada@example.com", "password": "whatever1"})
        assert again.status_code == 409
        short = await c.post("/users", json={"email": "bob@example.com", "password": "short"})
        assert (short.status_code, short.json()) == (
            400,
            {"message": "password: expected at least 8 characters"},
        )
        wrong = await c.post("/login", json={"email": "ada@example.com", "password": "nope"})
        assert (wrong.status_code, wrong.json()) == (401, {"message": "wrong email or password"})
        claims = jwt.decode(ada, SECRET, algorithms=["HS256"], audience="shop")
        assert claims["sub"] == "ada@example.com"
        assert claims["iss"] == "https://shop.example"
        assert claims["scope"] == "orders:read orders:write"
        assert claims["exp"] > claims["iat"]
        root_claims = jwt.decode(root, SECRET, algorithms=["HS256"], audience="shop")
        assert "catalog:admin" in root_claims["scope"].split()
        stored = (await admin.get("/tables/users/users/items/ada@example.com")).json()
        assert stored["password_hash"].startswith("scrypt$")
        assert "correct horse" not in stored["password_hash"]

        assert (await c.get("/me")).status_code == 401
        me = await c.get("/me", headers=bearer(ada))
        assert me.status_code == 200
        assert me.json()["email"] == "ada@example.com"
        assert "password_hash" not in me.json()

        # catalog: public listing, writes need the catalog:admin scope
        lamp = {"sku": "lamp", "name": "Desk lamp", "price_cents": 2500}
        mug = {"sku": "mug", "name": "Mug", "price_cents": 800}
        assert (await c.post("/products", json=lamp)).status_code == 401
        forbidden = await c.post("/products", json=lamp, headers=bearer(ada))
        assert (forbidden.status_code, forbidden.json()) == (403, {"message": "Forbidden"})
        for product in (lamp, mug):
            created = await c.post("/products", json=product, headers=bearer(root))
            assert (created.status_code, created.json()) == (201, product)
        bad = await c.post("/products", json={**mug, "price_cents": -1}, headers=bearer(root))
        assert bad.status_code == 400
        listed = await c.get("/products")
        assert listed.status_code == 200
        assert listed.json() == {"products": [lamp, mug]}

        # notifications: a malformed email message fails alone (batchItemFailures)
        malformed = await admin.post("/queues/emails/messages", json={"body": "not json"})
        assert malformed.status_code == 201

        # orders: JWT with orders:write; prices come from catalog.price
        order_body = {"items": [{"sku": "lamp", "qty": 1}, {"sku": "mug", "qty": 2}]}
        assert (await c.post("/orders", json=order_body)).status_code == 401
        unknown = await c.post("/orders", json={"items": [{"sku": "sofa"}]}, headers=bearer(ada))
        assert (unknown.status_code, unknown.json()) == (
            400,
            {"message": "unknown products: sofa"},
        )
        placed = await c.post("/orders", json=order_body, headers=bearer(ada))
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["user"] == "ada@example.com"
        assert order["total_cents"] == 2500 + 2 * 800
        assert [(i["sku"], i["qty"], i["price_cents"]) for i in order["items"]] == [
            ("lamp", 1, 2500),
            ("mug", 2, 800),
        ]
        other = await c.post("/orders", json={"items": [{"sku": "mug"}]}, headers=bearer(root))
        assert other.status_code == 201

        assert (await c.get("/orders")).status_code == 401
        mine = await c.get("/orders", headers=bearer(ada))
        assert mine.status_code == 200
        assert mine.json() == {"orders": [order], "more": False}  # only the caller's

        # notifications: order-created -> outbox record -> emails queue -> marked sent
        async def outbox_sent() -> Any:
            got = await admin.get(f"/tables/notifications/outbox/items/{order['id']}")
            return got.status_code == 200 and got.json()["status"] == "sent" and got.json()

        sent = await until(outbox_sent, "the order's outbox record to be sent", deadline_s=30)
        assert sent["to"] == "ada@example.com"
        assert sent["subject"] == f"Your order {order['id']}"

        async def dead_letter() -> Any:
            return (await admin.get("/dlq", params={"source": "queue:emails"})).json()

        [dead] = await until(dead_letter, "the malformed email in the dead-letter queue", 30)
        assert dead["payload"] == "not json"
        assert dead["attempts"] == 3  # max_receive_count
        assert "batchItemFailures" in dead["error_message"]

        # reports: its own copy of the sales (topic order-created), then the daily totals
        day = order["created_at"][:10]

        async def both_sales_recorded() -> bool:
            got = await admin.get("/tables/reports/sales/items")
            return len(got.json()["items"]) == 2

        await until(both_sales_recorded, "reports to record both sales", deadline_s=30)
        expected = {"day": day, "orders": 2, "revenue_cents": 4100 + 800, "customers": 2}
        report = await invoke(c, "reports.daily_totals", {"day": day})
        assert {k: report[k] for k in expected} == expected
        # The schedule's EventBridge event at 00:05 the next day reports the same day.
        tick = f"{date.fromisoformat(day) + timedelta(days=1)}T00:05:00Z"
        scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "time": tick}
        from_schedule = await invoke(c, "reports.daily_totals", scheduled)
        assert {k: from_schedule[k] for k in expected} == expected
        kept = await admin.get(f"/tables/reports/daily/items/{day}")
        assert {k: kept.json()[k] for k in expected} == expected
