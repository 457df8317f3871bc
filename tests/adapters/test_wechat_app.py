"""WeChat through the whole bot: the adapter wired by the app, the outbox delivering agent replies and
notices by the customer-service API, with a local fake of the WeChat API and real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.phrasebook import Phrasebook
from tests.adapters.test_wechat import AES_KEY, TOKEN, Platform, new_msg_id, new_openid, text_xml
from tests.conftest import ROOT, Clock
from tests.desk_client import agent, handoff_sections
from tests.fake_wechat import FakeWeChat

PHRASES = Phrasebook.load(ROOT / "phrasebook")


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = await FakeWeChat().start()
    yield server
    await server.close()


def wechat_sections(fake: FakeWeChat) -> dict:
    return {"channels": {"wechat": {"enabled": True, "app_id": FakeWeChat.app_id, "app_secret": FakeWeChat.secret,
                                    "token": TOKEN, "encoding_aes_key": AES_KEY, "api_base_url": fake.url}}}


async def sent_texts(fake: FakeWeChat, count: int) -> list[str]:
    for _ in range(100):
        if len(fake.sent) >= count:
            break
        await asyncio.sleep(0.05)
    return [s.body["text"]["content"] for s in fake.sent]


async def test_wechat_buyer_gets_faq_passively_then_agent_replies_reassignment_and_rating_by_api(start_bot, fake, http, desks, clock: Clock):
    bot = await start_bot(**wechat_sections(fake), **handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    platform = Platform(http, bot.url + "/wechat/callback", clock)
    openid = new_openid()
    status, body = await platform.post(text_xml(openid, "什么时候发货", new_msg_id(), int(clock())), mode="safe")
    reply = platform.reply(body, "safe")
    assert status == 200 and reply is not None and "48" in reply["Content"] and fake.sent == []

    alice = desks(bot.url)
    await alice.connect("alice")
    status, body = await platform.post(text_xml(openid, "转人工", new_msg_id(), int(clock())), mode="safe")
    content = (platform.reply(body, "safe") or {})["Content"]
    assert PHRASES.text("system.handoff_request", "zh-CN") in content
    assert PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice") in content
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    assert cid == f"wechat:{openid}"

    bob = desks(bot.url)
    await bob.connect("bob")
    clock.now += 61
    await bob.expect("assigned")
    assert (await sent_texts(fake, 1))[0] == PHRASES.text("system.reassigned", "zh-CN", agent="Bob")
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 我是Bob，马上为您处理～"})
    assert (await sent_texts(fake, 2))[1] == "亲，您好😊 我是Bob，马上为您处理～"
    await bob.send({"type": "close", "conversation": cid})
    closing = (await sent_texts(fake, 3))[2]
    assert closing.startswith(PHRASES.text("system.closed_rating", "zh-CN")) and "5 — " in closing  # buttons as numbered text
    status, body = await platform.post(text_xml(openid, "5", new_msg_id(), int(clock())), mode="safe")
    assert (platform.reply(body, "safe") or {})["Content"] == PHRASES.text("system.rating_thanks", "zh-CN")
    assert all(s.touser == openid for s in fake.sent)


async def test_healthz_shows_the_wechat_api_degraded_and_the_bot_keeps_answering(start_bot, fake, http, clock: Clock):
    bot = await start_bot(**wechat_sections(fake))
    platform = Platform(http, bot.url + "/wechat/callback", clock)
    openid = new_openid()
    status, body = await platform.post(text_xml(openid, "你好", new_msg_id(), int(clock())), mode="safe")
    assert status == 200 and platform.reply(body, "safe") is not None
    await fake.close()  # the WeChat API is gone; a notice for the buyer waits in the outbox
    await bot.store.outbox_add("wechat", f"wechat:{openid}", [{"id": "n1", "from": "bot", "text": "稍等"}])
    for _ in range(100):
        async with http.get(bot.url + "/healthz") as resp:
            health = (resp.status, await resp.json())
        if health[1].get("wechat") == "degraded":
            break
        await asyncio.sleep(0.05)
    assert health == (200, {"status": "degraded", "redis": "ok", "web": "ok", "wechat": "degraded"})
    status, body = await platform.post(text_xml(openid, "什么时候发货", new_msg_id(), int(clock())), mode="safe")
    assert status == 200 and "48" in (platform.reply(body, "safe") or {})["Content"]  # passive replies need no API
