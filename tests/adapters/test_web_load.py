"""The widget under load and faults: one frame per turn, "busy" instead of errors, pending is not done,
300 concurrent visitors on one process without a single error."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from bot.phrasebook import Phrasebook
from bot.store import Store
from bot.types import Customer, Inbound
from tests.conftest import ROOT
from tests.widget_client import WidgetClient

PHRASES = Phrasebook.load(ROOT / "phrasebook")
# questions the bot answers itself (a handoff would leave later messages to the human)
QUESTIONS = ["在吗", "什么时候发货", "可以退货吗", "請問有發票嗎", "包邮吗", "这个偏大还是偏小"]


async def test_replies_ride_in_the_ack_when_the_client_asks(bot, http):
    client = WidgetClient(http, bot.url)
    await client.connect(replies_in_ack=True)
    frames, ack = await client.ask("什么时候发货")
    assert frames == []  # one frame for the whole turn
    assert [m["from"] for m in ack["messages"]] == ["bot", "bot"] and ack["duplicate"] is False
    assert "发货" in ack["messages"][1]["text"]
    frames, again = await client.ask("什么时候发货", id=ack["id"])  # a resend: its answer may have been lost
    assert frames == [] and again["duplicate"] is True and again["messages"] == ack["messages"]


async def test_a_message_whose_first_attempt_may_have_died_is_not_acked_but_handled_on_resend(
        bot, http, redis_url, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect(locale="en")
    cid = f"web:{client.visitor}"
    dead = Store.from_url(redis_url, prefix=prefix, claim_lease=0.3)  # another process, about to die
    turn = await dead.begin_turn(Inbound("web", cid, "m-1", Customer(client.visitor or ""), "hi"))
    assert not isinstance(turn, str)
    frames, answer = await client.ask("where is my parcel", id="m-1")
    assert answer["type"] == "error" and answer["code"] == "busy" and answer["retry_after"] > 0
    assert answer["message"] == PHRASES.text("service.busy", "en")
    while True:  # the widget resends by itself; the dead attempt's lease runs out
        frames, answer = await client.ask("where is my parcel", id="m-1")
        if answer["type"] == "ack":
            break
        assert answer["code"] == "busy"
        await asyncio.sleep(0.1)
    assert answer["duplicate"] is False and frames and frames[-1]["from"] == "bot"
    await dead.close()


async def test_overload_gets_a_localized_busy_frame_never_internal(bot, http):
    assert bot.engine is not None
    bot.engine.max_in_flight = 0  # every turn is over the limit
    client = WidgetClient(http, bot.url)
    await client.connect(locale="zh-CN")
    frames, answer = await client.ask("在吗")
    assert answer["type"] == "error" and answer["code"] == "busy"
    assert answer["message"] == PHRASES.text("service.busy", "zh-CN")
    bot.engine.max_in_flight = 1000
    frames, answer = await client.ask("在吗", id=answer["id"])  # the widget's resend
    assert answer["type"] == "ack" and frames


async def visitor(http: aiohttp.ClientSession, url: str, n: int, messages: int, connected: list[int],
                  gate: asyncio.Event) -> list[str]:
    """One visitor behaving like the widget: resend on busy/unavailable; returns what went wrong."""
    problems: list[str] = []
    client = WidgetClient(http, url)
    ready = await client.connect(replies_in_ack=True)
    connected.append(n)
    if ready["type"] != "ready":
        return [f"hello: {ready}"]
    await gate.wait()  # every socket is open: the messages start together
    for i in range(messages):
        client_id = uuid.uuid4().hex
        while True:
            frames, answer = await client.ask(QUESTIONS[(n + i) % len(QUESTIONS)], id=client_id)
            if answer["type"] == "ack":
                if not answer["messages"]:
                    problems.append(f"ack without replies: {answer}")
                break
            if answer.get("code") in ("busy", "unavailable"):
                await asyncio.sleep(answer["retry_after"] / 10)
                continue
            problems.append(f"{answer}")
            break
    await client.close()
    return problems


async def test_300_concurrent_visitors_on_one_process_all_answered(bot, http):
    gate = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as many:
        connected: list[int] = []
        tasks = [asyncio.create_task(visitor(many, bot.url, n, 3, connected, gate)) for n in range(300)]
        while len(connected) < 300 and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        gate.set()
        problems = [p for r in await asyncio.gather(*tasks) for p in r]
    assert problems == []
    assert bot.store is not None and not bot.store.outage.down
