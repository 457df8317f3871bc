"""Xiaoer against its bare ceilings, in one run: figures, not tests.

    python bench/ceiling.py [--repeat 3] [--sockets 200] [--messages 6] [--redis-url URL]

Every server runs in its own process (`python -m bot run`, or a bare server started by this script
with `--serve`); the load comes from this process over loopback. Reported, each as the median of
`--repeat` runs:

- widget path: buyer message -> reply over the widget WebSocket (hello, then messages; each waits for
  its ack, which carries the replies) against a bare aiohttp WebSocket endpoint that answers every
  frame with an ack (the same client, the same frames);
- WeChat passive path: signed plain-mode callback -> passive XML reply, against bare aiohttp + wechatpy
  (signature check, parse_message, TextReply.render);
- two bot processes against one, the widget path, the same load spread over both;
- latency (p50/p99) of the widget path at half of the measured peak rate, open loop.

Without --redis-url (or REDIS_URL) a throwaway redis-server is started. Keys use a fresh prefix and
are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from adapters.wx_common import sign  # noqa: E402
from bench.pipeline import bench_redis, pct  # noqa: E402

QUESTIONS = ["什么时候发货", "可以退货吗", "請問有發票嗎", "包邮吗", "这个偏大还是偏小", "在吗"]
WX_TOKEN, GH_ID = "benchToken", "gh_bench"
BUSY = [0]  # "busy" answers seen (each resent, as the widget does)


# ---- bare servers (run with --serve) ------------------------------------------------------------
def serve_bare(kind: str, port: int) -> None:
    from aiohttp import WSMsgType, web

    async def ws(request: web.Request) -> web.StreamResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type != WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame.get("type") == "hello":
                await sock.send_str(json.dumps({"type": "ready", "visitor": uuid.uuid4().hex, "history": []}))
            else:
                await sock.send_str(json.dumps({"type": "ack", "id": frame.get("id"), "duplicate": False,
                                                "messages": [{"type": "message", "from": "bot", "text": "亲~"}]},
                                               ensure_ascii=False))
        return sock

    async def wechat(request: web.Request) -> web.Response:
        from wechatpy import parse_message
        from wechatpy.replies import TextReply
        from wechatpy.utils import check_signature

        q = request.query
        check_signature(WX_TOKEN, q["signature"], q["timestamp"], q["nonce"])
        message = parse_message(await request.text())
        return web.Response(text=TextReply(content="亲~", message=message).render(), content_type="text/xml")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/widget/ws", ws)
    app.router.add_post("/wechat/callback", wechat)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---- processes ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot_config(folder: Path, port: int, redis_url: str, prefix: str) -> Path:
    q = json.dumps
    path = folder / f"bot-{port}.toml"
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n[redis]\nurl = {q(redis_url)}\nprefix = {q(prefix)}\n\n'
        f'[shop]\nbusiness_hours = "00:00-24:00"\n\n'
        f'[faq]\nfiles = [{q(str(ROOT / "phrasebook/faq/demo-shop.toml"))}]\n\n'
        f'[channels.wechat]\nenabled = true\napp_id = "wxbench"\napp_secret = "bench-secret"\n'
        f'token = {q(WX_TOKEN)}\napi_base_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    return path


class Server:
    def __init__(self, args: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [a.replace("{port}", str(self.port)) for a in args]
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Server:
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.args} did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc
        self.proc.terminate()
        self.proc.wait(10)


def bare(kind: str) -> Server:
    return Server([sys.executable, __file__, "--serve", kind, "--port", "{port}"])


def bot(folder: Path, redis_url: str, prefix: str) -> Server:
    server = Server([])
    config = bot_config(folder, server.port, redis_url, prefix)
    server.args = [sys.executable, "-m", "bot", "run", "--config", str(config)]
    return server


# ---- load ---------------------------------------------------------------------------------------
async def widget_load(urls: list[str], sockets: int, messages: int, rate: float | None = None) -> tuple[float, list[float]]:
    """(messages per second, latencies). Closed loop, or open loop at `rate` messages/s in total."""
    latencies: list[float] = []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        socks = []
        for i in range(sockets):
            url = urls[i % len(urls)]
            ws = await http.ws_connect(url.replace("http", "ws") + "/widget/ws", headers={"Origin": url})
            await ws.send_json({"type": "hello", "visitor": None, "token": None, "replies_in_ack": True})
            await ws.receive()
            socks.append(ws)

        async def one(n: int, ws: aiohttp.ClientWebSocketResponse, start: float) -> None:
            for i in range(messages):
                if rate:
                    due = start + (i * sockets + n) / rate
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                t = time.perf_counter()
                client_id = uuid.uuid4().hex
                while True:  # as the widget does: resend by itself after "busy"
                    await ws.send_json({"type": "message", "id": client_id, "text": QUESTIONS[(n + i) % len(QUESTIONS)]})
                    frame = json.loads((await ws.receive()).data)
                    while frame["type"] not in ("ack", "error"):
                        frame = json.loads((await ws.receive()).data)
                    if frame["type"] == "ack":
                        break
                    if frame.get("code") != "busy":
                        raise RuntimeError(f"error frame: {frame}")
                    BUSY[0] += 1
                    await asyncio.sleep(frame["retry_after"])
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(one(n, ws, start) for n, ws in enumerate(socks)))
        elapsed = time.perf_counter() - start
        for ws in socks:
            await ws.close()
    return len(latencies) / elapsed, latencies


def wechat_body(openid: str, text: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{GH_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{random.randrange(10**18, 10**19)}</MsgId></xml>")


async def wechat_load(url: str, buyers: int, messages: int) -> float:
    """Requests per second: `buyers` buyers each sending `messages` callbacks one after another (after
    one unmeasured first message, which gets the welcome)."""
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        async def post(openid: str, text: str) -> None:
            ts, nonce = str(int(time.time())), str(random.randrange(10**9))
            params = {"signature": sign(WX_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
            async with http.post(url + "/wechat/callback", params=params, data=wechat_body(openid, text)) as resp:
                body = await resp.text()
                if resp.status != 200 or "<xml>" not in body:
                    raise RuntimeError(f"{resp.status}: {body[:200]}")

        openids = ["o" + uuid.uuid4().hex[:27] for _ in range(buyers)]
        await asyncio.gather(*(post(o, "在吗") for o in openids))

        async def buyer(n: int, openid: str) -> None:
            for i in range(messages):
                await post(openid, QUESTIONS[(n + i) % (len(QUESTIONS) - 1)])

        start = time.perf_counter()
        await asyncio.gather(*(buyer(n, o) for n, o in enumerate(openids)))
        return buyers * messages / (time.perf_counter() - start)


def show(name: str, figures: list[float]) -> str:
    return f"{name}: median {statistics.median(figures):,.0f}/s  (runs: {', '.join(f'{f:,.0f}' for f in figures)})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--messages", type=int, default=6, help="per socket; the widget allows a burst of 8")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    server, url = bench_redis(args.redis_url)
    prefix = f"xiaoer-bench-{uuid.uuid4().hex[:8]}:"
    folder = Path(tempfile.mkdtemp(prefix="xiaoer-bench-"))
    print(f"Redis: {'embedded redis-server (unix socket)' if server else url}; Python {sys.version.split()[0]}; "
          f"{os.cpu_count()} cores; {args.sockets} sockets x {args.messages} messages; median of {args.repeat}")
    try:
        n, m = args.sockets, args.messages
        figures: dict[str, list[float]] = {k: [] for k in ("ws_bare", "ws_bot", "wx_bare", "wx_bot", "ws_two")}
        # Each repetition measures a ceiling and its path back to back, so a ratio compares figures
        # taken under the same conditions (the machine may be shared); the median is of the ratios.
        async with bare("bare") as ceiling, bot(folder, url, prefix) as one:
            for _ in range(args.repeat):
                figures["ws_bare"].append((await widget_load([ceiling.url], n, m))[0])
                figures["ws_bot"].append((await widget_load([one.url], n, m))[0])
                figures["wx_bare"].append(await wechat_load(ceiling.url, n, m))
                figures["wx_bot"].append(await wechat_load(one.url, n, m))
            async with bot(folder, url, prefix) as two:
                for _ in range(args.repeat):
                    figures["ws_two"].append((await widget_load([one.url, two.url], n, m))[0])
            half = statistics.median(figures["ws_bot"]) / 2
            _, latencies = await widget_load([one.url], n, m, rate=half)
        f = figures
        ratio = lambda a, b: statistics.median(x / y for x, y in zip(f[a], f[b]))  # noqa: E731
        print(show("bare aiohttp WebSocket        ", f["ws_bare"]))
        print(show("widget path (Xiaoer)          ", f["ws_bot"]) + f"   ratio {ratio('ws_bot', 'ws_bare'):.3f}")
        print(show("bare aiohttp + wechatpy       ", f["wx_bare"]))
        print(show("WeChat passive path (Xiaoer)  ", f["wx_bot"]) + f"   ratio {ratio('wx_bot', 'wx_bare'):.3f}")
        print(show("widget path, two processes    ", f["ws_two"]) +
              f"   {statistics.median(f['ws_two']) / statistics.median(f['ws_bot']):.2f}x one process")
        ms = [v * 1000 for v in latencies]
        print(f"busy answers (resent): {BUSY[0]}")
        print(f"widget path at half of peak ({half:,.0f} msg/s open loop, {len(ms)} messages): "
              f"p50 {pct(ms, 50):.1f} ms  p99 {pct(ms, 99):.1f} ms")
    finally:
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        client.close()
        if server:
            server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:  # a bare server process, started by main()
        serve_bare(sys.argv[2], int(sys.argv[4]))
    else:
        asyncio.run(main())
