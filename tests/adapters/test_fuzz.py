"""Property-based fuzzing (hypothesis) of every edge parser, against the running bot and real Redis:
widget and desk socket frames, Telegram updates, WeChat and WeCom XML callbacks (correctly signed, so
the parsers themselves are reached). Whatever arrives: never a 5xx or an `internal` error, and a
refused input stores nothing.

The examples are drawn deterministically (derandomize) and in modest numbers so `make test` stays fast;
they are collected first and then sent, because the bot runs in the test's event loop.
"""

from __future__ import annotations

import json
import re
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.adapters.test_telegram import fake, post as telegram_post, telegram_sections  # noqa: F401 (fixture)
from tests.adapters.test_wechat import GH_ID, Platform as WeChatPlatform
from tests.adapters.test_wechat_app import wechat_sections
from tests.adapters.test_wecom_kf import Platform as WeComPlatform, wecom_sections
from tests.desk_client import agent, handoff_sections
from tests.fake_telegram import update
from tests.fake_wechat import FakeWeChat
from tests.fake_wecom import FakeWeCom
from tests.widget_client import WidgetClient

EXAMPLES = 40


def examples(strategy: st.SearchStrategy[Any], count: int = EXAMPLES) -> list[Any]:
    """`count` values drawn deterministically from the strategy."""
    out: list[Any] = []

    @settings(max_examples=count, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


# ---- strategies ----------------------------------------------------------------------------------
texts = st.text(max_size=12) | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3) \
    | st.sampled_from(["", " ", "你好", "什么时候发货", "转人工", "\x00", "]]>", "<a>", "\u202e", "😀" * 3])
ints = st.integers(min_value=-5, max_value=2000) | st.integers() | st.sampled_from([2 ** 53, -2 ** 63, 10 ** 30])
scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False) | texts
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3), max_leaves=8)
ids = ints | texts | st.booleans() | st.floats(allow_nan=False) | st.none()


