"""The WeCom customer-service channel: callbacks encrypted exactly as WeCom does (wechatpy's work
crypto, real msg_signature), a real engine and Redis, and a local fake of the kf API from which the
adapter pulls the messages and through which it sends the replies."""

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
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto

from adapters.wecom_kf import MAX_BODY, WeComKfAdapter, conversation_id, parse_conversation
from adapters.wx_common import sign
from bot.config import ConfigError, WeComKfChannel
from bot.delivery import Deliverer, DeliveryError
from bot.phrasebook import Phrasebook
from bot.store import Store
from bot.types import Inbound, Kind, Outcome, Sender, TranscriptEntry
from tests.conftest import ROOT, Clock, make_config
from tests.desk_client import agent, handoff_sections
from tests.fake_wecom import FakeWeCom

PHRASES = Phrasebook.load(ROOT / "phrasebook")
TOKEN = "xiaoerKfToken1"
AES_KEY = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")
KF = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
WINDOW = 48 * 3600


def new_user() -> str:
    return "wm" + secrets.token_urlsafe(22)[:30]


# ---- the platform side ---------------------------------------------------------------------------
def kf_event_xml(sync_token: str, open_kfid: str = KF, create_time: int = 0) -> str:
    return (f"<xml><ToUserName><![CDATA[{FakeWeCom.corp_id}]]></ToUserName><CreateTime>{create_time}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{sync_token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")


@dataclass
class Platform:
    """Sends callbacks the way WeCom does: always AES, msg_signature over the Encrypt field."""

    http: aiohttp.ClientSession
    url: str
    clock: Clock
    fake: FakeWeCom
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, FakeWeCom.corp_id))

    def now(self) -> int:
        return int(self.clock())

    def envelope(self, xml: str, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        ts, nonce = str(self.now() if timestamp is None else timestamp), str(random.randrange(10**9))
        encrypted = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{FakeWeCom.corp_id}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
                f"<Encrypt><![CDATA[{encrypted['Encrypt']}]]></Encrypt></xml>")
        return {"msg_signature": encrypted["MsgSignature"], "timestamp": ts, "nonce": nonce}, body

    async def notify(self, open_kfid: str = KF) -> tuple[int, str]:
        """The kf_msg_or_event callback, with a fresh Token the fake then insists on."""
        self.fake.sync_token = "ENC" + secrets.token_urlsafe(30)
        return await self.raw(*self.envelope(kf_event_xml(self.fake.sync_token, open_kfid, self.now())))

    async def raw(self, query: dict[str, str], body: str | bytes | Any) -> tuple[int, str]:
        async with self.http.post(self.url, params=query, data=body, headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()

    def echo_query(self, plaintext: str, corp_id: str = FakeWeCom.corp_id, timestamp: int | None = None) -> dict[str, str]:
        echostr = PrpCrypto(self.crypto.key).encrypt(plaintext, corp_id).decode()
        ts, nonce = str(self.now() if timestamp is None else timestamp), str(random.randrange(10**9))
        return {"msg_signature": sign(TOKEN, ts, nonce, echostr), "timestamp": ts, "nonce": nonce, "echostr": echostr}


# ---- fixtures ------------------------------------------------------------------------------------
@dataclass
class Kf:
    adapter: WeComKfAdapter
    platform: Platform
    calls: list[Inbound]
    bot: Any
    deliverer: Deliverer                                  # this "process"'s outbox worker, driven by idle()
    failures: list[tuple[str, dict[str, Any], str]]       # what the outbox reported as not delivered

    async def idle(self) -> None:
        """Wait until the background pulls are done and the outbox they filled is delivered."""
        await self.adapter.idle()
        while await self.deliverer.round():
            await self.deliverer.idle()


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    server = await FakeWeCom().start()
    yield server
    await server.close()


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[Store]:
    value = Store.from_url(redis_url, prefix=prefix)
    yield value
    await value.close()


def kf_config(fake: FakeWeCom) -> WeComKfChannel:
    return WeComKfChannel(enabled=True, corp_id=fake.corp_id, secret=fake.secret, token=TOKEN,
                          encoding_aes_key=AES_KEY, api_base_url=fake.url)


@pytest.fixture
async def make_kf(start_bot, fake, store, clock, http) -> AsyncIterator[Callable[..., Awaitable[Kf]]]:
    """An adapter on its own aiohttp server ("a process"), submitting to one real bot's engine."""
    bots: list[Any] = []
    made: list[tuple[WeComKfAdapter, TestServer]] = []

    async def make(submit: Callable[..., Awaitable[Outcome]] | None = None) -> Kf:
        if not bots:
            bots.append(await start_bot())
        bot = bots[0]
        calls: list[Inbound] = []

        async def spy(inbound: Inbound, origin: str | None) -> Outcome:
            calls.append(inbound)
            return await (submit or bot.engine.submit)(inbound, origin)

        adapter = WeComKfAdapter(kf_config(fake), spy, store.wecom_kf_state(fake.corp_id), store.outbox_add, clock=clock)
        failures: list[tuple[str, dict[str, Any], str]] = []

        async def failed(cid: str, message: dict[str, Any], reason: str) -> None:
            failures.append((cid, message, reason))
        deliverer = Deliverer(store, {"wecom_kf": adapter}, failed)
        await store.outbox_group()
        app = web.Application()
        adapter.mount(app)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        made.append((adapter, server))
        return Kf(adapter, Platform(http, str(server.make_url("/wecom-kf/callback")), clock, fake), calls, bot, deliverer, failures)

    yield make
    for adapter, server in reversed(made):
        await adapter.close()
        await server.close()


async def kf_keys(redis_client: aioredis.Redis, prefix: str) -> list[str]:
    conv = [k async for k in redis_client.scan_iter(match=f"{prefix}conv:{{wecom_kf:*")]
    state = [k async for k in redis_client.scan_iter(match=f"{prefix}wecom_kf:*")]
    return conv + state


async def notified(kf: Kf, *others: Kf) -> None:
    status, body = await kf.platform.notify()
    assert (status, body) == (200, "success")
    for adapter in (kf, *others):
        await adapter.idle()


# ---- verification --------------------------------------------------------------------------------
async def test_url_verification_answers_the_decrypted_echostr(make_kf, fake):
    kf = await make_kf()
    async with kf.platform.http.get(kf.platform.url, params=kf.platform.echo_query("1616140317555161061")) as resp:
        assert resp.status == 200 and await resp.text() == "1616140317555161061"
    assert fake.tokens == [] and fake.syncs == []


@pytest.mark.parametrize("tamper", ["signature", "stale", "missing", "other_corp", "non_ascii"])
async def test_url_verification_refused(make_kf, tamper):
    kf = await make_kf()
    p = kf.platform
    query = p.echo_query("42", corp_id="ww-someone-else" if tamper == "other_corp" else FakeWeCom.corp_id,
                         timestamp=p.now() - 301 if tamper == "stale" else None)
    if tamper == "signature":
        query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], query["echostr"] + "x")
    elif tamper == "missing":
        del query["nonce"]
    elif tamper == "non_ascii":
        query["msg_signature"] = "签名" * 20
    async with p.http.get(p.url, params=query) as resp:
        assert resp.status == 403 and await resp.text() == ""


