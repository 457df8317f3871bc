"""Pipeline speed: buyer message -> committed reply, through the real engine and a real Redis.

    python bench/pipeline.py [--conversations 200] [--messages 5] [--concurrency 50] [--redis-url URL]

Without --redis-url (or REDIS_URL) it starts a throwaway embedded redis-server. Prints throughput and
latency percentiles for the whole turn (claim, lock, load, handlers incl. FAQ matching, atomic commit)
and for a WebSocket round trip through the widget adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.app import Xiaoer  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.embedded import EmbeddedRedis  # noqa: E402
from bot.types import Customer, Inbound  # noqa: E402

QUESTIONS = ["在吗", "什么时候发货", "可以退货吗", "請問有發票嗎", "my parcel hasn't arrived", "能便宜点吗", "这个偏大还是偏小", "今天天气怎么样"]


def bench_redis(url: str) -> tuple[EmbeddedRedis | None, str]:
    """The given Redis, or a throwaway embedded redis-server (returned, to be stopped) and its URL."""
    if url:
        return None, url
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="xiaoer-bench-"), persist=False)
    return server, server.start()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(name: str, latencies: list[float], elapsed: float) -> None:
    ms = [v * 1000 for v in latencies]
    print(f"{name}: {len(ms)} turns in {elapsed:.2f} s = {len(ms) / elapsed:,.0f} turns/s; "
          f"latency ms p50 {pct(ms, 50):.2f}  p95 {pct(ms, 95):.2f}  p99 {pct(ms, 99):.2f}  mean {statistics.fmean(ms):.2f}")


async def bench_engine(bot: Xiaoer, conversations: int, messages: int, concurrency: int) -> None:
    assert bot.engine is not None
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def conversation(n: int) -> None:
        cid = f"bench-{uuid.uuid4().hex}"
        async with gate:
            for i in range(messages):
                inbound = Inbound("web", f"web:{cid}", f"m{i}", Customer(cid), QUESTIONS[(n + i) % len(QUESTIONS)])
                t = time.perf_counter()
                await bot.engine.submit(inbound)
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(conversation(n) for n in range(conversations)))
    report(f"engine.submit ({concurrency} concurrent conversations)", latencies, time.perf_counter() - start)


async def bench_socket(bot: Xiaoer, conversations: int, messages: int, concurrency: int) -> None:
    import json

    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:
        async def visitor(n: int) -> None:
            async with gate:
                async with http.ws_connect(bot.url.replace("http", "ws") + "/widget/ws", headers={"Origin": bot.url}) as ws:
                    await ws.send_json({"type": "hello", "visitor": None, "token": None})
                    await ws.receive_json()
                    for i in range(messages):
                        t = time.perf_counter()
                        await ws.send_json({"type": "message", "id": f"c{i}", "text": QUESTIONS[(n + i) % len(QUESTIONS)]})
                        while json.loads((await ws.receive()).data)["type"] != "ack":
                            pass
                        latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(visitor(n) for n in range(conversations)))
    report(f"widget WebSocket round trip ({concurrency} concurrent sockets)", latencies, time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    server, url = bench_redis(args.redis_url)
    prefix = f"xiaoer-bench-{uuid.uuid4().hex[:8]}:"
    config = parse_config({"server": {"port": 0}, "redis": {"url": url, "prefix": prefix}}, base_dir=ROOT, env={})
    bot = Xiaoer(config)
    await bot.initialize()
    await bot.start()
    try:
        print(f"Redis: {'embedded (unix socket)' if server else url}; Python {sys.version.split()[0]}; {os.cpu_count()} cores")
        await bench_engine(bot, args.conversations, args.messages, args.concurrency)
        await bench_socket(bot, args.conversations, args.messages, args.concurrency)
    finally:
        assert bot.store is not None
        keys = [k async for k in bot.store.redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await bot.store.redis.delete(*keys[i:i + 500])
        await bot.stop()
        if server:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
