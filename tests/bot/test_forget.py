"""`python -m bot forget`: every key of one buyer's conversation goes, every other buyer's stays
(SCAN over the whole prefix proves it, names and contents)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from bot.types import Customer, Inbound
from tests.bot.test_config import run_cli
from tests.desk_client import DeskClient, agent, handoff_sections

GONE, KEPT = "telegram:4711", "telegram:4712"


async def everything(client: aioredis.Redis, prefix: str) -> dict[str, object]:
    """Every key under the prefix with its contents."""
    out: dict[str, object] = {}
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        kind = await client.type(key)
        if kind == "string":
            out[key] = await client.get(key)
        elif kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "list":
            out[key] = await client.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(await client.smembers(key))
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1)
        elif kind == "stream":
            out[key] = [fields for _, fields in await client.xrange(key)]
    return out


def mentions(value: object, needle: str) -> bool:
    return needle in json.dumps(value, ensure_ascii=False)


async def test_forget_leaves_no_key_of_that_buyer_and_touches_no_other(start_bot, redis_client, prefix, redis_url, tmp_path):
    bot = await start_bot(**handoff_sections(agent("alice", ["presales"], capacity=1)))
    desk = DeskClient(bot.url)
    await desk.connect("alice")
    for cid in (GONE, KEPT):
        n = cid[-1]
        submit = lambda text, i: bot.engine.submit(Inbound("telegram", cid, f"{n}-{i}", Customer(cid[9:], name="Wang"), text=text), "telegram")
        await submit("猫粮是进口的吗", 1)  # an unanswered question: kept for the FAQ gaps
        await submit("转人工", 2)
    first = (await desk.expect("assigned"))["conversation"]["id"]
    assert first == GONE  # the second buyer waits in the queue (alice has room for one)
    await desk.send({"type": "reply", "conversation": GONE, "text": "亲，您好😊 我来帮您看看～"})  # goes to the outbox
    await desk.expect("message", conversation=GONE)
    await desk.send({"type": "close", "conversation": GONE})  # a closed case in the histories
    await desk.expect("assigned")  # the queued buyer is alice's now
    before = await everything(redis_client, prefix)
    assert any(mentions(v, GONE) for v in before.values()) and any(GONE in k for k in before)
    assert sum(1 for k in before if "conv:{telegram:4711}" in k) >= 3

    config = tmp_path / "config.toml"
    config.write_text(f'[redis]\nurl = "{redis_url}"\nprefix = "{prefix}"\n', encoding="utf-8")
    result = run_cli("forget", "--config", str(config), "--conversation", GONE)
    assert result.returncode == 0, result.stderr
    after = await everything(redis_client, prefix)
    assert [k for k in after if GONE in k] == []
    assert [k for k, v in after.items() if mentions(v, GONE)] == []
    # nothing else changed: every key that never mentioned the buyer is exactly as it was
    for key, value in before.items():
        if GONE not in key and not mentions(value, GONE):
            assert after.get(key) == value, key
    assert any(mentions(v, KEPT) for k, v in after.items() if "report:" in k and k.endswith(":gaps"))
    assert sum(1 for k in after if "conv:{telegram:4712}" in k) >= 3
    await desk.close()


async def test_forget_refuses_a_bad_id(tmp_path, redis_url, prefix):
    config = tmp_path / "config.toml"
    config.write_text(f'[redis]\nurl = "{redis_url}"\nprefix = "{prefix}"\n', encoding="utf-8")
    result = run_cli("forget", "--config", str(config), "--conversation", "web:{x}")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--conversation" in result.stderr


async def test_transcripts_and_gaps_expire_after_the_configured_days(start_bot, redis_client, prefix):
    bot = await start_bot(redis={"session_ttl_days": 7})
    await bot.engine.submit(Inbound("web", "web:t1", "m1", Customer("t1"), text="猫粮是进口的吗"))
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=500)]
    personal = [k for k in keys if "conv:{web:t1}" in k and not k.endswith(":lock")] + [k for k in keys if k.endswith(":gaps")]
    assert any(k.endswith(":transcript") for k in personal) and any(k.endswith(":gaps") for k in personal)
    for key in personal:
        ttl = await redis_client.ttl(key)
        assert 6 * 86400 < ttl <= 7 * 86400 or (":msg:" in key and 0 < ttl <= 86400), (key, ttl)