# ---- pulling and answering -----------------------------------------------------------------------
async def test_callback_pulls_and_answers_by_send_msg(make_kf, fake):
    kf = await make_kf()
    user = new_user()
    msgid = fake.buyer_text(KF, user, "什么时候发货", kf.platform.now())
    await notified(kf)
    assert fake.syncs == [{"cursor": "", "token": fake.sync_token, "limit": 1000, "open_kfid": KF}]
    assert len(fake.sent) == 1
    sent = fake.sent[0]
    assert sent.body["touser"] == user and sent.body["open_kfid"] == KF and sent.body["msgtype"] == "text"
    welcome = PHRASES.text("system.welcome", "zh-CN", shop="小二优选")
    assert sent.content.startswith(welcome + "\n\n") and "48小时内发货" in sent.content
    inbound = kf.calls[0]
    cid = f"wecom_kf:{KF}:{user}"
    assert (inbound.channel, inbound.conversation_id, inbound.message_id, inbound.kind) == ("wecom_kf", cid, msgid, Kind.TEXT)
    history = await kf.bot.store.history(cid)
    assert [e.sender for e in history] == [Sender.VISITOR, Sender.BOT, Sender.BOT]


async def test_enter_session_welcome_goes_by_send_msg_on_event(make_kf, fake):
    kf = await make_kf()
    user = new_user()
    code = fake.enter_session(KF, user, kf.platform.now())
    await notified(kf)
    assert fake.sent == [] and len(fake.welcomes) == 1
    welcome = fake.welcomes[0].body
    assert welcome["code"] == code and welcome["msgtype"] == "text"
    assert welcome["text"]["content"] == PHRASES.text("system.welcome", "zh-CN", shop="小二优选")


