"""A background loop with a clean stop: the round in progress finishes, then the loop ends.

Stopping by cancellation could land inside a Redis call (redis-py may swallow it); an event cannot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BackgroundLoop:
    def __init__(self, name: str, step: Callable[[], Awaitable[object]], interval: float,
                 expected: Callable[[BaseException], bool] | None = None):
        self.name = name
        self.expected = expected  # True for errors reported elsewhere (a Redis outage): no traceback
        self.step = step
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, timeout: float = 10.0) -> None:
        if self._task:
            self._stopping.set()
            try:
                await asyncio.wait_for(self._task, timeout=timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.step()
            except Exception as exc:
                if not (self.expected and self.expected(exc)):
                    log.exception("%s: round failed", self.name)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
