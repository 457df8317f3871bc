"""The agent's day in a real browser: two anonymous buyers told apart, one picked from the queue,
and a desktop notification for a message in the chat that is not in view."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from tests.browser.helpers import desk_page, say, screenshot, shop_page
from tests.conftest import ROOT
from tests.desk_client import agent, handoff_sections

PHRASES = Phrasebook.load(ROOT / "phrasebook")


async def served(browser, url: str, errors: list[str]):
    """Alice's desk and a buyer whose request for a human she has been given (the new chat raised a
    desktop notification)."""
    desk = await desk_page(browser, url, "alice", errors, permissions=["notifications"])
    shop = await shop_page(browser, url, errors)
    await say(shop, "转人工")
    await desk.locator("#chats [data-chat]").first.wait_for()
    await desk.wait_for_function("window.__notifications.some(n => n.title.startsWith('新会话：访客 '))")
    return desk, shop


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


async def test_notes_typing_slash_replies_and_a_closed_chat_found_by_search(start_bot, browser):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    errors: list[str] = []
    desk, shop = await served(browser, bot.url, errors)
    await say(shop, "我买的围巾起球了怎么办")
    await desk.locator("#history .msg[data-from='customer']", has_text="起球").wait_for()

    # typing both ways
    await shop.locator('[data-xiaoer="input"]').fill("还有一个问")
    await desk.locator("#typing").wait_for(state="visible")
    await desk.fill("#reply", "亲")
    await shop.locator('[data-xiaoer="typing"]').wait_for(state="visible")
    await shop.locator('[data-xiaoer="input"]').fill("")

    # an internal note: on the desk, never at the buyer
    await desk.click("#mode-note")
    await desk.fill("#reply", "老顾客，上次也是围巾问题")
    await desk.press("#reply", "Enter")
    await desk.locator("#history .msg[data-from='note']", has_text="老顾客").wait_for()
    await desk.click("#mode-reply")

    # "/" opens the quick replies by search; Enter takes the highlighted one
    await desk.fill("#reply", "")
    await desk.type("#reply", "/欢迎")
    await desk.locator("#slash .slash-item").first.wait_for()
    chosen = await desk.locator("#slash .slash-item[aria-selected='true'] .slash-text").inner_text()
    await desk.press("#reply", "Enter")
    assert await desk.locator("#slash").is_hidden() and await desk.input_value("#reply") == chosen
    await desk.press("#reply", "Enter")
    await shop.locator('[data-xiaoer="message"][data-from="agent"]', has_text=chosen[:6]).wait_for()
    await screenshot(desk, "desk-note-and-slash")

    await desk.click("#close")
    await desk.click("#close-confirm")
    await desk.locator("#chats-empty").wait_for(state="visible")
    await shop.reload()
    await shop.locator('[data-xiaoer="launcher"]').click()
    await shop.locator('[data-xiaoer="message"][data-from="agent"]').first.wait_for()
    assert await shop.locator("text=老顾客").count() == 0          # the note never reached the buyer

    # the closed chat is found by what the buyer wrote, and opens read-only with its note
    await desk.click("#tab-history")
    await desk.fill("#search-q", "起球")
    await desk.click("#search-go")
    result = desk.locator("#results [data-case]")
    await result.first.wait_for()
    assert await result.count() == 1 and "起球" in await result.first.inner_text()
    await result.first.click()
    await desk.locator("#case-bar").wait_for(state="visible")
    await desk.locator("#history .msg[data-from='customer']", has_text="起球").wait_for()
    await desk.locator("#history .msg[data-from='note']", has_text="老顾客").wait_for()
    assert await desk.locator(".composer").is_hidden()
    await screenshot(desk, "desk-history-search")
    await desk.fill("#search-q", "不存在的内容")
    await desk.click("#search-go")
    await desk.locator("#results-empty", has_text="没有找到").wait_for()
    assert errors == []


async def test_a_buyer_sends_an_image_shown_on_the_desk_and_the_agent_answers_with_one(start_bot, browser):
    from tests.adapters.test_images import png
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    errors: list[str] = []
    desk, shop = await served(browser, bot.url, errors)
    await shop.locator('[data-xiaoer="file"]').set_input_files(files=[{"name": "scarf.png", "mimeType": "image/png", "buffer": png(40, 30)}])
    await shop.locator('[data-xiaoer="message"][data-from="visitor"][data-state="sent"] img[data-xiaoer="image"]').wait_for()
    thumb = desk.locator("#history .msg[data-from='customer'] img.thumb")
    await thumb.wait_for()
    await desk.wait_for_function("document.querySelector('#history .msg[data-from=customer] img.thumb').naturalWidth === 40")
    await desk.set_input_files("#image-file", files=[{"name": "reply.png", "mimeType": "image/png", "buffer": png(20, 20)}])
    agent_image = shop.locator('[data-xiaoer="message"][data-from="agent"] img[data-xiaoer="image"]')
    await agent_image.wait_for()
    await shop.wait_for_function(
        "document.querySelector('xiaoer-widget').shadowRoot.querySelector('[data-from=agent] img').naturalWidth === 20")
    # a file that is not an image by its bytes is refused with a notice, nothing is sent
    await desk.set_input_files("#image-file", files=[{"name": "evil.png", "mimeType": "image/png", "buffer": b"<script>alert(1)</script>"}])
    await desk.locator("#notice .toast", has_text="PNG").wait_for()
    await screenshot(desk, "desk-image")
    assert await desk.locator("#history img.thumb").count() == 2
    assert errors == []
