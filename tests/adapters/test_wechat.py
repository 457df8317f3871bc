"""The WeChat Official Account channel: callbacks built exactly as the platform builds them (real sha1
signatures, wechatpy's WeChatCrypto for the AES modes), a real engine and Redis, and a local fake of
the WeChat API for the customer-service messages and the access_token."""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.crypto import WeChatCrypto

from adapters.wechat import MAX_BODY, WeChatAdapter, sign
from bot.config import WeChatChannel
from bot.delivery import Deliverer, DeliveryError
from bot.faq import load_faq_files
from bot.phrasebook import Phrasebook
from bot.store import Store, WeChatTokens
from bot.types import Inbound, Kind, Outcome, Sender, TranscriptEntry
from tests.conftest import ROOT, Clock
from tests.fake_wechat import FakeWeChat

PHRASES = Phrasebook.load(ROOT / "phrasebook")
TOKEN = "xiaoerCallbackToken1"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters, as the console shows
GH_ID = "gh_0123456789ab"
WINDOW = 48 * 3600


# ---- the platform side ---------------------------------------------------------------------------
def text_xml(openid: str, content: str, msg_id: int, create_time: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def event_xml(openid: str, event: str, create_time: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event></xml>")


def image_xml(openid: str, msg_id: int, create_time: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId><![CDATA[m1]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId></xml>")


@dataclass
class Platform:
    """Posts callbacks the way WeChat does, in plain, compatible or safe (AES) mode."""

    http: aiohttp.ClientSession
    url: str
    clock: Clock
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, FakeWeChat.app_id))

    def now(self) -> int:
        return int(self.clock())

    def signed(self, timestamp: int | None = None) -> dict[str, str]:
        ts, nonce = str(self.now() if timestamp is None else timestamp), str(random.randrange(10**9))
        return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}

    def envelope(self, xml: str, mode: str, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        query = self.signed(timestamp)
        if mode == "plain":
            return query, xml
        encrypted = xmltodict.parse(self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"]))["xml"]
        query |= {"encrypt_type": "aes", "msg_signature": encrypted["MsgSignature"]}
        if mode == "compatible":  # the plaintext fields and the Encrypt field side by side
            return query, xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypted['Encrypt']}]]></Encrypt></xml>")
        to_user = f"<ToUserName><![CDATA[{GH_ID}]]></ToUserName>"
        return query, f"<xml>{to_user}<Encrypt><![CDATA[{encrypted['Encrypt']}]]></Encrypt></xml>"

    async def post(self, xml: str, mode: str = "plain", timestamp: int | None = None) -> tuple[int, str]:
        query, body = self.envelope(xml, mode, timestamp)
        return await self.raw(query, body)

    async def raw(self, query: dict[str, str], body: str | bytes) -> tuple[int, str]:
        async with self.http.post(self.url, params=query, data=body, headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()

    def reply(self, body: str, mode: str) -> dict[str, Any] | None:
        """The passive reply as a dict, checking and decrypting it in the AES modes; None for "success"."""
        if body in ("success", ""):
            return None
        if mode != "plain":
            outer = xmltodict.parse(body)["xml"]
            assert outer["MsgSignature"] == sign(TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
            body = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        return dict(xmltodict.parse(body)["xml"])


def new_openid() -> str:
    return "o" + secrets.token_urlsafe(20).replace("-", "_")[:27]


def new_msg_id() -> int:
    return random.randrange(10**18, 10**19)


# ---- fixtures ------------------------------------------------------------------------------------
@dataclass
class WeChat:
    adapter: WeChatAdapter
    platform: Platform
    calls: list[tuple[Inbound, str | None]]
    bot: Any
    failures: list[tuple[str, dict[str, Any], str]]  # what the outbox reported as not delivered


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = await FakeWeChat().start()
    yield server
    await server.close()


@pytest.fixture
async def cache(redis_url: str, prefix: str) -> AsyncIterator[WeChatTokens]:
    store = Store.from_url(redis_url, prefix=prefix)
    yield store.wechat_tokens(FakeWeChat.app_id)
    await store.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Make = Callable[..., Awaitable[WeChat]]


@pytest.fixture
async def make_wechat(start_bot, fake, cache, clock, http) -> AsyncIterator[Make]:
    """An adapter on its own aiohttp server, submitting to a real bot's engine (one bot per test)."""
    bots: list[Any] = []
    made: list[tuple[WeChatAdapter, TestServer, Deliverer]] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(passive_budget: float = 4.0, submit: Callable[..., Awaitable[Outcome]] | None = None,
                   delay: float = 0.0, api_timeout: float | None = None) -> WeChat:
        if not bots:
            bots.append(await start_bot())
        bot = bots[0]
        calls: list[tuple[Inbound, str | None]] = []

        async def spy(inbound: Inbound, origin: str | None) -> Outcome:
            calls.append((inbound, origin))
            await asyncio.sleep(delay)
            return await (submit or bot.engine.submit)(inbound, origin)

        config = WeChatChannel(enabled=True, app_id=fake.app_id, app_secret=fake.secret, token=TOKEN,
                               encoding_aes_key=AES_KEY, api_base_url=fake.url)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=api_timeout)) if api_timeout else None
        adapter = WeChatAdapter(config, spy, cache, bot.store.outbox_add, clock=clock, passive_budget=passive_budget, http=session)
        failures: list[tuple[str, dict[str, Any], str]] = []

        async def failed(cid: str, message: dict[str, Any], reason: str) -> None:
            failures.append((cid, message, reason))
        deliverer = Deliverer(bot.store, {"wechat": adapter}, failed)  # this "process"'s outbox worker
        await deliverer.start()
        app = web.Application()
        adapter.mount(app)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        made.append((adapter, server, deliverer))
        sessions.extend([session] if session else [])
        return WeChat(adapter, Platform(http, str(server.make_url("/wechat/callback")), clock), calls, bot, failures)

    yield make
    for adapter, server, deliverer in reversed(made):
        await deliverer.stop()
        await adapter.close()
        await server.close()
    for session in sessions:
        await session.close()