def loose(*keys_and_values: tuple[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict where each key may be present (with a plausible or an arbitrary value) or missing."""
    return st.fixed_dictionaries({}, optional={k: v | json_values for k, v in keys_and_values})


tg_user = loose(("id", ids), ("is_bot", st.booleans()), ("first_name", texts), ("language_code", texts))
tg_chat = loose(("id", ids), ("type", st.sampled_from(["private", "group", "supergroup"])), ("first_name", texts))
tg_message = loose(("message_id", ids), ("date", ids), ("chat", tg_chat), ("from", tg_user), ("text", texts),
                   ("photo", st.just([{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}])))
tg_query = loose(("id", ids), ("from", tg_user), ("chat_instance", texts), ("data", texts), ("message", tg_message))
DELETE = object()


def edited(base: dict[str, Any], edits: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A copy of a valid body with some fields replaced by arbitrary values or removed."""
    body = json.loads(json.dumps(base))
    for path, value in edits:
        node = body
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            if value is DELETE:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return body


def mutations(base: dict[str, Any], paths: list[tuple[str, ...]], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid bodies with zero to two fields broken: most of the parser is reached, not only its first check."""
    edits = st.lists(st.tuples(st.sampled_from(paths), values | st.just(DELETE)), max_size=2)
    return st.builds(edited, st.just(base), edits)


TG_PATHS = [("update_id",), ("message",), ("message", "chat"), ("message", "chat", "id"), ("message", "chat", "type"),
            ("message", "from"), ("message", "from", "id"), ("message", "from", "first_name"),
            ("message", "from", "language_code"), ("message", "text"), ("message", "date"), ("message", "message_id"),
            ("callback_query",), ("callback_query", "data"), ("callback_query", "id"), ("callback_query", "message")]
tg_updates = st.one_of(
    json_values,
    st.fixed_dictionaries({"update_id": ids}, optional={"message": tg_message | json_values, "callback_query": tg_query,
                                                        "edited_message": json_values, "my_chat_member": json_values}),
    mutations(update(0, "你好"), TG_PATHS, json_values),
    mutations(update(0, callback="5"), TG_PATHS, json_values),
)

widget_frames = st.one_of(
    json_values,
    st.fixed_dictionaries({"type": st.sampled_from(["message", "hello", "ping", "bogus"]) | texts},
                          optional={"id": ids | st.text(st.sampled_from("ab-_.:"), min_size=1, max_size=70), "text": texts,
                                    "visitor": ids, "token": ids, "name": texts, "locale": texts,
                                    "page": loose(("url", texts | st.just("https://shop.example/p")), ("title", texts))}),
)
desk_frames = st.one_of(
    json_values,
    st.fixed_dictionaries({"type": st.sampled_from(["reply", "close", "transfer", "pick", "status", "ping", "x"]) | texts},
                          optional={"conversation": ids | st.sampled_from(["web:abc", "telegram:1", "wechat:o" + "a" * 27, "x:{y}"]),
                                    "text": texts, "group": texts | st.sampled_from(["presales", "aftersales"]),
                                    "agent": texts | st.just("bob"), "status": texts | st.sampled_from(["online", "away"]),
                                    "force": json_values}),
)

XML_TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "PicUrl", "MediaId",
            "Token", "OpenKfId", "Encrypt", "x"]
xml_values = texts | ints.map(str) | st.sampled_from(["text", "event", "image", "subscribe", "unsubscribe", "kf_msg_or_event",
                                                       "o" + "A" * 27, GH_ID, "ENC" + "a" * 30])


def xml_doc(children: list[tuple[str, str, bool]], root: str) -> str:
    body = "".join(f"<{tag}>{'<![CDATA[' + value + ']]>' if cdata else value}</{tag}>" for tag, value, cdata in children)
    return f"<{root}>{body}</{root}>"


WX_MESSAGE = {"ToUserName": GH_ID, "FromUserName": "o" + "A" * 27, "CreateTime": "1700000000", "MsgType": "text",
              "Content": "什么时候发货", "MsgId": "1234567890123456"}


def wx_render(fields: dict[str, Any], cdata: bool) -> str:
    return xml_doc([(k, str(v), cdata and k not in ("CreateTime", "MsgId")) for k, v in fields.items()], "xml")


xml_bodies = st.one_of(
    st.builds(wx_render, mutations(WX_MESSAGE, [(k,) for k in XML_TAGS], xml_values), st.booleans()),
    st.builds(xml_doc, st.lists(st.tuples(st.sampled_from(XML_TAGS), xml_values, st.booleans()), max_size=8),
              st.sampled_from(["xml", "xml", "root"])),
    texts,
    st.sampled_from(['<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', "<xml><xml><xml>", "<xml/>", "\ufeff<xml></xml>",
                     "<xml><MsgType>text</MsgType></xml>" * 2]),
)


# ---- helpers -------------------------------------------------------------------------------------
async def conversations(redis_client: aioredis.Redis, prefix: str) -> set[str]:
    return {k.split("{", 1)[1].split("}", 1)[0] async for k in redis_client.scan_iter(match=f"{prefix}conv:*")}


def as_bytes(body: str | bytes) -> bytes:
    """What goes on the wire; a lone surrogate becomes bytes that are not UTF-8, as garbage would."""
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body


# ---- the tests -----------------------------------------------------------------------------------
async def test_telegram_updates_get_200_or_400_and_refusals_store_nothing(start_bot, fake, http, redis_client, prefix):
    bot = await start_bot(**telegram_sections(fake))
    for body in examples(tg_updates, 80) + [update(1, "你好")]:
        before = await conversations(redis_client, prefix)
        resp = await telegram_post(http, bot, json.dumps(body).encode())
        after = await conversations(redis_client, prefix)
        assert resp.status in (200, 400), body
        if resp.status == 400:
            assert after == before, body
        assert all(re.fullmatch(r"telegram:-?\d{1,16}", c) for c in after), after
    assert "telegram:1001" in await conversations(redis_client, prefix)  # the real update was handled


async def test_widget_frames_never_get_an_internal_error_and_refusals_store_nothing(bot, http, redis_client, prefix):
    client = WidgetClient(http, bot.url)
    await client.connect()
    for frame in examples(widget_frames, 60):
        before = await conversations(redis_client, prefix)
        assert client.ws is not None
        await client.ws.send_str(json.dumps(frame))
        await client.send({"type": "ping"})
        seen: list[dict[str, Any]] = []
        while True:
            got = await client.receive()
            if got["type"] in ("pong", "closed"):
                break
            seen.append(got)
        assert not [f for f in seen if f.get("code") == "internal"], (frame, seen)
        if not any(f["type"] == "ack" for f in seen):
            assert await conversations(redis_client, prefix) == before, (frame, seen)
        if got["type"] == "closed":
            assert got["code"] in (4401, 4408), (frame, got)  # refused hello: the only reason to close
            client = WidgetClient(http, bot.url)
            await client.connect()
    await client.close()


async def test_desk_frames_never_get_an_internal_error_and_store_nothing(start_bot, desks, redis_client, prefix):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"]), agent("bob", ["presales"])))
    desk = desks(bot.url)
    await desk.connect("alice")
    for frame in examples(desk_frames, 60):
        assert desk.ws is not None
        await desk.ws.send_str(json.dumps(frame))
        await desk.send({"type": "ping"})
        seen = []
        while (got := await desk.receive())["type"] not in ("pong", "closed"):
            seen.append(got)
        assert got["type"] == "pong", (frame, got)
        assert not [f for f in seen if f.get("code") == "internal"], (frame, seen)
    assert await conversations(redis_client, prefix) == set()


async def test_wechat_callbacks_never_get_a_5xx_and_refusals_store_nothing(start_bot, http, clock, redis_client, prefix):
    fake = await FakeWeChat().start()
    try:
        bot = await start_bot(**wechat_sections(fake))
        platform = WeChatPlatform(http, bot.url + "/wechat/callback", clock)
        for i, xml in enumerate(examples(xml_bodies, 80)):
            before = await conversations(redis_client, prefix)
            mode = ("plain", "safe", "compatible")[i % 3]
            try:
                query, body = platform.envelope(xml, mode)
            except Exception:  # the platform's own encoder refuses it (e.g. lone surrogates): send it plain
                query, body = platform.envelope("", "plain")[0], xml.encode("utf-8", "surrogatepass")
            status, _ = await platform.raw(query, as_bytes(body))
            assert status in (200, 400, 403, 413), (xml, mode, status)
            if status != 200:
                assert await conversations(redis_client, prefix) == before, (xml, mode)
            assert all(re.fullmatch(r"wechat:[A-Za-z0-9_-]{1,64}", c) for c in await conversations(redis_client, prefix))
    finally:
        await fake.close()


async def test_wecom_callbacks_never_get_a_5xx_and_store_no_conversation(start_bot, http, clock, redis_client, prefix):
    fake = await FakeWeCom().start()
    try:
        bot = await start_bot(**wecom_sections(fake))
        platform = WeComPlatform(http, bot.url + "/wecom-kf/callback", clock, fake)
        for xml in examples(xml_bodies, 60):
            try:
                query, body = platform.envelope(xml)
            except Exception:
                query, body = platform.envelope("<xml/>")[0], xml.encode("utf-8", "surrogatepass")
            status, _ = await platform.raw(query, as_bytes(body))
            assert status in (200, 400, 403, 413), (xml, status)
        await bot.wecom_kf.idle()
        assert await conversations(redis_client, prefix) == set()  # callbacks only say "pull"; the fake has nothing
    finally:
        await fake.close()
