"""Off hours in a real browser: a buyer leaves a message at night, it is acknowledged once, and the
first agent who logs in in the morning gets the chat with the whole message, flagged as a left
message (never a raw key). And a supervisor takes the follow-up a low rating created."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from tests.browser.helpers import desk_page, say, screenshot, shop_page
from tests.conftest import ROOT, Clock, shop_time
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


async def test_a_message_left_off_hours_reaches_the_first_agent_who_logs_in(start_bot, browser, clock: Clock):
    clock.now = shop_time(22, 30)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    errors: list[str] = []
    shop = await shop_page(browser, bot.url, errors)
    question = "我想给妈妈挑一件生日礼物，预算五百元左右，想请客服推荐一下适合五十岁左右的款式"
    await say(shop, question)
    taken = PHRASES.text("system.message_taken_off_hours", "zh-CN",
                         back=PHRASES.text("system.back_tomorrow", "zh-CN", open="09:00"), open="09:00", close="18:30")
    bot_lines = shop.locator('[data-xiaoer="message"][data-from="bot"]')
    await bot_lines.filter(has_text=taken[:12]).wait_for()
    await say(shop, "颜色最好是红色或者酒红色")
    await screenshot(shop, "off-hours-widget")
    said = [await bot_lines.nth(i).inner_text() for i in range(await bot_lines.count())]
    assert sum(taken[:12] in t for t in said) == 1  # acknowledged once, nothing for the second message
    assert not any(PHRASES.text("system.handoff_request", "zh-CN")[:10] in t for t in said)

    clock.now = shop_time(9, 2)  # the next morning, alice is the first to log in
    desk = await desk_page(browser, bot.url, "alice", errors)
    chat = desk.locator("#chats [data-chat]").first
    await chat.wait_for()
    await chat.click()
    history = desk.locator("#history .msg[data-from='customer']")
    await history.filter(has_text="酒红色").wait_for()
    texts = [await history.nth(i).inner_text() for i in range(await history.count())]
    assert any(question in t for t in texts)
    meta = desk.locator("#chat-meta")
    await meta.locator("[data-flag='message']").wait_for()
    assert PHRASES.label("reasons", "message") in await meta.inner_text() and "message" not in await meta.inner_text()
    await screenshot(desk, "off-hours-desk")
    assigned = PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    await bot_lines.filter(has_text=assigned[:8]).wait_for()
    assert errors == []


async def test_a_supervisor_takes_the_follow_up_of_a_low_rating_on_the_desk(start_bot, browser):
    sam = {**agent("sam", ["reviews"]), "role": "supervisor"}
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), sam))
    errors: list[str] = []
    supervisor = await desk_page(browser, bot.url, "sam", errors)
    await supervisor.locator("#followups-pane").wait_for()
    alice = await desk_page(browser, bot.url, "alice", errors)
    assert await alice.locator("#followups-pane").is_hidden()  # agents have no follow-up list

    shop = await shop_page(browser, bot.url, errors)
    await say(shop, "转人工")
    await alice.locator("#chats [data-chat]").first.click()
    await alice.click("#close")
    await alice.click("#close-confirm")
    await shop.locator('[data-xiaoer="button"]', has_text=PHRASES.text("system.rate_1", "zh-CN")).click()

    item = supervisor.locator("#followups [data-followup]")
    await item.first.wait_for()
    assert PHRASES.label("followups", "low_rating") in await item.first.inner_text()
    await screenshot(supervisor, "supervisor-followups")
    await item.first.locator("[data-take-followup]").click()
    await supervisor.wait_for_function("document.querySelectorAll('#followups [data-followup]').length === 0")
    assert await bot.store.open_followups() == []
    assert errors == []
