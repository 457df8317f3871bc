"""Delivery of outbox messages by platform APIs (Telegram, WeChat, WeCom), with retries.

Messages that do not ride in the buyer's own request (agent replies, reassignment notices, queue
updates) are committed to a Redis stream together with the transcript, so a crash after commit does
not lose them. Every process reads the stream in one consumer group: each entry goes to one process,
is acknowledged after the platform accepted it, and is taken over by another process when its holder
died (XAUTOCLAIM). Permanent refusals (WeChat's 48-hour window or quota) are reported to the desk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bot.background import BackgroundLoop
from bot.store import Store

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


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


class Deliverer:
    def __init__(self, store: Store, senders: dict[str, Sender], on_failure: Callable[[str, dict[str, Any], str], Awaitable[None]]):
        self.store = store
        self.senders = senders
        self.on_failure = on_failure
        self.consumer = f"deliverer-{secrets.token_hex(4)}"
        self._loop = BackgroundLoop("xiaoer-delivery", lambda: self.round(block_ms=500), interval=0.05)

    async def start(self) -> None:
        await self.store.outbox_group()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def round(self, block_ms: int = 0) -> int:
        """Deliver what is waiting; returns how many were delivered."""
        done = 0
        for entry_id, fields in await self.store.outbox_read(self.consumer, block_ms=block_ms):
            channel, cid = fields.get("channel", ""), fields.get("conversation", "")
            message = json.loads(fields.get("message", "{}"))
            sender = self.senders.get(channel)
            if sender is None:
                log.error("no sender for channel %r; dropping outbox entry %s", channel, entry_id)
                await self.store.outbox_ack(entry_id)
                continue
            try:
                await sender.deliver(cid, message)
            except DeliveryError as exc:
                attempts = await self.store.outbox_attempts(entry_id)
                if exc.permanent or attempts >= MAX_ATTEMPTS:
                    log.warning("%s: not delivered (%s) after %d attempts", cid, exc.reason, attempts)
                    await self.store.outbox_ack(entry_id)
                    await self.on_failure(cid, message, exc.reason)
                elif exc.retry_after:
                    await asyncio.sleep(min(exc.retry_after, 30.0))
                continue  # left pending: retried after the claim idle time
            except Exception:
                log.exception("%s: delivery error; will retry", cid)
                continue
            await self.store.outbox_ack(entry_id)
            done += 1
        return done
