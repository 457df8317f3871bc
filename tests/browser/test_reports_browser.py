"""The reports page and the live view in a real browser: a supervisor sees the charts drawn and takes
a queued chat over; an agent gets 403."""

from __future__ import annotations

from pathlib import Path

from bot.types import Customer, Inbound
from tests.adapters.test_supervisor import supervisor
from tests.conftest import ROOT
from tests.desk_client import PASSWORD, agent, handoff_sections

ARTIFACTS = ROOT / "artifacts"


async def login(browser, url: str, username: str):
    page = await (await browser.new_context(viewport={"width": 1280, "height": 1400})).new_page()
    await page.goto(url + "/desk/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("#login")
    return page


async def test_supervisor_sees_the_charts_and_an_agent_is_refused(start_bot, browser):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), supervisor("sam")))
    for i, text in enumerate(["什么时候发货", "转人工", "你们的猫粮是进口的吗", "猫粮是进口的吗"]):
        await bot.engine.submit(Inbound("web", f"web:b{i}", f"m{i}", Customer(f"b{i}"), text=text))
    errors: list[str] = []
    page = await login(browser, bot.url, "sam")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(bot.url + "/desk/reports?from=2026-11-20&to=2026-11-23")
    await page.wait_for_function("document.body.dataset.loaded === '1'")
    assert await page.locator("#chart-days svg rect[data-bar]").count() >= 1
    assert await page.locator("#chart-hours svg rect[data-bar]").count() >= 1
    assert await page.locator("#kpis .kpi").count() == 6
    assert "25%" in await page.locator("#kpis").inner_text() or "75%" in await page.locator("#kpis").inner_text()
    assert await page.locator("[data-gap]").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "reports.png"), full_page=True)
    assert Path(ARTIFACTS / "reports.png").stat().st_size > 10_000
    # the live view: the queued chat is there, and the supervisor takes it over
    await page.goto(bot.url + "/desk/supervisor")
    await page.wait_for_function("document.body.dataset.live === '1'")
    await page.locator("#queue [data-take='web:b1']").click()
    await page.locator("#chats [data-take='web:b1']").wait_for()
    assert "Sam" in await page.locator("#chats").inner_text()
    assert (await bot.store.handoff_of("web:b1")).agent == "sam"
    await page.screenshot(path=str(ARTIFACTS / "supervisor.png"), full_page=True)
    assert errors == []

    refused = await login(browser, bot.url, "alice")
    for path in ("/desk/reports", "/desk/supervisor"):
        response = await refused.goto(bot.url + path)
        assert response is not None and response.status == 403
