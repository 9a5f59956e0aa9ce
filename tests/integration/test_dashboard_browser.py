"""The dashboard end to end, in real headless Chromium (Debian's `chromium`, driven by
Playwright) against the real platform running the shop app: signing in with the login form or
a `#token=` link, live request counts, an invocation's log lines, a real trace through three
services as a nested waterfall and as observed calls on the service map, and a dead letter
redriven with the button."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import LAMINA, client_for, run_platform, until, write_app
from playwright.async_api import Browser, Page, async_playwright, expect
from shop_app import write_shop_app

from lamina.control import Platform

pytestmark = pytest.mark.timeout(60)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Debian's chromium is not installed ({CHROMIUM} is missing); the dashboard tests "
            "drive it headless. Install it with `apt-get install -y chromium` (scripts/test.sh "
            "does this)."
        )
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Platform]:
    app = write_shop_app(tmp_path / "shop", tmp_path)
    async with run_platform(app, event_poll_s=0.02) as platform:
        yield platform


async def _page(browser: Browser) -> Page:
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)
    return page


async def _signed_in(browser: Browser, platform: Platform) -> Page:
    page = await _page(browser)
    await page.goto(f"{platform.admin_url}/#token={platform.token}")
    await expect(page.get_by_test_id("view-overview")).to_be_visible()
    return page


async def _get_products(platform: Platform, n: int) -> list[str]:
    async with client_for(platform) as client:
        ids = []
        for _ in range(n):
            response = await client.get("/products")
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-amzn-requestid"])
    assert platform.recorder is not None
    await platform.recorder.flush()
    return ids


async def test_the_login_form_refuses_a_wrong_token_then_accepts_the_right_one(
    browser: Browser, shop: Platform
) -> None:
    page = await _page(browser)
    await page.goto(f"{shop.admin_url}/")
    await expect(page.get_by_test_id("login-form")).to_be_visible()

    await page.get_by_test_id("token-input").fill("not-the-token")
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_test_id("login-error")).to_contain_text("refused the token")
    await expect(page.get_by_test_id("view-overview")).to_have_count(0)

    await page.get_by_test_id("token-input").fill(shop.token)
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_test_id("view-overview")).to_be_visible()
    await expect(page.get_by_test_id("app-name")).to_have_text("shop")

    await page.reload()  # the token is kept for the browser tab's session
    await expect(page.get_by_test_id("view-overview")).to_be_visible()
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()


async def _lamina(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *LAMINA,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "300"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_link_lamina_dashboard_prints_signs_in_and_leaves_the_address_bar(
    browser: Browser, shop: Platform
) -> None:
    code, out, err = await _lamina("dashboard", str(shop.app.root), "--no-open")
    assert code == 0, err
    link = out.strip()
    assert link == f"{shop.admin_url}/#token={shop.token}"

    page = await _page(browser)
    await page.goto(link)
    await expect(page.get_by_test_id("view-overview")).to_be_visible()
    assert shop.token not in page.url
    assert page.url.endswith("#/overview")

    wrong = await _page(browser)
    await wrong.goto(f"{shop.admin_url}/#token=wrong-{shop.token}")
    await expect(wrong.get_by_test_id("login-error")).to_contain_text("token from the link")


async def test_lamina_dashboard_says_when_the_token_is_refused(shop: Platform) -> None:
    code, out, err = await _lamina("dashboard", str(shop.app.root), "--token", "nope", "--no-open")

    assert code == 1
    assert "refused the token" in err
    assert "#token=" not in out


async def test_the_overview_counts_requests_and_updates_live(
    browser: Browser, shop: Platform
) -> None:
    await _get_products(shop, 7)
    page = await _signed_in(browser, shop)
    row = page.get_by_test_id("function-row-storefront.products")
    await expect(row.get_by_test_id("requests")).to_have_text("7")
    await expect(row.get_by_test_id("instances")).to_contain_text(re.compile(r"^[1-9]"))
    await expect(row.get_by_test_id("placement")).to_have_count(0)  # no Ray nodes locally
    await expect(page.get_by_test_id("function-row-orders.fulfil")).to_be_visible()
    await expect(page.get_by_test_id("chart-rate").locator("canvas")).to_have_count(1)

    await _get_products(shop, 3)  # no reload: the page polls
    await expect(row.get_by_test_id("requests")).to_have_text("10")
    await expect(page.get_by_test_id("total-requests")).to_have_text("10")


async def test_on_ray_each_function_row_names_the_nodes_its_instances_run_on(
    browser: Browser, tmp_path: Path, ray_cluster: str
) -> None:
    app = write_app(
        tmp_path / "app", {"hello": {"handler": "basic.hello", "events": [{"http": "GET /hello"}]}}
    )
    async with (
        run_platform(app, executor="ray", ray_address=ray_cluster) as platform,
        client_for(platform) as client,
    ):
        assert (await client.get("/hello")).status_code == 200
        [function] = platform.status()["functions"]
        [where] = function["placement"]
        page = await _signed_in(browser, platform)
        placement = page.get_by_test_id("function-row-svc.hello").get_by_test_id("placement")
        await expect(placement).to_have_text(f"{where['node_id'][:8]} {where['node_ip']}")
        await expect(placement.locator(".node")).to_have_attribute(
            "title", f"Ray node {where['node_id']}, instance pids {where['pid']}"
        )


async def test_clicking_an_invocation_shows_its_log_lines_and_trace(
    browser: Browser, shop: Platform
) -> None:
    _, request_id = await _get_products(shop, 2)
    page = await _signed_in(browser, shop)
    await page.get_by_test_id("nav-invocations").click()

    await page.locator(f"[data-request-id='{request_id}']").click()
    detail = page.get_by_test_id("invocation-detail")
    await expect(detail).to_contain_text(request_id)
    logs = detail.get_by_test_id("invocation-logs")
    await expect(logs).to_contain_text(f"listing products for {request_id}")
    await expect(logs).to_contain_text(f"REPORT RequestId: {request_id}")
    await expect(detail.get_by_test_id("waterfall")).to_contain_text("storefront.products")


def _offset(value: int) -> str:
    """The dashboard's start offset format (format.js `offset`)."""
    return f"+{value} ms" if value < 1000 else f"+{value / 1000:.2f} s"