async def test_pictures_are_unsupported_and_servicer_messages_ignored(make_kf, fake):
    kf = await make_kf()
    user = new_user()
    fake.servicer_text(KF, user, "您好，我是人工客服", kf.platform.now())
    fake.buyer_image(KF, user, kf.platform.now())
    await notified(kf)
    assert [c.kind for c in kf.calls] == [Kind.UNSUPPORTED]
    assert PHRASES.text("system.unsupported", "zh-CN", name="") in fake.sent[0].content


async def test_cursor_is_kept_in_the_store_and_reused(make_kf, fake, store):
    first, second = await make_kf(), await make_kf()  # two processes
    fake.page_size = 2
    users = [new_user() for _ in range(3)]
    for user in users:
        fake.buyer_text(KF, user, "怎么退货", first.platform.now())
    await notified(first)
    assert [s["cursor"] for s in fake.syncs] == ["", "c2"]  # has_more: the next page right away
    assert await store.wecom_kf_state(fake.corp_id).get_cursor(KF) == "c3"
    assert sorted(s.touser for s in fake.sent) == sorted(users)

    late = new_user()
    fake.buyer_text(KF, late, "在吗", first.platform.now())
    await notified(second)
    assert fake.syncs[-1]["cursor"] == "c3" and len(fake.syncs) == 3
    assert [c.conversation_id for c in second.calls] == [f"wecom_kf:{KF}:{late}"]
    assert len(fake.sent) == 4


async def test_one_puller_at_a_time_and_a_callback_during_a_pull_is_not_lost(make_kf, fake):
    first, second = await make_kf(), await make_kf()
    fake.sync_delay = 0.2
    users = [new_user() for _ in range(3)]
    for user in users:
        fake.buyer_text(KF, user, "什么时候发货", first.platform.now())
    results = await asyncio.gather(first.platform.notify(), second.platform.notify(), first.platform.notify())
    assert all(r == (200, "success") for r in results)
    await asyncio.sleep(0.05)  # the pull is running; another message and callback arrive meanwhile
    late = new_user()
    fake.buyer_text(KF, late, "在吗", first.platform.now())
    assert await second.platform.notify() == (200, "success")
    for kf in (first, second):
        await kf.idle()
    assert fake.max_concurrent_syncs == 1
    handled = [c.conversation_id for c in first.calls + second.calls]
    assert sorted(handled) == sorted(f"wecom_kf:{KF}:{u}" for u in [*users, late])
    assert sorted(s.touser for s in fake.sent) == sorted([*users, late])


async def test_a_repeated_msgid_is_handled_once(make_kf, fake):
    kf = await make_kf()
    user = new_user()
    fake.buyer_text(KF, user, "什么时候发货", kf.platform.now(), msgid="msg-1")
    fake.buyer_text(KF, user, "什么时候发货", kf.platform.now(), msgid="msg-1")
    await notified(kf)
    history = await kf.bot.store.history(f"wecom_kf:{KF}:{user}")
    assert sum(e.sender is Sender.VISITOR for e in history) == 1 and len(fake.sent) == 1


async def test_a_first_pull_does_not_answer_old_messages(make_kf, fake):
    kf = await make_kf()
    old, new = new_user(), new_user()
    fake.buyer_text(KF, old, "在吗", kf.platform.now() - 86400)
    fake.buyer_text(KF, new, "在吗", kf.platform.now())
    await notified(kf)
    assert [s.touser for s in fake.sent] == [new]


def test_conversation_ids_round_trip_and_stay_in_the_allowed_characters():
    import re
    allowed = re.compile(r"^[a-z_]+:[A-Za-z0-9_.:@-]{1,128}$")
    for user in ("wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", "wm/odd+id=", "用户"):
        cid = conversation_id(KF, user)
        assert cid is not None and allowed.match(cid) and "{" not in cid
        assert parse_conversation(cid) == (KF, user)
    assert conversation_id("bad kfid", "wm1") is None and parse_conversation("wechat:o1") is None


# ---- refused callbacks: nothing pulled, nothing stored --------------------------------------------
BOMB = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><MsgType>event</MsgType><Event>kf_msg_or_event</Event>'
        '<Token>&c;</Token><OpenKfId>' + KF + '</OpenKfId></xml>')