async def wechat_keys(redis_client: aioredis.Redis, prefix: str) -> list[str]:
    conv = [k async for k in redis_client.scan_iter(match=f"{prefix}conv:{{wechat:*")]
    seen = [k async for k in redis_client.scan_iter(match=f"{prefix}wechat:*")]
    return conv + seen


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def stub(*entries: TranscriptEntry) -> Callable[[Inbound, str | None], Awaitable[Outcome]]:
    async def submit(inbound: Inbound, origin: str | None) -> Outcome:
        return Outcome(replies=entries)
    return submit


# ---- verification --------------------------------------------------------------------------------
async def test_get_verification_echoes_echostr(make_wechat):
    wx = await make_wechat()
    p = wx.platform
    async with p.http.get(p.url, params={**p.signed(), "echostr": "7395712934"}) as resp:
        assert resp.status == 200 and await resp.text() == "7395712934"


@pytest.mark.parametrize("tamper", ["signature", "stale", "missing", "token", "aes_flag", "non_ascii"])
async def test_get_verification_refused(make_wechat, tamper):
    wx = await make_wechat()
    p = wx.platform
    query = p.signed(p.now() - 301 if tamper == "stale" else None) | {"echostr": "42"}
    if tamper == "signature":
        query["signature"] = query["signature"][::-1]
    elif tamper == "missing":
        del query["timestamp"]
    elif tamper == "token":  # signed with another account's token
        query["signature"] = sign("someone-else", query["timestamp"], query["nonce"])
    elif tamper == "aes_flag":  # a verification request is always checked by its signature
        query = {k: v for k, v in query.items() if k != "signature"} | {"encrypt_type": "aes"}
    elif tamper == "non_ascii":
        query["signature"] = "签名" * 20
    async with p.http.get(p.url, params=query) as resp:
        assert resp.status == 403 and await resp.text() == ""


