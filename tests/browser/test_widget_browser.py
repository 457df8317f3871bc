"""The widget in a real browser: open the demo shop, ask a question, see the answer, reload, see history."""

from __future__ import annotations

async def open_widget_and_ask(bot, browser, text: str) -> tuple[object, list[str]]:
    """The demo shop in a fresh page, the widget open, one message sent; page errors are collected."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(bot.url + "/")
    await page.locator('[data-xiaoer="launcher"]').click()
    await page.locator('[data-xiaoer="status"][data-state="online"]').wait_for()
    await page.locator('[data-xiaoer="input"]').fill(text)
    await page.locator('[data-xiaoer="send"]').click()
    return page, errors


async def test_buyer_asks_in_the_widget_and_history_survives_a_reload(bot, browser):
    page, errors = await open_widget_and_ask(bot, browser, "请问什么时候发货？")

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


async def test_buyer_clicks_a_did_you_mean_suggestion_and_gets_its_answer(bot, browser):
    from bot.faq import load_faq_files
    from tests.browser.helpers import screenshot
    from tests.conftest import ROOT

    washing = next(e for e in load_faq_files([ROOT / "phrasebook/faq/demo-shop.toml"]) if e.id == "washing")
    page, errors = await open_widget_and_ask(bot, browser, "衣服洗完会不会变小")
    suggestion = page.locator('[data-xiaoer="button"]', has_text=washing.questions[0])
    await suggestion.wait_for()
    assert 1 <= await page.locator('[data-xiaoer="button"]').count() <= 3
    await suggestion.click()
    bot_messages = page.locator('[data-xiaoer="message"][data-from="bot"]')
    last = bot_messages.last
    await last.filter(has_text=washing.answer[:12]).wait_for()
    assert washing.answer[:12] in await last.inner_text()
    await screenshot(page, "widget-did-you-mean")
    assert errors == []
