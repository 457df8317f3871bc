"""Report cost: GET /desk/api/reports over 1, 30 and 365 days of a busy shop, against a bare baseline.

    python bench/reports.py [--agents 20] [--redis-url URL]

Fills one aggregate hash per day (as the commit scripts write them: counters and duration buckets
for every agent, group, channel and hour), then times, for each range, the bare read of those
hashes (one pipelined HGETALL per day) and the whole report (the same read plus the merge into the
JSON). Prints milliseconds and the ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.embedded import EmbeddedRedis  # noqa: E402
from bot.reports import build_report  # noqa: E402
from bot.store import Store  # noqa: E402

GROUPS = ["presales", "aftersales", "reviews"]
CHANNELS = ["web", "wechat", "telegram", "wecom_kf"]


def day_fields(agents: list[str], rnd: random.Random) -> dict[str, int]:
    """What a day of ~2000 conversations leaves in its hash."""
    out: dict[str, int] = {}

    def add(field: str, n: int, dims: list[str]) -> None:
        for f in [field] + [f"{field}@{d}" for d in dims]:
            out[f] = out.get(f, 0) + n

    for c in CHANNELS:
        add("conversations", rnd.randint(200, 600), [f"c:{c}"])
        add("handed_over", rnd.randint(50, 200), [f"c:{c}", f"g:{rnd.choice(GROUPS)}"])
    for h in range(24):
        add("messages", rnd.randint(10, 400), [f"h:{h:02d}"])
    for a in agents:
        dims = [f"a:{a}", f"g:{rnd.choice(GROUPS)}"]
        for _ in range(40):
            seconds = rnd.choice([rnd.randint(1, 600), rnd.randint(601, 3600) // 10 * 10])
            add(f"first_response:{seconds}", 1, dims)
            add(f"queue_wait:{rnd.randint(0, 300)}", 1, dims[1:])
        add("first_response_n", 40, dims)
        add("ratings", rnd.randint(5, 20), dims)
        add("rating_sum", rnd.randint(20, 90), dims)
        add("assigned", 40, dims)
    return out


async def timed(make, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await make()
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    embedded = None
    url = args.redis_url
    if not url:
        embedded = EmbeddedRedis(tempfile.mkdtemp(prefix="xiaoer-bench-"), persist=False)
        url = embedded.start()
    prefix = f"xiaoer-bench-{uuid.uuid4().hex[:8]}:"
    store = Store.from_url(url, prefix=prefix)
    agents = [f"agent{i}" for i in range(args.agents)]
    rnd = random.Random(7)
    last = date(2026, 11, 30)
    days = [(last - timedelta(days=i)).isoformat() for i in range(365)][::-1]
    try:
        async with store.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hset(f"{prefix}report:{day}", mapping=day_fields(agents, rnd))
            await pipe.execute()
        fields = await store.redis.hlen(f"{prefix}report:{days[-1]}")
        print(f"{len(days)} days of aggregates, {fields} fields per day, {args.agents} agents")
        for span in (1, 30, 365):
            chosen = days[-span:]

            async def bare() -> None:
                async with store.redis.pipeline(transaction=False) as pipe:
                    for day in chosen:
                        pipe.hgetall(f"{prefix}report:{day}")
                    await pipe.execute()

            async def full() -> None:
                hashes = await store.report_days(chosen)
                build_report(chosen, hashes, "Asia/Shanghai", {a: a for a in agents}, {g: g for g in GROUPS})

            base, whole = await timed(bare), await timed(full)
            print(f"{span:>3} days: bare read {base:7.1f} ms   report {whole:7.1f} ms   ratio {whole / base:5.2f}x")
    finally:
        keys = [k async for k in store.redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await store.redis.delete(*keys)
        await store.close()
        if embedded:
            embedded.stop()


if __name__ == "__main__":
    asyncio.run(main())