async def test_a_three_service_trace_is_a_nested_waterfall_and_observed_calls_on_the_map(
    browser: Browser, shop: Platform
) -> None:
    admin = httpx.AsyncClient(
        base_url=shop.admin_url, headers={"authorization": f"Bearer {shop.token}"}, timeout=10
    )
    async with admin, client_for(shop) as client:
        placed = await client.post("/orders", json={"id": 9})
        assert placed.status_code == 201, placed.text
        trace_id = placed.headers["traceresponse"].split("-")[1]
        checkout_id = placed.headers["x-amzn-requestid"]

        async def whole_trace() -> list[dict[str, Any]] | None:
            assert shop.recorder is not None
            await shop.recorder.flush()
            response = await admin.get(f"/traces/{trace_id}")
            spans: list[dict[str, Any]] = response.json().get("spans", [])
            return spans if len(spans) == 4 else None

        spans = await until(whole_trace, "checkout, charge, fulfil and notify in one trace")

    by_fn = {s["function"]: s for s in spans}
    assert by_fn["storefront.checkout"]["parent_span_id"] is None
    assert by_fn["payments.charge"]["parent_span_id"] == by_fn["storefront.checkout"]["span_id"]
    for consumer in ("orders.fulfil", "orders.notify"):
        assert by_fn[consumer]["parent_span_id"] == by_fn["payments.charge"]["span_id"]

    page = await _signed_in(browser, shop)
    await page.get_by_test_id("nav-invocations").click()
    await page.locator(f"[data-request-id='{checkout_id}']").click()
    rows = page.get_by_test_id("invocation-detail").get_by_test_id("span-row")
    await expect(rows).to_have_count(4)
    shown = [
        (await row.get_attribute("data-function"), await row.get_attribute("data-depth"))
        for row in await rows.all()
    ]
    # Callers above what they caused: the consumers (in start order) under the payment.
    assert shown[:2] == [("storefront.checkout", "0"), ("payments.charge", "1")]
    assert sorted(shown[2:]) == [("orders.fulfil", "2"), ("orders.notify", "2")]
    t0 = by_fn["storefront.checkout"]["start_ms"]
    for row in await rows.all():
        span = by_fn[await row.get_attribute("data-function") or ""]
        offset = row.get_by_test_id("span-offset")
        await expect(offset).to_have_text(_offset(span["start_ms"] - t0))
    assert by_fn["orders.fulfil"]["start_ms"] > t0  # the offsets are not all zero

    await page.get_by_test_id("nav-map").click()
    svg = page.get_by_test_id("service-map")
    for caller, callee, trigger in [
        ("storefront.checkout", "payments.charge", "invoke"),
        ("payments.charge", "orders.fulfil", "queue"),
        ("payments.charge", "orders.notify", "topic"),
    ]:
        call = svg.locator(f"[data-testid=map-call][data-from='{caller}'][data-to='{callee}']")
        await expect(call).to_have_text(f"{trigger} \N{MULTIPLICATION SIGN}1")  # once each
    await expect(svg.get_by_test_id("map-service-payments")).to_have_count(1)


