"""The pipeline against a real Redis: commit, dedupe, ordering, crash safety."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.engine import Engine
from bot.router import Context, Router
from bot.store import Store, StoreError
from bot.types import Customer, Inbound, Reply, Result, Sender, State


class Echo:
    """A test handler: echoes the text and counts turns in miss_count."""

    name = "echo"

    def handle(self, ctx: Context) -> Result:
        session = ctx.session.evolve(state=State.BOT, miss_count=ctx.session.miss_count + 1)
        return Result(replies=(Reply(f"echo:{ctx.inbound.text}"),), session=session)


class Boom:
    name = "boom"

    def handle(self, ctx: Context) -> Result:
        raise RuntimeError("handler crashed")


def inbound(text: str, message_id: str, conversation: str = "web:c1") -> Inbound:
    return Inbound(channel="web", conversation_id=conversation, message_id=message_id,
                   customer=Customer(id="c1", name="小美"), text=text)


@pytest.fixture
async def store(redis_url: str, prefix: str):
    s = Store.from_url(redis_url, prefix=prefix)
    yield s
    await s.close()


async def test_commit_writes_session_and_transcript(store: Store):
    engine = Engine(store, Router([Echo()]), clock=lambda: 1000.0)
    outcome = await engine.submit(inbound("你好", "m1"))
    assert [r.text for r in outcome.replies] == ["echo:你好"]
    session = await store.load_session("web:c1", "web")
    assert (session.state, session.turns, session.customer_name, session.created_at) == (State.BOT, 1, "小美", 1000.0)
    history = await store.history("web:c1")
    assert [(e.sender, e.text) for e in history] == [(Sender.VISITOR, "你好"), (Sender.BOT, "echo:你好")]
    assert history[0].id == "m1" and history[1].id == "m1~0"


async def test_duplicate_message_id_gets_one_reply(store: Store):
    engine = Engine(store, Router([Echo()]))
    first = await engine.submit(inbound("hi", "same"))
    again = await engine.submit(inbound("hi", "same"))
    assert len(first.replies) == 1 and not first.duplicate
    assert again.duplicate and again.replies == ()
    assert len(await store.history("web:c1")) == 2


async def test_concurrent_retries_of_one_message_reply_once(store: Store):
    engine = Engine(store, Router([Echo()]))
    outcomes = await asyncio.gather(*(engine.submit(inbound("hi", "retry")) for _ in range(5)))
    assert sum(1 for o in outcomes if o.replies) == 1
    assert sum(1 for o in outcomes if o.duplicate) == 4
    assert (await store.load_session("web:c1", "web")).turns == 1


async def test_concurrent_messages_are_handled_one_at_a_time_in_order(store: Store):
    engine = Engine(store, Router([Echo()]))
    texts = [f"msg{i}" for i in range(8)]
    await asyncio.gather(*(engine.submit(inbound(t, f"id{i}")) for i, t in enumerate(texts)))
    session = await store.load_session("web:c1", "web")
    assert session.turns == 8 and session.miss_count == 8  # no lost update
    history = await store.history("web:c1")
    visitor = [e.text for e in history if e.sender is Sender.VISITOR]
    assert visitor == texts
    # each reply directly follows its message: turns never interleave
    assert [e.text for e in history] == [x for t in texts for x in (t, f"echo:{t}")]


async def test_two_processes_never_lose_an_update(redis_url: str, prefix: str):
    stores = [Store.from_url(redis_url, prefix=prefix) for _ in range(2)]
    engines = [Engine(s, Router([Echo()])) for s in stores]
    await asyncio.gather(*(engines[i % 2].submit(inbound(f"m{i}", f"id{i}")) for i in range(10)))
    session = await stores[0].load_session("web:c1", "web")
    assert session.turns == 10 and session.miss_count == 10
    for s in stores:
        await s.close()


async def test_crash_in_a_handler_stores_nothing_and_the_retry_is_handled(store: Store, redis_client: aioredis.Redis, prefix: str):
    with pytest.raises(RuntimeError):
        await Engine(store, Router([Boom()])).submit(inbound("hi", "m1"))
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}*")] == []
    outcome = await Engine(store, Router([Echo()])).submit(inbound("hi", "m1"))
    assert not outcome.duplicate and outcome.replies


async def test_commit_after_losing_the_lock_writes_nothing(store: Store, redis_client: aioredis.Redis, prefix: str):
    turn = await store.begin_turn(inbound("hi", "m1"))
    assert not isinstance(turn, str)
    async with turn:
        lock_key = f"{prefix}conv:{{web:c1}}:lock"
        await redis_client.set(lock_key, "someone-else")  # our lease expired and another process took it
        with pytest.raises(StoreError):
            await turn.commit(turn.session.evolve(turns=1), [], None)
    assert not await redis_client.exists(f"{prefix}conv:{{web:c1}}:session")
    assert not await redis_client.exists(f"{prefix}conv:{{web:c1}}:transcript")


async def test_keys_carry_prefix_and_conversation_hash_tag(store: Store, redis_client: aioredis.Redis, prefix: str):
    await Engine(store, Router([Echo()])).submit(inbound("hi", "m1"))
    keys = sorted([k async for k in redis_client.scan_iter(match=f"{prefix}*")])
    assert keys == sorted(f"{prefix}conv:{{web:c1}}:{part}" for part in ("msg:m1", "session", "transcript"))


async def test_a_duplicate_says_whether_the_first_attempt_is_still_running(store: Store, redis_url: str, prefix: str):
    other = Store.from_url(redis_url, prefix=prefix)  # another process
    turn = await store.begin_turn(inbound("hi", "m1"))
    assert not isinstance(turn, str)
    async with turn:
        running = await Engine(other, Router([Echo()])).submit(inbound("hi", "m1"))
        await turn.commit(turn.session.evolve(turns=1), [], None)
    finished = await Engine(other, Router([Echo()])).submit(inbound("hi", "m1"))
    await other.close()
    assert running.duplicate and running.in_progress
    assert finished.duplicate and not finished.in_progress
