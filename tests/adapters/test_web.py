"""The widget channel end to end: a real bot process, real WebSocket, real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from bot.phrasebook import Phrasebook
from tests.conftest import ROOT, Clock, shop_time
from tests.widget_client import WidgetClient

PHRASES = Phrasebook.load(ROOT / "phrasebook")



async def keys(redis_client: aioredis.Redis, prefix: str) -> list[str]:
    return [k async for k in redis_client.scan_iter(match=f"{prefix}conv:*")]


async def test_new_visitor_gets_id_token_and_empty_history(bot, http):
    client = WidgetClient(http, bot.url)
    ready = await client.connect()
    assert ready["type"] == "ready" and len(ready["visitor"]) == 32 and ready["history"] == []
    assert len(ready["token"]) == 64


async def test_question_gets_welcome_and_faq_answer_then_history_on_reconnect(bot, http):
    client = WidgetClient(http, bot.url)
    await client.connect()
    frames, ack = await client.ask("亲，什么时候发货呀？")
    assert ack == {"type": "ack", "id": ack["id"], "duplicate": False}
    texts = [f["text"] for f in frames]
    assert texts[0] == PHRASES.text("system.welcome", "zh-CN", shop="小二优选")
    assert "发货" in texts[1] and all(f["from"] == "bot" for f in frames)
    await client.close()

    again = WidgetClient(http, bot.url)
    ready = await again.connect(client.visitor, client.token)
    assert ready["visitor"] == client.visitor
    assert [m["text"] for m in ready["history"]] == ["亲，什么时候发货呀？", *texts]
    assert [m["from"] for m in ready["history"]] == ["visitor", "bot", "bot"]


async def test_duplicate_client_id_gets_one_reply(bot, http):
    client = WidgetClient(http, bot.url)
    await client.connect()
    frames, ack = await client.ask("在吗", id="dup-1")
    assert len(frames) == 1 and not ack["duplicate"]
    frames, ack = await client.ask("在吗", id="dup-1")
    assert frames == [] and ack["duplicate"] is True
    ready = await WidgetClient(http, bot.url).connect(client.visitor, client.token)
    assert len(ready["history"]) == 2


async def test_second_tab_of_the_same_visitor_sees_the_conversation_live(bot, http):
    tab1, tab2 = WidgetClient(http, bot.url), WidgetClient(http, bot.url)
    await tab1.connect()
    await tab2.connect(tab1.visitor, tab1.token)
    frames, _ = await tab1.ask("怎么退货")
    seen = [await tab2.receive() for _ in range(len(frames) + 1)]
    assert [s["from"] for s in seen] == ["visitor", *["bot"] * len(frames)]
    assert seen[0]["text"] == "怎么退货" and [s["text"] for s in seen[1:]] == [f["text"] for f in frames]


@pytest.mark.parametrize(
    ("hour", "phrase", "back"),
    [(10, "system.welcome", None), (22, "system.welcome_off_hours", "system.back_tomorrow"),
     (7, "system.welcome_off_hours", "system.back_today")],
)
async def test_greeting_in_and_out_of_business_hours(bot, http, clock: Clock, hour, phrase, back):
    clock.now = shop_time(hour)
    client = WidgetClient(http, bot.url)
    await client.connect(name="小美")
    frames, _ = await client.ask("在吗")
    values = {"shop": "小二优选", "name": "小美", "open": "09:00", "close": "18:30"}
    if back:
        values["back"] = PHRASES.text(back, "zh-CN", open="09:00")
    assert [f["text"] for f in frames] == [PHRASES.text(phrase + "_named", "zh-CN", **values)]


async def test_english_buyer_is_answered_in_english(bot, http):
    client = WidgetClient(http, bot.url)
    await client.connect()
    frames, _ = await client.ask("hello")
    assert frames[0]["text"] == PHRASES.text("system.welcome", "en", shop="小二优选")


async def test_unsure_faq_asks_to_rephrase_then_hands_over_to_a_human(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    await client.ask("你好")
    frames, _ = await client.ask("你们老板帅不帅")
    assert [f["text"] for f in frames] == [PHRASES.text("system.rephrase", "zh-CN")]
    session = await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:session")
    assert session["miss_count"] == "1" and "last_intent" not in session
    frames, _ = await client.ask("你是男生还是女生")
    # second miss (faq.miss_limit = 2): apologise, then hand over; nobody is online, so take a message
    assert [f["text"] for f in frames] == [
        PHRASES.text("system.handoff_misses", "zh-CN"), PHRASES.text("system.handoff_nobody_online", "zh-CN"),
    ]
    handoff = await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:handoff")
    assert handoff["state"] == "QUEUED" and handoff["reason"] == "misses"


async def test_miss_count_resets_on_an_answer(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    await client.ask("你们老板帅不帅")
    await client.ask("退款多久能到账")
    session = await redis_client.hgetall(f"{prefix}conv:{{web:{client.visitor}}}:session")
    assert session.get("miss_count", "0") == "0" and session["last_intent"] == "refund-time"  # 0 is not stored


async def test_malformed_json_gets_a_clear_error_and_stores_nothing(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    assert client.ws is not None
    await client.ws.send_str("{not json")
    assert (await client.receive())["code"] == "bad_json"
    await client.send({"type": "message", "id": 5, "text": "hi"})
    assert (await client.receive())["code"] == "bad_frame"
    await client.send({"type": "message", "id": "x1", "text": ""})
    assert (await client.receive())["code"] == "bad_frame"
    await client.send(["a", "list"])  # type: ignore[arg-type]
    assert (await client.receive())["code"] == "bad_frame"
    assert await keys(redis_client, prefix) == []
    frames, ack = await client.ask("你好")  # the socket is still usable
    assert ack["type"] == "ack" and frames


async def test_oversized_text_is_refused_and_nothing_stored(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    frames, error = await client.ask("长" * 2001, id="big")
    assert error["type"] == "error" and error["code"] == "too_long" and error["id"] == "big"
    assert await keys(redis_client, prefix) == []


async def test_oversized_frame_closes_the_socket(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    await client.send({"type": "message", "id": "huge", "text": "x" * 70_000})
    closed = await client.receive()
    assert closed["type"] == "closed" and client.ws is not None and client.ws.close_code == 1009
    assert await keys(redis_client, prefix) == []


async def test_message_before_hello_is_refused(bot, http):
    client = WidgetClient(http, bot.url)
    client.ws = await http.ws_connect(client.url, headers={"Origin": bot.url})
    _, error = await client.ask("hi")
    assert error["code"] == "not_ready"


async def test_wrong_token_is_refused_and_nothing_stored(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    ready = await client.connect()
    await client.close()
    intruder = WidgetClient(http, bot.url)
    error = await intruder.connect(ready["visitor"], "0" * 64)
    assert error["type"] == "error" and error["code"] == "bad_token"
    closed = await intruder.receive()
    assert closed["type"] == "closed" and intruder.ws is not None and intruder.ws.close_code == 4401
    bad_id = await WidgetClient(http, bot.url).connect("not-a-visitor", None)
    assert bad_id["code"] == "bad_token"
    assert await keys(redis_client, prefix) == []


async def test_foreign_origin_is_refused_with_a_clear_error_and_nothing_stored(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url, origin="https://evil.example")
    error = await client.connect()
    assert error["type"] == "error" and error["code"] == "origin_not_allowed"
    closed = await client.receive()
    assert closed["type"] == "closed" and client.ws is not None and client.ws.close_code == 4403
    assert await keys(redis_client, prefix) == []


async def test_allowed_origins_from_config(start_bot, http):
    bot = await start_bot(channels={"web": {"allowed_origins": ["https://shop.example.com"]}})
    ready = await WidgetClient(http, bot.url, origin="https://shop.example.com").connect()
    assert ready["type"] == "ready"
    refused = await WidgetClient(http, bot.url, origin="https://other.example.com").connect()
    assert refused["code"] == "origin_not_allowed"


async def test_ping_pong_and_unknown_frame(bot, http):
    client = WidgetClient(http, bot.url)
    await client.connect()
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    await client.send({"type": "launch-rockets"})
    assert (await client.receive())["code"] == "bad_frame"


async def test_demo_page_and_widget_script_are_served(bot, http):
    async with http.get(bot.url + "/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert '<script src="/widget.js"' in await resp.text()
    async with http.get(bot.url + "/widget.js") as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        assert "/widget/ws" in await resp.text()


async def test_healthz_and_metrics(bot, http):
    async with http.get(bot.url + "/healthz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok", "redis": "ok", "web": "ok"}
    client = WidgetClient(http, bot.url)
    await client.connect()
    await client.ask("什么时候发货")
    async with http.get(bot.url + "/metrics") as resp:
        body = await resp.text()
    assert resp.status == 200
    assert 'xiaoer_messages_total{channel="web"}' in body and 'xiaoer_faq_total{outcome="answered"}' in body


async def test_healthz_reports_a_dead_redis(tmp_path, prefix, http):
    from bot.app import Xiaoer
    from bot.embedded import EmbeddedRedis
    from tests.conftest import make_config

    server = EmbeddedRedis(tmp_path / "r", persist=False)
    url = server.start()
    bot = Xiaoer(make_config(url, prefix))
    await bot.initialize()
    await bot.start()
    try:
        server.stop()
        async with http.get(bot.url + "/healthz") as resp:
            assert resp.status == 503
            body = json.loads(await resp.text())
            assert body["status"] == "error" and body["redis"].startswith("error")
    finally:
        await bot.stop()


@pytest.mark.parametrize("committed", ["before the history is read", "after the history is read"])
async def test_a_turn_committed_while_a_socket_opens_arrives_once_and_after_ready(bot, http, committed):
    """A second tab opens while the first one's turn commits: its events may reach the new socket
    before "ready". They are held and sent after it, unless the history already has them."""
    first = WidgetClient(http, bot.url)
    await first.connect()
    read_history = bot.web._history
    turn_done = asyncio.Event()

    async def slow_history(cid: str):
        if committed == "before the history is read":
            await turn_done.wait()
            await asyncio.sleep(0.2)  # the turn's event is on its way to the new socket too
            return await read_history(cid)
        entries = await read_history(cid)
        await turn_done.wait()
        await asyncio.sleep(0.2)
        return entries

    bot.web._history = slow_history
    try:
        second = WidgetClient(http, bot.url)
        opening = asyncio.create_task(second.connect(first.visitor, first.token))
        await asyncio.sleep(0.1)
        frames, ack = await first.ask("什么时候发货")
        turn_done.set()
        ready = await opening
    finally:
        bot.web._history = read_history
    assert ready["type"] == "ready", ready
    in_history = [m["id"] for m in ready["history"]]
    later = []
    try:
        while (frame := await second.receive(timeout=1.0))["type"] != "closed":
            later.append(frame)
    except asyncio.TimeoutError:
        pass  # nothing more came
    delivered = in_history + [f["id"] for f in later if f["type"] == "message"]
    reply_ids = [f["id"] for f in frames]
    assert all(delivered.count(i) == 1 for i in reply_ids), (in_history, later)
    assert (set(reply_ids) <= set(in_history)) == (committed == "before the history is read")
    await first.close()
    await second.close()