async def test_the_map_shows_services_routes_queues_and_topics(
    browser: Browser, shop: Platform
) -> None:
    page = await _signed_in(browser, shop)
    await page.get_by_test_id("nav-map").click()
    svg = page.get_by_test_id("service-map")
    for testid in (
        "map-service-storefront",
        "map-service-orders",
        "map-function-orders.fulfil",
        "map-source-route:GET /products",
        "map-source-queue:orders",
        "map-source-topic:order-events",
        "map-source-schedule:orders.report:rate(1 hour)",
    ):
        await expect(svg.get_by_test_id(testid)).to_have_count(1)


async def test_a_dead_letter_is_listed_and_the_redrive_button_delivers_it_again(
    browser: Browser, shop: Platform, tmp_path: Path
) -> None:
    admin = httpx.AsyncClient(
        base_url=shop.admin_url, headers={"authorization": f"Bearer {shop.token}"}, timeout=10
    )

    async def dead_letters() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await admin.get("/dlq")).json()
        return listed

    async with admin, client_for(shop) as client:
        placed = await client.post("/orders", json={"id": 42, "fail": True})
        assert placed.status_code == 201, placed.text
        (letter,) = await until(dead_letters, "the failed order in the dead-letter queue")

        page = await _signed_in(browser, shop)
        await page.get_by_test_id("nav-queues").click()
        queue = page.get_by_test_id("queue-row-queue:orders")
        await expect(queue.get_by_test_id("dead-letters")).to_have_text("1")
        row = page.locator(f"[data-testid=dead-letter-row][data-message-id='{letter['id']}']")
        await expect(row).to_contain_text("warehouse offline for order 42")

        (tmp_path / "fixed").touch()  # the bug is fixed: the redrive can succeed
        await row.get_by_test_id("redrive-message").click()
        await expect(page.get_by_test_id("redrive-result")).to_have_text(
            "Redrove 1 message back to queue:orders."
        )
        fulfilled = tmp_path / "fulfilled.jsonl"
        await until(fulfilled.exists, "the redriven order to be fulfilled")
        assert [json.loads(line) for line in fulfilled.read_text().splitlines()] == [
            {"id": 42, "fail": True}
        ]
        assert await dead_letters() == []
        await expect(page.get_by_test_id("dead-letter-row")).to_have_count(0)
        await expect(queue.get_by_test_id("dead-letters")).to_have_text("0")
