"""The agent's day in a real browser: two anonymous buyers told apart, one picked from the queue,
and a desktop notification for a message in the chat that is not in view."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from tests.browser.helpers import desk_page, say, screenshot, shop_page
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


async def test_pick_two_anonymous_buyers_from_the_queue_and_get_notified_in_the_background(start_bot, browser):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    errors: list[str] = []
    desk = await desk_page(browser, bot.url, "alice", errors, permissions=["notifications"])
    await desk.click("#status")                                # away: new chats wait in the queue
    await desk.wait_for_function("document.querySelector('#status').dataset.status === 'away'")

    first, second = await shop_page(browser, bot.url, errors), await shop_page(browser, bot.url, errors)
    await say(first, "转人工")
    await say(second, "我要人工客服")
    queued = desk.locator("#queue [data-queued]")
    await queued.nth(1).wait_for()
    names = [await queued.nth(i).locator(".item-name").inner_text() for i in range(2)]
    assert names[0] != names[1] and all(n.startswith("访客 ") and len(n) == 7 for n in names), names
    await screenshot(desk, "desk-queue")

    # pick the buyer who wrote first: the chat opens and the header says whose it is
    await queued.nth(0).locator("[data-pick]").click()
    await desk.locator("#chats [data-chat]").first.wait_for()
    await desk.wait_for_function("name => document.querySelector('#chat-name').textContent.includes(name)", arg=names[0])
    assigned = PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    await first.locator('[data-xiaoer="message"][data-from="bot"]', has_text=assigned[:8]).wait_for()
    await desk.locator("#queue [data-queued]").first.locator("[data-pick]").click()
    await desk.locator("#chats [data-chat]").nth(1).wait_for()
    await desk.locator("#chats [data-chat]").first.click()    # the first buyer's chat is in view
    await desk.wait_for_function("name => document.querySelector('#chat-name').textContent.includes(name)", arg=names[0])
    assert await desk.locator("#queue [data-queued]").count() == 0

    # the second buyer writes: a desktop notification, an unread count on that chat and in the title
    await say(second, "请问这件有红色吗")
    await desk.wait_for_function("window.__notifications.some(n => n.body.includes('红色'))")
    note = [n for n in await desk.evaluate("window.__notifications") if "红色" in n["body"]][0]
    assert names[1] in note["title"]
    background = desk.locator("#chats [data-chat]", has_text=names[1])
    await background.locator(".unread-dot", has_text="1").wait_for()
    assert (await desk.title()).startswith("(1)")
    await desk.locator("#customer .page-link").wait_for()     # the page the buyer wrote from
    await screenshot(desk, "desk-two-buyers")
    await background.click()
    await desk.wait_for_function("!document.title.startsWith('(')")
    assert errors == []
