"""Telegram webhook speed: signed updates posted to the bot against a bare aiohttp JSON echo, in one run.

    python bench/telegram_webhook.py [--requests 2000] [--concurrency 50] [--chats 200] [--repeat 3] [--redis-url URL]

Each server runs in its own process (so is the load generator); the bot has the Telegram channel
enabled and its Bot API pointed at a local stub, so the outbox worker delivers every reply while the
webhook is measured. The webhook path is: check the secret, parse and validate the update, run the
turn (FAQ matching included) and commit it with its replies to the outbox, then 200. Without
--redis-url (or REDIS_URL) a throwaway embedded redis-server is started. Prints requests per second
per repetition, the medians and their ratio (bot / bare echo).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

SECRET = "bench-secret"
QUESTIONS = ["在吗", "什么时候发货", "可以退货吗", "請問有發票嗎", "my parcel hasn't arrived", "能便宜点吗", "这个偏大还是偏小", "今天天气怎么样"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app: web.Application, port: int) -> None:
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)


def bare_echo(port: int) -> None:
    """The ceiling: aiohttp parsing the JSON body and answering it back."""
    async def webhook(request: web.Request) -> web.Response:
        return web.json_response(await request.json())
    app = web.Application()
    app.router.add_post("/telegram/webhook", webhook)
    serve(app, port)


def bot_api_stub(port: int) -> None:
    """Answers getMe and sendMessage like the Bot API, instantly."""
    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if name == "getMe":
            return web.json_response({"ok": True, "result": {"id": 42, "is_bot": True, "first_name": "Xiaoer", "username": "x_bot"}})
        if name == "sendMessage":
            params = await request.json() if request.content_type == "application/json" else dict(await request.post())
            return web.json_response({"ok": True, "result": {"message_id": 1, "date": int(time.time()),
                                                             "chat": {"id": int(params["chat_id"]), "type": "private"}}})
        return web.json_response({"ok": True, "result": True})
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", method)
    serve(app, port)


def run_bot(port: int, api_port: int, redis_url: str, prefix: str) -> None:
    from bot.app import Xiaoer
    from bot.config import parse_config

    config = parse_config({
        "server": {"host": "127.0.0.1", "port": port, "public_url": "https://shop.example.com"},
        "redis": {"url": redis_url, "prefix": prefix},
        "faq": {"files": [str(ROOT / "phrasebook/faq/demo-shop.toml")]},
        "channels": {"telegram": {"enabled": True, "token": "1:bench", "webhook_secret": SECRET,
                                  "api_base_url": f"http://127.0.0.1:{api_port}"}},
    }, base_dir=ROOT, env={})

    async def main() -> None:
        bot = Xiaoer(config)
        await bot.initialize()
        await bot.start()
        try:
            await asyncio.Event().wait()
        finally:
            await bot.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def update(update_id: int, chat: int, text: str) -> bytes:
    user = {"id": chat, "is_bot": False, "first_name": "Amy", "language_code": "zh-hans"}
    return json.dumps({"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()),
                       "chat": {"id": chat, "type": "private", "first_name": "Amy"}, "from": user, "text": text}}).encode()


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.post(url, data=b"{}", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def load(url: str, requests: int, concurrency: int, chats: int, first_id: int) -> float:
    """Requests per second for `requests` updates posted `concurrency` at a time; every answer must be 200."""
    bodies = [update(first_id + i, 10_000 + first_id + i % chats, QUESTIONS[i % len(QUESTIONS)]) for i in range(requests)]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    next_body = iter(bodies)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            nonlocal failures
            for body in next_body:
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    failures += resp.status != 200
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{failures} of {requests} requests to {url} failed")
    return requests / elapsed


@contextlib.contextmanager
def redis_for_bench(url: str) -> Iterator[tuple[str, str]]:
    """(url, key prefix): the given Redis or a throwaway embedded one; the bench's keys are removed after."""
    prefix = f"xiaoer-bench-{uuid.uuid4().hex[:8]}:"
    if url:
        try:
            yield url, prefix
        finally:
            import redis
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i:i + 500])
        return
    from bot.embedded import EmbeddedRedis
    embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="xiaoer-bench-")), persist=False)
    try:
        yield embedded.start(), prefix
    finally:
        embedded.stop()


def measure(redis_url: str, prefix: str, requests: int, concurrency: int, chats: int, repeat: int) -> None:
    echo_port, api_port, bot_port = free_port(), free_port(), free_port()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=bare_echo, args=(echo_port,), daemon=True),
             ctx.Process(target=bot_api_stub, args=(api_port,), daemon=True),
             ctx.Process(target=run_bot, args=(bot_port, api_port, redis_url, prefix), daemon=True)]
    for p in procs:
        p.start()
    try:
        echo_url = f"http://127.0.0.1:{echo_port}/telegram/webhook"
        bot_url = f"http://127.0.0.1:{bot_port}/telegram/webhook"
        asyncio.run(wait_up(echo_url))
        asyncio.run(wait_up(bot_url))
        asyncio.run(load(bot_url, 200, concurrency, chats, 10 ** 8))  # warm up: caches, connections
        echo, bot = [], []
        for r in range(repeat):
            first = (r + 1) * 10 ** 6
            echo.append(asyncio.run(load(echo_url, requests, concurrency, chats, first)))
            bot.append(asyncio.run(load(bot_url, requests, concurrency, chats, first)))
            print(f"run {r + 1}: bare echo {echo[-1]:,.0f} req/s, bot webhook {bot[-1]:,.0f} req/s")
        e, b = statistics.median(echo), statistics.median(bot)
        print(f"median of {repeat}: bare aiohttp JSON echo {e:,.0f} req/s; Telegram webhook {b:,.0f} req/s; "
              f"ratio {b / e:.3f}  ({requests} updates x {repeat}, {concurrency} concurrent, {chats} chats)")
    finally:
        for p in reversed(procs):  # the bot first: its outbox worker still talks to the stub
            p.terminate()
            p.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    with redis_for_bench(args.redis_url) as (url, prefix):
        measure(url, prefix, args.requests, args.concurrency, args.chats, args.repeat)

if __name__ == "__main__":
    main()