@pytest.mark.parametrize(
    ("case", "status"),
    [("bad_signature", 403), ("stale", 403), ("future", 403), ("no_signature", 403), ("other_corp", 403),
     ("bomb", 400), ("doctype_envelope", 400), ("malformed", 400), ("bad_open_kfid", 400), ("not_base64", 400),
     ("oversize", 413), ("oversize_chunked", 413)],
)
async def test_refused_callbacks_store_nothing(make_kf, fake, redis_client, prefix, case, status):
    kf = await make_kf()
    p = kf.platform
    fake.buyer_text(KF, new_user(), "什么时候发货", p.now())
    xml = {"bomb": BOMB, "malformed": "<xml><MsgType>event</MsgType><Token>t</Tok",
           "bad_open_kfid": kf_event_xml("tok", "wk bad/id")}.get(case, kf_event_xml("tok", KF, p.now()))
    timestamp = {"stale": p.now() - 301, "future": p.now() + 301}.get(case)
    if case == "other_corp":
        p.crypto = WeChatCrypto(TOKEN, AES_KEY, "ww-someone-else")
    query, body = p.envelope(xml, timestamp)
    if case == "bad_signature":
        query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], "forged")
    elif case == "no_signature":
        del query["msg_signature"]
    elif case == "doctype_envelope":
        body = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + body
    elif case == "not_base64":
        body = "<xml><Encrypt><![CDATA[not base64 at all]]></Encrypt></xml>"
        query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], "not base64 at all")
    if case == "oversize":
        got = await p.raw(query, body + " " * MAX_BODY)
    elif case == "oversize_chunked":
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY // 1024 + 2):
                yield b" " * 1024
        got = await p.raw(query, chunks())
    else:
        got = await p.raw(query, body)
    await kf.idle()
    assert got == (status, "")
    assert kf.calls == [] and fake.syncs == [] and fake.tokens == [] and fake.sent == []
    assert await kf_keys(redis_client, prefix) == []


# ---- kf/send_msg: the 48-hour / 5-message rule and platform refusals -------------------------------
def agent_message(i: int) -> dict[str, Any]:
    return TranscriptEntry(f"agent-{i}", Sender.AGENT, f"第{i}条回复", 0.0, agent="alice").to_json()


async def buyer_writes(kf: Kf, user: str, text: str = "在吗") -> None:
    before = len(kf.platform.fake.sent)
    kf.platform.fake.buyer_text(KF, user, text, kf.platform.now())
    await notified(kf)
    assert len(kf.platform.fake.sent) == before + 1  # the bot's own answer counts too


async def test_five_messages_per_buyer_message_within_48_hours(make_kf, fake, clock):
    kf = await make_kf()
    user = new_user()
    cid = f"wecom_kf:{KF}:{user}"
    with pytest.raises(DeliveryError) as never_wrote:
        await kf.adapter.deliver(cid, agent_message(0))
    assert never_wrote.value.permanent

    await buyer_writes(kf, user)  # the bot's answer is message 1 of 5
    for i in range(2, 6):
        clock.now += 60
        await kf.adapter.deliver(cid, agent_message(i))
    await kf.adapter.deliver(cid, agent_message(5))  # a retried outbox entry does not count twice
    with pytest.raises(DeliveryError) as sixth:
        await kf.adapter.deliver(cid, agent_message(6))
    assert sixth.value.permanent and "quota" in sixth.value.reason
    assert [s.content for s in fake.sent[1:]] == [f"第{i}条回复" for i in (2, 3, 4, 5, 5)]

    clock.now += WINDOW
    with pytest.raises(DeliveryError) as late:
        await kf.adapter.deliver(cid, agent_message(7))
    assert late.value.permanent and "48" in late.value.reason
    assert len(fake.sent) == 6


@pytest.mark.parametrize(("errcode", "permanent"), [(95001, True), (95002, True), (95013, True), (95018, True),
                                                    (-1, False)])
async def test_platform_refusals(make_kf, fake, errcode, permanent):
    kf = await make_kf()
    user = new_user()
    await buyer_writes(kf, user)
    fake.fail(errcode)
    with pytest.raises(DeliveryError) as refused:
        await kf.adapter.deliver(f"wecom_kf:{KF}:{user}", agent_message(1))
    assert refused.value.permanent is permanent and str(errcode) in refused.value.reason
    assert "token" not in refused.value.reason


