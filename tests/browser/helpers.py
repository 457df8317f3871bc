"""Helpers for the desk browser tests: log an agent in, open a buyer's shop page, save screenshots
as artifacts of the run (artifacts/screenshots/, git-ignored)."""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT
from tests.desk_client import PASSWORD

ARTIFACTS = ROOT / "artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

# Records every desktop notification the page constructs (the real one still runs).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notifications = [];
  if (!Real) return;
  function Recorded(title, options) {
    window.__notifications.push({ title: String(title), body: String((options && options.body) || "") });
    return new Real(title, options);
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def desk_page(browser: Any, url: str, username: str, errors: list[str], **context: Any) -> Any:
    ctx = await browser.new_context(viewport=VIEWPORT, **context)
    await ctx.add_init_script(RECORD_NOTIFICATIONS)
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: errors.append(f"desk: {exc}"))
    await page.goto(url + "/desk/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.wait_for_function("document.querySelector('#status') && document.querySelector('#status').dataset.status === 'online'")
    return page


async def shop_page(browser: Any, url: str, errors: list[str]) -> Any:
    page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    page.on("pageerror", lambda exc: errors.append(f"widget: {exc}"))
    await page.goto(url + "/")
    await page.locator('[data-xiaoer="launcher"]').click()
    await page.locator('[data-xiaoer="status"][data-state="online"]').wait_for()
    return page


async def say(shop: Any, text: str) -> None:
    await shop.locator('[data-xiaoer="input"]').fill(text)
    await shop.locator('[data-xiaoer="send"]').click()
    await shop.locator('[data-xiaoer="message"][data-from="visitor"][data-state="sent"]', has_text=text).wait_for()
