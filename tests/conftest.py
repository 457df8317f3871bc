"""Shared fixtures: a real Redis (REDIS_URL, or a throwaway redis-server), a unique key prefix per
test (cleaned afterwards, so tests never touch keys they did not create), and a running bot."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from bot.config import Config, parse_config
from bot.embedded import EmbeddedRedis

if TYPE_CHECKING:
    from bot.app import Xiaoer

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")


def shop_time(hour: int, minute: int = 0) -> float:
    """A unix time at the given Shanghai wall-clock time (on a fixed day)."""
    return datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI).timestamp()


class Clock:
    """A settable clock for the engine, so business hours are deterministic."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    yield server.start()
    server.stop()


@pytest.fixture
async def redis_client(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    value = f"xiaoer-test-{uuid.uuid4().hex[:12]}:"
    yield value
    client = aioredis.from_url(redis_url, decode_responses=True)
    keys = [k async for k in client.scan_iter(match=f"{value}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make_config(redis_url: str, prefix: str, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "redis": {"url": redis_url, "prefix": prefix},
        "faq": {"files": [str(ROOT / "phrasebook/faq/demo-shop.toml")]},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values} if isinstance(values, dict) else values
    return parse_config(data, base_dir=ROOT, env={})


@pytest.fixture
def clock() -> Clock:
    return Clock(shop_time(10, 0))


BotFactory = Callable[..., Awaitable["Xiaoer"]]


@pytest.fixture
async def start_bot(redis_url: str, prefix: str, clock: Clock) -> AsyncIterator[BotFactory]:
    """Start real bot processes (in this event loop) on free ports; all stopped at the end."""
    from bot.app import Xiaoer

    started: list[Xiaoer] = []

    async def start(**sections: dict[str, Any]) -> Xiaoer:
        bot = Xiaoer(make_config(redis_url, prefix, **sections), clock=clock)
        await bot.initialize()
        await bot.start()
        started.append(bot)
        return bot

    yield start
    for bot in reversed(started):
        await bot.stop()


@pytest.fixture
async def bot(start_bot: BotFactory) -> "Xiaoer":
    return await start_bot()
