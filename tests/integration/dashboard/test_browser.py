"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
a running gateway: sign in, read the triggers' colours, open a failed job's logs, redrive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pytest

from gateway.jobs.read import get_job
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import fetch_one

from ...conftest import service_missing
from ..support import WS, completed
from .conftest import EXPECTED_HEALTH, LOG_LINE, Seeded, dashboard_settings, seed

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COLOURS = {
    "green": "rgb(26, 127, 55)",
    "yellow": "rgb(181, 129, 0)",
    "red": "rgb(207, 34, 46)",
    "grey": "rgb(140, 149, 159)",
}
"""The health colours of the stylesheet, as the browser computes them."""


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; skipped when absent, except under CI."""
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is missing: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Chromium, headless, driven by Playwright."""
    try:
        from playwright.async_api import async_playwright
    except ModuleNotFoundError as exc:
        service_missing("Playwright", f"{exc.name} is not installed: pip install playwright")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies) with one tab."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Gateway, Seeded]]:
    """A running gateway (HTTP and executor) with the dashboard, seeded."""
    async with Gateway.running(dashboard_settings(settings), run_listeners=False) as gateway:
        yield gateway, await seed(gateway)


async def sign_in(page: Page, gateway: Gateway, token: str) -> None:
    """Open the dashboard, sign in with `token` and open workspace `test`."""
    await page.goto(f"http://127.0.0.1:{gateway.http_port}/ui/")
    await page.fill("#token", token)
    await page.click("form button[type=submit]")
    await page.click(f'a[href="/ui/w/{WS}/"]')
    await page.wait_for_selector("#triggers")


async def test_signed_in_the_triggers_show_their_health_colours(
    page: Page, served: tuple[Gateway, Seeded], tmp_path: Path
) -> None:
    gateway, seeded = served
    await sign_in(page, gateway, seeded.admin_token)
    shown = await page.locator("#triggers tbody tr").evaluate_all(
        """rows => rows.map(row => [
            row.dataset.path,
            row.dataset.health,
            getComputedStyle(row.querySelector('.dot')).backgroundColor,
        ])"""
    )
    assert {path: health for path, health, _ in shown} == EXPECTED_HEALTH
    assert all(colour == COLOURS[health] for _, health, colour in shown), shown
    assert shown[0][1] == "red"  # the worst first
    cookie = next(c for c in await page.context.cookies() if c["name"] == "gateway_token")
    assert cookie["httpOnly"]
    assert await page.evaluate("document.cookie") == ""
    # The listener's error is text: its markup made no element and ran nothing.
    assert await page.locator("#triggers img").count() == 0
    assert await page.title() == f"Triggers of {WS} · gateway"
    chart = page.locator('tr[data-path="u/alice/healthy"] svg.chart')
    assert await chart.locator("rect").count() >= 1
    screenshot = tmp_path / "dashboard-triggers.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


async def test_failed_jobs_page_shows_their_logs(
    page: Page, served: tuple[Gateway, Seeded], tmp_path: Path
) -> None:
    gateway, seeded = served
    await completed(gateway.store, seeded.failing_job)
    await completed(gateway.store, seeded.retried_job)
    await sign_in(page, gateway, seeded.admin_token)
    await page.click("text=Failed jobs")
    failing = page.locator(f'li[data-job-id="{seeded.failing_job}"]')
    await failing.locator("summary").click()
    assert LOG_LINE in await failing.locator("pre.logs").inner_text()
    assert "RuntimeError: payment refused" in await failing.locator(".error").inner_text()
    retried = page.locator(f'li[data-job-id="{seeded.retried_job}"]')
    assert "of the last attempt" in await retried.locator("summary").inner_text()
    await retried.locator("summary").click()
    assert LOG_LINE in await retried.locator("pre.logs").inner_text()
    await page.screenshot(path=str(tmp_path / "dashboard-failed-jobs.png"), full_page=True)


async def test_redrive_button_recreates_the_job(
    page: Page, served: tuple[Gateway, Seeded], tmp_path: Path
) -> None:
    gateway, seeded = served
    await sign_in(page, gateway, seeded.admin_token)
    await page.click("text=Quarantine")
    row = page.locator(f'tr[data-event-id="{seeded.quarantined_id}"]')
    await row.locator("button.redrive").click()
    job_id = UUID(await page.locator("code.redriven-job").inner_text())
    job = await get_job(gateway.store, WS, job_id)
    assert (job["trigger_kind"], job["trigger"]) == ("kafka", "u/alice/healthy")
    assert job["script_path"] == "f/t/hello"
    quarantined = await fetch_one(
        gateway.store, "get_quarantined_event", workspace_id=WS, id=seeded.quarantined_id
    )
    assert quarantined is not None
    assert quarantined["redriven_job_id"] == job_id
    assert (await completed(gateway.store, job_id))["success"]
    assert await row.locator("button.redrive").count() == 0
    await page.screenshot(path=str(tmp_path / "dashboard-quarantine.png"), full_page=True)
