"""Redis restarted in the middle of a run: buyers are told in their own language, their messages are
resent and each gets exactly one reply, and the outage costs two log lines, not a traceback per
operation. The test runs its own throwaway redis-server (never the shared one)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiohttp
import pytest

from bot.app import Xiaoer
from bot.embedded import EmbeddedRedis
from bot.phrasebook import Phrasebook
from tests.conftest import ROOT, make_config
from tests.widget_client import WidgetClient

PHRASES = Phrasebook.load(ROOT / "phrasebook")
VISITORS, MESSAGES = 12, 8


async def chat(client: WidgetClient, n: int, notices: list[str]) -> list[str]:
    """Send MESSAGES messages like the widget does (resend on busy/unavailable, reconnect when closed);
    returns the client ids."""
    ids = []
    for i in range(MESSAGES):
        client_id = uuid.uuid4().hex
        ids.append(client_id)
        while True:
            try:
                _, answer = await client.ask(["在吗", "什么时候发货", "包邮吗"][(n + i) % 3], id=client_id)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                answer = {"type": "closed"}
            if answer["type"] == "ack":
                break
            if answer["type"] == "closed":  # reconnect, as the widget does
                await asyncio.sleep(0.2)
                await client.close()
                try:
                    ready = await client.connect(client.visitor, client.token, replies_in_ack=True, locale="en")
                except (aiohttp.ClientError, ConnectionError):
                    continue
                if ready["type"] == "error":
                    notices.append(ready["message"])
                    await client.receive()  # the close that follows
                continue
            assert answer["type"] == "error" and answer["code"] in ("unavailable", "busy"), answer
            notices.append(answer["message"])
            await asyncio.sleep(answer["retry_after"] / 4)
        await asyncio.sleep(0.05)
    return ids


async def test_redis_restart_mid_run(tmp_path, prefix, caplog: pytest.LogCaptureFixture):
    server = EmbeddedRedis(tmp_path / "redis", persist=True)  # the append-only file survives the restart
    url = server.start()
    bot = Xiaoer(make_config(url, prefix))
    await bot.initialize()
    await bot.start()
    caplog.set_level(logging.WARNING)
    try:
        async with aiohttp.ClientSession() as http:
            clients = [WidgetClient(http, bot.url) for _ in range(VISITORS)]
            for c in clients:
                await c.connect(replies_in_ack=True, locale="en")
            notices: list[str] = []
            runs = asyncio.gather(*(chat(c, n, notices) for n, c in enumerate(clients)))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(server.stop)  # SIGTERM: Redis flushes its file and exits
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)
            ids = await asyncio.wait_for(runs, timeout=60)

            assert notices and set(notices) <= {PHRASES.text("service.unavailable", "en"), PHRASES.text("service.busy", "en")}
            for client, sent in zip(clients, ids):  # every message stored once with exactly one answer
                history = (await WidgetClient(http, bot.url).connect(client.visitor, client.token))["history"]
                visitor = [m["id"] for m in history if m["from"] == "visitor"]
                assert visitor == sent
                replies = [m["id"] for m in history if m["from"] != "visitor"]
                assert len(replies) == len(set(replies))  # nothing answered twice
                assert {r.split("~")[0] for r in replies} >= set(sent)  # everything answered
                await client.close()
    finally:
        await bot.stop()
        server.stop()
    outage = [r.getMessage() for r in caplog.records if r.name == "bot.store"]
    assert any("redis unavailable" in m for m in outage) and any("outage over after" in m for m in outage)
    assert len(outage) <= 4  # begin and end of the outage (the hub's subscription may see its own)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
