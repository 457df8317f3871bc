"""The timer runner: due timers from Redis enter the pipeline as events.

Timers live in one sorted set (score = due time). Every process polls; a Lua script hands each due
timer to exactly one of them under a short lease (LEASE, 5 s), and the engine dedupes the tick by
the timer's name, so a timer fires once even if its holder crashes after acting (the commit marked it done) or
before (the lease runs out and another process takes it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.background import BackgroundLoop
from bot.store import LEASE, Store, StoreBusy
from bot.types import Customer, Inbound, Kind, Outcome

log = logging.getLogger(__name__)


class TimerRunner:
    def __init__(
        self,
        store: Store,
        submit: Callable[[Inbound], Awaitable[Outcome]],
        drain: Callable[[], Awaitable[None]],
        clock: Callable[[], float],
        interval: float = 0.25,
        lease: float = LEASE,
        drain_every: float = 2.0,
    ):
        self.store = store
        self.submit = submit
        self.drain = drain
        self.clock = clock
        self.interval = interval
        self.lease = lease
        self.drain_every = drain_every
        self.fired = 0
        self._since_drain = 0.0
        self._loop = BackgroundLoop("xiaoer-timers", self._round, interval, expected=store.transient)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Finish the tick in progress, then stop."""
        await self._loop.stop()

    async def tick(self) -> int:
        """Fire every due timer once; returns how many this process fired."""
        count = 0
        for member in await self.store.claim_timers(self.clock(), self.lease):
            kind, cid, *rest = member.split("|")
            inbound = Inbound(channel="", conversation_id=cid, message_id=f"timer:{member}",
                              customer=Customer(id="timer"), text="|".join([kind, *rest]), kind=Kind.TIMER)
            try:
                outcome = await self.submit(inbound)
            except StoreBusy:
                break  # overloaded: the leases bring the rest back in a moment
            except Exception as exc:
                if self.store.unavailable(exc):
                    break  # logged once per outage; the leases bring these timers back
                log.exception("timer %s failed; it fires again when its lease ends", member)
                continue
            if outcome.in_progress:
                continue  # another process is acting on it; if it fails, the lease brings it back
            await self.store.ack_timer(member)
            if not outcome.duplicate:
                count += 1
        self.fired += count
        return count

    async def _round(self) -> None:
        await self.tick()
        self._since_drain += self.interval
        if self._since_drain >= self.drain_every:
            self._since_drain = 0.0
            await self.drain()  # a safety net: agents that came online in another process
