"""Messages left for the staff and what the buyer is told: off hours, nobody online, and desks that
come and go — through the real widget and desk sockets, with real Redis."""

from __future__ import annotations

import asyncio

from bot.phrasebook import Phrasebook
from tests.adapters.test_handoff import buyer, handoff_state, next_message
from tests.conftest import ROOT, Clock, shop_time
from tests.desk_client import agent, handoff_sections
from tests.widget_client import WidgetClient

PHRASES = Phrasebook.load(ROOT / "phrasebook")
BACK = PHRASES.text("system.back_tomorrow", "zh-CN", open="09:00")
OFF_HOURS = PHRASES.text("system.handoff_off_hours", "zh-CN", back=BACK, open="09:00", close="18:30")
TAKEN = PHRASES.text("system.message_taken", "zh-CN")
NOBODY = PHRASES.text("system.handoff_nobody_online", "zh-CN")


async def history(http, bot, client: WidgetClient) -> list[str]:
    return [m["text"] for m in (await WidgetClient(http, bot.url).connect(client.visitor, client.token))["history"]]


async def until(check, tries: int = 100) -> None:
    """Wait for a background step (a timer tick) to have happened."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the background step did not happen")


async def test_a_request_off_hours_gets_one_notice_and_no_promise_of_an_agent_now(start_bot, http, clock: Clock):
    clock.now = shop_time(22)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    client = await buyer(http, bot.url)
    await client.ask("你好")
    frames, _ = await client.ask("转人工")
    assert [f["text"] for f in frames] == [OFF_HOURS]
    assert PHRASES.text("system.handoff_request", "zh-CN") not in await history(http, bot, client)


async def test_off_hours_with_an_agent_logged_in_the_request_is_simply_connected(start_bot, http, desks, clock: Clock):
    clock.now = shop_time(23, 30)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    await desks(bot.url).connect("alice")
    client = await buyer(http, bot.url)
    frames, _ = await client.ask("人工客服")
    assert [f["text"] for f in frames] == [PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")]


async def test_a_plain_message_left_off_hours_is_acknowledged_and_reaches_the_first_agent_in(start_bot, http, desks, redis_client, prefix, clock: Clock):
    clock.now = shop_time(21)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    client = await buyer(http, bot.url)
    await client.ask("你好")
    question = "请帮我问一下设计师这件大衣的灵感来源"
    frames, _ = await client.ask(question)
    assert [f["text"] for f in frames] == [
        PHRASES.text("system.message_taken_off_hours", "zh-CN", back=BACK, open="09:00", close="18:30")]
    state = await handoff_state(redis_client, prefix, client)
    assert (state["state"], state["reason"], state["group"]) == ("QUEUED", "message", "presales")
    frames, _ = await client.ask("另外想问问有没有配套的围巾")  # already acknowledged: silence
    assert frames == []
    # the queue on a desk shows the whole message; the first agent in gets the chat with all of it
    clock.now = shop_time(9, 1)
    alice = desks(bot.url)
    hello = await alice.connect("alice")
    chat = next(c for c in hello["chats"] + [(await alice.expect("assigned"))["conversation"]] if c["id"] == f"web:{client.visitor}")
    texts = [m["text"] for m in chat["history"] if m["from"] == "customer"]
    assert texts[-2:] == [question, "另外想问问有没有配套的围巾"]
    assert chat["reason"] == "message"
    assert (await next_message(client))["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    assert (await handoff_state(redis_client, prefix, client))["agent"] == "alice"


async def test_the_queue_lists_the_whole_left_message(start_bot, http, desks, clock: Clock):
    clock.now = shop_time(22)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"], capacity=1)))
    busy = await buyer(http, bot.url)
    alice = desks(bot.url)
    await alice.connect("alice")
    await busy.ask("转人工")  # alice's only seat is taken
    await alice.expect("assigned")
    await alice.close()
    client = await buyer(http, bot.url)
    long_text = "我买的那件大衣想改成深灰色，" * 12
    await client.ask(long_text)
    watcher = desks(bot.url)
    hello = await watcher.connect("alice")
    waiting = next(q for q in hello["queue"] if q["id"] == f"web:{client.visitor}")
    assert waiting["messages"][-1] == long_text and waiting["preview"] == long_text


async def test_nobody_online_in_hours_invites_a_message_and_acknowledges_it_once(start_bot, http, desks, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    client = await buyer(http, bot.url)
    frames, _ = await client.ask("转人工")
    assert [f["text"] for f in frames][-1] == NOBODY
    frames, _ = await client.ask("订单号是 20261123001，想改地址")
    assert [f["text"] for f in frames] == [TAKEN]
    frames, _ = await client.ask("改到公司地址")
    assert frames == []
    desk = desks(bot.url)
    await desk.connect("alice")
    chat = (await desk.expect("assigned"))["conversation"]
    assert {"订单号是 20261123001，想改地址", "改到公司地址"} <= {m["text"] for m in chat["history"]}


async def agent_vanishes(start_bot, http, desks, redis_client, prefix, clock: Clock):
    """Alice takes a chat, closes the tab, and the first-response timeout puts it back in the queue."""
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), max_reassignments=0, notice_grace=90))
    alice = desks(bot.url)
    await alice.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.close()
    clock.now += 61
    await until(lambda: _state_is(redis_client, prefix, client, "QUEUED"))
    return bot, client, cid


async def test_an_agent_who_comes_back_within_the_grace_period_takes_the_chat_back_silently(start_bot, http, desks, redis_client, prefix, clock: Clock):
    bot, client, cid = await agent_vanishes(start_bot, http, desks, redis_client, prefix, clock)
    again = desks(bot.url)
    hello = await again.connect("alice")  # ... and she is back before the grace period is over
    chats = [c["id"] for c in hello["chats"]]
    if cid not in chats:
        chats.append((await again.expect("assigned"))["conversation"]["id"])
    assert cid in chats
    clock.now += 120  # the notice timer fires and finds the chat taken: nothing to say
    await until(lambda: _no_notice_timer(bot))
    said = await history(http, bot, client)
    assigned = PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    assert said.count(assigned) == 1 and NOBODY not in said and OFF_HOURS not in said
    assert not any(t.startswith(PHRASES.text("system.handoff_queued", "zh-CN", position="1", wait="1")[:10]) for t in said)


async def test_after_the_grace_period_a_requeued_buyer_is_told_once(start_bot, http, desks, redis_client, prefix, clock: Clock):
    bot, client, _ = await agent_vanishes(start_bot, http, desks, redis_client, prefix, clock)
    clock.now += 91
    assert (await next_message(client))["text"] == NOBODY
    frames, _ = await client.ask("我还在等")
    assert [f["text"] for f in frames] == [TAKEN]
    # someone comes online: the buyer hears who took over
    bob = desks(bot.url)
    await bob.connect("alice")
    assert (await next_message(client))["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    assert (await history(http, bot, client)).count(NOBODY) == 1


async def _state_is(redis_client, prefix, client, state: str) -> bool:
    return (await handoff_state(redis_client, prefix, client)).get("state") == state


async def _no_notice_timer(bot) -> bool:
    timers = [m for m, _ in await bot.store.pending_timers() if m.startswith("notice|")]
    leased = await bot.store.redis.zrange(f"{bot.store.prefix}timers:leased", 0, -1)
    return not timers and not [m for m in leased if m.startswith("notice|")]
