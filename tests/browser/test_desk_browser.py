"""The desk in a real browser: log in, receive an escalated widget chat, get coached on "哦",
answer with a quick reply, and the buyer's widget shows it."""

from __future__ import annotations

from playwright.async_api import expect

from bot.phrasebook import Phrasebook
from tests.conftest import ROOT
from tests.desk_client import PASSWORD, agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


async def test_agent_answers_an_escalated_widget_chat_with_a_quick_reply(start_bot, browser):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    errors: list[str] = []

    desk = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    desk.on("pageerror", lambda exc: errors.append(f"desk: {exc}"))
    await desk.goto(bot.url + "/desk/")
    await desk.fill("#username", "alice")
    await desk.fill("#password", PASSWORD)
    await desk.click("#login")
    await desk.wait_for_function("document.querySelector('#status') && document.querySelector('#status').dataset.status === 'online'")

    shop = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    shop.on("pageerror", lambda exc: errors.append(f"widget: {exc}"))
    await shop.goto(bot.url + "/")
    await shop.locator('[data-xiaoer="launcher"]').click()
    await shop.locator('[data-xiaoer="status"][data-state="online"]').wait_for()
    await shop.locator('[data-xiaoer="input"]').fill("你好，我要转人工")
    await shop.locator('[data-xiaoer="send"]').click()
    assigned = PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    await shop.locator('[data-xiaoer="message"][data-from="bot"]', has_text=assigned[:8]).wait_for()

    chat = desk.locator("[data-chat]").first
    await chat.wait_for()
    await chat.click()
    await desk.locator("#history .msg[data-from='customer']", has_text="转人工").wait_for()

    await desk.fill("#reply", "哦")
    await desk.click("#send")
    coach = desk.locator("#coach")
    await coach.wait_for(state="visible")
    assert "简短" in await coach.inner_text()
    await desk.click("#coach-edit")

    await desk.fill("#reply", "")
    phrase = desk.locator("[data-phrase='welcome.hello']")
    await phrase.click()
    text = await desk.input_value("#reply")
    assert text and "{" not in text
    await desk.click("#send")

    agent_line = shop.locator('[data-xiaoer="message"][data-from="agent"]')
    await agent_line.first.wait_for()
    assert await agent_line.first.locator(".bubble").inner_text() == text.strip()
    await expect(agent_line.first).to_be_in_viewport()  # the widget scrolled down to the new reply
    assert await shop.locator('[data-xiaoer="message"][data-from="agent"]', has_text="哦").count() == 0
    assert errors == []
