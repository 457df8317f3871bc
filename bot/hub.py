"""Fan-out inside one process: committed events from Redis pub/sub to the sockets open here.

Every process subscribes once; sockets register under a key: "conv:<id>" for a conversation's
widget sockets, "agent:<username>" for an agent's desk sockets, "desks" for every desk,
"supervisors" for supervisors' desks (every chat's messages and queue changes). An event
reaches the conversation, its owner's desk (event["agent"]), an addressed desk (event["desk"]), and
all desks when it says "broadcast". Pub/sub is fire and forget, so clients resync on reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bot.store import Store

log = logging.getLogger(__name__)
Listener = Callable[[dict[str, Any]], Awaitable[None]]


class Hub:
    def __init__(self, store: Store):
        self.store = store
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def listen(self, key: str, listener: Listener) -> Callable[[], None]:
        """Register a listener under a key; returns the function that unregisters it."""
        self._listeners[key].add(listener)

        def remove() -> None:
            group = self._listeners.get(key)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[key]

        return remove

    async def start(self) -> None:
        events = await self.store.subscribe_events()
        self._task = asyncio.create_task(self._pump(events), name="xiaoer-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _targets(self, event: dict[str, Any]) -> list[Listener]:
        keys = []
        if event.get("conversation"):
            keys.append(f"conv:{event['conversation']}")
        for field in ("agent", "desk"):
            if event.get(field):
                keys.append(f"agent:{event[field]}")
        if event.get("broadcast"):
            keys.append("desks")
        if event.get("type") in ("messages", "queue_changed"):
            keys.append("supervisors")  # supervisors watch every chat live
        if event.get("type") == "reload":
            keys.append("reload")  # FAQ, phrasebook or agents changed: every process reloads
        seen: list[Listener] = []
        for key in keys:
            seen.extend(l for l in self._listeners.get(key, ()) if l not in seen)
        return seen

    async def _pump(self, events: AsyncIterator[dict[str, Any]] | None) -> None:
        delay = 0.5
        while True:
            try:
                if events is None:
                    events = await self.store.subscribe_events()
                    delay = 0.5
                    log.info("event subscription restored")
                async for event in events:
                    for listener in self._targets(event):
                        try:
                            await listener(event)
                        except Exception:  # one broken socket must not stop the fan-out
                            log.exception("listener failed")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.store.transient(exc):  # an outage is logged once by the store
                    log.warning("event subscription lost; retrying in %.1f s", delay, exc_info=True)
                events = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