# ---- messages ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["plain", "compatible", "aes"])
async def test_text_message_gets_faq_answer_in_the_passive_reply(make_wechat, fake, mode):
    wx = await make_wechat()
    openid, msg_id = new_openid(), new_msg_id()
    status, body = await wx.platform.post(text_xml(openid, "什么时候发货", msg_id, wx.platform.now()), mode)
    assert status == 200
    reply = wx.platform.reply(body, mode)
    assert reply is not None
    assert reply["ToUserName"] == openid and reply["FromUserName"] == GH_ID and reply["MsgType"] == "text"
    welcome = PHRASES.text("system.welcome", "zh-CN", shop="小二优选")
    assert reply["Content"].startswith(welcome + "\n\n") and "48小时内发货" in reply["Content"]
    inbound, origin = wx.calls[0]
    assert (inbound.conversation_id, inbound.message_id, inbound.kind, origin) == (f"wechat:{openid}", str(msg_id), Kind.TEXT, "wechat")
    history = await wx.bot.store.history(f"wechat:{openid}")
    assert [e.sender for e in history] == [Sender.VISITOR, Sender.BOT, Sender.BOT]
    assert fake.sent == [] and fake.tokens == []  # passive replies need no API call


async def test_concurrent_retries_of_one_msgid_get_exactly_one_reply(make_wechat, fake):
    wx = await make_wechat(delay=0.3)  # the first try is still open when the retries arrive
    openid, msg_id = new_openid(), new_msg_id()
    xml = text_xml(openid, "怎么退货", msg_id, wx.platform.now())
    results = await asyncio.gather(*(wx.platform.post(xml, mode) for mode in ("aes", "aes", "aes")))
    replies = [wx.platform.reply(body, "aes") for status, body in results if status == 200]
    assert len(replies) == 3 and sum(r is not None for r in replies) == 1
    status, body = await wx.platform.post(xml, "aes")  # a late retry
    assert (status, body) == (200, "success")
    history = await wx.bot.store.history(f"wechat:{openid}")
    assert sum(e.sender is Sender.VISITOR for e in history) == 1
    await asyncio.sleep(0.1)
    assert fake.sent == []


@pytest.mark.parametrize(("budget", "delay"), [(0.0, 0.0), (0.2, 0.6)])
async def test_slow_answer_falls_back_to_the_customer_service_api(make_wechat, fake, budget, delay):
    wx = await make_wechat(passive_budget=budget, delay=delay)
    openid = new_openid()
    status, body = await wx.platform.post(text_xml(openid, "什么时候发货", new_msg_id(), wx.platform.now()), "aes")
    assert (status, body) == (200, "success")
    await eventually(lambda: len(fake.sent) == 1)
    sent = fake.sent[0]
    assert sent.touser == openid and sent.body["msgtype"] == "text" and "48小时内发货" in sent.content
    assert sent.token == fake.tokens[0] and len(fake.tokens) == 1


async def test_long_reply_buttons_and_cdata_end_marker(make_wechat, fake):
    tricky = TranscriptEntry("r~0", Sender.AGENT, "订单号 <a&b> ]]> 已收到\x07", 0.0, buttons=(("查物流", "1"), ("退货", "2")))
    long = TranscriptEntry("r~1", Sender.BOT, "\n".join(f"第{i}行：小二正在为您查询，请稍候。" for i in range(120)), 0.0)
    wx = await make_wechat(submit=stub(tricky, long))
    openid = new_openid()
    status, body = await wx.platform.post(text_xml(openid, "查一下", new_msg_id(), wx.platform.now()), "plain")
    content = wx.platform.reply(body, "plain")["Content"]
    assert content.startswith("订单号 <a&b> ]]> 已收到\n\n1 — 查物流\n2 — 退货\n\n第0行")
    assert len(content.encode()) <= 2000
    await eventually(lambda: len(fake.sent) >= 2)
    await asyncio.sleep(0.1)
    rest = [s.content for s in fake.sent]
    assert all(len(r.encode()) <= 2000 for r in rest)
    assert "\n".join([content, *rest]).endswith("第119行：小二正在为您查询，请稍候。")
    assert sum(x.count("行：") for x in [content, *rest]) == 120


