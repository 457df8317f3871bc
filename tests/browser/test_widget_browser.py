"""The widget in a real browser: open the demo shop, ask a question, see the answer, reload, see history."""

from __future__ import annotations

async def test_buyer_asks_in_the_widget_and_history_survives_a_reload(bot, browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(bot.url + "/")
    await page.locator('[data-xiaoer="launcher"]').click()
    await page.locator('[data-xiaoer="status"][data-state="online"]').wait_for()
    await page.locator('[data-xiaoer="input"]').fill("请问什么时候发货？")
    await page.locator('[data-xiaoer="send"]').click()

    bot_messages = page.locator('[data-xiaoer="message"][data-from="bot"]')
    await bot_messages.nth(1).wait_for()
    answer = await bot_messages.nth(1).inner_text()
    assert "48" in answer and "发货" in answer
    await page.locator('[data-xiaoer="message"][data-from="visitor"][data-state="sent"]').wait_for()

    await page.reload()
    await page.locator('[data-xiaoer="launcher"]').click()
    visitor = page.locator('[data-xiaoer="message"][data-from="visitor"]')
    await visitor.first.wait_for()
    assert await visitor.first.locator(".bubble").inner_text() == "请问什么时候发货？"
    assert await page.locator('[data-xiaoer="message"][data-from="bot"]').count() == 2
    assert errors == []
