"""Delivery of outbox messages by platform APIs (Telegram, WeChat, WeCom): each once, in order.

Every message that goes out by a platform API — the bot's reply to the buyer's own Telegram update or
WeCom message, a WeChat reply that missed the passive window, agent replies, notices — is first
committed to a Redis stream (with the transcript where it is part of a turn), so a crash or a failing
API after the commit loses nothing. Every process reads the stream in one consumer group: each entry
goes to one process and is acknowledged after the platform accepted it.

Order: one process at a time delivers a conversation (a lease in Redis); a process that reads an
entry of a conversation another process is delivering hands the entry over to it, and that process
finds it among its pending entries. A process delivers a conversation's entries one after the
other; when the platform fails (5xx, 429, unreachable) the entry is retried here with backoff and the
conversation's later entries wait behind it, while other conversations go on. The entries and leases
a process holds are renewed while they wait, so no other process takes them over; when the process
dies they are taken over (XAUTOCLAIM, in stream order) after 30 s. Permanent refusals (WeChat's
48-hour window, a blocked bot) and entries that could not be delivered for `give_up_after` seconds
are reported to the desk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot import metrics
from bot.background import BackgroundLoop
from bot.store import Store

log = logging.getLogger(__name__)
BACKOFF_FIRST = 0.5            # seconds before the first retry; doubles up to BACKOFF_MAX
BACKOFF_MAX = 30.0
GIVE_UP_AFTER = 6 * 3600.0     # a message not delivered for this long is reported instead
MAX_HELD = 2000                # entries read but not yet delivered; reading pauses above this
RENEW_EVERY = 10.0             # renew held entries and leases well within the 30 s takeover time
LEASE_MS = 30000               # a conversation's delivery lease
HANDED_EVERY = 0.2             # how often to look for entries other processes handed over


class DeliveryError(Exception):
    """The platform refused a message. `permanent`: retrying cannot help (quota, window, blocked)."""

    def __init__(self, reason: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    channel: str

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """Send one message to the buyer; raise DeliveryError when the platform refuses it."""


@dataclass
class _Held:
    """One outbox entry this process holds until the platform accepts it."""

    entry_id: str
    channel: str
    conversation: str
    message: dict[str, Any]
    since: float
    attempts: int = 0
    sending: bool = False      # at the head of its queue and being delivered
    adopted: bool = False      # older entries handed over for its conversation were looked for

    @property
    def order(self) -> tuple[int, int]:
        ms, _, seq = self.entry_id.partition("-")
        return int(ms), int(seq or 0)


class Deliverer:
    def __init__(self, store: Store, senders: dict[str, Sender], on_failure: Callable[[str, dict[str, Any], str], Awaitable[None]],
                 give_up_after: float = GIVE_UP_AFTER, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.senders = senders
        self.on_failure = on_failure
        self.give_up_after = give_up_after
        self.clock = clock
        self.consumer = f"deliverer-{secrets.token_hex(4)}"
        self.delivered = 0
        self._chats: dict[str, deque[_Held]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._held: set[str] = set()
        self._renewed = clock()
        self._looked = 0.0
        self._stopping = asyncio.Event()
        self._loop = BackgroundLoop("xiaoer-delivery", lambda: self.round(block_ms=500), interval=0.02,
                                    expected=store.transient)

    async def start(self) -> None:
        await self.store.outbox_group()
        self._stopping.clear()
        self._loop.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop reading; let sends in flight finish briefly. What is left stays pending for takeover."""
        self._stopping.set()
        await self._loop.stop()
        workers = list(self._workers.values())
        if workers:
            _, pending = await asyncio.wait(workers, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until everything read so far is delivered or given up (tests)."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def round(self, block_ms: int = 0) -> int:
        """Read what is waiting and hand it to the conversations' workers; returns how many were read."""
        if self.clock() - self._renewed >= RENEW_EVERY:
            await self._renew()
        room = MAX_HELD - len(self._held)
        if room <= 0:
            return 0
        rows = []
        if self.clock() - self._looked >= HANDED_EVERY:
            self._looked = self.clock()
            rows = await self.store.outbox_mine(self.consumer, self._held, count=min(100, room))
        if not rows:
            rows = await self.store.outbox_read(self.consumer, count=min(100, room), block_ms=block_ms)
        read = 0
        for entry_id, fields in rows:
            read += await self._take(entry_id, fields)
        return read

    async def _take(self, entry_id: str, fields: dict[str, str]) -> int:
        """Queue one entry in its conversation (in stream order), or hand it to the process that
        delivers that conversation. 1 when queued here."""
        if entry_id in self._held:
            return 0  # already queued here (our own claim came back)
        item = self._parse(entry_id, fields)
        if item is None:
            await self.store.outbox_ack(entry_id)
            return 0
        if item.conversation not in self._chats:
            owner = await self.store.outbox_lease(item.conversation, self.consumer, LEASE_MS)
            if owner != self.consumer:
                await self.store.outbox_hand_over(entry_id, owner)  # keeps the conversation in order
                return 0
        self._held.add(entry_id)
        queue = self._chats.setdefault(item.conversation, deque())
        at = len(queue)
        while at > 0 and queue[at - 1].order > item.order and not queue[at - 1].sending:
            at -= 1
        queue.insert(at, item)
        if item.conversation not in self._workers:
            self._workers[item.conversation] = asyncio.create_task(self._work(item.conversation))
        return 1

    def _parse(self, entry_id: str, fields: dict[str, str]) -> _Held | None:
        channel, cid = fields.get("channel", ""), fields.get("conversation", "")
        if channel not in self.senders:
            log.error("no sender for channel %r; dropping outbox entry %s", channel, entry_id)
            return None
        try:
            message = json.loads(fields.get("message", "{}"))
        except ValueError:
            message = None
        if not isinstance(message, dict) or not cid:
            log.error("malformed outbox entry %s; dropped", entry_id)
            return None
        return _Held(entry_id, channel, cid, message, self.clock())

    async def _work(self, cid: str) -> None:
        """Deliver one conversation's entries in order, each until it is accepted or given up. The
        lease is not given back: it runs out LEASE_MS after the last renewal, and until then entries
        of this conversation that other processes read are handed over here, so none overtakes another."""
        queue = self._chats[cid]
        try:
            while queue and not self._stopping.is_set():
                item = queue[0]
                if not item.adopted:  # another process may have handed over an older one meanwhile
                    item.adopted = True
                    await self._adopt(item.entry_id)
                    continue
                item.sending = True
                if not await self._deliver(item):
                    return  # stopping: the rest stays pending for takeover
                queue.popleft()
                self._held.discard(item.entry_id)
        finally:
            self._chats.pop(cid, None)
            self._workers.pop(cid, None)
            for left in queue:  # not delivered (stopping): pending here, found again or taken over
                self._held.discard(left.entry_id)

    async def _adopt(self, before: str) -> None:
        """Queue the entries handed over to this process up to `before`, so none is overtaken."""
        try:
            for entry_id, fields in await self.store.outbox_mine(self.consumer, self._held, count=50, before=before):
                await self._take(entry_id, fields)
        except Exception as exc:  # Redis away: deliver what we have; the rest is found later
            log.warning("looking for handed-over outbox entries failed (%s)", type(exc).__name__)

    async def _deliver(self, item: _Held) -> bool:
        """True when the entry is done (delivered, refused or given up); False when stopping."""
        sender = self.senders[item.channel]
        while not self._stopping.is_set():
            try:
                await sender.deliver(item.conversation, item.message)
            except DeliveryError as exc:
                item.attempts += 1
                if exc.permanent or self.clock() - item.since >= self.give_up_after:
                    metrics.DELIVERY_ERRORS.labels(item.channel, "permanent" if exc.permanent else "gave_up").inc()
                    log.warning("%s: not delivered (%s) after %d attempts", item.conversation, exc.reason, item.attempts)
                    await self._ack(item)
                    try:
                        await self.on_failure(item.conversation, item.message, exc.reason)
                    except Exception:
                        log.exception("%s: reporting a failed delivery failed", item.conversation)
                    return True
                metrics.DELIVERY_ERRORS.labels(item.channel, "retried").inc()
                metrics.DELIVERY_RETRIES.labels(item.channel).inc()
                delay = exc.retry_after if exc.retry_after else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (item.attempts - 1))
                if item.attempts == 1:
                    log.info("%s: delivery failed (%s); retrying with backoff", item.conversation, exc.reason)
                await self._pause(min(delay, BACKOFF_MAX))
                continue
            except Exception:
                item.attempts += 1
                metrics.DELIVERY_ERRORS.labels(item.channel, "retried").inc()
                metrics.DELIVERY_RETRIES.labels(item.channel).inc()
                if item.attempts == 1:
                    log.exception("%s: delivery error; retrying with backoff", item.conversation)
                await self._pause(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (item.attempts - 1)))
                continue
            await self._ack(item)
            self.delivered += 1
            return True
        return False

    async def _ack(self, item: _Held) -> None:
        """Acknowledge; while Redis is away, keep trying (a message delivered twice beats one lost)."""
        attempt = 0
        while True:
            try:
                await self.store.outbox_ack(item.entry_id)
                return
            except Exception as exc:
                attempt += 1
                if attempt == 1:
                    log.warning("outbox ack of %s failed (%s); retrying", item.entry_id, type(exc).__name__)
                if self._stopping.is_set():
                    return
                await self._pause(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt))

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _renew(self) -> None:
        self._renewed = self.clock()
        if self._held:
            try:
                await self.store.outbox_renew(self.consumer, sorted(self._held))
                await self.store.outbox_lease_renew(list(self._chats), self.consumer, LEASE_MS)
            except Exception as exc:
                log.warning("renewing held outbox entries failed (%s)", type(exc).__name__)
