"""The Telegram channel against a local fake of the Bot API, with real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.faq import load_faq_files
from bot.phrasebook import Phrasebook
from tests.conftest import ROOT, Clock
from tests.desk_client import agent, handoff_sections
from tests.fake_telegram import FakeTelegram, update

PHRASES = Phrasebook.load(ROOT / "phrasebook")
SECRET = "s3cret-Token_1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()



def telegram_sections(fake: FakeTelegram, **extra: Any) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0, "public_url": "https://shop.example.com"},
        "channels": {"telegram": {"enabled": True, "token": "123:ABC", "webhook_secret": SECRET,
                                  "api_base_url": str(fake.server.make_url("")).rstrip("/")}},
        **extra,
    }


async def post(http: aiohttp.ClientSession, bot: Any, body: Any, secret: str | None = SECRET) -> aiohttp.ClientResponse:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    kwargs = {"json": body} if not isinstance(body, (bytes, str)) else {"data": body}
    async with http.post(bot.url + "/telegram/webhook", headers=headers, **kwargs) as resp:
        await resp.read()
        return resp


async def test_greeting_uses_the_first_name_and_faq_answers(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    assert (await post(http, bot, update(1, "你好"))).status == 200
    sent = await fake.wait_sent(1)
    assert sent[0]["text"] == PHRASES.text("system.welcome_named", "zh-CN", name="Amy", shop="小二优选")
    assert int(sent[0]["chat_id"]) == 1001
    assert (await post(http, bot, update(2, "什么时候发货"))).status == 200
    assert "48" in (await fake.wait_sent(2))[1]["text"]


async def test_wrong_or_missing_secret_is_403_and_bad_bodies_are_400(start_bot, fake, http, redis_client, prefix):
    bot = await start_bot(**telegram_sections(fake))
    assert (await post(http, bot, update(1, "你好"), secret="wrong")).status == 403
    assert (await post(http, bot, update(1, "你好"), secret=None)).status == 403
    assert (await post(http, bot, b"{not json")).status == 400
    assert (await post(http, bot, {"hello": "world"})).status == 400
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}conv:*")] == []
    assert fake.sent == []


async def test_duplicate_update_id_gets_one_reply(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    results = await asyncio.gather(*(post(http, bot, update(7, "在吗")) for _ in range(3)))
    assert [r.status for r in results] == [200, 200, 200]
    await fake.wait_sent(1)
    await asyncio.sleep(0.3)
    assert len(fake.sent) == 1


async def test_429_retry_after_is_honoured(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    fake.fail_next = [1]
    assert (await post(http, bot, update(1, "在吗"))).status == 200
    assert len(await fake.wait_sent(1)) == 1
    assert [name for name, _ in fake.calls].count("sendMessage") == 2


async def test_long_texts_are_split_at_4096(start_bot, fake):
    bot = await start_bot(**telegram_sections(fake))
    assert bot.telegram is not None
    text = ("这是一段很长的说明。" * 1000)[:9000]
    await bot.telegram.send(1001, {"text": text})
    parts = [m["text"] for m in fake.sent]
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts) and "".join(parts) == text


async def test_handoff_agent_reply_reassignment_notice_and_rating_with_inline_keyboard(start_bot, fake, http, desks, clock: Clock):
    sections = handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"]))
    bot = await start_bot(**telegram_sections(fake), **sections)
    alice = desks(bot.url)
    await alice.connect("alice")
    await post(http, bot, update(1, "我要转人工"))
    sent = await fake.wait_sent(2)
    assert sent[0]["text"] == PHRASES.text("system.handoff_request", "zh-CN", name="Amy")
    assert sent[1]["text"] == PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice")
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    assert cid == "telegram:1001"
    bob = desks(bot.url)
    await bob.connect("bob")
    clock.now += 61
    await bob.expect("assigned")
    assert (await fake.wait_sent(3))[2]["text"] == PHRASES.text("system.reassigned", "zh-CN", agent="Bob")  # via the outbox
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 我是Bob，马上为您处理～"})
    assert (await fake.wait_sent(4))[3]["text"] == "亲，您好😊 我是Bob，马上为您处理～"
    await bob.send({"type": "close", "conversation": cid})
    closing = (await fake.wait_sent(5))[4]
    assert closing["text"] == PHRASES.text("system.closed_rating", "zh-CN")
    keyboard = closing["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == ["5", "4", "3", "2", "1"]
    assert (await post(http, bot, update(2, callback="5"))).status == 200
    assert (await fake.wait_sent(6))[5]["text"] == PHRASES.text("system.rating_thanks", "zh-CN")
    assert "answerCallbackQuery" in [name for name, _ in fake.calls]


async def test_pictures_get_a_friendly_request_for_words(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    await post(http, bot, update(1, "你好"))
    await post(http, bot, update(2, photo=True))
    assert (await fake.wait_sent(2))[1]["text"] == PHRASES.text("system.unsupported", "zh-CN")


def test_webhook_mode_needs_a_secret_and_a_public_https_url():
    from bot.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"channels": {"telegram": {"enabled": True, "token": "1:A", "webhook_secret": "has space"}}}, env={})
    assert "channels.telegram.webhook_secret: required in webhook mode: 1-256 of A-Z a-z 0-9 _ -" in info.value.problems
    assert any(p.startswith("server.public_url: ") for p in info.value.problems)


async def test_polling_mode_reads_updates_without_a_webhook(start_bot, fake):
    fake.updates = [update(11, "在吗")]
    sections = telegram_sections(fake)
    sections["channels"]["telegram"] |= {"mode": "polling", "webhook_secret": ""}
    await start_bot(**sections)
    assert (await fake.wait_sent(1))[0]["text"] == PHRASES.text("system.welcome_named", "zh-CN", name="Amy", shop="小二优选")
    assert "deleteWebhook" in [name for name, _ in fake.calls]


# ---- faults at the edge: a failing Bot API, an unreachable one, a rejected token, odd updates ----
async def bot_texts(bot: Any, cid: str = "telegram:1001") -> list[str]:
    return [e.text for e in await bot.store.history(cid) if e.sender != "visitor"]


async def health(http: aiohttp.ClientSession, bot: Any) -> tuple[int, dict[str, Any]]:
    async with http.get(bot.url + "/healthz") as resp:
        return resp.status, await resp.json()


async def test_bot_api_failing_for_a_while_each_reply_is_delivered_once_in_order(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    assert await bot.telegram.connected()
    fake.fail_status = [500, 429, 502]
    for i, text in enumerate(["你好", "什么时候发货", "怎么退货", "包邮吗"], start=1):
        assert (await post(http, bot, update(i, text))).status == 200  # committed: 200 even though the API fails
    expected = await bot_texts(bot)
    assert len(expected) >= 4
    sent = await fake.wait_sent(len(expected), timeout=30)
    assert [m["text"] for m in sent] == expected
    await asyncio.sleep(0.5)
    assert len(fake.sent) == len(expected)  # none twice
    assert fake.fail_status == []


async def test_a_reply_the_api_refused_at_the_moment_of_the_turn_is_sent_later(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    assert await bot.telegram.connected()
    fake.down = True
    assert (await post(http, bot, update(1, "什么时候发货"))).status == 200
    assert (await post(http, bot, update(1, "什么时候发货"))).status == 200  # Telegram's resend: no second turn
    await asyncio.sleep(0.8)
    assert fake.sent == []
    assert (await health(http, bot))[1]["telegram"] == "degraded"
    fake.down = False
    expected = await bot_texts(bot)
    sent = await fake.wait_sent(len(expected), timeout=30)
    assert [m["text"] for m in sent] == expected and len(expected) == 2
    await asyncio.sleep(0.3)
    assert (await health(http, bot)) == (200, {"status": "ok", "redis": "ok", "web": "ok", "telegram": "ok"})


async def test_starting_with_the_bot_api_unreachable_keeps_everything_else_up(start_bot, http, caplog):
    from tests.widget_client import WidgetClient
    from tests.desk_client import DeskClient

    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    sections = handoff_sections(agent("alice", ["presales"]))
    bot = await start_bot(**sections, server={"host": "127.0.0.1", "port": 0, "public_url": "https://shop.example.com"},
                          channels={"telegram": {"enabled": True, "token": "123:ABC", "webhook_secret": SECRET,
                                                 "api_base_url": f"http://127.0.0.1:{closed}"}})
    for _ in range(100):
        status, body = await health(http, bot)
        if body.get("telegram") == "degraded":
            break
        await asyncio.sleep(0.05)
    assert status == 200 and body == {"status": "degraded", "redis": "ok", "web": "ok", "telegram": "degraded"}
    widget = WidgetClient(http, bot.url)
    await widget.connect()
    frames, ack = await widget.ask("什么时候发货")
    assert ack["type"] == "ack" and any("48" in f.get("text", "") for f in frames)
    desk = DeskClient(bot.url)
    try:
        assert (await desk.connect("alice"))["type"] == "hello"
    finally:
        await desk.close()
        await widget.close()
    # The webhook still takes updates; their replies wait in the outbox.
    assert (await post(http, bot, update(1, "你好"))).status == 200
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith(("adapters", "bot"))]


async def test_a_rejected_token_disables_the_channel_with_one_line_naming_the_key(start_bot, fake, http, caplog):
    from tests.widget_client import WidgetClient

    fake.reject_token = True
    bot = await start_bot(**telegram_sections(fake))
    assert await bot.telegram.connected() is False
    lines = [r.getMessage() for r in caplog.records if "channels.telegram.token" in r.getMessage()]
    assert len(lines) == 1 and "disabled" in lines[0] and "123:ABC" not in lines[0]
    assert (await health(http, bot)) == (200, {"status": "degraded", "redis": "ok", "web": "ok", "telegram": "disabled"})
    assert not [r for r in caplog.records if r.exc_info]
    assert "123:ABC" not in caplog.text
    widget = WidgetClient(http, bot.url)
    await widget.connect()
    assert (await widget.ask("你好"))[1]["type"] == "ack"
    await widget.close()


def odd_updates() -> list[Any]:
    """Shapes seen in the wild and in fuzzing: wrong types, lone surrogates, missing fields, huge ints."""
    good = update(90, "你好")
    def edit(path: str, value: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(good))
        node = body
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
        return body
    return [
        edit("message.chat.id", "abc"), edit("message.text", 5), edit("message.text", "\ud800 lone"),
        edit("message.from.first_name", "\udfff"), edit("message.chat.id", 10**30), edit("update_id", 10**30),
        edit("message.chat", KeyError), edit("message.from", KeyError), edit("message.date", 10**20),
        edit("message.chat.type", None), edit("message", []), edit("message", "x"), edit("update_id", True),
        edit("message.from.language_code", 7), edit("message.chat.id", 1.5), edit("message.text", {"a": 1}),
        {"update_id": 5, "callback_query": {"id": 3, "from": {"id": "x"}, "data": 9}},
        {"update_id": 6, "callback_query": {"id": "q", "from": {"id": 1, "is_bot": False, "first_name": "A"}, "chat_instance": "c",
                                            "data": "5", "message": {"message_id": 1, "date": 0, "chat": {"id": "no", "type": "private"}}}},
        {"update_id": -1}, {"update_id": "1"}, [], "text", 12, None, {"update_id": 7},
        {"update_id": 8, "edited_message": {"weird": True}}, {"update_id": 9, "message": None},
    ]


async def test_any_json_gets_200_or_400_never_500(start_bot, fake, http, redis_client, prefix):
    bot = await start_bot(**telegram_sections(fake))
    statuses = []
    for body in odd_updates():
        resp = await post(http, bot, json.dumps(body).encode())
        statuses.append(resp.status)
    assert set(statuses) <= {200, 400} and 200 in statuses and 400 in statuses
    deep = b"[" * 100000 + b"]" * 100000
    assert (await post(http, bot, deep)).status == 400
    assert (await post(http, bot, b"\xff\xfe{}")).status == 400
    # The lone surrogate is the only odd one that is still a readable buyer message: answered, cleaned.
    texts = [e.text for e in await bot.store.history("telegram:1001") if e.sender == "visitor"]
    assert texts == ["\ufffd lone"]
    conversations = {k.split("{", 1)[1].split("}", 1)[0] async for k in redis_client.scan_iter(match=f"{prefix}conv:*")}
    assert conversations == {"telegram:1001"}


# ---- "did you mean" (bot/understanding.py): inline buttons on Telegram ----
UNSURE = "衣服洗完会不会变小"  # the demo FAQ has washing, fit and fabric entries: the bot asks which
DEMO_FAQ = {e.id: e for e in load_faq_files([ROOT / "phrasebook" / "faq" / "demo-shop.toml"])}


async def test_telegram_gets_inline_buttons_for_did_you_mean(start_bot, fake, http):
    bot = await start_bot(**telegram_sections(fake))
    assert (await post(http, bot, update(1, "你好"))).status == 200
    await fake.wait_sent(1)
    assert (await post(http, bot, update(2, UNSURE))).status == 200
    offer = (await fake.wait_sent(2))[1]
    keyboard = offer["reply_markup"]["inline_keyboard"]
    assert offer["text"].startswith(PHRASES.text("system.did_you_mean", "zh-CN"))
    choices = [row[0]["callback_data"] for row in keyboard]
    labels = [row[0]["text"] for row in keyboard]
    pick = labels.index(DEMO_FAQ["washing"].questions[0])
    assert (await post(http, bot, update(3, callback=choices[pick]))).status == 200
    assert (await fake.wait_sent(3))[2]["text"] == DEMO_FAQ["washing"].answer


async def test_two_processes_deliver_one_chat_in_order_while_the_api_fails(start_bot, fake, http):
    first, second = await start_bot(**telegram_sections(fake)), await start_bot(**telegram_sections(fake))
    assert await first.telegram.connected() and await second.telegram.connected()
    fake.fail_status = [500, 429, 500]
    texts = ["你好", "什么时候发货", "怎么退货", "包邮吗", "有发票吗", "在吗"]
    for i, text in enumerate(texts, start=1):  # Telegram's updates land on either process
        assert (await post(http, (first, second)[i % 2], update(i, text))).status == 200
    expected = await bot_texts(first)
    assert len(expected) >= len(texts)
    sent = await fake.wait_sent(len(expected), timeout=30)
    assert [m["text"] for m in sent] == expected
    await asyncio.sleep(0.5)
    assert len(fake.sent) == len(expected)
