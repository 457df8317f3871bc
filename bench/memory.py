"""Redis memory per idle conversation and the bot process's RSS.

    python bench/memory.py [--conversations 2000] [--messages 1]

Starts a throwaway redis-server, runs `--conversations` conversations of `--messages` buyer messages
each through the real engine (greeting + FAQ answers), then reports Redis's used_memory growth per
conversation, MEMORY USAGE by key kind, and the RSS of this process (one bot without sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from bot.app import Xiaoer  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.embedded import EmbeddedRedis  # noqa: E402
from bot.types import Customer, Inbound  # noqa: E402

QUESTIONS = ["在吗", "什么时候发货", "可以退货吗", "請問有發票嗎", "包邮吗", "这个偏大还是偏小"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=1)
    args = parser.parse_args()
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="xiaoer-mem-"), persist=False)
    url = server.start()
    probe = aioredis.from_url(url, decode_responses=True)
    config = parse_config({"server": {"port": 0}, "redis": {"url": url, "prefix": "m:"}}, base_dir=ROOT, env={})
    bot = Xiaoer(config)
    await bot.initialize()
    assert bot.engine is not None
    try:
        await bot.engine.submit(Inbound("web", "web:warm-up", "w", Customer("w"), "在吗"))
        before = (await probe.info("memory"))["used_memory"]
        keys_before = set(await probe.keys("m:*"))
        gate = asyncio.Semaphore(50)

        async def conversation(n: int) -> None:
            cid = uuid.uuid4().hex
            async with gate:
                for i in range(args.messages):
                    await bot.engine.submit(Inbound("web", f"web:{cid}", uuid.uuid4().hex, Customer(cid),
                                                    QUESTIONS[(n + i) % len(QUESTIONS)]))

        await asyncio.gather(*(conversation(n) for n in range(args.conversations)))
        after = (await probe.info("memory"))["used_memory"]
        by_kind: dict[str, int] = defaultdict(int)
        for key in set(await probe.keys("m:conv:*")) - keys_before:
            by_kind[key.rsplit(":", 1)[-1] if ":msg:" not in key else "msg:<id> (dedupe mark)"] += \
                await probe.memory_usage(key, samples=0) or 0
        n = args.conversations
        print(f"redis-server {(await probe.info('server'))['redis_version']}; {n} conversations x {args.messages} buyer message(s)")
        print(f"used_memory growth per conversation: {(after - before) / n:,.0f} bytes")
        for kind, total in sorted(by_kind.items()):
            print(f"  MEMORY USAGE {kind:<24} {total / n:8,.0f} bytes per conversation")
        print(f"bot process RSS: {psutil.Process().memory_info().rss / 2**20:,.0f} MiB")
    finally:
        await probe.aclose()
        await bot.stop()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
