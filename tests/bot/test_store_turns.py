"""A turn's Redis traffic and leases: two round trips, short leases, overload refused early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.embedded import EmbeddedRedis
from bot.engine import Engine
from bot.router import Router
from bot.store import Store, StoreBusy
from bot.types import Customer, Inbound
from tests.bot.test_engine import Echo


def inbound(message_id: str, conversation: str = "web:c1") -> Inbound:
    return Inbound(channel="web", conversation_id=conversation, message_id=message_id,
                   customer=Customer(id="c1"), text="hi")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A throwaway redis-server of our own, so its command counters see only this test's traffic."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("turn-redis"), persist=False)
    yield server.start()
    server.stop()


async def round_trips(redis_url: str, action: object) -> list[str]:
    """The commands clients sent while `action` ran, as MONITOR sees them (commands run inside a Lua
    script are reported apart and left out)."""
    watcher = aioredis.from_url(redis_url, decode_responses=True)
    other = aioredis.from_url(redis_url, decode_responses=True)
    await other.ping()  # connected before watching
    seen: list[str] = []
    async with watcher.monitor() as monitor:
        await asyncio.sleep(0)
        await action()  # type: ignore[operator]
        await other.echo("end-of-turn")
        async for command in monitor.listen():
            if command.get("client_type") == "lua":
                continue
            if "end-of-turn" in command["command"]:
                break
            seen.append(command["command"].split()[0].upper())
    await other.aclose()
    await watcher.aclose()
    return seen


async def test_a_turn_is_two_round_trips(private_redis: str):
    store = Store.from_url(private_redis, prefix="rt:")
    engine = Engine(store, Router([Echo()]))
    await engine.submit(inbound("warm-up", "web:warm"))  # loads the scripts once
    outcomes = []

    async def turn() -> None:
        outcomes.append(await engine.submit(inbound("m1")))

    assert await round_trips(private_redis, turn) == ["EVALSHA", "EVALSHA"]  # begin, commit (+ unlock)
    assert outcomes[0].replies
    assert not await store.redis.exists("rt:conv:{web:c1}:lock")  # the commit released the lock
    await store.close()


async def test_a_claim_of_a_dead_attempt_is_taken_over_after_its_lease(store_pair: tuple[Store, Store]):
    dead, alive = store_pair
    dead.claim_lease = 0.3  # the process that claims sets the lease; short here so the test is quick
    turn = await dead.begin_turn(inbound("m1"))
    assert not isinstance(turn, str)  # ... and that process dies now, holding claim and lock
    engine = Engine(alive, Router([Echo()]))
    first = await engine.submit(inbound("m1"))
    assert first.duplicate and first.in_progress  # "pending", not "done": the client must resend
    while (retry := await engine.submit(inbound("m1"))).in_progress:
        await asyncio.sleep(0.05)
    assert not retry.duplicate and [r.text for r in retry.replies] == ["echo:hi"]
    assert (await engine.submit(inbound("m1"))).duplicate  # now done


async def test_a_lock_of_a_dead_process_is_taken_over_after_its_lease(store_pair: tuple[Store, Store]):
    dead, alive = store_pair
    dead.claim_lease = 0.3
    turn = await dead.begin_turn(inbound("m1"))
    assert not isinstance(turn, str)
    outcome = await Engine(alive, Router([Echo()])).submit(inbound("m2"))  # waits for the lease, then runs
    assert [r.text for r in outcome.replies] == ["echo:hi"]


async def test_overload_is_refused_at_once_not_queued(store_pair: tuple[Store, Store]):
    store, _ = store_pair
    engine = Engine(store, Router([Echo()]), max_in_flight=2)
    results = await asyncio.gather(*(engine.submit(inbound(f"m{i}", f"web:c{i}")) for i in range(5)),
                                   return_exceptions=True)
    assert sum(isinstance(r, StoreBusy) for r in results) == 3
    assert sum(not isinstance(r, BaseException) and bool(r.replies) for r in results) == 2
    assert engine.in_flight == 0
    later = await engine.submit(inbound("m9", "web:c9"))  # the gate opens again
    assert later.replies


@pytest.fixture
async def store_pair(redis_url: str, prefix: str) -> AsyncIterator[tuple[Store, Store]]:
    stores = (Store.from_url(redis_url, prefix=prefix), Store.from_url(redis_url, prefix=prefix))
    yield stores
    for s in stores:
        await s.close()
