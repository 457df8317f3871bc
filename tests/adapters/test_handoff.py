"""Human handoff end to end: the real widget socket, the real desk socket, real Redis."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.phrasebook import Phrasebook
from tests.conftest import ROOT, Clock, shop_time
from tests.desk_client import agent, handoff_sections
from tests.widget_client import WidgetClient

PHRASES = Phrasebook.load(ROOT / "phrasebook")




async def buyer(http: aiohttp.ClientSession, url: str, name: str | None = None) -> WidgetClient:
    client = WidgetClient(http, url)
    await client.connect(name=name)
    return client


async def next_message(client: WidgetClient, timeout: float = 10.0) -> dict:
    while True:
        frame = await client.receive(timeout)
        if frame["type"] == "message":
            return frame
        assert frame["type"] != "closed", frame


async def handoff_state(redis_client: aioredis.Redis, prefix: str, client: WidgetClient) -> dict[str, str]:
    return await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:handoff")


async def test_request_for_a_human_is_soothed_then_assigned_and_the_bot_falls_silent(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    desk = desks(bot.url)
    hello = await desk.connect("alice")
    assert hello["agent"]["username"] == "alice" and hello["chats"] == [] and hello["phrases"]
    client = await buyer(http, bot.url, name="小美")
    await client.ask("你好")
    frames, _ = await client.ask("转人工")
    assert [f["text"] for f in frames] == [
        PHRASES.text("system.handoff_request", "zh-CN", name="小美"),
        PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice"),
    ]
    assigned = await desk.expect("assigned")
    chat = assigned["conversation"]
    assert chat["id"] == f"web:{client.visitor}" and chat["customer"]["name"] == "小美" and chat["reason"] == "request"
    assert [m["text"] for m in chat["history"]][:2] == ["你好", frames[0]["text"]] or "转人工" in [m["text"] for m in chat["history"]]
    # the bot stays silent while a human owns the chat; the buyer's message reaches the desk
    frames, ack = await client.ask("什么时候发货")
    assert frames == [] and ack["type"] == "ack"
    relayed = await desk.expect("message", conversation=chat["id"])
    assert relayed["from"] == "customer" and relayed["text"] == "什么时候发货"
    # the agent's reply reaches the buyer
    await desk.send({"type": "reply", "conversation": chat["id"], "text": "亲，您好😊 我是Alice，马上为您查询发货时间～"})
    reply = await next_message(client)
    assert reply["from"] == "agent" and reply["text"].startswith("亲，您好")
    assert (await handoff_state(redis_client, prefix, client))["first_reply_at"]


async def test_misses_escalate_to_the_default_group(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("你是男生还是女生")
    frames, _ = await client.ask("你们老板帅不帅")
    assert frames[0]["text"] == PHRASES.text("system.handoff_misses", "zh-CN")
    assert (await desk.expect("assigned"))["conversation"]["reason"] == "misses"
    assert (await handoff_state(redis_client, prefix, client))["group"] == "presales"


@pytest.mark.parametrize(
    ("text", "reason", "group", "owner"),
    [
        ("你们卖假货吧，我用了过敏了", "product", "aftersales", "bob"),
        ("快递丢了，一直没到", "logistics", "aftersales", "bob"),
        ("客服态度太差了", "service", "aftersales", "bob"),
        ("再不处理我就给差评，还要打12315投诉", "bad_review", "reviews", "rita"),
    ],
)
async def test_complaints_are_soothed_first_and_routed_by_class(start_bot, http, desks, redis_client, prefix, text, reason, group, owner):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["aftersales"]), agent("rita", ["reviews"])))
    for name in ("alice", "bob", "rita"):
        await desks(bot.url).connect(name)
    client = await buyer(http, bot.url)
    frames, _ = await client.ask(text)
    assert frames[0]["text"] == PHRASES.text(f"system.soothe_{reason}", "zh-CN")
    assert frames[1]["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent=owner.title())
    state = await handoff_state(redis_client, prefix, client)
    assert (state["reason"], state["group"], state["agent"]) == (reason, group, owner)


async def test_assignment_by_capacity_then_queue_positions(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"], capacity=1), agent("bob", ["presales"], capacity=1)))
    alice, bob = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    await bob.connect("bob")
    buyers = [await buyer(http, bot.url) for _ in range(4)]
    for b in buyers[:2]:
        await b.ask("人工客服")
    owners = {(await handoff_state(redis_client, prefix, b))["agent"]: f"web:{b.visitor}" for b in buyers[:2]}
    assert set(owners) == {"alice", "bob"}  # fewest open chats first: one each
    frames, _ = await buyers[2].ask("人工客服")
    assert frames[-1]["text"] == PHRASES.text("system.handoff_queued", "zh-CN", position="1", wait="2")
    frames, _ = await buyers[3].ask("人工客服")
    assert frames[-1]["text"] == PHRASES.text("system.handoff_queued", "zh-CN", position="2", wait="4")
    queue = await alice.expect("queue")
    while len(queue["queue"]) < 2:
        queue = await alice.expect("queue")
    assert [q["id"] for q in queue["queue"]] == [f"web:{buyers[2].visitor}", f"web:{buyers[3].visitor}"]
    # alice closes her chat: the head of the queue is hers now, the next buyer moves up
    await alice.send({"type": "close", "conversation": owners["alice"]})
    assert (await alice.expect("unassigned"))["reason"] == "closed"
    assert (await alice.expect("assigned"))["conversation"]["id"] == f"web:{buyers[2].visitor}"
    assert (await next_message(buyers[2]))["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    update = await next_message(buyers[3])
    assert update["text"] == PHRASES.text("system.handoff_queue_update", "zh-CN", position="1")


async def test_close_asks_for_a_rating_and_stores_it(start_bot, http, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    await desk.send({"type": "close", "conversation": cid})
    closing = await next_message(client)
    assert closing["text"] == PHRASES.text("system.closed_rating", "zh-CN")
    assert [b["text"] for b in closing["buttons"]] == ["5", "4", "3", "2", "1"]
    assert (await desk.expect("unassigned"))["reason"] == "closed"
    frames, _ = await client.ask("5")
    assert [f["text"] for f in frames] == [PHRASES.text("system.rating_thanks", "zh-CN")]
    session = await redis_client.hgetall(f"{prefix}conv:{{{cid}}}:session")
    assert session["rating"] == "5" and session["cases"] == "1" and not session.get("rating_pending")
    assert await redis_client.lrange(f"{prefix}stats:ratings", 0, -1) == ["5"]
    # afterwards the bot answers again
    frames, _ = await client.ask("什么时候发货")
    assert frames and frames[0]["from"] == "bot"


async def test_first_response_timeout_moves_the_chat_and_refuses_the_late_reply(start_bot, http, desks, redis_client, prefix, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    alice, bob = desks(bot.url), desks(bot.url)
    await alice.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await bob.connect("bob")
    clock.now += 61  # alice did not reply within handoff.first_response_timeout
    gone = await alice.expect("unassigned", conversation=cid)
    assert gone["reason"] == "first_response_timeout"
    assert (await bob.expect("assigned"))["conversation"]["id"] == cid
    assert (await next_message(client))["text"] == PHRASES.text("system.reassigned", "zh-CN", agent="Bob")
    await alice.send({"type": "reply", "conversation": cid, "text": "亲，不好意思，我来晚了，马上为您处理～"})
    refused = await alice.expect("error")
    assert refused["code"] == "not_assigned" and refused["conversation"] == cid
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 我是Bob，马上为您处理～"})
    reply = await next_message(client)
    assert reply["from"] == "agent" and reply["agent"] == "Bob"  # the display name, not the login
    state = await handoff_state(redis_client, prefix, client)
    assert state["agent"] == "bob" and state["reassignments"] == "1" and state["first_reply_at"]
    history = [m["text"] for m in (await WidgetClient(http, bot.url).connect(client.visitor, client.token))["history"]]
    assert "亲，不好意思，我来晚了，马上为您处理～" not in history


async def test_reassignment_survives_a_restart_between_assignment_and_deadline(start_bot, redis_url, prefix, http, desks, clock: Clock):
    sections = handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"]))
    first = await start_bot(**sections)
    alice = desks(first.url)
    await alice.connect("alice")
    client = await buyer(http, first.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    await alice.close()
    await first.stop()  # the process goes away before the deadline

    second = await start_bot(**sections)
    alice2, bob = desks(second.url), desks(second.url)
    hello = await alice2.connect("alice")
    assert [c["id"] for c in hello["chats"]] == [cid]  # the assignment lived in Redis
    await bob.connect("bob")
    clock.now += 61
    assert (await alice2.expect("unassigned", conversation=cid))["reason"] == "first_response_timeout"
    assert (await bob.expect("assigned"))["conversation"]["id"] == cid


async def test_two_processes_fire_each_timer_exactly_once(start_bot, http, desks, redis_client, prefix, clock: Clock):
    sections = handoff_sections(agent("alice", ["presales"], capacity=10), agent("bob", ["presales"], capacity=10))
    one, two = await start_bot(**sections), await start_bot(**sections)
    await desks(one.url).connect("alice")
    await desks(two.url).connect("bob")
    buyers = [await buyer(http, (one if i % 2 else two).url) for i in range(6)]
    for b in buyers:
        await b.ask("转人工")
    clock.now += 61
    for b in buyers:
        assert (await next_message(b))["text"].startswith(PHRASES.text("system.reassigned", "zh-CN", agent="")[:4])
    await asyncio.sleep(1.0)  # several more timer ticks in both processes
    assert one.timers.fired + two.timers.fired == 6
    for b in buyers:
        state = await handoff_state(redis_client, prefix, b)
        assert state["reassignments"] == "1"
        history = (await WidgetClient(http, one.url).connect(b.visitor, b.token))["history"]
        reassigned = PHRASES.text("system.reassigned", "zh-CN", agent="Alice"), PHRASES.text("system.reassigned", "zh-CN", agent="Bob")
        assert sum(1 for m in history if m["text"] in reassigned) == 1


async def test_off_hours_message_is_taken_and_handed_to_the_first_agent_online(start_bot, http, desks, redis_client, prefix, clock: Clock):
    clock.now = shop_time(22)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    client = await buyer(http, bot.url)
    frames, _ = await client.ask("人工")
    back = PHRASES.text("system.back_tomorrow", "zh-CN", open="09:00")
    assert [f["text"] for f in frames] == [PHRASES.text("system.handoff_off_hours", "zh-CN", back=back, open="09:00", close="18:30")]
    frames, _ = await client.ask("我想把收货地址改成上海市浦东新区")
    assert [f["text"] for f in frames] == [PHRASES.text("system.message_taken", "zh-CN")]  # acknowledged once
    frames, _ = await client.ask("门牌号是88号")
    assert frames == []  # the message is kept for the agent; the bot does not chime in again
    clock.now = shop_time(9, 5)
    desk = desks(bot.url)
    await desk.connect("alice")
    chat = (await desk.expect("assigned"))["conversation"]
    assert {"我想把收货地址改成上海市浦东新区", "门牌号是88号"} <= {m["text"] for m in chat["history"]}
    assert (await next_message(client))["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")


async def test_idle_chat_closes_itself_politely(start_bot, http, desks, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), idle_close=600))
    desk = desks(bot.url)
    await desk.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await desk.expect("assigned"))["conversation"]["id"]
    await desk.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 请问有什么可以帮您？"})
    await next_message(client)
    await client.ask("我看看订单号")
    clock.now += 601
    assert (await next_message(client))["text"] == PHRASES.text("system.idle_closed", "zh-CN")
    assert (await desk.expect("unassigned", conversation=cid))["reason"] == "idle"


async def test_after_max_reassignments_the_chat_goes_to_the_queue_head_and_a_supervisor_is_alerted(start_bot, http, desks, redis_client, prefix, clock: Clock):
    from bot import metrics

    before = metrics.SUPERVISOR._value.get()
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), max_reassignments=0))
    alice = desks(bot.url)
    await alice.connect("alice")
    waiting = await buyer(http, bot.url)
    await waiting.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    clock.now += 61
    assert (await alice.expect("unassigned", conversation=cid))["reason"] == "first_response_timeout"
    # back at the head of the queue; the only free agent gets it again, with a fresh deadline
    again = await alice.expect("assigned")
    assert metrics.SUPERVISOR._value.get() == before + 1
    assert again["conversation"]["id"] == cid and again["conversation"]["first_response_deadline"] == clock.now + 60
    state = await handoff_state(redis_client, prefix, waiting)
    assert state["reassignments"] == "1" and state["agent"] == "alice"


async def test_with_nobody_else_free_the_chat_stays_and_the_buyer_is_not_spammed(start_bot, http, desks, redis_client, prefix, clock: Clock):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), max_reassignments=3))
    alice = desks(bot.url)
    await alice.connect("alice")
    client = await buyer(http, bot.url)
    await client.ask("转人工")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    clock.now += 61
    for _ in range(40):  # let the timer fire
        await asyncio.sleep(0.1)
        if (await handoff_state(redis_client, prefix, client)).get("reassignments") == "1":
            break
    state = await handoff_state(redis_client, prefix, client)
    assert state["agent"] == "alice" and state["reassignments"] == "1" and state["frt"].endswith("|1")
    history = (await WidgetClient(http, bot.url).connect(client.visitor, client.token))["history"]
    assert [m["text"] for m in history][-1] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    assert all(f["type"] != "unassigned" for f in alice.seen)
    assert cid


async def test_a_queued_buyer_who_left_a_message_is_not_idle_closed(start_bot, http, redis_client, prefix, clock: Clock):
    clock.now = shop_time(22)
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), idle_close=600))
    client = await buyer(http, bot.url)
    await client.ask("人工")
    await client.ask("我想改地址")
    clock.now += 3600
    await asyncio.sleep(1.0)
    assert (await handoff_state(redis_client, prefix, client))["state"] == "QUEUED"


async def test_follow_is_welcomed_and_unfollow_closes_the_handoff_quietly(start_bot, desks):
    from bot.types import Customer, Inbound, Kind

    bot = await start_bot(**handoff_sections(agent("alice", ["presales"])))
    desk = desks(bot.url)
    await desk.connect("alice")
    buyer_ = Customer("o1")

    def event(kind: str, mid: str, text: str = "") -> Inbound:
        return Inbound("wechat", "wechat:o1", mid, buyer_, text=text, kind=kind)

    welcome = await bot.engine.submit(event(Kind.FOLLOW, "o1:1"))
    assert [r.text for r in welcome.replies] == [PHRASES.text("system.welcome", "zh-CN", shop="小二优选")]
    await bot.engine.submit(event(Kind.TEXT, "m1", "转人工"), "wechat")
    assert (await desk.expect("assigned"))["conversation"]["id"] == "wechat:o1"
    gone = await bot.engine.submit(event(Kind.UNFOLLOW, "o1:2"))
    assert gone.replies == ()
    assert (await desk.expect("unassigned", conversation="wechat:o1"))["reason"] == "unsubscribe"
    history = await bot.store.history("wechat:o1")
    assert [e.text for e in history][0] == welcome.replies[0].text  # no made-up buyer line for the follow