async def test_a_refused_turn_reply_is_reported_to_the_desk(make_kf, fake):
    kf = await make_kf()
    reported = kf.failures
    fake.fail(95018)
    user = new_user()
    fake.buyer_text(KF, user, "什么时候发货", kf.platform.now())
    await notified(kf)
    cid, message, reason = reported[0]
    assert cid == f"wecom_kf:{KF}:{user}" and "48小时内发货" in message["text"] and "95018" in reason


async def test_invalid_token_refreshes_once_and_the_token_is_shared(make_kf, fake, redis_client, prefix):
    first, second = await make_kf(), await make_kf()
    user = new_user()
    await buyer_writes(first, user)
    await second.adapter.deliver(f"wecom_kf:{KF}:{user}", agent_message(1))
    assert fake.tokens == ["kf-token-1"]
    assert 6800 < await redis_client.ttl(f"{prefix}wecom_kf:{fake.corp_id}:token") <= 6900
    fake.tokens.append("issued-elsewhere")  # ours is no longer the latest: 40014, refresh, retry
    await second.adapter.deliver(f"wecom_kf:{KF}:{user}", agent_message(2))
    assert fake.sent[-1].token == "kf-token-3" and [a.token for a in fake.attempts[-2:]] == ["kf-token-1", "kf-token-3"]


# ---- through the whole bot -------------------------------------------------------------------------
def wecom_sections(fake: FakeWeCom) -> dict[str, Any]:
    return {"channels": {"wecom_kf": {"enabled": True, "corp_id": fake.corp_id, "secret": fake.secret, "token": TOKEN,
                                      "encoding_aes_key": AES_KEY, "api_base_url": fake.url}}}


async def sent_texts(fake: FakeWeCom, count: int) -> list[str]:
    for _ in range(200):
        if len(fake.sent) >= count:
            break
        await asyncio.sleep(0.05)
    return [s.content for s in fake.sent]


async def test_escalation_agent_reply_reassignment_and_rating_through_the_app(start_bot, fake, http, desks, clock):
    bot = await start_bot(**wecom_sections(fake), **handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    p = Platform(http, bot.url + "/wecom-kf/callback", clock, fake)
    user = new_user()
    alice = desks(bot.url)
    await alice.connect("alice")
    fake.buyer_text(KF, user, "转人工", p.now())
    assert await p.notify() == (200, "success")
    first = (await sent_texts(fake, 1))[0]
    assert PHRASES.text("system.handoff_request", "zh-CN") in first
    assert PHRASES.text("system.handoff_assigned", "zh-CN", agent="Alice") in first
    cid = (await alice.expect("assigned"))["conversation"]["id"]
    assert cid == f"wecom_kf:{KF}:{user}"

    bob = desks(bot.url)
    await bob.connect("bob")
    clock.now += 61
    await bob.expect("assigned")
    assert (await sent_texts(fake, 2))[1] == PHRASES.text("system.reassigned", "zh-CN", agent="Bob")
    await bob.send({"type": "reply", "conversation": cid, "text": "亲，您好😊 我是Bob，马上为您处理～"})
    assert (await sent_texts(fake, 3))[2] == "亲，您好😊 我是Bob，马上为您处理～"
    await bob.send({"type": "close", "conversation": cid})
    closing = (await sent_texts(fake, 4))[3]
    assert closing.startswith(PHRASES.text("system.closed_rating", "zh-CN")) and "5 — " in closing
    fake.buyer_text(KF, user, "5", p.now())
    assert await p.notify() == (200, "success")
    assert (await sent_texts(fake, 5))[4] == PHRASES.text("system.rating_thanks", "zh-CN")
    assert all(s.touser == user and s.body["open_kfid"] == KF for s in fake.sent)


def test_check_config_requires_the_wecom_keys(redis_url, prefix):
    with pytest.raises(ConfigError) as problems:
        make_config(redis_url, prefix, channels={"wecom_kf": {"enabled": True, "token": "x", "encoding_aes_key": "short"}})
    text = str(problems.value)
    for key in ("corp_id", "secret", "token", "encoding_aes_key"):
        assert f"channels.wecom_kf.{key}" in text
    config = make_config(redis_url, prefix, channels={"wecom_kf": {"enabled": True, "corp_id": "ww1", "secret": "s",
                                                                   "token": TOKEN, "encoding_aes_key": AES_KEY}})
    assert config.channels.wecom_kf.enabled