async def test_subscribe_gets_the_welcome_and_unsubscribe_is_submitted_silently(make_wechat, redis_client, prefix):
    wx = await make_wechat()
    openid, now = new_openid(), wx.platform.now()
    status, body = await wx.platform.post(event_xml(openid, "subscribe", now), "aes")
    assert wx.platform.reply(body, "aes")["Content"] == PHRASES.text("system.welcome", "zh-CN", shop="小二优选")
    assert (wx.calls[0][0].message_id, wx.calls[0][0].kind) == (f"{openid}:{now}", Kind.FOLLOW)
    status, body = await wx.platform.post(event_xml(openid, "unsubscribe", now + 1), "aes")
    assert (status, body) == (200, "success") and wx.calls[1][0].kind == Kind.UNFOLLOW


async def test_a_picture_is_unsupported(make_wechat):
    wx = await make_wechat()
    status, body = await wx.platform.post(image_xml(new_openid(), new_msg_id(), wx.platform.now()), "plain")
    assert wx.calls[0][0].kind == Kind.UNSUPPORTED
    assert wx.platform.reply(body, "plain")["Content"] == PHRASES.text("system.unsupported", "zh-CN", name="")


async def test_a_late_reply_the_platform_refuses_is_reported(make_wechat, fake):
    wx = await make_wechat(passive_budget=0.0)
    reported = wx.failures
    fake.fail(45015)
    openid = new_openid()
    status, body = await wx.platform.post(text_xml(openid, "什么时候发货", new_msg_id(), wx.platform.now()), "plain")
    assert (status, body) == (200, "success")
    await eventually(lambda: bool(reported))
    cid, message, reason = reported[0]
    assert cid == f"wechat:{openid}" and "48小时内发货" in message["text"] and "45015" in reason
    assert fake.sent == []


async def test_a_failing_turn_answers_success_without_a_traceback(make_wechat):
    async def broken(inbound: Inbound, origin: str | None) -> Outcome:
        raise RuntimeError("boom")
    wx = await make_wechat(submit=broken)
    status, body = await wx.platform.post(text_xml(new_openid(), "在吗", new_msg_id(), wx.platform.now()), "plain")
    assert (status, body) == (200, "success")


# ---- refused requests: nothing submitted, nothing stored ------------------------------------------
BOMB = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        '<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>{now}</CreateTime>'
        '<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>')
XXE = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>{now}</CreateTime>'
       '<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>')
NO_MSGTYPE = ('<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>{now}</CreateTime>'
              '<Content>hi</Content><MsgId>3</MsgId></xml>')


