"""Timers under a short lease: one claimed by a process that died fires elsewhere once the lease
(LEASE, 5 s of the timer clock) has run out, and exactly once."""

from __future__ import annotations

from bot.engine import Engine
from bot.router import Router
from bot.store import LEASE, Store
from bot.timers import TimerRunner
from tests.bot.test_engine import Echo
from tests.conftest import Clock


async def noop() -> None:
    return None


async def test_a_timer_held_by_a_dead_process_fires_elsewhere_after_the_lease(redis_url: str, prefix: str):
    clock = Clock(1_000_000.0)
    dead, alive = Store.from_url(redis_url, prefix=prefix), Store.from_url(redis_url, prefix=prefix)
    runner = TimerRunner(alive, Engine(alive, Router([Echo()]), clock=clock).submit, noop, clock)
    await alive.add_timer("frt|web:c1|alice|999999.0", clock.now - 1)
    assert await dead.claim_timers(clock.now, LEASE) == ["frt|web:c1|alice|999999.0"]  # ... and it dies
    assert await runner.tick() == 0  # leased: not fired twice
    clock.now += LEASE - 0.1
    assert await runner.tick() == 0
    clock.now += 0.2  # the lease has run out
    assert await runner.tick() == 1
    clock.now += LEASE + 1
    assert await runner.tick() == 0  # fired once, acked
    assert await alive.pending_timers() == []
    for s in (dead, alive):
        await s.close()

