"""Screenshots of every dashboard view from a real run, for docs/screenshots/.

Starts the platform with the dashboard tests' shop app, sends it a minute of mixed traffic
(a slow route; orders through three services, each one trace; a failing queue consumer whose
message is dead-lettered), and photographs each view in headless Debian Chromium: the
invocation detail shows a real trace waterfall, the map the calls observed in the traces.
Usage (from the repository root, after scripts/test.sh has installed the test extra and
chromium):

    .venv/bin/python scripts/dashboard_screenshots.py [OUT_DIR] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from harness import run_platform
from shop_app import write_shop_app

CHROMIUM = "/usr/bin/chromium"


async def traffic(gateway: str, admin: str, token: str, seconds: float) -> None:
    rng = random.Random(7)
    auth = {"authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    n = 0
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        while loop.time() < end:
            n += 1
            burst = 1 + int(3 * (1 + (n % 20) / 10))
            await asyncio.gather(
                *(
                    client.get("/products", params={"delay_ms": rng.choice([0, 2, 5, 20, 60])})
                    for _ in range(burst)
                )
            )
            if n % 5 == 0:
                await client.post("/orders", json={"id": n, "fail": n % 25 == 0})
            if n % 7 == 0:
                await client.post(
                    f"{admin}/topics/order-events/messages",
                    json={"message": f"order {n} shipped"},
                    headers=auth,
                )
            await asyncio.sleep(0.25)


async def main(out: Path, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        app = write_shop_app(Path(tmp) / "shop", Path(tmp))
        async with run_platform(app, event_poll_s=0.05) as platform:
            await traffic(platform.gateway_url, platform.admin_url, platform.token, seconds)
            assert platform.recorder is not None
            await platform.recorder.flush()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM)
                page = await browser.new_page(viewport={"width": 1440, "height": 900})
                await page.goto(f"{platform.admin_url}/#token={platform.token}")
                await page.wait_for_selector("[data-testid=functions-table] td")
                await page.wait_for_timeout(3500)  # a second poll: charts drawn, cost loaded
                await page.screenshot(path=out / "overview.png", full_page=True)

                await page.click("[data-testid=nav-invocations]")
                await page.wait_for_selector("[data-testid=invocation-row]")
                await page.select_option("[data-testid=filter-function]", "storefront.checkout")
                await page.wait_for_timeout(800)
                await page.click("[data-testid=invocation-row] >> nth=0")
                await page.wait_for_selector("[data-testid=invocation-logs] .line")
                await page.wait_for_timeout(500)
                await page.screenshot(path=out / "invocations.png", full_page=True)

                await page.click("[data-testid=nav-queues]")
                await page.wait_for_selector("[data-testid=queues-table] td")
                await page.wait_for_timeout(800)
                await page.screenshot(path=out / "queues.png", full_page=True)

                await page.click("[data-testid=nav-map]")
                await page.wait_for_selector("[data-testid=service-map]")
                await page.wait_for_timeout(800)
                await page.screenshot(path=out / "map.png", full_page=True)

                await page.click("[data-testid=sign-out]")
                await page.fill("[data-testid=token-input]", "not-the-token")
                await page.click("[data-testid=sign-in]")
                await page.wait_for_selector("[data-testid=login-error]")
                await page.screenshot(path=out / "login.png")
                await browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--seconds", type=float, default=60.0, help="How long to send traffic.")
    args = parser.parse_args()
    asyncio.run(main(args.out, args.seconds))