@pytest.mark.parametrize(
    ("case", "mode", "status"),
    [("bomb", "plain", 400), ("xxe", "plain", 400), ("malformed", "plain", 400), ("no_msgtype", "plain", 400),
     ("bomb", "aes", 400), ("xxe", "compatible", 400), ("wrong_root", "plain", 400), ("bad_openid", "plain", 400),
     ("bad_signature", "plain", 403), ("bad_msg_signature", "aes", 403), ("stale", "aes", 403),
     ("future", "plain", 403), ("oversize", "plain", 413), ("oversize_chunked", "plain", 413)],
)
async def test_refused_requests_store_nothing(make_wechat, fake, redis_client, prefix, case, mode, status):
    wx = await make_wechat()
    p = wx.platform
    openid, now = new_openid(), p.now()
    xml = {
        "bomb": BOMB, "xxe": XXE, "no_msgtype": NO_MSGTYPE,
        "malformed": "<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</From",
        "wrong_root": "<msg><FromUserName>{openid}</FromUserName><MsgType>text</MsgType></msg>",
        "bad_openid": text_xml("bad openid!", "hi", 4, now),
    }.get(case, text_xml(openid, "什么时候发货", new_msg_id(), now)).format(openid=openid, now=now)
    timestamp = {"stale": now - 301, "future": now + 301}.get(case)
    query, body = p.envelope(xml, mode, timestamp)
    if case == "bad_signature":
        query["signature"] = sign(TOKEN, query["timestamp"], query["nonce"] + "1")
    elif case == "bad_msg_signature":
        query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], "forged")
    if case == "oversize":
        body = xml.replace("什么时候发货", "发" * (MAX_BODY // 3 + 1))
        got = await p.raw(query, body.encode())
    elif case == "oversize_chunked":
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY // 1024 + 2):
                yield b" " * 1024
        got = await p.raw(query, chunks())  # type: ignore[arg-type]
    else:
        got = await p.raw(query, body)
    assert got == (status, "")
    assert wx.calls == []
    assert await wechat_keys(redis_client, prefix) == []
    assert fake.sent == [] and fake.tokens == []


# ---- the customer-service API ---------------------------------------------------------------------
async def buyer_writes(wx: WeChat, openid: str, text: str = "在吗") -> None:
    status, _ = await wx.platform.post(text_xml(openid, text, new_msg_id(), wx.platform.now()), "aes")
    assert status == 200


def agent_message(i: int) -> dict[str, Any]:
    return TranscriptEntry(f"agent-{i}", Sender.AGENT, f"第{i}条回复", 0.0, agent="alice").to_json()


async def test_five_api_messages_per_buyer_message_within_48_hours(make_wechat, fake, clock):
    wx = await make_wechat()
    openid = new_openid()
    cid = f"wechat:{openid}"
    with pytest.raises(DeliveryError) as never_wrote:
        await wx.adapter.deliver(cid, agent_message(0))
    assert never_wrote.value.permanent

    await buyer_writes(wx, openid)
    for i in range(1, 6):
        clock.now += 60
        await wx.adapter.deliver(cid, agent_message(i))
    await wx.adapter.deliver(cid, agent_message(5))  # a retried outbox entry does not count twice
    with pytest.raises(DeliveryError) as sixth:
        await wx.adapter.deliver(cid, agent_message(6))
    assert sixth.value.permanent and "quota" in sixth.value.reason
    assert [s.content for s in fake.sent] == [f"第{i}条回复" for i in (1, 2, 3, 4, 5, 5)]

    await buyer_writes(wx, openid, "好的")  # a new buyer message opens a new window
    await wx.adapter.deliver(cid, agent_message(7))
    assert fake.sent[-1].content == "第7条回复"

    clock.now += WINDOW
    with pytest.raises(DeliveryError) as late:
        await wx.adapter.deliver(cid, agent_message(8))
    assert late.value.permanent and "48" in late.value.reason
    assert len(fake.sent) == 7


@pytest.mark.parametrize(
    ("errcode", "http_status", "permanent"),
    [(45015, None, True), (45047, None, True), (43004, None, True), (-1, None, False), (None, 503, False),
     (None, 429, False)],
)
async def test_platform_refusals(make_wechat, fake, errcode, http_status, permanent):
    wx = await make_wechat()
    openid = new_openid()
    await buyer_writes(wx, openid)
    if errcode is not None:
        fake.fail(errcode)
    else:
        fake.fail_http(http_status)
    with pytest.raises(DeliveryError) as refused:
        await wx.adapter.deliver(f"wechat:{openid}", agent_message(1))
    assert refused.value.permanent is permanent
    assert fake.sent == [] and "token" not in refused.value.reason


async def test_a_slow_api_is_a_transient_failure(make_wechat, fake):
    wx = await make_wechat(api_timeout=0.3)
    openid = new_openid()
    await buyer_writes(wx, openid)
    fake.delay = 1.0
    with pytest.raises(DeliveryError) as slow:
        await wx.adapter.deliver(f"wechat:{openid}", agent_message(1))
    assert not slow.value.permanent and "access_token" not in slow.value.reason


async def test_invalid_token_refreshes_once_and_retries_once(make_wechat, fake, redis_client, prefix):
    wx = await make_wechat()
    openid = new_openid()
    cid = f"wechat:{openid}"
    await buyer_writes(wx, openid)
    await wx.adapter.deliver(cid, agent_message(1))
    assert fake.tokens == ["token-1"]
    ttl = await redis_client.ttl(f"{prefix}wechat:{fake.app_id}:token")
    assert 6800 < ttl <= 6900  # refreshed 5 minutes before WeChat's 7200 s

    fake.revoke()  # someone fetched a new token elsewhere: ours is invalid (40001)
    await wx.adapter.deliver(cid, agent_message(2))
    assert len(fake.tokens) == 3 and fake.sent[-1].token == "token-3"
    assert [a.token for a in fake.attempts[-2:]] == ["token-1", "token-3"]

    fake.fail(40001, times=2)  # still refused after the refresh: give up (transient), no loop
    with pytest.raises(DeliveryError) as refused:
        await wx.adapter.deliver(cid, agent_message(3))
    assert not refused.value.permanent and len(fake.tokens) == 4 and len(fake.attempts) == 5


async def test_one_refresher_across_processes(make_wechat, fake):
    first, second = await make_wechat(), await make_wechat()  # two "processes" sharing Redis
    fake.delay = 0.1
    openids = [new_openid() for _ in range(5)]
    for openid in openids:
        await buyer_writes(first, openid)
    await asyncio.gather(*(wx.adapter.deliver(f"wechat:{o}", agent_message(i))
                           for i, o in enumerate(openids) for wx in (first, second)))
    assert fake.tokens == ["token-1"] and len(fake.sent) == 10


async def test_token_refused_by_the_platform_is_permanent(make_wechat, fake):
    wx = await make_wechat()
    openid = new_openid()
    await buyer_writes(wx, openid)
    fake.secret = "rotated-in-the-console"
    with pytest.raises(DeliveryError) as refused:
        await wx.adapter.deliver(f"wechat:{openid}", agent_message(1))
    assert refused.value.permanent and "40125" in refused.value.reason and fake.secret not in refused.value.reason


async def test_a_late_reply_survives_a_failing_api_and_is_sent_once(make_wechat, fake):
    wx = await make_wechat(passive_budget=0.0)  # every reply misses the passive window: outbox
    fake.fail_http(500, times=2)
    openid = new_openid()
    status, body = await wx.platform.post(text_xml(openid, "什么时候发货", new_msg_id(), wx.platform.now()), "plain")
    assert (status, body) == (200, "success")
    await eventually(lambda: len(fake.sent) == 1, timeout=10)
    await asyncio.sleep(0.3)
    assert len(fake.sent) == 1 and "48小时内发货" in fake.sent[0].content and len(fake.attempts) == 3
    assert wx.adapter.health.state == "ok"


async def test_a_refused_secret_disables_api_sends_with_one_line_naming_the_key(make_wechat, fake, caplog):
    wx = await make_wechat()
    openid = new_openid()
    await buyer_writes(wx, openid)
    fake.secret = "rotated-in-the-console"
    for i in range(3):
        with pytest.raises(DeliveryError) as refused:
            await wx.adapter.deliver(f"wechat:{openid}", agent_message(i))
        assert refused.value.permanent
    lines = [r.getMessage() for r in caplog.records if "channels.wechat.app_secret" in r.getMessage()]
    assert len(lines) == 1 and "disabled" in lines[0] and wx.adapter.health.state == "disabled"
    assert len(fake.tokens) == 0  # asked once, then no more calls until the config is fixed


# ---- "did you mean" (bot/understanding.py): a numbered list on WeChat ----
UNSURE = "衣服洗完会不会变小"  # the demo FAQ has washing, fit and fabric entries: the bot asks which
DEMO_FAQ = {e.id: e for e in load_faq_files([ROOT / "phrasebook" / "faq" / "demo-shop.toml"])}


async def test_wechat_gets_a_numbered_list_and_a_reply_of_a_number_picks(make_wechat):
    wx = await make_wechat()
    openid = new_openid()
    await wx.platform.post(text_xml(openid, "你好", new_msg_id(), wx.platform.now()))
    status, body = await wx.platform.post(text_xml(openid, UNSURE, new_msg_id(), wx.platform.now()))
    content = wx.platform.reply(body, "plain")["Content"]
    lines = content.splitlines()
    assert lines[0] == PHRASES.text("system.did_you_mean", "zh-CN")
    numbered = [line for line in lines if line[:1].isdigit()]
    assert 1 <= len(numbered) <= 3 and numbered[0].startswith("1")
    pick = next(line for line in numbered if DEMO_FAQ["washing"].questions[0] in line)
    status, body = await wx.platform.post(text_xml(openid, pick[0], new_msg_id(), wx.platform.now()))
    assert status == 200 and wx.platform.reply(body, "plain")["Content"] == DEMO_FAQ["washing"].answer
